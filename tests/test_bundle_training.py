"""Training through MONAI's bundle runner (`python -m monai.bundle run training`), as a user runs it.

Each test launches the real command in a subprocess on the synthetic dataset fixture, with tiny
network widths merged on top of configs/train.json and configs/quick.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "bundle"
CONFIGS = BUNDLE_DIR / "configs"
TINY = {
    "generator_channels": [4, 8, 8, 16, 16],
    "critic_channels": [4, 8, 8, 16, 16, 16],
    "num_epochs": 2,
    "val_interval": 1,
    "train_batch_size": 2,
    "val_batch_size": 2,
    "num_workers": 0,
}
MINIMAL_LOGGING_CONF = """[loggers]
keys=root
[handlers]
keys=consoleHandler
[formatters]
keys=fullFormatter
[logger_root]
level=INFO
handlers=consoleHandler
[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)
[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""
LOSS_TAGS = {"loss", "seg_loss", "adv_loss", "critic_loss"}
VAL_TAGS = {"val_mean_dice", "val_precision", "val_recall"}


def _logging_conf(root: Path) -> str:
    """The bundle's logging.conf when it exists, else a minimal one with the same effect (INFO to stdout)."""
    bundled = CONFIGS / "logging.conf"
    if bundled.is_file():
        return str(bundled)
    path = root / "logging.conf"
    path.write_text(MINIMAL_LOGGING_CONF)
    return str(path)


def _command(root: Path, datalist: str, extra_configs: list[str] = (), **overrides) -> list[str]:
    override_file = root / "tiny.json"
    override_file.write_text(json.dumps(TINY))
    configs = [str(CONFIGS / "train.json"), *extra_configs, str(CONFIGS / "quick.json"), str(override_file)]
    cmd = ["-m", "monai.bundle", "run", "training", "--config_file", json.dumps(configs)]
    cmd += ["--logging_file", _logging_conf(root), "--bundle_root", str(root), "--datalist", datalist]
    for key, value in overrides.items():
        cmd += [f"--{key}", str(value)]
    return cmd


def _run(cmd: list[str], launcher: list[str] | None = None, extra_env: dict | None = None) -> str:
    env = dict(os.environ, **(extra_env or {}))
    proc = subprocess.run(
        (launcher or [sys.executable]) + cmd,
        cwd=BUNDLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"training failed ({proc.returncode}):\n{log[-6000:]}"
    return log


def _val_metric_lines(log: str) -> list[str]:
    """The evaluator's per-validation metric lines, e.g. 'Epoch[2] Metrics -- val_mean_dice: 0.1234 ...'."""
    return re.findall(r"Epoch\[\d+\] Metrics -- val_mean_dice: .*", log)


def _scalar_tags(log_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for event_file in log_dir.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(event_file))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, synthetic_dataset):
    root = tmp_path_factory.mktemp("bundle_run")
    log = _run(_command(root, synthetic_dataset))
    return root, log


def test_training_writes_best_model_checkpoint_logs_and_metrics(first_run):
    root, log = first_run
    models = root / "models"
    assert (models / "model.pt").is_file(), log[-3000:]
    full = models / "checkpoint_epoch=2.pt"
    assert full.is_file(), sorted(p.name for p in models.iterdir())

    checkpoint = torch.load(full, weights_only=True)
    assert {"model", "critic", "optimizer", "critic_optimizer", "trainer", "best_model"} <= set(checkpoint)
    assert checkpoint["trainer"]["epoch"] == 2
    assert checkpoint["critic_optimizer"]["state"], "critic optimizer state missing"

    # model.pt is the generator's plain state_dict at the trained width: it loads into MSANet
    from msanet_monai.networks.nets import MSANet

    generator = MSANet(in_channels=1, out_channels=1, channels=TINY["generator_channels"], deep_supervision=True)
    generator.load_state_dict(torch.load(models / "model.pt", weights_only=True))

    val_lines = _val_metric_lines(log)
    assert len(val_lines) == 2, log[-3000:]  # val_interval 1, two epochs
    assert all("val_precision" in line and "val_recall" in line for line in val_lines)
    for key in LOSS_TAGS:
        assert f"{key}: " in log  # StatsHandler iteration lines

    tags = _scalar_tags(root / "eval")
    assert LOSS_TAGS <= tags and VAL_TAGS <= tags, tags


def test_same_seed_gives_identical_metrics(first_run, tmp_path_factory, synthetic_dataset):
    root, log = first_run
    other = tmp_path_factory.mktemp("bundle_run_again")
    log_again = _run(_command(other, synthetic_dataset))
    assert _val_metric_lines(log_again) == _val_metric_lines(log)
    best = re.findall(r"Got new best metric of val_mean_dice: (\S+)", log)
    assert best and best == re.findall(r"Got new best metric of val_mean_dice: (\S+)", log_again)
    first_weights = torch.load(root / "models" / "checkpoint_epoch=2.pt", weights_only=True)
    again_weights = torch.load(other / "models" / "checkpoint_epoch=2.pt", weights_only=True)
    for net in ("model", "critic"):
        for key, value in first_weights[net].items():
            assert torch.equal(value, again_weights[net][key]), f"{net}.{key} differs between runs"


def test_resume_continues_from_saved_epoch(first_run, tmp_path_factory, synthetic_dataset):
    root, _ = first_run
    resumed = tmp_path_factory.mktemp("bundle_resume")
    shutil.copytree(root / "models", resumed / "models")
    log = _run(_command(resumed, synthetic_dataset, resume="true", num_epochs=3))

    assert "Restored all variables from" in log and "checkpoint_epoch=2.pt" in log
    assert re.search(r"Epoch: 3/3, Iter: 1/", log), log[-3000:]
    assert not re.search(r"Epoch: 1/3, Iter:", log), "training restarted instead of resuming"
    previous = torch.load(root / "models" / "checkpoint_epoch=2.pt", weights_only=True)["trainer"]
    state = torch.load(resumed / "models" / "checkpoint_epoch=3.pt", weights_only=True)["trainer"]
    assert state["epoch"] == 3
    iterations_per_epoch = previous["iteration"] // 2
    assert state["iteration"] == previous["iteration"] + iterations_per_epoch
    assert len(_val_metric_lines(log)) == 1


def test_two_process_ddp_on_gloo(tmp_path, synthetic_dataset):
    cmd = _command(
        tmp_path,
        synthetic_dataset,
        extra_configs=[str(CONFIGS / "multi_gpu_train.json")],
        ddp_backend="gloo",
        device="$torch.device('cpu')",
    )
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    log = _run(cmd, launcher=launcher, extra_env={"OMP_NUM_THREADS": "1"})  # two processes, small machine
    checkpoint = torch.load(tmp_path / "models" / "checkpoint_epoch=2.pt", weights_only=True)
    assert checkpoint["trainer"]["epoch"] == 2
    assert (tmp_path / "models" / "model.pt").is_file()
    assert len(_val_metric_lines(log)) == 2  # rank 0 only logs
