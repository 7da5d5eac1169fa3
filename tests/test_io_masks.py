"""read_lesion_mask on NIfTI, PNG and LabelMe files, with the image it labels; bad masks."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from msanet_monai.errors import BoneScanError
from msanet_monai.io import read_bone_scan, read_lesion_mask, write_whole_body_nm

ROWS, COLS = 64, 32


@pytest.fixture
def scans(tmp_path):
    """A dual-head file and its two views as read (posterior mirrored)."""
    rng = np.random.default_rng(1)
    views = {v: rng.poisson(20, (ROWS, COLS)).astype(np.uint16) for v in ("anterior", "posterior")}
    path = tmp_path / "scan.dcm"
    write_whole_body_nm(path, views, pixel_spacing=(2.0, 3.0), patient_id="M1")
    return {v: read_bone_scan(path, view=v) for v in views}


def _lesion() -> np.ndarray:
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[5:9, 2:6] = 1  # on the file's left side, so a mirror moves it
    return mask


def test_nifti_mask_follows_its_image(scans, tmp_path):
    path = tmp_path / "label.nii.gz"
    nib.save(nib.Nifti1Image(_lesion(), np.diag([2.0, 3.0, 1.0, 1.0])), path)
    anterior = read_lesion_mask(path, like=scans["anterior"])
    assert anterior.shape == (1, ROWS, COLS) and anterior.dtype.is_floating_point
    np.testing.assert_array_equal(anterior[0].numpy(), _lesion())
    assert anterior.meta["mirrored"] is False and anterior.meta["pixel_spacing"] == [2.0, 3.0]
    # a posterior mask is stored as acquired; the image was mirrored on reading, so is the mask
    posterior = read_lesion_mask(path, like=scans["posterior"])
    np.testing.assert_array_equal(posterior[0].numpy(), _lesion()[:, ::-1])
    assert posterior.meta["mirrored"] is True and posterior.meta["view"] == "posterior"
    alone = read_lesion_mask(path)
    assert alone.meta["pixel_spacing"] == [2.0, 3.0] and alone.meta["mirrored"] is False


def test_png_0_255_mask(tmp_path):
    path = tmp_path / "label.png"
    Image.fromarray(_lesion() * 255).save(path)
    mask = read_lesion_mask(path)
    np.testing.assert_array_equal(mask[0].numpy(), _lesion())
    assert set(np.unique(mask.numpy()).tolist()) == {0.0, 1.0}


def test_labelme_mask(scans, tmp_path):
    path = tmp_path / "label.json"
    shapes = [
        {"label": "metastasis", "points": [[2, 5], [5, 5], [5, 8], [2, 8]], "shape_type": "polygon"},
        {"label": "fracture", "points": [[20, 40], [25, 40], [25, 45], [20, 45]], "shape_type": "polygon"},
    ]
    document = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": "scan.dcm", "imageData": None,
                "imageHeight": ROWS, "imageWidth": COLS}
    path.write_text(json.dumps(document))
    mask = read_lesion_mask(path, like=scans["anterior"])
    np.testing.assert_array_equal(mask[0].numpy(), _lesion())  # polygon through pixel centres, outline included
    assert mask[0, 40:46, 20:26].sum() == 0  # the look-alike is not a lesion
    both = read_lesion_mask(path, like=scans["anterior"], lesion_labels=("metastasis", "fracture"))
    assert both[0, 40:46, 20:26].sum() == 36
    with pytest.raises(BoneScanError, match="does not match the image"):
        read_lesion_mask(path, like=scans["anterior"][:, :32, :])


def test_bad_masks(scans, tmp_path):
    cases = []
    grey = tmp_path / "grey.png"
    Image.fromarray((_lesion() * 128).astype(np.uint8)).save(grey)
    cases.append((grey, {}, "not binary: values 0, 128"))
    nan = tmp_path / "nan.nii.gz"
    values = _lesion().astype(np.float32)
    values[0, 0] = np.nan
    nib.save(nib.Nifti1Image(values, np.eye(4)), nan)
    cases.append((nan, {}, "NaN"))
    small = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((ROWS, COLS - 1), np.uint8), np.eye(4)), small)
    cases.append((small, {"like": scans["anterior"]}, r"shape .* differs from the image's \(64, 32\)"))
    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((ROWS, COLS), np.uint8), np.eye(4)), empty)
    cases.append((empty, {"allow_empty": False}, "mask is empty"))
    cases.append((tmp_path / "missing.nii.gz", {}, "mask file not found"))
    other = tmp_path / "label.txt"
    other.write_text("0 1")
    cases.append((other, {}, "unknown mask format"))
    for path, kwargs, problem in cases:
        with pytest.raises(BoneScanError, match=problem) as err:
            read_lesion_mask(path, **kwargs)
        assert str(path) in str(err.value)
    assert read_lesion_mask(empty).sum() == 0  # an empty mask is fine by default (a view without lesions)
