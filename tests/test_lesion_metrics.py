"""Pixel scores and lesion-level detection on hand-built masks with known answers."""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import SupervisedEvaluator
from monai.handlers import IgniteMetricHandler, MetricsSaver, from_engine
from monai.metrics import DiceMetric

from msanet_monai.metrics import (
    LESION_COUNT_NAMES,
    LesionDetection,
    LesionDetectionMetric,
    LesionReportSaver,
    PixelScore,
    PixelScoreMetric,
    match_lesions,
    size_class,
    summarise_lesion_counts,
)


def _mask(shape=(32, 32), boxes=(), pixels=()) -> np.ndarray:
    """Binary mask with filled boxes ``(r0, r1, c0, c1)`` (ends exclusive) and single pixels ``(r, c)``."""
    m = np.zeros(shape, dtype=np.float32)
    for r0, r1, c0, c1 in boxes:
        m[r0:r1, c0:c1] = 1
    for r, c in pixels:
        m[r, c] = 1
    return m


def _counts(pred: np.ndarray, truth: np.ndarray, **kwargs) -> dict[str, float]:
    metric = LesionDetectionMetric(**kwargs)
    metric(torch.as_tensor(pred)[None, None], torch.as_tensor(truth)[None, None])
    return dict(zip(LESION_COUNT_NAMES, metric.get_buffer()[0].tolist()))


def _pixel_scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    p, t = torch.as_tensor(pred)[None, None], torch.as_tensor(truth)[None, None]
    dice = DiceMetric(include_background=True, ignore_empty=False, reduction="none")(p, t).item()
    precision, recall = PixelScoreMetric("precision"), PixelScoreMetric("recall")
    precision(p, t)
    recall(p, t)
    return dice, precision.scores().item(), recall.scores().item()


# --- pixel scores (paper eqs. 7-9) and the empty-mask rule -------------------------------------------


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


# --- lesion matching ---------------------------------------------------------------------------------


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


# --- handlers inside a MONAI evaluator ----------------------------------------------------------------


def test_handlers_in_evaluator(tmp_path):
    """An identity "network" passes hand-built predictions through a real SupervisedEvaluator."""
    cases = {
        "both_empty": (_mask(), _mask()),
        "miss": (_mask(), _mask(boxes=[(2, 5, 2, 5)])),
        "false_positive": (_mask(pixels=[(7, 7)]), _mask()),
        "two_in_one": (_mask(boxes=[(4, 7, 4, 10)]), _mask(pixels=[(5, 5), (5, 8)])),
        "half": (_mask(boxes=[(4, 8, 6, 10)]), _mask(boxes=[(4, 8, 4, 8)])),
    }
    data = [
        {
            "image": MetaTensor(torch.as_tensor(p)[None], meta={"filename_or_obj": name}),
            "label": MetaTensor(torch.as_tensor(t)[None], meta={"filename_or_obj": name}),
        }
        for name, (p, t) in cases.items()
    ]
    out = str(tmp_path / "eval")
    to_pair = from_engine(["pred", "label"])
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=2),
        network=torch.nn.Identity(),
        key_val_metric={
            "dice": IgniteMetricHandler(
                metric_fn=DiceMetric(include_background=True, ignore_empty=False), output_transform=to_pair
            )
        },
        additional_metrics={
            "precision": PixelScore("precision", output_transform=to_pair),
            "recall": PixelScore("recall", output_transform=to_pair),
            "lesion": LesionDetection(output_transform=to_pair),
        },
        val_handlers=[
            MetricsSaver(
                save_dir=out,
                metric_details=["dice", "precision", "recall"],
                batch_transform=lambda batch: [x["image"].meta for x in batch],
                summary_ops=["mean", "std"],
            ),
            LesionReportSaver(save_dir=out, metric_name="lesion", batch_transform=lambda b: [x["label"].meta for x in b]),
        ],
    )
    evaluator.run()

    expected_dice = [1.0, 0.0, 0.0, 2 * 2 / (18 + 2), 0.5]
    expected_precision = [1.0, 0.0, 0.0, 2 / 18, 0.5]
    expected_recall = [1.0, 0.0, 0.0, 1.0, 0.5]
    metrics = evaluator.state.metrics
    assert metrics["dice"] == pytest.approx(np.mean(expected_dice))
    assert metrics["precision"] == pytest.approx(np.mean(expected_precision))
    assert metrics["recall"] == pytest.approx(np.mean(expected_recall))
    # lesions: truths 0, 1, 0, 2, 1 -> detected 0, 0, 0, 2, 1; one false positive in five images
    assert metrics["lesion"] == pytest.approx(3 / 4) and metrics["lesion_sensitivity"] == metrics["lesion"]
    assert metrics["lesion_fp_per_image"] == pytest.approx(1 / 5)
    assert metrics["lesion_truth_lesions_small"] == 3 and metrics["lesion_truth_lesions_medium"] == 1

    for name, expected in (("dice", expected_dice), ("precision", expected_precision), ("recall", expected_recall)):
        with open(os.path.join(out, f"{name}_raw.csv")) as f:
            rows = list(csv.DictReader(f))
        assert [r["filename"] for r in rows] == list(cases)
        assert [float(r["class0"]) for r in rows] == pytest.approx(expected, abs=1e-4)
        with open(os.path.join(out, f"{name}_summary.csv")) as f:
            summary = {r["class"]: r for r in csv.DictReader(f)}
        assert float(summary["class0"]["mean"]) == pytest.approx(np.mean(expected), abs=1e-4)
        assert float(summary["class0"]["std"]) == pytest.approx(np.std(expected), abs=1e-4)
    with open(os.path.join(out, "metrics.csv")) as f:
        saved = dict(line.strip().split(",", 1) for line in f)
    assert float(saved["lesion_fp_per_image"]) == pytest.approx(0.2)

    with open(os.path.join(out, "lesion_per_image.csv")) as f:
        rows = {r["filename"]: r for r in csv.DictReader(f)}
    assert list(rows) == list(cases)
    assert (rows["two_in_one"]["truth"], rows["two_in_one"]["detected"], rows["two_in_one"]["sensitivity"]) == (
        "2",
        "2",
        "1.0000",
    )
    assert rows["false_positive"]["false_positives"] == "1" and rows["false_positive"]["sensitivity"] == ""
    assert rows["miss"]["detected"] == "0" and rows["miss"]["truth_medium"] == "0" and rows["miss"]["truth_small"] == "1"
