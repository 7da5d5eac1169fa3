"""FROC summary over a threshold sweep on hand-built probability maps with hand-computed operating points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from msanet_monai.metrics import (
    LESION_COUNT_NAMES,
    LESION_GROUPS,
    LesionDetectionMetric,
    LesionFROCMetric,
    froc_summary,
    sensitivity_at_fp,
)
from _masks import box_mask as _mask

THRESHOLDS = (0.1, 0.25, 0.5, 0.7, 0.95)


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 32 x 32 images, ``(2, 1, 32, 32)`` probabilities and truth.

    Image 1: a small lesion S (2 x 2) at probability 0.3, a large lesion L (8 x 8) at 0.9, false hot
    spots at 0.6 and 0.2. Image 2 is normal (no lesion) with a false hot spot at 0.4.
    """
    truth1 = _mask(boxes=[(2, 4, 2, 4), (12, 20, 12, 20)])
    prob1 = (
        0.3 * _mask(boxes=[(2, 4, 2, 4)])
        + 0.9 * _mask(boxes=[(12, 20, 12, 20)])
        + 0.6 * _mask(boxes=[(26, 29, 2, 5)])
        + 0.2 * _mask(boxes=[(2, 5, 26, 29)])
    )
    prob2 = 0.4 * _mask(boxes=[(10, 13, 10, 13)])
    prob = torch.as_tensor(np.stack([prob1, prob2]))[:, None]
    truth = torch.as_tensor(np.stack([truth1, _mask()]))[:, None]
    return prob, truth


# by hand, per threshold: (FP per image, sensitivity, small, large)
#   0.1 : S, L found; FPs 0.6, 0.2 and image 2's 0.4 -> 3 FP / 2 images
#   0.25: S, L; FPs 0.6 and 0.4                      -> 2 / 2
#   0.5 : L; FP 0.6                                  -> 1 / 2
#   0.7 : L                                          -> 0
#   0.95: nothing                                    -> 0
EXPECTED_CURVE = [
    (1.5, 1.0, 1.0, 1.0),
    (1.0, 1.0, 1.0, 1.0),
    (0.5, 0.5, 0.0, 1.0),
    (0.0, 0.5, 0.0, 1.0),
    (0.0, 0.0, 0.0, 0.0),
]


def test_froc_points_match_hand_computed_values():
    prob, truth = _images()
    metric = LesionFROCMetric(thresholds=THRESHOLDS)
    metric(prob, truth)
    assert tuple(metric.get_buffer().shape) == (2, len(THRESHOLDS), len(LESION_COUNT_NAMES))
    result = metric.aggregate()
    curve = result["curve"]
    assert [p["threshold"] for p in curve] == list(THRESHOLDS)
    got = [(p["fp_per_image"], p["sensitivity"], p["sensitivity_small"], p["sensitivity_large"]) for p in curve]
    assert got == EXPECTED_CURVE
    assert all(math.isnan(p["sensitivity_medium"]) for p in curve)  # no medium lesion
    s = result["summary"]
    # 0.5 FP/image: the best with <= 0.5 is 0.5 (t = 0.5 and 0.7; the tie goes to fewer FPs: 0.7)
    assert (s["sensitivity_at_0.5fp"], s["threshold_at_0.5fp"]) == (0.5, 0.7)
    # 1, 2, 4 FP/image: t = 0.25 reaches every lesion at 1 FP/image; t = 0.1 (1.5) has no more
    assert (s["sensitivity_at_1fp"], s["threshold_at_1fp"]) == (1.0, 0.25)
    assert s["sensitivity_at_2fp"] == s["sensitivity_at_4fp"] == 1.0 and s["threshold_at_4fp"] == 0.25
    assert s["score"] == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert (s["sensitivity_small_at_0.5fp"], s["sensitivity_small_at_1fp"]) == (0.0, 1.0)
    assert s["sensitivity_large_at_0.5fp"] == 1.0 and s["score_large"] == 1.0
    assert math.isnan(s["sensitivity_medium_at_1fp"]) and math.isnan(s["score_medium"])
    assert s["sensitivity_single_at_1fp"] == 1.0 and math.isnan(s["sensitivity_clustered_at_1fp"])


def test_froc_point_at_the_bundle_threshold_equals_the_detection_figures():
    prob, truth = _images()
    froc = LesionFROCMetric(thresholds=THRESHOLDS)
    froc(prob, truth)
    detection = LesionDetectionMetric(threshold=0.5)
    detection(prob, truth)
    point = froc.aggregate()["curve"][THRESHOLDS.index(0.5)]
    figures = detection.aggregate()
    for key in ("fp_per_image", "sensitivity", "sensitivity_small", "sensitivity_large", "false_positives"):
        assert point[key] == figures[key], key
    assert torch.equal(froc.get_buffer()[:, THRESHOLDS.index(0.5)], detection.get_buffer())


def test_no_threshold_within_the_target_gives_zero():
    curve = [{"threshold": 0.1, "fp_per_image": 3.0, "sensitivity": 0.9}]
    assert sensitivity_at_fp(curve, 0.5)[0] == 0.0 and math.isnan(sensitivity_at_fp(curve, 0.5)[1])
    assert sensitivity_at_fp(curve, 4.0) == (0.9, 0.1)
    # no max-over-interpolation: a point between two operating points is not invented
    no_groups = {f"sensitivity_{g}": math.nan for g in LESION_GROUPS}
    curve = [
        {"threshold": 0.2, "fp_per_image": 3.0, "sensitivity": 1.0, **no_groups},
        {"threshold": 0.8, "fp_per_image": 0.0, "sensitivity": 0.0, **no_groups},
    ]
    assert sensitivity_at_fp(curve, 2.0)[0] == 0.0
    summary = froc_summary(curve, fp_targets=(2.0, 4.0))
    assert (summary["sensitivity_at_2fp"], summary["sensitivity_at_4fp"], summary["score"]) == (0.0, 1.0, 0.5)
    assert math.isnan(summary["score_small"])


def test_bad_sweeps_raise():
    with pytest.raises(ValueError, match="increasing"):
        LesionFROCMetric(thresholds=(0.5, 0.2))
    with pytest.raises(ValueError, match="increasing"):
        LesionFROCMetric(thresholds=(0.0, 0.5))
    with pytest.raises(ValueError, match="positive"):
        LesionFROCMetric(fp_targets=(0.0, 1.0))
    with pytest.raises(ValueError, match="no images"):
        LesionFROCMetric().aggregate()
