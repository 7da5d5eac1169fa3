"""Lesion-level detection: connected components of prediction and truth, matched per image.

Pixel scores (DSC, precision, recall) let one large hot spot outweigh several small ones; the clinical
question for bone metastases is how many lesions are found and how many false hot spots are flagged,
by lesion size. This module answers it:

* **Lesions** are the 8-connected components (in 2-D; full connectivity in any dimension) of the
  binarised truth and prediction (``>= threshold`` is lesion).
* **Matching**: a truth lesion and a predicted component *match* when their intersection over union
  is ``> 0`` (any shared pixel, the default ``min_iou=0``) or ``>= min_iou`` when ``min_iou > 0``.
  A truth lesion is **detected** when at least one predicted component matches it; a predicted
  component is a **false positive** when it matches no truth lesion. One predicted component covering
  two truth lesions detects both; a truth lesion split into two predicted components is one detection
  and no false positive.
* **Size classes** by component area in pixels: ``small < 10 <= medium < 64 <= large`` (default
  ``size_thresholds=(10, 64)``; at 2.26 mm pixels, 1 px = 5.1 mm2, so 51 mm2 and 327 mm2, about 3.5
  and 8 pixels / 8 and 18 mm across). Truth lesions are classed by their own area, false positives by
  the area of the predicted component.
* **Summary** over a set of images: detection sensitivity pooled over all truth lesions
  (``sum(detected) / sum(truth)``, ``NaN`` when the set holds no truth lesion of that class) and false
  positives per image (``sum(false positives) / number of images``), overall and per size class.

scipy's ``ndimage.label`` does the labelling: MONAI's connected-component helpers keep or remove
components but do not report the per-component overlaps needed for matching.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.handlers import IgniteMetricHandler
from monai.metrics import CumulativeIterationMetric
from scipy import ndimage


__all__ = [
    "SIZE_CLASSES",
    "DEFAULT_SIZE_THRESHOLDS",
    "LESION_COUNT_NAMES",
    "LesionMatch",
    "label_lesions",
    "size_class",
    "match_lesions",
    "lesion_counts",
    "summarise_lesion_counts",
    "LesionDetectionMetric",
    "LesionDetection",
]

SIZE_CLASSES = ("small", "medium", "large")
# area bounds in pixels between small/medium and medium/large (see the module docstring)
DEFAULT_SIZE_THRESHOLDS = (10, 64)
# columns of the per-image count table (one row per image) that the metric accumulates
LESION_COUNT_NAMES = (
    "truth",
    *(f"truth_{s}" for s in SIZE_CLASSES),
    "detected",
    *(f"detected_{s}" for s in SIZE_CLASSES),
    "predicted",
    "false_positives",
    *(f"false_positives_{s}" for s in SIZE_CLASSES),
)


@dataclass
class LesionMatch:
    """Components of one image and how they match.

    Attributes:
        truth_areas: ``(T,)`` pixel areas of the truth lesions (labels ``1..T`` of ``truth_labels``).
        pred_areas: ``(P,)`` pixel areas of the predicted components (labels ``1..P``).
        iou: ``(T, P)`` intersection over union of every truth/prediction pair.
        detected: ``(T,)`` bool, truth lesion matched by at least one predicted component.
        false_positive: ``(P,)`` bool, predicted component matching no truth lesion.
        truth_labels: label image of the truth lesions (same shape as the mask).
        pred_labels: label image of the predicted components.
    """

    truth_areas: np.ndarray
    pred_areas: np.ndarray
    iou: np.ndarray
    detected: np.ndarray
    false_positive: np.ndarray
    truth_labels: np.ndarray
    pred_labels: np.ndarray


def size_class(areas: np.ndarray, size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS) -> np.ndarray:
    """Size class index (0 small, 1 medium, 2 large) of each area in pixels.

    ``area < size_thresholds[0]`` is small, ``area >= size_thresholds[1]`` is large.
    """
    low, high = size_thresholds
    return np.digitize(np.asarray(areas), [low, high], right=False)


def _as_binary(mask: np.ndarray | torch.Tensor, threshold: float) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask) >= threshold


def label_lesions(mask: np.ndarray | torch.Tensor, threshold: float = 0.5) -> tuple[np.ndarray, int]:
    """Label the lesions (fully connected components: 8-neighbours in 2-D) of one mask.

    Args:
        mask: spatial shape only (e.g. ``(H, W)``); probabilities or ``{0, 1}``; ``>= threshold`` is lesion.
        threshold: binarisation threshold.

    Returns:
        the int label image of ``mask``'s shape (``0`` background, ``1..n`` lesions) and ``n``.
    """
    binary = _as_binary(mask, threshold)
    # full connectivity: a diagonal step joins two pixels of one hot spot
    labels, count = ndimage.label(binary, structure=ndimage.generate_binary_structure(binary.ndim, binary.ndim))
    return labels, int(count)


def match_lesions(
    pred: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor, min_iou: float = 0.0, threshold: float = 0.5
) -> LesionMatch:
    """Label the components of one prediction and one truth mask and match them.

    Args:
        pred: prediction of one image, spatial shape only (e.g. ``(H, W)``); probabilities or ``{0, 1}``.
        truth: truth mask of the same shape.
        min_iou: ``0`` matches any overlapping pair (IoU ``> 0``); otherwise a pair matches when its
            IoU ``>= min_iou``.
        threshold: values ``>= threshold`` are lesion.

    Raises:
        ValueError: the shapes differ.
    """
    if tuple(pred.shape) != tuple(truth.shape):
        raise ValueError(f"prediction and truth shapes differ: {tuple(pred.shape)} and {tuple(truth.shape)}.")
    truth_labels, n_truth = label_lesions(truth, threshold)
    pred_labels, n_pred = label_lesions(pred, threshold)
    # joint histogram of (truth label, predicted label): row 0 / column 0 are background
    joint = np.bincount(
        (truth_labels.astype(np.int64) * (n_pred + 1) + pred_labels).ravel(), minlength=(n_truth + 1) * (n_pred + 1)
    ).reshape(n_truth + 1, n_pred + 1)
    intersection = joint[1:, 1:].astype(np.float64)
    truth_areas = joint[1:, :].sum(axis=1)
    pred_areas = joint[:, 1:].sum(axis=0)
    union = truth_areas[:, None] + pred_areas[None, :] - intersection
    iou = np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)
    matched = iou > 0 if min_iou <= 0 else iou >= min_iou
    return LesionMatch(
        truth_areas=truth_areas,
        pred_areas=pred_areas,
        iou=iou,
        detected=matched.any(axis=1),
        false_positive=~matched.any(axis=0),
        truth_labels=truth_labels,
        pred_labels=pred_labels,
    )


def lesion_counts(match: LesionMatch, size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS) -> np.ndarray:
    """The per-image counts named by :data:`LESION_COUNT_NAMES` (float64 vector) for one :class:`LesionMatch`."""
    truth_cls = size_class(match.truth_areas, size_thresholds)
    pred_cls = size_class(match.pred_areas, size_thresholds)
    per_class = range(len(SIZE_CLASSES))
    counts = [
        len(match.truth_areas),
        *(np.sum(truth_cls == c) for c in per_class),
        np.sum(match.detected),
        *(np.sum(match.detected & (truth_cls == c)) for c in per_class),
        len(match.pred_areas),
        np.sum(match.false_positive),
        *(np.sum(match.false_positive & (pred_cls == c)) for c in per_class),
    ]
    return np.asarray(counts, dtype=np.float64)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else math.nan


def summarise_lesion_counts(counts: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Summary figures of an ``(N, len(LESION_COUNT_NAMES))`` count table (one row per image).

    Returns:
        ``sensitivity`` and ``sensitivity_<size>`` (detected / truth lesions pooled over the images,
        ``NaN`` without truth lesions), ``fp_per_image`` and ``fp_per_image_<size>`` (false positives /
        images), ``truth_lesions[_<size>]`` and ``detected_lesions[_<size>]`` (the pooled counts), ``images``.
    """
    if isinstance(counts, torch.Tensor):
        counts = counts.detach().cpu().numpy()
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, len(LESION_COUNT_NAMES))
    total = dict(zip(LESION_COUNT_NAMES, counts.sum(axis=0)))
    n_images = counts.shape[0]
    summary = {"sensitivity": _ratio(total["detected"], total["truth"])}
    summary.update({f"sensitivity_{s}": _ratio(total[f"detected_{s}"], total[f"truth_{s}"]) for s in SIZE_CLASSES})
    summary["fp_per_image"] = _ratio(total["false_positives"], n_images)
    summary.update({f"fp_per_image_{s}": _ratio(total[f"false_positives_{s}"], n_images) for s in SIZE_CLASSES})
    summary["truth_lesions"] = float(total["truth"])
    summary.update({f"truth_lesions_{s}": float(total[f"truth_{s}"]) for s in SIZE_CLASSES})
    summary["detected_lesions"] = float(total["detected"])
    summary.update({f"detected_lesions_{s}": float(total[f"detected_{s}"]) for s in SIZE_CLASSES})
    summary["images"] = float(n_images)
    return summary


