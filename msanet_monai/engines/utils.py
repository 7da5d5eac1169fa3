"""Helpers that let bundle configs drive the adversarial trainer with stock MONAI handlers."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from ignite import distributed as idist
from monai.handlers import CheckpointSaver
from monai.utils.enums import CommonKeys as Keys

__all__ = ["AdversarialKeys", "LOSS_KEYS", "loss_terms", "latest_checkpoint", "BestModelTracking", "rank_zero_first"]


class AdversarialKeys:
    """Keys of the extra loss terms in the engine output (next to MONAI's image, label, pred, loss)."""

    SEG_LOSS = "seg_loss"
    ADV_LOSS = "adv_loss"
    CRITIC_LOSS = "critic_loss"


#: the scalars a training iteration reports; ``loss`` is the generator total.
LOSS_KEYS = (Keys.LOSS, AdversarialKeys.SEG_LOSS, AdversarialKeys.ADV_LOSS, AdversarialKeys.CRITIC_LOSS)


def loss_terms(output: Sequence[dict] | dict) -> dict[str, float]:
    """``output_transform`` for ``StatsHandler`` / ``TensorBoardStatsHandler``: the four loss terms.

    Those handlers log every item of a returned dict under its own name. After decollation the engine
    output is a list of per-image dicts in which the scalars are replicated, so the first one holds
    the batch values (the convention of ``monai.handlers.from_engine(..., first=True)``).
    """
    first = output[0] if isinstance(output, (list, tuple)) else output
    return {k: float(first[k]) for k in LOSS_KEYS}


def latest_checkpoint(ckpt_dir: str, file_prefix: str = "checkpoint") -> str | None:
    """The newest ``{file_prefix}_epoch=N.pt`` that ``CheckpointSaver`` wrote into ``ckpt_dir``, else ``None``.

    ``CheckpointSaver`` names its interval checkpoints after the epoch, so the file to resume from
    has no fixed name; the highest epoch wins (file times are not trusted: copies reset them).
    """
    best_epoch, best_path = -1, None
    for path in glob.glob(os.path.join(glob.escape(str(ckpt_dir)), f"{glob.escape(file_prefix)}_epoch=*.pt")):
        match = re.search(r"_epoch=(\d+)\.pt$", path)
        if match and int(match.group(1)) > best_epoch:
            best_epoch, best_path = int(match.group(1)), path
    return best_path


class BestModelTracking:
    """The best-validation record of a training run, as an object a checkpoint can save and load.

    Put it into the full training checkpoint so that a resumed run knows the best validation score
    so far. Without it the best-model ``CheckpointSaver`` starts with an empty record and its first
    validation after resuming overwrites a better ``model.pt``; MONAI's saver can load such a record
    (``load_state_dict``) but has no ``state_dict``, which this adds. The evaluator's own
    ``best_metric`` / ``best_metric_epoch`` (what its log lines report) travel along.

    Args:
        saver: the ``CheckpointSaver`` built with ``save_key_metric=True`` that writes the best model.
        evaluator: the validation engine whose ``state.best_metric`` should survive a resume.
    """

    def __init__(self, saver: CheckpointSaver, evaluator: Any | None = None) -> None:
        if saver._key_metric_checkpoint is None:  # no public accessor in MONAI 1.6
            raise ValueError("the CheckpointSaver must be built with save_key_metric=True.")
        self.saver = saver
        self.evaluator = evaluator

    def state_dict(self) -> dict[str, Any]:
        state = dict(self.saver._key_metric_checkpoint.state_dict())
        if self.evaluator is not None:
            state["best_metric"] = float(self.evaluator.state.best_metric)
            state["best_metric_epoch"] = int(self.evaluator.state.best_metric_epoch)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        best_metric, best_epoch = state.pop("best_metric", None), state.pop("best_metric_epoch", None)
        self.saver.load_state_dict(state)
        if self.evaluator is not None and best_metric is not None:
            self.evaluator.state.best_metric = best_metric
            self.evaluator.state.best_metric_epoch = best_epoch


def rank_zero_first(func: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call ``func`` on rank 0 first, then on the other ranks (plain call when not distributed).

    For work with a side effect on shared disk, such as generating the synthetic dataset: rank 0
    writes it, the others wait at a barrier and then find it in place.
    """
    with idist.one_rank_first(rank=0):
        return func(*args, **kwargs)
