"""Writers for the outputs of whole-body inference: NIfTI mask, overlay PNG, DICOM SEG and CSV summary.

Every writer takes a mask in **file orientation**: the orientation of the pixels as stored in the source
file. A posterior view is read mirrored left-right (``meta["mirrored"]``) so that the network sees it
like an anterior view; :func:`to_file_orientation` flips such a mask back before it is written, so a
lesion mask of a posterior frame lies on the same pixels as the lesion in that frame of the file.

* NIfTI (:func:`write_mask_nifti`): the 2-D array stored ``(rows, cols)``, uint8 {0, 1}, with
  ``affine = diag(row_mm, col_mm, 1, 1)`` (CONTRIBUTING's convention for project NIfTI files).
* Overlay (:func:`write_overlay_png`): 8-bit RGB PNG of the scan (grey), lesions tinted and outlined
  in red, the thorax window outlined in cyan.
* DICOM SEG (:func:`write_dicom_seg`, highdicom): a binary Segmentation referencing the source NM or
  Secondary Capture object, and for a two-frame NM object the frame the view came from.
* CSV (:class:`InferenceCSVWriter`): one row per view, the file replaced as soon as a row is added so
  that an interrupted batch keeps the rows of the views already done.

Every file is written through :func:`msanet_monai.io.atomic.atomic_output` (temporary file, then
``os.replace``): a crash or a full disk never leaves a partial output.
"""

from __future__ import annotations

import copy
import csv
import os
from collections.abc import Mapping, Sequence
from typing import Any

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from scipy import ndimage

import msanet_monai
from msanet_monai.errors import BoneScanError
from msanet_monai.io.atomic import atomic_output
from msanet_monai.metrics.lesion_detection import label_lesions

__all__ = [
    "CSV_COLUMNS",
    "to_file_orientation",
    "lesion_statistics",
    "write_mask_nifti",
    "write_label_map_nifti",
    "write_overlay_png",
    "write_dicom_seg",
    "InferenceCSVWriter",
]

CSV_COLUMNS = (
    "file",
    "view",
    "status",
    "error",
    "lesion_pixels",
    "lesion_count",
    "lesion_area_mm2",
    "thorax_box",
    "mask_nifti",
    "overlay_png",
    "dicom_seg",
    "note",
)

# SOP classes a SEG may reference here: the views come from NM Image Storage or Secondary Capture files
_SOURCE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.20": "NM Image Storage",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
}
# row / column directions (DICOM PatientOrientation) of a whole-body frame as stored: an anterior
# view runs towards patient left along a row, a posterior view (seen from behind) towards patient right
_PATIENT_ORIENTATION = {"anterior": ["L", "F"], "posterior": ["R", "F"]}
# Pixel Measures needs a SliceThickness (Type 1C); a planar projection has none, so a nominal 1 mm
# is recorded unless the source gives one
_NOMINAL_SLICE_THICKNESS_MM = 1.0


def _as_2d(mask: Any, name: str = "mask") -> np.ndarray:
    array = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"{name} must be (rows, cols) or (1, rows, cols), got shape {array.shape}")
    return array


def to_file_orientation(mask: Any, mirrored: bool) -> np.ndarray:
    """Return ``mask`` as a (rows, cols) uint8 {0, 1} array in the orientation of the source file.

    Args:
        mask: (rows, cols) or (1, rows, cols) mask (any numeric type, non-zero = lesion) in the
            orientation the network saw.
        mirrored: ``meta["mirrored"]`` of the loaded view: ``True`` when the reader flipped the view
            left-right (posterior views), so the mask is flipped back here.
    """
    array = (_as_2d(mask) > 0).astype(np.uint8)
    return np.ascontiguousarray(array[:, ::-1]) if mirrored else array


def lesion_statistics(mask: Any, pixel_spacing: Sequence[float]) -> dict[str, float | int]:
    """Lesion pixels, lesions (8-connected components, counted as the evaluation counts them) and area in mm2.

    Args:
        mask: (rows, cols) or (1, rows, cols) binary mask.
        pixel_spacing: ``(row_mm, col_mm)``.
    """
    binary = _as_2d(mask) > 0
    _, count = label_lesions(binary)
    pixels = int(binary.sum())
    return {
        "lesion_pixels": pixels,
        "lesion_count": count,
        "lesion_area_mm2": round(pixels * float(pixel_spacing[0]) * float(pixel_spacing[1]), 2),
    }