class LesionDetectionMetric(CumulativeIterationMetric):
    """Lesion detection counts per image, accumulated over iterations (MONAI cumulative metric).

    Call it with ``y_pred`` and ``y`` of shape ``(B, 1, *spatial)`` (batch-first tensors or lists of
    channel-first tensors), probabilities or binarised. The buffer (:meth:`get_buffer`) is the
    ``(N, len(LESION_COUNT_NAMES))`` table of per-image counts; :meth:`aggregate` returns the summary
    dictionary of :func:`summarise_lesion_counts`.

    Args:
        size_thresholds: area bounds in pixels ``(small/medium, medium/large)``.
        min_iou: matching criterion, see :func:`match_lesions`.
        threshold: values ``>= threshold`` are lesion.
    """

    def __init__(
        self, size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS, min_iou: float = 0.0, threshold: float = 0.5
    ) -> None:
        super().__init__()
        if len(size_thresholds) != 2 or size_thresholds[0] > size_thresholds[1]:
            raise ValueError(f"size_thresholds must be two increasing areas in pixels, got {size_thresholds}.")
        self.size_thresholds = tuple(size_thresholds)
        self.min_iou = min_iou
        self.threshold = threshold

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """``(B, 1, *spatial)`` prediction and truth -> ``(B, len(LESION_COUNT_NAMES))`` counts."""
        if y is None:
            raise ValueError("lesion detection needs the truth mask y.")
        if y_pred.shape != y.shape:
            raise ValueError(f"y_pred and y should have same shapes, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
        if y_pred.ndim < 3 or y_pred.shape[1] != 1:
            raise ValueError(f"expected (B, 1, *spatial) lesion masks, got shape {tuple(y_pred.shape)}.")
        rows = [
            lesion_counts(match_lesions(p[0], t[0], self.min_iou, self.threshold), self.size_thresholds)
            for p, t in zip(y_pred, y)
        ]
        return torch.as_tensor(np.stack(rows), dtype=torch.float64)

    def aggregate(self) -> dict[str, float]:  # type: ignore[override]
        """Summary figures over every image seen since the last :meth:`reset`."""
        counts = self.get_buffer()
        if not isinstance(counts, torch.Tensor):
            raise ValueError("no images were given to the metric before aggregation.")
        return summarise_lesion_counts(counts)


class LesionDetection(IgniteMetricHandler):
    """Ignite handler of :class:`LesionDetectionMetric` for MONAI evaluators.

    At the end of an epoch it puts several scalars into ``engine.state.metrics`` under the name it was
    attached with (say ``"lesion"``): ``lesion`` itself (the ``key_figure``, overall sensitivity by
    default, so it can serve as key metric) and ``lesion_<figure>`` for every figure of
    :func:`summarise_lesion_counts` (``lesion_sensitivity_small``, ``lesion_fp_per_image``, ...). The
    per-image count table goes to ``engine.state.metric_details[name]``;
    :class:`~msanet_monai.metrics.EvaluationReportSaver` writes it into the per-image CSV.

    Args:
        size_thresholds: area bounds in pixels ``(small/medium, medium/large)``.
        min_iou: matching criterion, see :func:`match_lesions`.
        threshold: values ``>= threshold`` are lesion.
        key_figure: the summary figure reported under the bare name.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``.
        save_details: store the per-image counts in ``engine.state.metric_details``.
    """

    def __init__(
        self,
        size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS,
        min_iou: float = 0.0,
        threshold: float = 0.5,
        key_figure: str = "sensitivity",
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        metric_fn = LesionDetectionMetric(size_thresholds=size_thresholds, min_iou=min_iou, threshold=threshold)
        self.key_figure = key_figure
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)

    def compute(self) -> dict[str, float]:  # type: ignore[override]
        summary = self.metric_fn.aggregate()
        if self.key_figure not in summary:
            raise ValueError(f"key_figure {self.key_figure!r} is not one of {sorted(summary)}.")
        self._is_reduced = True
        if self.save_details:
            if self._engine is None or self._name is None:
                raise RuntimeError("please call the attach() function to connect expected engine first.")
            self._engine.state.metric_details[self._name] = self.metric_fn.get_buffer()
        return summary

    def completed(self, engine: Any, name: str) -> None:
        # several scalars instead of one dict: MetricsSaver, StatsHandler and key-metric selection all
        # expect scalars in engine.state.metrics
        summary = self.compute()
        engine.state.metrics[name] = summary[self.key_figure]
        for figure, value in summary.items():
            engine.state.metrics[f"{name}_{figure}"] = value
