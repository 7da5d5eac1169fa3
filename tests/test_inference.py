"""Whole-body inference through bundle/configs/inference.json on real files.

Inputs are built from the real NEMA NM1 whole-body scan (pydicom-data ``JPEG-LL.dcm``): a dual-head
NM DICOM file (NM1 as the anterior frame; NM1 mirrored, as a posterior detector acquires it, with a hot
square painted on it as the posterior frame), NM1 itself (Secondary Capture), a NIfTI and a 16-bit PNG
copy, a truncated DICOM file, a CT DICOM file and a NIfTI holding NaN.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.bundle import ConfigParser
from monai.bundle.scripts import run as bundle_run
from monai.inferers import SlidingWindowInferer
from PIL import Image
from pydicom.data import get_testdata_file

from msanet_monai.errors import BoneScanError, CheckpointError
from msanet_monai.excepthook import project_error
from msanet_monai.inference import find_inputs
from msanet_monai.io.nm_dicom import write_whole_body_nm
from msanet_monai.networks.nets import MSANet

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"
CONFIGS = BUNDLE / "configs"
TINY = [4, 8, 8, 16, 16]
SMALL_ROI = [128, 128]  # tiny-model runs use a 128 x 128 thorax window: 4x less CPU per view
# painted into the posterior frame as stored in the file (inside the thorax window of NM1)
HOT_ROWS, HOT_COLS = slice(330, 340), slice(40, 50)
LEG_ROWS = slice(700, 710)  # a second hot square, below the thorax window


class HotSpotNet(torch.nn.Module):
    """Stand-in network marking pixels whose scaled counts reach ``level``: its output is known, so
    where the mask lands in the written files can be checked pixel by pixel."""

    def __init__(self, level: float = 3.9) -> None:
        super().__init__()
        self.level = level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x >= self.level).float()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, nm1_scan) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("inputs")
    anterior = pydicom.dcmread(nm1_scan).pixel_array.astype(np.uint16)
    posterior = np.ascontiguousarray(anterior[:, ::-1])  # stored as acquired: mirrored
    posterior[HOT_ROWS, HOT_COLS] = 1500
    posterior[LEG_ROWS, HOT_COLS] = 1500
    files = {"dual": str(folder / "dual.dcm"), "nm1": nm1_scan, "nifti": str(folder / "scan.nii.gz"),
             "png": str(folder / "scan.png"), "corrupt": str(folder / "corrupt.dcm"), "nan": str(folder / "nan.nii.gz"),
             "ct": get_testdata_file("CT_small.dcm")}  # a named file shipped with pydicom itself
    write_whole_body_nm(files["dual"], {"anterior": anterior, "posterior": posterior}, patient_id="INF001")
    nib.save(nib.Nifti1Image(anterior.astype(np.float32), np.diag([2.26, 2.26, 1.0, 1.0])), files["nifti"])
    Image.fromarray(anterior).save(files["png"])
    raw = Path(files["dual"]).read_bytes()
    Path(files["corrupt"]).write_bytes(raw[: len(raw) // 3])  # truncated inside the pixel data
    nan = anterior.astype(np.float32)
    nan[500, 100] = np.nan
    nib.save(nib.Nifti1Image(nan, np.diag([2.26, 2.26, 1.0, 1.0])), files["nan"])
    return files


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> str:
    torch.manual_seed(42)
    path = tmp_path_factory.mktemp("weights") / "model.pt"
    torch.save(MSANet(channels=TINY).state_dict(), path)
    return str(path)


def _parser(bundle_root: Path, **override) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser.update({"bundle_root": str(bundle_root), "generator_channels": TINY, **override})
    return parser


def _run(parser: ConfigParser) -> list[dict[str, str]]:
    parser.get_parsed_content("run")
    with open(Path(parser.get_parsed_content("output_dir")) / "inference.csv", newline="") as f:
        return list(csv.DictReader(f))


def _dciodvfy_errors(path: str) -> list[str]:
    result = subprocess.run(["dciodvfy", path], capture_output=True, text=True, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def test_tiny_model_on_every_input_kind(inputs, tiny_weights, tmp_path):
    order = ["dual", "corrupt", "ct", "nm1", "nifti", "nan", "png"]
    parser = _parser(tmp_path, input_files=[inputs[k] for k in order], ckpt_path=tiny_weights, roi_size=SMALL_ROI)
    rows = _run(parser)

    assert [(Path(r["file"]).name, r["view"], r["status"]) for r in rows] == [
        ("dual.dcm", "anterior", "ok"), ("dual.dcm", "posterior", "ok"),
        # the header of the truncated file is readable: both views are listed, neither loads
        ("corrupt.dcm", "anterior", "error"), ("corrupt.dcm", "posterior", "error"),
        ("CT_small.dcm", "", "error"), ("JPEG-LL.dcm", "anterior", "ok"), ("scan.nii.gz", "anterior", "ok"), ("nan.nii.gz", "anterior", "error"),
        ("scan.png", "anterior", "ok"),
    ]
    errors = {Path(r["file"]).name: r["error"] for r in rows if r["status"] == "error"}
    assert inputs["corrupt"] in errors["corrupt.dcm"]
    assert inputs["ct"] in errors["CT_small.dcm"] and "CT" in errors["CT_small.dcm"]
    assert inputs["nan"] in errors["nan.nii.gz"] and "nan" in errors["nan.nii.gz"].lower()

    for row in (r for r in rows if r["status"] == "ok"):
        mask = nib.load(row["mask_nifti"])
        assert mask.shape == (1024, 256)
        np.testing.assert_allclose(mask.affine, np.diag([2.26, 2.26, 1.0, 1.0]), atol=1e-5)
        data = np.asarray(mask.dataobj)
        assert set(np.unique(data)) <= {0, 1} and int(data.sum()) == int(row["lesion_pixels"])
        assert float(row["lesion_area_mm2"]) == pytest.approx(int(row["lesion_pixels"]) * 2.26 * 2.26, abs=0.01)
        r0, c0, r1, c1 = json.loads(row["thorax_box"])
        assert [r1 - r0, c1 - c0] == SMALL_ROI
        inside = np.zeros_like(data)
        inside[r0:r1, c0:c1] = 1
        assert data[inside == 0].sum() == 0  # pasted back: nothing outside the window
        assert Image.open(row["overlay_png"]).size == (256, 1024)
        if row["file"].endswith((".nii.gz", ".png")):
            assert row["dicom_seg"] == "" and "skipped" in row["note"]
        else:
            seg = hd.seg.segread(row["dicom_seg"])
            source = pydicom.dcmread(row["file"], stop_before_pixels=True)
            assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
            np.testing.assert_array_equal(seg.pixel_array.reshape(1024, 256), data)


def test_posterior_mask_lands_in_file_orientation(inputs, tmp_path):
    parser = _parser(tmp_path, input_files=[inputs["dual"]])
    parser["network_def"] = HotSpotNet()
    parser["handlers"][0]["_disabled_"] = True  # HotSpotNet has no weights to load
    rows = _run(parser)
    posterior = next(r for r in rows if r["view"] == "posterior")
    anterior = next(r for r in rows if r["view"] == "anterior")

    mask = np.asarray(nib.load(posterior["mask_nifti"]).dataobj)
    assert mask[HOT_ROWS, HOT_COLS].all()  # where the hot square is in the file ...
    mirror_cols = slice(256 - HOT_COLS.stop, 256 - HOT_COLS.start)
    assert not mask[HOT_ROWS, mirror_cols].any()  # ... not where the network saw it (mirrored)
    assert not np.asarray(nib.load(anterior["mask_nifti"]).dataobj)[HOT_ROWS, HOT_COLS].any()
    assert not mask[LEG_ROWS, HOT_COLS].any()  # outside the thorax window: not seen in the paper's mode

    seg = hd.seg.segread(posterior["dicom_seg"])
    np.testing.assert_array_equal(seg.pixel_array.reshape(1024, 256), mask)
    source_ref = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert source_ref.ReferencedFrameNumber == 2  # the posterior frame of the dual-head file
    anterior_seg = pydicom.dcmread(anterior["dicom_seg"])
    assert anterior_seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber == 1

    overlay = np.asarray(Image.open(posterior["overlay_png"]))
    assert (overlay[HOT_ROWS, HOT_COLS, 0] > overlay[HOT_ROWS, HOT_COLS, 1]).all()  # tinted red in place

    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    for row in rows:
        assert _dciodvfy_errors(row["dicom_seg"]) == []


def test_whole_body_mode_finds_lesions_outside_the_thorax(inputs, tmp_path):
    """crop_thorax false: the whole view through a SlidingWindowInferer with 256 x 256 windows."""
    parser = _parser(tmp_path, input_files=[inputs["dual"]], crop_thorax=False, write_dicom_seg=False)
    parser["network_def"] = HotSpotNet()
    parser["handlers"][0]["_disabled_"] = True
    assert isinstance(parser.get_parsed_content("inferer"), SlidingWindowInferer)
    rows = _run(parser)
    posterior = next(r for r in rows if r["view"] == "posterior")
    assert posterior["thorax_box"] == "" and posterior["dicom_seg"] == ""
    mask = np.asarray(nib.load(posterior["mask_nifti"]).dataobj)
    assert mask[HOT_ROWS, HOT_COLS].all() and mask[LEG_ROWS, HOT_COLS].all()
    assert int(posterior["lesion_count"]) >= 2


def test_bundle_run_on_an_input_folder(inputs, tiny_weights, tmp_path):
    """`python -m monai.bundle run` as a user calls it, with the weights in the bundle's models/."""
    (tmp_path / "models").mkdir()
    shutil.copy(tiny_weights, tmp_path / "models" / "model.pt")
    folder = tmp_path / "studies"
    folder.mkdir()
    shutil.copy(inputs["dual"], folder / "dual.dcm")
    shutil.copy(inputs["png"], folder / "scan.png")
    (folder / "notes.txt").write_text("not an input")  # not an input suffix: skipped, and said so
    (folder / "later").mkdir()  # not searched, and said so
    bundle_run(
        run_id="run", init_id="initialize", config_file=str(CONFIGS / "inference.json"),
        meta_file=str(CONFIGS / "metadata.json"), logging_file=str(CONFIGS / "logging.conf"),
        bundle_root=str(tmp_path), input_dir=str(folder), generator_channels=TINY, roi_size=SMALL_ROI,
    )
    with open(tmp_path / "outputs" / "inference.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(Path(r["file"]).name, r["view"], r["status"]) for r in rows] == [
        ("dual.dcm", "anterior", "ok"), ("dual.dcm", "posterior", "ok"), ("scan.png", "anterior", "ok")]
    assert all(Path(r["mask_nifti"]).is_file() for r in rows)


