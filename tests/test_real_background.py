"""The real-background test set: built from the real NEMA NM1 scan, read back through the bundle's readers,
deterministic, lesions on bone, the untouched scan unchanged, user folders refused, and evaluated by
``monai.bundle run evaluating`` beside the synthetic test section."""

from __future__ import annotations

import filecmp
import json
import os

import numpy as np
import pydicom
import pytest
import torch
from monai.bundle import run as bundle_run
from scipy import ndimage

from msanet_monai.datalist import load_datalist
from msanet_monai.errors import BoneScanError
from msanet_monai.io.bone_scan import read_bone_scan
from msanet_monai.networks.nets import MSANet
from msanet_monai.synthetic import ensure_real_background, generate_real_background
from msanet_monai.synthetic.real_background import UNTOUCHED_ID, bone_mask, real_background_test_items, variant_geometry
from msanet_monai.transforms import LoadBoneScand, LoadLesionMaskd

BUNDLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bundle")
VARIANTS = 3


@pytest.fixture(scope="module")
def real_set(tmp_path_factory, nm1_scan):
    out = tmp_path_factory.mktemp("real_background")
    return out, generate_real_background(out, num_variants=VARIANTS, seed=42)


def _load(item: dict, root: str) -> dict:
    data = {k: os.path.join(root, v) if k in ("image", "label") else v for k, v in item.items()}
    data = LoadBoneScand(keys="image")(data)
    return LoadLesionMaskd(keys="label", image_key="image", allow_empty=True)(data)


def test_files_through_the_readers(real_set, nm1_scan):
    out, datalist = real_set
    items = load_datalist(datalist, "test")
    assert load_datalist(datalist, "training") == []
    assert [i["patient_id"] for i in items] == [f"REAL{k:04d}" for k in range(VARIANTS + 1)]
    nm1 = pydicom.dcmread(nm1_scan).pixel_array
    for item in items:
        data = _load(item, str(out))
        image, label = data["image"], data["label"]
        assert image.shape == label.shape == (1, *nm1.shape)
        assert image.meta["view"] == "anterior" and list(image.meta["pixel_spacing"]) == [2.26, 2.26]
        if item["patient_id"] == UNTOUCHED_ID:
            # the untouched scan is NM1, count for count, with an empty truth
            assert np.array_equal(image.numpy()[0], nm1.astype(np.float32))
            assert label.sum() == 0
        else:
            assert label.sum() > 0
            assert 0.55 * nm1.sum() < image.sum() < 1.1 * nm1.sum()  # thinned to 60-100 %, plus lesions
            assert not np.array_equal(image.numpy()[0], nm1)
        r0, _, r1, _ = item["thorax_box"]
        assert r1 - r0 == 256
    with open(os.path.join(out, ".generated.json")) as f:
        assert json.load(f)["kind"] == "real_background"


def test_deterministic(real_set, tmp_path):
    out, _ = real_set
    generate_real_background(tmp_path, num_variants=VARIANTS, seed=42)
    files = [os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs]
    assert len(files) == 3 * (VARIANTS + 1) + 2
    match, mismatch, errors = filecmp.cmpfiles(out, tmp_path, files, shallow=False)
    assert mismatch == [] and errors == []
    other = tmp_path / "other_seed"
    generate_real_background(other, num_variants=1, seed=7)
    assert not filecmp.cmp(out / "images" / "REAL0001.dcm", other / "images" / "REAL0001.dcm", shallow=False)


def test_lesions_lie_on_bone(real_set, nm1_scan):
    out, datalist = real_set
    nm1 = pydicom.dcmread(nm1_scan).pixel_array
    rows, cols = nm1.shape
    bone = ndimage.binary_dilation(bone_mask(nm1), iterations=2)
    overlap = []
    for k, item in enumerate(load_datalist(datalist, "test")[1:], start=1):
        mask = _load(item, str(out))["label"].numpy()[0] > 0
        geometry = variant_geometry(42, k)
        (sr, sc), (tr, tc) = geometry["scale"], geometry["shift"]
        components, n = ndimage.label(mask, structure=np.ones((3, 3)))
        assert n >= 1
        for label in range(1, n + 1):
            r, c = np.nonzero(components == label)
            # back to the real scan's pixel grid through the variant's shift and scale
            r_src = np.clip(((r + 0.5 - tr - rows / 2) / sr + rows / 2).astype(int), 0, rows - 1)
            c_src = np.clip(((c + 0.5 - tc - cols / 2) / sc + cols / 2).astype(int), 0, cols - 1)
            overlap.append(bone[r_src, c_src].mean())
    assert min(overlap) >= 0.25, "a lesion is not on bone"  # a large lesion spreads beyond the bone it sits on
    assert np.median(overlap) >= 0.7


