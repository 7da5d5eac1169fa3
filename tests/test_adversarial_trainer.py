"""AdversarialSegmentationTrainer: real training steps of a tiny MSA-Net against a tiny SegAN critic."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from monai.engines import IterationEvents
from monai.handlers import CheckpointSaver, StatsHandler, TensorBoardStatsHandler
from torch.utils.data import DataLoader

from msanet_monai.checkpoints import CheckpointLoader  # the loader train.json resumes with
from msanet_monai.engines import AdversarialSegmentationTrainer, latest_checkpoint, loss_terms
from msanet_monai.errors import CheckpointError
from msanet_monai.losses import DeepSupervisionDiceLoss, MultiScaleL1AdversarialLoss
from msanet_monai.networks.nets import MSANet, SegANCritic

GENERATOR_CHANNELS = (4, 8, 8, 16, 16)
CRITIC_CHANNELS = (4, 8, 8, 16, 16, 16)
SIZE = 64  # multiple of 16 for the generator, enough for the critic's six stride-2 layers


def _hot_spot_images(num: int = 4, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Noisy background with one bright square lesion each; label = the square."""
    gen = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(num):
        label = torch.zeros(1, SIZE, SIZE)
        r, c = (int(v) for v in torch.randint(8, SIZE - 16, (2,), generator=gen))
        label[:, r : r + 8, c : c + 8] = 1.0
        image = 0.3 * torch.rand(1, SIZE, SIZE, generator=gen) + 0.7 * label
        items.append({"image": image, "label": label})
    return items


def _make_trainer(
    max_epochs: int = 1,
    epoch_length: int | None = None,
    critic_clip: float | None = 0.05,
    critic_lr: float = 1e-3,
    alpha: float = 1.0,
    beta: float = 1.0,
    amp: bool = False,
    handlers: list | None = None,
    adversarial: bool = True,
) -> AdversarialSegmentationTrainer:
    torch.manual_seed(0)
    generator = MSANet(in_channels=1, out_channels=1, channels=GENERATOR_CHANNELS, deep_supervision=True)
    critic = SegANCritic(in_channels=1, channels=CRITIC_CHANNELS)
    return AdversarialSegmentationTrainer(
        device="cpu",
        max_epochs=max_epochs,
        epoch_length=epoch_length,
        train_data_loader=DataLoader(_hot_spot_images(), batch_size=2),
        network=generator,
        optimizer=torch.optim.Adam(generator.parameters(), lr=1e-3),
        loss_function=DeepSupervisionDiceLoss(),
        critic=critic,
        critic_optimizer=torch.optim.Adam(critic.parameters(), lr=critic_lr, betas=(0.5, 0.999)),
        adversarial_loss_function=MultiScaleL1AdversarialLoss(),
        alpha=alpha,
        beta=beta,
        critic_clip=critic_clip,
        adversarial=adversarial,
        amp=amp,
        train_handlers=handlers,
    )


def _copy_params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(b, p.detach()) for b, p in zip(before, module.parameters()))


class _Records(logging.Handler):
    """Keeps the messages of a logger (StatsHandler's lines) for inspection."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


EVENTS = (
    IterationEvents.FORWARD_COMPLETED,
    IterationEvents.LOSS_COMPLETED,
    IterationEvents.BACKWARD_COMPLETED,
    IterationEvents.MODEL_COMPLETED,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run of 2 iterations (alpha 0.7, beta 0.3, AMP requested on CPU) with stats, TensorBoard and
    event counters attached; the tests below inspect it instead of training again."""
    log_dir = tmp_path_factory.mktemp("tb")
    records = _Records()
    logging.getLogger("adv_stats").addHandler(records)
    handlers = [
        StatsHandler(name="adv_stats", output_transform=loss_terms),
        TensorBoardStatsHandler(log_dir=str(log_dir), output_transform=loss_terms),
    ]
    trainer = _make_trainer(alpha=0.7, beta=0.3, amp=True, handlers=handlers)
    counts = {event: 0 for event in EVENTS}
    for event in EVENTS:
        trainer.add_event_handler(event, lambda engine, e=event: counts.__setitem__(e, counts[e] + 1))
    before = {"generator": _copy_params(trainer.network), "critic": _copy_params(trainer.critic)}
    trainer.run()
    logging.getLogger("adv_stats").removeHandler(records)
    return {"trainer": trainer, "before": before, "counts": counts, "log_dir": log_dir, "records": records}


