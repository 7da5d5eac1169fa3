"""Dual-head NM DICOM writer: a real file through pydicom and dciodvfy, and its input checks."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from msanet_monai.errors import BoneScanError
from msanet_monai.io.nm_dicom import NM_IMAGE_STORAGE, deterministic_uid, write_whole_body_nm


def _views(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    anterior = rng.poisson(20, (64, 32)).astype(np.uint16)
    anterior[10, 3] = 999  # a marker on the patient's right
    return {"anterior": anterior, "posterior": np.ascontiguousarray(anterior[:, ::-1])}


def dciodvfy_errors(path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_two_frames_with_view_codes(tmp_path):
    views = _views()
    path = tmp_path / "wb.dcm"
    write_whole_body_nm(path, views, patient_id="P1")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == NM_IMAGE_STORAGE and ds.Modality == "NM"
    assert ds.NumberOfFrames == 2 and list(ds.DetectorVector) == [1, 2]
    meanings = [item.ViewCodeSequence[0].CodeMeaning.lower() for item in ds.DetectorInformationSequence]
    assert meanings == ["anterior projection", "posterior projection"]
    frames = ds.pixel_array
    np.testing.assert_array_equal(frames[0], views["anterior"])
    np.testing.assert_array_equal(frames[1], views["posterior"])
    assert frames[1][10, -4] == 999  # posterior stored as acquired: the marker is on the other side
    assert [float(v) for v in ds.PixelSpacing] == [2.26, 2.26]
    assert int(ds.CountsAccumulated) == int(sum(v.sum(dtype=np.int64) for v in views.values()))


def test_uids_are_deterministic(tmp_path):
    write_whole_body_nm(tmp_path / "a.dcm", _views(), patient_id="P1")
    write_whole_body_nm(tmp_path / "b.dcm", _views(), patient_id="P1")
    write_whole_body_nm(tmp_path / "c.dcm", _views(), patient_id="P2")
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()
    a, c = pydicom.dcmread(tmp_path / "a.dcm"), pydicom.dcmread(tmp_path / "c.dcm")
    assert a.SOPInstanceUID != c.SOPInstanceUID and a.StudyInstanceUID != c.StudyInstanceUID
    assert deterministic_uid("x", 1) == deterministic_uid("x", 1) != deterministic_uid("x", 2)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) not installed")
@pytest.mark.parametrize("names", [("anterior", "posterior"), ("posterior",), ("anterior",)])
def test_dciodvfy_reports_no_error(tmp_path, names):
    views = _views()
    path = tmp_path / "wb.dcm"
    write_whole_body_nm(path, {n: views[n] for n in names}, patient_id="P1")
    assert dciodvfy_errors(path) == []


@pytest.mark.parametrize(
    "views, problem",
    [
        ({}, "no views"),
        ({"lateral": np.zeros((4, 4), np.uint16)}, "unknown view"),
        ({"anterior": np.zeros((4, 4), np.float32)}, "uint16"),
        ({"anterior": np.zeros((2, 4, 4), np.uint16)}, "2-D"),
        ({"anterior": np.zeros((4, 4), np.uint16), "posterior": np.zeros((4, 5), np.uint16)}, "differ in shape"),
    ],
)
def test_bad_views_name_the_file(tmp_path, views, problem):
    path = tmp_path / "bad.dcm"
    with pytest.raises(BoneScanError, match=problem) as info:
        write_whole_body_nm(path, views, patient_id="P1")
    assert str(path) in str(info.value)
    assert not path.exists()
