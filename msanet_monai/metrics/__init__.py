"""Evaluation metrics: per-image pixel scores with an empty-mask rule, lesion-level detection, the report."""

from .lesion_detection import (
    DEFAULT_SIZE_THRESHOLDS,
    LESION_COUNT_NAMES,
    SIZE_CLASSES,
    LesionDetection,
    LesionDetectionMetric,
    LesionMatch,
    label_lesions,
    lesion_counts,
    match_lesions,
    size_class,
    summarise_lesion_counts,
)
from .pixel_scores import PixelScore, PixelScoreMetric, fill_empty_scores
from .report import LESION_COLUMNS, EvaluationReportSaver, json_safe, lesion_columns, pixel_score_summary

__all__ = [
    "EvaluationReportSaver",
    "LESION_COLUMNS",
    "lesion_columns",
    "json_safe",
    "pixel_score_summary",
    "DEFAULT_SIZE_THRESHOLDS",
    "LESION_COUNT_NAMES",
    "SIZE_CLASSES",
    "LesionDetection",
    "LesionDetectionMetric",
    "LesionMatch",
    "label_lesions",
    "PixelScore",
    "PixelScoreMetric",
    "fill_empty_scores",
    "lesion_counts",
    "match_lesions",
    "size_class",
    "summarise_lesion_counts",
]
