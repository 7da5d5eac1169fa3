"""Training through MONAI's bundle runner (`python -m monai.bundle run training`), as a user runs it:
outputs, determinism (seed 42) and resume. Helpers and the tiny settings are in _bundle_runs.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from _bundle_runs import LOSS_TAGS, TINY, VAL_TAGS, completed_epochs, loss_lines, run, training_command
from _bundle_runs import val_metric_lines


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
    return root, run(training_command(root, synthetic_dataset))


def test_training_writes_best_model_checkpoint_logs_and_metrics(first_run):
    root, log = first_run
    models = root / "models"
    assert (models / "model.pt").is_file(), log[-3000:]
    full = models / "checkpoint_epoch=2.pt"
    assert full.is_file(), sorted(p.name for p in models.iterdir())

    checkpoint = torch.load(full, weights_only=True)
    assert {"model", "critic", "optimizer", "critic_optimizer", "lr_scheduler", "trainer", "best_model"} <= set(
        checkpoint
    )
    assert completed_epochs(checkpoint["trainer"]) == 2
    assert checkpoint["critic_optimizer"]["state"], "critic optimizer state missing"

    # model.pt is the generator's plain state_dict at the trained width: it loads into MSANet
    from msanet_monai.networks.nets import MSANet

    generator = MSANet(in_channels=1, out_channels=1, channels=TINY["generator_channels"], deep_supervision=True)
    generator.load_state_dict(torch.load(models / "model.pt", weights_only=True))

    val_lines = val_metric_lines(log)
    assert len(val_lines) == 2, log[-3000:]  # val_interval 1, two epochs
    assert all("val_precision" in line and "val_recall" in line for line in val_lines)
    losses = loss_lines(log)
    assert len(losses) == 2  # one iteration per epoch
    for key in LOSS_TAGS:
        assert all(f"{key}: " in line for line in losses)

    tags = _scalar_tags(root / "eval")
    assert LOSS_TAGS <= tags and VAL_TAGS <= tags, tags


def test_same_seed_gives_identical_losses_metrics_and_weights(first_run, tmp_path_factory, synthetic_dataset):
    root, log = first_run
    other = tmp_path_factory.mktemp("bundle_run_again")
    log_again = run(training_command(other, synthetic_dataset))
    assert loss_lines(log_again) == loss_lines(log) and loss_lines(log)
    assert val_metric_lines(log_again) == val_metric_lines(log)
    first_weights = torch.load(root / "models" / "checkpoint_epoch=2.pt", weights_only=True)
    again_weights = torch.load(other / "models" / "checkpoint_epoch=2.pt", weights_only=True)
    for net in ("model", "critic"):
        for key, value in first_weights[net].items():
            assert torch.equal(value, again_weights[net][key]), f"{net}.{key} differs between runs"


def test_resume_continues_from_saved_epoch(first_run, tmp_path_factory, synthetic_dataset):
    root, first_log = first_run
    resumed = tmp_path_factory.mktemp("bundle_resume")
    shutil.copytree(root / "models", resumed / "models")
    log = run(training_command(resumed, synthetic_dataset, resume="true", num_epochs=3))

    assert "Restored all variables from" in log and "checkpoint_epoch=2.pt" in log
    assert loss_lines(log) and all(line.startswith("Epoch: 3/3") for line in loss_lines(log)), log[-3000:]
    state = torch.load(resumed / "models" / "checkpoint_epoch=3.pt", weights_only=True)["trainer"]
    assert completed_epochs(state) == 3
    assert len(val_metric_lines(log)) == 1
    # the best validation DSC so far came along: a worse epoch 3 does not replace model.pt
    best_before = re.findall(r"Got new best metric of val_mean_dice: (\S+)", first_log)[-1]
    best_after = re.findall(r"Key metric: val_mean_dice best value: (\S+)", log)[-1]
    assert float(best_after) >= float(best_before)
