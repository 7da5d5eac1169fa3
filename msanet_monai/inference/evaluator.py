"""A ``SupervisedEvaluator`` for batch inference that goes on past a bad input."""

from __future__ import annotations

import logging
from typing import Any

from monai.engines import SupervisedEvaluator

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
    output writer records it. Same arguments as ``SupervisedEvaluator``; the data loader must use
    ``batch_size=1`` (whole-body views differ in size, and one bad view must not take others with it).
    """

    def _iteration(self, engine: SupervisedEvaluator, batchdata: dict[str, Any]) -> Any:  # type: ignore[override]
        if isinstance(batchdata, dict) and ERROR_KEY in batchdata:
            engine.state.output = [self._error_output(batchdata, str(_first(batchdata[ERROR_KEY])))]
            return engine.state.output
        try:
            return super()._iteration(engine, batchdata)
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
