"""A test set on a real patient: the NEMA NM1 whole-body scan with synthetic lesions inserted on its bones.

The synthetic test set says how a model does on the simulator's patients; this set says how it does on
the one real whole-body scan the project can ship with (pydicom-data's ``JPEG-LL.dcm``, anterior,
256 x 1024 at 2.26 mm). It is built at run time and never committed:

* ``REAL0000``: the untouched scan, byte for byte the NM1 counts, with an empty mask: every lesion a
  model marks on it is a false positive on a real patient.
* ``REAL0001`` ... : ``num_variants`` variants. Each is the NM1 scan moved by a small shift and scale
  and thinned to fewer counts, with 1-6 synthetic metastases (single or in clusters, 1-2 px to ~30 px)
  added on bone found in the real image inside the thorax window the bundle crops, and a few on the
  lumbar spine and pelvis.

Every count stays a Poisson count. The shift and scale move each recorded count, not the image: each
count gets a uniform position inside its pixel, is moved, and is binned again (a Poisson image split
between neighbouring pixels and summed is again Poisson; interpolating the image would smooth the
noise). Fewer counts come from binomial thinning (each count kept with probability ``p``: the scan of
a shorter acquisition). A lesion adds its expected counts times ``p`` as a Poisson sample, so the
variant is Poisson with mean ``p * (real + lesion)``. A lesion is labelled where its counts are at
least 40 % of its peak and a reader would see it (the simulator's rule,
:func:`~msanet_monai.synthetic.generator._labelled_footprint`); one that would not be seen is drawn again.

"Bone" is where the smoothed real counts stand out from the slowly varying soft-tissue level around
them (:func:`bone_mask`). The files, the datalist (all images in its ``test`` section) and the marker
are those of the synthetic set (:mod:`~msanet_monai.synthetic.generator`), so the same rules keep a
folder the project did not write from being used, overwritten or deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os

import numpy as np
from scipy import ndimage

from msanet_monai.datalist import load_datalist
from msanet_monai.errors import BoneScanError
from msanet_monai.io.bone_scan import read_bone_scan
from msanet_monai.synthetic.generator import (
    GENERATOR_VERSION,
    SyntheticScan,
    _foreign_files,
    _is_current,
    _labelled_footprint,
    _prepare_folder,
    _read_marker,
    _replace_folder,
    _write_datalist,
    _write_patient,
)
from msanet_monai.synthetic.phantom import PIXEL_SPACING_MM
from msanet_monai.transforms.thorax import locate_thorax

__all__ = ["REAL_BACKGROUND_VERSION", "UNTOUCHED_ID", "nm1_path", "hottest_spot", "bone_mask", "variant_geometry",
           "SourceUnavailable", "real_background_test_items", "real_background_scans", "generate_real_background",
           "ensure_real_background"]

logger = logging.getLogger(__name__)

REAL_BACKGROUND_VERSION = "2"  # 2: inserted lesions never touch one another
KIND = "real_background"
UNTOUCHED_ID = "REAL0000"
MAX_SHIFT_PX = (8.0, 4.0)  # rows, columns
MAX_SCALE = 0.05  # +- 5 % in each direction
COUNT_FRACTION = (0.6, 1.0)  # binomial thinning: 60-100 % of the real scan's counts


class SourceUnavailable(BoneScanError):
    """The NM1 scan cannot be read here (``pydicom-data`` or its JPEG Lossless decoder is not installed)."""


def nm1_path() -> str:
    """Path of the NEMA NM1 whole-body scan of the pydicom-data package (``JPEG-LL.dcm``).

    Raises:
        SourceUnavailable: ``pydicom-data``, ``pylibjpeg`` or ``pylibjpeg-libjpeg`` is missing.
    """
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.pixels import get_decoder

    # the one named file, never a download (offline it would hang)
    path = get_testdata_file("JPEG-LL.dcm", download=False)
    if path is None:
        raise SourceUnavailable("JPEG-LL.dcm", "the NEMA NM1 scan is not installed: pip install pydicom-data "
                                               "(or the repository's '.[test]' extra)")
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    if not get_decoder(syntax).is_available:
        raise SourceUnavailable(path, f"no decoder for its transfer syntax {syntax.name}: pip install pylibjpeg "
                                      "pylibjpeg-libjpeg (or the repository's '.[test]' extra)")
    return path


def _read_counts(path: str) -> np.ndarray:
    """The view as integer counts ``(rows, cols)`` uint16 through the project's reader."""
    counts = read_bone_scan(path).numpy()[0]
    if not np.array_equal(counts, np.round(counts)) or counts.max() > np.iinfo(np.uint16).max:
        raise BoneScanError(path, "the real background must hold integer counts below 65536")
    return counts.astype(np.uint16)


