"""One evaluation report per run: a per-image CSV and a summary JSON, written by an Ignite handler.

MONAI's ``MetricsSaver`` writes one CSV per metric (``dice_raw.csv``, ``precision_raw.csv``, ...) and
cannot place a multi-column table such as the lesion counts; a reader of the evaluation wants one row
per image with every score side by side, and one summary file that also records the settings and
the paper's figures. :class:`EvaluationReportSaver` writes both from ``engine.state.metric_details``,
so the CSV and the summary hold exactly the per-image values the metric handlers computed.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.utils import IgniteInfo, min_version, optional_import, string_list_all_gather
from monai.utils import ImageMetaKey as Key

from ..io.atomic import atomic_output
from .froc import FROC_CURVE_COLUMNS
from .lesion_detection import LESION_COUNT_NAMES, SIZE_CLASSES, summarise_lesion_counts

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
idist, _ = optional_import("ignite", IgniteInfo.OPT_IMPORT_VERSION, min_version, "distributed")

__all__ = ["LESION_COLUMNS", "lesion_columns", "pixel_score_summary", "json_safe", "EvaluationReportSaver"]

logger = logging.getLogger(__name__)

_SIZE_SUFFIXES = ("", *(f"_{s}" for s in SIZE_CLASSES))
_CLUSTER_SUFFIXES = ("_clustered", "_single")
# lesion columns of the per-image CSV: truth lesions, true positives (matched truth lesions), false
# negatives (unmatched truth lesions), false positives (unmatched predicted components), overall and
# then by size class; truth, tp, fn of clustered and single lesions; merged components (touching two
# or more truth lesions) and the truth lesions they touch
LESION_COLUMNS = (
    *(f"lesion_{kind}{suffix}" for suffix in _SIZE_SUFFIXES for kind in ("truth", "tp", "fn", "fp")),
    *(f"lesion_{kind}{suffix}" for suffix in _CLUSTER_SUFFIXES for kind in ("truth", "tp", "fn")),
    "lesion_merged",
    "lesion_merged_lesions",
)


def lesion_columns(counts: np.ndarray) -> dict[str, int]:
    """The :data:`LESION_COLUMNS` of one image from its row of :data:`LESION_COUNT_NAMES` counts."""
    c = dict(zip(LESION_COUNT_NAMES, np.asarray(counts, dtype=np.float64).tolist()))
    row = {}
    for suffix in (*_SIZE_SUFFIXES, *_CLUSTER_SUFFIXES):
        truth, detected = c[f"truth{suffix}"], c[f"detected{suffix}"]
        row[f"lesion_truth{suffix}"] = int(truth)
        row[f"lesion_tp{suffix}"] = int(detected)
        row[f"lesion_fn{suffix}"] = int(truth - detected)
        if suffix in _SIZE_SUFFIXES:
            row[f"lesion_fp{suffix}"] = int(c[f"false_positives{suffix}"])
    row["lesion_merged"] = int(c["merged"])
    row["lesion_merged_lesions"] = int(c["merged_lesions"])
    return {name: row[name] for name in LESION_COLUMNS}


def _write_atomic(path: str, write: Callable[[Any], None]) -> None:
    """Write the text file ``path`` through ``write(file)``, atomically (:func:`~msanet_monai.io.atomic.atomic_output`)."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        write(f)