def write_mask_nifti(path: str | os.PathLike, mask: np.ndarray, pixel_spacing: Sequence[float]) -> str:
    """Write a (rows, cols) {0, 1} mask as NIfTI with ``affine = diag(row_mm, col_mm, 1, 1)``.

    Args:
        path: ``.nii.gz`` (or ``.nii``) output file.
        mask: (rows, cols) mask in file orientation (see :func:`to_file_orientation`).
        pixel_spacing: ``(row_mm, col_mm)`` of the source view.

    Returns:
        the path written.
    """
    return write_label_map_nifti(path, (_as_2d(mask) > 0).astype(np.uint8), pixel_spacing)


def write_label_map_nifti(path: str | os.PathLike, labels: np.ndarray, pixel_spacing: Sequence[float]) -> str:
    """Write a (rows, cols) uint8 label map (e.g. bone regions) like :func:`write_mask_nifti`, values kept."""
    path = os.fspath(path)
    array = np.asarray(_as_2d(labels), dtype=np.uint8)
    affine = np.diag([float(pixel_spacing[0]), float(pixel_spacing[1]), 1.0, 1.0])
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    with atomic_output(path) as tmp:
        nib.save(image, tmp)
    return path


def write_overlay_png(
    path: str | os.PathLike,
    scan: np.ndarray,
    mask: np.ndarray,
    thorax_box: Sequence[int] | None = None,
    percentile: float = 99.5,
) -> str:
    """Write an RGB PNG of ``scan`` with the lesions tinted and outlined in red, the thorax box in cyan.

    Args:
        path: ``.png`` output file.
        scan: (rows, cols) counts, same orientation as ``mask``.
        mask: (rows, cols) {0, 1} lesion mask.
        thorax_box: ``[row_start, col_start, row_end, col_end]`` (ends exclusive) in the same
            orientation, or ``None`` to draw no box.
        percentile: counts above this percentile are shown white (bone scans have a few very hot
            pixels, e.g. the bladder, that would otherwise leave the skeleton dark).

    Returns:
        the path written.
    """
    path = os.fspath(path)
    counts = _as_2d(scan, "scan").astype(np.float64)
    binary = _as_2d(mask) > 0
    if counts.shape != binary.shape:
        raise ValueError(f"scan {counts.shape} and mask {binary.shape} differ in shape")
    finite = counts[np.isfinite(counts)]
    top = float(np.percentile(finite, percentile)) if finite.size else 0.0
    grey = np.clip(np.nan_to_num(counts) / top, 0.0, 1.0) if top > 0 else np.zeros_like(counts)
    rgb = np.repeat((grey * 255.0)[..., None], 3, axis=-1)
    red = np.array([255.0, 0.0, 0.0])
    rgb[binary] = 0.6 * rgb[binary] + 0.4 * red  # tint keeps the uptake visible under the lesion
    outline = binary & ~ndimage.binary_erosion(binary)
    rgb[outline] = red
    if thorax_box is not None:
        r0, c0, r1, c1 = (int(v) for v in thorax_box)
        rows, cols = binary.shape
        r0, r1 = max(r0, 0), min(r1, rows) - 1
        c0, c1 = max(c0, 0), min(c1, cols) - 1
        cyan = np.array([0.0, 255.0, 255.0])
        rgb[[r0, r1], c0 : c1 + 1] = cyan
        rgb[r0 : r1 + 1, [c0, c1]] = cyan
    with atomic_output(path) as tmp:
        Image.fromarray(rgb.round().astype(np.uint8), mode="RGB").save(tmp, format="PNG")
    return path


def _segment_description(algorithm_version: str) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="bone metastasis",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="MSA-Net", version=algorithm_version, family=codes.cid7162.ArtificialIntelligence
        ),
        tracking_id="bone metastases",
        tracking_uid=hd.UID(),
    )


