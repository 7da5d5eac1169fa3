"""Synthetic whole-body bone-scan data set shaped like the paper's (286 views of 171 patients).

Two simulators draw a patient. ``"3d"`` (the default): a voxel body with its skeleton, organs and
findings (:mod:`~msanet_monai.synthetic.body`, :mod:`~msanet_monai.synthetic.findings`) imaged by both
heads with attenuation, depth-dependent collimator blur, scatter and Poisson noise
(:mod:`~msanet_monai.synthetic.camera`). ``"planar"`` (the project's first generator, kept as the
baseline that realism and transfer are measured against): shapes drawn straight into the two views
(:mod:`~msanet_monai.synthetic.phantom`, :mod:`~msanet_monai.synthetic.lesions`), blurred, scaled
and Poisson-sampled. Written as one dual-head NM DICOM per
patient (posterior frame stored as acquired, i.e. mirrored), one NIfTI mask and one LabelMe file per
view (in the file's orientation), and a MONAI datalist whose split is grouped by patient like the
paper's: 200 training images of 118 patients, 86 test images of 53 patients.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from msanet_monai.errors import BoneScanError
from msanet_monai.io.bone_scan import VIEWS
from msanet_monai.io.labelme import write_labelme
from msanet_monai.io.nm_dicom import deterministic_uid, write_whole_body_nm
from msanet_monai.io.writers import write_label_map_nifti, write_mask_nifti
from msanet_monai.synthetic.body import DEPTH_VOXEL_MM, BodyVolume, draw_body, sample_body
from msanet_monai.synthetic.camera import ViewGeometry, project_volume, render_blobs, skeleton_map
from msanet_monai.synthetic.findings import sample_look_alikes, sample_metastases
from msanet_monai.synthetic.lesions import LookAlike, add_look_alikes, draw_lesions, sample_lesions
from msanet_monai.synthetic.phantom import PIXEL_SPACING_MM, WHOLE_BODY_SHAPE, Canvas, draw_anatomy, sample_anatomy

__all__ = ["SyntheticScan", "GENERATOR_VERSION", "SIMULATORS", "simulate_patient", "split_counts", "generate_dataset",
           "ensure_dataset"]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "5"  # 5: bladder above the symphysis, bent elbows, genital blood pool (4: build, pelvis, legs,
# organs tuned against NM1's row profile); sets of an older version are rebuilt
SIMULATORS = ("3d", "planar")
MARKER = ".generated.json"
# camera point spread: system resolution of a LEHR collimator near the body, ~7 mm FWHM
PSF_SIGMA_PX = 1.3
ROI_ROWS = 256
IN_PLANE_VOXEL_MM = 4.52  # the 3-D body's voxel across and along the body (two 2.26 mm pixels)
BODY_DEPTH_MM = 400.0  # depth of the voxel grid: the thickest trunk plus the gap to the anterior head
LESION_VISIBILITY = 4.0  # Rose criterion: a lesion is labelled in a view where its counts exceed 4 sd of the background
LESION_CONTRAST = 0.15  # ... and raise the counts under it by at least 15 % (less is not seen by a reader)


@dataclass
class SyntheticScan:
    """One synthetic patient, both views in *file* orientation (posterior mirrored as acquired).

    Attributes:
        patient_id: e.g. ``"SYN0001"``.
        counts: ``{view: (rows, cols) uint16}``.
        masks: ``{view: (rows, cols) uint8 {0, 1}}`` lesion labels.
        look_alikes: ``{view: [(label, [[x, y], ...]), ...]}`` unlabelled hot spots as polygons.
        thorax_box: ``[r0, 0, r0 + 256, cols]``: the 256-row window starting just above the shoulders.
        total_counts: target total counts of the anterior view (before noise).
        num_lesions: number of lesions drawn.
        skeleton: ``{view: (rows, cols) uint8}`` bone label per pixel
            (:data:`~msanet_monai.synthetic.body.BONE_LABELS`; 3-D simulator only, else ``None``).
    """

    patient_id: str
    counts: dict
    masks: dict
    look_alikes: dict
    thorax_box: list
    total_counts: float
    num_lesions: int
    skeleton: dict | None = None


def _circle(center, radius: float, cols: int, mirror: bool) -> list[list[float]]:
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    x = center[1] + (radius + 1.0) * np.cos(t)
    y = center[0] + (radius + 1.0) * np.sin(t)
    if mirror:
        x = cols - 1 - x
    return [[round(float(u), 2), round(float(v), 2)] for u, v in zip(x, y)]


def simulate_patient(seed: int, index: int, shape: tuple[int, int] = WHOLE_BODY_SHAPE, simulator: str = "3d",
                     pixel_spacing: tuple[float, float] = PIXEL_SPACING_MM) -> SyntheticScan:
    """Simulate patient ``index`` of the data set drawn with ``seed`` (independent of the set's size).

    Args:
        shape: camera matrix ``(rows, cols)``; ``pixel_spacing`` its pixel in mm (3-D simulator; the
            planar one draws at 2.26 mm).
        simulator: ``"3d"`` or ``"planar"`` (:data:`SIMULATORS`).
    """
    if simulator == "3d":
        return _simulate_3d(seed, index, shape, pixel_spacing)
    if simulator != "planar":
        raise ValueError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")
    rng = np.random.default_rng([seed, index])
    anatomy = sample_anatomy(rng, shape)
    canvas = Canvas(shape)
    sites = draw_anatomy(anatomy, rng, canvas)
    spots: list[LookAlike] = add_look_alikes(rng, anatomy, canvas)
    lesions = sample_lesions(rng, sites)
    masks = draw_lesions(lesions, canvas)

    # count level varies between patients by ~4x (dose, weight, time since injection, scan speed)
    total = float(np.exp(rng.uniform(np.log(1.5e6), np.log(6.0e6))))
    totals = (total, total * rng.uniform(0.8, 1.15))
    s0, s1 = anatomy.scan_rows
    background = rng.uniform(0.03, 0.2)  # scatter and room background inside the scanned length
    counts, out_masks, out_spots = {}, {}, {}
    for v, view in enumerate(VIEWS):
        expected = ndimage.gaussian_filter(canvas.views[v], PSF_SIGMA_PX)
        expected *= totals[v] / max(float(expected.sum()), 1e-6)
        expected[s0:s1] += background
        expected[:s0] = 0.0
        expected[s1:] = 0.0
        noisy = np.minimum(rng.poisson(expected), np.iinfo(np.uint16).max).astype(np.uint16)
        mask = masks[v]
        mirror = view == "posterior"  # the posterior head sees the patient from behind
        counts[view] = np.ascontiguousarray(noisy[:, ::-1] if mirror else noisy)
        out_masks[view] = np.ascontiguousarray(mask[:, ::-1] if mirror else mask)
        out_spots[view] = [(s.label, _circle(s.center, s.radius, shape[1], mirror)) for s in spots]

    r0 = int(np.clip(round(anatomy.shoulder_row - 8.0), 0, shape[0] - ROI_ROWS))
    return SyntheticScan(
        patient_id=f"SYN{index:04d}",
        counts=counts,
        masks=out_masks,
        look_alikes=out_spots,
        thorax_box=[r0, 0, r0 + ROI_ROWS, shape[1]],
        total_counts=total,
        num_lesions=len(lesions),
    )


def _labelled_footprint(patch: np.ndarray, background: np.ndarray, scale: float) -> np.ndarray | None:
    """Where a lesion's blurred counts are at least 40 % of their peak, if a reader would see it there."""
    if patch.max() <= 0:
        return None
    footprint = patch >= 0.4 * patch.max()
    signal, under = scale * float(patch[footprint].sum()), scale * float(background[footprint].sum())
    if signal < LESION_VISIBILITY * np.sqrt(max(under, 1.0)) or signal < LESION_CONTRAST * under:
        return None
    return footprint


def _simulate_3d(seed: int, index: int, shape: tuple[int, int], spacing: tuple[float, float]) -> SyntheticScan:
    rng = np.random.default_rng([seed, index])
    rows, cols = shape
    spacing = (float(spacing[0]), float(spacing[1]))
    factor = max(1, int(round(IN_PLANE_VOXEL_MM / spacing[0])))
    grid = (int(np.ceil(rows / factor)), int(np.ceil(cols / factor)))
    voxel = (DEPTH_VOXEL_MM, spacing[0] * factor, spacing[1] * factor)
    volume = BodyVolume((int(BODY_DEPTH_MM / DEPTH_VOXEL_MM), *grid), voxel)
    body = sample_body(rng, (rows * spacing[0], cols * spacing[1]))
    landmarks = draw_body(body, volume)
    metastases = sample_metastases(rng, volume)
    look_alikes = sample_look_alikes(rng, body, volume, landmarks)

    front = np.nonzero((volume.soft > 0.5).any(axis=(1, 2)))[0]
    geometry = ViewGeometry(anterior_z=float(front[0] * voxel[0] if len(front) else 0.0) - 20.0,
                            posterior_z=landmarks["table_z"] + 25.0)  # table and its gap under the patient
    # slow variation of soft-tissue uptake (fat, muscle, perfusion), around 1
    texture = ndimage.gaussian_filter(rng.normal(size=grid), 8.0)
    texture = (1.0 + 0.12 * texture / max(float(texture.std()), 1e-6)).clip(0.6, 1.4).astype(np.float32)
    views, trans = project_volume(volume, geometry, body.soft_tissue, texture)

    def full(image: np.ndarray, order: int) -> np.ndarray:
        up = ndimage.zoom(image, factor, order=order, mode="nearest", grid_mode=True) if factor > 1 else image
        return up[:rows, :cols]

    expected = np.stack([full(views[v], 1) for v in (0, 1)]).clip(0.0, None)
    parts = render_blobs([b for f in metastases + look_alikes for b in f.blobs], shape, spacing, volume, trans, geometry)
    per_finding, k = [], 0
    for finding in metastases + look_alikes:
        per_finding.append(parts[k:k + len(finding.blobs)])
        k += len(finding.blobs)
    for finding_parts in per_finding:
        for blob_parts in finding_parts:
            for v, part in enumerate(blob_parts):
                if part is not None:
                    expected[v][part[0], part[1]] += part[2]

    # count level: the anterior total of a 10-15 min whole-body study; both heads share the sensitivity
    total = float(np.exp(rng.uniform(np.log(1.2e6), np.log(4.5e6))))
    scale = total / max(float(expected[0].sum()), 1e-6)
    masks = np.zeros((2, rows, cols), dtype=np.uint8)
    for finding, finding_parts in zip(metastases, per_finding):
        for v in (0, 1):
            lesion = np.zeros((rows, cols), dtype=np.float32)
            for part in (p[v] for p in finding_parts):
                if part is not None:
                    lesion[part[0], part[1]] += part[2]
            footprint = _labelled_footprint(lesion, expected[v] - lesion, scale)
            if footprint is not None:
                masks[v] |= footprint
    skeleton = skeleton_map(volume, trans)
    # the scanned length: from a little above the vertex to a little below the soles
    top_px = int(max(0.0, (body.top - rng.uniform(18.0, 100.0)) / spacing[0]))
    bottom_px = int(min(rows, (body.top + body.height + rng.uniform(10.0, 135.0)) / spacing[0]))
    background = rng.uniform(0.01, 0.08)  # room background inside the scanned length
    counts, out_masks, out_spots, out_skeleton = {}, {}, {}, {}
    shapes = [(f.label, f.blobs[0].center[1] / spacing[0], f.blobs[0].center[0] / spacing[1],
               max(f.blobs[0].radii[:2]) / spacing[0] + 1.5) for f in look_alikes]
    if "paget" in landmarks:
        (x, y, _), radius = landmarks["paget"]
        shapes.append(("paget", y / spacing[0], x / spacing[1], radius / spacing[0]))
    (x, y, _), radius = landmarks["bladder"]
    shapes.append(("bladder", y / spacing[0], x / spacing[1], radius / spacing[0] + 2.0))
    for v, view in enumerate(VIEWS):
        mean = expected[v] * scale
        mean[top_px:bottom_px] += background
        mean[:top_px] = 0.0
        mean[bottom_px:] = 0.0
        noisy = np.minimum(rng.poisson(mean), np.iinfo(np.uint16).max).astype(np.uint16)
        mask = ndimage.binary_fill_holes(masks[v]).astype(np.uint8)  # a cluster outlined as one region
        bones = full(skeleton[v], 0)
        mirror = view == "posterior"  # the posterior head sees the patient from behind
        counts[view] = np.ascontiguousarray(noisy[:, ::-1] if mirror else noisy)
        out_masks[view] = np.ascontiguousarray(mask[:, ::-1] if mirror else mask)
        out_skeleton[view] = np.ascontiguousarray(bones[:, ::-1] if mirror else bones)
        out_spots[view] = [(label, _circle((r, c), radius, cols, mirror)) for label, r, c, radius in shapes]
    r0 = int(np.clip(round(landmarks["shoulder_y"] / spacing[0] - 8.0), 0, max(rows - ROI_ROWS, 0)))
    return SyntheticScan(
        patient_id=f"SYN{index:04d}",
        counts=counts,
        masks=out_masks,
        look_alikes=out_spots,
        thorax_box=[r0, 0, r0 + ROI_ROWS, cols],
        total_counts=total,
        num_lesions=sum(len(f.blobs) for f in metastases),
        skeleton=out_skeleton,
    )


def split_counts(num_patients: int) -> dict[str, int]:
    """Patients with two views / one view, and how many of each go to training, scaled from the paper.

    The paper: 171 patients, 115 with both views + 56 with one = 286 images; training 118 patients
    (82 + 36 = 200 images), test 53 patients (33 + 20 = 86 images).
    """
    dual = int(round(num_patients * 115 / 171))
    train_patients = int(round(num_patients * 118 / 171))
    train_dual = min(dual, int(round(train_patients * 82 / 118)))
    train_single = min(num_patients - dual, train_patients - train_dual)
    return {"dual": dual, "single": num_patients - dual, "train_dual": train_dual, "train_single": train_single}


def _write_patient(out_dir: str, scan: SyntheticScan, views: tuple[str, ...], seed: int) -> list[dict]:
    pid = scan.patient_id
    image = f"images/{pid}.dcm"
    write_whole_body_nm(
        os.path.join(out_dir, image),
        {view: scan.counts[view] for view in views},
        pixel_spacing=PIXEL_SPACING_MM,
        patient_id=pid,
        # the seed goes into the study UID (the writer derives the other UIDs from it): sets drawn with
        # other seeds never share UIDs
        study_instance_uid=deterministic_uid("msanet-monai synthetic", seed, pid, "study"),
    )
    items = []
    for view in views:
        label = f"labels/{pid}_{view}.nii.gz"
        labelme = f"labelme/{pid}_{view}.json"
        write_mask_nifti(os.path.join(out_dir, label), scan.masks[view], PIXEL_SPACING_MM)
        write_labelme(os.path.join(out_dir, labelme), scan.masks[view], f"../{image}",
                      other_shapes=scan.look_alikes[view], flags={view: True})
        item = {"image": image, "view": view, "patient_id": pid, "label": label, "labelme": labelme,
                "thorax_box": list(scan.thorax_box)}
        if scan.skeleton is not None:
            item["skeleton"] = f"labels/{pid}_{view}_skeleton.nii.gz"
            write_label_map_nifti(os.path.join(out_dir, item["skeleton"]), scan.skeleton[view], PIXEL_SPACING_MM)
        items.append(item)
    return items


def _parameters(num_patients: int, seed: int, simulator: str = "3d") -> dict:
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")
    return {"generator_version": GENERATOR_VERSION, "num_patients": int(num_patients), "seed": int(seed),
            "simulator": simulator}


def generate_dataset(out_dir: str | os.PathLike, num_patients: int = 171, seed: int = 42, simulator: str = "3d") -> str:
    """Generate the data set into ``out_dir``; returns the path of its ``dataset.json``.

    Writes ``images/SYNxxxx.dcm`` (dual-head NM, or one frame for single-view patients),
    ``labels/SYNxxxx_<view>.nii.gz``, ``labelme/SYNxxxx_<view>.json``, with the 3-D simulator also the
    bone label map ``labels/SYNxxxx_<view>_skeleton.nii.gz`` (item key ``skeleton``), ``dataset.json``
    (sections ``training`` and ``test``, grouped by patient) and the marker ``.generated.json``. Same
    seed and simulator -> byte-identical files.
    """
    parameters = _parameters(num_patients, seed, simulator)
    if num_patients < 2:
        raise ValueError(f"num_patients must be at least 2 (one training and one test patient), got {num_patients}")
    out_dir = os.fspath(out_dir)
    _prepare_folder(out_dir)
    n = split_counts(num_patients)
    rng = np.random.default_rng([seed, 171_000])  # layout of the set, apart from the patients' own streams
    order = rng.permutation(num_patients) + 1  # patient numbers: first `dual` have both views
    dual, single = order[: n["dual"]], order[n["dual"]:]
    train = set(dual[: n["train_dual"]].tolist()) | set(single[: n["train_single"]].tolist())
    single_view = {int(i): VIEWS[int(rng.integers(2))] for i in single}
    datalist: dict[str, list] = {"training": [], "test": []}
    for index in range(1, num_patients + 1):
        scan = simulate_patient(seed, index, simulator=simulator)
        views = VIEWS if index not in single_view else (single_view[index],)
        section = "training" if index in train else "test"
        datalist[section].extend(_write_patient(out_dir, scan, views, seed))
    document = {
        "name": "msanet-monai synthetic whole-body bone scans",
        "description": "Synthetic 99mTc-MDP whole-body scans (msanet_monai.synthetic); not patient data.",
        **parameters,
        **datalist,
    }
    return _write_datalist(out_dir, document, parameters)


def _prepare_folder(out_dir: str) -> None:
    """Refuse a non-empty folder without the generator's marker; create the sub-folders the writers fill."""
    if os.path.isdir(out_dir) and os.listdir(out_dir) and _read_marker(out_dir) is None:
        raise BoneScanError(out_dir, "folder is not empty and was not written by the synthetic generator: nothing is written into it")
    for sub in ("images", "labels", "labelme"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)


def _write_datalist(out_dir: str, document: dict, parameters: dict) -> str:
    """Write ``dataset.json`` and then the marker ``.generated.json`` (last: a set without it is not ours)."""
    datalist_path = os.path.join(out_dir, "dataset.json")
    with open(datalist_path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)
    with open(os.path.join(out_dir, MARKER), "w", encoding="utf-8") as f:
        json.dump(parameters, f, indent=1)
    return datalist_path


def _read_marker(out_dir: str) -> dict | None:
    try:
        with open(os.path.join(out_dir, MARKER), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _is_current(out_dir: str, parameters: dict) -> bool:
    return _read_marker(out_dir) == parameters and os.path.isfile(os.path.join(out_dir, "dataset.json"))


# every file the generator writes, relative to its folder: a folder holding anything else is not only ours
# (patient ids: SYNxxxx for simulated patients, REALxxxx for the real-background set)
_OWN_FILES = re.compile(
    r"^(dataset\.json|\.generated\.json|images(/[A-Z]+\d+\.dcm)?|labels(/[A-Z]+\d+_(anterior|posterior)\.nii\.gz)?"
    r"|labels/[A-Z]+\d+_(anterior|posterior)_skeleton\.nii\.gz|labelme(/[A-Z]+\d+_(anterior|posterior)\.json)?)$"
)


def _foreign_files(out_dir: str) -> list[str]:
    """Paths under ``out_dir`` that the generator would not have written (relative, sorted)."""
    foreign = []
    for root, dirs, files in os.walk(out_dir):
        for name in dirs + files:
            rel = os.path.relpath(os.path.join(root, name), out_dir).replace(os.sep, "/")
            if not _OWN_FILES.match(rel):
                foreign.append(rel)
    return sorted(foreign)


def _replace_folder(out_dir: str, parameters: dict, build: Callable[[str], object]) -> None:
    """Build a set with ``build(folder)`` in a temporary sibling and rename it into place (the old
    generated set, if any, is moved aside first and removed only once the new one is in place).
    ``parameters``: what ``build`` writes into the marker (a set already current with them is kept)."""
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(out_dir)
    # retired sets of an earlier run that was killed between the two renames below: ours by name and marker
    for name in os.listdir(parent):
        old = os.path.join(parent, name)
        if name.startswith(f".{base}.old-") and _read_marker(old) is not None:
            shutil.rmtree(old, ignore_errors=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = os.path.join(parent, f".{base}.tmp-{tag}")
    retired = os.path.join(parent, f".{base}.old-{tag}")
    try:
        build(staging)
        if _is_current(out_dir, parameters):  # another process (DDP rank) finished first
            return
        if os.path.isdir(out_dir) and os.listdir(out_dir):
            os.rename(out_dir, retired)  # only ever a folder that carries the generator's marker
        try:
            os.rename(staging, out_dir)  # also replaces an empty folder
        except OSError:
            if not _is_current(out_dir, parameters):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def ensure_dataset(
    out_dir: str | os.PathLike, num_patients: int = 171, seed: int = 42, generate: bool = True, force: bool = False,
    simulator: str = "3d",
) -> str:
    """The datalist to train on from ``out_dir``, generating the synthetic set only where that is safe.

    What happens, each logged (logger ``msanet_monai.synthetic``):

    * ``out_dir`` holds a set this generator wrote (marker ``.generated.json``) with these
      parameters: it is used as it is.
    * ``out_dir`` holds a generated set with other parameters: with ``generate`` it is regenerated
      (built in a temporary sibling folder, then renamed into place: a crash leaves the old set or
      the new one, never a half-written one); a set holding files the generator did not write is
      never replaced.
    * ``out_dir`` holds a ``dataset.json`` the generator did not write (your own data): that
      datalist is used and nothing is written.
    * ``out_dir`` is missing or empty: with ``generate`` the set is generated into it, else an error.
    * anything else (a folder with other files and no ``dataset.json``): an error naming it.

    Processes started together (DDP ranks) never see a half-written set; the last to finish finds it in place.

    Args:
        out_dir: the data set folder (config id ``dataset_dir``).
        num_patients: patients of a generated set (``num_patients``).
        seed: seed of a generated set (``dataset_seed``).
        generate: whether generating synthetic data into ``out_dir`` is allowed (``generate_dataset``).
        force: regenerate a generated set even when its parameters match (same safety rules).
        simulator: ``"3d"`` (default) or ``"planar"`` (``synthetic_simulator``; :func:`simulate_patient`).

    Raises:
        BoneScanError: naming ``out_dir`` when it cannot be used and must not be written.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    datalist = os.path.join(out_dir, "dataset.json")
    parameters = _parameters(num_patients, seed, simulator)
    marker = _read_marker(out_dir)
    if marker is not None and _is_current(out_dir, parameters) and not force:
        logger.info("data: the synthetic set in %s (%d patients, seed %d, generated earlier by the %s simulator)",
                    out_dir, num_patients, seed, simulator)
        return datalist
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BoneScanError(out_dir, "dataset_dir is a file, expected a folder")
    if marker is None and os.path.isfile(datalist):
        logger.info("data: %s was not written by the synthetic generator: training on it, nothing is generated", datalist)
        return datalist
    exists = os.path.isdir(out_dir)
    if marker is None and exists and os.listdir(out_dir):
        raise BoneScanError(
            out_dir,
            "dataset_dir holds files but no dataset.json and was not written by the synthetic generator "
            "(no .generated.json): nothing is written into it; name a new folder for generated data, or pass "
            "--datalist with your own dataset.json",
        )
    if marker is not None:
        foreign = _foreign_files(out_dir)
        if foreign:
            raise BoneScanError(
                out_dir,
                f"the synthetic set here was made with other parameters ({marker}), but the folder also holds "
                f"files the generator did not write ({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}): "
                "it is not replaced; move those files or name another dataset_dir",
            )
    if not generate:
        what = (f"holds a synthetic set made with other parameters ({marker})" if marker is not None
                else "does not exist" if not exists else "is empty")
        raise BoneScanError(
            out_dir, f"dataset_dir {what} and generate_dataset is false: pass --generate_dataset true to "
            f"generate {num_patients} synthetic patients (seed {seed}) into it, or --datalist with your own dataset.json",
        )
    action = "regenerating" if marker is not None else "generating"
    logger.info("data: %s the synthetic set (%d patients, seed %d) into %s with the %s simulator", action, num_patients,
                seed, out_dir, simulator)
    _replace_folder(out_dir, parameters,
                    lambda folder: generate_dataset(folder, num_patients=num_patients, seed=seed, simulator=simulator))
    return datalist
