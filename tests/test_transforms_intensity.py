"""ScaleCounts: count-level invariance on the real NM1 scan, empty views, bad values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from msanet_monai.errors import BoneScanError
from msanet_monai.io import read_bone_scan
from msanet_monai.transforms import ScaleCounts, ScaleCountsd


@pytest.fixture(scope="module")
def nm1(nm1_scan):
    pytest.importorskip("pylibjpeg")
    return read_bone_scan(nm1_scan)


def _block_means(x: torch.Tensor, block: int = 16) -> torch.Tensor:
    return torch.nn.functional.avg_pool2d(torch.as_tensor(x)[None].float(), block)[0]


def test_exact_count_scale_invariance(nm1):
    scale = ScaleCounts()
    reference = scale(nm1)
    for factor in (0.2, 3.0):
        torch.testing.assert_close(scale(nm1 * factor), reference, rtol=1e-4, atol=1e-5)
    assert reference.min() >= 0 and reference.max() <= scale.clip_max
    # normal bone about 1: the reference is a bone level, not the hottest pixel
    assert 1.5 < float(reference.max()) < 4.0 and isinstance(reference, MetaTensor)
    assert reference.meta["filename_or_obj"] == nm1.meta["filename_or_obj"]


def test_poisson_count_levels_give_nearly_the_same_input(nm1):
    """Rescanning the NM1 distribution at 0.2x and 5x the counts: the scaled images agree region by region."""
    scale = ScaleCounts()
    rng = np.random.default_rng(42)
    expected = nm1[0].numpy()
    reference = _block_means(scale(nm1))
    body = reference > 0.1
    for factor in (0.2, 5.0):
        rescanned = torch.from_numpy(rng.poisson(expected * factor).astype(np.float32))[None]
        assert abs(scale.reference(rescanned) / factor / scale.reference(nm1) - 1) < 0.05
        blocks = _block_means(scale(rescanned))
        relative = (blocks[body] - reference[body]).abs() / reference[body]
        assert float(relative.median()) < 0.05


def test_empty_and_bad_values():
    zeros = ScaleCounts()(torch.zeros(1, 32, 16))
    assert torch.equal(zeros, torch.zeros(1, 32, 16))
    bad = MetaTensor(torch.ones(1, 8, 8), meta={"filename_or_obj": "scan.nii"})
    bad[0, 1, 1] = float("nan")
    with pytest.raises(BoneScanError, match="scan.nii: counts contain NaN"):
        ScaleCounts()(bad)
    with pytest.raises(ValueError, match="percentile"):
        ScaleCounts(percentile=0)


def test_dictionary_version(nm1):
    out = ScaleCountsd("image", percentile=99.0, clip_max=2.0)({"image": nm1, "view": "anterior"})
    torch.testing.assert_close(out["image"], ScaleCounts(percentile=99.0, clip_max=2.0)(nm1))
    assert float(out["image"].max()) == 2.0 and out["view"] == "anterior"
