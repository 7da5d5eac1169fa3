"""Ignite handler writing every view's outputs (NIfTI mask, overlay PNG, DICOM SEG) and its CSV row."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from pydicom.misc import is_dicom

from msanet_monai.inference.inputs import ERROR_KEY, describe_error
from msanet_monai.io.writers import (
    CSV_COLUMNS,
    InferenceCSVWriter,
    lesion_statistics,
    to_file_orientation,
    write_dicom_seg,
    write_mask_nifti,
    write_overlay_png,
)

__all__ = ["WholeBodyOutputWriter", "file_stem"]

logger = logging.getLogger(__name__)

_DOUBLE_SUFFIXES = (".nii.gz",)


def file_stem(path: str) -> str:
    """File name without its suffix (``SYN0001.dcm`` -> ``SYN0001``, ``scan.nii.gz`` -> ``scan``)."""
    name = os.path.basename(path)
    for suffix in _DOUBLE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def _scalar(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else value.tolist()
    return value


def _flat_numbers(value: Any) -> list[float]:
    value = _scalar(value)
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat_numbers(v)]
    return [float(value)]


def _to_numpy(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu()) if isinstance(x, torch.Tensor) else np.asarray(x)


class WholeBodyOutputWriter:
    """Write the outputs of each view that the evaluator processed, and a CSV row per view.

    For view ``<view>`` of input ``<stem>.<ext>`` it writes, in ``output_dir``:

    * ``<stem>_<view>_mask.nii.gz``: whole-body mask (rows, cols), ``affine = diag(row_mm, col_mm, 1, 1)``;
    * ``<stem>_<view>_overlay.png`` (``write_overlay``): the scan with lesions and thorax window drawn;
    * ``<stem>_<view>_seg.dcm`` (``write_dicom_seg``, DICOM inputs only): DICOM SEG referencing the source;

    all in the orientation of the source file (a posterior view is un-mirrored), and appends a row to
    ``output_dir/<csv_name>`` (columns :data:`~msanet_monai.io.writers.CSV_COLUMNS`), flushed at once.

    Args:
        output_dir: folder of the outputs (created).
        csv_name: name of the CSV summary in ``output_dir``.
        write_overlay: write the overlay PNG.
        write_dicom_seg: write a DICOM SEG for DICOM inputs (NIfTI / PNG inputs get a note instead).
        pred_key: key of the whole-body binary prediction (1, rows, cols) after postprocessing.
        image_key: key of the network input, whose meta holds ``thorax_box`` once cropped.
        scan_key: key of the whole-body counts (1, rows, cols) as loaded (a copy made before scaling),
            whose meta holds ``filename_or_obj``, ``view``, ``frame_index``, ``pixel_spacing``, ``mirrored``.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        csv_name: str = "inference.csv",
        write_overlay: bool = True,
        write_dicom_seg: bool = True,
        pred_key: str = "pred",
        image_key: str = "image",
        scan_key: str = "scan",
    ) -> None:
        self.output_dir = os.path.abspath(os.fspath(output_dir))
        self.csv_path = os.path.join(self.output_dir, csv_name)
        self.write_overlay = bool(write_overlay)
        self.write_dicom_seg = bool(write_dicom_seg)
        self.pred_key, self.image_key, self.scan_key = pred_key, image_key, scan_key
        self.rows: list[dict[str, Any]] = []
        self._csv: InferenceCSVWriter | None = None
        self._stems: dict[str, str] = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._open)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self._close)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self._close_on_exception)

    def _open(self, engine: Engine | None = None) -> None:
        os.makedirs(self.output_dir, exist_ok=True)
        self.rows = []
        self._stems = {}
        self._csv = InferenceCSVWriter(self.csv_path, CSV_COLUMNS)

    def _close(self, engine: Engine | None = None) -> None:
        if self._csv is not None:
            self._csv.close()
            self._csv = None
        ok = sum(r["status"] == "ok" for r in self.rows)
        logger.info("inference: %d view(s) written, %d error(s); summary in %s", ok, len(self.rows) - ok, self.csv_path)

    def _close_on_exception(self, engine: Engine, e: Exception) -> None:
        self._close(engine)
        raise e

    def __call__(self, engine: Engine) -> None:
        outputs = engine.state.output
        outputs = outputs if isinstance(outputs, list) else [outputs]
        batch = engine.state.batch
        # after postprocessing the engine keeps input keys (the whole-body "scan") in the decollated
        # batch and model keys ("image", "pred") in the output; error outputs carry all they need
        batch = batch if isinstance(batch, list) and len(batch) == len(outputs) else [{}] * len(outputs)
        for batch_item, output_item in zip(batch, outputs):
            self.write_view(output_item if ERROR_KEY in output_item else {**batch_item, **output_item})

    def _stem(self, path: str) -> str:
        # two inputs with one stem (a.dcm, a.png) keep their suffix so neither overwrites the other
        stem = file_stem(path)
        owner = self._stems.setdefault(stem, path)
        return stem if owner == path else os.path.basename(path).replace(".", "_")

    def write_view(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Write the outputs of one view and its CSV row; return the row."""
        if self._csv is None:
            self._open()
        if ERROR_KEY in item:
            row = {"file": str(item.get("image", "")), "view": str(item.get("view", "")), "status": "error",
                   "error": item[ERROR_KEY]}
        else:
            row = self._write_outputs(item)
        self.rows.append(row)
        self._csv.write_row(row)  # type: ignore[union-attr]
        return row

    def _write_outputs(self, item: Mapping[str, Any]) -> dict[str, Any]:
        scan = item[self.scan_key]
        meta = scan.meta
        path = str(_scalar(meta["filename_or_obj"]))
        view = str(_scalar(meta.get("view", "anterior")))
        row: dict[str, Any] = {"file": path, "view": view, "status": "ok"}
        try:
            mirrored = bool(_scalar(meta.get("mirrored", False)))
            spacing = _flat_numbers(meta.get("pixel_spacing", (2.26, 2.26)))[:2]
            frame_index = int(_scalar(meta.get("frame_index", 0)))
            pred = _to_numpy(item[self.pred_key])
            counts = _to_numpy(scan)
            if pred.shape != counts.shape:
                raise ValueError(f"whole-body prediction {pred.shape} differs in shape from the scan {counts.shape}")
            mask = to_file_orientation(pred, mirrored)
            counts_file = counts[0][:, ::-1] if mirrored else counts[0]
            cols = mask.shape[1]
            box = self._thorax_box(item)
            if box is not None and mirrored:
                box = [box[0], cols - box[3], box[2], cols - box[1]]
            row.update(lesion_statistics(mask, spacing))
            row["thorax_box"] = json.dumps(box) if box is not None else ""

            stem = os.path.join(self.output_dir, f"{self._stem(path)}_{view}")
            row["mask_nifti"] = write_mask_nifti(f"{stem}_mask.nii.gz", mask, spacing)
            if self.write_overlay:
                row["overlay_png"] = write_overlay_png(f"{stem}_overlay.png", counts_file, mask, box)
            if self.write_dicom_seg:
                if is_dicom(path):
                    row["dicom_seg"] = write_dicom_seg(f"{stem}_seg.dcm", mask, path, frame_index=frame_index, view=view)
                else:
                    row["note"] = "DICOM SEG skipped: the input is not a DICOM file (NIfTI/PNG has nothing to reference)"
            logger.info("%s (%s): %d lesion(s), %s mm2", path, view, row["lesion_count"], row["lesion_area_mm2"])
        except Exception as e:  # noqa: BLE001  (outputs written so far stay; the row says what failed)
            row.update(status="error", error=describe_error(e, path))
            logger.warning("writing outputs of %s (%s) failed: %s", path, view, row["error"])
        return row

    def _thorax_box(self, item: Mapping[str, Any]) -> list[int] | None:
        meta = getattr(item.get(self.image_key), "meta", None) or {}
        box = meta.get("thorax_box")
        return None if box is None else [int(v) for v in _flat_numbers(box)]
