"""Read one view of a whole-body bone scan as a ``(1, rows, cols)`` float32 MetaTensor of raw counts.

Formats:

- DICOM NM Image Storage, one or two frames (a dual-head whole-body acquisition stores the anterior and
  the posterior view as two frames; the view of each frame is in the ``ViewCodeSequence`` of the
  ``DetectorInformationSequence`` item its ``DetectorVector`` entry points to).
- DICOM single-view images: NM, or Secondary Capture such as the NEMA NM1 scan (``JPEG-LL.dcm``).
- NIfTI (``.nii``, ``.nii.gz``) holding a ``(rows, cols)`` array with ``affine = diag(row_mm, col_mm, 1, 1)``.
- 16-bit (or 8-bit) greyscale PNG.

Rows run head to feet and columns patient-right to patient-left as on an anterior view. The pixel data
are read with pydicom and the axes handled here: MONAI's ``PydicomReader`` transposes these images and
ignores ``PixelSpacing``. Posterior views are seen from behind; they are mirrored left-right by default
so that both views of a patient share one orientation (meta ``mirrored``).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Sequence

import nibabel as nib
import numpy as np
import pydicom
import torch
from monai.data import MetaTensor
from PIL import Image
from pydicom import uid
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder

from msanet_monai.errors import BoneScanError
from msanet_monai.io.nm_dicom import VIEW_CODES

__all__ = ["VIEWS", "DEFAULT_SPACING", "WHOLE_BODY_ASPECT", "WHOLE_BODY_MAX_LENGTH_MM", "read_bone_scan", "list_views", "check_whole_body_geometry"]

logger = logging.getLogger(__name__)

VIEWS = ("anterior", "posterior")
DEFAULT_SPACING = (2.26, 2.26)  # mm; the NM1 scan and common whole-body matrices (256 x 1024 over ~2.3 m)

# plausible height / width (in mm) of a whole-body view: 256 x 1024 pixels at 2.26 mm is 4.0; cameras
# range from a 1.6 m short pass over a 0.6 m field (2.7) to 2.3 m over 0.4 m (5.8)
WHOLE_BODY_ASPECT = (2.0, 8.0)
# longest plausible whole-body view (rows x row spacing): scan tables travel about 2 to 2.6 m; a longer
# view means a wrong pixel spacing (or a PNG, which has none, of a finer matrix), and resampling it to
# 2.26 mm would shrink the patient
WHOLE_BODY_MAX_LENGTH_MM = 3000.0

# SOP classes that can hold a planar whole-body view.
_SOP_CLASSES = (
    uid.NuclearMedicineImageStorage,
    uid.SecondaryCaptureImageStorage,
    uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
)
# DICOM CID 26 (Nuclear Medicine Projection) code values of the two views, as the NM writer records them.
_VIEW_CODE_VALUES = {code.value: name for name, code in VIEW_CODES.items()}


def _check_view_name(path: str, view: str | None) -> None:
    if view is not None and view not in VIEWS:
        raise BoneScanError(path, f"unknown view {view!r}; expected one of {VIEWS}")


def _check_counts(path: str, array: np.ndarray) -> np.ndarray:
    """Checks shared by every format: a finite, non-negative, real 2-D array."""
    if array.dtype.kind not in "uif" or array.dtype.names is not None:
        raise BoneScanError(path, f"pixel data of type {array.dtype} are not counts (expected integers or floats)")
    if array.ndim != 2:
        raise BoneScanError(path, f"expected a planar (rows, cols) view, got an array of shape {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise BoneScanError(path, f"{int((~np.isfinite(array)).sum())} pixels are NaN or infinite")
    if array.size and array.min() < 0:
        raise BoneScanError(path, f"negative pixel values (minimum {array.min()}): these are not raw counts")
    return array


# ----------------------------------------------------------------------------------------------- DICOM
def _read_dicom(path: str) -> pydicom.Dataset:
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError as e:
        raise BoneScanError(path, f"not a DICOM file ({e})") from e
    except (OSError, EOFError, ValueError, KeyError, TypeError) as e:  # pydicom's errors on broken headers
        raise BoneScanError(path, f"unreadable DICOM file, perhaps truncated ({e})") from e


def _check_dicom_header(path: str, ds: pydicom.Dataset) -> int:
    """Check that ``ds`` is a planar greyscale NM view; returns the number of frames."""
    try:
        return _check_dicom_header_values(path, ds)
    except BoneScanError:
        raise
    except Exception as e:  # noqa: BLE001  (pydicom decodes values lazily: a garbled value raises here)
        raise BoneScanError(path, f"malformed DICOM header ({type(e).__name__}: {e})") from e


def _check_dicom_header_values(path: str, ds: pydicom.Dataset) -> int:
    if "SOPClassUID" not in ds:
        # every image object has one near the start of its data set: without it the header was cut
        # short (pydicom stops quietly at the end of the file) or this is not an image object at all
        meta_class = ds.file_meta.get("MediaStorageSOPClassUID") if hasattr(ds, "file_meta") else None
        said = f" (its file meta says {uid.UID(str(meta_class)).name})" if meta_class else ""
        raise BoneScanError(path, f"the header ends before SOPClassUID{said}: file truncated, or not a DICOM image")
    sop_class = uid.UID(str(ds.get("SOPClassUID", "")))
    if sop_class not in _SOP_CLASSES:
        name = sop_class.name if sop_class else "none"
        expected = ", ".join(sorted(c.name for c in _SOP_CLASSES))
        raise BoneScanError(path, f"SOP class {name} is not a whole-body NM view (expected one of: {expected})")
    if "PixelData" not in ds:  # before the modality: a file cut inside its header lacks both
        raise BoneScanError(path, "no pixel data (file truncated?)")
    modality = str(ds.get("Modality", ""))
    if modality != "NM":
        raise BoneScanError(path, f"modality {modality or 'missing'} is not NM (nuclear medicine)")
    samples = int(ds.get("SamplesPerPixel", 1))
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if samples != 1 or not photometric.startswith("MONOCHROME"):
        raise BoneScanError(path, f"colour image ({photometric}, {samples} samples per pixel); expected greyscale")
    image_type = [str(v).upper() for v in ds.get("ImageType", [])]
    if any("TOMO" in v for v in image_type):
        raise BoneScanError(path, f"a tomographic (3-D) image, ImageType {image_type}; expected a planar view")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 2:
        raise BoneScanError(path, f"a 3-D volume of {frames} frames; expected 1 or 2 planar views")
    if int(ds.get("BitsAllocated", 16)) not in (8, 16):
        raise BoneScanError(path, f"{ds.BitsAllocated}-bit pixels; expected 8- or 16-bit integer counts")
    return frames


def _frame_views(path: str, ds: pydicom.Dataset, frames: int) -> tuple[list[str], bool]:
    """The view of each frame, and whether the file names them (``False``: assumed from the frame order).

    Views come from the ViewCodeSequence of the DetectorInformationSequence item each frame's
    DetectorVector entry points to (or of the dataset itself for a single frame).
    """

    def code_view(item) -> str | None:
        for code in item.get("ViewCodeSequence", []):
            value = str(code.get("CodeValue", ""))
            meaning = str(code.get("CodeMeaning", "")).lower()
            if value in _VIEW_CODE_VALUES:
                return _VIEW_CODE_VALUES[value]
            for name in VIEWS:  # some vendors write their own code value but a readable meaning
                if name in meaning:
                    return name
        return None

    detectors = list(ds.get("DetectorInformationSequence", []))
    vector = [int(v) for v in np.atleast_1d(ds.get("DetectorVector", []) or [])]
    views: list[str | None] = []
    for frame in range(frames):
        detector = vector[frame] if len(vector) == frames else frame + 1  # DetectorVector is 1-based
        item = detectors[detector - 1] if 1 <= detector <= len(detectors) else None
        views.append(code_view(item) if item is not None else None)
    if frames == 1 and views[0] is None:
        views[0] = code_view(ds)  # Secondary Capture and some NM files put the code at the top level
    if all(v is not None for v in views) and len(set(views)) == frames:
        return views, True  # type: ignore[return-value]
    if frames == 1:
        return ["anterior"], False  # no view information: a single whole-body view is taken as anterior
    logger.warning("%s: frame views not given by DetectorInformationSequence/ViewCodeSequence; "
                   "assuming frame 0 = anterior, frame 1 = posterior", path)
    return list(VIEWS), False


def _decode_frames(path: str, ds: pydicom.Dataset, frames: int) -> np.ndarray:
    """Pixel data as a (frames, rows, cols) array, with the modality rescale applied if present."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is not None and syntax.is_compressed:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:
            decoder = None
        if decoder is None or not decoder.is_available:
            missing = "; ".join(decoder.missing_dependencies) if decoder is not None else "none exists in pydicom"
            raise BoneScanError(path, f"pixel data compressed as {syntax.name} and no decoder is installed ({missing})")
    try:
        array = np.asarray(ds.pixel_array)
    except Exception as e:  # pydicom raises ValueError/RuntimeError/NotImplementedError by plugin
        raise BoneScanError(path, f"cannot decode the pixel data, file truncated or corrupt ({e})") from e
    if array.ndim == 3 and frames == 1 or array.ndim > 3:
        raise BoneScanError(path, f"pixel array of shape {array.shape}; expected a planar greyscale view")
    array = array.reshape((frames, *array.shape[-2:]))
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    if (slope, intercept) != (1.0, 0.0):
        array = array * slope + intercept
    return array


