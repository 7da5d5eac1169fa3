"""read_bone_scan / list_views on real files: the NEMA NM1 scan, dual-head NM DICOM, NIfTI, PNG, bad input."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.encaps import encapsulate

from msanet_monai.errors import BoneScanError
from msanet_monai.io import list_views, read_bone_scan, write_whole_body_nm

ROWS, COLS = 96, 40


def _views(seed: int = 0) -> dict[str, np.ndarray]:
    """Two different count images; the posterior one as acquired (mirrored) and left-right asymmetric."""
    rng = np.random.default_rng(seed)
    anterior = rng.poisson(30, (ROWS, COLS)).astype(np.uint16)
    anterior[10:20, 2:8] = 400  # a hot spot on one side, so a mirror is visible
    posterior = rng.poisson(50, (ROWS, COLS)).astype(np.uint16)
    posterior[40:50, 30:36] = 900
    return {"anterior": anterior, "posterior": posterior}


@pytest.fixture
def dual_head(tmp_path):
    views = _views()
    path = tmp_path / "dual.dcm"
    write_whole_body_nm(path, views, pixel_spacing=(2.4, 2.1), patient_id="T1")
    return str(path), views


def test_nm1_real_scan(nm1_scan):
    pytest.importorskip("pylibjpeg")
    scan = read_bone_scan(nm1_scan)
    assert scan.shape == (1, 1024, 256) and scan.dtype == torch.float32
    raw = pydicom.dcmread(nm1_scan).pixel_array
    np.testing.assert_array_equal(scan[0].numpy(), raw.astype(np.float32))  # rows and columns not swapped
    assert scan.meta["view"] == "anterior" and scan.meta["mirrored"] is False and scan.meta["frame_index"] == 0
    assert scan.meta["pixel_spacing"] == [2.26, 2.26] and scan.meta["filename_or_obj"] == nm1_scan
    assert torch.allclose(scan.affine.diagonal(), torch.tensor([2.26, 2.26, 1.0, 1.0], dtype=torch.float64))
    # head at the top: the first third holds the head and shoulders, the last tenth (below the feet) nothing
    profile = scan[0].sum(dim=1)
    assert profile[:80].sum() < 0.01 * profile.sum() and profile[920:].sum() < 0.01 * profile.sum()
    assert list_views(nm1_scan) == ["anterior"]


def test_dual_head_views(dual_head):
    path, views = dual_head
    assert list_views(path) == ["anterior", "posterior"]
    anterior = read_bone_scan(path)
    np.testing.assert_array_equal(anterior[0].numpy(), views["anterior"])
    assert anterior.meta["view"] == "anterior" and anterior.meta["pixel_spacing"] == [2.4, 2.1]
    posterior = read_bone_scan(path, view="posterior")
    np.testing.assert_array_equal(posterior[0].numpy(), views["posterior"][:, ::-1])  # mirrored back
    assert posterior.meta["mirrored"] is True and posterior.meta["frame_index"] == 1
    as_acquired = read_bone_scan(path, view="posterior", mirror_posterior=False)
    np.testing.assert_array_equal(as_acquired[0].numpy(), views["posterior"])
    assert as_acquired.meta["mirrored"] is False


def test_views_follow_view_codes_not_frame_order(dual_head, tmp_path):
    path, views = dual_head
    ds = pydicom.dcmread(path)
    first, second = ds.DetectorInformationSequence  # swap the detectors' view codes
    first.ViewCodeSequence, second.ViewCodeSequence = second.ViewCodeSequence, first.ViewCodeSequence
    swapped = tmp_path / "swapped.dcm"
    ds.save_as(swapped)
    assert list_views(swapped) == ["posterior", "anterior"]
    default = read_bone_scan(swapped)  # view=None -> the anterior view, now frame 1
    assert default.meta["frame_index"] == 1 and default.meta["view"] == "anterior"
    np.testing.assert_array_equal(default[0].numpy(), views["posterior"])


def test_frame_order_fallback_logs(dual_head, tmp_path, caplog):
    path, views = dual_head
    ds = pydicom.dcmread(path)
    for item in ds.DetectorInformationSequence:
        del item.ViewCodeSequence
    bare = tmp_path / "no_codes.dcm"
    ds.save_as(bare)
    with caplog.at_level(logging.WARNING, logger="msanet_monai.io.bone_scan"):
        posterior = read_bone_scan(bare, view="posterior")
    assert "frame 0 = anterior" in caplog.text and str(bare) in caplog.text
    np.testing.assert_array_equal(posterior[0].numpy(), views["posterior"][:, ::-1])


def test_single_posterior_view(tmp_path):
    views = _views()
    path = tmp_path / "post.dcm"
    write_whole_body_nm(path, {"posterior": views["posterior"]}, patient_id="T2")
    assert list_views(path) == ["posterior"]
    scan = read_bone_scan(path)
    assert scan.meta["view"] == "posterior" and scan.meta["mirrored"] is True
    np.testing.assert_array_equal(scan[0].numpy(), views["posterior"][:, ::-1])
    with pytest.raises(BoneScanError, match=r"post\.dcm.*anterior view is not in this file"):
        read_bone_scan(path, view="anterior")


def test_nifti_and_png(tmp_path):
    counts = _views()["anterior"]
    nii = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(counts.astype(np.int16), np.diag([3.0, 2.5, 1.0, 1.0])), nii)
    scan = read_bone_scan(nii)
    np.testing.assert_array_equal(scan[0].numpy(), counts)
    assert scan.meta["pixel_spacing"] == [3.0, 2.5] and scan.meta["view"] == "anterior"
    posterior = read_bone_scan(nii, view="posterior")  # no view in the file: the caller names it
    np.testing.assert_array_equal(posterior[0].numpy(), counts[:, ::-1])
    assert list_views(nii) == ["anterior"]

    png = tmp_path / "scan.png"
    wide = counts.astype(np.uint16) * 100  # values above 255: must survive as 16-bit
    Image.fromarray(wide).save(png)
    scan = read_bone_scan(png)
    np.testing.assert_array_equal(scan[0].numpy(), wide.astype(np.float32))
    assert scan.meta["pixel_spacing"] == [2.26, 2.26]


# ------------------------------------------------------------------------------------------ bad input
def _edit(path, out, **attrs):
    ds = pydicom.dcmread(path)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    ds.save_as(out)
    return out


def _rgb(path, out):
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.NumberOfFrames = 1
    ds.PixelData = np.zeros((ROWS, COLS, 3), np.uint8).tobytes()
    ds.save_as(out)
    return out


def _volume(path, out):
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 5
    ds.PixelData = np.ones((5, ROWS, COLS), "<u2").tobytes()
    ds.save_as(out)
    return out


def _truncated(path, out):
    data = open(path, "rb").read()
    open(out, "wb").write(data[: len(data) - 2000])
    return out


def _compressed_without_decoder(path, out):
    # HTJ2K needs pylibjpeg-openjpeg, which the environment does not have
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(64)] * 2)
    ds.save_as(out)
    return out


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p, o: _edit(p, o, Modality="CT"), "modality CT is not NM"),
        (lambda p, o: _edit(p, o, SOPClassUID="1.2.840.10008.5.1.4.1.1.2"), "SOP class CT Image Storage"),
        (_rgb, "colour image"),
        (_volume, "3-D volume of 5 frames"),
        (lambda p, o: _edit(p, o, ImageType=["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]), "tomographic"),
        (_truncated, "truncated"),
        (_compressed_without_decoder, "compressed as High-Throughput JPEG 2000.*no decoder"),
    ],
    ids=["ct", "sop-class", "rgb", "volume", "tomo", "truncated", "no-decoder"],
)
def test_bad_dicom(dual_head, tmp_path, make, problem):
    path, _ = dual_head
    bad = make(path, str(tmp_path / "bad.dcm"))
    with pytest.raises(BoneScanError, match=problem) as err:
        read_bone_scan(bad)
    assert err.value.path == bad and str(err.value).startswith(bad)


def test_bad_files(tmp_path):
    cases = []
    missing = tmp_path / "missing.dcm"
    cases.append((missing, "file not found"))
    text = tmp_path / "notes.dcm"
    text.write_text("not an image")
    cases.append((text, "not a DICOM file"))
    nan = tmp_path / "nan.nii.gz"
    values = np.ones((ROWS, COLS), np.float32)
    values[3, 4] = np.nan
    nib.save(nib.Nifti1Image(values, np.eye(4)), nan)
    cases.append((nan, "NaN"))
    negative = tmp_path / "negative.nii"
    nib.save(nib.Nifti1Image(np.full((ROWS, COLS), -5, np.int16), np.eye(4)), negative)
    cases.append((negative, "negative pixel values"))
    volume = tmp_path / "volume.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((ROWS, COLS, 3), np.float32), np.eye(4)), volume)
    cases.append((volume, "3-D array"))
    complex_ = tmp_path / "complex.nii"
    nib.save(nib.Nifti1Image(np.ones((ROWS, COLS), np.complex64), np.eye(4)), complex_)
    cases.append((complex_, "not counts"))
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((ROWS, COLS, 3), np.uint8)).save(rgb)
    cases.append((rgb, "PNG mode RGB"))
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(open(volume, "rb").read()[:200])
    cases.append((broken, "truncated"))
    for path, problem in cases:
        with pytest.raises(BoneScanError, match=problem) as err:
            read_bone_scan(path)
        assert str(path) in str(err.value)
    with pytest.raises(BoneScanError, match="unknown view 'lateral'"):
        read_bone_scan(nan, view="lateral")


@pytest.mark.parametrize("keep", [-100, -5000], ids=["inside-posterior-frame", "inside-anterior-frame"])
def test_truncated_dual_head_pixel_data(dual_head, tmp_path, keep):
    """Cut inside the pixel data: the header still lists both views, reading either names file and problem."""
    path, _ = dual_head
    bad = tmp_path / "cut.dcm"
    bad.write_bytes(open(path, "rb").read()[:keep])
    assert list_views(bad) == ["anterior", "posterior"]
    for view in ("anterior", "posterior"):
        with pytest.raises(BoneScanError, match="truncated") as err:
            read_bone_scan(bad, view=view)
        assert err.value.path == str(bad) and type(err.value) is BoneScanError


def test_truncated_dual_head_header(dual_head, tmp_path):
    path, _ = dual_head
    bad = tmp_path / "cut.dcm"
    bad.write_bytes(open(path, "rb").read()[:1500])  # inside the NM header, before the pixel data
    for reader in (list_views, read_bone_scan):
        with pytest.raises(BoneScanError, match="no pixel data.*truncated") as err:
            reader(bad)
        assert err.value.path == str(bad)


def test_garbage_dcm_names_the_file_in_both_readers(tmp_path):
    rng = np.random.default_rng(0)
    noise, fake_dicm = tmp_path / "noise.dcm", tmp_path / "fake.dcm"
    noise.write_bytes(rng.bytes(3000))
    fake_dicm.write_bytes(bytes(128) + b"DICM" + rng.bytes(3000))  # DICOM preamble, then garbage
    for path in (noise, fake_dicm):
        for reader in (list_views, read_bone_scan):
            with pytest.raises(BoneScanError) as err:
                reader(path)
            assert err.value.path == str(path) and type(err.value) is BoneScanError


def test_unrecognised_view_code_leaves_the_view_to_the_caller(tmp_path):
    """A single frame whose view code is neither anterior nor posterior: treated like a file without codes."""
    views = _views()
    path = tmp_path / "lateral.dcm"
    write_whole_body_nm(path, {"anterior": views["anterior"]}, patient_id="T3")
    ds = pydicom.dcmread(path)
    code = ds.DetectorInformationSequence[0].ViewCodeSequence[0]
    code.CodeValue, code.CodeMeaning = "399198007", "right lateral projection"
    ds.save_as(path)
    assert list_views(path) == ["anterior"]
    scan = read_bone_scan(path, view="posterior")
    assert scan.meta["view"] == "posterior" and scan.meta["mirrored"] is True
    np.testing.assert_array_equal(scan[0].numpy(), views["anterior"][:, ::-1])
