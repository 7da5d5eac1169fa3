"""Metric handlers and the evaluation report inside a real MONAI SupervisedEvaluator (known answers)."""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import SupervisedEvaluator
from monai.handlers import IgniteMetricHandler, MetricsSaver, from_engine
from monai.metrics import DiceMetric
from monai.transforms import AsDiscreted, Compose, CopyItemsd

from msanet_monai.metrics import (
    FROC_CURVE_COLUMNS,
    LESION_COLUMNS,
    EvaluationReportSaver,
    LesionDetection,
    LesionFROC,
    PixelScore,
)
from _masks import box_mask as _mask

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bundle", "configs")


# name -> (prediction, truth); the "network" is the identity, so the image (scaled to probability 0.8,
# thresholded at 0.5 by the postprocessing as in evaluate.json) is the prediction
CASES = {
    "both_empty": (_mask(), _mask()),
    "miss": (_mask(), _mask(boxes=[(2, 5, 2, 5)])),
    "false_positive": (_mask(pixels=[(7, 7)]), _mask()),
    "two_in_one": (_mask(boxes=[(4, 7, 4, 10)]), _mask(pixels=[(5, 5), (5, 8)])),
    "half": (_mask(boxes=[(4, 8, 6, 10)]), _mask(boxes=[(4, 8, 4, 8)])),
}
EXPECTED = {
    "dice": [1.0, 0.0, 0.0, 2 * 2 / (18 + 2), 0.5],
    "precision": [1.0, 0.0, 0.0, 2 / 18, 0.5],
    "recall": [1.0, 0.0, 0.0, 1.0, 0.5],
}


def _evaluate(out: str) -> SupervisedEvaluator:
    data = [
        {
            "image": MetaTensor(0.8 * torch.as_tensor(p)[None], meta={"filename_or_obj": name, "view": "anterior"}),
            "label": MetaTensor(torch.as_tensor(t)[None], meta={"filename_or_obj": name, "view": "anterior"}),
        }
        for name, (p, t) in CASES.items()
    ]
    to_pair = from_engine(["pred", "label"])
    metas = lambda batch: [x["image"].meta for x in batch]  # noqa: E731
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=2),
        network=torch.nn.Identity(),
        postprocessing=Compose([CopyItemsd(keys="pred", names="prob"), AsDiscreted(keys="pred", threshold=0.5)]),
        key_val_metric={
            "dice": IgniteMetricHandler(
                metric_fn=DiceMetric(include_background=True, ignore_empty=False), output_transform=to_pair
            )
        },
        additional_metrics={
            "precision": PixelScore("precision", output_transform=to_pair),
            "recall": PixelScore("recall", output_transform=to_pair),
            "lesion": LesionDetection(output_transform=to_pair),
            "froc": LesionFROC(thresholds=(0.5, 0.9), output_transform=from_engine(["prob", "label"])),
        },
        val_handlers=[
            MetricsSaver(
                save_dir=out,
                metric_details=["dice", "precision", "recall"],
                batch_transform=metas,
                summary_ops=["mean", "std"],
            ),
            EvaluationReportSaver(
                save_dir=out,
                froc_metric="froc",
                batch_transform=metas,
                settings={"threshold": 0.5},
                reference={"dice": 0.6671},
            ),
        ],
    )
    evaluator.run()
    return evaluator


