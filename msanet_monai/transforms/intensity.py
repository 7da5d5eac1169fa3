"""Counts -> network input: divide by a robust high percentile of the view's own counts, then clip.

The count level of a bone scan varies by a factor of several between patients and scans (injected
activity, uptake time, table speed, body habitus), while what the network must read - bone against soft
tissue, hot spots against bone - is relative. Dividing by the view's own count level removes the
factor; the question is which level:

- the maximum is set by the hottest pixel: the bladder, the injection site or one hot lesion, and it
  carries the Poisson noise of a single pixel;
- the mean depends on how much of the field of view the body fills;
- a high percentile (99.5th) of the Gaussian-smoothed view (sigma 1 px) falls on normal bone (spine,
  pelvis, shoulders) in whole-body and thorax views alike; smoothing removes most of the Poisson noise,
  so the reference moves by about 1 % when the counts of the NEMA NM1 scan are resampled at 0.2 to 5
  times their level (``tests/test_transforms_intensity.py`` checks this).

After division normal bone is about 1 and soft tissue a few tenths; values are clipped to
``[0, clip_max]`` (4 by default) so that hot metastases (a few times bone uptake) keep their contrast
while the bladder and injection site (often 10-50 times bone) cannot dominate the input. An all-zero
view gives zeros, never NaN.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor, get_track_meta
from monai.transforms import GaussianSmooth, MapTransform, Transform
from monai.utils import TransformBackends, convert_to_tensor

from msanet_monai.errors import BoneScanError

__all__ = ["ScaleCounts", "ScaleCountsd"]


# not monai.transforms.ScaleIntensityRangePercentiles: it takes the percentile of the raw pixels, whose
# Poisson noise moves the reference with the count level; here it is taken on the smoothed view
class ScaleCounts(Transform):
    """Scale raw counts ``(C, rows, cols)`` to ``clip(counts / reference, 0, clip_max)`` (float32).

    ``reference`` is the ``percentile``-th percentile of the view smoothed with a Gaussian of ``sigma``
    pixels (see the module docstring for why). Channels share one reference.

    Args:
        percentile: percentile of the smoothed view used as the count level of normal bone.
        sigma: Gaussian smoothing (pixels) applied before taking the percentile (not to the output).
        clip_max: upper clip of the scaled values.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, percentile: float = 99.5, sigma: float = 1.0, clip_max: float = 4.0) -> None:
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        self.percentile = float(percentile)
        self.clip_max = float(clip_max)
        self.smooth = GaussianSmooth(sigma=sigma) if sigma > 0 else None

    def reference(self, img: torch.Tensor) -> float:
        """Count level of normal bone in ``img`` (0 for an all-zero view)."""
        smoothed = self.smooth(img) if self.smooth is not None else img
        return float(torch.quantile(torch.as_tensor(smoothed).float().flatten(), self.percentile / 100.0))

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        img = convert_to_tensor(img, track_meta=get_track_meta(), dtype=torch.float32)
        if not torch.isfinite(img).all():
            path = img.meta.get("filename_or_obj") if isinstance(img, MetaTensor) else None
            raise BoneScanError(path, "counts contain NaN or infinite values; cannot scale them")
        ref = self.reference(img)
        if ref <= 0:
            return torch.zeros_like(img)  # an empty view: nothing to scale, and no division by zero
        return (img / ref).clamp(0.0, self.clip_max)


class ScaleCountsd(MapTransform):
    """Dictionary wrapper of :class:`ScaleCounts` (each key scaled by its own reference).

    Args:
        keys: keys of the count images, typically ``"image"``.
        percentile, sigma, clip_max: see :class:`ScaleCounts`.
        allow_missing_keys: don't raise on missing keys.
    """

    backend = ScaleCounts.backend

    def __init__(
        self,
        keys: KeysCollection,
        percentile: float = 99.5,
        sigma: float = 1.0,
        clip_max: float = 4.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.scaler = ScaleCounts(percentile=percentile, sigma=sigma, clip_max=clip_max)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.scaler(d[key])
        return d
