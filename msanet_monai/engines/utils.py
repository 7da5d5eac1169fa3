"""Helpers that let bundle configs drive the adversarial trainer with stock MONAI handlers."""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from ignite import distributed as idist
from monai.handlers import CheckpointSaver

from msanet_monai.checkpoints import read_checkpoint
from msanet_monai.errors import BoneScanError, CheckpointError, ConfigError
from msanet_monai.utils import as_flag
from monai.utils.enums import CommonKeys as Keys

__all__ = [
    "AdversarialKeys",
    "LOSS_KEYS",
    "loss_terms",
    "latest_checkpoint",
    "resume_checkpoint",
    "BestModelTracking",
    "rank_zero_first",
    "check_training_settings",
    "check_training_outputs",
]

logger = logging.getLogger(__name__)


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


def _checkpoint_files(ckpt_dir: str, file_prefix: str) -> list[tuple[int, str]]:
    """``(epoch, path)`` of the ``{file_prefix}_epoch=N.pt`` files in ``ckpt_dir``, newest first."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(str(ckpt_dir)), f"{glob.escape(file_prefix)}_epoch=*.pt")):
        match = re.search(r"_epoch=(\d+)\.pt$", path)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def _trainer_epoch(path: str) -> int:
    """Epochs completed according to a full training checkpoint; raises CheckpointError if it is not one."""
    state = read_checkpoint(path, map_location="cpu")
    trainer = state.get("trainer") if isinstance(state, dict) else None
    if not isinstance(trainer, dict) or not {"iteration", "epoch_length"} <= set(trainer):
        raise CheckpointError(path, "is not a full training checkpoint (no 'trainer' entry with the iteration)")
    return int(trainer["iteration"]) // max(int(trainer["epoch_length"] or 1), 1)


def latest_checkpoint(ckpt_dir: str, file_prefix: str = "checkpoint") -> str | None:
    """The newest ``{file_prefix}_epoch=N.pt`` in ``ckpt_dir`` that loads as a training checkpoint, else ``None``.

    ``CheckpointSaver`` names its interval checkpoints after the epoch, so the file to resume from
    has no fixed name; the highest epoch wins (file times are not trusted: copies reset them). Files
    that do not load (truncated, empty, not a training checkpoint) are skipped with a warning that
    says why.
    """
    for _, path in _checkpoint_files(ckpt_dir, file_prefix):
        try:
            _trainer_epoch(path)
        except CheckpointError as e:
            logger.warning("resume: skipping %s", e)
            continue
        return path
    return None


def resume_checkpoint(ckpt_dir: str, num_epochs: int, resume: Any = True, file_prefix: str = "checkpoint") -> str | None:
    """The checkpoint a run resumes from (config id ``resume_checkpoint``), logging the choice.

    * ``resume`` false: ``None`` (a fresh run), but :class:`CheckpointError` if ``ckpt_dir`` already
      holds checkpoints or ``model.pt`` of an earlier run (a fresh run would overwrite its model).
    * no checkpoint file in ``ckpt_dir``: one warning line, ``None``: the run starts at epoch 1 (so a
      job that always passes ``--resume true`` also works on its first start).
    * checkpoint files, none of which loads: :class:`CheckpointError` naming them (starting again
      would silently throw the run's progress away).
    * the newest loadable checkpoint is at ``num_epochs`` already: "nothing to do" (the trainer
      then completes at once); beyond ``num_epochs``: :class:`CheckpointError` (raise ``num_epochs``).

    Raises:
        CheckpointError: see above.
    """
    files = _checkpoint_files(ckpt_dir, file_prefix)
    if not as_flag(resume):
        earlier = [os.path.basename(p) for _, p in files]
        earlier += ["model.pt"] if os.path.isfile(os.path.join(ckpt_dir, "model.pt")) else []
        if earlier:
            # a fresh run here would overwrite model.pt and leave the old checkpoints for a later resume to pick
            raise CheckpointError(ckpt_dir, f"holds the outputs of an earlier training run ({', '.join(earlier)}): "
                                  "add --resume true to continue it, or pass another --ckpt_dir; nothing was overwritten")
        return None
    if not files:
        logger.warning("resume: no checkpoint %s_epoch=N.pt in %s: training starts at epoch 1", file_prefix, ckpt_dir)
        return None
    path = latest_checkpoint(ckpt_dir, file_prefix)
    if path is None:
        raise CheckpointError(ckpt_dir, f"none of the checkpoints loads ({', '.join(os.path.basename(p) for _, p in files)}): "
                              "cannot resume; see the warnings above")
    epoch = _trainer_epoch(path)
    if epoch > int(num_epochs):
        raise CheckpointError(path, f"the run is at epoch {epoch}, beyond num_epochs {num_epochs}: "
                              f"pass --num_epochs {epoch} or more to resume it")
    if epoch == int(num_epochs):
        logger.info("resume: %s completed all %d epochs: nothing to do", path, epoch)
    else:
        logger.info("resume: from %s (epoch %d of %d)", path, epoch, num_epochs)
    return path


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

    def _model_file(self) -> str | None:
        name = getattr(self.saver._key_metric_checkpoint.save_handler, "filename", None)
        return None if name is None else os.path.join(self.saver.save_dir, name)

    def _key_metric_name(self) -> str | None:
        return None if self.evaluator is None else getattr(self.evaluator.state, "key_metric_name", None)

    def state_dict(self) -> dict[str, Any]:
        state = dict(self.saver._key_metric_checkpoint.state_dict())
        if self.evaluator is not None:
            state["best_metric"] = float(self.evaluator.state.best_metric)
            state["best_metric_epoch"] = int(self.evaluator.state.best_metric_epoch)
            state["key_metric_name"] = self._key_metric_name()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        best_metric, best_epoch = state.pop("best_metric", None), state.pop("best_metric_epoch", None)
        name, current = state.pop("key_metric_name", None), self._key_metric_name()
        if current is not None and name != current:
            # a score of another metric (e.g. a checkpoint from before the key metric changed) is not
            # comparable: kept, it could stop every better model from being written
            logger.warning("resume: the best-model record holds %s = %s (epoch %s), not %s; it is dropped: the next "
                           "validation writes a new model.pt", name or "an unnamed metric", best_metric, best_epoch,
                           current)
            return
        model_file = self._model_file()
        if state.get("_saved") and model_file is not None:
            try:
                read_checkpoint(model_file, map_location="cpu")
            except CheckpointError as e:
                # without its file the record would keep every later, worse model from being written
                logger.warning("resume: %s; the best-model record (%s at epoch %s) is dropped: the next "
                               "validation writes a new %s", e, best_metric, best_epoch, os.path.basename(model_file))
                return
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


def _whole_number(config_id: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(config_id, value, "must be a whole number")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(config_id, value, "must be a whole number") from None
    if number != int(number):
        raise ConfigError(config_id, value, "must be a whole number")
    return int(number)


def check_training_settings(num_epochs: Any, val_interval: Any, val_fraction: Any) -> bool:
    """Refuse settings under which training would run and never write ``model.pt``.

    Called first in train.json's ``training``; returns ``True`` so it can stand in the list.

    Raises:
        ConfigError: naming the config id: ``num_epochs`` < 1; ``val_interval`` < 1 or above
            ``num_epochs`` (no validation would run, so no best model); ``val_fraction`` not in (0, 1)
            (0 leaves no validation images, 1 no training images).
    """
    epochs = _whole_number("num_epochs", num_epochs)
    if epochs < 1:
        raise ConfigError("num_epochs", num_epochs, "must be at least 1")
    interval = _whole_number("val_interval", val_interval)
    if interval < 1:
        raise ConfigError("val_interval", val_interval, "must be at least 1 (validate every N epochs)")
    if interval > epochs:
        raise ConfigError("val_interval", val_interval, f"is more than num_epochs ({epochs}): no validation "
                          "would run and no models/model.pt would be written")
    try:
        fraction = float(val_fraction)
    except (TypeError, ValueError):
        raise ConfigError("val_fraction", val_fraction, "must be a number between 0 and 1") from None
    if not 0.0 < fraction < 1.0:
        raise ConfigError("val_fraction", val_fraction, "must be above 0 and below 1 (the share of training "
                          "patients held out to select models/model.pt)")
    return True


def check_training_outputs(ckpt_dir: str, filename: str = "model.pt") -> bool:
    """Fail a training run that ends without ``ckpt_dir/filename`` (run last in ``training``; rank 0 only).

    Raises:
        BoneScanError: naming the missing file.
    """
    if idist.get_rank() > 0:  # only rank 0 writes the model
        return True
    path = os.path.join(ckpt_dir, filename)
    if not os.path.isfile(path):
        raise BoneScanError(path, "training ended without writing the best model: no validation ran, "
                            "or its validation set was empty (see val_interval, val_fraction)")
    return True