def pixel_score_summary(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation over images (population, as MONAI's ``MetricsSaver``), median, min, max."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return {"mean": math.nan, "std": math.nan, "median": math.nan, "min": math.nan, "max": math.nan}
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "median": float(np.median(v)),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN as ``None`` and numpy scalars as Python numbers, for ``json.dump``.

    JSON has no NaN: an undefined figure (e.g. sensitivity without truth lesions) is written as null.
    """
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)


class EvaluationReportSaver:
    """Ignite handler writing ``metrics_per_image.csv``, ``summary.json`` (and ``froc.csv``) after an evaluation.

    Attach it to a MONAI evaluator whose metrics keep per-image details (``save_details=True``): the
    pixel metrics named in ``pixel_metrics`` (``(N, 1)`` per-image scores, e.g. a ``DiceMetric``
    handler and :class:`~msanet_monai.metrics.PixelScore`), the
    :class:`~msanet_monai.metrics.LesionDetection` metric named ``lesion_metric`` and the
    :class:`~msanet_monai.metrics.LesionFROC` metric named ``froc_metric``.

    ``metrics_per_image.csv`` has one row per image: ``filename``, ``view``, one column per pixel metric
    and the :data:`LESION_COLUMNS`. ``summary.json`` holds ``images``, ``pixel_scores`` (per metric:
    mean, std, median, min, max over the images), ``lesion_detection`` (the figures of
    :func:`~msanet_monai.metrics.summarise_lesion_counts`; ``null`` where undefined), ``froc``
    (``thresholds``, ``fp_targets`` and the figures of :func:`~msanet_monai.metrics.froc_summary`)
    and the ``settings`` and ``reference`` mappings given here, copied as they are; with
    ``named_images``, also ``named_images``: for each name, the per-image row (pixel scores and lesion
    columns) of the image whose file name is the one given, each also logged as one line (e.g. the
    false-positive lesions on the untouched real scan of the real-background set). ``froc.csv`` holds
    the FROC curve, one row of :data:`~msanet_monai.metrics.FROC_CURVE_COLUMNS` per threshold.
    Every file is written to a temporary name first and then moved into place.

    Args:
        save_dir: output folder (created).
        pixel_metrics: names the per-image pixel metrics were attached with.
        lesion_metric: name of the lesion detection metric, ``None`` for none.
        froc_metric: name of the FROC metric, ``None`` for none.
        batch_transform: returns a list of metadata dicts (``filename_or_obj``, ``view``) from
            ``engine.state.batch``, as for MONAI's ``MetricsSaver``.
        settings: facts about the run to keep beside the figures (threshold, datalist, rules).
        reference: reference figures to put beside ours (e.g. the paper's, with a note on their data).
        per_image_filename: name of the per-image CSV.
        summary_filename: name of the summary JSON.
        froc_filename: name of the FROC curve CSV.
        save_rank: rank writing the files in multi-GPU evaluation.
        named_images: name -> file name (base name, e.g. ``"REAL0000.dcm"``) of images whose row is
            copied into the summary and logged; a name whose file was not evaluated is an error.
        title: what the log lines call this evaluation (e.g. ``"real background"``).
    """

    def __init__(
        self,
        save_dir: str,
        pixel_metrics: Sequence[str] = ("dice", "precision", "recall"),
        lesion_metric: str | None = "lesion",
        froc_metric: str | None = None,
        batch_transform: Callable = lambda x: x,
        settings: Mapping[str, Any] | None = None,
        reference: Mapping[str, Any] | None = None,
        per_image_filename: str = "metrics_per_image.csv",
        summary_filename: str = "summary.json",
        froc_filename: str = "froc.csv",
        save_rank: int = 0,
        named_images: Mapping[str, str] | None = None,
        title: str = "evaluation",
    ) -> None:
        self.save_dir = save_dir
        self.pixel_metrics = tuple(pixel_metrics)
        self.lesion_metric = lesion_metric
        self.froc_metric = froc_metric
        self.batch_transform = batch_transform
        self.settings = dict(settings or {})
        self.reference = dict(reference or {})
        self.per_image_filename = per_image_filename
        self.summary_filename = summary_filename
        self.froc_filename = froc_filename
        self.save_rank = save_rank
        self.named_images = dict(named_images or {})
        self.title = title
        self._names: list[str] = []
        self._views: list[str] = []

    def attach(self, engine: Any) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._get_names)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _started(self, _engine: Any) -> None:
        self._names, self._views = [], []

    def _get_names(self, engine: Any) -> None:
        for meta in self.batch_transform(engine.state.batch):
            self._names.append(f"{meta.get(Key.FILENAME_OR_OBJ, '')}")
            self._views.append(f"{meta.get('view', '')}")

    def __call__(self, engine: Any) -> None:
        details = getattr(engine.state, "metric_details", {})
        wanted = [*self.pixel_metrics, *(m for m in (self.lesion_metric, self.froc_metric) if m)]
        absent = [m for m in wanted if m not in details]
        if absent:
            raise RuntimeError(
                f"no per-image details for {absent} in engine.state.metric_details (found {sorted(details)}); "
                "attach those metrics with save_details=True."
            )
        names, views = self._names, self._views
        if idist.get_world_size() > 1:
            names, views = string_list_all_gather(names), string_list_all_gather(views)
        if idist.get_rank() != self.save_rank:
            return

        pixel = {}
        for m in self.pixel_metrics:
            scores = _as_numpy(details[m])  # (N, 1): one lesion channel
            pixel[m] = scores.reshape(scores.shape[0], -1)[:, 0]
        lesion = _as_numpy(details[self.lesion_metric]) if self.lesion_metric else None
        n_images = len(next(iter(pixel.values()))) if pixel else len(lesion)  # type: ignore[arg-type]
        if len(names) != n_images:
            raise RuntimeError(f"{len(names)} image names for {n_images} per-image scores.")

        os.makedirs(self.save_dir, exist_ok=True)
        columns = ["filename", "view", *self.pixel_metrics, *(LESION_COLUMNS if lesion is not None else ())]

        def write_per_image(f: Any) -> None:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for i in range(n_images):
                row: dict[str, Any] = {"filename": names[i], "view": views[i]}
                row.update({m: f"{pixel[m][i]:.6f}" for m in self.pixel_metrics})
                if lesion is not None:
                    row.update(lesion_columns(lesion[i]))
                writer.writerow(row)

        _write_atomic(os.path.join(self.save_dir, self.per_image_filename), write_per_image)

        named = {}
        for key, filename in self.named_images.items():
            found = [i for i, name in enumerate(names) if os.path.basename(name) == filename]
            if not found:
                raise RuntimeError(f"named image {key!r}: no evaluated image is called {filename!r}")
            i = found[0]
            row = {"filename": names[i], "view": views[i], **{m: float(pixel[m][i]) for m in self.pixel_metrics}}
            if lesion is not None:
                row.update(lesion_columns(lesion[i]))
            named[key] = row
            logger.info("%s: %s (%s): %s false-positive lesions, %s of %s truth lesions found; report in %s",
                        self.title, key, filename, row.get("lesion_fp", "?"), row.get("lesion_tp", "?"),
                        row.get("lesion_truth", "?"), os.path.join(self.save_dir, self.summary_filename))

        summary: dict[str, Any] = {
            "images": n_images,
            "pixel_scores": {m: pixel_score_summary(v) for m, v in pixel.items()},
        }
        if lesion is not None:
            summary["lesion_detection"] = summarise_lesion_counts(lesion)
        if self.froc_metric:
            froc = details[self.froc_metric]
            summary["froc"] = {
                "thresholds": froc["thresholds"],
                "fp_targets": froc["fp_targets"],
                **froc["summary"],
            }

            def write_curve(f: Any) -> None:
                writer = csv.DictWriter(f, fieldnames=list(FROC_CURVE_COLUMNS))
                writer.writeheader()
                for point in froc["curve"]:
                    writer.writerow({c: _csv_number(point[c]) for c in FROC_CURVE_COLUMNS})

            _write_atomic(os.path.join(self.save_dir, self.froc_filename), write_curve)
        if named:
            summary["named_images"] = named
        summary["settings"] = self.settings
        summary["reference"] = self.reference

        def write_summary(f: Any) -> None:
            json.dump(json_safe(summary), f, indent=2)
            f.write("\n")

        _write_atomic(os.path.join(self.save_dir, self.summary_filename), write_summary)
        detection = summary.get("lesion_detection", {})
        logger.info("%s: %d images, mean %s %s, lesion sensitivity %s, %s false-positive lesions per image; report in %s",
                    self.title, n_images, self.pixel_metrics[0] if self.pixel_metrics else "-",
                    _fmt(summary["pixel_scores"][self.pixel_metrics[0]]["mean"]) if self.pixel_metrics else "-",
                    _fmt(detection.get("sensitivity")), _fmt(detection.get("fp_per_image")),
                    os.path.join(self.save_dir, self.summary_filename))


def _csv_number(value: float) -> str:
    """A figure for a CSV cell: integers as such, ratios to 6 decimals, undefined (NaN) as empty."""
    if math.isnan(value):
        return ""
    return f"{int(value)}" if float(value).is_integer() else f"{value:.6f}"


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.4f}"
