"""The multi-run protocol: figures of each run, their aggregation, and the CLI on tiny bundle runs."""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest

from msanet_monai.protocol import FIGURES, aggregate_runs, bundle_command, main, run_figures


def _summary(dice: float, precision: float, recall: float, sens: float | None, fp: float) -> dict:
    # the layout EvaluationReportSaver writes (tests/test_evaluate_report.py checks that side)
    return {
        "pixel_scores": {
            "dice": {"mean": dice, "std": 0.1},
            "precision": {"mean": precision, "std": 0.1},
            "recall": {"mean": recall, "std": 0.1},
        },
        "lesion_detection": {"sensitivity": sens, "sensitivity_small": None, "fp_per_image": fp},
    }


def test_run_figures_reads_summary_and_maps_null_to_nan():
    figures = run_figures(_summary(0.6, 0.7, 0.5, 0.8, 1.5))
    assert [name for name, _ in FIGURES] == list(figures)
    assert (figures["dice"], figures["precision"], figures["recall"]) == (0.6, 0.7, 0.5)
    assert figures["lesion_sensitivity"] == 0.8 and figures["lesion_fp_per_image"] == 1.5
    assert math.isnan(figures["lesion_sensitivity_small"]) and math.isnan(figures["lesion_sensitivity_large"])


def test_aggregate_mean_and_sample_sd_over_runs():
    dice = [0.60, 0.70, 0.65, 0.62, 0.68]
    sens = [0.5, None, 0.7, 0.6, None]  # runs without a defined figure are left out of that figure only
    runs = {42 + i: run_figures(_summary(d, 0.7, 0.6, s, 1.0)) for i, (d, s) in enumerate(zip(dice, sens))}
    agg = aggregate_runs(runs)
    assert agg["dice"]["mean"] == pytest.approx(np.mean(dice))
    assert agg["dice"]["sd"] == pytest.approx(np.std(dice, ddof=1)) and agg["dice"]["n"] == 5
    assert agg["lesion_sensitivity"]["mean"] == pytest.approx(0.6) and agg["lesion_sensitivity"]["n"] == 3
    assert agg["lesion_sensitivity"]["sd"] == pytest.approx(0.1)
    assert agg["precision"]["sd"] == pytest.approx(0.0)
    assert agg["lesion_sensitivity_small"]["n"] == 0 and math.isnan(agg["lesion_sensitivity_small"]["mean"])
    one = aggregate_runs({42: runs[42]})
    assert one["dice"]["mean"] == 0.60 and math.isnan(one["dice"]["sd"])


def test_bundle_command_separates_runs(tmp_path):
    a = bundle_command("training", ["configs/train.json", "configs/quick.json"], 42, str(tmp_path / "seed_42"))
    b = bundle_command("training", ["configs/train.json", "configs/quick.json"], 43, str(tmp_path / "seed_43"))
    assert a[a.index("--config_file") + 1] == "['configs/train.json','configs/quick.json']"
    assert a[a.index("--seed") + 1] == "42" and b[b.index("--seed") + 1] == "43"
    assert a[a.index("--ckpt_dir") + 1] != b[b.index("--ckpt_dir") + 1]
    assert a[a.index("--output_dir") + 1] == os.path.join(str(tmp_path / "seed_42"), "eval")


def test_failed_run_is_reported(tmp_path, capsys):
    # a run that cannot start (missing config) is reported with its log, not raised; the exit code says so
    code = main(["--seeds", "42", "--config", "configs/no_such.json", "--out-dir", str(tmp_path), "--evaluate-only"])
    assert code == 1
    with open(tmp_path / "protocol_summary.json") as f:
        protocol = json.load(f)
    assert list(protocol["failed"]) == ["42"] and "no_such.json" in protocol["failed"]["42"]
    assert protocol["aggregate"]["dice"]["n"] == 0 and protocol["aggregate"]["dice"]["mean"] is None
    with open(tmp_path / "protocol_runs.csv") as f:
        assert list(csv.reader(f)) == [["seed", *(name for name, _ in FIGURES)]]
    assert "failed seeds: [42]" in capsys.readouterr().err
