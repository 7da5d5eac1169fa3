"""A ``SupervisedEvaluator`` for batch inference that goes on past a bad input."""

from __future__ import annotations

import logging
import time
from typing import Any

from ignite.engine import Events
from monai.data import list_data_collate
from monai.engines import IterationEvents, SupervisedEvaluator

from msanet_monai.inference.inputs import ERROR_KEY, describe_error

__all__ = ["BoneScanInferenceEvaluator"]

logger = logging.getLogger(__name__)


def _first(value: Any) -> Any:
    # the DataLoader collates an error item's strings into one-element lists (batch size 1)
    return value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value


def _meta_path(batchdata: Any) -> str | None:
    image = batchdata.get("image") if isinstance(batchdata, dict) else None
    meta = getattr(image, "meta", None)
    return None if not meta else str(_first(meta.get("filename_or_obj")))


class BoneScanInferenceEvaluator(SupervisedEvaluator):
    """MONAI's ``SupervisedEvaluator`` (eval mode, inferer, postprocessing, handlers) run one view per
    iteration, where one view's failure becomes an error output instead of stopping the run.

    * an error item from :class:`~msanet_monai.inference.FailSafeDataset` (the view could not be
      loaded) skips the network and the postprocessing;
    * an exception in the network, the inferer or the postprocessing (e.g. ``Invertd``) is caught.

    Either way ``engine.state.output`` is ``[{"image": path, "view": view, "error": message}]`` and the
    output writer records it. Same arguments as ``SupervisedEvaluator``, plus ``timing``.

    The data loader gives either collated batches of one view (``batch_size=1``) or, with
    :class:`~msanet_monai.inference.StudyBatchSampler` and ``collate_fn=collate_views``, a list of the
    loaded views of one study: the good ones are collated and go through the network as one batch;
    if that batch fails (e.g. views of different sizes), each view is run alone, so one bad view does
    not take the other with it.

    When the run starts (after the checkpoint loader), a network with a ``prepare()`` method (an
    :class:`~msanet_monai.inference.runtime.InferenceRuntime`) is prepared, once per run. ``timing``
    (an :class:`~msanet_monai.inference.timing.InferenceTiming`) collects the network and
    postprocessing seconds and logs the run's figures when it completes.
    """

    def __init__(self, *args: Any, timing: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timing = timing
        self._forward_start = 0.0
        self._forward_end = 0.0
        self.add_event_handler(Events.STARTED, self._prepare_network)
        self.add_event_handler(IterationEvents.FORWARD_COMPLETED, self._forward_completed)
        if timing is not None:
            self.add_event_handler(Events.COMPLETED, lambda _: timing.log())

    def _prepare_network(self, engine: Any = None) -> None:
        if self.timing is not None:
            self.timing.started()
        prepare = getattr(self.network, "prepare", None)
        if callable(prepare):
            start = time.perf_counter()
            prepare()
            if self.timing is not None:
                self.timing.add("prepare", time.perf_counter() - start)

    def _forward_completed(self, engine: Any = None) -> None:
        self._forward_end = time.perf_counter()

    def _iteration(self, engine: SupervisedEvaluator, batchdata: Any) -> Any:  # type: ignore[override]
        if isinstance(batchdata, list):
            return self._study_iteration(engine, batchdata)
        return self._view_iteration(engine, batchdata)

    def _study_iteration(self, engine: SupervisedEvaluator, items: list[dict[str, Any]]) -> Any:
        """The views of one study (uncollated items): good views in one network batch, errors as outputs."""
        outputs: list[Any] = [None] * len(items)
        batches: list[Any] = [{}] * len(items)
        good = [i for i, item in enumerate(items) if not (isinstance(item, dict) and ERROR_KEY in item)]
        for i in set(range(len(items))) - set(good):
            outputs[i] = self._error_output(items[i], str(items[i][ERROR_KEY]))
        if self.timing is not None:
            self.timing.count(studies=1, views=len(items))
        groups = [good] if good else []
        if len(good) > 1:
            try:
                self._run_group(engine, items, good, outputs, batches, raise_errors=True)
                groups = []
            except Exception as e:  # noqa: BLE001  (then each view alone, so that only a bad one fails)
                logger.info("views of %s run one by one (%s)", _meta_path(items[good[0]]), e)
                groups = [[i] for i in good]
        for group in groups:
            self._run_group(engine, items, group, outputs, batches, raise_errors=False)
        engine.state.batch, engine.state.output = batches, outputs
        return outputs

    def _run_group(self, engine, items, group, outputs, batches, raise_errors: bool) -> None:
        collated = None
        try:
            collated = list_data_collate([items[i] for i in group])
            engine.state.batch = collated
            self._forward_start = self._forward_end = time.perf_counter()
            out = super()._iteration(engine, collated)
            self._add_times()
            for k, i in enumerate(group):
                outputs[i], batches[i] = out[k], engine.state.batch[k]
        except Exception as e:  # noqa: BLE001  (one view failing must not stop the batch)
            if raise_errors:
                raise
            path = _meta_path(collated if collated is not None else items[group[0]]) or _meta_path(items[group[0]])
            message = describe_error(e, path)
            logger.warning("inference failed for %s: %s", path, message)
            outputs[group[0]] = self._error_output(items[group[0]], message)

    def _add_times(self) -> None:
        if self.timing is not None:
            end = time.perf_counter()
            self.timing.add("network", self._forward_end - self._forward_start)
            self.timing.add("postprocessing", end - self._forward_end)

    def _view_iteration(self, engine: SupervisedEvaluator, batchdata: dict[str, Any]) -> Any:
        if isinstance(batchdata, dict) and ERROR_KEY in batchdata:
            engine.state.output = [self._error_output(batchdata, str(_first(batchdata[ERROR_KEY])))]
            return engine.state.output
        try:
            self._forward_start = self._forward_end = time.perf_counter()
            output = super()._iteration(engine, batchdata)
            self._add_times()
            return output
        except Exception as e:  # noqa: BLE001  (one view failing must not stop the batch)
            path = _meta_path(batchdata)
            message = describe_error(e, path)
            logger.warning("inference failed for %s: %s", path, message)
            engine.state.output = [self._error_output(batchdata, message)]
            return engine.state.output

    @staticmethod
    def _error_output(batchdata: Any, message: str) -> dict[str, Any]:
        path = _meta_path(batchdata) or str(_first(batchdata.get("image", "")))
        view = batchdata.get("view", "") if isinstance(batchdata, dict) else ""
        return {"image": path, "view": str(_first(view) or ""), ERROR_KEY: message}