def write_dicom_seg(
    path: str | os.PathLike,
    mask: np.ndarray,
    source: str | os.PathLike,
    frame_index: int = 0,
    view: str = "anterior",
    series_number: int = 300,
    algorithm_version: str | None = None,
) -> str:
    """Write a binary DICOM Segmentation of one view, referencing its source image (highdicom).

    Args:
        path: ``.dcm`` output file.
        mask: (rows, cols) {0, 1} mask in file orientation.
        source: the NM Image Storage or Secondary Capture file the view was read from.
        frame_index: 0-based frame of a multi-frame source holding the view; the SEG's source image
            references carry ``ReferencedFrameNumber = frame_index + 1``.
        view: ``"anterior"`` or ``"posterior"``: sets the SEG's PatientOrientation (row/column
            directions of the frame as stored).
        series_number: SeriesNumber of the SEG series.
        algorithm_version: version recorded in the Algorithm Identification (defaults to the package's).

    Returns:
        the path written.

    Raises:
        BoneScanError: ``source`` is not a DICOM file of a supported SOP class, has another frame
            size than ``mask``, or has no frame ``frame_index``.
    """
    path, source = os.fspath(path), os.fspath(source)
    binary = (_as_2d(mask) > 0).astype(np.uint8)
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True)
    except Exception as e:  # noqa: BLE001  (pydicom raises several types for a non-DICOM file)
        raise BoneScanError(source, f"cannot reference it from a DICOM SEG: not a readable DICOM file ({e})") from e
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in _SOURCE_SOP_CLASSES:
        raise BoneScanError(source, f"cannot reference it from a DICOM SEG: SOP class {sop_class!r} is not NM or SC")
    if (int(ds.Rows), int(ds.Columns)) != binary.shape:
        raise BoneScanError(source, f"frame size {(ds.Rows, ds.Columns)} differs from the mask's {binary.shape}")
    num_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if not 0 <= frame_index < num_frames:
        raise BoneScanError(source, f"has {num_frames} frame(s), no frame index {frame_index}")

    # highdicom treats every NM object as an enhanced multi-frame image (it looks for functional
    # groups) and refuses more than one frame without patient geometry; the NM/SC objects here are
    # neither, so it is given a one-frame copy of the header with the pixel spacing in a shared
    # functional group, and the frame reference is added to the SEG afterwards.
    header = copy.deepcopy(ds)
    if "NumberOfFrames" in header:
        header.NumberOfFrames = 1
    spacing = [float(v) for v in ds.get("PixelSpacing", None) or ds.get("ImagerPixelSpacing", None) or (1.0, 1.0)]
    thickness = float(ds.get("SliceThickness", None) or _NOMINAL_SLICE_THICKNESS_MM)
    pixel_measures = hd.PixelMeasuresSequence(pixel_spacing=spacing, slice_thickness=thickness)
    shared = Dataset()
    shared.PixelMeasuresSequence = pixel_measures
    header.SharedFunctionalGroupsSequence = [shared]

    version = algorithm_version or msanet_monai.__version__
    seg = hd.seg.Segmentation(
        source_images=[header],
        pixel_array=binary,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_segment_description(version)],
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="msanet-monai",
        manufacturer_model_name="MSA-Net",
        software_versions=version,
        device_serial_number="none",
        pixel_measures=pixel_measures,
        omit_empty_frames=False,  # a lesion-free view still gets its (empty) frame
        series_description=f"MSA-Net bone metastases ({view})",
        content_description=f"Bone metastases, {view} view",
        content_label="BONE_METS",
    )
    if num_frames > 1:
        for group in seg.PerFrameFunctionalGroupsSequence:
            for derivation in group.get("DerivationImageSequence", []):
                for item in derivation.get("SourceImageSequence", []):
                    item.ReferencedFrameNumber = frame_index + 1
    seg.PatientOrientation = _PATIENT_ORIENTATION.get(view, ["L", "F"])
    with atomic_output(path) as tmp:
        seg.save_as(tmp)
    return path


class InferenceCSVWriter:
    """CSV summary of an inference run: a header, then one row per view, the file replaced atomically.

    Every :meth:`write_row` rewrites the whole file through :func:`~msanet_monai.io.atomic.atomic_output`
    (a summary holds one row per view, so this stays cheap): a crash, a full disk or a kill leaves the
    last complete version, never a cut row. A failed write raises
    :class:`~msanet_monai.errors.OutputWriteError`; the row stays in memory and the next write retries.

    Args:
        path: the ``.csv`` file (replaced).
        columns: column names; rows may leave any of them out (written empty).
        write_now: write the header at once (else at the first row).
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str] = CSV_COLUMNS, write_now: bool = True) -> None:
        self.path = os.fspath(path)
        self.columns = tuple(columns)
        self.rows: list[dict[str, Any]] = []
        if write_now:
            self.flush()

    def write_row(self, row: Mapping[str, Any]) -> None:
        """Add one row and replace the file with the header and every row so far."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"{self.path}: unknown CSV column(s) {sorted(unknown)}")
        self.rows.append({k: "" if row.get(k) is None else row[k] for k in self.columns})
        self.flush()

    def flush(self, path: str | os.PathLike | None = None) -> str:
        """Write the header and all rows to ``path`` (default: :attr:`path`) atomically; return the path."""
        target = os.fspath(path) if path is not None else self.path
        with atomic_output(target) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="raise")
                writer.writeheader()
                writer.writerows(self.rows)
        return target

    def close(self) -> None:
        """Nothing is held open; kept so the writer can be used as a context manager."""

    def __enter__(self) -> InferenceCSVWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
