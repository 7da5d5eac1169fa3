"""Thorax crop: the real NM1 scan (shifted, count-scaled, mirrored), synthetic scans, fallbacks, round trip."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd

from msanet_monai.errors import BoneScanError
from msanet_monai.io import read_bone_scan
from msanet_monai.transforms import LoadBoneScand, LoadLesionMaskd, ScaleCountsd, ThoraxCropd, locate_thorax

NM1_SHOULDERS = 200  # row where NM1's shoulders begin (see NOTES.md and the profile in bundle/docs/preprocessing.md)


@pytest.fixture(scope="module")
def nm1(nm1_scan):
    pytest.importorskip("pylibjpeg")
    return read_bone_scan(nm1_scan)


def _shift(counts: np.ndarray, rows: int) -> np.ndarray:
    """Move the body down (rows > 0) or up, filling with zeros (no wrap-around)."""
    out = np.zeros_like(counts)
    if rows >= 0:
        out[rows:] = counts[: counts.shape[0] - rows]
    else:
        out[:rows] = counts[-rows:]
    return out


def test_lands_on_nm1_thorax(nm1):
    r0, c0, r1, c1 = locate_thorax(nm1[0].numpy())
    assert (c0, c1) == (0, 256) and r1 - r0 == 256
    assert NM1_SHOULDERS - 20 <= r0 <= NM1_SHOULDERS - 5  # a little above the shoulders
    assert r1 >= 440  # down to the lower chest / upper abdomen


@pytest.mark.parametrize("rows", [-50, 50])
def test_follows_a_shifted_body(nm1, rows):
    counts = nm1[0].numpy()
    r0 = locate_thorax(counts)[0]
    assert abs(locate_thorax(_shift(counts, rows))[0] - (r0 + rows)) <= 2


@pytest.mark.parametrize("factor", [0.2, 5.0])
def test_count_level_does_not_move_it(nm1, factor):
    counts = nm1[0].numpy()
    rescanned = np.random.default_rng(0).poisson(counts * factor).astype(np.float32)
    assert abs(locate_thorax(rescanned)[0] - locate_thorax(counts)[0]) <= 2


def test_mirrored_view_and_scaled_input(nm1):
    counts = nm1[0].numpy()
    box = locate_thorax(counts)
    assert locate_thorax(counts[:, ::-1]) == box  # the posterior view, mirrored into anterior orientation
    scaled = ScaleCountsd("image")({"image": nm1})["image"]  # the configs scale before cropping
    assert abs(locate_thorax(scaled[0].numpy())[0] - box[0]) <= 2


def test_wider_image_centres_on_the_body(nm1):
    counts = np.pad(nm1[0].numpy(), ((0, 0), (40, 24)))  # 320 columns, body off centre
    r0, c0, r1, c1 = locate_thorax(counts)
    assert c1 - c0 == 256 and 30 <= c0 <= 50  # the body's columns 40..296 are kept
    assert r0 == locate_thorax(nm1[0].numpy())[0]


def test_fallbacks_and_errors(nm1):
    counts = nm1[0].numpy()
    assert locate_thorax(counts[200:456]) == (0, 0, 256, 256)  # already a crop: returned whole
    with pytest.raises(BoneScanError, match="scan.dcm: image is empty"):
        locate_thorax(np.zeros((1024, 256)), path="scan.dcm")
    with pytest.raises(BoneScanError, match="smaller than the thorax window"):
        locate_thorax(counts[:200])
    with pytest.raises(BoneScanError, match="reaches the top edge"):
        locate_thorax(counts[150:])  # a partial scan that starts at the neck
    image = MetaTensor(torch.zeros(1, 1024, 256), meta={"filename_or_obj": "empty.dcm"})
    with pytest.raises(BoneScanError, match="empty.dcm: image is empty"):
        ThoraxCropd("image")({"image": image})
    fixed = ThoraxCropd("image", box=(100, 0, 356, 256))({"image": image})["image"]
    assert fixed.shape == (1, 256, 256) and fixed.meta["thorax_box"] == [100, 0, 356, 256]
    with pytest.raises(BoneScanError, match="empty.dcm: fixed thorax box .* outside"):
        ThoraxCropd("image", box=(900, 0, 1156, 256))({"image": image})


def test_round_trip_through_invertd(nm1_scan):
    pytest.importorskip("pylibjpeg")
    pre = Compose([LoadBoneScand("image"), LoadLesionMaskd("label"), ScaleCountsd("image"),
                   ThoraxCropd(["image", "label"])])
    data = pre({"image": nm1_scan})
    image, label = data["image"], data["label"]
    r0, c0, r1, c1 = box = image.meta["thorax_box"]
    assert image.shape == label.shape == (1, 256, 256) and label.meta["thorax_box"] == box
    whole = read_bone_scan(nm1_scan)
    scaled = pre.transforms[2]({"image": whole})["image"]
    torch.testing.assert_close(image.as_tensor(), scaled[:, r0:r1, c0:c1].as_tensor())

    # a "prediction": the hottest pixels of the crop, carrying the crop's applied operations
    pred = (image > 1.0).float()
    data["pred"] = pred
    pasted = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=True)(data)["pred"]
    assert pasted.shape == (1, 1024, 256)
    torch.testing.assert_close(pasted[:, r0:r1, c0:c1].as_tensor(), pred.as_tensor())
    outside = pasted.clone()
    outside[:, r0:r1, c0:c1] = 0
    assert float(outside.abs().sum()) == 0 and float(pred.sum()) > 100
    assert "thorax_box" not in pasted.meta


def test_lands_on_synthetic_scans(synthetic_dataset):
    """Each synthetic view: the crop's rows cover >= 80 % of the true thorax box rows, and the mask goes along."""
    root = os.path.dirname(synthetic_dataset)
    with open(synthetic_dataset) as f:
        datalist = json.load(f)
    items = datalist["training"] + datalist["test"]
    assert len(items) >= 6 and {i["view"] for i in items} == {"anterior", "posterior"}
    pre = Compose([LoadBoneScand("image"), LoadLesionMaskd("label"), ThoraxCropd(["image", "label"])])
    for item in items:
        paths = {k: os.path.join(root, item[k]) for k in ("image", "label")}
        data = pre(paths | {"view": item["view"]})
        r0, _, r1, _ = data["image"].meta["thorax_box"]
        t0, _, t1, _ = item["thorax_box"]
        overlap = max(0, min(r1, t1) - max(r0, t0)) / (t1 - t0)
        assert overlap >= 0.8, (item["image"], item["view"], [r0, r1], [t0, t1])
        whole = LoadLesionMaskd("label")(LoadBoneScand("image")(paths | {"view": item["view"]}))["label"]
        torch.testing.assert_close(data["label"].as_tensor(), whole[:, r0:r1].as_tensor())
