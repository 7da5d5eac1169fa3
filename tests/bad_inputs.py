"""A corpus of bad inputs, generated into a folder: every kind a user's folder may hold that is not a
usable whole-body view, each with words its error message must contain.

:func:`write_bad_inputs` writes one file (or link) per kind and returns ``{kind: (path, expected words)}``;
the tests run every file through the readers and through one batch of the bundle's inference command.
Files are derived from a realistic ``(1024, 256)`` uint16 whole-body array (``base``), so that only the
one fault of each kind differs from a good input.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image
from pydicom.uid import CTImageStorage, MRImageStorage

from msanet_monai.io.nm_dicom import write_whole_body_nm

__all__ = ["write_bad_inputs", "IS_ROOT"]

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
AFFINE = np.diag([2.26, 2.26, 1.0, 1.0])


def _nm(path: Path, base: np.ndarray, **attrs) -> Path:
    write_whole_body_nm(path, {"anterior": base}, patient_id="BAD", **attrs)
    return path


def _edit(path: Path, base: np.ndarray, edit) -> Path:
    _nm(path, base)
    ds = pydicom.dcmread(path)
    edit(ds)
    ds.save_as(path)
    return path


def write_bad_inputs(folder: str | os.PathLike, base: np.ndarray) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """Write the corpus into ``folder``; returns ``{kind: (path, words the error must contain)}``.

    Args:
        folder: where the files are written (created).
        base: ``(1024, 256)`` uint16 whole-body counts the faulty files are made from.
    """
    f = Path(folder)
    f.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, tuple[str, ...]]] = {}

    def add(kind: str, path: Path, *words: str) -> None:
        out[kind] = (path, tuple(words))

    good_png = f / "_good.png.tmp"
    Image.fromarray(base).save(good_png, format="PNG")
    png_bytes = good_png.read_bytes()
    good_png.unlink()

    # ---- PNG
    (f / "png_truncated.png").write_bytes(png_bytes[: len(png_bytes) // 2])
    add("truncated PNG", f / "png_truncated.png", "PNG", "truncated")
    (f / "png_header_only.png").write_bytes(png_bytes[:20])
    add("PNG cut inside its header", f / "png_header_only.png", "PNG")
    (f / "png_empty.png").write_bytes(b"")
    add("empty file (.png)", f / "png_empty.png", "empty")
    (f / "png_text.png").write_text("this is not an image\n")
    add("text file named .png", f / "png_text.png", "PNG")
    Image.fromarray(np.repeat((base // 16).astype(np.uint8)[..., None], 3, axis=-1)).save(f / "png_rgb.png")
    add("RGB PNG", f / "png_rgb.png", "RGB", "greyscale")
    Image.fromarray(np.ascontiguousarray(base.T)).save(f / "png_transposed.png")
    add("transposed PNG (256 rows x 1024 cols)", f / "png_transposed.png", "transposed")
    square = np.zeros((512, 512), np.uint16)
    square[:, 128:384] = base[::2]
    Image.fromarray(square).save(f / "png_square.png")
    add("square PNG (wrong aspect)", f / "png_square.png", "not that of a whole-body view")

    # ---- NIfTI
    (f / "nii_zero.nii.gz").write_bytes(b"")
    add("zero-byte .nii.gz", f / "nii_zero.nii.gz", "empty")
    (f / "nii_badgzip.nii.gz").write_bytes(b"\x1f\x8b\x08\x00garbage, not deflate data" * 4)
    add("broken gzip", f / "nii_badgzip.nii.gz", "NIfTI")
    nib.save(nib.Nifti1Image(base.astype(np.float32), AFFINE), f / "_full.nii.gz")
    full = (f / "_full.nii.gz").read_bytes()
    (f / "_full.nii.gz").unlink()
    (f / "nii_truncated.nii.gz").write_bytes(full[: len(full) // 2])
    add("truncated .nii.gz", f / "nii_truncated.nii.gz", "NIfTI", "truncated")
    (f / "nii_plain_garbage.nii").write_bytes(os.urandom(600))
    add("garbage .nii", f / "nii_plain_garbage.nii", "NIfTI")
    nib.save(nib.Nifti1Image(np.stack([base] * 5, axis=-1).astype(np.float32), AFFINE), f / "nii_3d.nii.gz")
    add("3-D NIfTI volume", f / "nii_3d.nii.gz", "3-D", "planar")
    nan = base.astype(np.float32)
    nan[500, 100] = np.nan
    nib.save(nib.Nifti1Image(nan, AFFINE), f / "nii_nan.nii.gz")
    add("NaN pixel", f / "nii_nan.nii.gz", "NaN")
    inf = base.astype(np.float32)
    inf[10, 10] = np.inf
    nib.save(nib.Nifti1Image(inf, AFFINE), f / "nii_inf.nii.gz")
    add("infinite pixel", f / "nii_inf.nii.gz", "infinite")
    neg = base.astype(np.float32)
    neg[600, 120] = -5
    nib.save(nib.Nifti1Image(neg, AFFINE), f / "nii_negative.nii.gz")
    add("negative counts", f / "nii_negative.nii.gz", "negative")
    nib.save(nib.Nifti1Image(base.astype(np.complex64), AFFINE), f / "nii_complex.nii.gz")
    add("complex pixel type", f / "nii_complex.nii.gz", "complex")
    nib.save(nib.Nifti1Image(np.ascontiguousarray(base.T).astype(np.float32), AFFINE), f / "nii_transposed.nii.gz")
    add("transposed NIfTI", f / "nii_transposed.nii.gz", "transposed")
    nib.save(nib.Nifti1Image(base[::4].astype(np.float32), AFFINE), f / "nii_short.nii.gz")
    add("implausible aspect (256 x 256 whole body)", f / "nii_short.nii.gz", "not that of a whole-body view")

    # ---- DICOM
    (f / "dcm_garbage.dcm").write_bytes(os.urandom(2048))
    add("garbage .dcm", f / "dcm_garbage.dcm", "DICOM")
    (f / "dcm_empty.dcm").write_bytes(b"")
    add("empty .dcm", f / "dcm_empty.dcm", "empty")
    (f / "noext_garbage").write_bytes(b"random bytes of a file without suffix " * 20)
    add("garbage file without suffix", f / "noext_garbage", "DICOM")
    _edit(f / "dcm_ct.dcm", base, lambda ds: setattr(ds, "Modality", "CT"))
    add("CT modality", f / "dcm_ct.dcm", "modality CT")

    def wrong_sop(ds):
        ds.SOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage

    _edit(f / "dcm_sop_ct.dcm", base, wrong_sop)
    add("wrong SOP class (CT Image Storage)", f / "dcm_sop_ct.dcm", "SOP class", "CT Image Storage")

    def mr_sop(ds):
        ds.SOPClassUID = MRImageStorage

    _edit(f / "dcm_sop_mr.dcm", base, mr_sop)
    add("wrong SOP class (MR Image Storage)", f / "dcm_sop_mr.dcm", "MR Image Storage")
    _edit(f / "dcm_tomo.dcm", base, lambda ds: setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]))
    add("TOMO (SPECT) image", f / "dcm_tomo.dcm", "tomographic")

    def rgb(ds):
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"

    _edit(f / "dcm_rgb.dcm", base, rgb)
    add("RGB DICOM", f / "dcm_rgb.dcm", "colour")
    # pydicom refuses to write a non-numeric DS: the bytes of the value are replaced in the file
    nm_bytes = _nm(f / "dcm_spacing_text.dcm", base).read_bytes()
    assert nm_bytes.count(b"2.26\\2.26") == 1
    (f / "dcm_spacing_text.dcm").write_bytes(nm_bytes.replace(b"2.26\\2.26", b"abcd\\efgh"))
    add("non-numeric PixelSpacing", f / "dcm_spacing_text.dcm", "PixelSpacing", "not numeric")
    _edit(f / "dcm_spacing_negative.dcm", base, lambda ds: setattr(ds, "PixelSpacing", [-2.26, 2.26]))
    add("negative PixelSpacing", f / "dcm_spacing_negative.dcm", "PixelSpacing", "positive")
    _edit(f / "dcm_32bit.dcm", base, lambda ds: setattr(ds, "BitsAllocated", 32))
    add("32-bit pixels", f / "dcm_32bit.dcm", "32-bit")

    def no_pixels(ds):
        del ds.PixelData

    _edit(f / "dcm_no_pixels.dcm", base, no_pixels)
    add("no pixel data", f / "dcm_no_pixels.dcm", "no pixel data")
    write_whole_body_nm(f / "dcm_volume.dcm", {"anterior": base}, patient_id="BAD")
    ds = pydicom.dcmread(f / "dcm_volume.dcm")
    ds.NumberOfFrames = 3
    ds.PixelData = np.stack([base] * 3).astype("<u2").tobytes()
    ds.save_as(f / "dcm_volume.dcm")
    add("3-frame volume", f / "dcm_volume.dcm", "3-D volume")
    _edit(f / "dcm_wrong_spacing.dcm", base, lambda ds: setattr(ds, "PixelSpacing", [4.8, 4.8]))
    add("pixel spacing that makes a 4.9 m body", f / "dcm_wrong_spacing.dcm", "4.92 m long", "pixel spacing is wrong")
    Image.fromarray(np.kron(base, np.ones((2, 2), np.uint16))).save(f / "png_2048_rows.png")
    add("PNG of 2048 rows (no spacing: 4.6 m at 2.26 mm)", f / "png_2048_rows.png", "4.63 m long", "give the scan as DICOM")
    _nm(f / "dcm_transposed.dcm", np.ascontiguousarray(base.T))
    add("transposed DICOM (256 rows x 1024 cols)", f / "dcm_transposed.dcm", "transposed")
    nm = _nm(f / "_nm_full.dcm", base).read_bytes()
    (f / "_nm_full.dcm").unlink()
    cut = nm.index(b"\x08\x00\x16\x00")  # tag (0008,0016) SOPClassUID, little endian
    (f / "dcm_cut_before_sop.dcm").write_bytes(nm[:cut])
    add("header cut before SOPClassUID", f / "dcm_cut_before_sop.dcm", "ends before SOPClassUID")
    (f / "dcm_cut_pixels.dcm").write_bytes(nm[: len(nm) - len(nm) // 3])
    add("cut inside the pixel data", f / "dcm_cut_pixels.dcm", "truncated")

    # ---- file system
    os.symlink("loop_b.dcm", f / "loop_a.dcm")
    os.symlink("loop_a.dcm", f / "loop_b.dcm")
    add("symlink loop", f / "loop_a.dcm", "symbolic link loop")
    add("symlink loop (its other link)", f / "loop_b.dcm", "symbolic link loop")
    os.symlink("does_not_exist.dcm", f / "link_broken.dcm")
    add("broken symlink", f / "link_broken.dcm", "broken symbolic link")
    if not IS_ROOT:  # root reads any file whatever its mode: the kind cannot be made here
        locked = f / "perm_unreadable.png"
        locked.write_bytes(png_bytes)
        locked.chmod(0)
        add("unreadable (mode 000)", locked, "permission denied")
    return out
