"""Helpers of the bundle training tests: launch `python -m monai.bundle run training` as a user does.

Every run is the real command in a subprocess, on the session's synthetic dataset, with tiny settings
merged on top of configs/train.json and configs/quick.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "bundle"
CONFIGS = BUNDLE_DIR / "configs"
# tiny widths, 128x128 thorax windows, the first 4 training images: one iteration of 4 per epoch
TINY = {
    "generator_channels": [4, 8, 8, 16, 16],
    "critic_channels": [4, 8, 8, 16, 16, 16],
    "roi_size": [128, 128],
    "train_items": "$@data_split[0][:4]",
    "num_epochs": 2,
    "val_interval": 1,
    "train_batch_size": 4,
    "val_batch_size": 4,
    "num_workers": 0,
}
LOSS_TAGS = {"loss", "seg_loss", "adv_loss", "critic_loss"}
VAL_TAGS = {"val_global_dice", "val_mean_dice", "val_precision", "val_recall"}


def training_command(root: Path, datalist: str | None, extra_configs: list[str] = (), **overrides) -> list[str]:
    """Arguments after ``python``: train.json, extra configs, quick.json, then the TINY overrides.

    ``datalist=None`` leaves the config's own (``ensure_dataset`` on ``dataset_dir``); pass that in ``overrides``.
    """
    override_file = root / "tiny.json"
    override_file.write_text(json.dumps(TINY))
    configs = [str(CONFIGS / "train.json"), *extra_configs, str(CONFIGS / "quick.json"), str(override_file)]
    cmd = ["-m", "monai.bundle", "run", "training", "--meta_file", str(CONFIGS / "metadata.json")]
    cmd += ["--config_file", json.dumps(configs), "--logging_file", str(CONFIGS / "logging.conf")]
    cmd += ["--bundle_root", str(root)] + (["--datalist", datalist] if datalist is not None else [])
    for key, value in overrides.items():
        cmd += [f"--{key}", str(value)]
    return cmd


def run_in_process(root: Path, datalist: str, **overrides) -> None:
    """The same training through ``monai.bundle.run`` (the function behind the command) in this process.

    Saves the interpreter start and imports of a subprocess; results are read from the files written.
    """
    from monai.bundle import run as bundle_run

    override_file = root / "tiny.json"
    override_file.write_text(json.dumps(TINY))
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "quick.json"), str(override_file)]
    bundle_run(
        "training",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=configs,
        logging_file=False,  # keep this process's logging as pytest set it up
        bundle_root=str(root),
        datalist=datalist,
        **overrides,
    )


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every TensorBoard scalar of a run: tag -> [(step, value), ...] (losses per iteration, metrics per epoch)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list[tuple[int, float]]] = {}
    for event_file in sorted(log_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(event_file))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return found


def run(cmd: list[str], launcher: list[str] | None = None, extra_env: dict | None = None) -> str:
    """Run in bundle/ (as the docs do); fail with the end of the log unless the exit code is 0."""
    env = dict(os.environ, **(extra_env or {}))
    proc = subprocess.run(
        (launcher or [sys.executable]) + cmd, cwd=BUNDLE_DIR, env=env, capture_output=True, text=True, timeout=900
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"training failed ({proc.returncode}):\n{log[-6000:]}"
    return log


def val_metric_lines(log: str) -> list[str]:
    """The evaluator's per-validation lines, e.g. 'Epoch[2] Metrics -- val_global_dice: 0.1234 ...'."""
    return re.findall(r"Epoch\[\d+\] Metrics -- val_global_dice: .*", log)


def loss_lines(log: str) -> list[str]:
    """StatsHandler's per-iteration lines, e.g. 'Epoch: 1/2, Iter: 1/1 -- adv_loss: ... seg_loss: ...'."""
    return re.findall(r"Epoch: \d+/\d+, Iter: \d+/\d+ -- .*", log)


def completed_epochs(trainer_state: dict) -> int:
    """Epochs done according to a checkpoint's ``trainer`` entry (Ignite saves the iteration, not the epoch)."""
    return trainer_state["iteration"] // trainer_state["epoch_length"]