def hottest_spot(counts: np.ndarray) -> np.ndarray:
    """The hottest spot of a whole-body view and 10 px around it: the bladder on most bone scans, else a
    hot lesion or the injection site. Neither bone nor soft tissue, so measures of either leave it out.

    Args:
        counts: ``(rows, cols)`` counts.

    Returns:
        ``(rows, cols)`` bool: smoothed counts above 60 % of their maximum, dilated by 10 px.
    """
    smooth = ndimage.gaussian_filter(counts.astype(np.float64), 1.5)
    return ndimage.binary_dilation(smooth > 0.6 * smooth.max(), iterations=10)


def bone_mask(counts: np.ndarray, ratio: float = 1.25) -> np.ndarray:
    """Pixels of bone in a whole-body view: smoothed counts at least ``ratio`` x their soft-tissue surroundings.

    Args:
        counts: ``(rows, cols)`` counts.
        ratio: how far bone stands above the local background (the grey-level opening of the smoothed
            view with a disc of radius 15 px, i.e. what is left once structures narrower than ~7 cm
            are removed, smoothed).

    Returns:
        ``(rows, cols)`` bool: inside the body (smoothed counts above 10 % of their 99th percentile, 4 px
        in from its outline), not in or next to the hottest spot (:func:`hottest_spot`).
    """
    smooth = ndimage.gaussian_filter(counts.astype(np.float64), 1.5)
    yy, xx = np.mgrid[-15:16, -15:16]
    background = ndimage.gaussian_filter(ndimage.grey_opening(smooth, footprint=(yy ** 2 + xx ** 2) <= 225), 3.0)
    body = ndimage.binary_erosion(smooth > 0.1 * np.percentile(smooth[smooth > 0], 99), iterations=4)
    return body & ~hottest_spot(counts) & (smooth >= ratio * np.maximum(background, 1e-3))


def _move_counts(counts: np.ndarray, rng: np.random.Generator, scale: tuple[float, float], shift: tuple[float, float],
                 keep: float) -> np.ndarray:
    """Thin (keep each count with probability ``keep``), then scale about the centre and shift every count."""
    rows, cols = counts.shape
    flat = rng.binomial(counts.ravel().astype(np.int64), keep)
    index = np.repeat(np.arange(flat.size), flat)
    r = index // cols + rng.random(index.size)  # a uniform position inside the pixel
    c = index % cols + rng.random(index.size)
    r = (r - rows / 2) * scale[0] + rows / 2 + shift[0]
    c = (c - cols / 2) * scale[1] + cols / 2 + shift[1]
    inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
    binned = np.bincount(r[inside].astype(np.int64) * cols + c[inside].astype(np.int64), minlength=rows * cols)
    return binned.reshape(rows, cols)


