"""LoadBoneScand / LoadLesionMaskd on a dual-head NM file with NIfTI masks, as a datalist item drives them."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from monai.data import list_data_collate
from monai.transforms import Compose

from msanet_monai.errors import BoneScanError
from msanet_monai.io import write_whole_body_nm
from msanet_monai.transforms import LoadBoneScand, LoadLesionMaskd

ROWS, COLS = 64, 32


@pytest.fixture
def item(tmp_path):
    rng = np.random.default_rng(2)
    views = {v: rng.poisson(20, (ROWS, COLS)).astype(np.uint16) for v in ("anterior", "posterior")}
    write_whole_body_nm(tmp_path / "scan.dcm", views, patient_id="L1")
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[10:14, 1:4] = 1  # posterior mask in file orientation (as acquired)
    nib.save(nib.Nifti1Image(mask, np.diag([2.26, 2.26, 1.0, 1.0])), tmp_path / "post.nii.gz")
    data = {"image": str(tmp_path / "scan.dcm"), "view": "posterior", "label": str(tmp_path / "post.nii.gz")}
    return data, views, mask


def test_view_key_selects_frame_and_mask_is_mirrored_with_it(item):
    data, views, mask = item
    load = Compose([LoadBoneScand("image"), LoadLesionMaskd("label")])
    out = load(data)
    np.testing.assert_array_equal(out["image"][0].numpy(), views["posterior"][:, ::-1])
    np.testing.assert_array_equal(out["label"][0].numpy(), mask[:, ::-1])
    assert out["image"].meta["view"] == out["label"].meta["view"] == "posterior"
    assert out["label"].meta["mirrored"] is True and out["label"].meta["pixel_spacing"] == [2.26, 2.26]
    unmirrored = Compose([LoadBoneScand("image", mirror_posterior=False), LoadLesionMaskd("label")])(data)
    np.testing.assert_array_equal(unmirrored["label"][0].numpy(), mask)
    anterior = LoadBoneScand("image")({k: v for k, v in data.items() if k != "view"})
    np.testing.assert_array_equal(anterior["image"][0].numpy(), views["anterior"])


def test_item_without_label(item):
    data, _, _ = item
    label_path = data.pop("label")
    out = Compose([LoadBoneScand("image"), LoadLesionMaskd("label", allow_empty=True)])(data)
    assert out["label"].shape == out["image"].shape and out["label"].sum() == 0
    assert out["label"].meta["mirrored"] is True and out["label"].meta["filename_or_obj"] == ""
    # an empty mask batches with a mask read from a file (same meta keys, no None for default_collate)
    with_file = Compose([LoadBoneScand("image"), LoadLesionMaskd("label")])(item[0] | {"label": label_path})
    batch = list_data_collate([out, with_file])
    assert batch["label"].shape == (2, 1, ROWS, COLS) and batch["label"].meta["filename_or_obj"][1] == label_path
    loaded = LoadBoneScand("image")(data)
    with pytest.raises(BoneScanError, match=r"scan\.dcm: no 'label' mask"):
        LoadLesionMaskd("label", allow_empty=False)(loaded)
    # inside a MONAI Compose the error arrives wrapped in RuntimeError, the BoneScanError as its cause
    with pytest.raises(RuntimeError) as err:
        Compose([LoadBoneScand("image"), LoadLesionMaskd("label", allow_empty=False)])(data)
    assert isinstance(err.value.__cause__, BoneScanError)


def test_mask_before_image_is_an_error(item):
    data, _, _ = item
    with pytest.raises(BoneScanError, match="run LoadBoneScand first"):
        LoadLesionMaskd("label")(data)
