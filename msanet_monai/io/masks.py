"""Read a lesion mask of one view: NIfTI, PNG or LabelMe JSON -> ``(1, rows, cols)`` float32 ``{0, 1}``.

Masks on disk are in the orientation of the file they label (a posterior mask is *not* mirrored). When
the image they belong to was mirrored on reading (``like.meta["mirrored"]``), the mask is mirrored too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor

from msanet_monai.errors import BoneScanError
from msanet_monai.io.bone_scan import DEFAULT_SPACING, read_nifti_2d, read_png_2d
from msanet_monai.io.labelme import DEFAULT_LESION_LABELS, read_labelme_mask

__all__ = ["read_lesion_mask", "binarize_mask", "empty_mask_like"]


def binarize_mask(path: str, array: np.ndarray) -> np.ndarray:
    """``{0, 1}`` or ``{0, 255}`` (or boolean) values -> float32 ``{0, 1}``; anything else is an error."""
    array = np.asarray(array)
    if array.dtype == bool:
        return array.astype(np.float32)
    if array.dtype.kind not in "uif":
        raise BoneScanError(path, f"mask of type {array.dtype}; expected integer or float 0/1 values")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise BoneScanError(path, f"mask has {int((~np.isfinite(array)).sum())} NaN or infinite values")
    values = np.unique(array)
    if set(values.tolist()) <= {0, 1}:
        return (array == 1).astype(np.float32)
    if set(values.tolist()) <= {0, 255}:
        return (array == 255).astype(np.float32)
    shown = ", ".join(str(v) for v in values[:8]) + (", ..." if values.size > 8 else "")
    raise BoneScanError(path, f"mask is not binary: values {shown} (expected 0/1 or 0/255)")


def empty_mask_like(like: MetaTensor) -> MetaTensor:
    """An all-zero mask with the shape and geometry of the image ``like`` (a view without lesions)."""
    meta = {k: like.meta[k] for k in ("filename_or_obj", "view", "pixel_spacing", "mirrored") if k in like.meta}
    meta["filename_or_obj"] = ""  # no mask file ("" rather than None, which default_collate rejects)
    return MetaTensor(torch.zeros((1, *like.shape[-2:]), dtype=torch.float32), affine=like.affine.clone(), meta=meta)


def read_lesion_mask(
    path: str | os.PathLike,
    like: MetaTensor | None = None,
    allow_empty: bool = True,
    lesion_labels: Sequence[str] = DEFAULT_LESION_LABELS,
    default_spacing: Sequence[float] = DEFAULT_SPACING,
) -> MetaTensor:
    """Read a lesion mask.

    Args:
        path: NIfTI (``.nii``/``.nii.gz``, stored ``(rows, cols)``), PNG (0/1 or 0/255), or LabelMe ``.json``.
        like: the ``(1, rows, cols)`` image the mask labels (from :func:`read_bone_scan`). Its shape is
            checked, its ``mirrored`` flag applied, and its spacing, view and affine copied.
        allow_empty: accept an all-zero mask (a view without lesions). ``False`` raises on one, e.g. for
            a data set where every labelled view should contain a lesion.
        lesion_labels: LabelMe labels counted as lesion (other shapes, the look-alikes, are ignored).
        default_spacing: ``(row_mm, col_mm)`` when neither ``like`` nor the file gives one.

    Returns:
        ``(1, rows, cols)`` float32 ``{0, 1}`` MetaTensor; meta ``filename_or_obj``, ``pixel_spacing``,
        ``mirrored`` (and ``view`` when ``like`` is given).

    Raises:
        BoneScanError: missing or unreadable file, values other than 0/1 or 0/255, NaN, a shape that
            differs from ``like``, an all-zero mask when ``allow_empty`` is False.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BoneScanError(path, "mask file not found")
    expected = tuple(int(s) for s in like.shape[-2:]) if like is not None else None
    lower = path.lower()
    spacing = [float(s) for s in default_spacing]
    if lower.endswith(".json"):
        array = read_labelme_mask(path, shape=expected, lesion_labels=lesion_labels)
    elif lower.endswith((".nii", ".nii.gz")):
        array, zooms = read_nifti_2d(path)
        spacing = zooms if min(zooms) > 0 else spacing
    elif lower.endswith(".png"):
        array = read_png_2d(path)
    else:
        raise BoneScanError(path, "unknown mask format; expected .nii, .nii.gz, .png or LabelMe .json")
    mask = binarize_mask(path, array)
    if expected is not None and mask.shape != expected:
        raise BoneScanError(path, f"mask shape (rows, cols) = {mask.shape} differs from the image's {expected}")
    if not allow_empty and not mask.any():
        raise BoneScanError(path, "mask is empty (no lesion pixel) and allow_empty is False")
    mirrored = bool(like is not None and like.meta.get("mirrored", False))
    if mirrored:
        mask = mask[:, ::-1]
    meta: dict = {"filename_or_obj": path, "mirrored": mirrored}
    if like is not None:
        meta["pixel_spacing"] = list(like.meta.get("pixel_spacing", spacing))
        if "view" in like.meta:
            meta["view"] = like.meta["view"]
        affine = like.affine.clone()
    else:
        meta["pixel_spacing"] = [float(s) for s in spacing]
        affine = torch.diag(torch.tensor([spacing[0], spacing[1], 1.0, 1.0], dtype=torch.float64))
    return MetaTensor(torch.from_numpy(np.ascontiguousarray(mask))[None], affine=affine, meta=meta)
