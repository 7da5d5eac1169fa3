"""Output writers: DICOM SEG (highdicom, dciodvfy), NIfTI mask, lesion statistics, CSV."""

from __future__ import annotations

import csv
import shutil
import subprocess

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from msanet_monai.errors import BoneScanError
from msanet_monai.io.nm_dicom import write_whole_body_nm
from msanet_monai.io.writers import (
    CSV_COLUMNS,
    InferenceCSVWriter,
    lesion_statistics,
    to_file_orientation,
    write_dicom_seg,
    write_mask_nifti,
    write_overlay_png,
)

ROWS, COLS = 128, 64


def _dciodvfy_errors(path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture
def dual_head(tmp_path) -> str:
    rng = np.random.default_rng(42)
    views = {v: rng.poisson(30, (ROWS, COLS)).astype(np.uint16) for v in ("anterior", "posterior")}
    path = tmp_path / "dual.dcm"
    write_whole_body_nm(path, views, pixel_spacing=(2.26, 2.4), patient_id="SEG001")
    return str(path)


def _mask() -> np.ndarray:
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[40:46, 5:12] = 1
    return mask


def test_seg_of_the_posterior_frame_references_frame_2(dual_head, tmp_path):
    out = write_dicom_seg(tmp_path / "seg.dcm", _mask(), dual_head, frame_index=1, view="posterior")
    seg = hd.seg.segread(out)
    source = pydicom.dcmread(dual_head, stop_before_pixels=True)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.PatientID == "SEG001"
    item = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert item.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert item.ReferencedSOPClassUID == source.SOPClassUID and item.ReferencedFrameNumber == 2
    np.testing.assert_array_equal(seg.pixel_array.reshape(ROWS, COLS), _mask())
    segment = seg.SegmentSequence[0]
    assert segment.SegmentAlgorithmName == "MSA-Net" and segment.SegmentAlgorithmType == "AUTOMATIC"
    assert list(seg.PatientOrientation) == ["R", "F"]
    assert [float(v) for v in seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing] == [2.26, 2.4]
    assert _dciodvfy_errors(out) == []


def test_empty_mask_still_gives_one_frame(dual_head, tmp_path):
    out = write_dicom_seg(tmp_path / "seg.dcm", np.zeros((ROWS, COLS)), dual_head, frame_index=0)
    seg = hd.seg.segread(out)
    assert seg.NumberOfFrames == 1 and not seg.pixel_array.any()
    assert seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber == 1
    assert _dciodvfy_errors(out) == []


def test_seg_of_the_secondary_capture_nm1_scan(nm1_scan, tmp_path):
    mask = np.zeros((1024, 256), np.uint8)
    mask[300:310, 100:120] = 1
    out = write_dicom_seg(tmp_path / "seg.dcm", mask, nm1_scan)
    seg = hd.seg.segread(out)
    item = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert item.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert "ReferencedFrameNumber" not in item  # a single-frame source has no frame to name
    np.testing.assert_array_equal(seg.pixel_array.reshape(1024, 256), mask)
    assert _dciodvfy_errors(out) == []


def test_seg_refuses_sources_it_cannot_reference(dual_head, tmp_path):
    png = tmp_path / "scan.png"
    Image.fromarray(np.zeros((ROWS, COLS), np.uint16)).save(png)
    with pytest.raises(BoneScanError, match="scan.png.*not a readable DICOM"):
        write_dicom_seg(tmp_path / "a.dcm", _mask(), png)
    with pytest.raises(BoneScanError, match="dual.dcm.*differs from the mask"):
        write_dicom_seg(tmp_path / "b.dcm", np.zeros((ROWS, COLS + 1)), dual_head)
    with pytest.raises(BoneScanError, match="dual.dcm.*no frame index 2"):
        write_dicom_seg(tmp_path / "c.dcm", _mask(), dual_head, frame_index=2)


def test_mask_orientation_statistics_and_nifti(tmp_path):
    mask = np.zeros((1, 10, 8), np.float32)
    mask[0, 1:3, 0:2] = 1  # a 2 x 2 lesion at the left edge
    mask[0, 3, 2] = 1  # touches it diagonally: same lesion (8-connected)
    mask[0, 7, 6] = 1  # a separate one-pixel lesion
    unmirrored = to_file_orientation(mask, mirrored=True)
    assert unmirrored.dtype == np.uint8 and unmirrored[1:3, 6:8].all() and not unmirrored[1:3, 0:2].any()
    np.testing.assert_array_equal(to_file_orientation(mask, mirrored=False), mask[0])
    assert lesion_statistics(mask, (2.0, 3.0)) == {"lesion_pixels": 6, "lesion_count": 2, "lesion_area_mm2": 36.0}

    path = write_mask_nifti(tmp_path / "m.nii.gz", unmirrored, (2.26, 2.4))
    image = nib.load(path)
    assert image.shape == (10, 8)
    np.testing.assert_allclose(image.affine, np.diag([2.26, 2.4, 1.0, 1.0]), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(image.dataobj), unmirrored)

    scan = np.arange(80, dtype=np.float32).reshape(10, 8)
    rgb = np.asarray(Image.open(write_overlay_png(tmp_path / "o.png", scan, unmirrored, thorax_box=(0, 0, 10, 8))))
    assert rgb.shape == (10, 8, 3)
    assert tuple(rgb[2, 6]) == (255, 0, 0)  # lesion outline (the box is drawn over column 7)
    assert tuple(rgb[5, 0]) == (0, 255, 255)  # thorax box edge


def test_csv_rows_are_on_disk_before_the_run_ends(tmp_path):
    writer = InferenceCSVWriter(tmp_path / "out.csv")
    writer.write_row({"file": "a.dcm", "view": "anterior", "status": "ok", "lesion_count": 2})
    with open(tmp_path / "out.csv", newline="") as f:  # read while the writer is still open
        rows = list(csv.DictReader(f))
    assert rows == [dict.fromkeys(CSV_COLUMNS, "") | {"file": "a.dcm", "view": "anterior", "status": "ok", "lesion_count": "2"}]
    with pytest.raises(ValueError, match="unknown CSV column"):
        writer.write_row({"file": "b.dcm", "lesions": 1})
    writer.close()
