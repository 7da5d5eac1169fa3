"""Lesion-level detection (connected components matched per image) on hand-built masks with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from msanet_monai.metrics import (
    LESION_COUNT_NAMES,
    LesionDetectionMetric,
    match_lesions,
    size_class,
    summarise_lesion_counts,
)
from _masks import box_mask as _mask


def _counts(pred: np.ndarray, truth: np.ndarray, **kwargs) -> dict[str, float]:
    metric = LesionDetectionMetric(**kwargs)
    metric(torch.as_tensor(pred)[None, None], torch.as_tensor(truth)[None, None])
    return dict(zip(LESION_COUNT_NAMES, metric.get_buffer()[0].tolist()))


def test_exact_match_and_false_positive():
    truth = _mask(boxes=[(2, 4, 2, 4), (20, 25, 20, 25)])
    pred = _mask(boxes=[(2, 4, 2, 4), (10, 12, 28, 30)])  # finds the first, misses the second, one FP
    c = _counts(pred, truth)
    assert (c["truth"], c["detected"], c["predicted"], c["false_positives"]) == (2, 1, 2, 1)
    assert (c["truth_small"], c["truth_medium"], c["detected_small"], c["detected_medium"]) == (1, 1, 1, 0)
    assert c["false_positives_small"] == 1


def test_empty_prediction():
    c = _counts(_mask(), _mask(boxes=[(2, 4, 2, 4)], pixels=[(20, 20)]))
    assert (c["truth"], c["detected"], c["predicted"], c["false_positives"]) == (2, 0, 0, 0)


def test_empty_truth():
    c = _counts(_mask(boxes=[(2, 4, 2, 4), (10, 20, 10, 20)], pixels=[(30, 30)]), _mask())
    assert (c["truth"], c["detected"], c["predicted"], c["false_positives"]) == (0, 0, 3, 3)
    assert (c["false_positives_small"], c["false_positives_medium"], c["false_positives_large"]) == (2, 0, 1)
    summary = summarise_lesion_counts(np.array([list(c.values())]))
    assert math.isnan(summary["sensitivity"]) and summary["fp_per_image"] == 3.0


def test_both_empty():
    c = _counts(_mask(), _mask())
    assert all(v == 0 for v in c.values())


def test_one_prediction_covering_two_truths():
    truth = _mask(pixels=[(5, 5), (5, 8)])
    pred = _mask(boxes=[(4, 7, 4, 10)])
    c = _counts(pred, truth)
    assert (c["truth"], c["detected"], c["predicted"], c["false_positives"]) == (2, 2, 1, 0)


def test_split_lesion_is_one_detection_without_false_positive():
    truth = _mask(boxes=[(10, 14, 10, 20)])
    pred = _mask(boxes=[(10, 14, 10, 13), (10, 14, 17, 20)])  # two pieces inside the one truth lesion
    m = match_lesions(pred, truth)
    assert len(m.truth_areas) == 1 and len(m.pred_areas) == 2
    c = _counts(pred, truth)
    assert (c["truth"], c["detected"], c["predicted"], c["false_positives"]) == (1, 1, 2, 0)


def test_diagonal_pixels_are_one_lesion():
    truth = _mask(pixels=[(5, 5), (6, 6), (7, 7)])
    m = match_lesions(truth, truth)
    assert m.truth_areas.tolist() == [3]
    assert m.iou.tolist() == [[1.0]]


def test_iou_threshold():
    truth = _mask(pixels=[(5, 5)])
    pred = _mask(boxes=[(4, 8, 4, 8)])  # 16 px covering the 1-px lesion: IoU 1/16
    assert match_lesions(pred, truth).iou[0, 0] == pytest.approx(1 / 16)
    assert _counts(pred, truth)["detected"] == 1
    strict = _counts(pred, truth, min_iou=0.1)
    assert (strict["detected"], strict["false_positives"]) == (0, 1)


def test_probabilities_are_thresholded_at_half():
    truth = _mask(boxes=[(2, 4, 2, 4)])
    pred = truth * 0.5 + _mask(boxes=[(10, 12, 10, 12)]) * 0.49  # first box exactly 0.5 (lesion), second below
    c = _counts(pred, truth)
    assert (c["detected"], c["predicted"], c["false_positives"]) == (1, 1, 0)


def test_size_classes():
    assert size_class(np.array([1, 9, 10, 63, 64, 700])).tolist() == [0, 0, 1, 1, 2, 2]
    assert size_class(np.array([4, 5, 20]), size_thresholds=(5, 20)).tolist() == [0, 1, 2]


def test_summary_pools_lesions_over_images():
    metric = LesionDetectionMetric()
    truth = torch.as_tensor(np.stack([_mask(pixels=[(1, 1), (9, 9), (20, 20)]), _mask(boxes=[(0, 10, 0, 10)])]))
    pred = torch.as_tensor(np.stack([_mask(pixels=[(1, 1), (30, 30)]), _mask(boxes=[(0, 10, 0, 10)])]))
    metric(pred[:, None], truth[:, None])
    s = metric.aggregate()
    assert s["sensitivity"] == pytest.approx(2 / 4)  # pooled: 1 of 3 + 1 of 1, not mean(1/3, 1)
    assert s["sensitivity_small"] == pytest.approx(1 / 3)
    assert s["sensitivity_large"] == 1.0 and math.isnan(s["sensitivity_medium"])
    assert s["fp_per_image"] == 0.5 and s["images"] == 2


def test_bad_shapes_raise():
    metric = LesionDetectionMetric()
    with pytest.raises(ValueError):
        metric(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError):
        metric(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8))
