"""Errors raised for input that is not what it claims to be."""

from __future__ import annotations

import os

__all__ = ["BoneScanError", "CheckpointError", "ConfigError", "OutputWriteError", "PROJECT_ERRORS"]


class BoneScanError(ValueError):
    """A bone-scan file, mask or checkpoint that cannot be used; the message names the file.

    Args:
        path: the offending file (or ``None`` when the problem is not tied to a file).
        problem: what is wrong with it, in words a user can act on.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class CheckpointError(ValueError):
    """A weights file that cannot be loaded into the network at hand; the message names the file.

    Raised for a missing file, a file that is not a PyTorch checkpoint, and a checkpoint saved from
    another architecture or with other channel widths (PyTorch's missing/unexpected-key and
    size-mismatch errors, restated).

    Args:
        path: the checkpoint file.
        problem: what is wrong with it, in words a user can act on.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class OutputWriteError(BoneScanError):
    """An output file (mask, overlay, DICOM SEG, CSV, LabelMe) that could not be written.

    Raised for a full disk, a read-only or missing folder, or a permission error; ``path`` is the
    output file being written (not its temporary name), so a CSV row can say which file is missing.
    """


class ConfigError(ValueError):
    """A bundle config value that cannot work; the message names the config id.

    Args:
        config_id: the id in ``bundle/configs/*.json`` (what ``--<id>`` overrides on the command line).
        value: the value found.
        problem: what is wrong with it and what would work.
    """

    def __init__(self, config_id: str, value: object, problem: str) -> None:
        self.config_id = config_id
        self.value = value
        self.problem = problem
        super().__init__(f"config id {config_id!r} = {value!r}: {problem}")


#: the errors whose message is the whole story: a run that fails with one of them ends with that line
PROJECT_ERRORS = (BoneScanError, CheckpointError, ConfigError)
