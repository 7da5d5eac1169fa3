"""The training/evaluation preprocessing of train.json resamples a scan and its mask to the model's pixel spacing.

A camera at another pixel size (here 2.4 mm, as some gamma cameras store whole-body scans) must train
and evaluate like one at 2.26 mm: the scan and its mask are resampled together, the mask stays binary,
and a scan already at 2.26 mm passes through unchanged.
"""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose
from scipy import ndimage

BUNDLE = os.path.join(os.path.dirname(__file__), "..", "bundle")


def _transforms(drop_spacing: bool = False) -> Compose:
    parser = ConfigParser()
    parser.read_config([os.path.join(BUNDLE, "configs", f) for f in ("train.json", "quick.json")])
    transforms = parser.get_parsed_content("deterministic_transforms")
    if drop_spacing:
        transforms = [t for t in transforms if type(t).__name__ != "Spacingd"]
    return Compose(transforms)


def _item(dataset_json: str, with_lesion: bool = False) -> dict:
    """The first anterior training view of the set (``with_lesion``: the first with a labelled lesion)."""
    from msanet_monai.io import read_lesion_mask

    root = os.path.dirname(dataset_json)
    with open(dataset_json) as f:
        items = [i for i in json.load(f)["training"] if i["view"] == "anterior"]
    for item in items:
        item = {k: os.path.join(root, v) if k in ("image", "label") else v for k, v in item.items()}
        if not with_lesion or np.asarray(read_lesion_mask(item["label"])[0]).any():
            return item
    raise AssertionError(f"{dataset_json}: no anterior training view with a lesion")


def test_scan_at_model_spacing_passes_unchanged(synthetic_dataset):
    item = _item(synthetic_dataset)
    with_spacing, without = _transforms()(dict(item)), _transforms(drop_spacing=True)(dict(item))
    assert torch.equal(with_spacing["image"].as_tensor(), without["image"].as_tensor())
    assert torch.equal(with_spacing["label"].as_tensor(), without["label"].as_tensor())


def test_scan_and_mask_at_another_spacing_are_resampled_together(synthetic_dataset, tmp_path):
    from msanet_monai.io import read_bone_scan, read_lesion_mask

    item = _item(synthetic_dataset, with_lesion=True)
    counts = np.asarray(read_bone_scan(item["image"], view="anterior")[0], dtype=np.float32)
    mask = np.asarray(read_lesion_mask(item["label"])[0], dtype=np.float32)
    assert mask.sum() > 0
    # the same patient as a 2.4 mm camera would store it: fewer, larger pixels
    factor = 2.26 / 2.4
    coarse_counts = ndimage.zoom(counts, factor, order=1)
    coarse_mask = (ndimage.zoom(mask, factor, order=0) > 0).astype(np.uint8)
    affine = np.diag([2.4, 2.4, 1.0, 1.0])
    nib.save(nib.Nifti1Image(coarse_counts, affine), tmp_path / "scan_2p4.nii.gz")
    nib.save(nib.Nifti1Image(coarse_mask, affine), tmp_path / "mask_2p4.nii.gz")

    out = _transforms()({"image": str(tmp_path / "scan_2p4.nii.gz"), "label": str(tmp_path / "mask_2p4.nii.gz")})
    image, label = out["image"], out["label"]
    assert tuple(image.shape) == tuple(label.shape) == (1, 256, 256)  # the quick roi of the thorax crop
    spacing = [float(np.linalg.norm(image.affine[:2, i])) for i in range(2)]
    np.testing.assert_allclose(spacing, [2.26, 2.26], rtol=0.02)
    assert set(torch.unique(label).tolist()) <= {0.0, 1.0} and label.sum() > 0
    # the mask still lies on the scan's hot spots: the lesions are brighter than the crop around them
    assert image[label > 0].mean() > image[label == 0].mean()
