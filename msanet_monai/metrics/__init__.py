"""Evaluation metrics: per-image pixel scores with an empty-mask rule, and lesion-level detection."""

from .lesion_detection import (
    DEFAULT_SIZE_THRESHOLDS,
    LESION_COUNT_NAMES,
    SIZE_CLASSES,
    LesionDetection,
    LesionDetectionMetric,
    LesionMatch,
    LesionReportSaver,
    lesion_counts,
    match_lesions,
    size_class,
    summarise_lesion_counts,
)
from .pixel_scores import PixelScore, PixelScoreMetric, fill_empty_scores

__all__ = [
    "DEFAULT_SIZE_THRESHOLDS",
    "LESION_COUNT_NAMES",
    "SIZE_CLASSES",
    "LesionDetection",
    "LesionDetectionMetric",
    "LesionMatch",
    "LesionReportSaver",
    "PixelScore",
    "PixelScoreMetric",
    "fill_empty_scores",
    "lesion_counts",
    "match_lesions",
    "size_class",
    "summarise_lesion_counts",
]
