"""MONAI Label train task: fine-tune the served weights with the bundle's own training workflow.

The datastore's labelled images become a ``dataset.json`` (format in CONTRIBUTING.md); the bundle's
``configs/train.json`` (with the served width configs) runs in a subprocess, as
``python -m monai.bundle run training``, starting from the served weights. Its best ``model.pt`` then
replaces the served weights (atomically), so the next ``/infer`` uses the fine-tuned model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

from monai.bundle import ConfigParser
from monai.transforms import Compose
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask

logger = logging.getLogger(__name__)

__all__ = ["MSANetTrain", "labelled_datalist", "loadable_items"]


def labelled_datalist(
    datastore: Datastore, resolve_view: Callable[[str], Tuple[str, str | None]], label_tag: str = "final"
) -> List[Dict[str, Any]]:
    """One training item per labelled datastore image: ``image`` (source file), ``view``, ``label``.

    A per-view image converted from a two-frame study points back to the study and names the view; its
    label, like every mask of the project, is in the orientation of that view as stored.
    """
    items = []
    for image_id in datastore.get_labeled_images(label_tag):
        image_path = datastore.get_image_uri(image_id)
        source, view = resolve_view(image_path)
        item = {
            "image": source,
            "patient_id": image_id,
            "label": datastore.get_label_uri(image_id, label_tag),
        }
        item["view"] = view or "anterior"  # a single-view NIfTI/PNG holds the view as acquired
        items.append(item)
    return items


def _root_cause(error: BaseException) -> BaseException:
    # MONAI's Compose wraps a transform's error ("applying transform ..."): the project's own error is the cause
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def loadable_items(
    items: Sequence[Dict[str, Any]], transform: Callable[[Dict[str, Any]], Any]
) -> Tuple[List[Dict[str, Any]], Dict[str, str]]:
    """The items ``transform`` reads, and ``patient_id -> reason`` for the others.

    ``transform`` is the training config's ``deterministic_transforms`` (load, resample, count scaling,
    thorax crop: what training caches before its first epoch), so a saved label of the wrong shape, or
    an unreadable one, is left out of the fine-tune and named instead of failing the whole run.
    """
    good, bad = [], {}
    for item in items:
        try:
            transform(dict(item))
        except Exception as e:  # any item the training transforms cannot read: report it, go on with the rest
            bad[item["patient_id"]] = str(_root_cause(e))
            logger.error("label left out of the fine-tune: %s: %s", item["patient_id"], bad[item["patient_id"]])
        else:
            good.append(item)
    return good, bad


class MSANetTrain(TrainTask):
    """Fine-tune from saved labels with ``configs/train.json``.

    Request keys: ``max_epochs`` (default 1), ``label_tag`` (default ``final``). The result (and
    ``/info``'s ``train_stats``) names the labels left out as unreadable (``skipped_labels``).
    """

    def __init__(
        self,
        bundle_dir: str,
        config_files: Sequence[str],
        model_path: str,
        app_dir: str,
        resolve_view: Callable[[str], Tuple[str, str | None]],
    ):
        super().__init__("Fine-tune MSA-Net on the datastore's labels with the bundle's training workflow")
        self.bundle_dir = bundle_dir
        # the width configs served by the infer task, on top of train.json (inference.json left out)
        self.config_files = [os.path.join(bundle_dir, "configs", "train.json")] + [
            c for c in config_files if os.path.basename(c) != "inference.json"
        ]
        self.model_path = model_path
        self.work_dir = os.path.join(app_dir, "train")
        self.resolve_view = resolve_view
        self._stats: Dict[str, Any] = {}

    def config(self) -> Dict[str, Any]:
        return {"max_epochs": 1, "label_tag": "final"}

    def stats(self) -> Dict[str, Any]:
        return self._stats

    def __call__(self, request: Dict[str, Any], datastore: Datastore) -> Dict[str, Any]:
        start = time.time()
        items = labelled_datalist(datastore, self.resolve_view, request.get("label_tag", "final"))
        if not items:
            raise ValueError("the datastore has no labelled images to train on")
        parser = ConfigParser()
        parser.read_config(self.config_files)
        parser["bundle_root"] = self.bundle_dir
        items, skipped = loadable_items(items, Compose(parser.get_parsed_content("deterministic_transforms")))
        if not items:
            raise ValueError("none of the labelled images can be read for training: "
                             + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        run_dir = Path(self.work_dir, time.strftime("%Y%m%d_%H%M%S"))
        run_dir.mkdir(parents=True, exist_ok=True)
        datalist = run_dir / "dataset.json"
        datalist.write_text(json.dumps({"training": items, "test": []}, indent=1))
        overrides = {
            "train_items": items,
            "val_items": items,  # few labels: validate on them rather than hold one out
            "num_epochs": int(request.get("max_epochs", 1)),
            "val_interval": 1,  # a fine-tune is a few epochs: validate (and keep the best) after each
            "num_workers": 0,
            "device": "$torch.device('cpu')",
            "initialize": [
                "$monai.utils.set_determinism(seed=@seed)",
                f"$msanet_monai.checkpoints.load_generator_weights(@network, {str(self.model_path)!r})",
            ],
        }
        override_file = run_dir / "monailabel.json"
        override_file.write_text(json.dumps(overrides, indent=1))
        configs = [*self.config_files, str(override_file)]
        cmd = [sys.executable, "-m", "monai.bundle", "run", "training",
               "--meta_file", os.path.join(self.bundle_dir, "configs", "metadata.json"),
               "--config_file", json.dumps(configs),
               "--logging_file", os.path.join(self.bundle_dir, "configs", "logging.conf"),
               "--bundle_root", str(run_dir), "--datalist", str(datalist)]
        logger.info("fine-tuning: %s", " ".join(cmd))
        done = subprocess.run(cmd, cwd=self.bundle_dir, capture_output=True, text=True)
        (run_dir / "train.log").write_text(done.stdout + done.stderr)
        best = run_dir / "models" / "model.pt"
        if done.returncode != 0 or not best.exists():
            raise RuntimeError(f"{run_dir / 'train.log'}: the bundle's training failed (exit {done.returncode})")
        tmp = self.model_path + ".tmp"
        shutil.copyfile(best, tmp)
        os.replace(tmp, self.model_path)
        self._stats = {"run_dir": str(run_dir), "items": len(items), "skipped_labels": skipped,
                       "seconds": round(time.time() - start, 1)}
        return self._stats
