"""Loading generator weights with errors a user can act on.

PyTorch reports a checkpoint from another network as a long ``RuntimeError`` listing every missing,
unexpected or mis-shaped tensor, and a file that is no checkpoint at all as an unpickling error.
The helpers here check the file and the tensor names and shapes first and raise
:class:`~msanet_monai.errors.CheckpointError` naming the file and saying what differs.

Bundle configs use them in two ways:

* as an expression that returns the loaded network::

    "network": "$msanet_monai.checkpoints.load_generator_weights(@network_def.to(@device), @ckpt_path)"

* as a drop-in for MONAI's ``CheckpointLoader`` handler::

    {"_target_": "msanet_monai.checkpoints.CheckpointLoader",
     "load_path": "@ckpt_path", "load_dict": {"model": "@network"}, "map_location": "@device"}
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import torch
from monai.handlers import CheckpointLoader as _MonaiCheckpointLoader

from msanet_monai.errors import CheckpointError

__all__ = [
    "read_checkpoint",
    "find_state_dict",
    "check_state_dict",
    "load_generator_weights",
    "CheckpointLoader",
]

# keys under which a whole-training checkpoint (train.json's checkpoint_dict) or other tools keep
# the generator weights, tried in this order when no key is given
_MODEL_KEYS = ("model", "network", "generator", "state_dict")
# how many names or shapes to quote in a message before saying "and N more"
_MAX_QUOTED = 3


def read_checkpoint(path: str | os.PathLike, map_location: Any = None) -> Any:
    """Read a PyTorch checkpoint with ``torch.load(weights_only=True)``.

    Args:
        path: the ``.pt`` / ``.pth`` file.
        map_location: passed to ``torch.load`` (a device, so GPU checkpoints open on CPU machines).

    Returns:
        whatever the file holds: usually a state dict, or a dict of state dicts.

    Raises:
        CheckpointError: the file does not exist, is a directory, or is not a PyTorch checkpoint.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(path, "checkpoint file not found")
    if os.path.isdir(path):
        raise CheckpointError(path, "is a directory, expected a checkpoint file (.pt)")
    if os.path.getsize(path) == 0:
        raise CheckpointError(path, "checkpoint file is empty")
    if _is_torchscript_archive(path):
        raise CheckpointError(path, "is a TorchScript model, not a state dict checkpoint: load it with torch.jit.load")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001
        # torch.load has no single error for "not a checkpoint": text files, images, truncated
        # downloads and pickles of arbitrary objects raise UnpicklingError, KeyError (weights-only
        # unpickler), EOFError, RuntimeError (zip reader) ... all mean the same thing here
        detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise CheckpointError(
            path, f"not a PyTorch weights checkpoint (torch.load(weights_only=True) raised {type(e).__name__}: {detail})"
        ) from e


def _is_torchscript_archive(path: str) -> bool:
    # torch.jit.save writes a zip with a constants.pkl and a code/ folder; torch.save's zip has neither
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(torch.is_tensor(v) for v in obj.values())


def find_state_dict(checkpoint: Any, path: str | os.PathLike, key: str | None = None) -> dict[str, torch.Tensor]:
    """Pick the network's state dict out of what :func:`read_checkpoint` returned.

    MONAI's ``CheckpointSaver`` stores a bare state dict when it saves one object (the bundle's
    ``models/model.pt``) and a dict of state dicts when it saves several (a training checkpoint with
    ``model``, ``critic``, ``optimizer``...).

    Args:
        checkpoint: the loaded object.
        path: the file it came from (for messages).
        key: entry holding the weights in a nested checkpoint; ``None`` takes a bare state dict, or
            else the first of ``model``, ``network``, ``generator``, ``state_dict`` present.

    Raises:
        CheckpointError: no state dict found (e.g. a TorchScript file, or a wrong ``key``).
    """
    if isinstance(checkpoint, torch.jit.ScriptModule):
        raise CheckpointError(
            path, "is a TorchScript model, not a state dict checkpoint: load it with torch.jit.load instead"
        )
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(path, f"holds a {type(checkpoint).__name__}, expected a state dict (a dict of tensors)")
    if key is not None:
        if key not in checkpoint:
            raise CheckpointError(path, f"has no entry {key!r}; its entries are {sorted(map(str, checkpoint))}")
        if not _is_state_dict(checkpoint[key]):
            raise CheckpointError(path, f"entry {key!r} is not a state dict (a dict of tensors)")
        return dict(checkpoint[key])
    if _is_state_dict(checkpoint):
        return dict(checkpoint)
    for k in _MODEL_KEYS:
        if k in checkpoint and _is_state_dict(checkpoint[k]):
            return dict(checkpoint[k])
    raise CheckpointError(
        path,
        f"holds no network state dict: its entries are {sorted(map(str, checkpoint))}; "
        f"name the one with the generator weights (key_in_ckpt / key)",
    )


