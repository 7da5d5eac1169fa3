"""Bad inputs, colliding names, concurrent runs, full and read-only disks, through the real readers and
the bundle's real ``python -m monai.bundle run inference`` command (tiny random weights).

The bad-input corpus is :mod:`tests.bad_inputs` (one file per kind, generated into tmp); the good
inputs are the real NEMA NM1 whole-body scan as a dual-head NM file and as NIfTI / PNG copies whose
names share the stem ``a`` (``a.dcm``, ``a.nii.gz``, ``a.png``, ``a_png.nii.gz``).
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.bundle import ConfigParser
from monai.bundle.scripts import run as bundle_run
from PIL import Image

from msanet_monai.errors import BoneScanError, OutputWriteError
from msanet_monai.inference import FailSafeDataset, describe_error
from msanet_monai.io import list_views
from msanet_monai.io.labelme import read_labelme_mask
from msanet_monai.io.ledger import LEDGER_NAME
from msanet_monai.io.nm_dicom import write_whole_body_nm
from msanet_monai.networks.nets import MSANet
from msanet_monai.transforms import LoadBoneScand

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_inputs import IS_ROOT, write_bad_inputs  # noqa: E402

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"
CONFIGS = BUNDLE / "configs"
TINY = {"generator_channels": [4, 8, 8, 16, 16], "roi_size": [128, 128], "write_dicom_seg": True}
GOOD = ["a.dcm", "a.nii.gz", "a.png", "a_png.nii.gz"]


class HotSpotNet(torch.nn.Module):
    """Marks pixels whose scaled counts reach ``level``: a known output for geometry checks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x >= 3.9).float()


@pytest.fixture(scope="module")
def base(nm1_scan) -> np.ndarray:
    return pydicom.dcmread(nm1_scan).pixel_array.astype(np.uint16)


def _write_good(folder: Path, base: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    posterior = np.ascontiguousarray(base[:, ::-1])
    write_whole_body_nm(folder / "a.dcm", {"anterior": base, "posterior": posterior}, patient_id="GOOD")
    nib.save(nib.Nifti1Image(base.astype(np.float32), np.diag([2.26, 2.26, 1.0, 1.0])), folder / "a.nii.gz")
    Image.fromarray(base).save(folder / "a.png")
    flipped = np.ascontiguousarray(base[::-1, ::-1])[::-1]  # another image under a colliding name
    nib.save(nib.Nifti1Image(flipped.astype(np.float32), np.diag([2.26, 2.26, 1.0, 1.0])), folder / "a_png.nii.gz")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, base):
    folder = tmp_path_factory.mktemp("corpus")
    kinds = write_bad_inputs(folder, base)
    yield folder, kinds
    for path, _ in kinds.values():  # let pytest clean up a file of mode 000
        if not path.is_symlink():
            path.chmod(0o644)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    torch.manual_seed(42)
    root = tmp_path_factory.mktemp("bundle")
    (root / "models").mkdir()
    torch.save(MSANet(channels=TINY["generator_channels"]).state_dict(), root / "models" / "model.pt")
    (root / "tiny.json").write_text(json.dumps(TINY))
    return root


def _command(root: Path, input_dir: Path, output_dir: Path) -> list[str]:
    configs = json.dumps([str(CONFIGS / "inference.json"), str(root / "tiny.json")])
    return [sys.executable, "-m", "monai.bundle", "run", "inference", "--meta_file", str(CONFIGS / "metadata.json"),
            "--config_file", configs, "--logging_file", str(CONFIGS / "logging.conf"), "--bundle_root", str(root),
            "--input_dir", str(input_dir), "--output_dir", str(output_dir)]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _reference_run(root: Path, folder: Path, out: Path) -> list[dict[str, str]]:
    """The same batch in this process (``monai.bundle.run``, the function behind the command)."""
    bundle_run(run_id="inference", config_file=[str(CONFIGS / "inference.json"), str(root / "tiny.json")],
               meta_file=str(CONFIGS / "metadata.json"), logging_file=False, bundle_root=str(root),
               input_dir=str(folder), output_dir=str(out))
    return _rows(out / "inference.csv")


