"""The model comparison: every bundle overlay of configs/models trains, and the benchmark runs end to end.

Each overlay trains one epoch at tiny widths through ``monai.bundle.run`` (the function behind
``python -m monai.bundle run training``) on the session's synthetic set; the benchmark script runs as a
user runs it, in a subprocess, at the same tiny settings, and writes its table, JSON and plot.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _bundle_runs import CONFIGS, TINY

pytestmark = pytest.mark.filterwarnings("ignore:parsing config_file:UserWarning")  # MONAI: configs run code

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "compare_models.py"
MODEL_CONFIGS = sorted(p.stem for p in (CONFIGS / "models").glob("*.json"))
NON_ADVERSARIAL = {"msanet_no_critic", "unet", "attention_unet", "dynunet"}


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("compare_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_file(folder: Path, **changes) -> Path:
    path = folder / "tiny.json"
    path.write_text(json.dumps({**TINY, "num_epochs": 1, **changes}))
    return path


def test_the_benchmark_lists_every_model_config():
    assert sorted(_benchmark_module().MODELS) == MODEL_CONFIGS
    assert len(MODEL_CONFIGS) == 11


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_every_model_config_trains_one_epoch(model, tmp_path, synthetic_dataset):
    from monai.bundle import ConfigParser
    from monai.bundle import run as bundle_run

    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "quick.json"), str(CONFIGS / "models" / f"{model}.json"),
               str(_tiny_file(tmp_path))]
    bundle_run("training", meta_file=str(CONFIGS / "metadata.json"), config_file=configs, logging_file=False,
               bundle_root=str(tmp_path), datalist=synthetic_dataset)

    checkpoint = torch.load(tmp_path / "models" / "checkpoint_epoch=1.pt", weights_only=True)
    # model.pt is the plain state_dict of the config's own network_def
    parser = ConfigParser()
    parser.read_config(configs)
    network = parser.get_parsed_content("network_def", instantiate=True)
    network.load_state_dict(torch.load(tmp_path / "models" / "model.pt", weights_only=True))
    # the critic is stepped exactly when the model is adversarial
    assert bool(checkpoint["critic_optimizer"]["state"]) == (model not in NON_ADVERSARIAL)
    x = torch.rand(2, 1, *TINY["roi_size"])
    with torch.no_grad():
        out = network.eval()(x)
    assert out.shape == (2, 1, *TINY["roi_size"]) and 0 <= float(out.min()) and float(out.max()) <= 1


def test_spread_rule_flags_only_differences_beyond_the_seed_spread():
    cmp = _benchmark_module()

    def run(model, seed, dice, fp):
        figures = {name: math.nan for name, _ in cmp.FIGURES}
        figures.update(dice=dice, fp_per_image=fp)
        return {"model": model, "seed": seed, "epochs": 1, "train_seconds": 1.0, "figures": figures}

    runs = [run("msanet", 42, 0.50, 2.0), run("msanet", 43, 0.52, 2.2),
            run("unet", 42, 0.40, 2.1), run("unet", 43, 0.42, 2.0),   # DSC clearly lower, FP within spread
            run("segan", 42, 0.45, 1.0), run("segan", 43, 0.60, 1.1)]  # DSC within its own wide spread
    agg = cmp.aggregate(runs)
    assert agg["msanet"]["dice"]["mean"] == pytest.approx(0.51)
    assert agg["msanet"]["dice"]["sd"] == pytest.approx(0.02 / math.sqrt(2))
    assert agg["msanet"]["sensitivity"]["n"] == 0
    flagged = {(d["model"], d["figure"]): d["model_better"] for d in cmp.spread_differences(agg, "msanet")}
    assert flagged == {("unet", "dice"): False, ("segan", "fp_per_image"): True}

    # false positives on the untouched real scan: fewer is better
    for r, fp in zip(runs, (10, 12, 1, 2, 30, 31)):
        r["figures"]["rb_fp_real_scan"] = fp
    flagged = {(d["model"], d["figure"]): d["model_better"] for d in cmp.spread_differences(cmp.aggregate(runs), "msanet")}
    assert flagged[("unet", "rb_fp_real_scan")] is True and flagged[("segan", "rb_fp_real_scan")] is False


def test_report_names_the_score_of_marking_nothing_and_the_runs_that_did(tmp_path):
    """3 of 4 test images lesion-free -> a model that marks nothing scores 0.75; the run whose kept model
    found no lesion and no false one is named."""
    cmp = _benchmark_module()
    run_dir = tmp_path / "run"
    (run_dir / "eval").mkdir(parents=True)
    with open(run_dir / "eval" / "metrics_per_image.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["filename", "view", "dice", "lesion_truth"])
        writer.writeheader()
        for truth in (0, 2, 0, 0):
            writer.writerow({"filename": "a.dcm", "view": "anterior", "dice": 1.0, "lesion_truth": truth})

    def run(model, seed, sensitivity, fp):
        figures = {name: math.nan for name, _ in cmp.FIGURES}
        figures.update(dice=0.5, sensitivity=sensitivity, fp_per_image=fp)
        return {"model": model, "seed": seed, "figures": figures, "run_dir": str(run_dir)}

    runs = [run("msanet", 42, 0.0, 0.0), run("msanet", 43, 0.5, 0.0), run("unet", 42, 0.0, 3.0)]
    assert cmp.finds_nothing_floor(runs) == pytest.approx(0.75)
    assert cmp.collapsed_runs(runs) == ["msanet 42"]
    assert math.isnan(cmp.finds_nothing_floor([{"run_dir": str(tmp_path / "missing")}]))


def test_time_limit_overlay_stops_the_training_before_the_run(tmp_path):
    cmp = _benchmark_module()
    path = cmp._time_limit_overlay(str(tmp_path / "limit.json"), ["configs/train.json", "configs/quick.json"], 30)
    training = json.loads(Path(path).read_text())["training"]
    run_at = training.index("$@train#trainer.run()")
    assert "TimeLimit(30)" in training[run_at - 1] and "ITERATION_COMPLETED" in training[run_at - 1]
    original = json.loads((CONFIGS / "train.json").read_text())["training"]
    assert [step for step in training if "TimeLimit" not in step] == original


def test_benchmark_runs_end_to_end_and_appends_to_its_json(tmp_path, synthetic_dataset):
    pytest.importorskip("matplotlib")
    out = tmp_path / "compare"
    tiny = _tiny_file(tmp_path)
    base = [sys.executable, str(SCRIPT), "--config", "configs/train.json", "configs/quick.json", str(tiny),
            "--epochs", "1", "--out-dir", str(out), "--repeats", "1", "--datalist", synthetic_dataset,
            "--real_background_dir", str(tmp_path / "real_background"), "--real_background_scans", "1"]

    def bench(*args):
        proc = subprocess.run(base + list(args), cwd=REPO, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
        return proc.stdout

    bench("--models", "msanet", "unet", "--seeds", "42")
    log = bench("--models", "unet", "--seeds", "42", "43")  # unet 42 is in the JSON already
    assert "skipped" in log

    result = json.loads((out / "compare_models.json").read_text())
    runs = sorted((r["model"], r["seed"]) for r in result["runs"].values())
    assert runs == [("msanet", 42), ("unet", 42), ("unet", 43)]
    for run in result["runs"].values():
        assert run["epochs"] == 1 and run["train_seconds"] > 0
        assert 0 <= run["figures"]["dice"] <= 1
        assert {"sensitivity_small", "sensitivity_clustered", "fp_per_image", "dice_image_sd"} <= set(run["figures"])
        assert (Path(run["run_dir"]) / "eval" / "summary.json").is_file()
        # the real-background section of the same evaluation: its untouched NM1 scan's false positives
        rb = json.loads((Path(run["run_dir"]) / "eval" / "real_background" / "summary.json").read_text())
        assert run["figures"]["rb_fp_real_scan"] == rb["named_images"]["untouched_real_scan"]["lesion_fp"] >= 0
        assert 0 <= run["figures"]["rb_dice"] <= 1
    stats = {key.split("|")[0]: value for key, value in result["models"].items()}
    assert stats["msanet"]["parameters"] > stats["unet"]["parameters"] > 0
    assert stats["msanet"]["adversarial"] and not stats["unet"]["adversarial"]
    assert stats["msanet"]["outputs"] == 4 and stats["unet"]["outputs"] == 1
    assert stats["unet"]["gflops"] > 0 and stats["unet"]["inference_ms"] > 0

    # equal FLOPs: the reference trains --epochs under either budget, so its epochs run is reused, not repeated
    log = bench("--models", "msanet", "--seeds", "42", "--budget", "flops")
    assert "reused" in log and "seed 42: training" not in log
    result = json.loads((out / "compare_models.json").read_text())
    flops = [r for r in result["runs"].values() if r["budget"] == "flops"]
    same = [r for r in result["runs"].values() if r["budget"] == "epochs" and r["model"] == "msanet"]
    assert len(flops) == 1 and flops[0]["figures"] == same[0]["figures"] and flops[0]["epochs"] == 1

    # a run killed after its first of two epochs left a checkpoint (copied here from a finished one-epoch
    # run): the next invocation goes on from it instead of failing on the occupied folder
    unet_42 = Path(next(r["run_dir"] for r in result["runs"].values() if r["model"] == "unet" and r["seed"] == 42))
    killed = unet_42.parent / unet_42.name.replace("seed_42_epochs1_", "seed_44_epochs2_")
    shutil.copytree(unet_42 / "models", killed / "models")
    log = bench("--models", "unet", "--seeds", "44", "--epochs", "2")
    assert "unet seed 44: resuming 2 epochs" in log
    run = json.loads((out / "compare_models.json").read_text())["runs"][f"unet|seed=44|epochs=2|{unet_42.name[-10:]}"]
    assert run["resumed"] and run["train_seconds"] is None and run["run_dir"] == str(killed)
    assert "--resume true" in " ".join(run["train_command"]) and (killed / "models" / "checkpoint_epoch=2.pt").is_file()
    # --force trains a run again in a new folder: the first one's files stay
    before = (unet_42 / "models" / "model.pt").read_bytes()
    log = bench("--models", "unet", "--seeds", "42", "--force")
    assert f"-> {unet_42}_rerun1" in log and (unet_42 / "models" / "model.pt").read_bytes() == before

    bench("--models", "msanet", "unet", "--report-only")
    table = (out / "compare_models.md").read_text()
    assert "| msanet | 1 |" in table and "| unet | 1 |" in table and "seed-to-seed spread" in table
    assert "FP lesions on the untouched real scan" in table
    assert re.search(r"A model that marks nothing scores DSC = precision = recall = [01]\.\d{3} here", table)
    assert (out / "compare_models.png").read_bytes()[:4] == b"\x89PNG"
