"""MONAI-style datalists of whole-body bone scans, and a validation split grouped by patient.

Both views of a patient look alike, so they must never straddle training and validation (the paper
keeps them on the same side too).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from msanet_monai.errors import BoneScanError

__all__ = ["REQUIRED_KEYS", "PATH_KEYS", "load_datalist", "check_patient_ids", "split_by_patient"]

REQUIRED_KEYS = ("image", "view", "patient_id")
PATH_KEYS = ("image", "label", "labelme", "skeleton")  # keys holding paths relative to the datalist's folder


def load_datalist(path: str | os.PathLike, section: str = "training", require_label: bool = False) -> list[dict]:
    """Read one section of a ``dataset.json``; paths become absolute and every file is checked.

    Args:
        path: the datalist JSON (format in CONTRIBUTING.md).
        section: ``"training"`` or ``"test"`` (any list in the file).
        require_label: also require a ``label`` key in every item.

    Returns:
        the items, with ``image``/``label``/``labelme`` as absolute paths.

    Raises:
        BoneScanError: naming the datalist and the item: unreadable file, missing section, missing key,
            missing file; patient ids that differ only in case or spaces, or a patient in two sections
            (:func:`check_patient_ids`).
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise BoneScanError(path, "datalist file not found")
    # read here rather than with monai.data.load_decathlon_datalist: that one resolves only image/label
    # and cannot say which item is broken
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BoneScanError(path, f"not a readable datalist JSON file ({e})") from e
    if not isinstance(document, dict) or not isinstance(document.get(section), list):
        raise BoneScanError(path, f"datalist has no list {section!r}")
    items = [dict(item) if isinstance(item, dict) else item for item in document[section]]
    required = REQUIRED_KEYS + (("label",) if require_label else ())
    for number, item in enumerate(items):
        where = f"{section}[{number}] ({item.get('image', '?')})" if isinstance(item, dict) else f"{section}[{number}]"
        if not isinstance(item, dict):
            raise BoneScanError(path, f"item {where} is not a JSON object")
        missing = [key for key in required if key not in item]
        if missing:
            raise BoneScanError(path, f"item {where} has no {', '.join(repr(k) for k in missing)}")
        for key in PATH_KEYS:
            if key in item:
                item[key] = os.path.normpath(os.path.join(os.path.dirname(path), item[key]))
                if not os.path.isfile(item[key]):
                    raise BoneScanError(path, f"item {where}: {key} file not found: {item[key]}")
    check_patient_ids(document, path)
    return items


def _normalized(patient_id: object) -> str:
    return " ".join(str(patient_id).split()).casefold()


def check_patient_ids(document: dict, path: str | os.PathLike) -> None:
    """Refuse patient ids that would break grouping by patient, across every section of a datalist.

    A split by patient (training/validation here, training/test in the file) is only as good as the
    ids: two spellings of one patient (``"P001"`` and ``"p001 "``) would be split apart, and a patient
    listed in both ``training`` and ``test`` makes the test figures optimistic.

    Raises:
        BoneScanError: naming the datalist and the ids: ids that differ only in case or spaces, or a
            patient in more than one section.
    """
    spellings: dict[str, set[str]] = {}
    sections: dict[str, set[str]] = {}
    for section, items in document.items():
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, dict) and "patient_id" in item:
                key = _normalized(item["patient_id"])
                spellings.setdefault(key, set()).add(str(item["patient_id"]))
                sections.setdefault(key, set()).add(section)
    for key in sorted(spellings):
        if len(spellings[key]) > 1:
            names = ", ".join(repr(n) for n in sorted(spellings[key]))
            raise BoneScanError(path, f"patient ids {names} differ only in case or spaces: write each patient's id "
                                "one way, or the split by patient treats them as different patients")
    for key in sorted(sections):
        if len(sections[key]) > 1:
            (name,) = spellings[key]
            raise BoneScanError(path, f"patient {name!r} is in more than one section ({', '.join(sorted(sections[key]))}): "
                                "a patient's views must all be on one side of the split")


def split_by_patient(items: Sequence[dict], val_fraction: float = 0.2, seed: int = 42) -> tuple[list[dict], list[dict]]:
    """Split items into training and validation so that no patient is on both sides.

    Args:
        items: datalist items with a ``patient_id``.
        val_fraction: fraction of *patients* put in validation (at least one when there are two or more).
        seed: random seed of the patient draw.

    Returns:
        ``(train_items, val_items)``, each in the order of ``items``.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    patients = sorted({str(item["patient_id"]) for item in items})
    count = int(round(len(patients) * val_fraction))
    if val_fraction > 0 and len(patients) > 1:
        count = min(max(count, 1), len(patients) - 1)
    chosen = np.random.default_rng(seed).permutation(len(patients))[:count]
    val_patients = {patients[i] for i in chosen}
    train = [item for item in items if str(item["patient_id"]) not in val_patients]
    val = [item for item in items if str(item["patient_id"]) in val_patients]
    return train, val