def test_handlers_and_report_in_evaluator(tmp_path):
    out = str(tmp_path / "eval")
    evaluator = _evaluate(out)

    metrics = evaluator.state.metrics
    for name, expected in EXPECTED.items():
        assert metrics[name] == pytest.approx(np.mean(expected))
    # lesions: truths 0, 1, 0, 2, 1 -> detected 0, 0, 0, 0, 1 (the blob over two 1-px lesions has IoU
    # 1/18 with each: no match, a false positive, a merged error; "half" has IoU 8/24); FPs 0, 0, 1, 1, 0
    assert metrics["lesion"] == pytest.approx(1 / 4) and metrics["lesion_sensitivity"] == metrics["lesion"]
    assert metrics["lesion_fp_per_image"] == pytest.approx(2 / 5)
    assert metrics["lesion_truth_lesions_small"] == 3 and metrics["lesion_truth_lesions_medium"] == 1
    assert metrics["lesion_merged"] == 1 and metrics["lesion_truth_lesions_clustered"] == 2
    # normal images: both_empty (0 FP) and false_positive (1 FP)
    assert metrics["lesion_normal_images"] == 2 and metrics["lesion_fp_per_normal_image"] == 0.5
    # FROC: at 0.5 the same figures; at 0.9 (above every probability) nothing is predicted
    assert metrics["froc_sensitivity_at_0.5fp"] == 1 / 4 and metrics["froc_threshold_at_0.5fp"] == 0.5
    assert metrics["froc"] == pytest.approx(1 / 4)

    # MONAI's MetricsSaver receives the empty-mask-rule scores (not NaN, not raw confusion matrices)
    for name, expected in EXPECTED.items():
        with open(os.path.join(out, f"{name}_raw.csv")) as f:
            rows = list(csv.DictReader(f))
        assert [r["filename"] for r in rows] == list(CASES)
        assert [float(r["class0"]) for r in rows] == pytest.approx(expected, abs=1e-4)
    with open(os.path.join(out, "metrics.csv")) as f:
        saved = dict(line.strip().split(",", 1) for line in f)
    assert float(saved["lesion_fp_per_image"]) == pytest.approx(0.4)
    assert float(saved["froc_score"]) == pytest.approx(0.25)

    # the combined per-image CSV
    with open(os.path.join(out, "metrics_per_image.csv")) as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["filename", "view", "dice", "precision", "recall", *LESION_COLUMNS]
        rows = {r["filename"]: r for r in reader}
    assert list(rows) == list(CASES) and all(r["view"] == "anterior" for r in rows.values())
    for name, expected in EXPECTED.items():
        assert [float(r[name]) for r in rows.values()] == pytest.approx(expected, abs=1e-6)
    two = rows["two_in_one"]
    assert (two["lesion_truth"], two["lesion_tp"], two["lesion_fn"], two["lesion_fp"]) == ("2", "0", "2", "1")
    assert (two["lesion_merged"], two["lesion_merged_lesions"], two["lesion_truth_clustered"]) == ("1", "2", "2")
    assert (rows["half"]["lesion_tp"], rows["half"]["lesion_tp_single"]) == ("1", "1")
    miss = rows["miss"]
    assert (miss["lesion_truth_small"], miss["lesion_fn_small"], miss["lesion_truth_medium"]) == ("1", "1", "0")
    assert rows["false_positive"]["lesion_fp"] == "1" and rows["false_positive"]["lesion_fp_small"] == "1"

    # the summary: means equal the engine's metrics; undefined figures are null; settings kept
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert summary["images"] == 5
    for name, expected in EXPECTED.items():
        assert summary["pixel_scores"][name]["mean"] == pytest.approx(metrics[name])
        assert summary["pixel_scores"][name]["std"] == pytest.approx(np.std(expected))
    assert summary["lesion_detection"]["sensitivity"] == pytest.approx(0.25)
    assert summary["lesion_detection"]["sensitivity_large"] is None  # no large truth lesion: undefined, not 0
    assert summary["lesion_detection"]["sensitivity_medium"] == 1.0
    assert summary["lesion_detection"]["sensitivity_small"] == 0.0
    assert math.isclose(summary["lesion_detection"]["sensitivity_single"], 1 / 2)
    assert summary["lesion_detection"]["fp_per_normal_image"] == 0.5
    froc = summary["froc"]
    assert froc["thresholds"] == [0.5, 0.9] and froc["fp_targets"] == [0.5, 1.0, 2.0, 4.0]
    assert froc["sensitivity_at_1fp"] == 0.25 and froc["sensitivity_large_at_1fp"] is None
    with open(os.path.join(out, "froc.csv")) as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == list(FROC_CURVE_COLUMNS)
        curve = list(reader)
    assert [(r["threshold"], r["fp_per_image"], r["sensitivity"]) for r in curve] == [
        ("0.500000", "0.400000", "0.250000"),
        ("0.900000", "0", "0"),
    ]
    assert curve[0]["sensitivity_large"] == "" and curve[0]["merged"] == "1"
    assert not [n for n in os.listdir(out) if ".tmp" in n]  # written through temporary files, none left
    assert summary["settings"] == {"threshold": 0.5} and summary["reference"] == {"dice": 0.6671}


