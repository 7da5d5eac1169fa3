"""The paper's multi-run protocol: train and evaluate once per seed, then report mean +- sd over the runs.

The paper reports every figure as the mean of 5 runs. Here each run is one ``monai.bundle run training``
followed by one ``monai.bundle run evaluating``, both with the run's ``--seed`` and with their own
``--ckpt_dir`` and ``--output_dir`` (``<out-dir>/seed_<s>/models`` and ``.../eval``), so runs never
share checkpoints. The data set and its training/validation/test split stay fixed across runs (they
have their own seeds, ``dataset_seed`` and ``split_seed``): only the training randomness changes.

Each run is a separate process, as a user would start it, so no state leaks from one run to the next.
Arguments this CLI does not know are passed on to both bundle commands (e.g. ``--num_epochs 1``).

Command (from the repository root)::

    python -m msanet_monai.protocol --seeds 42 43 44 45 46 \\
        --config configs/train.json configs/quick.json --out-dir bundle/runs

Writes ``<out-dir>/protocol_runs.csv`` (one row per seed) and ``<out-dir>/protocol_summary.json``
(mean, sd and n per figure, the paper's reference) and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from msanet_monai.metrics.report import json_safe

__all__ = ["FIGURES", "run_figures", "aggregate_runs", "bundle_command", "run_protocol", "main"]

# figures of one run, taken from its eval/summary.json: (column name, path in the summary)
FIGURES = (
    ("dice", ("pixel_scores", "dice", "mean")),
    ("precision", ("pixel_scores", "precision", "mean")),
    ("recall", ("pixel_scores", "recall", "mean")),
    ("lesion_sensitivity", ("lesion_detection", "sensitivity")),
    ("lesion_sensitivity_small", ("lesion_detection", "sensitivity_small")),
    ("lesion_sensitivity_medium", ("lesion_detection", "sensitivity_medium")),
    ("lesion_sensitivity_large", ("lesion_detection", "sensitivity_large")),
    ("lesion_fp_per_image", ("lesion_detection", "fp_per_image")),
)
_DEFAULT_BUNDLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bundle")


def run_figures(summary: Mapping[str, Any], figure_paths: Sequence[tuple[str, tuple[str, ...]]] = FIGURES
                ) -> dict[str, float]:
    """The figures of one run from its ``summary.json`` content (``NaN`` where undefined/null).

    ``figure_paths``: ``(name, keys into summary.json)`` pairs, :data:`FIGURES` by default.
    """
    figures = {}
    for name, path in figure_paths:
        value: Any = summary
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        figures[name] = math.nan if value is None else float(value)
    return figures


def aggregate_runs(runs: Mapping[int, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, sample standard deviation (``ddof=1``, ``NaN`` for one run) and ``n`` of each figure over runs.

    Args:
        runs: seed -> figures of that run (as :func:`run_figures` returns them). Runs where a figure is
            ``NaN`` (e.g. no large truth lesion) are left out of that figure's statistics only.
    """
    names = [name for name, _ in FIGURES]
    result = {}
    for name in names:
        values = np.array([r[name] for r in runs.values() if not math.isnan(r.get(name, math.nan))])
        result[name] = {
            "mean": float(values.mean()) if values.size else math.nan,
            "sd": float(values.std(ddof=1)) if values.size > 1 else math.nan,
            "n": int(values.size),
        }
    return result


def bundle_command(
    run_id: str, config_files: Sequence[str], seed: int, run_dir: str, extra: Sequence[str] = ()
) -> list[str]:
    """``python -m monai.bundle run <run_id>`` for one seed, to run from the bundle folder."""
    config = "[" + ",".join(f"'{c}'" for c in config_files) + "]"
    command = [sys.executable, "-m", "monai.bundle", "run", run_id, "--meta_file", "configs/metadata.json"]
    command += ["--config_file", config, "--seed", str(seed)]
    command += ["--ckpt_dir", os.path.join(run_dir, "models"), "--output_dir", os.path.join(run_dir, "eval")]
    return command + list(extra)


