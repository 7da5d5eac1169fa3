"""Write whole-body bone scans as DICOM NM Image Storage objects, as a dual-head camera stores them.

A dual-head whole-body acquisition is one NM object (SOP class 1.2.840.10008.5.1.4.1.1.20) with one
frame per detector: ``NumberOfFrames`` 2, ``FrameIncrementPointer`` -> (Energy Window Vector, Detector
Vector), ``DetectorVector`` [1, 2], and a ``DetectorInformationSequence`` whose items carry the view
(DICOM CID 26 "Nuclear Medicine Projection": anterior / posterior projection) in ``ViewCodeSequence``.
Frames are stored *as acquired*: the posterior frame is seen from behind, i.e. mirrored left-right
relative to the anterior one. Readers (``msanet_monai.io.read_bone_scan``) mirror it back.

highdicom has no NM image constructor, so the dataset is assembled with pydicom; every module the NM
IOD requires is filled so that ``dciodvfy`` reports no error.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, NuclearMedicineImageStorage

from msanet_monai.errors import BoneScanError
from msanet_monai.io.atomic import atomic_output

__all__ = ["NM_IMAGE_STORAGE", "VIEW_CODES", "write_whole_body_nm", "deterministic_uid"]

NM_IMAGE_STORAGE = NuclearMedicineImageStorage  # 1.2.840.10008.5.1.4.1.1.20

# DICOM CID 26 (Nuclear Medicine Projection), taken from pydicom's copy of the standard's code tables.
VIEW_CODES = {"anterior": codes.SCT.AnteriorProjection, "posterior": codes.SCT.PosteriorProjection}

# (EnergyWindowVector, DetectorVector): the frame index order the standard prescribes for WHOLE BODY.
_FRAME_INCREMENT_POINTER = [0x00540010, 0x00540020]


def deterministic_uid(*parts: object) -> str:
    """A UID under the 2.25 root derived from ``parts`` (same parts -> same UID), e.g. seed and patient.

    A name-based UUID (version 5) in decimal, as PS3.5 B.2 allows; pydicom's ``generate_uid`` ignores
    its ``entropy_srcs`` under the 2.25 root and would give a random UID.
    """
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, '|'.join(str(p) for p in parts)).int}"


def _code_item(code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def _check_views(path: str, views: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    if not views:
        raise BoneScanError(path, "no views to write")
    unknown = set(views) - set(VIEW_CODES)
    if unknown:
        raise BoneScanError(path, f"unknown view name(s) {sorted(unknown)}; expected 'anterior' and/or 'posterior'")
    ordered = [(name, views[name]) for name in VIEW_CODES if name in views]  # anterior first, like detector 1
    shapes = set()
    for name, array in ordered:
        array = np.asarray(array)
        if array.ndim != 2:
            raise BoneScanError(path, f"{name} view must be a 2-D (rows, cols) array, got shape {array.shape}")
        if array.dtype != np.uint16:
            raise BoneScanError(path, f"{name} view must hold uint16 counts, got {array.dtype}")
        shapes.add(array.shape)
    if len(shapes) != 1:
        raise BoneScanError(path, f"views differ in shape: {sorted(shapes)}")
    return ordered


def write_whole_body_nm(
    path: str | os.PathLike,
    views: Mapping[str, np.ndarray],
    pixel_spacing: Sequence[float] = (2.26, 2.26),
    patient_id: str = "ANONYMOUS",
    patient_name: str | None = None,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    manufacturer: str = "msanet-monai synthetic",
    study_date: str = "20240101",
    study_time: str = "090000",
    scan_velocity_mm_s: float = 150.0,
    **attrs: object,
) -> None:
    """Write one NM Image Storage file holding the anterior and/or posterior whole-body view.

    Args:
        path: output ``.dcm`` file.
        views: ``{"anterior": (rows, cols) uint16, "posterior": (rows, cols) uint16}`` (either may be
            left out). The posterior view must be *as acquired* (not mirrored to the anterior orientation).
        pixel_spacing: ``(row_mm, col_mm)``.
        patient_id: PatientID; also the seed of the UIDs that are not given.
        patient_name: PatientName (defaults to ``"Synthetic^<patient_id>"``).
        study_instance_uid, series_instance_uid, sop_instance_uid, frame_of_reference_uid: UIDs; when
            left out they are derived from ``patient_id`` (deterministic, so regenerating a data set
            writes byte-identical files).
        manufacturer: Manufacturer.
        study_date, study_time: DICOM DA / TM strings used for study, series, acquisition and content.
        scan_velocity_mm_s: table speed recorded in ScanVelocity (required for WHOLE BODY images).
        attrs: further DICOM keywords set on the dataset last (e.g. ``PatientSex="F"``).

    Raises:
        BoneScanError: no view, an unknown view name, a non-uint16 or non-2-D array, or shapes that differ.
    """
    path = os.fspath(path)
    ordered = _check_views(path, views)
    rows, cols = ordered[0][1].shape
    study_uid = study_instance_uid or deterministic_uid("study", patient_id)
    series_uid = series_instance_uid or deterministic_uid("series", study_uid)
    sop_uid = sop_instance_uid or deterministic_uid("instance", series_uid)
    for_uid = frame_of_reference_uid or deterministic_uid("frame of reference", study_uid)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NM_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    # SOP Common
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = NM_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = study_date
    ds.InstanceCreationTime = study_time
    # Patient
    ds.PatientName = patient_name or f"Synthetic^{patient_id}"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    # General Study
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.StudyDescription = "Whole-body bone scan"
    # General Series
    ds.Modality = "NM"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.SeriesDate = study_date
    ds.SeriesTime = study_time
    ds.SeriesDescription = "WB 99mTc-MDP"
    ds.BodyPartExamined = "WHOLEBODY"
    # NM/PET Patient Orientation: supine, head first
    orientation = _code_item(codes.SCT.Recumbent)
    orientation.PatientOrientationModifierCodeSequence = [_code_item(codes.SCT.Supine)]
    ds.PatientOrientationCodeSequence = [orientation]
    ds.PatientGantryRelationshipCodeSequence = [_code_item(codes.SCT.Headfirst)]
    # Frame of Reference
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    # General Equipment
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = "msanet_monai.synthetic"
    ds.SoftwareVersions = "msanet-monai"
    # General Acquisition / General Image
    ds.AcquisitionDate = study_date
    ds.AcquisitionTime = study_time
    ds.ContentDate = study_date
    ds.ContentTime = study_time
    ds.InstanceNumber = 1
    # Row direction / column direction of the first frame: patient left, feet (anterior view); a lone
    # posterior frame as acquired runs towards patient right.
    ds.PatientOrientation = ["R", "F"] if [n for n, _ in ordered] == ["posterior"] else ["L", "F"]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
    ds.LossyImageCompression = "00"
    # Image Pixel / NM Image Pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [float(pixel_spacing[0]), float(pixel_spacing[1])]
    # Multi-frame / NM Multi-frame: one frame per detector, one energy window
    ds.NumberOfFrames = len(ordered)
    ds.FrameIncrementPointer = _FRAME_INCREMENT_POINTER
    ds.EnergyWindowVector = [1] * len(ordered)
    ds.NumberOfEnergyWindows = 1
    ds.DetectorVector = list(range(1, len(ordered) + 1))
    ds.NumberOfDetectors = len(ordered)
    # NM Image
    ds.CountsAccumulated = int(sum(int(a.sum(dtype=np.uint64)) for _, a in ordered))
    ds.ScanVelocity = float(scan_velocity_mm_s)
    ds.ActualFrameDuration = int(round(1000.0 * rows * float(pixel_spacing[0]) / float(scan_velocity_mm_s)))
    ds.WholeBodyTechnique = ["1PS"]
    ds.ScanLength = int(round(rows * float(pixel_spacing[0])))
    # NM Isotope: 99mTc-MDP, 140 keV photopeak with a 20 % window
    window = Dataset()
    window_range = Dataset()
    window_range.EnergyWindowLowerLimit = 126.0
    window_range.EnergyWindowUpperLimit = 154.0
    window.EnergyWindowRangeSequence = [window_range]
    window.EnergyWindowName = "Tc99m"
    ds.EnergyWindowInformationSequence = [window]
    pharmaceutical = Dataset()
    pharmaceutical.RadionuclideCodeSequence = [_code_item(codes.SCT._99mTechnetium)]
    pharmaceutical.Radiopharmaceutical = "Tc-99m MDP"
    pharmaceutical.RadiopharmaceuticalCodeSequence = [_code_item(codes.SCT.TechnetiumTc99mMedronate)]
    ds.RadiopharmaceuticalInformationSequence = [pharmaceutical]
    # NM Detector: one item per frame, carrying its view
    detectors = []
    for name, _ in ordered:
        detector = Dataset()
        detector.CollimatorGridName = "LEHR"
        detector.CollimatorType = "PARA"
        detector.FocalDistance = None
        detector.XFocusCenter = None
        detector.YFocusCenter = None
        detector.ZoomFactor = [1.0, 1.0]
        detector.ViewCodeSequence = [_code_item(VIEW_CODES[name])]
        # Patient (LPS) geometry of the frame: rows run to the feet; the anterior detector sees patient
        # left along a row, the posterior one (facing the back) patient right.
        sign = 1.0 if name == "anterior" else -1.0
        detector.ImageOrientationPatient = [sign, 0.0, 0.0, 0.0, 0.0, -1.0]
        # rounded: a DS value holds at most 16 characters
        detector.ImagePositionPatient = [round(-sign * (cols - 1) / 2 * float(pixel_spacing[1]), 4), 0.0, 0.0]
        detectors.append(detector)
    ds.DetectorInformationSequence = detectors

    for keyword, value in attrs.items():
        setattr(ds, keyword, value)

    frames = np.stack([np.ascontiguousarray(a, dtype="<u2") for _, a in ordered])
    ds.PixelData = frames.tobytes()
    with atomic_output(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