def _lesion(rng: np.random.Generator, center: tuple[float, float], shape: tuple[int, int], level: float) -> np.ndarray:
    """Expected counts of one irregular lesion: 1-3 overlapping elliptical Gaussians around ``center``."""
    rows, cols = shape
    sigma = float(np.exp(rng.uniform(np.log(0.6), np.log(6.0))))  # ~1-2 px up to ~30 px across
    out = np.zeros(shape, dtype=np.float64)
    r0, r1 = int(max(0, center[0] - 5 * sigma - 8)), int(min(rows, center[0] + 5 * sigma + 9))
    c0, c1 = int(max(0, center[1] - 5 * sigma - 8)), int(min(cols, center[1] + 5 * sigma + 9))
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    # lesion-to-bone uptake: from barely above the bone to several times it
    amplitude = level * float(np.exp(rng.uniform(np.log(0.4), np.log(4.0))))
    for _ in range(int(rng.integers(1, 4))):
        dy, dx = rng.normal(0.0, 0.5 * sigma, 2)
        sy, sx = sigma * rng.uniform(0.6, 1.4, 2)
        angle = rng.uniform(0, np.pi)
        u = (yy - center[0] - dy) * np.cos(angle) + (xx - center[1] - dx) * np.sin(angle)
        v = -(yy - center[0] - dy) * np.sin(angle) + (xx - center[1] - dx) * np.cos(angle)
        out[r0:r1, c0:c1] += amplitude * rng.uniform(0.5, 1.0) * np.exp(-0.5 * ((u / sy) ** 2 + (v / sx) ** 2))
    return out


def variant_geometry(seed: int, index: int) -> dict:
    """Scale ``(rows, cols)`` about the image centre, shift ``(rows, cols)`` in px, and the fraction of
    counts kept (``keep``) of variant ``index``; a position ``x`` of the real scan lands at
    ``(x - centre) * scale + centre + shift`` (pixel edges at integers)."""
    rng = np.random.default_rng([seed, 20_000 + index, 0])
    scale = (1.0 + rng.uniform(-MAX_SCALE, MAX_SCALE), 1.0 + rng.uniform(-MAX_SCALE, MAX_SCALE))
    shift = (rng.uniform(-MAX_SHIFT_PX[0], MAX_SHIFT_PX[0]), rng.uniform(-MAX_SHIFT_PX[1], MAX_SHIFT_PX[1]))
    return {"scale": scale, "shift": shift, "keep": float(rng.uniform(*COUNT_FRACTION))}


def _variant(real: np.ndarray, seed: int, index: int) -> SyntheticScan:
    geometry = variant_geometry(seed, index)
    keep = geometry["keep"]
    rng = np.random.default_rng([seed, 20_000 + index, 1])
    rows, cols = real.shape
    moved = _move_counts(real, rng, geometry["scale"], geometry["shift"], keep)
    expected = ndimage.gaussian_filter(moved.astype(np.float64), 1.0)  # the real scan's mean, estimated
    level = ndimage.gaussian_filter(moved.astype(np.float64), 2.0)
    bone = bone_mask(moved)
    r0, _, r1, _ = _box(moved)
    in_thorax = np.zeros_like(bone)
    in_thorax[r0 + 8:r1 - 8, int(0.2 * cols):int(0.8 * cols)] = True  # ribs, spine, sternum, scapulae: not the arms
    lower = np.zeros_like(bone)  # lumbar spine and pelvis: the 200 rows under the window
    lower[r1:min(rows, r1 + 200), int(0.2 * cols):int(0.8 * cols)] = True
    lesions = np.zeros((rows, cols), dtype=np.float64)
    mask = np.zeros((rows, cols), dtype=bool)
    num_sites = int(rng.integers(1, 7))
    placed = 0
    for attempt in range(200):
        if placed == num_sites:
            break
        region = bone & (in_thorax if rng.random() < 0.8 else lower)
        candidates = np.argwhere(region & ~ndimage.binary_dilation(mask, iterations=3))
        if not len(candidates):
            continue
        site = candidates[rng.integers(len(candidates))]
        centers = [site]
        if rng.random() < 0.3:  # a cluster: 2-4 lesions within ~1.5 cm on bone
            near = candidates[np.abs(candidates - site).max(axis=1) <= 7]
            centers += [near[i] for i in rng.integers(len(near), size=int(rng.integers(1, 4)))]
        added = 0
        for center in centers:
            lesion = _lesion(rng, (float(center[0]), float(center[1])), (rows, cols), float(level[tuple(center)]))
            footprint = _labelled_footprint(keep * lesion, expected, 1.0)
            # touching counts as merging: with 8-connectivity two masks one pixel apart would be one lesion
            touching = ndimage.binary_dilation(mask, structure=np.ones((3, 3), dtype=bool))
            if footprint is None or (footprint & touching).any():
                continue  # not visible, or would merge with a lesion already there: drawn again
            lesions += lesion
            mask |= footprint
            added += 1
        placed += added > 0  # a site counts once something visible was placed there
    counts = moved + rng.poisson(keep * lesions)
    mask = ndimage.binary_fill_holes(mask).astype(np.uint8)
    return SyntheticScan(
        patient_id=f"REAL{index:04d}",
        counts={"anterior": np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16)},
        masks={"anterior": mask},
        look_alikes={"anterior": []},
        thorax_box=_box(counts),
        total_counts=float(counts.sum()),
        num_lesions=int(ndimage.label(mask, structure=np.ones((3, 3)))[1]),
    )


