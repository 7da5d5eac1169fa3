"""Where an inference run spends its time: reading, preprocessing, network, postprocessing, writing.

One :class:`InferenceTiming` is shared (through the config) by the dataset (reading = the loader
transform, preprocessing = the other transforms), the evaluator (network = the inferer's forward,
postprocessing = ``Invertd`` and the threshold; start-up = preparing the runtime) and the output writer
(writing). Reading, preprocessing and writing run in background threads, so their sums can exceed
their share of the wall time: they overlap the network. When the run ends one log line gives the
figures as JSON, ``inference timing: {...}``, which benchmarks/fast_inference.py reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator

__all__ = ["PHASES", "InferenceTiming", "TIMING_PREFIX"]

logger = logging.getLogger(__name__)

PHASES = ("prepare", "reading", "preprocessing", "network", "postprocessing", "writing")
#: start of the log line holding a run's timing as JSON
TIMING_PREFIX = "inference timing: "


class InferenceTiming:
    """Thread-safe sums of seconds per phase (:data:`PHASES`), plus the run's wall time and study count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.studies = 0
        self.views = 0
        self._start: float | None = None
        self.wall = 0.0

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def started(self) -> None:
        self._start = time.perf_counter()

    def count(self, studies: int = 0, views: int = 0) -> None:
        with self._lock:
            self.studies += studies
            self.views += views

    def summary(self) -> dict:
        """Seconds per phase, the wall time of the engine run, studies and views."""
        if self._start is not None:
            self.wall = time.perf_counter() - self._start
        with self._lock:
            return {"wall": round(self.wall, 4), "studies": self.studies, "views": self.views,
                    **{k: round(v, 4) for k, v in self.seconds.items()}}

    def log(self) -> dict:
        """Log the summary as one ``inference timing: {json}`` line and return it."""
        summary = self.summary()
        logger.info("%s%s", TIMING_PREFIX, json.dumps(summary))
        return summary