def _dicom_spacing(path: str, ds: pydicom.Dataset, default_spacing: Sequence[float]) -> list[float]:
    """``PixelSpacing`` as ``[row_mm, col_mm]``; ``default_spacing`` when absent.

    Raises:
        BoneScanError: a PixelSpacing that is not two positive finite numbers (a guess would give
            wrong lesion areas and a wrong resampling, silently).
    """
    try:
        spacing = ds.get("PixelSpacing")
        if spacing is None or (isinstance(spacing, (str, bytes)) and not spacing.strip()):
            return [float(s) for s in default_spacing]
        values = [float(s) for s in (spacing if isinstance(spacing, (list, tuple, pydicom.multival.MultiValue))
                                     else [spacing])]
    except Exception as e:  # noqa: BLE001  (pydicom raises ValueError/TypeError for a non-numeric DS)
        raise BoneScanError(path, f"PixelSpacing {ds['PixelSpacing'].repval if 'PixelSpacing' in ds else ''} "
                            f"is not numeric ({e})") from e
    if len(values) != 2 or not all(np.isfinite(values)) or min(values) <= 0:
        raise BoneScanError(path, f"PixelSpacing {values} is not two positive numbers (row_mm, col_mm)")
    return values


# ------------------------------------------------------------------------------------------ other files
def _format(path: str) -> str:
    lower = path.lower()
    if lower.endswith((".nii", ".nii.gz")):
        return "nifti"
    if lower.endswith(".png"):
        return "png"
    return "dicom"