def _box(counts: np.ndarray) -> list[int]:
    """The thorax window the bundle crops (:func:`~msanet_monai.transforms.thorax.locate_thorax`)."""
    r0, c0, r1, c1 = locate_thorax(counts.astype(np.float32))
    return [int(r0), int(c0), int(r1), int(c1)]


def _source_digest(counts: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(counts, dtype=np.uint16).tobytes()).hexdigest()[:16]


def real_background_scans(num_variants: int = 11, seed: int = 42, source: str | None = None) -> list[SyntheticScan]:
    """The untouched real scan (``REAL0000``, empty mask) and ``num_variants`` variants with lesions.

    Args:
        num_variants: variants with inserted lesions (``REAL0001`` ...).
        seed: seed of the variants (variant ``k`` has its own stream: it does not depend on ``num_variants``).
        source: a single-view whole-body scan of integer counts; default the NEMA NM1 scan (:func:`nm1_path`).

    Returns:
        :class:`~msanet_monai.synthetic.generator.SyntheticScan` objects with the one view ``"anterior"``.
    """
    real = _read_counts(source or nm1_path())
    untouched = SyntheticScan(
        patient_id=UNTOUCHED_ID, counts={"anterior": real}, masks={"anterior": np.zeros(real.shape, dtype=np.uint8)},
        look_alikes={"anterior": []}, thorax_box=_box(real), total_counts=float(real.sum()), num_lesions=0,
    )
    return [untouched] + [_variant(real, seed, k) for k in range(1, int(num_variants) + 1)]


def _parameters(num_variants: int, seed: int, source: str | None) -> dict:
    if int(num_variants) < 0:
        raise ValueError(f"num_variants must be >= 0, got {num_variants}")
    digest = _source_digest(_read_counts(source or nm1_path()))
    return {"kind": KIND, "generator_version": GENERATOR_VERSION, "real_background_version": REAL_BACKGROUND_VERSION,
            "num_variants": int(num_variants), "seed": int(seed), "source_sha256": digest}


