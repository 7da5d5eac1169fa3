"""Loading generator weights: real checkpoints of tiny MSA-Net generators, and the ways loading goes wrong."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from ignite.engine import Engine
from monai.handlers import CheckpointSaver
from monai.networks.nets import BasicUNet

from msanet_monai.checkpoints import CheckpointLoader, load_generator_weights
from msanet_monai.errors import CheckpointError
from msanet_monai.networks.nets import MSANet, SegANCritic

TINY = (4, 8, 8, 16, 16)
OTHER_WIDTHS = (8, 8, 16, 16, 32)


def _generator(channels=TINY, seed: int = 42) -> MSANet:
    torch.manual_seed(seed)
    return MSANet(in_channels=1, out_channels=1, channels=channels).eval()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _run_loader(loader: CheckpointLoader) -> None:
    engine = Engine(lambda engine, batch: None)
    loader.attach(engine)
    engine.run([0], max_epochs=1)


def test_bare_state_dict_round_trip(tmp_path):
    saved, fresh = _generator(seed=1), _generator(seed=2)
    assert not _same_weights(saved, fresh)
    path = tmp_path / "model.pt"
    torch.save(saved.state_dict(), path)
    assert load_generator_weights(fresh, path) is fresh
    assert _same_weights(saved, fresh)
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(saved(x), fresh(x))


def test_training_checkpoint_written_by_monai_checkpoint_saver(tmp_path):
    """A whole-training checkpoint (generator, critic, optimizer), as CheckpointSaver writes it."""
    generator, critic = _generator(seed=1), SegANCritic(in_channels=1, channels=(4, 8, 8, 16, 16, 16))
    optimizer = torch.optim.Adam(generator.parameters())
    engine = Engine(lambda engine, batch: None)
    saver = CheckpointSaver(str(tmp_path), {"model": generator, "critic": critic, "optimizer": optimizer},
                            save_final=True, final_filename="checkpoint.pt")
    saver.attach(engine)
    engine.run([0], max_epochs=1)
    fresh = _generator(seed=2)
    load_generator_weights(fresh, tmp_path / "checkpoint.pt")  # finds the "model" entry
    assert _same_weights(generator, fresh)
    with pytest.raises(CheckpointError, match="checkpoint was saved from another architecture"):
        load_generator_weights(_generator(), tmp_path / "checkpoint.pt", key="critic")
    with pytest.raises(CheckpointError, match=r"has no entry 'generator'; its entries are \['critic', 'model', 'optimizer'\]"):
        load_generator_weights(_generator(), tmp_path / "checkpoint.pt", key="generator")


def test_other_channel_widths_named_with_expected_and_found_shapes(tmp_path):
    path = tmp_path / "wide.pt"
    torch.save(_generator(OTHER_WIDTHS).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_generator_weights(_generator(TINY), path)
    message = str(info.value)
    assert message.startswith(f"{path}: checkpoint was saved with other channel widths")
    assert "expected (4, " in message and "found (8, " in message
    assert "generator_channels" in message
    assert isinstance(info.value, ValueError) and info.value.path == str(path)


@pytest.mark.parametrize(
    "other",
    [
        lambda: SegANCritic(in_channels=1, channels=(4, 8, 8, 16, 16, 16)),
        lambda: BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=(4, 8, 8, 16, 16, 4)),
    ],
    ids=["segan-critic", "monai-basicunet"],
)
def test_other_architecture_named(tmp_path, other):
    path = tmp_path / "other.pt"
    torch.save(other().state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_generator_weights(_generator(), path)
    message = str(info.value)
    assert message.startswith(f"{path}: checkpoint was saved from another architecture")
    assert "tensors of MSANet are not in the checkpoint" in message and "tensors in the checkpoint are not in MSANet" in message


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="model.pt: checkpoint file not found"):
        load_generator_weights(_generator(), tmp_path / "model.pt")


@pytest.mark.parametrize(
    "write, complaint",
    [
        (lambda p: p.write_text("this is a datalist, not weights\n"), "not a PyTorch weights checkpoint"),
        (lambda p: p.write_bytes(b""), "checkpoint file is empty"),
        (lambda p: p.write_bytes(pickle.dumps({"model": object()})), "not a PyTorch weights checkpoint"),
        (lambda p: torch.save({"epoch": 3, "best_metric": 0.5}, p), "holds no network state dict"),
        (lambda p: torch.save(torch.zeros(3), p), "holds a Tensor, expected a state dict"),
    ],
    ids=["text", "empty", "arbitrary-pickle", "no-state-dict", "bare-tensor"],
)
def test_not_a_checkpoint(tmp_path, write, complaint):
    path = tmp_path / "model.pt"
    write(path)
    with pytest.raises(CheckpointError, match=complaint) as info:
        load_generator_weights(_generator(), path)
    assert str(path) in str(info.value)


def test_torchscript_file_is_pointed_to_torch_jit_load(tmp_path):
    path = tmp_path / "model.ts"
    # any TorchScript archive will do (the real model.ts is exported in test_export.py); a tiny one is quick
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(1, 1, 3)), str(path))
    with pytest.raises(CheckpointError, match="is a TorchScript model.*torch.jit.load"):
        load_generator_weights(_generator(), path)


def test_checkpoint_loader_handler(tmp_path):
    """The drop-in for MONAI's CheckpointLoader loads good weights and restates bad ones."""
    saved = _generator(seed=1)
    good = tmp_path / "model.pt"
    torch.save(saved.state_dict(), good)
    fresh = _generator(seed=2)
    _run_loader(CheckpointLoader(load_path=str(good), load_dict={"model": fresh}))
    assert _same_weights(saved, fresh)

    wide = tmp_path / "wide.pt"
    torch.save(_generator(OTHER_WIDTHS).state_dict(), wide)
    with pytest.raises(CheckpointError, match="other channel widths"):
        _run_loader(CheckpointLoader(load_path=str(wide), load_dict={"model": _generator()}))
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        _run_loader(CheckpointLoader(load_path=str(tmp_path / "none.pt"), load_dict={"model": _generator()}))


class _Unpicklable:
    def __reduce__(self):
        raise OSError(28, "No space left on device")  # what a full disk does halfway through torch.save


def test_atomic_saver_keeps_the_old_file_until_the_new_one_is_complete(tmp_path):
    from msanet_monai.engines import AtomicDiskSaver

    saver = AtomicDiskSaver(str(tmp_path))
    saver({"w": torch.ones(2)}, "checkpoint_epoch=1.pt")
    # Ignite retires the old file first, then saves the new one: the old one must survive a failed save
    saver.remove("checkpoint_epoch=1.pt")
    with pytest.raises(OSError, match="No space left"):
        saver({"w": _Unpicklable()}, "checkpoint_epoch=2.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=1.pt"]  # no partial, no tmp file
    saver.remove("checkpoint_epoch=1.pt")
    saver({"w": torch.zeros(2)}, "checkpoint_epoch=2.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=2.pt"]
    assert torch.equal(torch.load(tmp_path / "checkpoint_epoch=2.pt", weights_only=True)["w"], torch.zeros(2))
    # a fixed name (model.pt) that was lost meanwhile: saving again neither fails nor deletes the new file
    best = AtomicDiskSaver(str(tmp_path), filename="model.pt")
    best({"w": torch.ones(1)}, "ignored.pt")
    os.remove(tmp_path / "model.pt")
    best.remove("ignored.pt")
    best({"w": torch.full((1,), 3.0)}, "ignored.pt")
    assert torch.load(tmp_path / "model.pt", weights_only=True)["w"].item() == 3.0
