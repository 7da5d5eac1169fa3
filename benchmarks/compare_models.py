"""MSA-Net against its ablations and baselines: train and evaluate every model on the same data, budget and seeds.

Each model is a bundle overlay ``bundle/configs/models/<name>.json``; every run is the bundle itself,
``python -m monai.bundle run training`` then ``run evaluating`` in a subprocess (as a user runs it),
with the model's overlay after the ``--config`` files, the run's ``--seed``, and its own
``--ckpt_dir`` / ``--output_dir`` (``<out-dir>/<model>/seed_<s>_<budget>``). The data set and its
split stay fixed across runs (``dataset_seed``, ``split_seed``); only the model and the training
randomness change.

Usage (repository root)::

    # CPU setting: quick widths, the quick set of quick.json (60 patients), 2 seeds, 6 epochs
    python benchmarks/compare_models.py --seeds 42 43 --epochs 6 --threads 1
    # a subset, appended to the same results; then only rebuild the table and plot
    python benchmarks/compare_models.py --models msanet unet --seeds 44
    python benchmarks/compare_models.py --report-only
    # equal budgets: training FLOPs of the reference at --epochs (the reference's own run at --epochs is
    # reused from an equal-epochs invocation into the same --out-dir), or wall-clock seconds per run
    python benchmarks/compare_models.py --budget flops --epochs 6
    python benchmarks/compare_models.py --budget seconds --seconds 300
    # any other --key value is passed to both bundle commands, e.g. the built-in 171-patient set
    python benchmarks/compare_models.py --dataset_dir ../data/synthetic --num_patients 171

Writes into ``--out-dir`` (default ``bundle/runs/compare``):

- ``compare_models.json``: every run (figures, times, command), the model statistics, and the settings;
  a new invocation appends its runs to it (runs already there with the same settings, i.e. the same
  configs, options and simulator generator version, are skipped
  unless ``--force``, which trains them again in a new ``_rerunN`` folder), so a long benchmark can be
  done in pieces; a run killed before it finished goes on from its last checkpoint (``--resume true``;
  its training time is then not reported).
- ``compare_models.md``: the accuracy table (mean +- sd over seeds; the DSC, precision and recall
  cells also give the sd over images), the cost table (parameters, GFLOPs, training and inference
  time), and the differences from ``--reference`` that exceed the seed-to-seed spread.
- ``compare_models.png``: DSC against GFLOPs, and lesion sensitivity by size / clustered / single per model.

The evaluation's real-background section (``eval/real_background/summary.json``: the untouched NM1 scan
and NM1 with inserted lesions, see bundle/docs/real_background.md) is read too: its DSC, lesion
sensitivity, false positives per image and the false-positive lesions on the untouched real scan go
into every run's figures and a second accuracy table. Pass ``--real_background_dir DIR`` to build it
elsewhere, ``--evaluate_real_background false`` to leave it out.

A difference between a model and the reference "exceeds the spread" when ``|mean_a - mean_b| > sd_a +
sd_b`` (sample sd over the seeds, at least 2 seeds each): a rough screen, not a significance test.
GFLOPs are forward FLOPs of one eval-mode crop counted by ``torch.utils.flop_counter`` (see
``benchmarks/model_size.py``); inference time is the median eval-mode forward of one crop in this process.
"""

from __future__ import annotations

import argparse
import ast
import copy
import csv
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/ is not a package
from model_size import flops_per_module  # noqa: E402