def test_user_folders_are_refused(tmp_path):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "notes.txt").write_text("my data")
    with pytest.raises(BoneScanError, match="not written by msanet-monai"):
        ensure_real_background(own, num_variants=1)
    assert os.listdir(own) == ["notes.txt"]
    # a synthetic training set is not replaced by the real-background set
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    (synthetic / "dataset.json").write_text("{}")
    (synthetic / ".generated.json").write_text(json.dumps({"generator_version": "2", "num_patients": 2, "seed": 42}))
    with pytest.raises(BoneScanError, match="synthetic training set"):
        ensure_real_background(synthetic, num_variants=1)
    assert sorted(os.listdir(synthetic)) == [".generated.json", "dataset.json"]
    # a set of ours with a file added is not replaced either
    ours = tmp_path / "ours"
    ensure_real_background(ours, num_variants=1)
    (ours / "images" / "extra.dcm").write_text("x")
    with pytest.raises(BoneScanError, match="did not write"):
        ensure_real_background(ours, num_variants=2)
    assert (ours / "images" / "extra.dcm").exists()


def test_ensure_reuses_and_rebuilds(tmp_path):
    out = tmp_path / "rb"
    path = ensure_real_background(out, num_variants=1)
    stamp = os.stat(os.path.join(out, "images", "REAL0001.dcm")).st_mtime_ns
    assert ensure_real_background(out, num_variants=1) == path
    assert os.stat(os.path.join(out, "images", "REAL0001.dcm")).st_mtime_ns == stamp  # used as it is
    ensure_real_background(out, num_variants=2)  # other parameters: rebuilt in place
    assert [i["patient_id"] for i in load_datalist(path, "test")] == ["REAL0000", "REAL0001", "REAL0002"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".rb.")]  # no staging folder left


def test_missing_nm1_skips_with_a_warning(tmp_path, monkeypatch, caplog):
    import pydicom.data

    monkeypatch.setattr(pydicom.data, "get_testdata_file", lambda name, download=True: None)
    with caplog.at_level("WARNING"):
        assert real_background_test_items(tmp_path / "rb", num_variants=1) == []
    assert "pip install pydicom-data" in caplog.text and not (tmp_path / "rb").exists()
    assert real_background_test_items(tmp_path / "rb", enabled=False) == []


def test_evaluate_bundle_reports_real_background(tmp_path, synthetic_dataset):
    models = tmp_path / "models"
    models.mkdir()
    torch.manual_seed(0)
    with open(os.path.join(BUNDLE, "configs", "quick.json")) as f:
        quick_widths = json.load(f)["generator_channels"]
    torch.save(MSANet(1, 1, channels=quick_widths, deep_supervision=True).state_dict(), models / "model.pt")
    eval_dir = tmp_path / "eval"
    cwd = os.getcwd()
    os.chdir(BUNDLE)
    try:
        bundle_run(
            "evaluating", meta_file="configs/metadata.json",
            config_file=["configs/train.json", "configs/quick.json", "configs/evaluate.json"],
            datalist=synthetic_dataset, ckpt_dir=str(models), output_dir=str(eval_dir), num_workers=0,
            real_background_dir=str(tmp_path / "real_background"), real_background_scans=2,
            # an untrained network's output sits near 0.5: a threshold between its values makes predictions
            threshold=0.5,
        )
    finally:
        os.chdir(cwd)
    assert (eval_dir / "summary.json").exists()  # the synthetic test section, as before
    with open(eval_dir / "real_background" / "summary.json") as f:
        summary = json.load(f)
    assert summary["images"] == 3
    untouched = summary["named_images"]["untouched_real_scan"]
    assert os.path.basename(untouched["filename"]) == "REAL0000.dcm"
    assert untouched["lesion_truth"] == 0 and untouched["lesion_fp"] >= 0
    assert summary["lesion_detection"]["truth_lesions"] > 0
    assert summary["settings"]["variants"] == 2
    rows = (eval_dir / "real_background" / "metrics_per_image.csv").read_text().splitlines()
    assert len(rows) == 4 and "REAL0000.dcm" in rows[1]
