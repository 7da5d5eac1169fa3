"""`monai.bundle run evaluating` and the multi-run protocol on a tiny bundle run over the synthetic fixture.

One module fixture runs the protocol CLI for one seed (a real tiny training through
`monai.bundle run training`, then `run evaluating`, both as subprocesses); the tests read what it wrote
and evaluate its model again in-process. Two seeds take about twice as long (see bundle/docs/evaluation.md).
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.bundle import run as bundle_run
from scipy import ndimage

from msanet_monai.datalist import load_datalist
from msanet_monai.protocol import aggregate_runs, run_figures
from msanet_monai.protocol import main as protocol_main

BUNDLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bundle")
QUICK = ["configs/train.json", "configs/quick.json"]
# one epoch with its validation (so models/model.pt is written), no worker processes
TINY = ["--num_epochs", "1", "--val_interval", "1", "--num_workers", "0"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_dataset):
    out = tmp_path_factory.mktemp("protocol")
    # the evaluation also runs on a small real-background set (the NM1 scan and one variant), in the run's folder
    real = ["--real_background_dir", str(out / "real_background"), "--real_background_scans", "1"]
    args = ["--seeds", "42", "--config", *QUICK, "--out-dir", str(out), "--datalist", synthetic_dataset, *TINY, *real]
    code = protocol_main(args)
    return out, code, synthetic_dataset


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _evaluate_in_process(run_dir: str, datalist: str, config_files, **overrides) -> None:
    cwd = os.getcwd()
    os.chdir(BUNDLE)  # configs and meta file are bundle-relative, as on the command line
    try:
        bundle_run(
            "evaluating",
            meta_file="configs/metadata.json",
            config_file=[*config_files, "configs/evaluate.json"],
            datalist=datalist,
            ckpt_dir=os.path.join(run_dir, "models"),
            num_workers=0,
            evaluate_real_background=False,  # the synthetic section only (the protocol run above evaluated both)
            **overrides,
        )
    finally:
        os.chdir(cwd)


def test_protocol_run(runs):
    out, code, _ = runs
    assert code == 0
    rows = _read_csv(out / "protocol_runs.csv")
    assert [r["seed"] for r in rows] == ["42"]
    with open(out / "protocol_summary.json") as f:
        protocol = json.load(f)
    with open(out / "seed_42" / "eval" / "summary.json") as f:
        summary = json.load(f)
    assert protocol["failed"] == {} and protocol["aggregate"]["dice"]["n"] == 1
    assert protocol["aggregate"]["dice"]["mean"] == pytest.approx(summary["pixel_scores"]["dice"]["mean"])
    assert float(rows[0]["recall"]) == pytest.approx(summary["pixel_scores"]["recall"]["mean"], abs=1e-4)
    assert protocol["reference"]["dice"] == 0.6671
    # the run kept to its own folder: its generator, its full checkpoint, its logs
    assert (out / "seed_42" / "models" / "model.pt").exists()
    assert list((out / "seed_42" / "models").glob("checkpoint_epoch=*.pt"))
    assert (out / "seed_42" / "train.log").exists() and (out / "seed_42" / "evaluate.log").exists()
    # beside the synthetic test section: the real-background section, naming the untouched real scan
    with open(out / "seed_42" / "eval" / "real_background" / "summary.json") as f:
        real = json.load(f)
    assert real["images"] == 2 and real["named_images"]["untouched_real_scan"]["lesion_truth"] == 0
    with open(out / "seed_42" / "evaluate.log") as f:
        assert "real background: untouched_real_scan (REAL0000.dcm):" in f.read()


def test_evaluation_outputs(runs):
    out, _, datalist = runs
    test_items = load_datalist(datalist, "test")
    eval_dir = out / "seed_42" / "eval"
    rows = _read_csv(eval_dir / "metrics_per_image.csv")
    assert len(rows) == len(test_items)
    assert [(os.path.basename(r["filename"]), r["view"]) for r in rows] == [
        (os.path.basename(i["image"]), i["view"]) for i in test_items
    ]
    for r in rows:
        assert all(0.0 <= float(r[m]) <= 1.0 for m in ("dice", "precision", "recall"))
        for size in ("", "_small", "_medium", "_large"):
            assert int(r[f"lesion_tp{size}"]) + int(r[f"lesion_fn{size}"]) == int(r[f"lesion_truth{size}"])
        assert sum(int(r[f"lesion_truth_{s}"]) for s in ("small", "medium", "large")) == int(r["lesion_truth"])
        if r["lesion_truth"] == "0" and r["lesion_fp"] == "0":  # nothing to find, nothing found
            assert float(r["dice"]) == 1.0
    assert sum(int(r["lesion_truth"]) for r in rows) > 0  # the fixture's test split holds lesions
    with open(eval_dir / "summary.json") as f:
        summary = json.load(f)
    assert summary["images"] == len(rows)
    for m in ("dice", "precision", "recall"):
        assert summary["pixel_scores"][m]["mean"] == pytest.approx(np.mean([float(r[m]) for r in rows]), abs=1e-5)
    lesions = summary["lesion_detection"]
    assert lesions["truth_lesions"] == sum(int(r["lesion_truth"]) for r in rows)
    assert lesions["fp_per_image"] == pytest.approx(sum(int(r["lesion_fp"]) for r in rows) / len(rows))
    assert lesions["merged"] == sum(int(r["lesion_merged"]) for r in rows)
    for r in rows:
        assert int(r["lesion_truth_clustered"]) + int(r["lesion_truth_single"]) == int(r["lesion_truth"])
    normal = [r for r in rows if r["lesion_truth"] == "0"]
    assert lesions["normal_images"] == len(normal)
    # the FROC sweep ran on the probability maps; its point at the bundle's threshold (0.5) is the
    # operating point of the lesion figures above, which were computed on the thresholded masks
    froc = summary["froc"]
    settings = summary["settings"]
    assert froc["thresholds"] == settings["froc_thresholds"] and froc["fp_targets"] == [0.5, 1, 2, 4]
    assert settings["lesion_min_iou"] == 0.1 and settings["lesion_cluster_distance_px"] == 5
    curve = _read_csv(eval_dir / "froc.csv")
    assert [float(r["threshold"]) for r in curve] == froc["thresholds"]
    at_half = curve[froc["thresholds"].index(settings["threshold"])]
    assert float(at_half["sensitivity"]) == pytest.approx(lesions["sensitivity"], abs=1e-6)
    assert float(at_half["fp_per_image"]) == pytest.approx(lesions["fp_per_image"], abs=1e-6)
    for target in (0.5, 1, 2, 4):
        within = [float(r["sensitivity"]) for r in curve if float(r["fp_per_image"]) <= target]
        assert froc[f"sensitivity_at_{target:g}fp"] == pytest.approx(max(within, default=0.0), abs=1e-6)
    assert "synthetic" in summary["reference"]["note"] and summary["settings"]["seed"] == 42
    assert (eval_dir / "dice_raw.csv").exists() and (eval_dir / "metrics.csv").exists()  # MONAI MetricsSaver


def _probe(run_dir: str, datalist: str) -> tuple[float, list[int]]:
    """Median generator output over the test crops, and the number of 8-connected lesions of each crop's
    truth, through the bundle's own config objects (the evaluation's preprocessing)."""
    parser = ConfigParser()
    parser.read_config([os.path.join(BUNDLE, c) for c in (*QUICK, "configs/evaluate.json")])
    parser.update({"datalist": datalist, "num_workers": 0, "device": "$torch.device('cpu')"})
    network = parser.get_parsed_content("network")
    network.load_state_dict(torch.load(os.path.join(run_dir, "models", "model.pt"), weights_only=True))
    network.eval()
    probs, lesions = [], []
    with torch.no_grad():
        for item in parser.get_parsed_content("validate#dataset"):
            probs.append(network(item["image"][None]))
            lesions.append(ndimage.label(item["label"][0].numpy() >= 0.5, structure=np.ones((3, 3)))[1])
    return float(torch.cat(probs).median()), lesions


def test_evaluation_is_deterministic(runs, tmp_path):
    out, _, datalist = runs
    run_dir = str(out / "seed_42")
    # a one-epoch generator's output is nearly flat: thresholding at its median makes the masks (and the
    # scores) non-trivial and so sensitive that any numeric difference between two runs would show
    threshold, truth_lesions = _probe(run_dir, datalist)
    first, second = tmp_path / "first", tmp_path / "second"
    for eval_dir in (first, second):
        _evaluate_in_process(run_dir, datalist, QUICK, output_dir=str(eval_dir), threshold=threshold)
    with open(first / "metrics_per_image.csv") as f, open(second / "metrics_per_image.csv") as g:
        text = f.read()
        assert text == g.read()
    rows = _read_csv(first / "metrics_per_image.csv")
    assert any(int(r["lesion_fp"]) + int(r["lesion_tp"]) > 0 for r in rows)  # something was predicted
    assert [int(r["lesion_truth"]) for r in rows] == truth_lesions  # the right crop's truth reached the metric
    # aggregation over real evaluation outputs: two identical runs -> the same mean, sd 0
    summaries = []
    for eval_dir in (first, second):
        with open(eval_dir / "summary.json") as f:
            summaries.append(json.load(f))
    agg = aggregate_runs({42: run_figures(summaries[0]), 43: run_figures(summaries[1])})
    assert agg["dice"]["mean"] == pytest.approx(np.mean([float(r["dice"]) for r in rows]), abs=1e-5)
    assert agg["dice"]["sd"] == 0.0 and agg["lesion_fp_per_image"]["n"] == 2
