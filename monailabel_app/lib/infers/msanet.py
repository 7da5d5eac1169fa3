"""MONAI Label infer task that runs the bundle's own inference workflow on one view.

The task parses ``configs/inference.json`` (plus the configs that set the widths, e.g. ``quick.json``)
and runs its ``evaluator`` on a single ``{"image", "view"}`` item, with the bundle's output writer
writing into a temporary folder. The mask it returns is therefore the bundle's own
``<stem>_<extension>_<view>_mask.nii.gz``: a (rows, cols) uint8 NIfTI in the file's orientation (a
posterior view un-mirrored), which a viewer overlays on the image without reshaping.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Sequence, Tuple

from fastapi import HTTPException
from monai.bundle import ConfigParser
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType

from msanet_monai.errors import BoneScanError

logger = logging.getLogger(__name__)

__all__ = ["MSANetInfer", "LABELS"]

#: label name -> value in the masks (the bundle's masks are {0, 1}, 1 = lesion)
LABELS = {"lesion": 1}


def _inference_errors(out_dir: str) -> str:
    """The ``error`` column of the inference CSVs in ``out_dir`` (the bundle writes one row per view)."""
    errors = []
    for path in sorted(Path(out_dir).glob("*.csv")):
        with open(path, newline="") as f:
            errors += [row["error"] for row in csv.DictReader(f) if row.get("error")]
    return "; ".join(dict.fromkeys(errors)) or "the bundle's inference wrote no mask and no reason"


class MSANetInfer(InferTask):
    """Whole-body lesion segmentation of one planar view with the bundle's inference config.

    Args:
        bundle_dir: the bundle folder (holds ``configs/``).
        config_files: inference config then overrides (the widths of the weights come from these).
        ckpt_path: weights (full checkpoint or state dict) that match those widths.
        resolve_view: maps a datastore image path to ``(source file, view or None)``; the app uses it
            for per-view NIfTI images converted from two-frame NM studies.
    """

    def __init__(
        self,
        bundle_dir: str,
        config_files: Sequence[str],
        ckpt_path: Callable[[], str] | str,
        resolve_view: Callable[[str], Tuple[str, str | None]] | None = None,
    ):
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=dict(LABELS),
            dimension=2,
            description="MSA-Net bone-metastasis segmentation of a planar whole-body view",
        )
        self.bundle_dir = str(bundle_dir)
        self.config_files = [str(f) for f in config_files]
        self._ckpt_path = ckpt_path
        self.resolve_view = resolve_view or (lambda path: (path, None))

    def ckpt_path(self) -> str:
        return self._ckpt_path() if callable(self._ckpt_path) else self._ckpt_path

    def is_valid(self) -> bool:
        return os.path.exists(self.ckpt_path())

    def get_path(self, validate: bool = True):
        return self.ckpt_path()

    def __call__(self, request: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
        start = time.time()
        source, view = self.resolve_view(request["image"])
        view = request.get("view") or view
        out_dir = tempfile.mkdtemp(prefix="msanet_infer_")
        try:
            parser = ConfigParser()
            parser.read_config(self.config_files)
            parser["bundle_root"] = self.bundle_dir
            parser["ckpt_path"] = self.ckpt_path()
            parser["output_dir"] = out_dir
            parser["input_files"] = []
            parser["device"] = "$torch.device('cpu')"
            parser["write_overlay"] = False
            parser["write_dicom_seg"] = False
            parser["dataset#data"] = [{"image": source, "view": view} if view else {"image": source}]
            parser.get_parsed_content("initialize")
            evaluator = parser.get_parsed_content("evaluator")
            try:
                evaluator.run()
            except BoneScanError:
                pass  # "no view was written": the reason is in the run's CSV, read below
            masks = sorted(Path(out_dir).glob("*_mask.nii.gz"))
            if len(masks) != 1:
                # the bundle refused the image (geometry, unreadable file...): the client gets its reason,
                # not a bare "Internal Server Error" pointing at a temporary file
                raise HTTPException(status_code=422, detail=_inference_errors(out_dir))
            fd, result = tempfile.mkstemp(suffix=".nii.gz", prefix="msanet_mask_")
            os.close(fd)
            shutil.copyfile(masks[0], result)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        latency = time.time() - start
        return result, {"label_names": dict(LABELS), "view": view, "latencies": {"total": round(latency, 3)}}