from msanet_monai.io.atomic import atomic_output  # noqa: E402
from msanet_monai.metrics.report import json_safe  # noqa: E402
from msanet_monai.protocol import run_figures  # noqa: E402
from msanet_monai.protocol import bundle_command  # noqa: E402
from msanet_monai.synthetic import GENERATOR_VERSION  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE_DIR = os.path.join(REPO, "bundle")
MODELS_DIR = os.path.join(BUNDLE_DIR, "configs", "models")
# the paper's comparison table (reference and baselines) first, then its ablation table
MODELS = (
    "msanet", "unet", "attention_unet", "dynunet", "segan",
    "msanet_no_critic", "msanet_no_cdc", "msanet_no_msfe", "msanet_no_rms", "msanet_no_pyramid", "msanet_no_ds",
)
# figures of one run: (name, path in eval/summary.json)
FIGURES = (
    ("dice", ("pixel_scores", "dice", "mean")),
    ("precision", ("pixel_scores", "precision", "mean")),
    ("recall", ("pixel_scores", "recall", "mean")),
    ("dice_image_sd", ("pixel_scores", "dice", "std")),
    ("precision_image_sd", ("pixel_scores", "precision", "std")),
    ("recall_image_sd", ("pixel_scores", "recall", "std")),
    ("sensitivity", ("lesion_detection", "sensitivity")),
    ("sensitivity_small", ("lesion_detection", "sensitivity_small")),
    ("sensitivity_medium", ("lesion_detection", "sensitivity_medium")),
    ("sensitivity_large", ("lesion_detection", "sensitivity_large")),
    ("sensitivity_clustered", ("lesion_detection", "sensitivity_clustered")),
    ("sensitivity_single", ("lesion_detection", "sensitivity_single")),
    ("fp_per_image", ("lesion_detection", "fp_per_image")),
    ("froc_score", ("froc", "score")),
)
# figures of the real-background set (eval/real_background/summary.json, when the evaluation built it)
REAL_BACKGROUND_FIGURES = (
    ("rb_dice", ("pixel_scores", "dice", "mean")),
    ("rb_sensitivity", ("lesion_detection", "sensitivity")),
    ("rb_fp_per_image", ("lesion_detection", "fp_per_image")),
    ("rb_fp_real_scan", ("named_images", "untouched_real_scan", "lesion_fp")),
)
# figures screened against the seed spread (higher is better except false positives)
COMPARED = ("dice", "precision", "recall", "sensitivity", "sensitivity_small", "sensitivity_clustered", "fp_per_image",
            "rb_sensitivity", "rb_fp_per_image", "rb_fp_real_scan")
LOWER_IS_BETTER = ("fp_per_image", "rb_fp_per_image", "rb_fp_real_scan")
SENSITIVITY_GROUPS = ("small", "medium", "large", "clustered", "single")