def read_nifti_2d(path: str) -> tuple[np.ndarray, list[float]]:
    """A ``(rows, cols)`` array and ``[row_mm, col_mm]`` from a NIfTI file (trailing size-1 axes dropped)."""
    try:
        image = nib.load(path)
        array = np.asanyarray(image.dataobj)
    except Exception as e:  # nibabel raises ImageFileError, EOFError, zlib/gzip errors on broken files
        raise BoneScanError(path, f"not a readable NIfTI file, perhaps truncated ({e})") from e
    zooms = [float(z) for z in image.header.get_zooms()[:2]]
    while array.ndim > 2 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise BoneScanError(path, f"a {array.ndim}-D array of shape {array.shape}; expected a planar (rows, cols) view")
    return array, zooms


def read_png_2d(path: str) -> np.ndarray:
    """A ``(rows, cols)`` array from an 8- or 16-bit greyscale PNG."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in ("L", "I;16", "I;16B", "I;16L", "I"):
                raise BoneScanError(path, f"PNG mode {mode} is not greyscale counts (expected 8- or 16-bit greyscale)")
            array = np.asarray(image)
    except BoneScanError:
        raise
    except Exception as e:  # PIL raises UnidentifiedImageError/OSError on broken files
        raise BoneScanError(path, f"not a readable PNG file, perhaps truncated ({e})") from e
    return array


def check_whole_body_geometry(
    path: str | os.PathLike | None,
    shape: Sequence[int],
    spacing: Sequence[float],
    aspect_range: Sequence[float] = WHOLE_BODY_ASPECT,
) -> None:
    """Refuse a view whose physical shape is not that of a whole-body scan (head to feet along rows).

    Args:
        path: file named in the error.
        shape: ``(rows, cols)`` of the view.
        spacing: ``(row_mm, col_mm)``.
        aspect_range: accepted ``(min, max)`` of height / width in mm.

    Raises:
        BoneScanError: the view is wider than tall (stored transposed: rows and columns swapped), its
            height / width lies outside ``aspect_range`` (cropping such an image would cut the wrong
            region), or it is longer than :data:`WHOLE_BODY_MAX_LENGTH_MM` (a wrong pixel spacing).
    """
    rows, cols = int(shape[-2]), int(shape[-1])
    height, width = rows * float(spacing[0]), cols * float(spacing[1])
    aspect = height / width if width > 0 else float("inf")
    low, high = float(aspect_range[0]), float(aspect_range[1])
    size = f"{rows} rows x {cols} columns at {float(spacing[0]):g} x {float(spacing[1]):g} mm"
    if low <= aspect <= high:
        if max(height, width) > WHOLE_BODY_MAX_LENGTH_MM:
            raise BoneScanError(path, f"{size} is {max(height, width) / 1000:.2f} m long, more than any whole-body "
                                f"scan ({WHOLE_BODY_MAX_LENGTH_MM / 1000:g} m): the pixel spacing is wrong (a PNG "
                                f"has none and is read at {DEFAULT_SPACING[0]:g} mm); give the scan as DICOM or NIfTI "
                                "with its spacing")
        return
    if low <= 1.0 / max(aspect, 1e-9) <= high:
        raise BoneScanError(path, f"{size} is wider than tall (height/width {aspect:.2f}): stored transposed? "
                            "A whole-body view has rows running head to feet (e.g. 1024 rows x 256 columns)")
    raise BoneScanError(path, f"{size}: height/width {aspect:.2f} is not that of a whole-body view "
                        f"(expected {low:g} to {high:g}; 256 x 1024 at 2.26 mm is 4.0)")


# ------------------------------------------------------------------------------------------------- API
def _check_path(path: str | os.PathLike) -> str:
    """``path`` as a string if it is a readable regular file; else a BoneScanError saying why not."""
    path = os.fspath(path)
    try:
        info = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BoneScanError(path, "symbolic link loop: the link never reaches a file") from e
        if os.path.islink(path):
            raise BoneScanError(path, f"broken symbolic link to {os.readlink(path)!r}") from e
        if e.errno == errno.EACCES:
            raise BoneScanError(path, "permission denied: cannot look at the file") from e
        raise BoneScanError(path, "file not found") from e
    if not stat.S_ISREG(info.st_mode):
        raise BoneScanError(path, "not a regular file (a folder or device)" if os.path.exists(path) else "file not found")
    if info.st_size == 0:
        raise BoneScanError(path, "empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise BoneScanError(path, "permission denied: the file is not readable by this user")
    return path


def list_views(path: str | os.PathLike) -> list[str]:
    """Views present in a file, in frame order, e.g. ``["anterior", "posterior"]`` for a dual-head NM file.

    NIfTI and PNG files carry no view information and are listed as ``["anterior"]``. Only the header
    is checked: a file cut short inside its pixel data still lists its views, and each view's
    :func:`read_bone_scan` then raises (so a batch reports the failure per view).

    Raises:
        BoneScanError: missing file, not DICOM, or a header that is not a planar greyscale NM view.
    """
    path = _check_path(path)
    if _format(path) != "dicom":
        return ["anterior"]
    ds = _read_dicom(path)
    return _frame_views(path, ds, _check_dicom_header(path, ds))[0]


def read_bone_scan(
    path: str | os.PathLike,
    view: str | None = None,
    mirror_posterior: bool = True,
    default_spacing: Sequence[float] = DEFAULT_SPACING,
) -> MetaTensor:
    """Read one view of a whole-body bone scan.

    Args:
        path: DICOM, NIfTI (``.nii``/``.nii.gz``) or PNG file.
        view: ``"anterior"``, ``"posterior"`` or ``None``. ``None`` takes the anterior view of a two-frame
            file, else the only view. For a DICOM file the view must be present in it. NIfTI and PNG files
            (and DICOM files without view codes) carry no view information: there ``view`` names the view
            the file holds (default anterior), stored as acquired.
        mirror_posterior: flip posterior views left-right into the anterior orientation.
        default_spacing: ``(row_mm, col_mm)`` used when the file gives no pixel spacing.

    Returns:
        ``(1, rows, cols)`` float32 MetaTensor of raw counts; meta ``filename_or_obj``, ``view``,
        ``frame_index``, ``pixel_spacing`` (``[row_mm, col_mm]``), ``mirrored``, ``spatial_shape``, and
        ``affine = diag(row_mm, col_mm, 1, 1)``.

    Raises:
        BoneScanError: missing file; not NM (modality, SOP class); colour; 3-D volume; wrong pixel type;
            NaN/inf or negative values; truncated file; compressed without an installed decoder; the
            requested view is not in the file.
    """
    path = _check_path(path)
    _check_view_name(path, view)
    kind = _format(path)
    frame_index = 0
    if kind == "dicom":
        ds = _read_dicom(path)
        frames = _check_dicom_header(path, ds)
        views, named_in_file = _frame_views(path, ds, frames)
        if view is None:
            frame_index = views.index("anterior") if "anterior" in views else 0
        elif view in views:
            frame_index = views.index(view)
        elif not named_in_file:
            views = [view]  # a single view without view codes: trust the caller, as for NIfTI and PNG
        else:
            raise BoneScanError(path, f"the {view} view is not in this file (it holds {views})")
        name = views[frame_index]
        array = _decode_frames(path, ds, frames)[frame_index]
        spacing = _dicom_spacing(path, ds, default_spacing)
    else:
        if kind == "nifti":
            array, spacing = read_nifti_2d(path)
            if min(spacing) <= 0:
                spacing = [float(s) for s in default_spacing]
        else:
            array = read_png_2d(path)
            spacing = [float(s) for s in default_spacing]  # PNG has no reliable physical spacing
        name = view or "anterior"
    array = _check_counts(path, np.asarray(array))
    mirrored = bool(mirror_posterior and name == "posterior")
    if mirrored:
        array = array[:, ::-1]
    affine = torch.diag(torch.tensor([spacing[0], spacing[1], 1.0, 1.0], dtype=torch.float64))
    meta = {
        "filename_or_obj": path,
        "view": name,
        "frame_index": frame_index,
        "pixel_spacing": [float(spacing[0]), float(spacing[1])],
        "mirrored": mirrored,
        "spatial_shape": list(array.shape),
    }
    data = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    return MetaTensor(data, affine=affine, meta=meta)
