"""Lesion-level detection (connected components matched one-to-one per image) on hand-built masks with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from msanet_monai.metrics import (
    DEFAULT_MIN_IOU,
    LESION_COUNT_NAMES,
    LesionDetectionMetric,
    clustered_lesions,
    label_lesions,
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
    # two 1-px lesions under one 18-px blob: IoU 1/18 each, below 0.1: no match, one FP, one merged error
    truth = _mask(pixels=[(5, 5), (5, 8)])
    pred = _mask(boxes=[(4, 7, 4, 10)])
    c = _counts(pred, truth)
    assert (c["truth"], c["detected"], c["predicted"], c["false_positives"]) == (2, 0, 1, 1)
    assert (c["merged"], c["merged_lesions"]) == (1, 2)


def test_merged_component_is_matched_to_one_lesion_only():
    # two 3x3 lesions one column apart, one 3x7 blob over both: IoU 9/21 with each; it matches one
    truth = _mask(boxes=[(4, 7, 4, 7), (4, 7, 8, 11)])
    pred = _mask(boxes=[(4, 7, 4, 11)])
    m = match_lesions(pred, truth)
    assert m.iou.ravel() == pytest.approx([9 / 21, 9 / 21])
    assert len(m.pairs) == 1 and m.merged.tolist() == [True] and m.merged_truth.tolist() == [True, True]
    c = _counts(pred, truth)
    assert (c["truth"], c["detected"], c["false_positives"], c["merged"], c["merged_lesions"]) == (2, 1, 0, 1, 2)


def test_all_foreground_prediction_cannot_score():
    # five lesions of a 64 x 64 crop, each < 10 % of it; the whole crop marked as lesion
    truth = _mask((64, 64), boxes=[(2, 5, 2, 5), (10, 20, 10, 20), (40, 44, 40, 50)], pixels=[(60, 3), (30, 60)])
    pred = np.ones((64, 64), dtype=np.float32)
    c = _counts(pred, truth)
    s = summarise_lesion_counts(np.array([list(c.values())]))
    assert s["sensitivity"] == 0.0 and s["fp_per_image"] == 1.0
    assert (c["merged"], c["merged_lesions"]) == (1, 5)
    # a lesion covering more than 10 % of the crop is matched, and only that one: 1 of 6, not 6 of 6
    truth[30:60, 15:35] = 1  # 600 px of 4096, apart from the others: IoU 0.146
    c = _counts(pred, truth)
    assert (c["truth"], c["detected"], c["false_positives"], c["merged"]) == (6, 1, 0, 1)
    assert c["detected"] / c["truth"] < 0.2


def test_assignment_maximises_matches_over_greedy_choice():
    # T1 40 px, T2 16 px; blob A over the right of T1 and all of T2, blob B over the left of T1.
    # Greedy by best IoU would pair A-T1 (0.375) and leave T2 missed and B a false positive;
    # the assignment maximising the summed IoU pairs B-T1 (0.2) and A-T2 (1/3): two detections.
    truth = _mask(boxes=[(0, 4, 0, 10), (0, 4, 12, 16)])
    pred = _mask(boxes=[(0, 4, 0, 2), (0, 4, 4, 16)])
    m = match_lesions(pred, truth)
    assert m.iou == pytest.approx(np.array([[0.2, 0.375], [0.0, 1 / 3]]))
    assert sorted(map(tuple, m.pairs.tolist())) == [(0, 0), (1, 1)]
    c = _counts(pred, truth)
    assert (c["detected"], c["false_positives"], c["merged"]) == (2, 0, 1)


def test_split_lesion_is_one_detection_and_one_false_positive():
    truth = _mask(boxes=[(10, 14, 10, 20)])
    pred = _mask(boxes=[(10, 14, 10, 13), (10, 14, 17, 20)])  # two pieces inside the one truth lesion
    m = match_lesions(pred, truth)
    assert len(m.truth_areas) == 1 and len(m.pred_areas) == 2
    c = _counts(pred, truth)
    assert (c["truth"], c["detected"], c["predicted"], c["false_positives"], c["merged"]) == (1, 1, 2, 1, 0)


def test_clustered_rule():
    # A and B: closest pixels 5 px apart in a row (4 background pixels between): clustered;
    # C: 6 px below B: not clustered by B; D: diagonal from C at sqrt(3^2 + 3^2) = 4.24 px: clustered
    # with C; E: alone in a corner
    truth = _mask(
        (40, 40),
        boxes=[(2, 5, 2, 5), (2, 5, 9, 12)],  # A, B: cols 4 -> 9
        pixels=[(10, 10), (13, 13), (36, 36)],  # C (row 10, 6 px under B's row 4), D, E
    )
    labels, n = label_lesions(truth)
    assert n == 5
    assert clustered_lesions(labels, n, 5.0).tolist() == [True, True, True, True, False]
    assert clustered_lesions(labels, n, 4.5).tolist() == [False, False, True, True, False]
    c = _counts(truth, truth)
    assert (c["truth_clustered"], c["truth_single"], c["detected_clustered"], c["detected_single"]) == (4, 1, 4, 1)
    c = _counts(_mask((40, 40), boxes=[(2, 5, 2, 5)], pixels=[(36, 36)]), truth)
    assert (c["detected_clustered"], c["detected_single"]) == (1, 1)
    s = summarise_lesion_counts(np.array([list(c.values())]))
    assert s["sensitivity_clustered"] == 0.25 and s["sensitivity_single"] == 1.0


def test_false_positives_on_normal_images_reported_apart():
    metric = LesionDetectionMetric()
    truth = torch.as_tensor(np.stack([_mask(), _mask(), _mask(boxes=[(2, 5, 2, 5)])]))
    pred = torch.as_tensor(
        np.stack([_mask(pixels=[(1, 1), (20, 20)]), _mask(), _mask(boxes=[(2, 5, 2, 5)], pixels=[(30, 30)])])
    )
    metric(pred[:, None], truth[:, None])
    s = metric.aggregate()
    assert (s["images"], s["normal_images"]) == (3, 2)
    assert s["fp_per_image"] == 1.0  # 3 false positives in 3 images
    assert s["fp_per_normal_image"] == 1.0  # 2 on the 2 normal images
    assert s["normal_images_with_fp"] == 0.5
    assert s["sensitivity"] == 1.0


def test_diagonal_pixels_are_one_lesion():
    truth = _mask(pixels=[(5, 5), (6, 6), (7, 7)])
    m = match_lesions(truth, truth)
    assert m.truth_areas.tolist() == [3]
    assert m.iou.tolist() == [[1.0]]


def test_iou_threshold():
    truth = _mask(pixels=[(5, 5)])
    pred = _mask(boxes=[(4, 8, 4, 8)])  # 16 px covering the 1-px lesion: IoU 1/16
    assert match_lesions(pred, truth).iou[0, 0] == pytest.approx(1 / 16)
    assert DEFAULT_MIN_IOU == 0.1
    default = _counts(pred, truth)
    assert (default["detected"], default["false_positives"]) == (0, 1)
    lenient = _counts(pred, truth, min_iou=0.05)
    assert (lenient["detected"], lenient["false_positives"]) == (1, 0)
    # a pair that shares no pixel never matches, even with min_iou 0
    assert _counts(_mask(pixels=[(20, 20)]), truth, min_iou=0.0)["detected"] == 0


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
    with pytest.raises(ValueError, match="min_iou"):
        LesionDetectionMetric(min_iou=1.5)
    with pytest.raises(ValueError, match="cluster_distance"):
        LesionDetectionMetric(cluster_distance=0.5)
