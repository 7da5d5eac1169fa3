"""Synthetic whole-body bone-scan data set shaped like the paper's (286 views of 171 patients).

For each patient: anatomy -> lesions and look-alikes -> camera blur -> scaling to the patient's count
level -> Poisson noise, for the anterior and posterior heads. Written as one dual-head NM DICOM per
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
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from msanet_monai.errors import BoneScanError
from msanet_monai.io.bone_scan import VIEWS
from msanet_monai.io.labelme import write_labelme
from msanet_monai.io.nm_dicom import deterministic_uid, write_whole_body_nm
from msanet_monai.io.writers import write_mask_nifti
from msanet_monai.synthetic.lesions import LookAlike, add_look_alikes, draw_lesions, sample_lesions
from msanet_monai.synthetic.phantom import PIXEL_SPACING_MM, WHOLE_BODY_SHAPE, Canvas, draw_anatomy, sample_anatomy

__all__ = ["SyntheticScan", "GENERATOR_VERSION", "simulate_patient", "split_counts", "generate_dataset",
           "ensure_dataset"]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
MARKER = ".generated.json"
# camera point spread: system resolution of a LEHR collimator near the body, ~7 mm FWHM
PSF_SIGMA_PX = 1.3
ROI_ROWS = 256


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
    """

    patient_id: str
    counts: dict
    masks: dict
    look_alikes: dict
    thorax_box: list
    total_counts: float
    num_lesions: int


def _circle(center, radius: float, cols: int, mirror: bool) -> list[list[float]]:
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    x = center[1] + (radius + 1.0) * np.cos(t)
    y = center[0] + (radius + 1.0) * np.sin(t)
    if mirror:
        x = cols - 1 - x
    return [[round(float(u), 2), round(float(v), 2)] for u, v in zip(x, y)]


def simulate_patient(seed: int, index: int, shape: tuple[int, int] = WHOLE_BODY_SHAPE) -> SyntheticScan:
    """Simulate patient ``index`` of the data set drawn with ``seed`` (independent of the set's size)."""
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
        items.append({"image": image, "view": view, "patient_id": pid, "label": label, "labelme": labelme,
                      "thorax_box": list(scan.thorax_box)})
    return items


def _parameters(num_patients: int, seed: int) -> dict:
    return {"generator_version": GENERATOR_VERSION, "num_patients": int(num_patients), "seed": int(seed)}


def generate_dataset(out_dir: str | os.PathLike, num_patients: int = 171, seed: int = 42) -> str:
    """Generate the data set into ``out_dir``; returns the path of its ``dataset.json``.

    Writes ``images/SYNxxxx.dcm`` (dual-head NM, or one frame for single-view patients),
    ``labels/SYNxxxx_<view>.nii.gz``, ``labelme/SYNxxxx_<view>.json``, ``dataset.json`` (sections
    ``training`` and ``test``, grouped by patient) and the marker ``.generated.json``. Same seed ->
    byte-identical files.
    """
    if num_patients < 2:
        raise ValueError(f"num_patients must be at least 2 (one training and one test patient), got {num_patients}")
    out_dir = os.fspath(out_dir)
    if os.path.isdir(out_dir) and os.listdir(out_dir) and _read_marker(out_dir) is None:
        raise BoneScanError(out_dir, "folder is not empty and was not written by the synthetic generator: nothing is written into it")
    for sub in ("images", "labels", "labelme"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    n = split_counts(num_patients)
    rng = np.random.default_rng([seed, 171_000])  # layout of the set, apart from the patients' own streams
    order = rng.permutation(num_patients) + 1  # patient numbers: first `dual` have both views
    dual, single = order[: n["dual"]], order[n["dual"]:]
    train = set(dual[: n["train_dual"]].tolist()) | set(single[: n["train_single"]].tolist())
    single_view = {int(i): VIEWS[int(rng.integers(2))] for i in single}
    datalist: dict[str, list] = {"training": [], "test": []}
    for index in range(1, num_patients + 1):
        scan = simulate_patient(seed, index)
        views = VIEWS if index not in single_view else (single_view[index],)
        section = "training" if index in train else "test"
        datalist[section].extend(_write_patient(out_dir, scan, views, seed))
    datalist_path = os.path.join(out_dir, "dataset.json")
    document = {
        "name": "msanet-monai synthetic whole-body bone scans",
        "description": "Synthetic 99mTc-MDP whole-body scans (msanet_monai.synthetic); not patient data.",
        **_parameters(num_patients, seed),
        **datalist,
    }
    with open(datalist_path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)
    with open(os.path.join(out_dir, MARKER), "w", encoding="utf-8") as f:
        json.dump(_parameters(num_patients, seed), f, indent=1)
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
_OWN_FILES = re.compile(
    r"^(dataset\.json|\.generated\.json|images(/SYN\d+\.dcm)?|labels(/SYN\d+_(anterior|posterior)\.nii\.gz)?"
    r"|labelme(/SYN\d+_(anterior|posterior)\.json)?)$"
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


def _replace_folder(out_dir: str, num_patients: int, seed: int) -> None:
    """Generate into a temporary sibling and rename it into place (the old generated set, if any, is
    moved aside first and removed only once the new one is in place)."""
    parameters = _parameters(num_patients, seed)
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
        generate_dataset(staging, num_patients=num_patients, seed=seed)
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
    out_dir: str | os.PathLike, num_patients: int = 171, seed: int = 42, generate: bool = True, force: bool = False
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

    Raises:
        BoneScanError: naming ``out_dir`` when it cannot be used and must not be written.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    datalist = os.path.join(out_dir, "dataset.json")
    parameters = _parameters(num_patients, seed)
    marker = _read_marker(out_dir)
    if marker is not None and _is_current(out_dir, parameters) and not force:
        logger.info("data: the synthetic set in %s (%d patients, seed %d, generated earlier)", out_dir, num_patients, seed)
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
    logger.info("data: %s the synthetic set (%d patients, seed %d) into %s", action, num_patients, seed, out_dir)
    _replace_folder(out_dir, num_patients, seed)
    return datalist
