"""MONAI Label app serving the MSA-Net bundle for planar whole-body bone scans.

Start (from the repository root, in the environment ``setup_and_test.sh`` builds)::

    monailabel start_server --app monailabel_app --studies /path/to/studies \
        --conf models msanet --host 127.0.0.1 --port 8000

Each two-frame NM DICOM study in the studies folder is split on start into one NIfTI per view
(``<stem>_anterior.nii.gz``, ``<stem>_posterior.nii.gz``, counts as stored, posterior not mirrored),
so that every view is its own datastore image; inference on such an image reads the view from the
original DICOM file, exactly as ``monai.bundle run inference`` does.

Conf (``--conf key value``): ``bundle`` (bundle folder, default ``../bundle``), ``configs`` (comma
separated config files inside it, default ``configs/inference.json,configs/quick.json``: the widths
of the served weights are the widths these configs give), ``model_path`` (weights, default
``<app>/model/msanet.pt``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Dict, Tuple

import nibabel as nib
import numpy as np
from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask

from lib.infers import MSANetInfer
from lib.trainers import MSANetTrain

logger = logging.getLogger(__name__)

__all__ = ["MyApp", "split_views"]

#: name of the file (in the studies folder) mapping per-view NIfTI images to their source study
VIEWS_INDEX = ".msanet_views.json"


def split_views(studies: str, skipped: Dict[str, str] | None = None) -> Dict[str, Tuple[str, str]]:
    """Write one NIfTI per view of each multi-view DICOM study in ``studies``; return name -> (dcm, view).

    Existing NIfTI files are left as they are (never overwritten); files are written atomically. A
    study that is not a readable whole-body NM view (another modality, a truncated or non-DICOM file)
    is logged and left out, with its reason in ``skipped`` (file name -> reason), so that one bad file
    does not stop the server; its views written before the error stay.
    """
    from msanet_monai.errors import BoneScanError
    from msanet_monai.io import list_views, read_bone_scan

    index: Dict[str, Tuple[str, str]] = {}
    for dcm in sorted(Path(studies).glob("*.dcm")):
        try:
            for view in list_views(dcm):
                name = f"{dcm.stem}_{view}.nii.gz"
                target = Path(studies, name)
                if not target.exists():
                    scan = read_bone_scan(dcm, view=view, mirror_posterior=False)
                    counts = np.asarray(scan[0])
                    row_mm, col_mm = scan.meta["pixel_spacing"]
                    image = nib.Nifti1Image(counts.astype(np.float32), np.diag([row_mm, col_mm, 1.0, 1.0]))
                    tmp = target.with_name(f".{name}.tmp.nii.gz")
                    nib.save(image, tmp)
                    os.replace(tmp, target)
                index[name] = (str(dcm), view)
        except (BoneScanError, OSError) as e:  # BoneScanError names the file and the problem
            logger.error("study left out of the datastore: %s", e)
            if skipped is not None:
                skipped[dcm.name] = str(e)
    tmp_index = Path(studies, VIEWS_INDEX + ".tmp")
    tmp_index.write_text(json.dumps(index, indent=1))
    os.replace(tmp_index, Path(studies, VIEWS_INDEX))
    return index


class MyApp(MONAILabelApp):
    """Planar bone-scan app: an ``msanet`` infer task and an ``msanet`` trainer."""

    def __init__(self, app_dir: str, studies: str, conf: Dict[str, str]):
        self.bundle_dir = os.path.realpath(conf.get("bundle", os.path.join(app_dir, "..", "bundle")))
        self.config_files = [
            os.path.join(self.bundle_dir, c)
            for c in conf.get("configs", "configs/inference.json,configs/quick.json").split(",")
        ]
        self.model_path = conf.get("model_path", os.path.join(app_dir, "model", "msanet.pt"))
        #: study file name -> why it is not in the datastore (also in ``/info`` as ``skipped_studies``)
        self.skipped_studies: Dict[str, str] = {}
        self.views = split_views(studies, self.skipped_studies)
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="MSA-Net bone scan",
            description="Bone-metastasis segmentation of planar whole-body bone scans (MSA-Net bundle)",
            labels={"lesion": 1},
        )

    def info(self):
        """MONAI Label's app info, plus ``skipped_studies``: the studies left out on start and why."""
        return {**super().info(), "skipped_studies": dict(self.skipped_studies)}

    def init_datastore(self) -> Datastore:
        return LocalDatastore(
            self.studies,
            extensions=["*.nii.gz", "*.nii", "*.png"],
            auto_reload=False,
        )

    def resolve_view(self, image_path: str) -> Tuple[str, str | None]:
        source, view = self.views.get(os.path.basename(image_path), (image_path, None))
        return source, view

    def init_infers(self) -> Dict[str, InferTask]:
        return {
            "msanet": MSANetInfer(
                self.bundle_dir, self.config_files, lambda: self.model_path, resolve_view=self.resolve_view
            )
        }

    def init_trainers(self) -> Dict[str, TrainTask]:
        return {"msanet": MSANetTrain(self.bundle_dir, self.config_files, self.model_path, self.app_dir, self.resolve_view)}
