"""Errors raised for input that is not what it claims to be."""

from __future__ import annotations

import os

__all__ = ["BoneScanError"]


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
