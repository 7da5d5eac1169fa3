"""Lesion-level detection: connected components of prediction and truth, matched one-to-one per image.

Pixel scores (DSC, precision, recall) let one large hot spot outweigh several small ones; the clinical
question for bone metastases is how many lesions are found and how many false hot spots are flagged,
by lesion size and for clustered lesions. This module answers it with rules that a prediction cannot
game by marking large areas (one blob over the whole crop scores sensitivity ~0 and one false positive):

* **Lesions** are the 8-connected components (in 2-D; full connectivity in any dimension) of the
  binarised truth and prediction (``>= threshold`` is lesion).
* **Matching** is one-to-one. A truth lesion and a predicted component are a *candidate pair* when
  they share pixels and their intersection over union is ``>= min_iou`` (default
  :data:`DEFAULT_MIN_IOU` = 0.1). Among the candidate pairs, the assignment with the largest summed
  IoU in which every truth lesion and every predicted component appears at most once is taken
  (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``). A matched truth lesion is
  **detected** (a true positive); an unmatched truth lesion is missed (a false negative); an unmatched
  predicted component is a **false positive**, also when it lies on a truth lesion (a second fragment
  of a split lesion, or a blob too large for IoU 0.1).
* **Merged components**: a predicted component that shares pixels with two or more truth lesions is
  a *merged* error, counted on its own (``merged``), besides the at most one lesion it may be matched
  to; ``merged_lesions`` counts the truth lesions such components touch.
* **Clustered lesions**: a truth lesion is *clustered* when a pixel of another truth lesion of the same
  image lies within ``cluster_distance`` pixels (Euclidean, pixel centre to pixel centre; default
  :data:`DEFAULT_CLUSTER_DISTANCE` = 5 px, 11.3 mm at 2.26 mm pixels) of one of its pixels, else *single*.
* **Size classes** by component area in pixels: ``small < 10 <= medium < 64 <= large`` (default
  ``size_thresholds=(10, 64)``; at 2.26 mm pixels, 1 px = 5.1 mm2, so 51 mm2 and 327 mm2, the areas of
  discs 8 and 20 mm across). Truth lesions are classed by their own area, false positives by the area
  of the predicted component.
* **Summary** over a set of images: detection sensitivity pooled over all truth lesions
  (``sum(detected) / sum(truth)``, ``NaN`` when the set holds no truth lesion of that group), false
  positives per image (``sum(false positives) / number of images``), overall, per size class and
  (sensitivity) for clustered and single lesions; images whose truth has no lesion (*normal images*)
  are also reported apart: false positives per normal image and the fraction of normal images with any.

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
from scipy.optimize import linear_sum_assignment

__all__ = [
    "SIZE_CLASSES",
    "LESION_GROUPS",
    "DEFAULT_SIZE_THRESHOLDS",
    "DEFAULT_MIN_IOU",
    "DEFAULT_CLUSTER_DISTANCE",
    "LESION_COUNT_NAMES",
    "LesionMatch",
    "label_lesions",
    "size_class",
    "clustered_lesions",
    "match_components",
    "match_lesions",
    "lesion_counts",
    "summarise_lesion_counts",
    "LesionDetectionMetric",
    "LesionDetection",
]

SIZE_CLASSES = ("small", "medium", "large")
# groups of truth lesions reported apart: the size classes, then clustered / single
LESION_GROUPS = (*SIZE_CLASSES, "clustered", "single")
# area bounds in pixels between small/medium and medium/large (see the module docstring)
DEFAULT_SIZE_THRESHOLDS = (10, 64)
# least IoU of a matched pair: a prediction up to 10 times the area of a lesion it contains still
# matches it (a 1-px lesion inside a 3 x 3 blob), a blob over a whole 256 x 256 crop matches nothing
DEFAULT_MIN_IOU = 0.1
# pixels between the closest pixels of two truth lesions for both to be "clustered"
DEFAULT_CLUSTER_DISTANCE = 5.0
# columns of the per-image count table (one row per image) that the metric accumulates
LESION_COUNT_NAMES = (
    "truth",
    *(f"truth_{g}" for g in LESION_GROUPS),
    "detected",
    *(f"detected_{g}" for g in LESION_GROUPS),
    "predicted",
    "false_positives",
    *(f"false_positives_{s}" for s in SIZE_CLASSES),
    "merged",
    "merged_lesions",
)


@dataclass
class LesionMatch:
    """Components of one image and how they match.

    Attributes:
        truth_areas: ``(T,)`` pixel areas of the truth lesions (labels ``1..T`` of ``truth_labels``).
        pred_areas: ``(P,)`` pixel areas of the predicted components (labels ``1..P``).
        iou: ``(T, P)`` intersection over union of every truth/prediction pair.
        pairs: ``(M, 2)`` int ``(truth index, predicted index)`` of the matched pairs (0-based).
        detected: ``(T,)`` bool, truth lesion matched to a predicted component.
        false_positive: ``(P,)`` bool, predicted component matched to no truth lesion.
        merged: ``(P,)`` bool, predicted component sharing pixels with two or more truth lesions.
        merged_truth: ``(T,)`` bool, truth lesion touched by a merged component.
        truth_labels: label image of the truth lesions (same shape as the mask).
        pred_labels: label image of the predicted components.
    """

    truth_areas: np.ndarray
    pred_areas: np.ndarray
    iou: np.ndarray
    pairs: np.ndarray
    detected: np.ndarray
    false_positive: np.ndarray
    merged: np.ndarray
    merged_truth: np.ndarray
    truth_labels: np.ndarray
    pred_labels: np.ndarray


def size_class(areas: np.ndarray, size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS) -> np.ndarray:
    """Size class index (0 small, 1 medium, 2 large) of each area in pixels.

    ``area < size_thresholds[0]`` is small, ``area >= size_thresholds[1]`` is large.
    """
    low, high = size_thresholds
    return np.digitize(np.asarray(areas), [low, high], right=False)


def _as_numpy(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask)


def label_lesions(mask: np.ndarray | torch.Tensor, threshold: float = 0.5) -> tuple[np.ndarray, int]:
    """Label the lesions (fully connected components: 8-neighbours in 2-D) of one mask.

    Args:
        mask: spatial shape only (e.g. ``(H, W)``); probabilities or ``{0, 1}``; ``>= threshold`` is lesion.
        threshold: binarisation threshold.

    Returns:
        the int label image of ``mask``'s shape (``0`` background, ``1..n`` lesions) and ``n``.
    """
    binary = _as_numpy(mask) >= threshold
    # full connectivity: a diagonal step joins two pixels of one hot spot
    labels, count = ndimage.label(binary, structure=ndimage.generate_binary_structure(binary.ndim, binary.ndim))
    return labels, int(count)


def clustered_lesions(labels: np.ndarray, count: int, cluster_distance: float = DEFAULT_CLUSTER_DISTANCE) -> np.ndarray:
    """Which lesions of a label image lie within ``cluster_distance`` pixels of another lesion.

    Args:
        labels: label image (``0`` background, ``1..count`` lesions), any number of dimensions.
        count: number of lesions.
        cluster_distance: largest Euclidean distance in pixels between a pixel of the lesion and a pixel
            of another lesion for the lesion to count as clustered.

    Returns:
        ``(count,)`` bool, ``True`` for a clustered lesion.
    """
    clustered = np.zeros(count, dtype=bool)
    reach = int(math.ceil(cluster_distance))
    for index, box in enumerate(ndimage.find_objects(labels, max_label=count)):
        if box is None:
            continue
        # only a window around the lesion can hold pixels that close: distances are computed there
        window = tuple(slice(max(s.start - reach, 0), s.stop + reach) for s in box)
        local = labels[window]
        others = (local > 0) & (local != index + 1)
        if not others.any():
            continue
        distance = ndimage.distance_transform_edt(local != index + 1)
        clustered[index] = bool((distance[others] <= cluster_distance).any())
    return clustered


def match_components(
    truth_labels: np.ndarray, n_truth: int, pred_labels: np.ndarray, n_pred: int, min_iou: float = DEFAULT_MIN_IOU
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of labelled truth lesions and predicted components (rule: module docstring).

    Args:
        truth_labels: truth label image (``0`` background, ``1..n_truth``).
        n_truth: number of truth lesions.
        pred_labels: predicted label image of the same shape (``1..n_pred``).
        n_pred: number of predicted components.
        min_iou: least IoU of a matched pair (pairs must also share at least one pixel).

    Returns:
        ``iou`` ``(T, P)``, ``intersection`` ``(T, P)`` pixel counts and ``pairs`` ``(M, 2)`` matched
        ``(truth index, predicted index)``.
    """
    # joint histogram of (truth label, predicted label): row 0 / column 0 are background
    joint = np.bincount(
        (truth_labels.astype(np.int64) * (n_pred + 1) + pred_labels).ravel(), minlength=(n_truth + 1) * (n_pred + 1)
    ).reshape(n_truth + 1, n_pred + 1)
    intersection = joint[1:, 1:]
    truth_areas = joint[1:, :].sum(axis=1)
    pred_areas = joint[:, 1:].sum(axis=0)
    union = (truth_areas[:, None] + pred_areas[None, :] - intersection).astype(np.float64)
    iou = np.divide(intersection, union, out=np.zeros(union.shape), where=union > 0)
    candidate = (intersection > 0) & (iou >= min_iou)
    pairs = np.zeros((0, 2), dtype=np.int64)
    if candidate.any():
        rows, cols = linear_sum_assignment(np.where(candidate, iou, 0.0), maximize=True)
        keep = candidate[rows, cols]  # the assignment also pairs non-candidates (weight 0): drop them
        pairs = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    return iou, intersection, pairs


