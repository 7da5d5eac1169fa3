"""Per-image pixel precision and recall (paper eqs. 8-9) with a fixed rule for empty masks.

MONAI's :class:`~monai.metrics.ConfusionMatrixMetric` returns ``NaN`` for a ratio whose denominator is
zero (precision of an empty prediction, recall of an empty truth) and its handler stores the raw
``(TP, FP, TN, FN)`` counts as per-image details. Bone-scan test sets hold thorax crops without any
metastasis, so the evaluation needs one number per image and a rule for those cases. The rule used
for all three pixel scores (and matching ``DiceMetric(ignore_empty=False)`` for the DSC):

* truth and prediction both empty: the score is ``1.0`` (nothing to find, nothing found);
* exactly one of them empty: the score is ``0.0`` (``TP = 0``; the undefined ratio counts as a miss).

With this rule, precision, recall and DSC of every image are finite and the mean over images is the
plain mean of the per-image values written to the CSV.

The same rule makes a poor criterion for keeping the best checkpoint: a generator that has collapsed
to empty maps scores the share of lesion-free images (a third of a split or more), above a real but
imperfect segmenter. ``pooled=True`` gives the score of all pixels of the split at once (for
``"f1 score"``: ``2 TP / (2 TP + FP + FN)``, the pooled DSC), which finding nothing scores 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.handlers import IgniteMetricHandler
from monai.metrics import ConfusionMatrixMetric
from monai.metrics.confusion_matrix import compute_confusion_matrix_metric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

__all__ = ["fill_empty_scores", "PixelScoreMetric", "PixelScore"]


def fill_empty_scores(scores: torch.Tensor, confusion_matrix: torch.Tensor) -> torch.Tensor:
    """Replace the undefined (``NaN``) entries of per-image scores following the empty-mask rule.

    Args:
        scores: ``(B, C)`` scores computed from ``confusion_matrix`` (``NaN`` where ``0 / 0``).
        confusion_matrix: ``(B, C, 4)`` counts ``(TP, FP, TN, FN)`` as MONAI's
            :func:`~monai.metrics.get_confusion_matrix` returns them.

    Returns:
        ``(B, C)`` float scores: ``1.0`` where truth and prediction are both empty, ``0.0`` where the
        score was undefined otherwise, unchanged elsewhere.
    """
    tp, fp, _, fn = confusion_matrix.unbind(-1)
    both_empty = (tp + fp + fn) == 0
    scores = torch.nan_to_num(scores.float(), nan=0.0)
    return torch.where(both_empty, torch.ones_like(scores), scores)


class PixelScoreMetric(ConfusionMatrixMetric):
    """One confusion-matrix score per image (``"precision"``, ``"sensitivity"``/``"recall"``, ...).

    Same inputs as :class:`~monai.metrics.ConfusionMatrixMetric`: binarised ``y_pred`` and ``y`` of shape
    ``(B, C, H, W)``. :meth:`scores` gives the per-image values with the empty-mask rule of this module;
    :meth:`aggregate` reduces those values (``"mean"`` by default: the mean over images that the paper
    reports).

    Args:
        metric_name: one confusion-matrix metric name understood by MONAI.
        include_background: passed to MONAI (``True`` for the single lesion channel).
        reduction: MONAI reduction applied to the ``(N, C)`` per-image scores in :meth:`aggregate`.
        pooled: score the pixels of all images together (one ``(1, C)`` row; the empty-mask rule then
            applies to the whole split), instead of one score per image.
    """

    def __init__(
        self,
        metric_name: str = "precision",
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        pooled: bool = False,
    ) -> None:
        super().__init__(
            include_background=include_background, metric_name=metric_name, compute_sample=True, reduction=reduction
        )
        self.pooled = pooled

    def scores(self) -> torch.Tensor:
        """Per-image scores ``(N, C)`` of every image seen since the last :meth:`reset` (``(1, C)`` if pooled)."""
        confusion_matrix = self.get_buffer()
        if not isinstance(confusion_matrix, torch.Tensor):
            raise ValueError("no images were given to the metric before aggregation.")
        if self.pooled:
            confusion_matrix = confusion_matrix.sum(dim=0, keepdim=True)
        raw = compute_confusion_matrix_metric(self.metric_name[0], confusion_matrix)
        return fill_empty_scores(raw, confusion_matrix)

    def aggregate(  # type: ignore[override]
        self, compute_sample: bool = True, reduction: MetricReduction | str | None = None
    ) -> torch.Tensor:
        """Reduce the per-image scores; ``compute_sample`` is accepted for MONAI compatibility (always per image)."""
        f, _ = do_metric_reduction(self.scores(), reduction or self.reduction)
        return f


class PixelScore(IgniteMetricHandler):
    """Ignite handler of :class:`PixelScoreMetric` for MONAI evaluators.

    Like MONAI's ``ConfusionMatrix`` handler, but ``engine.state.metric_details[name]`` receives the
    ``(N, C)`` per-image scores (not the raw confusion matrices), so MONAI's ``MetricsSaver`` writes them
    as the per-image CSV and its summary (mean, std, ...).

    Args:
        metric_name: ``"precision"``, ``"sensitivity"``/``"recall"``, or another MONAI confusion-matrix name.
        include_background: passed to MONAI.
        reduction: reduction of the per-image scores giving the handler's value (default: mean).
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``.
        save_details: store the per-image scores in ``engine.state.metric_details``.
        pooled: one score of all pixels of the split (see :class:`PixelScoreMetric`).
    """

    def __init__(
        self,
        metric_name: str = "precision",
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        pooled: bool = False,
    ) -> None:
        metric_fn = PixelScoreMetric(
            metric_name=metric_name, include_background=include_background, reduction=reduction, pooled=pooled
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)

    def compute(self) -> float | torch.Tensor:
        result = super().compute()  # stores the raw confusion matrices as details; replaced below
        if self.save_details and self._engine is not None and self._name is not None:
            self._engine.state.metric_details[self._name] = self.metric_fn.scores()  # type: ignore[attr-defined]
        return result
