"""Atomic output files: every writer of the project writes through :func:`atomic_output`.

A file is written under a hidden temporary name in its own folder, flushed to disk, then renamed
over the final name with ``os.replace`` (atomic on POSIX). A crash, a full disk or a second process
therefore leaves either the previous complete file or the new complete file, never a partial one;
a failed write removes its temporary file and raises a :class:`~msanet_monai.errors.OutputWriteError`
naming the output file (not the temporary one).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from msanet_monai.errors import OutputWriteError

__all__ = ["atomic_output", "temporary_name"]


def temporary_name(path: str | os.PathLike) -> str:
    """A hidden, unique sibling of ``path`` that keeps its suffix (``.x.<uuid>.tmp.mask.nii.gz``).

    The suffix is kept because nibabel and PIL choose the file format from it; the leading dot keeps
    the temporary file out of input-folder listings (``find_inputs`` skips hidden files).
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(folder, f".{uuid.uuid4().hex[:12]}.tmp.{name}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[str]:
    """Context manager yielding a temporary path to write; on success it replaces ``path`` atomically.

    Example::

        with atomic_output("out/a_mask.nii.gz") as tmp:
            nib.save(image, tmp)

    Raises:
        OutputWriteError: the temporary file could not be written, synced or renamed (``ENOSPC``,
            read-only folder, permissions); the message names ``path`` and the OS error.
    """
    final = os.path.abspath(os.fspath(path))
    tmp = temporary_name(final)
    try:
        yield tmp
        # fsync so that the rename never publishes a file whose blocks are not on disk yet
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise OutputWriteError(final, f"cannot write this output file ({e.strerror or e})") from e
        raise