def match_lesions(
    pred: np.ndarray | torch.Tensor,
    truth: np.ndarray | torch.Tensor,
    min_iou: float = DEFAULT_MIN_IOU,
    threshold: float = 0.5,
) -> LesionMatch:
    """Label the components of one prediction and one truth mask and match them one-to-one.

    Args:
        pred: prediction of one image, spatial shape only (e.g. ``(H, W)``); probabilities or ``{0, 1}``.
        truth: truth mask of the same shape.
        min_iou: least IoU of a matched pair (see the module docstring).
        threshold: values ``>= threshold`` are lesion (prediction and truth).

    Raises:
        ValueError: the shapes differ.
    """
    if tuple(pred.shape) != tuple(truth.shape):
        raise ValueError(f"prediction and truth shapes differ: {tuple(pred.shape)} and {tuple(truth.shape)}.")
    truth_labels, n_truth = label_lesions(truth, threshold)
    pred_labels, n_pred = label_lesions(pred, threshold)
    iou, intersection, pairs = match_components(truth_labels, n_truth, pred_labels, n_pred, min_iou)
    detected = np.zeros(n_truth, dtype=bool)
    detected[pairs[:, 0]] = True
    false_positive = np.ones(n_pred, dtype=bool)
    false_positive[pairs[:, 1]] = False
    touches = intersection > 0
    merged = touches.sum(axis=0) >= 2
    return LesionMatch(
        truth_areas=np.bincount(truth_labels.ravel(), minlength=n_truth + 1)[1:],
        pred_areas=np.bincount(pred_labels.ravel(), minlength=n_pred + 1)[1:],
        iou=iou,
        pairs=pairs,
        detected=detected,
        false_positive=false_positive,
        merged=merged,
        merged_truth=touches[:, merged].any(axis=1),
        truth_labels=truth_labels,
        pred_labels=pred_labels,
    )


