"""Small hand-drawn masks shared by the metric tests."""

from __future__ import annotations

import numpy as np

__all__ = ["box_mask"]


def box_mask(shape=(32, 32), boxes=(), pixels=()) -> np.ndarray:
    """Binary float32 mask with filled boxes ``(r0, r1, c0, c1)`` (ends exclusive) and single pixels ``(r, c)``."""
    m = np.zeros(shape, dtype=np.float32)
    for r0, r1, c0, c1 in boxes:
        m[r0:r1, c0:c1] = 1
    for r, c in pixels:
        m[r, c] = 1
    return m