def test_skipped_entries_of_the_input_folder_are_named(inputs, tmp_path, caplog):
    folder = tmp_path / "studies"
    (folder / "later").mkdir(parents=True)
    shutil.copy(inputs["png"], folder / "scan.png")
    (folder / "notes.txt").write_text("not an input")
    with caplog.at_level(logging.INFO, logger="msanet_monai.inference.inputs"):
        assert [Path(p).name for p in find_inputs(None, folder)] == ["scan.png"]
    assert "2 entries skipped" in caplog.text and "later/" in caplog.text and "notes.txt" in caplog.text


def test_no_inputs_and_no_built_in_data_says_what_to_pass(tmp_path):
    parser = _parser(tmp_path, datalist=str(tmp_path / "none" / "dataset.json"))
    with pytest.raises(Exception) as info:
        parser.get_parsed_content("input_files")
    cause = project_error(info.value)
    assert isinstance(cause, BoneScanError) and "none/dataset.json" in str(cause) and "--input_dir" in str(cause)


def test_checkpoint_of_other_widths_stops_the_run(inputs, tiny_weights, tmp_path):
    parser = _parser(tmp_path, input_files=[inputs["png"]], ckpt_path=tiny_weights, generator_channels=[8, 16, 16, 32, 32])
    with pytest.raises(Exception) as info:
        parser.get_parsed_content("run")
    cause = info.value
    while cause.__cause__ is not None and not isinstance(cause, CheckpointError):
        cause = cause.__cause__
    assert isinstance(cause, CheckpointError) and tiny_weights in str(cause)
