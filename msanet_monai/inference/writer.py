"""Ignite handler writing every view's outputs (NIfTI mask, overlay PNG, DICOM SEG) and its CSV row."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from pydicom.misc import is_dicom

from msanet_monai.errors import BoneScanError, OutputWriteError
from msanet_monai.inference.inputs import ERROR_KEY, describe_error
from msanet_monai.io.ledger import OutputLedger
from msanet_monai.io.writers import (
    CSV_COLUMNS,
    InferenceCSVWriter,
    lesion_statistics,
    to_file_orientation,
    write_dicom_seg,
    write_mask_nifti,
    write_overlay_png,
)

__all__ = ["WholeBodyOutputWriter", "file_stem", "output_base", "run_id"]

logger = logging.getLogger(__name__)

_DOUBLE_SUFFIXES = (".nii.gz",)
_OUTPUT_SUFFIXES = ("_mask.nii.gz", "_overlay.png", "_seg.dcm")  # the files of one view


def file_stem(path: str) -> str:
    """File name without its suffix (``SYN0001.dcm`` -> ``SYN0001``, ``scan.nii.gz`` -> ``scan``)."""
    name = os.path.basename(path)
    for suffix in _DOUBLE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def output_base(path: str, view: str) -> str:
    """Base name of a view's outputs: file stem, source extension tag and view.

    ``a.nii.gz`` -> ``a_nii_anterior``, ``a.png`` -> ``a_png_anterior``, ``a_png.nii.gz`` ->
    ``a_png_nii_anterior``, ``a.dcm`` -> ``a_dcm_posterior``, a DICOM file without suffix ``a`` ->
    ``a_dicom_anterior``. The writer adds ``_2``, ``_3``... when two inputs of one run still meet
    (same name in two folders, or ``a_png`` without suffix beside ``a.png``).
    """
    name = os.path.basename(path)
    stem = file_stem(path)
    ext = name[len(stem):].lstrip(".").lower()
    tag = ext.split(".")[0] if ext else "dicom"  # nii.gz -> nii; no suffix: a DICOM file
    return f"{stem}_{tag}_{view or 'view'}"


def run_id() -> str:
    """Id of one inference run: UTC time, process id and 4 random hex digits (``20260101T090000Z-1234-9f2c``).

    Unique across processes (pid) and across runs of one process within a second (random part).
    """
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}-{uuid.uuid4().hex[:4]}"


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

    * ``<base>_mask.nii.gz``: whole-body mask (rows, cols), ``affine = diag(row_mm, col_mm, 1, 1)``;
    * ``<base>_overlay.png`` (``write_overlay``): the scan with lesions and thorax window drawn;
    * ``<base>_seg.dcm`` (``write_dicom_seg``, DICOM inputs only): DICOM SEG referencing the source;

    with ``<base>`` = :func:`output_base` (stem, extension tag, view; ``_2``... on a clash within the
    run), all in the orientation of the source file (a posterior view is un-mirrored), every file
    written atomically. Files of ``output_dir`` that msanet-monai did not write (its ledger,
    :class:`~msanet_monai.io.ledger.OutputLedger`, lists those it did) are never replaced: a view whose
    output name is taken by such a file gets ``_2``, ``_3``..., and so does the published CSV. Rows (columns :data:`~msanet_monai.io.writers.CSV_COLUMNS`) go to this run's
    own ``<csv stem>_<run id>.csv``, replaced atomically after every view; when the run ends with at
    least one view written, that file is copied atomically over ``output_dir/<csv_name>``. A run in
    which no view was written leaves ``<csv_name>`` untouched and raises :class:`BoneScanError`
    (the bundle command exits non-zero). A write error (full disk, read-only folder) becomes the
    view's error naming the output file; the batch goes on.

    Args:
        output_dir: folder of the outputs (created).
        csv_name: name of the CSV summary in ``output_dir``.
        write_overlay: write the overlay PNG.
        write_dicom_seg: write a DICOM SEG for DICOM inputs (NIfTI / PNG inputs get a note instead).
        pred_key: key of the whole-body binary prediction (1, rows, cols) after postprocessing.
        image_key: key of the network input, whose meta holds ``thorax_box`` once cropped.
        scan_key: key of the whole-body counts (1, rows, cols) as loaded (a copy made before scaling),
            whose meta holds ``filename_or_obj``, ``view``, ``frame_index``, ``pixel_spacing``, ``mirrored``.
        background: write in one background thread (in order, same files and rows), so that the
            network goes on with the next study meanwhile; the run's end waits for every write.
        timing: an :class:`~msanet_monai.inference.timing.InferenceTiming` receiving the writing seconds.
        quiet_highdicom: set the ``highdicom`` logger to WARNING (it logs 9 INFO lines per DICOM SEG),
            unless a level was set for it already; its warnings still show.
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
        background: bool = False,
        timing: Any = None,
        quiet_highdicom: bool = True,
    ) -> None:
        self.output_dir = os.path.abspath(os.fspath(output_dir))
        self.csv_path = os.path.join(self.output_dir, csv_name)
        self.write_overlay = bool(write_overlay)
        self.write_dicom_seg = bool(write_dicom_seg)
        self.pred_key, self.image_key, self.scan_key = pred_key, image_key, scan_key
        self.rows: list[dict[str, Any]] = []
        self._csv: InferenceCSVWriter | None = None
        self._claimed: dict[str, tuple[str, str]] = {}
        self._ledger: OutputLedger | None = None
        self.run_csv_path = ""
        self.background = bool(background)
        self.timing = timing
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        hd_logger = logging.getLogger("highdicom")
        if quiet_highdicom and hd_logger.level == logging.NOTSET:
            hd_logger.setLevel(logging.WARNING)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._open)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self._close)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self._close_on_exception)

    def _open(self, engine: Engine | None = None) -> None:
        try:
            os.makedirs(self.output_dir, exist_ok=True)
        except OSError as e:
            raise OutputWriteError(self.output_dir, f"cannot create the output folder ({e.strerror or e})") from e
        self._ledger = OutputLedger(self.output_dir)
        self.rows = []
        self._claimed = {}
        root, ext = os.path.splitext(self.csv_path)
        self.run_csv_path = f"{root}_{run_id()}{ext or '.csv'}"
        try:
            self._csv = InferenceCSVWriter(self.run_csv_path, CSV_COLUMNS)
            self._ledger.record([self.run_csv_path])
        except OutputWriteError as e:  # e.g. a read-only folder: every view then reports its own write error
            logger.error("%s", e)
            self._csv = InferenceCSVWriter(self.run_csv_path, CSV_COLUMNS, write_now=False)

    def _wait(self) -> None:
        """Wait for the background writes; an unexpected error of one is raised here (after all finish)."""
        pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def _close(self, engine: Engine | None = None) -> None:
        """Publish the run's summary as ``csv_name`` (atomic replace) if any view was written; else raise."""
        self._wait()
        if self._csv is None:
            return
        csv_writer, self._csv = self._csv, None
        ok = sum(r["status"] == "ok" for r in self.rows)
        errors = len(self.rows) - ok
        csv_writer.flush()  # retries a row whose earlier write failed; raises if the run CSV cannot be written
        if ok == 0:
            logger.error("inference: no view written, %d error(s); %s left as it was, errors in %s",
                         errors, self.csv_path, self.run_csv_path)
            raise BoneScanError(self.run_csv_path, f"no view was written ({errors} error(s), listed in this file); "
                                f"{os.path.basename(self.csv_path)} left as it was")
        summary = self._free_name(self.csv_path)
        # the name is claimed before the file appears: a concurrent run that finds the file then finds it in the
        # ledger too, and replaces it instead of taking it for a user's file (which would send it to _2)
        self._ledger.record([self.run_csv_path, summary])  # type: ignore[union-attr]
        csv_writer.flush(summary)
        logger.info("inference: %d view(s) written, %d error(s); summary in %s (this run: %s)",
                    ok, errors, summary, self.run_csv_path)

    def _free_name(self, path: str) -> str:
        """``path``, or ``<root>_2<ext>``, ``_3``... when a file msanet-monai did not write holds the name."""
        root, ext = os.path.splitext(path)
        name, n = path, 1
        while not self._ledger.may_write(name):  # type: ignore[union-attr]
            n += 1
            name = f"{root}_{n}{ext}"
        if name != path:
            logger.warning("%s exists and was not written by msanet-monai; left as it is, the summary goes to %s",
                           path, name)
        return name

    def _close_on_exception(self, engine: Engine, e: Exception) -> None:
        try:
            self._wait()
        except Exception as write_error:  # noqa: BLE001  (the run's own exception is the one to raise)
            logger.error("%s", write_error)
        if self._csv is not None:  # keep the run's rows so far; do not publish a cut run as inference.csv
            try:
                self._csv.flush()
            except OutputWriteError as write_error:
                logger.error("%s", write_error)
            self._csv = None
        raise e

    def __call__(self, engine: Engine) -> None:
        outputs = engine.state.output
        outputs = outputs if isinstance(outputs, list) else [outputs]
        batch = engine.state.batch
        # after postprocessing the engine keeps input keys (the whole-body "scan") in the decollated
        # batch and model keys ("image", "pred") in the output; error outputs carry all they need
        batch = batch if isinstance(batch, list) and len(batch) == len(outputs) else [{}] * len(outputs)
        for batch_item, output_item in zip(batch, outputs):
            item = output_item if ERROR_KEY in output_item else {**batch_item, **output_item}
            if self.background:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="msanet-writer")
                self._pending.append(self._executor.submit(self.write_view, item))
            else:
                self.write_view(item)

    def _output_base(self, path: str, view: str) -> str:
        """``<stem>_<ext>_<view>``, unique within the run (see :func:`output_base`) and taking no file that
        msanet-monai did not write; a clash with either gets ``_2``, ``_3``..."""
        base = output_base(path, view)
        name, n = base, 1
        while not self._is_free(name, path, view):
            n += 1
            name = f"{base}_{n}"
        if name != base:
            taken = (f"taken by {self._claimed[base][0]}" if self._claimed.get(base, (path, view)) != (path, view)
                     else "taken by files msanet-monai did not write, left as they are")
            logger.warning("%s (%s): outputs named %s (%s is %s)", path, view, name, base, taken)
        return name

    def _is_free(self, name: str, path: str, view: str) -> bool:
        if self._claimed.get(name, (path, view)) != (path, view):
            return False
        stem = os.path.join(self.output_dir, name)
        if not self._ledger.free(f"{stem}{suffix}" for suffix in _OUTPUT_SUFFIXES):  # type: ignore[union-attr]
            return False
        self._claimed[name] = (path, view)
        return True

    def write_view(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Write the outputs of one view and its CSV row; return the row."""
        start = time.perf_counter()
        if self._csv is None:
            self._open()
        if ERROR_KEY in item:
            row = {"file": str(item.get("image", "")), "view": str(item.get("view", "")), "status": "error",
                   "error": item[ERROR_KEY]}
        else:
            row = self._write_outputs(item)
        self.rows.append(row)
        try:
            self._csv.write_row(row)  # type: ignore[union-attr]
        except OutputWriteError as e:  # the row is kept in memory and written with the next one
            logger.error("%s", e)
        if self.timing is not None:
            self.timing.add("writing", time.perf_counter() - start)
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
            box = self._thorax_box(item, spacing)
            if box is not None and mirrored:
                box = [box[0], cols - box[3], box[2], cols - box[1]]
            row.update(lesion_statistics(mask, spacing))
            row["thorax_box"] = json.dumps(box) if box is not None else ""

            stem = os.path.join(self.output_dir, self._output_base(path, view))
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
        written = [row[k] for k in ("mask_nifti", "overlay_png", "dicom_seg") if row.get(k)]
        if written:
            try:
                self._ledger.record(written)  # type: ignore[union-attr]
            except OutputWriteError as e:  # the outputs are complete; only their listing failed
                logger.error("%s", e)
        return row

    def _thorax_box(self, item: Mapping[str, Any], file_spacing: list[float]) -> list[int] | None:
        """The thorax window in the file's pixels: found at the model's spacing, scaled to the file's."""
        image = item.get(self.image_key)
        meta = getattr(image, "meta", None) or {}
        box = meta.get("thorax_box")
        if box is None:
            return None
        box_mm = affine_to_spacing(image.affine, r=2).tolist() if isinstance(image, MetaTensor) else file_spacing
        scale = [float(m) / float(f) for m, f in zip(box_mm, file_spacing)]
        r0, c0, r1, c1 = _flat_numbers(box)
        return [round(r0 * scale[0]), round(c0 * scale[1]), round(r1 * scale[0]), round(c1 * scale[1])]