def _run(command: list[str], cwd: str, log_path: str) -> None:
    with open(log_path, "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        done = subprocess.run(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        with open(log_path) as log:
            tail = "".join(log.readlines()[-15:])
        raise RuntimeError(f"{command[4]} failed (exit {done.returncode}); log {log_path}, last lines:\n{tail}")


def _fmt(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"


def run_protocol(
    seeds: Sequence[int],
    config_files: Sequence[str] = ("configs/train.json",),
    eval_config: str = "configs/evaluate.json",
    bundle_dir: str = _DEFAULT_BUNDLE_DIR,
    out_dir: str = "runs",
    extra: Sequence[str] = (),
    evaluate_only: bool = False,
) -> dict[str, Any]:
    """Train (unless ``evaluate_only``) and evaluate once per seed; write and return the aggregated result.

    Args:
        seeds: one run per seed (the paper: 5 runs; here 42..46 by default on the command line).
        config_files: training configs, relative to ``bundle_dir`` (later ones override earlier ones).
        eval_config: config merged on top of ``config_files`` for the evaluation.
        bundle_dir: folder holding ``configs/`` (the commands run there).
        out_dir: runs go to ``<out_dir>/seed_<s>/{models,eval}``; relative paths are taken from the
            current folder.
        extra: further ``--key value`` overrides for both bundle commands.
        evaluate_only: skip training and evaluate the ``models/model.pt`` already in each run folder.

    Returns:
        ``{"runs": {seed: figures}, "failed": {seed: message}, "aggregate": {figure: {mean, sd, n}},
        "reference": paper figures}``; a failed run is reported and the other seeds go on.
    """
    out_dir = os.path.abspath(out_dir)
    bundle_dir = os.path.abspath(bundle_dir)
    runs: dict[int, dict[str, float]] = {}
    failed: dict[int, str] = {}
    reference: Any = None
    for seed in seeds:
        run_dir = os.path.join(out_dir, f"seed_{seed}")
        os.makedirs(run_dir, exist_ok=True)
        try:
            if not evaluate_only:
                print(f"seed {seed}: training -> {run_dir}", flush=True)
                _run(bundle_command("training", config_files, seed, run_dir, extra), bundle_dir, f"{run_dir}/train.log")
            print(f"seed {seed}: evaluating", flush=True)
            eval_files = [*config_files, eval_config]
            _run(bundle_command("evaluating", eval_files, seed, run_dir, extra), bundle_dir, f"{run_dir}/evaluate.log")
            with open(os.path.join(run_dir, "eval", "summary.json")) as f:
                summary = json.load(f)
        except (RuntimeError, OSError, ValueError) as e:
            failed[seed] = str(e)
            print(f"seed {seed}: FAILED: {e}", file=sys.stderr, flush=True)
            continue
        runs[seed] = run_figures(summary)
        reference = summary.get("reference", reference)

    result = {"runs": runs, "failed": failed, "aggregate": aggregate_runs(runs), "reference": reference}
    names = [name for name, _ in FIGURES]
    with open(os.path.join(out_dir, "protocol_runs.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", *names])
        for seed, figures in runs.items():
            writer.writerow([seed, *(_fmt(figures[n]) for n in names)])
    with open(os.path.join(out_dir, "protocol_summary.json"), "w") as f:
        json.dump(json_safe({**result, "runs": {str(s): r for s, r in runs.items()}}), f, indent=2)
        f.write("\n")
    return result


def _print_table(result: Mapping[str, Any]) -> None:
    reference = result.get("reference") or {}
    print(f"{'figure':28s} {'mean':>8s} {'sd':>8s} {'n':>3s}  paper (private real data)")
    for name, stats in result["aggregate"].items():
        paper = reference.get(name)
        print(
            f"{name:28s} {_fmt(stats['mean']):>8s} {_fmt(stats['sd']):>8s} {stats['n']:>3d}  "
            f"{'' if paper is None else f'{paper:.4f}'}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m msanet_monai.protocol",
        description="Train and evaluate the bundle once per seed and report mean +- sd (the paper's 5 runs). "
        "Unknown --key value arguments are passed on to both `monai.bundle run` commands.",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    parser.add_argument(
        "--config", nargs="+", default=["configs/train.json"], help="training configs, relative to --bundle-dir"
    )
    parser.add_argument("--eval-config", default="configs/evaluate.json")
    parser.add_argument("--bundle-dir", default=_DEFAULT_BUNDLE_DIR)
    parser.add_argument("--out-dir", default="runs")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the existing seed_<s>/models/model.pt")
    args, extra = parser.parse_known_args(argv)
    result = run_protocol(
        args.seeds, args.config, args.eval_config, args.bundle_dir, args.out_dir, extra, args.evaluate_only
    )
    _print_table(result)
    print(f"wrote {os.path.join(os.path.abspath(args.out_dir), 'protocol_runs.csv')} and protocol_summary.json")
    if result["failed"]:
        print(f"failed seeds: {sorted(result['failed'])} (see their logs)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