def generate_real_background(out_dir: str | os.PathLike, num_variants: int = 11, seed: int = 42,
                             source: str | None = None) -> str:
    """Write the set into ``out_dir`` in the synthetic set's format; returns its ``dataset.json``.

    ``images/REALxxxx.dcm`` (one-frame NM, anterior, 2.26 mm), ``labels/REALxxxx_anterior.nii.gz``,
    ``labelme/REALxxxx_anterior.json``, ``dataset.json`` (every image in ``test``, ``training`` empty) and
    the marker ``.generated.json``. Same seed and source -> byte-identical files.

    Raises:
        BoneScanError: ``out_dir`` is not empty and was not written by this project.
    """
    parameters = _parameters(num_variants, seed, source)
    out_dir = os.fspath(out_dir)
    _prepare_folder(out_dir)
    items = []
    for scan in real_background_scans(num_variants, seed, source):
        items.extend(_write_patient(out_dir, scan, ("anterior",), seed))
    document = {
        "name": "msanet-monai real-background test set",
        "description": "The NEMA NM1 whole-body scan (pydicom-data JPEG-LL.dcm) untouched (REAL0000) and with "
                       "synthetic lesions inserted on its bones (msanet_monai.synthetic.real_background).",
        **parameters,
        "untouched": f"images/{UNTOUCHED_ID}.dcm",
        "training": [],
        "test": items,
    }
    return _write_datalist(out_dir, document, parameters)


def real_background_test_items(out_dir: str | os.PathLike, num_variants: int = 11, seed: int = 42,
                               enabled: bool = True) -> list[dict]:
    """The ``test`` items of the set in ``out_dir`` (built when needed, :func:`ensure_real_background`),
    for the evaluation config: ``[]`` when not ``enabled``, and ``[]`` with a warning naming what to install
    when the NM1 scan cannot be read here (the synthetic evaluation then still runs)."""
    if not enabled:
        return []
    try:
        datalist = ensure_real_background(out_dir, num_variants=num_variants, seed=seed)
    except SourceUnavailable as e:
        logger.warning("real background: skipped, %s (--evaluate_real_background false silences this)", e)
        return []
    return load_datalist(datalist, "test")


def ensure_real_background(out_dir: str | os.PathLike, num_variants: int = 11, seed: int = 42,
                           source: str | None = None, force: bool = False) -> str:
    """The datalist of the real-background set in ``out_dir``, built there when that is safe.

    * ``out_dir`` holds this set with these parameters (marker ``.generated.json``): used as it is.
    * missing or empty: the set is built into it.
    * it holds a real-background set with other parameters and only files this project writes: rebuilt
      (in a temporary sibling, then renamed into place, as :func:`~msanet_monai.synthetic.ensure_dataset`).
    * anything else (a folder of your own, a synthetic training set, a set with files added): an error
      naming the folder; nothing in it is read, written or deleted.

    Raises:
        BoneScanError: naming ``out_dir`` when it cannot be used and must not be written.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    parameters = _parameters(num_variants, seed, source)
    if _is_current(out_dir, parameters) and not force:
        logger.info("real background: the set in %s (NM1 + %d variants, seed %d, built earlier)", out_dir,
                    num_variants, seed)
        return os.path.join(out_dir, "dataset.json")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BoneScanError(out_dir, "real_background_dir is a file, expected a folder")
    marker = _read_marker(out_dir)
    if marker is None and os.path.isdir(out_dir) and os.listdir(out_dir):
        raise BoneScanError(out_dir, "real_background_dir is not empty and was not written by msanet-monai (no "
                                     ".generated.json): nothing is written into it; name a new or empty folder")
    if marker is not None and marker.get("kind") != KIND:
        raise BoneScanError(out_dir, "real_background_dir holds a synthetic training set, not a real-background set: "
                                     "it is not replaced; name another folder")
    if marker is not None and _foreign_files(out_dir):
        foreign = _foreign_files(out_dir)
        raise BoneScanError(out_dir, f"the real-background set here also holds files msanet-monai did not write "
                                     f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}): it is not "
                                     "replaced; move those files or name another folder")
    logger.info("real background: building NM1 + %d variants (seed %d) into %s", num_variants, seed, out_dir)
    _replace_folder(out_dir, parameters,
                    lambda folder: generate_real_background(folder, num_variants=num_variants, seed=seed, source=source))
    return os.path.join(out_dir, "dataset.json")
