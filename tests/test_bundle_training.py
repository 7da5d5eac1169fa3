"""Training through MONAI's bundle runner (`python -m monai.bundle run training`), as a user runs it:
outputs, determinism (seed 42) and resume. Helpers and the tiny settings are in _bundle_runs.py."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch

from _bundle_runs import LOSS_TAGS, TINY, VAL_TAGS, completed_epochs, loss_lines, run, run_in_process, scalars
from _bundle_runs import training_command, val_metric_lines

pytestmark = pytest.mark.filterwarnings("ignore:parsing config_file:UserWarning")  # MONAI: configs run code


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, synthetic_dataset):
    """The real command in a subprocess, 2 epochs of one iteration, validation after each."""
    root = tmp_path_factory.mktemp("bundle_run")
    return root, run(training_command(root, synthetic_dataset))


@pytest.fixture(scope="module")
def second_run(tmp_path_factory, synthetic_dataset):
    """The same training again (same seed), in this process through monai.bundle.run."""
    root = tmp_path_factory.mktemp("bundle_run_again")
    run_in_process(root, synthetic_dataset)
    return root


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
    assert len(losses) == 2, log[-3000:]  # one iteration per epoch
    for key in LOSS_TAGS:
        assert all(f"{key}: " in line for line in losses)

    logged = scalars(root / "eval")
    assert LOSS_TAGS <= set(logged) and VAL_TAGS <= set(logged), set(logged)
    assert [step for step, _ in logged["loss"]] == [1, 2]
    assert [step for step, _ in logged["val_mean_dice"]] == [1, 2]


def test_same_seed_gives_identical_losses_metrics_and_weights(first_run, second_run):
    root, _ = first_run
    first, again = scalars(root / "eval"), scalars(second_run / "eval")
    for tag in sorted(LOSS_TAGS | VAL_TAGS):
        assert again[tag] == first[tag], f"{tag} differs between two runs with seed 42"
    first_weights = torch.load(root / "models" / "checkpoint_epoch=2.pt", weights_only=True)
    again_weights = torch.load(second_run / "models" / "checkpoint_epoch=2.pt", weights_only=True)
    for net in ("model", "critic"):
        for key, value in first_weights[net].items():
            assert torch.equal(value, again_weights[net][key]), f"{net}.{key} differs between runs"


def test_resume_continues_from_saved_epoch(second_run, tmp_path_factory, synthetic_dataset):
    resumed = tmp_path_factory.mktemp("bundle_resume")
    shutil.copytree(second_run / "models", resumed / "models")
    run_in_process(resumed, synthetic_dataset, resume="true", num_epochs=3)

    state = torch.load(resumed / "models" / "checkpoint_epoch=3.pt", weights_only=True)["trainer"]
    assert completed_epochs(state) == 3
    logged = scalars(resumed / "eval")
    assert [step for step, _ in logged["loss"]] == [3]  # only epoch 3's iteration ran, numbered on from 2
    assert [step for step, _ in logged["val_mean_dice"]] == [3]
    # the best validation score so far (the key metric, pooled DSC) came with the checkpoint
    best = torch.load(resumed / "models" / "checkpoint_epoch=3.pt", weights_only=True)["best_model"]
    before = scalars(second_run / "eval")["val_global_dice"]
    assert best["best_metric"] >= max(value for _, value in before) - 1e-6
    assert best["key_metric_name"] == "val_global_dice"


def test_resume_drops_a_best_model_record_of_another_metric(second_run, tmp_path_factory, synthetic_dataset, caplog):
    """A checkpoint whose best-model record is a score of another metric (here a perfect val_mean_dice, as a
    checkpoint from before the key metric changed could hold): kept, no later model could beat it."""
    resumed = tmp_path_factory.mktemp("bundle_resume_other_metric")
    shutil.copytree(second_run / "models", resumed / "models")
    checkpoint = resumed / "models" / "checkpoint_epoch=2.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["best_model"].update(best_metric=1.0, key_metric_name="val_mean_dice")
    torch.save(state, checkpoint)
    with caplog.at_level(logging.WARNING):
        run_in_process(resumed, synthetic_dataset, resume="true", num_epochs=3)
    assert "holds val_mean_dice = 1.0 (epoch" in caplog.text and "not val_global_dice" in caplog.text
    best = torch.load(resumed / "models" / "checkpoint_epoch=3.pt", weights_only=True)["best_model"]
    assert best["best_metric_epoch"] == 3 and best["best_metric"] < 1.0  # epoch 3's model is model.pt now
