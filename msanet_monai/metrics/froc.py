"""Free-response (FROC) summary of lesion detection over a sweep of thresholds on the probability maps.

For every threshold ``t`` of the sweep, each image's probability map is binarised (``>= t``), its
8-connected components are matched one-to-one to the truth lesions with the rule of
:mod:`msanet_monai.metrics.lesion_detection` (IoU ``>= min_iou``, Hungarian assignment), and the
pooled sensitivity and false positives per image are computed exactly as for the bundle's threshold.
The FROC curve is the list of these operating points, one per threshold, for all lesions and for
every lesion group (size classes, clustered, single); the x axis is always the false positives per
image over *all* images and all false positives (a false positive has no lesion group).

**Sensitivity at a target rate** ``r`` (0.5, 1, 2, 4 FP per image by default): the largest
sensitivity among the swept thresholds whose false positives per image are ``<= r``; ``0.0`` when
none is (the empty prediction, a threshold above every probability, has 0 FP and sensitivity 0).
No interpolation between operating points: with re-segmentation at each threshold, sensitivity is
not monotone in the threshold (a lower threshold can merge two matched components into one), and a
linearly interpolated point is an operating point no threshold achieves. The **FROC score** is the
mean of the sensitivities at the target rates (as in LUNA16 / CAMELYON16).

MONAI's ``monai.metrics.froc`` scores fixed candidate points (one probability per candidate, for
pathology slides) and interpolates linearly; here the candidates themselves change with the
threshold, hence this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from monai.handlers import IgniteMetricHandler
from monai.metrics import CumulativeIterationMetric

from .lesion_detection import (
    DEFAULT_CLUSTER_DISTANCE,
    DEFAULT_MIN_IOU,
    DEFAULT_SIZE_THRESHOLDS,
    LESION_COUNT_NAMES,
    LESION_GROUPS,
    LesionMatch,
    _check_masks,
    _check_settings,
    clustered_lesions,
    label_lesions,
    lesion_counts,
    match_lesions,
    summarise_lesion_counts,
)

__all__ = [
    "DEFAULT_FROC_THRESHOLDS",
    "DEFAULT_FP_TARGETS",
    "FROC_CURVE_COLUMNS",
    "froc_curve",
    "sensitivity_at_fp",
    "froc_summary",
    "LesionFROCMetric",
    "LesionFROC",
]

# the sweep: dense near 0 and 1, where a trained sigmoid output puts most pixels; holds 0.5, the
# bundle's threshold, so the curve passes through the reported operating point
DEFAULT_FROC_THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
DEFAULT_FP_TARGETS = (0.5, 1.0, 2.0, 4.0)
# columns of one operating point of the curve (one row of froc.csv)
FROC_CURVE_COLUMNS = (
    "threshold",
    "fp_per_image",
    "sensitivity",
    *(f"sensitivity_{g}" for g in LESION_GROUPS),
    "false_positives",
    "detected_lesions",
    "truth_lesions",
    "merged",
)


def froc_curve(counts: np.ndarray | torch.Tensor, thresholds: Sequence[float]) -> list[dict[str, float]]:
    """Operating points of an ``(N, len(thresholds), len(LESION_COUNT_NAMES))`` count table.

    Returns:
        one dict of :data:`FROC_CURVE_COLUMNS` per threshold, in the order of ``thresholds``.
    """
    if isinstance(counts, torch.Tensor):
        counts = counts.detach().cpu().numpy()
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 3 or counts.shape[1:] != (len(thresholds), len(LESION_COUNT_NAMES)):
        raise ValueError(
            f"expected FROC counts of shape (N, {len(thresholds)}, {len(LESION_COUNT_NAMES)}), got {counts.shape}."
        )
    curve = []
    for k, t in enumerate(thresholds):
        s = summarise_lesion_counts(counts[:, k])
        point = {"threshold": float(t), **{c: s[c] for c in FROC_CURVE_COLUMNS[1:-4]}}
        point.update(
            false_positives=s["false_positives"],
            detected_lesions=s["detected_lesions"],
            truth_lesions=s["truth_lesions"],
            merged=s["merged"],
        )
        curve.append(point)
    return curve


def sensitivity_at_fp(
    curve: Sequence[dict[str, float]], target: float, key: str = "sensitivity"
) -> tuple[float, float]:
    """Largest ``curve[i][key]`` with ``fp_per_image <= target`` and the threshold giving it.

    Returns:
        ``(sensitivity, threshold)``: ``(0.0, NaN)`` when no point qualifies (only the empty prediction
        does), ``(NaN, NaN)`` when the sensitivity is undefined (no truth lesion of that group). Ties go
        to the point with fewer false positives, then to the higher threshold.
    """
    if not curve or math.isnan(curve[0][key]):
        return math.nan, math.nan
    ok = [p for p in curve if p["fp_per_image"] <= target]
    if not ok:
        return 0.0, math.nan
    best = max(ok, key=lambda p: (p[key], -p["fp_per_image"], p["threshold"]))
    return float(best[key]), float(best["threshold"])


def _target_name(target: float) -> str:
    return f"{target:g}fp"


def froc_summary(
    curve: Sequence[dict[str, float]], fp_targets: Sequence[float] = DEFAULT_FP_TARGETS
) -> dict[str, float]:
    """Flat FROC figures from a curve of :func:`froc_curve`.

    Returns:
        for every group suffix ``""`` and ``_<group>`` of :data:`LESION_GROUPS` and target ``r``:
        ``sensitivity<suffix>_at_<r>fp`` (e.g. ``sensitivity_at_0.5fp``, ``sensitivity_small_at_1fp``)
        and ``score<suffix>`` (mean over the targets); ``threshold_at_<r>fp`` for the overall figure.
    """
    summary: dict[str, float] = {}
    for suffix in ("", *(f"_{g}" for g in LESION_GROUPS)):
        values = []
        for r in fp_targets:
            value, threshold = sensitivity_at_fp(curve, r, f"sensitivity{suffix}")
            summary[f"sensitivity{suffix}_at_{_target_name(r)}"] = value
            if not suffix:
                summary[f"threshold_at_{_target_name(r)}"] = threshold
            values.append(value)
        summary[f"score{suffix}"] = float(np.mean(values)) if values else math.nan
    return summary


class LesionFROCMetric(CumulativeIterationMetric):
    """Lesion counts of every image at every threshold of a sweep (MONAI cumulative metric).

    Call it with probability maps ``y_pred`` and truth ``y`` of shape ``(B, 1, *spatial)``. The buffer
    is the ``(N, len(thresholds), len(LESION_COUNT_NAMES))`` count table (per image, per threshold);
    :meth:`aggregate` returns ``{"thresholds", "fp_targets", "curve", "summary"}``: the thresholds,
    the targets, the :func:`froc_curve` and the :func:`froc_summary`.

    Args:
        thresholds: the sweep (increasing probabilities in ``(0, 1]``).
        fp_targets: false positives per image at which sensitivity is reported.
        size_thresholds: area bounds in pixels ``(small/medium, medium/large)``.
        min_iou: least IoU of a matched pair.
        cluster_distance: pixels between two truth lesions for both to be clustered.
    """

    def __init__(
        self,
        thresholds: Sequence[float] = DEFAULT_FROC_THRESHOLDS,
        fp_targets: Sequence[float] = DEFAULT_FP_TARGETS,
        size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS,
        min_iou: float = DEFAULT_MIN_IOU,
        cluster_distance: float = DEFAULT_CLUSTER_DISTANCE,
    ) -> None:
        super().__init__()
        _check_settings(size_thresholds, min_iou, cluster_distance)
        t = [float(x) for x in thresholds]
        if not t or any(b <= a for a, b in zip(t, t[1:])) or t[0] <= 0.0 or t[-1] > 1.0:
            raise ValueError(f"FROC thresholds must be increasing probabilities in (0, 1], got {list(thresholds)}.")
        if not fp_targets or any(r <= 0 for r in fp_targets):
            raise ValueError(f"FP-per-image targets must be positive, got {list(fp_targets)}.")
        self.thresholds = tuple(t)
        self.fp_targets = tuple(float(r) for r in fp_targets)
        self.size_thresholds = tuple(size_thresholds)
        self.min_iou = min_iou
        self.cluster_distance = cluster_distance

    def _image_counts(self, prob: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
        """``(len(thresholds), len(LESION_COUNT_NAMES))`` counts of one image (spatial shape only)."""
        prob_np = prob.detach().cpu().numpy()
        truth_labels, n_truth = label_lesions(truth)
        # the truth does not change with the threshold: its clusters are found once
        clustered = clustered_lesions(truth_labels, n_truth, self.cluster_distance)
        truth_binary = (truth_labels > 0).astype(np.float32)
        rows = []
        for t in self.thresholds:
            match: LesionMatch = match_lesions((prob_np >= t).astype(np.float32), truth_binary, self.min_iou)
            rows.append(lesion_counts(match, self.size_thresholds, clustered=clustered))
        return np.stack(rows)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """``(B, 1, *spatial)`` probabilities and truth -> ``(B, len(thresholds), len(LESION_COUNT_NAMES))``."""
        y = _check_masks(y_pred, y)
        counts = [self._image_counts(p[0], t[0]) for p, t in zip(y_pred, y)]
        return torch.as_tensor(np.stack(counts), dtype=torch.float64)

    def aggregate(self) -> dict[str, Any]:  # type: ignore[override]
        """Curve and summary over every image seen since the last :meth:`reset`."""
        counts = self.get_buffer()
        if not isinstance(counts, torch.Tensor):
            raise ValueError("no images were given to the FROC metric before aggregation.")
        curve = froc_curve(counts, self.thresholds)
        return {
            "thresholds": list(self.thresholds),
            "fp_targets": list(self.fp_targets),
            "curve": curve,
            "summary": froc_summary(curve, self.fp_targets),
        }


class LesionFROC(IgniteMetricHandler):
    """Ignite handler of :class:`LesionFROCMetric` for MONAI evaluators.

    Feed it the probability maps (before thresholding; e.g. a ``CopyItemsd`` of ``pred`` to ``prob`` in
    the evaluator's postprocessing and ``output_transform=from_engine(["prob", "label"])``). At the end
    of an epoch, attached as ``name`` (say ``"froc"``), it puts ``froc`` (the FROC score) and
    ``froc_<figure>`` for every figure of :func:`froc_summary` into ``engine.state.metrics``, and the
    whole result of :meth:`LesionFROCMetric.aggregate` (thresholds, targets, curve, summary) into
    ``engine.state.metric_details[name]`` for :class:`~msanet_monai.metrics.EvaluationReportSaver`.

    Args:
        thresholds: the threshold sweep.
        fp_targets: false positives per image at which sensitivity is reported.
        size_thresholds: area bounds in pixels ``(small/medium, medium/large)``.
        min_iou: least IoU of a matched pair.
        cluster_distance: pixels between two truth lesions for both to be clustered.
        output_transform: extracts ``(probabilities, truth)`` from ``engine.state.output``.
        save_details: store the result in ``engine.state.metric_details``.
    """

    def __init__(
        self,
        thresholds: Sequence[float] = DEFAULT_FROC_THRESHOLDS,
        fp_targets: Sequence[float] = DEFAULT_FP_TARGETS,
        size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS,
        min_iou: float = DEFAULT_MIN_IOU,
        cluster_distance: float = DEFAULT_CLUSTER_DISTANCE,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        metric_fn = LesionFROCMetric(
            thresholds=thresholds,
            fp_targets=fp_targets,
            size_thresholds=size_thresholds,
            min_iou=min_iou,
            cluster_distance=cluster_distance,
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)

    def compute(self) -> dict[str, Any]:  # type: ignore[override]
        result = self.metric_fn.aggregate()
        self._is_reduced = True
        if self.save_details:
            if self._engine is None or self._name is None:
                raise RuntimeError("please call the attach() function to connect expected engine first.")
            self._engine.state.metric_details[self._name] = result
        return result

    def completed(self, engine: Any, name: str) -> None:
        # scalars only in engine.state.metrics (MetricsSaver and StatsHandler expect them)
        summary = self.compute()["summary"]
        engine.state.metrics[name] = summary["score"]
        for figure, value in summary.items():
            engine.state.metrics[f"{name}_{figure}"] = value