def test_steps_update_generator_and_critic_and_report_losses(trained):
    trainer = trained["trainer"]
    assert trainer.state.iteration == 2
    assert _changed(trained["before"]["generator"], trainer.network), "generator parameters did not change"
    assert _changed(trained["before"]["critic"], trainer.critic), "critic parameters did not change"

    output = trainer.state.output  # decollated: one dict per image of the last batch
    assert len(output) == 2
    first = output[0]
    assert {"image", "label", "pred", "loss", "seg_loss", "adv_loss", "critic_loss"} <= set(first)
    values = loss_terms(output)
    assert all(math.isfinite(v) for v in values.values())
    assert values["loss"] == pytest.approx(0.7 * values["seg_loss"] + 0.3 * values["adv_loss"], rel=1e-5)
    assert 0.0 < values["seg_loss"] <= 1.0
    assert values["adv_loss"] > 0.0
    assert values["critic_loss"] <= 1.0  # 1 - a non-negative distance
    # pred is the final probability map only, as metrics and postprocessing expect
    assert first["pred"].shape == (1, SIZE, SIZE)
    assert 0.0 <= float(first["pred"].min()) and float(first["pred"].max()) <= 1.0


def test_iteration_events_fire_as_in_supervised_trainer(trained):
    assert all(count == 2 for count in trained["counts"].values()), trained["counts"]


def test_amp_is_used_only_on_cuda(trained):
    trainer = trained["trainer"]
    assert trainer.amp is False  # asked for, but CPU: autocast/GradScaler here are CUDA-only
    assert trainer.scaler is None and trainer.critic_scaler is None


