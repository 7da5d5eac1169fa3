"""Export the server's predictions as LabelMe files, and collect them as a training datalist.

For each datastore image this writes, into ``out_dir``:

* ``<image>.nii.gz``: the image's counts as the datastore stores them (the training input);
* ``<image>.png``: an 8-bit display copy that LabelMe opens (LabelMe cannot read 16-bit counts or DICOM);
* ``<image>.json``: LabelMe 5 JSON, one polygon per lesion labelled as the project's LabelMe reader
  expects (``msanet_monai.io.labelme.DEFAULT_LESION_LABELS``), ``imagePath`` = the display PNG;

and ``dataset.json`` whose ``training`` items pair each image with its LabelMe file, so that the files a
physician corrected in LabelMe train the bundle again (``--datalist out_dir/dataset.json``).

Usage::

    python monailabel_app/labelme_export.py --server http://127.0.0.1:8000 --out_dir labelme_out \
        study_anterior study_posterior
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

import nibabel as nib
import numpy as np
import requests
from PIL import Image

from msanet_monai.io.labelme import DEFAULT_LESION_LABELS, write_labelme

__all__ = ["display_png", "export_predictions", "main"]


def display_png(counts: np.ndarray, path: str | os.PathLike) -> None:
    """Write a (rows, cols) count image as an 8-bit grey PNG, windowed to its 99.5th percentile."""
    top = float(np.percentile(counts, 99.5)) or float(counts.max()) or 1.0
    Image.fromarray((np.clip(counts / top, 0, 1) * 255).astype(np.uint8)).save(path)


def _download(response: requests.Response, target: Path) -> Path:
    if response.status_code != 200:
        raise RuntimeError(f"{response.url}: HTTP {response.status_code} {response.text[:200]}")
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(response.content)
    os.replace(tmp, target)
    return target


def export_predictions(server: str, images: Sequence[str], out_dir: str | os.PathLike, model: str = "msanet") -> str:
    """Infer each datastore image on ``server`` and write LabelMe files; return the datalist path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items: List[Dict[str, Any]] = []
    for image_id in images:
        image_file = _download(requests.get(f"{server}/datastore/image", params={"image": image_id}, timeout=60),
                               out / f"{image_id}.nii.gz")
        mask_file = _download(requests.post(f"{server}/infer/{model}", params={"image": image_id, "output": "image"},
                                            timeout=600), out / f"{image_id}_pred.nii.gz")
        counts = np.asarray(nib.load(image_file).dataobj, dtype=np.float32)
        mask = np.asarray(nib.load(mask_file).dataobj)
        if mask.shape != counts.shape:
            raise RuntimeError(f"{mask_file}: mask shape {mask.shape} is not the image's {counts.shape}")
        display_png(counts, out / f"{image_id}.png")
        write_labelme(out / f"{image_id}.json", mask, f"{image_id}.png", label=DEFAULT_LESION_LABELS[0])
        item = {"image": f"{image_id}.nii.gz", "patient_id": image_id, "labelme": f"{image_id}.json",
                "label": f"{image_id}.json"}
        # per-view images are named <study>_<view>; a single-view image holds an anterior view unless named so
        item["view"] = "posterior" if image_id.endswith("_posterior") else "anterior"
        items.append(item)
    datalist = out / "dataset.json"
    tmp = datalist.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"training": items, "test": []}, indent=1))
    os.replace(tmp, datalist)
    return str(datalist)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--model", default="msanet")
    parser.add_argument("images", nargs="+", help="datastore image ids")
    args = parser.parse_args(argv)
    print(export_predictions(args.server, args.images, args.out_dir, args.model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