def lesion_counts(
    match: LesionMatch,
    size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS,
    cluster_distance: float = DEFAULT_CLUSTER_DISTANCE,
    clustered: np.ndarray | None = None,
) -> np.ndarray:
    """The per-image counts named by :data:`LESION_COUNT_NAMES` (float64 vector) for one :class:`LesionMatch`.

    Args:
        match: the matched components of one image.
        size_thresholds: area bounds in pixels ``(small/medium, medium/large)``.
        cluster_distance: see :func:`clustered_lesions`.
        clustered: ``(T,)`` clustered flags of the truth lesions when already known (then
            ``cluster_distance`` is not used).
    """
    n_truth = len(match.truth_areas)
    if clustered is None:
        clustered = clustered_lesions(match.truth_labels, n_truth, cluster_distance)
    truth_cls = size_class(match.truth_areas, size_thresholds)
    groups = [truth_cls == c for c in range(len(SIZE_CLASSES))] + [clustered, ~clustered]
    pred_cls = size_class(match.pred_areas, size_thresholds)
    counts = [
        n_truth,
        *(np.sum(g) for g in groups),
        np.sum(match.detected),
        *(np.sum(match.detected & g) for g in groups),
        len(match.pred_areas),
        np.sum(match.false_positive),
        *(np.sum(match.false_positive & (pred_cls == c)) for c in range(len(SIZE_CLASSES))),
        np.sum(match.merged),
        np.sum(match.merged_truth),
    ]
    return np.asarray(counts, dtype=np.float64)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else math.nan


