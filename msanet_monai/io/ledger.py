"""The ledger of an output folder: which of its files msanet-monai wrote, so that no other file is replaced.

Users point ``--output_dir`` at folders that already hold their own files (an earlier export, notes,
a CSV of their own that happens to be called ``inference.csv``). The inference writer may replace
its own earlier outputs (running again into the same folder updates them) but never anything else.
A file name alone cannot tell the two apart, so every folder the writer fills keeps a small JSON
ledger, ``.msanet-monai-outputs.json``, of the names it wrote there; a name that exists on disk and is
not in the ledger belongs to someone else. Nothing in MONAI or Ignite records this, hence this module.

The ledger is written atomically after each addition (:func:`~msanet_monai.io.atomic.atomic_output`),
so a killed run leaves a ledger that lists at least every complete file it published.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from msanet_monai.errors import OutputWriteError
from msanet_monai.io.atomic import atomic_output

__all__ = ["LEDGER_NAME", "OutputLedger"]

LEDGER_NAME = ".msanet-monai-outputs.json"
_WRITTEN_BY = "msanet-monai"


class OutputLedger:
    """The files msanet-monai wrote in one folder.

    Args:
        folder: the output folder (must exist before :meth:`record`).

    Raises:
        OutputWriteError: ``folder`` holds a file named :data:`LEDGER_NAME` that msanet-monai did not
            write (not JSON, or without its ``written_by`` mark): the folder cannot be told apart from
            someone else's, so nothing is written there.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = os.path.abspath(os.fspath(folder))
        self.path = os.path.join(self.folder, LEDGER_NAME)
        self._lock = threading.Lock()  # the background writer thread and the engine thread both record
        self.files: set[str] = set()
        self._reload()

    def _reload(self) -> None:
        """Add the names the ledger on disk lists (another run may have recorded files meanwhile)."""
        if not os.path.lexists(self.path):
            return
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise OutputWriteError(self.path, f"cannot read this folder's output ledger ({e}); it was not "
                                   "written by msanet-monai, so the folder is left alone: choose another --output_dir") from e
        if not isinstance(data, dict) or data.get("written_by") != _WRITTEN_BY or not isinstance(data.get("files"), list):
            raise OutputWriteError(self.path, "this file was not written by msanet-monai, so the folder is left "
                                   "alone: choose another --output_dir")
        self.files |= {str(name) for name in data["files"]}

    def _name(self, path: str | os.PathLike) -> str:
        path = os.path.abspath(os.fspath(path))
        if os.path.dirname(path) != self.folder:
            raise ValueError(f"{path} is not in the output folder {self.folder}")
        return os.path.basename(path)

    def may_write(self, path: str | os.PathLike) -> bool:
        """True when ``path`` (in the folder) does not exist, or exists and was written by msanet-monai."""
        name = self._name(path)
        if name in self.files or not os.path.lexists(os.path.join(self.folder, name)):
            return True
        with self._lock:
            self._reload()  # a concurrent run into the same folder may have written it
            return name in self.files

    def free(self, paths: Iterable[str | os.PathLike]) -> bool:
        """True when every one of ``paths`` may be written (see :meth:`may_write`)."""
        return all(self.may_write(p) for p in paths)

    def record(self, paths: Iterable[str | os.PathLike]) -> None:
        """Add ``paths`` (files in the folder, written or about to be) and replace the ledger file atomically.

        Another process writing into the same folder is kept out while the ledger is read and replaced
        (an advisory lock on the folder itself, where the platform has ``fcntl``), so that neither run's
        names are lost.
        """
        with self._lock:
            names = {self._name(p) for p in paths if p}
            if names <= self.files:
                return
            with _folder_lock(self.folder):
                self._reload()  # keep what a concurrent run recorded since
                self.files |= names
                with atomic_output(self.path) as tmp, open(tmp, "w", encoding="utf-8") as f:
                    json.dump({"written_by": _WRITTEN_BY, "files": sorted(self.files)}, f, indent=1)


@contextlib.contextmanager
def _folder_lock(folder: str):
    """An exclusive ``flock`` on the folder's own descriptor: no lock file to leave behind in the user's folder."""
    if fcntl is None:  # Windows: no advisory locks on folders; runs into one folder are then not serialised
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
