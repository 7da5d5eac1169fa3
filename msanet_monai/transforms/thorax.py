"""Thorax crop of a whole-body view (the paper's reference [13], Lin et al., PLoS ONE 2020).

Lin et al. cut a 256 x 256 window out of the 256 x 1024 whole-body image by smoothing the row profile
(sum of counts per row) and reading its first and second derivatives. On real scans the dip of the neck
is shallow; the landmark that holds is the steep rise of the profile where the shoulders begin below the
head. :func:`locate_thorax` therefore:

1. smooths the view (Gaussian, 1.5 px) and clips it at the 90th percentile of its non-zero pixels:
   hot spots (bladder, injection site, a cluster of metastases in the sternum or at the skull base) are
   small, so clipping removes them from the profile, while the body's width, which makes the shoulders'
   rise, stays (without clipping a sternal lesion cluster out-rose the shoulders on synthetic scans);
2. sums each row and smooths the profile (Gaussian, ``sigma`` 3 rows, ~7 mm), then divides it by its
   maximum, so neither Poisson noise nor the count level moves the landmarks;
3. takes the top of the head as the first row above 5 % of that maximum (a body that reaches the top
   edge of the image is an error: a partial scan has no head to measure from);
4. takes the shoulders as the row of steepest rise (largest first derivative) between 60 mm and 450 mm
   below the top of the head (the skull's own rise lies above that band; an adult's shoulders lie
   within it, ~250 mm on the NM1 scan);
5. starts the window ``shoulder_margin_mm`` (25 mm, ~11 rows) above the shoulders, so that clavicles and
   shoulder tops, which lie above the row of steepest rise, are inside; the window keeps ``roi_size``
   rows and is moved inside the image when it would cross its bottom;
6. columns: the whole width when the image is exactly ``roi_size[1]`` wide (256 for a 256 x 1024 scan);
   a wider image gets a window centred on the counts' centre of mass.

Fallbacks (documented, never silent): an image of exactly ``roi_size`` is returned whole, and one exactly
``roi_size[0]`` rows tall keeps all its rows (either is taken to be a crop already). An all-zero image,
an image smaller than ``roi_size``, a body cut at the top edge, or no shoulder rise in the search band
raises :class:`~msanet_monai.errors.BoneScanError` naming the file. A fixed ``box`` given to
:class:`ThoraxCropd` skips the search altogether.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms import Crop, InvertibleTransform, MapTransform
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from msanet_monai.errors import BoneScanError
from msanet_monai.io.bone_scan import DEFAULT_SPACING

__all__ = ["locate_thorax", "ThoraxCropd"]

Box = tuple[int, int, int, int]  # (row_start, col_start, row_end, col_end), ends exclusive


def locate_thorax(
    counts_2d: np.ndarray,
    roi_size: Sequence[int] = (256, 256),
    row_mm: float = DEFAULT_SPACING[0],
    sigma_rows: float = 3.0,
    hot_spot_percentile: float = 90.0,
    head_fraction: float = 0.05,
    shoulder_search_mm: tuple[float, float] = (60.0, 450.0),
    shoulder_margin_mm: float = 25.0,
    path: str | None = None,
) -> Box:
    """Find the thorax window of a whole-body view from its row profile (see the module docstring).

    Args:
        counts_2d: ``(rows, cols)`` counts, head at the top.
        roi_size: ``(rows, cols)`` of the window.
        row_mm: row spacing in mm (the search band and the margin are physical lengths).
        sigma_rows: Gaussian smoothing of the row profile, in rows.
        hot_spot_percentile: percentile of the non-zero (smoothed) pixels at which counts are clipped
            before the rows are summed.
        head_fraction: profile level (fraction of its maximum) that marks the top of the head.
        shoulder_search_mm: band below the top of the head searched for the shoulders' rise.
        shoulder_margin_mm: how far above the shoulders' steepest rise the window starts.
        path: file named in errors.

    Returns:
        ``(row_start, col_start, row_end, col_end)``, ends exclusive, of size ``roi_size``.

    Raises:
        BoneScanError: an empty image, an image smaller than ``roi_size``, a body cut at the top edge, no
            shoulder rise found.
    """
    counts = np.asarray(counts_2d, dtype=np.float64)
    if counts.ndim != 2:
        raise BoneScanError(path, f"thorax crop needs a (rows, cols) view, got shape {counts.shape}")
    rows, cols = counts.shape
    roi_rows, roi_cols = int(roi_size[0]), int(roi_size[1])
    if rows < roi_rows or cols < roi_cols:
        raise BoneScanError(path, f"image of {rows} x {cols} is smaller than the thorax window {roi_rows} x {roi_cols}")
    if not np.isfinite(counts).all():
        raise BoneScanError(path, "image has NaN or infinite values; cannot locate the thorax")
    if (rows, cols) == (roi_rows, roi_cols):
        return 0, 0, rows, cols  # already thorax-sized: taken as a crop, returned whole
    if counts.max() <= 0:
        raise BoneScanError(path, "image is empty (no counts): there is nothing to segment")
    smoothed = gaussian_filter(counts, 1.5)
    clipped = np.minimum(smoothed, np.percentile(smoothed[smoothed > 0], hot_spot_percentile))

    # columns: centre of mass of the (hot-spot clipped) counts, window kept inside the image
    col_mass = clipped.sum(axis=0)
    centre = float((col_mass * np.arange(cols)).sum() / col_mass.sum())
    c0 = int(np.clip(round(centre - roi_cols / 2), 0, cols - roi_cols))
    if rows == roi_rows:
        return 0, c0, rows, c0 + roi_cols  # already thorax-tall: taken as a crop, all rows kept

    profile = gaussian_filter1d(clipped.sum(axis=1), sigma_rows, mode="constant")
    profile /= profile.max()
    if profile[0] > head_fraction:
        raise BoneScanError(path, "the body reaches the top edge of the image, so there is no head to start from "
                                  "(a partial scan or a crop?); give the window with --thorax_box or run whole-body "
                                  "mode with --crop_thorax false")
    head_top = int(np.argmax(profile > head_fraction))
    lo = head_top + int(round(shoulder_search_mm[0] / row_mm))
    hi = min(head_top + int(round(shoulder_search_mm[1] / row_mm)), rows - 1)
    rise = np.gradient(profile)
    if lo >= hi or rise[lo:hi].max() <= 0:
        raise BoneScanError(
            path, f"no shoulder rise found below the head (top of the head at row {head_top}); give the window with "
            "--thorax_box or run whole-body mode with --crop_thorax false"
        )
    shoulders = lo + int(np.argmax(rise[lo:hi]))
    r0 = int(np.clip(shoulders - round(shoulder_margin_mm / row_mm), 0, rows - roi_rows))
    return r0, c0, r0 + roi_rows, c0 + roi_cols


class ThoraxCropd(MapTransform, InvertibleTransform):
    """Cut the thorax window out of whole-body views; invertible, so a prediction can be pasted back.

    The box is found once per item from ``data[source_key]`` (:func:`locate_thorax`), or taken from
    ``box``, and the same box is cut from every key. It is stored in each output's meta as
    ``thorax_box = [row_start, col_start, row_end, col_end]``, and the crop is recorded in the
    MetaTensor's applied operations by MONAI's ``Crop``, so ``monai.transforms.Invertd`` (or
    :meth:`inverse`) pads a ``(C, roi_rows, roi_cols)`` prediction back to ``(C, rows, cols)`` with zeros
    outside the box.

    Args:
        keys: keys to crop, e.g. ``["image", "label"]``: ``(C, rows, cols)`` -> ``(C, roi_rows, roi_cols)``.
        source_key: key whose counts locate the thorax.
        roi_size: ``(rows, cols)`` of the window.
        box: a fixed ``(row_start, col_start, row_end, col_end)`` instead of the automatic search.
        allow_missing_keys: don't raise on missing keys.
        locate_kwargs: further arguments of :func:`locate_thorax` (e.g. ``shoulder_margin_mm``).
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = "image",
        roi_size: Sequence[int] = (256, 256),
        box: Sequence[int] | None = None,
        allow_missing_keys: bool = False,
        **locate_kwargs,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.source_key = source_key
        self.roi_size = (int(roi_size[0]), int(roi_size[1]))
        self.box = None if box is None else tuple(int(b) for b in box)
        self.locate_kwargs = locate_kwargs
        # one Crop instance: the applied-operations entry it records is matched to it on inverse
        self.cropper = Crop()

    def find_box(self, image: torch.Tensor) -> Box:
        """The window for one ``(C, rows, cols)`` image (channels summed)."""
        path = image.meta.get("filename_or_obj") if isinstance(image, MetaTensor) else None
        rows, cols = image.shape[-2:]
        if self.box is not None:
            r0, c0, r1, c1 = self.box
            if not (0 <= r0 < r1 <= rows and 0 <= c0 < c1 <= cols):
                raise BoneScanError(path, f"fixed thorax box {list(self.box)} is outside the {rows} x {cols} image")
            return self.box
        counts = torch.as_tensor(image).detach().float().sum(dim=0).cpu().numpy()
        # the affine, not meta["pixel_spacing"]: after a Spacingd resampling only the affine is current
        row_mm = float(affine_to_spacing(image.affine, r=2)[0]) if isinstance(image, MetaTensor) else DEFAULT_SPACING[0]
        return locate_thorax(counts, self.roi_size, row_mm=row_mm, path=path, **self.locate_kwargs)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        r0, c0, r1, c1 = self.find_box(d[self.source_key])
        for key in self.key_iterator(d):
            out = self.cropper(d[key], (slice(r0, r1), slice(c0, c1)))
            if isinstance(out, MetaTensor):
                out.meta["thorax_box"] = [r0, c0, r1, c1]
            d[key] = out
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            out = self.cropper.inverse(d[key])
            out.meta.pop("thorax_box", None)
            d[key] = out
        return d