def test_loss_terms_reach_stats_and_tensorboard(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    lines = [m for m in trained["records"].messages if "Iter:" in m]
    assert len(lines) == 2, trained["records"].messages
    for key in ("loss", "seg_loss", "adv_loss", "critic_loss"):
        assert all(f"{key}: " in line for line in lines)

    events = EventAccumulator(str(trained["log_dir"]))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss", "seg_loss", "adv_loss", "critic_loss"} <= tags
    assert len(events.Scalars("critic_loss")) == 2  # one point per iteration


def test_critic_weight_clipping_is_a_parameter():
    clipped = _make_trainer(epoch_length=1, critic_clip=0.05, critic_lr=0.05)
    clipped.run()
    assert max(float(p.detach().abs().max()) for p in clipped.critic.parameters()) <= 0.05 + 1e-7

    unclipped = _make_trainer(epoch_length=1, critic_clip=None, critic_lr=0.05)
    unclipped.run()
    assert max(float(p.detach().abs().max()) for p in unclipped.critic.parameters()) > 0.05

    with pytest.raises(ValueError):
        _make_trainer(critic_clip=-1.0)


def test_adversarial_off_trains_generator_with_segmentation_loss_only():
    trainer = _make_trainer(epoch_length=1, alpha=0.5, adversarial=False)
    before = {"generator": _copy_params(trainer.network), "critic": _copy_params(trainer.critic)}
    trainer.run()
    assert _changed(before["generator"], trainer.network)
    assert not _changed(before["critic"], trainer.critic), "critic stepped although adversarial=False"
    assert not trainer.critic_optimizer.state, "critic optimizer has state although never stepped"
    out = trainer.state.output[0]
    assert float(out["adv_loss"]) == 0.0 and float(out["critic_loss"]) == 0.0
    assert float(out["loss"]) == pytest.approx(0.5 * float(out["seg_loss"]))


def test_adversarial_off_needs_no_critic_and_adversarial_on_does():
    trainer = _make_trainer(epoch_length=1, adversarial=False)
    plain = AdversarialSegmentationTrainer(
        device="cpu", max_epochs=1, epoch_length=1, train_data_loader=trainer.data_loader, network=trainer.network,
        optimizer=trainer.optimizer, loss_function=trainer.loss_function, critic=None, critic_optimizer=None,
        adversarial_loss_function=None, adversarial=False,
    )
    plain.run()
    assert plain.state.iteration == 1
    with pytest.raises(ValueError, match="critic"):
        AdversarialSegmentationTrainer(
            device="cpu", max_epochs=1, train_data_loader=trainer.data_loader, network=trainer.network,
            optimizer=trainer.optimizer, loss_function=trainer.loss_function, critic=None,
            critic_optimizer=None, adversarial_loss_function=None,
        )


def _checkpoint_dict(trainer) -> dict:
    """What a full training checkpoint holds: both networks, both optimizers, the trainer's state."""
    return {
        "model": trainer.network,
        "critic": trainer.critic,
        "optimizer": trainer.optimizer,
        "critic_optimizer": trainer.critic_optimizer,
        "trainer": trainer,
    }


def test_full_checkpoint_holds_critic_and_resumes(tmp_path):
    first = _make_trainer(max_epochs=1, epoch_length=1)
    CheckpointSaver(save_dir=str(tmp_path), save_dict=_checkpoint_dict(first), save_interval=1, n_saved=1).attach(first)
    first.run()

    path = latest_checkpoint(str(tmp_path))
    assert path is not None and path.endswith("checkpoint_epoch=1.pt")
    saved = torch.load(path, weights_only=True)
    assert {"model", "critic", "optimizer", "critic_optimizer", "trainer"} <= set(saved)
    assert saved["critic_optimizer"]["state"], "critic optimizer state (Adam moments) missing"

    second = _make_trainer(max_epochs=2, epoch_length=1)
    CheckpointLoader(load_path=path, load_dict=_checkpoint_dict(second)).attach(second)
    loaded_critic = {}
    second.add_event_handler(
        IterationEvents.FORWARD_COMPLETED,
        lambda e: loaded_critic or loaded_critic.update({k: v.clone() for k, v in e.critic.state_dict().items()}),
    )
    second.run()
    for key, value in first.critic.state_dict().items():
        assert torch.equal(loaded_critic[key], value), f"critic {key} not restored"
    assert second.state.epoch == 2 and second.state.iteration == 2  # went on from epoch 1, did not restart


def test_resume_from_a_checkpoint_of_other_widths_names_the_file(tmp_path):
    first = _make_trainer(max_epochs=1, epoch_length=1)
    path = tmp_path / "checkpoint_epoch=1.pt"
    torch.save({"model": first.network.state_dict(), "critic": first.critic.state_dict()}, path)
    wider = MSANet(in_channels=1, out_channels=1, channels=(8, 16, 16, 32, 32), deep_supervision=True)
    CheckpointLoader(load_path=str(path), load_dict={"model": wider, "critic": first.critic}).attach(first)
    with pytest.raises(CheckpointError, match=r"checkpoint_epoch=1\.pt.*other channel widths"):
        first.run()
    assert first.state.iteration == 0  # stopped before any step


def test_latest_checkpoint_picks_the_newest_that_loads(tmp_path, caplog):
    assert latest_checkpoint(str(tmp_path)) is None
    for epoch in (2, 9, 10):
        torch.save({"trainer": {"iteration": epoch, "epoch_length": 1}}, tmp_path / f"checkpoint_epoch={epoch}.pt")
    full = (tmp_path / "checkpoint_epoch=10.pt").read_bytes()
    (tmp_path / "checkpoint_epoch=10.pt").write_bytes(full[: len(full) // 2])  # truncated by a crash
    (tmp_path / "checkpoint_epoch=11.pt").write_bytes(b"")
    torch.save({"model": {}}, tmp_path / "checkpoint_epoch=12.pt")  # not a training checkpoint
    (tmp_path / "model.pt").write_bytes(b"")
    assert latest_checkpoint(str(tmp_path)).endswith("checkpoint_epoch=9.pt")
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(skipped) == 3, skipped
    assert "checkpoint_epoch=12.pt: is not a full training checkpoint" in skipped[0]
    assert "checkpoint_epoch=11.pt: checkpoint file is empty" in skipped[1]
    assert "checkpoint_epoch=10.pt: not a PyTorch weights checkpoint" in skipped[2]
