"""Per-image pixel precision and recall (paper eqs. 7-9) and the empty-mask rule, on hand-built masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric

from msanet_monai.metrics import PixelScoreMetric, fill_empty_scores
from _masks import box_mask as _mask


def _pixel_scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    p, t = torch.as_tensor(pred)[None, None], torch.as_tensor(truth)[None, None]
    dice = DiceMetric(include_background=True, ignore_empty=False, reduction="none")(p, t).item()
    precision, recall = PixelScoreMetric("precision"), PixelScoreMetric("recall")
    precision(p, t)
    recall(p, t)
    return dice, precision.scores().item(), recall.scores().item()


def test_pixel_scores_match_equations():
    truth = _mask(boxes=[(4, 8, 4, 8)])  # 16 px
    pred = _mask(boxes=[(4, 8, 6, 10)])  # 16 px, 8 overlap
    tp, fp, fn = 8, 8, 8
    dice, precision, recall = _pixel_scores(pred, truth)
    assert dice == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert precision == pytest.approx(tp / (tp + fp))
    assert recall == pytest.approx(tp / (tp + fn))
    pred2 = _mask(boxes=[(4, 8, 4, 6)])  # 8 px inside the truth: precision 1, recall 0.5
    assert _pixel_scores(pred2, truth) == pytest.approx((2 * 8 / (16 + 8), 1.0, 0.5))


@pytest.mark.parametrize(
    "pred_boxes, truth_boxes, expected",
    [
        ([], [], (1.0, 1.0, 1.0)),  # both empty: perfect agreement
        ([], [(2, 5, 2, 5)], (0.0, 0.0, 0.0)),  # empty prediction: precision 0/0 counts as 0
        ([(2, 5, 2, 5)], [], (0.0, 0.0, 0.0)),  # empty truth: recall 0/0 counts as 0
    ],
)
def test_pixel_scores_empty_masks(pred_boxes, truth_boxes, expected):
    assert _pixel_scores(_mask(boxes=pred_boxes), _mask(boxes=truth_boxes)) == pytest.approx(expected)


def test_pixel_score_metric_mean_over_images():
    preds = [_mask(), _mask(boxes=[(0, 2, 0, 2)]), _mask(boxes=[(0, 4, 0, 4)])]
    truths = [_mask(), _mask(boxes=[(0, 4, 0, 4)]), _mask(boxes=[(0, 4, 0, 2)])]
    p = torch.as_tensor(np.stack(preds))[:, None]
    t = torch.as_tensor(np.stack(truths))[:, None]
    metric = PixelScoreMetric("precision")
    metric(p[:2], t[:2])  # two iterations, accumulated
    metric(p[2:], t[2:])
    assert metric.scores().ravel().tolist() == pytest.approx([1.0, 1.0, 0.5])
    assert metric.aggregate().item() == pytest.approx(2.5 / 3)


def test_fill_empty_scores_keeps_defined_values():
    # confusion matrices (TP, FP, TN, FN): both empty, empty prediction, a defined ratio
    cm = torch.tensor([[[0, 0, 9, 0]], [[0, 0, 5, 4]], [[3, 1, 5, 0]]], dtype=torch.float32)
    scores = torch.tensor([[float("nan")], [float("nan")], [0.75]])
    assert fill_empty_scores(scores, cm).ravel().tolist() == [1.0, 0.0, 0.75]


def test_scores_before_any_image_raise():
    with pytest.raises(ValueError, match="no images"):
        PixelScoreMetric("recall").scores()
