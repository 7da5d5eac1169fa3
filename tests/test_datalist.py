"""Datalist loading (absolute paths, errors naming datalist and item) and the patient-grouped split."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from msanet_monai.datalist import load_datalist, split_by_patient
from msanet_monai.errors import BoneScanError


def test_paths_become_absolute_and_exist(synthetic_dataset):
    items = load_datalist(synthetic_dataset, "training")
    test = load_datalist(synthetic_dataset, "test")
    assert items and test
    for item in items + test:
        for key in ("image", "label", "labelme"):
            assert os.path.isabs(item[key]) and os.path.isfile(item[key])
        assert item["view"] in ("anterior", "posterior")
    with open(synthetic_dataset) as f:
        raw = json.load(f)
    assert not os.path.isabs(raw["training"][0]["image"])  # stored relative to the datalist's folder


def _copy(synthetic_dataset, tmp_path):
    target = tmp_path / "set"
    shutil.copytree(os.path.dirname(synthetic_dataset), target)
    return target / "dataset.json"


def test_missing_file_names_datalist_and_item(synthetic_dataset, tmp_path):
    path = _copy(synthetic_dataset, tmp_path)
    item = json.loads(path.read_text())["training"][1]
    os.remove(tmp_path / "set" / item["label"])
    with pytest.raises(BoneScanError, match=r"training\[1\].*label file not found") as info:
        load_datalist(path)
    assert str(path) in str(info.value)


def test_missing_key_and_section(synthetic_dataset, tmp_path):
    path = _copy(synthetic_dataset, tmp_path)
    document = json.loads(path.read_text())
    del document["test"][0]["patient_id"]
    path.write_text(json.dumps(document))
    with pytest.raises(BoneScanError, match=r"test\[0\].*'patient_id'"):
        load_datalist(path, "test")
    with pytest.raises(BoneScanError, match="no list 'validation'"):
        load_datalist(path, "validation")
    with pytest.raises(BoneScanError, match="not found"):
        load_datalist(tmp_path / "nothing.json")
    path.write_text("{broken")
    with pytest.raises(BoneScanError, match="not a readable datalist"):
        load_datalist(path)


def test_split_keeps_patients_together():
    items = [{"image": f"{p}_{v}", "view": v, "patient_id": f"P{p:03d}"}
             for p in range(40) for v in (("anterior", "posterior") if p % 3 else ("anterior",))]
    train, val = split_by_patient(items, val_fraction=0.2, seed=42)
    train_ids, val_ids = {i["patient_id"] for i in train}, {i["patient_id"] for i in val}
    assert not train_ids & val_ids
    assert len(val_ids) == 8 and len(train_ids) == 32
    assert len(train) + len(val) == len(items)
    assert split_by_patient(items, 0.2, seed=42) == (train, val)
    assert {i["patient_id"] for i in split_by_patient(items, 0.2, seed=7)[1]} != val_ids
    assert split_by_patient(items[:3], 0.2)[1]  # two patients: one still goes to validation
    with pytest.raises(ValueError):
        split_by_patient(items, 1.0)


def _rewrite(synthetic_dataset, tmp_path, change):
    path = _copy(synthetic_dataset, tmp_path)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def test_patient_ids_differing_in_case_or_spaces_are_refused(synthetic_dataset, tmp_path):
    def respell(document):  # another spelling of the first patient's id on the second item
        document["training"][1]["patient_id"] = " " + document["training"][0]["patient_id"].lower()

    path = _rewrite(synthetic_dataset, tmp_path, respell)
    with pytest.raises(BoneScanError, match=r"dataset\.json: patient ids ' syn\d+', 'SYN\d+' differ only in case or spaces"):
        load_datalist(path, "training")


def test_patient_in_training_and_test_is_refused(synthetic_dataset, tmp_path):
    def leak(document):
        document["test"][0]["patient_id"] = document["training"][0]["patient_id"]

    path = _rewrite(synthetic_dataset, tmp_path, leak)
    with pytest.raises(BoneScanError, match=r"dataset\.json: patient 'SYN\d+' is in more than one section \(test, training\)"):
        load_datalist(path, "test")