# ---------------------------------------------------------------------------------------------- readers
def test_corpus_has_at_least_30_kinds(corpus):
    assert len(corpus[1]) >= 30


def test_every_bad_input_is_a_bone_scan_error_naming_the_file(corpus):
    load = LoadBoneScand("image", required_spacing=None)
    for kind, (path, words) in corpus[1].items():
        with pytest.raises(BoneScanError) as info:
            for view in list_views(path):
                load({"image": str(path), "view": view})
        message = str(info.value)
        assert str(path) in message, kind
        assert all(w.lower() in message.lower() for w in words), (kind, message)


def test_describe_error_keeps_the_project_message(corpus):
    path = str(corpus[1]["truncated PNG"][0])
    item = FailSafeDataset([{"image": path}], transform=LoadBoneScand("image"))[0]
    assert item["error"].startswith(f"{path}: not a readable PNG file")
    try:
        try:
            raise OSError("unpack_from requires a buffer of at least 4 bytes")
        except OSError as raw:
            raise BoneScanError(path, "not a readable PNG file") from raw
    except BoneScanError as own:
        wrapped = RuntimeError("applying transform LoadBoneScand")
        wrapped.__cause__ = own
        assert describe_error(wrapped, path) == f"{path}: not a readable PNG file"


# ------------------------------------------------------------------------- the bundle command, one batch
def test_one_bundle_batch_with_every_bad_kind_beside_good_files(corpus, base, tiny_weights, tmp_path):
    folder, kinds = corpus
    _write_good(folder, base)
    out = tmp_path / "outputs"
    out.mkdir()
    (out / "my_notes.txt").write_text("the user's own file")
    result = subprocess.run(_command(tiny_weights, folder, out), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _rows(out / "inference.csv")

    by_file: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    for kind, (path, words) in kinds.items():
        assert str(path) in by_file, f"{kind}: no row"
        for row in by_file[str(path)]:
            assert row["status"] == "error" and str(path) in row["error"], (kind, row)
            assert all(w.lower() in row["error"].lower() for w in words), (kind, row["error"])
    good = [r for r in rows if r["status"] == "ok"]
    assert sorted((Path(r["file"]).name, r["view"]) for r in good) == sorted(
        [("a.dcm", "anterior"), ("a.dcm", "posterior"), ("a.nii.gz", "anterior"), ("a.png", "anterior"),
         ("a_png.nii.gz", "anterior")])
    assert len(rows) == len(good) + len(kinds)  # one row per bad file (each holds one view or none)

    # names: unique per view, deterministic, and the CSV matches the files on disk
    masks = [r["mask_nifti"] for r in good]
    assert len(set(masks)) == len(masks)
    assert sorted(Path(m).name for m in masks) == sorted([
        "a_dcm_anterior_mask.nii.gz", "a_dcm_posterior_mask.nii.gz", "a_nii_anterior_mask.nii.gz",
        "a_png_anterior_mask.nii.gz", "a_png_nii_anterior_mask.nii.gz"])
    written = {str(p) for p in out.iterdir()}
    listed = {r[c] for r in good for c in ("mask_nifti", "overlay_png", "dicom_seg") if r[c]}
    run_csvs = {str(p) for p in out.glob("inference_*.csv")}
    ours = listed | run_csvs | {str(out / "inference.csv")}
    assert written == ours | {str(out / "my_notes.txt"), str(out / LEDGER_NAME)}  # no temp file left
    assert {str(out / name) for name in json.loads((out / LEDGER_NAME).read_text())["files"]} == ours
    assert (out / "my_notes.txt").read_text() == "the user's own file"
    assert len(run_csvs) == 1 and Path(next(iter(run_csvs))).read_bytes() == (out / "inference.csv").read_bytes()

    # every good view identical to a run without the bad files
    clean = tmp_path / "clean"
    _write_good(clean, base)
    reference = {(Path(r["file"]).name, r["view"]): r for r in _reference_run(tiny_weights, clean, tmp_path / "ref")}
    for row in good:
        ref = reference[(Path(row["file"]).name, row["view"])]
        assert Path(row["mask_nifti"]).name == Path(ref["mask_nifti"]).name
        np.testing.assert_array_equal(np.asarray(nib.load(row["mask_nifti"]).dataobj),
                                      np.asarray(nib.load(ref["mask_nifti"]).dataobj))
        assert Path(row["overlay_png"]).read_bytes() == Path(ref["overlay_png"]).read_bytes()
        assert row["lesion_pixels"] == ref["lesion_pixels"] and row["thorax_box"] == ref["thorax_box"]


def test_two_concurrent_runs_on_one_output_folder(base, tiny_weights, tmp_path):
    inputs = tmp_path / "in"
    _write_good(inputs, base)
    out = tmp_path / "shared"
    procs = [subprocess.Popen(_command(tiny_weights, inputs, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-3000:]
    run_csvs = sorted(out.glob("inference_*.csv"))
    assert len(run_csvs) == 2  # one summary per run: rows of the two runs never mix in one file
    contents = [p.read_bytes() for p in run_csvs]
    for path in run_csvs:
        rows = _rows(path)
        assert len(rows) == 5 and all(r["status"] == "ok" for r in rows)
        for r in rows:  # every file listed is complete
            assert np.asarray(nib.load(r["mask_nifti"]).dataobj).shape == (1024, 256)
            Image.open(r["overlay_png"]).load()
            if r["dicom_seg"]:
                pydicom.dcmread(r["dicom_seg"])
    assert (out / "inference.csv").read_bytes() in contents  # whole, from one of the runs
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != LEDGER_NAME]  # no temporary file
    ledger = json.loads((out / LEDGER_NAME).read_text())["files"]
    assert {"inference.csv", *(p.name for p in run_csvs)} <= set(ledger)


def test_a_run_where_every_view_fails_exits_non_zero_and_keeps_the_summary(corpus, tiny_weights, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for kind in ("truncated PNG", "CT modality", "NaN pixel"):
        os.link(corpus[1][kind][0], folder / corpus[1][kind][0].name)
    out = tmp_path / "outputs"
    out.mkdir()
    (out / "inference.csv").write_text("file,view,status\nprevious.dcm,anterior,ok\n")
    result = subprocess.run(_command(tiny_weights, folder, out), capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "no view was written (3 error(s)" in result.stderr
    assert (out / "inference.csv").read_text() == "file,view,status\nprevious.dcm,anterior,ok\n"
    (run_csv,) = out.glob("inference_*.csv")
    assert [r["status"] for r in _rows(run_csv)] == ["error"] * 3


# --------------------------------------------------------------------------- full and read-only disks
def _hot_parser(root: Path, inputs: list[str], out: Path) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser.update({"bundle_root": str(root), "input_files": inputs, "output_dir": str(out), "roi_size": [128, 128]})
    parser["network_def"] = HotSpotNet()
    parser["handlers"][0]["_disabled_"] = True
    return parser


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 600 kB tmpfs (as root: two views' outputs fit, ~220 kB each).

    Where no tmpfs can be mounted, the same 600 kB budget is simulated in-process: the atomic writer's
    fsync of a temporary file raises ENOSPC once the files written exceed it (so the real clean-up
    and error paths run, only the disk is pretend).
    """
    folder = tmp_path / "small"
    folder.mkdir()
    if IS_ROOT and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)],
                                  capture_output=True, check=False).returncode == 0:
        yield folder
        subprocess.run(["umount", str(folder)], check=False)
        return
    import msanet_monai.io.atomic as atomic

    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        used = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        if used > 600_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    yield folder


def test_full_disk_keeps_what_was_written_and_names_the_file(base, small_disk, tmp_path):
    inputs = tmp_path / "in"
    _write_good(inputs, base)
    files = [str(inputs / n) for n in GOOD]
    parser = _hot_parser(tmp_path, files, small_disk)
    try:
        parser.get_parsed_content("run")
    except Exception as e:  # noqa: BLE001  (the summary itself may not fit: then the error names it)
        cause = e
        while cause.__cause__ is not None and not isinstance(cause, BoneScanError):
            cause = cause.__cause__
        assert isinstance(cause, OutputWriteError) and str(small_disk) in str(cause)
    run_csvs = list(small_disk.glob("inference_*.csv"))
    assert run_csvs, "the run's summary is on disk"
    rows = _rows(run_csvs[0])
    assert any(r["status"] == "ok" for r in rows)
    failed = [r for r in rows if r["status"] == "error"]
    assert failed and all("No space left on device" in r["error"] and str(small_disk) in r["error"] for r in failed)
    for r in rows:  # every file the CSV lists is complete
        for column in ("mask_nifti", "overlay_png", "dicom_seg"):
            if r[column]:
                assert Path(r[column]).is_file(), r[column]
        if r["mask_nifti"]:
            assert np.asarray(nib.load(r["mask_nifti"]).dataobj).shape == (1024, 256)
        if r["overlay_png"]:
            Image.open(r["overlay_png"]).load()
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".") and p.name != LEDGER_NAME]  # no temporary file


def test_read_only_output_folder_fails_with_the_file_named(base, tmp_path):
    inputs = tmp_path / "in"
    _write_good(inputs, base)
    out = tmp_path / "readonly"
    out.mkdir()
    mounted = IS_ROOT and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(out)],
                                         capture_output=True, check=False).returncode == 0
    if not mounted:
        if IS_ROOT:
            pytest.skip("root ignores folder permissions and no read-only tmpfs could be mounted")
        out.chmod(0o555)
    try:
        with pytest.raises(Exception) as info:
            _hot_parser(tmp_path, [str(inputs / "a.png")], out).get_parsed_content("run")
        cause = info.value
        while cause.__cause__ is not None and not isinstance(cause, OutputWriteError):
            cause = cause.__cause__
        assert isinstance(cause, OutputWriteError) and str(out) in str(cause)
        assert "Read-only file system" in str(cause) or "Permission denied" in str(cause)
        assert list(out.iterdir()) == []
    finally:
        if mounted:
            subprocess.run(["umount", str(out)], check=False)
        else:
            out.chmod(0o755)


def test_same_name_in_two_folders_gets_a_second_name(base, tmp_path):
    for sub in ("one", "two"):
        (tmp_path / sub).mkdir()
        Image.fromarray(base if sub == "one" else np.ascontiguousarray(base[:, ::-1])).save(tmp_path / sub / "a.png")
    parser = _hot_parser(tmp_path, [str(tmp_path / "one" / "a.png"), str(tmp_path / "two" / "a.png")], tmp_path / "out")
    parser.get_parsed_content("run")
    rows = _rows(tmp_path / "out" / "inference.csv")
    assert [Path(r["mask_nifti"]).name for r in rows] == ["a_png_anterior_mask.nii.gz", "a_png_anterior_2_mask.nii.gz"]
    assert [Path(r["overlay_png"]).name for r in rows] == ["a_png_anterior_overlay.png", "a_png_anterior_2_overlay.png"]
    overlays = [np.asarray(Image.open(r["overlay_png"])) for r in rows]
    assert not np.array_equal(overlays[0], overlays[1])  # each file kept its own image


def test_files_the_project_did_not_write_are_never_replaced(base, tmp_path):
    inputs = tmp_path / "in"
    _write_good(inputs, base)
    out = tmp_path / "out"
    out.mkdir()
    theirs = {"inference.csv": b"patient,comment\nA,my own csv\n", "a_png_anterior_mask.nii.gz": b"not ours",
              "a_png_anterior_overlay.png": b"also not ours", "notes.txt": b"keep"}
    for name, data in theirs.items():
        (out / name).write_bytes(data)
    for _ in range(2):  # a second run into the same folder replaces its own outputs, still not theirs
        _hot_parser(tmp_path, [str(inputs / "a.png")], out).get_parsed_content("run")
        assert {name: (out / name).read_bytes() for name in theirs} == theirs
        (row,) = _rows(out / "inference_2.csv")
        assert row["status"] == "ok"
        assert Path(row["mask_nifti"]).name == "a_png_anterior_2_mask.nii.gz"
        assert Path(row["overlay_png"]).name == "a_png_anterior_2_overlay.png"
        assert np.asarray(nib.load(row["mask_nifti"]).dataobj).shape == (1024, 256)
    assert not list(out.glob("*_3*")) and not (out / "inference_3.csv").exists()


def test_a_ledger_the_project_did_not_write_stops_the_run(base, tmp_path):
    inputs = tmp_path / "in"
    _write_good(inputs, base)
    out = tmp_path / "out"
    out.mkdir()
    (out / LEDGER_NAME).write_text('{"files": []}')
    with pytest.raises(Exception) as info:
        _hot_parser(tmp_path, [str(inputs / "a.png")], out).get_parsed_content("run")
    cause = info.value
    while cause.__cause__ is not None and not isinstance(cause, OutputWriteError):
        cause = cause.__cause__
    assert isinstance(cause, OutputWriteError) and LEDGER_NAME in str(cause) and "not written by msanet-monai" in str(cause)
    assert sorted(p.name for p in out.iterdir()) == [LEDGER_NAME]


def test_a_partial_scan_is_refused_then_segmented_with_a_fixed_thorax_box(base, tmp_path):
    partial = np.zeros_like(base)
    partial[:-300] = base[300:]  # no head: the body reaches the top edge
    (tmp_path / "in").mkdir()
    Image.fromarray(partial).save(tmp_path / "in" / "partial.png")
    files = [str(tmp_path / "in" / "partial.png")]
    with pytest.raises(Exception):  # the only view fails: the run writes nothing and stops
        _hot_parser(tmp_path, files, tmp_path / "auto").get_parsed_content("run")
    (run_csv,) = (tmp_path / "auto").glob("inference_*.csv")
    (row,) = _rows(run_csv)
    assert "partial.png" in row["error"] and "--thorax_box" in row["error"] and "--crop_thorax false" in row["error"]

    parser = _hot_parser(tmp_path, files, tmp_path / "fixed")
    parser["thorax_box"] = [10, 64, 138, 192]
    parser.get_parsed_content("run")
    (row,) = _rows(tmp_path / "fixed" / "inference.csv")
    assert row["status"] == "ok" and json.loads(row["thorax_box"]) == [10, 64, 138, 192]


# --------------------------------------------------------------------------------------------- geometry
def test_other_matrix_and_spacing_are_resampled_and_masks_returned_in_file_geometry(base, tmp_path):
    hot = base.copy()
    hot[250:260, 100:110] = 1500  # a lesion inside the 128 x 128 thorax window
    big = np.kron(hot, np.ones((2, 2), np.uint16)).astype(np.float32)  # 2048 x 512 at 1.13 mm
    small = hot.reshape(512, 2, 128, 2).max(axis=(1, 3)).astype(np.float32)  # 512 x 128 at 4.52 mm
    files = {"ref": (hot.astype(np.float32), 2.26), "big": (big, 1.13), "small": (small, 4.52)}
    for name, (array, mm) in files.items():
        nib.save(nib.Nifti1Image(array, np.diag([mm, mm, 1.0, 1.0])), tmp_path / f"{name}.nii.gz")
    parser = _hot_parser(tmp_path, [str(tmp_path / f"{n}.nii.gz") for n in files], tmp_path / "out")
    parser["write_dicom_seg"] = False
    parser.get_parsed_content("run")
    rows = {Path(r["file"]).name.split(".")[0]: r for r in _rows(tmp_path / "out" / "inference.csv")}
    assert all(r["status"] == "ok" for r in rows.values())
    for name, (array, mm) in files.items():
        mask = nib.load(rows[name]["mask_nifti"])
        assert mask.shape == array.shape
        np.testing.assert_allclose(np.diag(mask.affine)[:2], [mm, mm], rtol=1e-6)
        data = np.asarray(mask.dataobj)
        scale = 2.26 / mm
        r0, r1, c0, c1 = (round(v * scale) for v in (250, 260, 100, 110))
        assert data[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1].all(), name  # the lesion where it is in this file
        assert float(rows[name]["lesion_area_mm2"]) == pytest.approx(float(rows["ref"]["lesion_area_mm2"]), rel=0.5)  # edge pixels at 4.52 mm
        box = json.loads(rows[name]["thorax_box"])
        assert box[2] - box[0] == round(128 * scale)  # the window, in the file's own pixels


def test_training_loader_refuses_other_spacing_and_transposed_views(base, tmp_path):
    nib.save(nib.Nifti1Image(base.astype(np.float32), np.diag([1.13, 1.13, 1.0, 1.0])), tmp_path / "fine.nii.gz")
    with pytest.raises(BoneScanError, match="differs from the model's 2.26 x 2.26 mm"):
        LoadBoneScand("image")({"image": str(tmp_path / "fine.nii.gz")})
    Image.fromarray(np.ascontiguousarray(base.T)).save(tmp_path / "t.png")
    with pytest.raises(BoneScanError, match="stored transposed"):
        LoadBoneScand("image")({"image": str(tmp_path / "t.png")})


# ---------------------------------------------------------------------------------------------- LabelMe
def _labelme(path: Path, shapes: list[dict], height: object = 1024, width: object = 256) -> Path:
    path.write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": "x.png",
                                "imageData": None, "imageHeight": height, "imageWidth": width}))
    return path


def _polygon(points, label="metastasis") -> dict:
    return {"label": label, "points": points, "shape_type": "polygon", "group_id": None, "flags": {}}


@pytest.mark.parametrize(
    "shapes, height, words",
    [
        ([_polygon([[10, 10], [20, 10]])], 1024, "polygon of 2 point(s)"),
        ([_polygon([[500, 2000], [520, 2000], [510, 2100]])], 1024, "entirely outside the 1024 x 256 image"),
        ([_polygon([[10, 10], ["x", 10], [20, 20]])], 1024, "not [x, y] numbers"),
        ([_polygon([[10, 10], [20, 10], [15, 20]])], "1024px", "'imageHeight' is '1024px'"),
        ([_polygon([[10, 10], [20, 10], [15, 20]])], 1024.5, "'imageHeight' is 1024.5"),
    ],
    ids=["fewer than 3 points", "outside the image", "point not a number", "height not a number", "height fractional"],
)
def test_wrong_labelme_annotations_are_errors_naming_file_and_shape(tmp_path, shapes, height, words):
    path = _labelme(tmp_path / "a.json", shapes, height)
    with pytest.raises(BoneScanError) as info:
        read_labelme_mask(path)
    assert str(path) in str(info.value) and words in str(info.value)
    if "point" in words:
        assert "shape 0 (label 'metastasis')" in str(info.value)


def test_labelme_file_with_no_lesion_label_is_a_warning_naming_the_labels(tmp_path, caplog):
    path = _labelme(tmp_path / "typo.json", [_polygon([[10, 10], [20, 10], [15, 20]], label="metastatis")])
    with caplog.at_level(logging.WARNING, logger="msanet_monai.io.labelme"):
        mask = read_labelme_mask(path)
    assert mask.sum() == 0
    assert str(path) in caplog.text and "'metastatis'" in caplog.text and "lesion label" in caplog.text