def test_report_names_missing_metric(tmp_path):
    to_pair = from_engine(["pred", "label"])
    p, t = CASES["half"]
    data = [{"image": torch.as_tensor(p)[None], "label": torch.as_tensor(t)[None]}]
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=1),
        network=torch.nn.Identity(),
        key_val_metric={"precision": PixelScore("precision", output_transform=to_pair)},
        val_handlers=[EvaluationReportSaver(save_dir=str(tmp_path), batch_transform=lambda b: [{} for _ in b])],
    )
    with pytest.raises(RuntimeError, match="'dice', 'recall', 'lesion'"):
        evaluator.run()


def test_training_validation_scores_empty_masks_as_the_evaluation_does():
    """train.json's validation metrics (which evaluate.json reuses) on the known cases: an image with
    nothing to find and nothing found scores 1, not NaN-and-skipped (MeanDice's default)."""
    parser = ConfigParser()
    parser.read_config(os.path.join(CONFIGS, "train.json"))
    metrics = _validate(parser, list(CASES.values()))
    for name, expected in (("val_mean_dice", "dice"), ("val_precision", "precision"), ("val_recall", "recall")):
        assert metrics[name] == pytest.approx(np.mean(EXPECTED[expected])), name
    # the key metric pools every pixel of the split: 2 TP / (2 TP + FP + FN) over all images at once
    pred = np.stack([p for p, _ in CASES.values()]).astype(bool)
    truth = np.stack([t for _, t in CASES.values()]).astype(bool)
    tp, fp, fn = (pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()
    assert metrics["val_global_dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def _validate(parser: ConfigParser, cases: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    data = [{"image": torch.as_tensor(p)[None], "label": torch.as_tensor(t)[None]} for p, t in cases]
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(data), batch_size=2),
        network=torch.nn.Identity(),
        key_val_metric=parser.get_parsed_content("validate#key_metric"),
        additional_metrics=parser.get_parsed_content("validate#additional_metrics"),
    )
    evaluator.run()
    return evaluator.state.metrics


def test_model_selection_does_not_reward_a_model_that_finds_nothing():
    """A generator that has collapsed to empty maps must not be kept as model.pt over one that finds the
    lesions with some false positives: under the per-image empty-mask rule it scores the share of
    lesion-free images (here 0.5, above the real segmenter's mean DSC), so the key metric is the pooled DSC."""
    parser = ConfigParser()
    parser.read_config(os.path.join(CONFIGS, "train.json"))
    lesion = _mask(boxes=[(4, 8, 4, 8)])
    found_with_fp = _mask(boxes=[(4, 8, 4, 8), (10, 12, 10, 12)])  # the lesion and a false positive
    empty = _mask()
    cases_real = [(found_with_fp, lesion), (found_with_fp, empty)] * 2
    cases_collapsed = [(empty, lesion), (empty, empty)] * 2
    real, collapsed = _validate(parser, cases_real), _validate(parser, cases_collapsed)
    assert collapsed["val_mean_dice"] > real["val_mean_dice"]  # why the per-image mean cannot select
    assert collapsed["val_global_dice"] == 0.0
    assert real["val_global_dice"] > 0.5
    assert list(parser.get_parsed_content("validate#key_metric")) == ["val_global_dice"]
    # a split without any lesion, nothing found: the empty-mask rule (1), not NaN (never "best")
    assert _validate(parser, [(empty, empty)] * 2)["val_global_dice"] == 1.0