# ---------------------------------------------------------------- one run
def summary_figures(summary: Mapping[str, Any], real_background: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The :data:`FIGURES` of one evaluation ``summary.json`` and the :data:`REAL_BACKGROUND_FIGURES` of
    ``eval/real_background/summary.json`` (NaN where absent or null, all of them without that report)."""
    return {**run_figures(summary, FIGURES), **run_figures(real_background or {}, REAL_BACKGROUND_FIGURES)}


def _run_logged(command: list[str], log_path: str, env: Mapping[str, str], append: bool = False) -> float:
    """Run ``command`` in bundle/, output to ``log_path`` (after what it holds when ``append``); seconds taken.
    Raises RuntimeError with the log's tail."""
    start = time.perf_counter()
    with open(log_path, "a" if append else "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        done = subprocess.run(command, cwd=BUNDLE_DIR, stdout=log, stderr=subprocess.STDOUT, env=dict(env))
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        with open(log_path) as log:
            tail = "".join(log.readlines()[-20:])
        raise RuntimeError(f"{command[4]} failed (exit {done.returncode}), log {log_path}:\n{tail}")
    return seconds


def _time_limit_overlay(path: str, config_files: Sequence[str], seconds: int) -> str:
    """Write a config that stops training after ``seconds`` (Ignite ``TimeLimit`` before ``trainer.run()``).

    The ``training`` list of the merged configs is copied with one item inserted before the run, so
    nothing else of the bundle changes. The clock starts after the data sets are cached.
    """
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([os.path.join(BUNDLE_DIR, f) for f in config_files])
    training = list(parser.get("training"))
    item = (
        "$@train#trainer.add_event_handler(__import__('ignite.engine', fromlist=['Events']).Events.ITERATION_COMPLETED, "
        f"__import__('ignite.handlers', fromlist=['TimeLimit']).TimeLimit({int(seconds)}))"
    )
    run_at = next(i for i, step in enumerate(training) if "trainer.run()" in str(step))
    training.insert(run_at, item)
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        json.dump({"training": training}, f, indent=2)
    return path


# ---------------------------------------------------------------- model statistics
def _literal(value: str) -> Any:
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return {"true": True, "false": False}.get(value.lower(), value)


def _overrides(extra: Sequence[str]) -> dict[str, Any]:
    """``--key value`` pairs of the pass-through arguments as a dict (values parsed as Python literals)."""
    found = {}
    items = list(extra)
    for i, item in enumerate(items):
        if item.startswith("--") and i + 1 < len(items) and not items[i + 1].startswith("--"):
            found[item[2:]] = _literal(items[i + 1])
    return found


def model_parser(model: str, config_files: Sequence[str], extra: Sequence[str]):
    """A ``ConfigParser`` of ``config_files`` + the model's overlay + the pass-through overrides."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([os.path.join(BUNDLE_DIR, f) for f in (*config_files, f"configs/models/{model}.json")])
    parser["bundle_root"] = BUNDLE_DIR
    for key, value in _overrides(extra).items():
        parser[key] = value
    return parser


def model_statistics(model: str, config_files: Sequence[str], extra: Sequence[str], repeats: int = 5) -> dict[str, Any]:
    """Parameters, GFLOPs, training GFLOPs per image and inference time of one crop for one model config.

    ``train_gflops_per_image`` approximates one training step per image: 3x (forward + backward) the
    training-mode generator forward, plus, when adversarial, 3x two rounds of ``outputs + 1`` critic
    calls (critic step, generator step). Pooling, norms and activations are not counted.
    """
    parser = model_parser(model, config_files, extra)
    roi = [int(v) for v in parser.get_parsed_content("roi_size")]
    shape = (1, 1, *roi)
    adversarial = bool(_literal(str(parser.get("train#trainer#adversarial", True))))
    net = parser.get_parsed_content("network_def", instantiate=True)
    params = sum(p.numel() for p in net.parameters())
    # flops_per_module moves its model to the meta device: it gets copies
    eval_flops = flops_per_module(copy.deepcopy(net).eval(), shape)["Global"]
    train_flops = flops_per_module(copy.deepcopy(net).train(), shape)["Global"]
    with torch.device("meta"), torch.no_grad():
        out = copy.deepcopy(net).to("meta").train()(torch.empty(shape))
    outputs = int(out.shape[1]) if out.ndim == len(shape) + 1 else 1
    critic_flops = 0
    if adversarial:
        critic_flops = flops_per_module(parser.get_parsed_content("critic_def", instantiate=True).train(), shape)["Global"]
    step = 3 * train_flops + 3 * 2 * (outputs + 1) * critic_flops
    net.eval()
    x = torch.rand(shape)
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            start = time.perf_counter()
            net(x)
            if i:  # the first pass allocates
                times.append(time.perf_counter() - start)
    return {
        "description": parser.get("model_description", model),
        "parameters": params,
        "gflops": eval_flops / 1e9,
        "train_gflops_per_image": step / 1e9,
        "outputs": outputs,
        "adversarial": adversarial,
        "roi_size": roi,
        "inference_ms": 1e3 * statistics.median(times),
        "threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------- aggregation and report
def _mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size)


def aggregate(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: mean, sample sd and n over its runs (seeds) of every figure, training seconds and epochs."""
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        by_model.setdefault(run["model"], []).append(run)
    result = {}
    for model, items in by_model.items():
        stats: dict[str, Any] = {"seeds": sorted(r["seed"] for r in items)}
        for name, _ in (*FIGURES, *REAL_BACKGROUND_FIGURES):
            stats[name] = dict(zip(("mean", "sd", "n"), _mean_sd([r["figures"].get(name, math.nan) for r in items])))
        stats["train_seconds"] = dict(zip(("mean", "sd", "n"), _mean_sd([r["train_seconds"] for r in items])))
        stats["epochs"] = sorted({r["epochs"] for r in items})
        result[model] = stats
    return result


def spread_differences(agg: Mapping[str, Mapping[str, Any]], reference: str) -> list[dict[str, Any]]:
    """Figures of :data:`COMPARED` where a model differs from ``reference`` by more than ``sd_model + sd_ref``."""
    found = []
    if reference not in agg:
        return found
    ref = agg[reference]
    for model, stats in agg.items():
        if model == reference:
            continue
        for name in COMPARED:
            a, b = stats[name], ref[name]
            if a["n"] < 2 or b["n"] < 2 or math.isnan(a["sd"]) or math.isnan(b["sd"]):
                continue
            delta = a["mean"] - b["mean"]
            if abs(delta) > a["sd"] + b["sd"]:
                better = delta < 0 if name in LOWER_IS_BETTER else delta > 0
                found.append({"model": model, "figure": name, "delta": delta, "spread": a["sd"] + b["sd"],
                              "model_better": better})
    return found


def _cell(stat: Mapping[str, Any], image_sd: Mapping[str, Any] | None = None, digits: int = 3) -> str:
    if stat["n"] == 0:
        return "-"
    text = f"{stat['mean']:.{digits}f}"
    if stat["n"] > 1:
        text += f" ± {stat['sd']:.{digits}f}"
    if image_sd is not None and image_sd["n"]:
        text += f" (img {image_sd['mean']:.2f})"
    return text


def finds_nothing_floor(runs: Sequence[Mapping[str, Any]]) -> float:
    """DSC (= precision = recall) of a model that marks nothing on the test section: under the empty-mask
    rule, the share of its lesion-free images. Read from the first run's ``eval/metrics_per_image.csv``
    (every run evaluates the same test section); NaN when no run has one."""
    for run in runs:
        path = os.path.join(run.get("run_dir", ""), "eval", "metrics_per_image.csv")
        if os.path.isfile(path):
            with open(path, newline="") as f:
                truth = [int(row["lesion_truth"]) for row in csv.DictReader(f)]
            return sum(t == 0 for t in truth) / len(truth) if truth else math.nan
    return math.nan


def collapsed_runs(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """``model seed`` of the runs whose kept model marks nothing on the test section (no lesion found, no false one)."""
    return [f"{r['model']} {r['seed']}" for r in runs
            if r["figures"].get("sensitivity") == 0 and r["figures"].get("fp_per_image") == 0]


def markdown_report(result: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], command: str) -> str:
    agg = aggregate(runs)
    models_stats = result["models"]
    order = [m for m in MODELS if m in agg] + sorted(m for m in agg if m not in MODELS)
    s = result["settings"]
    lines = [
        "# Model comparison",
        "",
        f"Command: `{command}`",
        "",
        f"Configs {s['configs']} + `configs/models/<model>.json`, overrides `{' '.join(s['extra']) or 'none'}`, "
        f"budget {s['budget']} ({s['budget_value']}), seeds {s['seeds']}, {s['threads']} thread(s), torch {s['torch']}. "
        "Test section of the evaluation (`configs/evaluate.json`). Cells: mean ± sd over seeds; "
        "(img x): sd over test images, mean over seeds.",
        "",
        f"A model that marks nothing scores DSC = precision = recall = {finds_nothing_floor(runs):.3f} here (the "
        "share of lesion-free test images, which score 1 under the empty-mask rule); runs that marked nothing: "
        f"{', '.join(collapsed_runs(runs)) or 'none'}.",
        "",
        "| model | epochs | DSC | precision | recall | sens. small | sens. medium | sens. large | clustered | single | FP / image | FROC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in order:
        a = agg[m]
        lines.append(
            f"| {m} | {','.join(str(e) for e in a['epochs'])} | {_cell(a['dice'], a['dice_image_sd'])} "
            f"| {_cell(a['precision'], a['precision_image_sd'])} | {_cell(a['recall'], a['recall_image_sd'])} | "
            + " | ".join(_cell(a[f"sensitivity_{g}"], digits=2) for g in SENSITIVITY_GROUPS)
            + f" | {_cell(a['fp_per_image'], digits=2)} | {_cell(a['froc_score'], digits=2)} |"
        )
    if any(agg[m]["rb_dice"]["n"] for m in order):
        lines += [
            "",
            "Real-background set (`eval/real_background/`: the untouched NM1 scan and NM1 with inserted lesions, "
            "[real_background.md](../../docs/real_background.md)):",
            "",
            "| model | DSC | lesion sensitivity | FP / image | FP lesions on the untouched real scan |",
            "|---|---|---|---|---|",
        ]
        for m in order:
            a = agg[m]
            lines.append(f"| {m} | {_cell(a['rb_dice'])} | {_cell(a['rb_sensitivity'], digits=2)} | "
                         f"{_cell(a['rb_fp_per_image'], digits=2)} | {_cell(a['rb_fp_real_scan'], digits=1)} |")
    lines += [
        "",
        "| model | parameters | GFLOPs / crop | training GFLOPs / image | training time s | inference ms / crop | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in order:
        st = models_stats.get(m, {})
        t = agg[m]["train_seconds"]
        lines.append(
            f"| {m} | {st.get('parameters', 0) / 1e6:.3f} M | {st.get('gflops', math.nan):.3f} | "
            f"{st.get('train_gflops_per_image', math.nan):.2f} | {_cell(t, digits=0)} | "
            f"{st.get('inference_ms', math.nan):.1f} | {st.get('description', '')} |"
        )
    ref = s["reference"]
    diffs = spread_differences(agg, ref)
    lines += ["", f"Differences from `{ref}` larger than the seed-to-seed spread (|Δ| > sd_model + sd_{ref}):", ""]
    if not diffs:
        lines.append("- none (or fewer than 2 seeds per model)")
    for d in diffs:
        lines.append(
            f"- {d['model']} {d['figure']}: Δ {d['delta']:+.3f} (spread {d['spread']:.3f}), "
            f"{'better' if d['model_better'] else 'worse'} than {ref}"
        )
    return "\n".join(lines) + "\n"


def plot(result: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], path: str) -> None:
    """DSC against GFLOPs (error bars: sd over seeds), and sensitivity by lesion group per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(runs)
    order = [m for m in MODELS if m in agg] + sorted(m for m in agg if m not in MODELS)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    for m in order:
        g = result["models"].get(m, {}).get("gflops", math.nan)
        d = agg[m]["dice"]
        left.errorbar(g, d["mean"], yerr=0 if math.isnan(d["sd"]) else d["sd"], fmt="o", capsize=3)
        left.annotate(m, (g, d["mean"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    left.set_xscale("log")
    left.set_xlabel("GFLOPs per crop (forward, eval)")
    left.set_ylabel("test DSC (mean ± sd over seeds)")
    left.set_title("DSC against cost")
    width = 0.8 / len(SENSITIVITY_GROUPS)
    x = np.arange(len(order))
    for i, g in enumerate(SENSITIVITY_GROUPS):
        means = [agg[m][f"sensitivity_{g}"]["mean"] for m in order]
        sds = [0 if math.isnan(agg[m][f"sensitivity_{g}"]["sd"]) else agg[m][f"sensitivity_{g}"]["sd"] for m in order]
        right.bar(x + (i - len(SENSITIVITY_GROUPS) / 2 + 0.5) * width, means, width, yerr=sds, capsize=2, label=g)
    right.set_xticks(x)
    right.set_xticklabels(order, rotation=45, ha="right", fontsize=8)
    right.set_ylabel("lesion sensitivity")
    right.set_ylim(0, 1)
    right.set_title("sensitivity by lesion size and clustering")
    right.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- driver
def _checkpoints(run_dir: str) -> list[str]:
    """The training outputs in ``run_dir``/models (the files that make ``run training`` refuse the folder)."""
    models = os.path.join(run_dir, "models")
    return sorted(f for f in os.listdir(models) if f.endswith(".pt")) if os.path.isdir(models) else []


def _fresh_run_dir(run_dir: str) -> str:
    """``run_dir`` if it holds no training outputs, else the first ``run_dir_rerunN`` that holds none: an
    earlier run's files are kept, never overwritten."""
    candidate, n = run_dir, 1
    while _checkpoints(candidate):
        candidate, n = f"{run_dir}_rerun{n}", n + 1
    return candidate


def _settings_key(config_files: Sequence[str], extra: Sequence[str]) -> str:
    # the generator version is part of the settings: a run on an earlier version's data is a different run,
    # not one to skip as done
    return hashlib.sha256(json.dumps([list(config_files), list(extra), GENERATOR_VERSION]).encode()).hexdigest()[:10]


def _load(path: str) -> dict[str, Any]:
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {"runs": {}, "models": {}, "settings": {}}


def _save(path: str, result: Mapping[str, Any]) -> None:
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        json.dump(json_safe(result), f, indent=2)
        f.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] + " Unknown --key value arguments go to both bundle commands."
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), help=f"overlays of configs/models (default: all {len(MODELS)})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (budget epochs), of the reference (flops), or the cap (seconds)")
    parser.add_argument("--budget", choices=("epochs", "flops", "seconds"), default="epochs")
    parser.add_argument("--seconds", type=int, default=300, help="training seconds per run with --budget seconds")
    parser.add_argument("--reference", default="msanet", help="model the others are compared with")
    parser.add_argument("--config", nargs="+", default=["configs/train.json", "configs/quick.json"],
                        help="bundle configs before the model overlay, relative to bundle/")
    parser.add_argument("--out-dir", default=os.path.join(BUNDLE_DIR, "runs", "compare"))
    parser.add_argument("--threads", type=int, default=0, help="OMP/torch threads of every run (0: leave the default)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forward passes for the inference time")
    parser.add_argument("--force", action="store_true", help="run again runs already in the JSON")
    parser.add_argument("--report-only", action="store_true", help="only rebuild table and plot from the JSON")
    parser.add_argument("--no-plot", action="store_true")
    args, extra = parser.parse_known_args(argv)
    unknown = [m for m in args.models if not os.path.isfile(os.path.join(MODELS_DIR, f"{m}.json"))]
    if unknown:
        parser.error(f"no overlay for {unknown} in {MODELS_DIR}")
    if args.threads:
        torch.set_num_threads(args.threads)
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)

    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, "compare_models.json")
    result = _load(json_path)
    key = _settings_key(args.config, extra)
    budget_value = {"epochs": args.epochs, "flops": args.epochs, "seconds": args.seconds}[args.budget]
    result["settings"] = {
        "configs": list(args.config), "extra": list(extra), "budget": args.budget, "budget_value": budget_value,
        "reference": args.reference, "threads": args.threads or torch.get_num_threads(),
        "torch": torch.__version__, "platform": platform.platform(), "settings_key": key,
        "generator_version": GENERATOR_VERSION,
    }

    needed = list(dict.fromkeys([*args.models, args.reference]))
    for m in needed:
        stats_key = f"{m}|{key}"
        if stats_key not in result["models"] or args.force:
            result["models"][stats_key] = model_statistics(m, args.config, extra, args.repeats)
    if not args.report_only:
        ref_train = result["models"][f"{args.reference}|{key}"]["train_gflops_per_image"]
        for m in args.models:
            stats = result["models"][f"{m}|{key}"]
            epochs = args.epochs
            if args.budget == "flops":
                epochs = max(1, round(args.epochs * ref_train / stats["train_gflops_per_image"]))
            elif args.budget == "seconds":
                epochs = max(args.epochs, 1000)  # a cap; the time limit ends the run
            for seed in args.seeds:
                run_key = f"{m}|seed={seed}|{args.budget}={budget_value}|{key}"
                if run_key in result["runs"] and not args.force:
                    print(f"{run_key}: in {json_path}, skipped", flush=True)
                    continue
                same_epochs = f"{m}|seed={seed}|epochs={epochs}|{key}"
                if args.budget == "flops" and same_epochs in result["runs"] and not args.force:
                    # the reference (and any model as costly) trains --epochs under either budget: the same run
                    result["runs"][run_key] = {**result["runs"][same_epochs], "budget": "flops", "budget_value": budget_value}
                    print(f"{run_key}: the same run as {same_epochs}, reused", flush=True)
                    _save(json_path, result)
                    continue
                run_dir = os.path.join(out_dir, m, f"seed_{seed}_{args.budget}{budget_value}_{key}")
                # a run killed before it reached the JSON left checkpoints: an epochs (or flops) run goes on from
                # its last one; a time-limited run cannot (its clock would restart), nor one asked for again
                resume = bool(_checkpoints(run_dir)) and not args.force and args.budget != "seconds"
                if not resume:
                    run_dir = _fresh_run_dir(run_dir)
                os.makedirs(run_dir, exist_ok=True)
                configs = [*args.config, f"configs/models/{m}.json"]
                if args.budget == "seconds":
                    configs.append(_time_limit_overlay(os.path.join(run_dir, "time_limit.json"), configs, args.seconds))
                common = ["--num_epochs", str(epochs), "--logging_file", "configs/logging.conf", *extra]
                train = bundle_command("training", configs, seed, run_dir, [*common, *(["--resume", "true"] if resume else [])])
                evaluate = bundle_command("evaluating", [*configs, "configs/evaluate.json"], seed, run_dir, common)
                print(f"{m} seed {seed}: {'resuming' if resume else 'training'} {epochs} epochs -> {run_dir}", flush=True)
                try:
                    train_s = _run_logged(train, os.path.join(run_dir, "train.log"), env, append=resume)
                    eval_s = _run_logged(evaluate, os.path.join(run_dir, "evaluate.log"), env)
                    with open(os.path.join(run_dir, "eval", "summary.json")) as f:
                        summary = json.load(f)
                    real_background = None
                    rb_path = os.path.join(run_dir, "eval", "real_background", "summary.json")
                    if os.path.isfile(rb_path):
                        with open(rb_path) as f:
                            real_background = json.load(f)
                    figures = summary_figures(summary, real_background)
                except (RuntimeError, OSError, ValueError) as e:
                    print(f"{m} seed {seed}: FAILED: {e}", file=sys.stderr, flush=True)
                    continue
                result["runs"][run_key] = {
                    "model": m, "seed": seed, "budget": args.budget, "budget_value": budget_value, "epochs": epochs,
                    # a resumed run's training time is only its last part: not reported
                    "settings_key": key, "train_seconds": math.nan if resume else train_s, "resumed": resume,
                    "eval_seconds": eval_s, "figures": figures,
                    "run_dir": run_dir, "train_command": train, "evaluate_command": evaluate,
                }
                print(f"{m} seed {seed}: DSC {figures['dice']:.4f}, "
                      + ("resumed (training time not reported)" if resume else f"{train_s:.0f} s"), flush=True)
                _save(json_path, result)

    # the report: runs of these settings and this budget, of the chosen models, all seeds found
    runs = [r for r in result["runs"].values() if r["settings_key"] == key and r["budget"] == args.budget
            and r["budget_value"] == budget_value and r["model"] in args.models]
    settings = {**result["settings"], "seeds": sorted({r["seed"] for r in runs})}
    view = {"settings": settings, "models": {m: result["models"][f"{m}|{key}"] for m in needed}}
    command = "python benchmarks/compare_models.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = markdown_report(view, runs, command)
    with atomic_output(os.path.join(out_dir, "compare_models.md")) as tmp, open(tmp, "w") as f:
        f.write(report)
    if not args.no_plot and runs:
        plot(view, runs, os.path.join(out_dir, "compare_models.png"))
    _save(json_path, result)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
