"""MONAI's ``CheckpointSaver`` with files that survive a kill at any moment.

MONAI's saver builds Ignite ``Checkpoint`` objects on a ``DiskSaver`` with ``atomic=False`` (files are
written in place) and Ignite removes the file to retire *before* it writes the new one: with
``n_saved=1`` a kill in between leaves no checkpoint, and a kill inside ``torch.save`` a truncated
one. Ignite's own ``atomic=True`` writes a ``tmpXXXX`` file but neither syncs it nor defers the
removal. The save handler here writes ``.<name>.tmp-<pid>`` in the same folder, flushes and syncs
it, renames it over ``<name>`` (``os.replace``, atomic on POSIX) and only then deletes the files
Ignite asked to retire: at every instant the folder holds the previous complete file or the new one.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers.checkpoint import BaseSaveHandler, Checkpoint
from monai.handlers import CheckpointSaver

__all__ = ["AtomicDiskSaver", "AtomicCheckpointSaver", "TMP_INFIX"]

logger = logging.getLogger(__name__)

#: temporary files are ``.<final name>.tmp-<pid>``; a later run removes those of dead processes
TMP_INFIX = ".tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tmp_files(dirname: str) -> list[str]:
    """Delete ``.*.tmp-<pid>`` files a killed save left in ``dirname`` (only of processes no longer running)."""
    removed = []
    for path in glob.glob(os.path.join(glob.escape(dirname), f".*{TMP_INFIX}*")):
        match = re.search(rf"{re.escape(TMP_INFIX)}(\d+)$", path)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            os.remove(path)
            removed.append(path)
    return removed


class AtomicDiskSaver(BaseSaveHandler):
    """Ignite save handler: ``torch.save`` to a temporary file, fsync, ``os.replace``; deferred removal.

    Args:
        dirname: folder of the checkpoints (created if missing).
        filename: fixed file name that replaces Ignite's (MONAI's ``key_metric_filename``, e.g. ``model.pt``).
    """

    def __init__(self, dirname: str, filename: str | None = None) -> None:
        self.dirname = os.fspath(dirname)
        self.filename = filename
        self._retire: list[str] = []
        os.makedirs(self.dirname, exist_ok=True)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        filename = self.filename or filename
        path = os.path.join(self.dirname, filename)
        tmp = os.path.join(self.dirname, f".{filename}{TMP_INFIX}{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        _fsync_dir(self.dirname)  # the rename itself reaches the disk
        retire, self._retire = self._retire, []
        for name in retire:
            if name != filename:
                try:
                    os.remove(os.path.join(self.dirname, name))
                except FileNotFoundError:  # already gone (removed by hand, or lost): nothing to retire
                    pass

    def remove(self, filename: str) -> None:
        # Ignite calls this just before saving the file that replaces it: defer until that one is complete
        self._retire.append(self.filename or filename)


def _fsync_dir(dirname: str) -> None:
    try:
        fd = os.open(dirname, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicCheckpointSaver(CheckpointSaver):
    """``monai.handlers.CheckpointSaver`` writing every file through :class:`AtomicDiskSaver`.

    Same arguments as MONAI's. In addition, when attached it removes temporary files of killed saves,
    and at ``Events.STARTED`` (after a ``CheckpointLoader`` attached before it has restored the
    trainer) it takes over the interval checkpoints an earlier run left in ``save_dir`` with an epoch
    not above the restored one, so that ``n_saved`` also holds across resumes: they are deleted once
    newer ones are written.
    """

    def __init__(self, save_dir: str, save_dict: dict, *args: Any, **kwargs: Any) -> None:
        super().__init__(save_dir, save_dict, *args, **kwargs)
        for name in ("_final_checkpoint", "_key_metric_checkpoint", "_interval_checkpoint"):
            checkpoint: Checkpoint | None = getattr(self, name)
            if checkpoint is not None:  # MONAI offers no hook to choose the save handler
                checkpoint.save_handler = AtomicDiskSaver(save_dir, getattr(checkpoint.save_handler, "filename", None))

    def attach(self, engine: Engine) -> None:
        for path in remove_stale_tmp_files(self.save_dir) if os.path.isdir(self.save_dir) else []:
            logger.info("checkpoints: removed %s, left by a save that was killed", path)
        super().attach(engine)
        if self._interval_checkpoint is not None:
            engine.add_event_handler(Events.STARTED, self._adopt_interval_checkpoints)

    def _adopt_interval_checkpoints(self, engine: Engine) -> None:
        checkpoint = self._interval_checkpoint
        prefix = f"{checkpoint.filename_prefix}_" if checkpoint.filename_prefix else ""
        current = engine.state.epoch if self.epoch_level else engine.state.iteration
        known = {item.filename for item in checkpoint._saved}
        pattern = re.compile(rf"^{re.escape(prefix)}checkpoint_{checkpoint.score_name}=(\d+)\.pt$")
        for name in os.listdir(self.save_dir) if os.path.isdir(self.save_dir) else []:
            match = pattern.match(name)
            if match and name not in known and int(match.group(1)) <= current:
                checkpoint._saved.append(Checkpoint.Item(int(match.group(1)), name))
        checkpoint._saved.sort(key=lambda item: item.priority)

    def interval_completed(self, engine: Engine) -> None:
        super().interval_completed(engine)
        # Ignite retires one file per save; after a resume several may be due
        checkpoint = self._interval_checkpoint
        n_saved = checkpoint.n_saved
        while n_saved is not None and len(checkpoint._saved) > n_saved:
            item = checkpoint._saved.pop(0)
            try:
                os.remove(os.path.join(self.save_dir, item.filename))
            except FileNotFoundError:
                pass