def _quote(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_QUOTED])
    return shown + (f" and {len(items) - _MAX_QUOTED} more" if len(items) > _MAX_QUOTED else "")


def check_state_dict(network: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Compare tensor names and shapes of ``state_dict`` with ``network``'s before loading.

    Raises:
        CheckpointError: names differ ("saved from another architecture") or only shapes differ
            ("saved with other channel widths"), quoting the first few expected and found entries.
    """
    expected = network.state_dict()
    net_name = type(network).__name__
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors of {net_name} are not in the checkpoint (expected {_quote(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors in the checkpoint are not in {net_name} (found {_quote(unexpected)})")
        raise CheckpointError(path, f"checkpoint was saved from another architecture: {'; '.join(parts)}")
    mismatched = [
        f"{k}: expected {tuple(v.shape)}, found {tuple(state_dict[k].shape)}"
        for k, v in expected.items()
        if tuple(v.shape) != tuple(state_dict[k].shape)
    ]
    if mismatched:
        raise CheckpointError(
            path,
            f"checkpoint was saved with other channel widths: {len(mismatched)} tensors of {net_name} differ in "
            f"shape ({_quote(mismatched)}); build the network with the channels used in training "
            f"(e.g. the config's generator_channels)",
        )


def load_generator_weights(
    network: torch.nn.Module, path: str | os.PathLike, key: str | None = None, map_location: Any = None
) -> torch.nn.Module:
    """Load weights from ``path`` into ``network`` (strictly) and return ``network``.

    Args:
        network: the generator as built by the config (``MSANet``), on its target device.
        path: checkpoint file: a bare state dict (``models/model.pt``) or a training checkpoint.
        key: entry of a nested checkpoint; see :func:`find_state_dict`.
        map_location: ``torch.load`` map location; defaults to the device of ``network``'s parameters.

    Raises:
        CheckpointError: see :func:`read_checkpoint`, :func:`find_state_dict`, :func:`check_state_dict`.
    """
    if map_location is None:
        first = next(iter(network.parameters()), None)
        map_location = first.device if first is not None else "cpu"
    state_dict = find_state_dict(read_checkpoint(path, map_location=map_location), path, key=key)
    check_state_dict(network, state_dict, path)
    try:
        network.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:  # anything the name/shape check did not foresee (e.g. dtype)
        raise CheckpointError(path, f"cannot be loaded into {type(network).__name__}: {e}") from e
    return network


class CheckpointLoader(_MonaiCheckpointLoader):
    """MONAI's ``CheckpointLoader`` handler, checking the file and every network's tensors first.

    Same arguments as :class:`monai.handlers.CheckpointLoader`; on ``Events.STARTED`` it raises
    :class:`~msanet_monai.errors.CheckpointError` instead of PyTorch's ``RuntimeError`` when the file
    is missing, is not a checkpoint, or was saved from another architecture / other channel widths.
    """

    def __call__(self, engine: Any) -> None:
        checkpoint = read_checkpoint(self.load_path, map_location=self.map_location)
        if not isinstance(checkpoint, Mapping):
            find_state_dict(checkpoint, self.load_path)  # raises with the reason
        # same single-object convention as MONAI: a bare state dict stands for the only entry
        first_key = next(iter(self.load_dict))
        if len(self.load_dict) == 1 and first_key not in checkpoint:
            checkpoint = {first_key: checkpoint}
        if self.strict_shape:
            for k, obj in self.load_dict.items():
                if not isinstance(obj, torch.nn.Module):
                    continue
                if k not in checkpoint:
                    raise CheckpointError(
                        self.load_path, f"has no entry {k!r}; its entries are {sorted(map(str, checkpoint))}"
                    )
                state_dict = find_state_dict(checkpoint[k], self.load_path)
                if self.strict:
                    check_state_dict(obj, state_dict, self.load_path)
        try:
            super().__call__(engine)
        except RuntimeError as e:
            raise CheckpointError(self.load_path, f"cannot be loaded: {e}") from e