def summarise_lesion_counts(counts: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Summary figures of an ``(N, len(LESION_COUNT_NAMES))`` count table (one row per image).

    Returns:
        ``sensitivity`` and ``sensitivity_<group>`` for the :data:`LESION_GROUPS` (detected / truth
        lesions pooled over the images, ``NaN`` without truth lesions); ``fp_per_image`` and
        ``fp_per_image_<size>`` (false positives / images); ``false_positives``, ``merged``,
        ``merged_lesions`` (pooled counts); ``truth_lesions[_<group>]`` and ``detected_lesions[_<group>]``;
        ``images``; for the images without truth lesions: ``normal_images``, ``fp_per_normal_image``
        and ``normal_images_with_fp`` (fraction with at least one false positive), ``NaN`` without such images.
    """
    if isinstance(counts, torch.Tensor):
        counts = counts.detach().cpu().numpy()
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, len(LESION_COUNT_NAMES))
    column = dict(zip(LESION_COUNT_NAMES, counts.T))
    total = {name: float(c.sum()) for name, c in column.items()}
    n_images = counts.shape[0]
    summary = {"sensitivity": _ratio(total["detected"], total["truth"])}
    summary.update({f"sensitivity_{g}": _ratio(total[f"detected_{g}"], total[f"truth_{g}"]) for g in LESION_GROUPS})
    summary["fp_per_image"] = _ratio(total["false_positives"], n_images)
    summary.update({f"fp_per_image_{s}": _ratio(total[f"false_positives_{s}"], n_images) for s in SIZE_CLASSES})
    summary["false_positives"] = total["false_positives"]
    summary["merged"] = total["merged"]
    summary["merged_lesions"] = total["merged_lesions"]
    summary["truth_lesions"] = total["truth"]
    summary.update({f"truth_lesions_{g}": total[f"truth_{g}"] for g in LESION_GROUPS})
    summary["detected_lesions"] = total["detected"]
    summary.update({f"detected_lesions_{g}": total[f"detected_{g}"] for g in LESION_GROUPS})
    summary["images"] = float(n_images)
    normal = column["truth"] == 0
    summary["normal_images"] = float(normal.sum())
    summary["fp_per_normal_image"] = _ratio(column["false_positives"][normal].sum(), normal.sum())
    summary["normal_images_with_fp"] = _ratio((column["false_positives"][normal] > 0).sum(), normal.sum())
    return summary


def _check_masks(y_pred: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    if y is None:
        raise ValueError("lesion detection needs the truth mask y.")
    if y_pred.shape != y.shape:
        raise ValueError(f"y_pred and y should have same shapes, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
    if y_pred.ndim < 3 or y_pred.shape[1] != 1:
        raise ValueError(f"expected (B, 1, *spatial) lesion masks, got shape {tuple(y_pred.shape)}.")
    return y


def _check_settings(size_thresholds: Sequence[float], min_iou: float, cluster_distance: float) -> None:
    if len(size_thresholds) != 2 or size_thresholds[0] > size_thresholds[1]:
        raise ValueError(f"size_thresholds must be two increasing areas in pixels, got {size_thresholds}.")
    if not 0.0 <= min_iou <= 1.0:
        raise ValueError(f"min_iou must lie in [0, 1], got {min_iou}.")
    if cluster_distance < 1.0:
        raise ValueError(f"cluster_distance must be at least 1 pixel, got {cluster_distance}.")


class LesionDetectionMetric(CumulativeIterationMetric):
    """Lesion detection counts per image, accumulated over iterations (MONAI cumulative metric).

    Call it with ``y_pred`` and ``y`` of shape ``(B, 1, *spatial)`` (batch-first tensors or lists of
    channel-first tensors), probabilities or binarised. The buffer (:meth:`get_buffer`) is the
    ``(N, len(LESION_COUNT_NAMES))`` table of per-image counts; :meth:`aggregate` returns the summary
    dictionary of :func:`summarise_lesion_counts`.

    Args:
        size_thresholds: area bounds in pixels ``(small/medium, medium/large)``.
        min_iou: least IoU of a matched pair, see :func:`match_lesions`.
        threshold: values ``>= threshold`` are lesion.
        cluster_distance: pixels between two truth lesions for both to be clustered, see :func:`clustered_lesions`.
    """

    def __init__(
        self,
        size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS,
        min_iou: float = DEFAULT_MIN_IOU,
        threshold: float = 0.5,
        cluster_distance: float = DEFAULT_CLUSTER_DISTANCE,
    ) -> None:
        super().__init__()
        _check_settings(size_thresholds, min_iou, cluster_distance)
        self.size_thresholds = tuple(size_thresholds)
        self.min_iou = min_iou
        self.threshold = threshold
        self.cluster_distance = cluster_distance

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """``(B, 1, *spatial)`` prediction and truth -> ``(B, len(LESION_COUNT_NAMES))`` counts."""
        y = _check_masks(y_pred, y)
        rows = [
            lesion_counts(
                match_lesions(p[0], t[0], self.min_iou, self.threshold), self.size_thresholds, self.cluster_distance
            )
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
        min_iou: least IoU of a matched pair, see :func:`match_lesions`.
        threshold: values ``>= threshold`` are lesion.
        cluster_distance: pixels between two truth lesions for both to be clustered.
        key_figure: the summary figure reported under the bare name.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``.
        save_details: store the per-image counts in ``engine.state.metric_details``.
    """

    def __init__(
        self,
        size_thresholds: Sequence[float] = DEFAULT_SIZE_THRESHOLDS,
        min_iou: float = DEFAULT_MIN_IOU,
        threshold: float = 0.5,
        cluster_distance: float = DEFAULT_CLUSTER_DISTANCE,
        key_figure: str = "sensitivity",
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        metric_fn = LesionDetectionMetric(
            size_thresholds=size_thresholds, min_iou=min_iou, threshold=threshold, cluster_distance=cluster_distance
        )
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
