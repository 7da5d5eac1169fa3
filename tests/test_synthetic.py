"""The synthetic data set: real files through real readers, paper-like layout, determinism, realism."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict

import nibabel as nib
import numpy as np
import pydicom
import pytest

from msanet_monai.io.labelme import read_labelme_mask
from msanet_monai.synthetic import ensure_dataset, generate_dataset, simulate_patient, split_counts
from msanet_monai.synthetic.__main__ import main as cli_main


def _datalist(path):
    with open(path) as f:
        return json.load(f)


def _frames(path) -> dict[str, np.ndarray]:
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    names = [item.ViewCodeSequence[0].CodeMeaning.split()[0].lower() for item in ds.DetectorInformationSequence]
    return dict(zip(names, frames))


def test_paper_split_sizes():
    n = split_counts(171)
    assert n == {"dual": 115, "single": 56, "train_dual": 82, "train_single": 36}
    assert 2 * n["train_dual"] + n["train_single"] == 200
    assert 2 * (n["dual"] - n["train_dual"]) + n["single"] - n["train_single"] == 86


def test_layout_and_patient_grouping(synthetic_dataset):
    document = _datalist(synthetic_dataset)
    n = split_counts(6)
    views = defaultdict(set)
    section_of = {}
    for section in ("training", "test"):
        for item in document[section]:
            views[item["patient_id"]].add(item["view"])
            assert section_of.setdefault(item["patient_id"], section) == section  # never on both sides
    assert len(views) == 6
    assert sum(len(v) == 2 for v in views.values()) == n["dual"]
    train_images = len(document["training"])
    assert train_images == 2 * n["train_dual"] + n["train_single"]


def test_dicom_masks_and_labelme_agree(synthetic_dataset):
    root = os.path.dirname(synthetic_dataset)
    document = _datalist(synthetic_dataset)
    lesion_counts, body_counts = [], []
    for item in document["training"] + document["test"]:
        ds = pydicom.dcmread(os.path.join(root, item["image"]))
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.20" and ds.Modality == "NM"
        counts = _frames(os.path.join(root, item["image"]))[item["view"]]
        assert counts.shape == (1024, 256) and counts.dtype == np.uint16
        # clinical count range; the hottest pixel, a hot metastasis in some patients (one of the small set's
        # posterior views: 2048 in a labelled lesion of 222 pixels), stays far below the 16-bit limit
        assert 1.0e6 < counts.sum() < 8.0e6 and counts.max() < 5000
        assert 2e-5 < counts.max() / counts.sum() < 1e-3  # hottest pixel per count; NM1: 7.7e-5
        label = nib.load(os.path.join(root, item["label"]))
        mask = np.asarray(label.dataobj)
        assert mask.shape == (1024, 256) and set(np.unique(mask)) <= {0, 1}
        np.testing.assert_allclose(np.diag(label.affine), [2.26, 2.26, 1, 1])
        labelme = read_labelme_mask(os.path.join(root, item["labelme"]), shape=counts.shape)
        np.testing.assert_array_equal(labelme, mask)
        r0, c0, r1, c1 = item["thorax_box"]
        assert (r1 - r0, c0, c1) == (256, 0, 256) and 0 <= r0 <= 1024 - 256
        if mask.any():
            lesion_counts.append(counts[mask > 0].mean())
            body_counts.append(counts[counts > counts.mean()].mean())
    assert lesion_counts, "the small set should hold lesions"
    # lesions are hot spots: brighter on average than the body
    assert np.mean(lesion_counts) > np.mean(body_counts)


def test_posterior_is_mirrored_and_differs(synthetic_dataset):
    root = os.path.dirname(synthetic_dataset)
    datalist = _datalist(synthetic_dataset)
    items = datalist["training"] + datalist["test"]
    # a patient with both views: an anterior item of the same image exists
    both = {i["image"] for i in items if i["view"] == "anterior"}
    item = next(i for i in items if i["view"] == "posterior" and i["image"] in both)
    frames = _frames(os.path.join(root, item["image"]))
    anterior, posterior = frames["anterior"].astype(float), frames["posterior"][:, ::-1].astype(float)
    # back in the anterior orientation the two views correlate, the stored one much less so
    assert np.corrcoef(anterior.ravel(), posterior.ravel())[0, 1] > 0.6
    assert not np.array_equal(anterior, posterior)
    # posterior: the spine (middle columns of the thorax window) is brighter relative to the whole view
    r0, _, r1, _ = item["thorax_box"]
    spine = slice(118, 138)
    ratio = lambda v: v[r0:r1, spine].sum() / v.sum()  # noqa: E731
    assert ratio(posterior) > ratio(anterior)


def test_read_bone_scan_round_trip(synthetic_dataset):
    from msanet_monai.io import bone_scan as io
    root = os.path.dirname(synthetic_dataset)
    item = next(i for i in _datalist(synthetic_dataset)["training"] if i["view"] == "posterior")
    path = os.path.join(root, item["image"])
    image = io.read_bone_scan(path, view="posterior")
    assert tuple(image.shape) == (1, 1024, 256) and image.meta["mirrored"]
    np.testing.assert_array_equal(image[0].numpy(), _frames(path)["posterior"][:, ::-1])


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = os.path.dirname(generate_dataset(tmp_path / "a", num_patients=2, seed=3))
    b = os.path.dirname(generate_dataset(tmp_path / "b", num_patients=2, seed=3))
    files = sorted(os.path.relpath(os.path.join(d, f), a) for d, _, fs in os.walk(a) for f in fs)
    assert len(files) >= 8
    for name in files:
        with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
            assert fa.read() == fb.read(), name
    other = simulate_patient(4, 1).counts["anterior"]
    assert not np.array_equal(other, simulate_patient(3, 1).counts["anterior"])


def test_count_levels_vary_between_patients():
    totals = [simulate_patient(42, i).total_counts for i in range(1, 13)]
    assert min(totals) >= 1.2e6 and max(totals) <= 4.5e6  # anterior totals of 10-15 min whole-body studies
    assert max(totals) / min(totals) > 1.5


def test_ensure_dataset_generates_once(tmp_path):
    out = tmp_path / "data"
    path = ensure_dataset(out, num_patients=2, seed=1)
    marker = json.loads((out / ".generated.json").read_text())
    assert marker["num_patients"] == 2 and marker["seed"] == 1
    stamp = os.stat(path).st_mtime_ns
    assert ensure_dataset(out, num_patients=2, seed=1) == path
    assert os.stat(path).st_mtime_ns == stamp  # not regenerated
    ensure_dataset(out, num_patients=3, seed=1)  # other parameters: regenerated in place
    assert len({i["patient_id"] for s in ("training", "test") for i in _datalist(path)[s]}) == 3
    assert sorted(os.listdir(tmp_path)) == ["data"]  # no staging folder left behind


def test_cli(tmp_path, capsys):
    cli_main(["--out", str(tmp_path / "cli"), "--num-patients", "2", "--seed", "5"])
    printed = capsys.readouterr().out
    assert "training: " in printed and "datalist: " in printed
    assert (tmp_path / "cli" / "dataset.json").is_file()


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) not installed")
def test_generated_dicom_passes_dciodvfy(synthetic_dataset):
    root = os.path.dirname(synthetic_dataset)
    images = sorted({i["image"] for s in ("training", "test") for i in _datalist(synthetic_dataset)[s]})
    for image in images:
        run = subprocess.run(["dciodvfy", os.path.join(root, image)], capture_output=True, text=True)
        errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], image


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ensure_dataset_never_touches_a_users_folder(tmp_path, caplog):
    import logging

    from msanet_monai.errors import BoneScanError

    caplog.set_level(logging.INFO, logger="msanet_monai")
    # the user's own data set: a datalist and scans, no generator marker -> used as it is, nothing written
    mine = tmp_path / "mine"
    (mine / "scans").mkdir(parents=True)
    (mine / "dataset.json").write_text('{"training": [], "test": []}')
    (mine / "scans" / "p1.dcm").write_bytes(b"DICM" * 10)
    before = _tree(mine)
    assert ensure_dataset(mine, num_patients=2, seed=1) == str(mine / "dataset.json")
    assert _tree(mine) == before and sorted(os.listdir(tmp_path)) == ["mine"]
    assert "not written by the synthetic generator: training on it" in caplog.text
    # a folder with other files and no datalist: an error naming it, nothing written
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(BoneScanError, match=r"other: dataset_dir holds files but no dataset.json"):
        ensure_dataset(other, num_patients=2, seed=1)
    assert _tree(other) == {"notes.txt": b"keep me"}
    with pytest.raises(BoneScanError, match="not written by the synthetic generator"):
        generate_dataset(other, num_patients=2, seed=1)
    assert _tree(other) == {"notes.txt": b"keep me"}
    # a missing folder is generated into only when generation is allowed
    with pytest.raises(BoneScanError, match=r"missing: dataset_dir does not exist and generate_dataset is false"):
        ensure_dataset(tmp_path / "missing", num_patients=2, seed=1, generate=False)
    assert not (tmp_path / "missing").exists()
    # a generated set the user added a file to is not replaced by a set with other parameters
    gen = tmp_path / "gen"
    ensure_dataset(gen, num_patients=2, seed=1)
    assert "generating the synthetic set (2 patients, seed 1)" in caplog.text
    (gen / "labels" / "my_correction.nii.gz").write_bytes(b"mine")
    before = _tree(gen)
    with pytest.raises(BoneScanError, match=r"labels/my_correction.nii.gz\): it is not replaced"):
        ensure_dataset(gen, num_patients=3, seed=1)
    assert _tree(gen) == before
    with pytest.raises(BoneScanError, match="other parameters"):
        ensure_dataset(tmp_path / "gen", num_patients=2, seed=2, generate=False)


def test_cli_refuses_fewer_than_two_patients_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["--out", str(tmp_path / "one"), "--num-patients", "1"])
    assert info.value.code == 2
    assert "--num-patients 1: at least 2" in capsys.readouterr().err
    assert not (tmp_path / "one").exists()
