"""A real MONAI Label server with this app on 127.0.0.1: info, infer, label, train, infer again.

Tiny weights are trained here with the bundle's own training command; the bundle's own
``run inference`` on the same studies gives the masks the server must reproduce pixel for pixel.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Tuple

import nibabel as nib
import numpy as np
import pytest
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "bundle"
CONFIGS = BUNDLE / "configs"
APP = ROOT / "monailabel_app"
TINY = {
    "generator_channels": [4, 8, 8, 16, 16],
    "critic_channels": [4, 8, 8, 16, 16, 16],
    "roi_size": [128, 128],
    "num_epochs": 2,
    "val_interval": 1,
    "train_batch_size": 4,
    "val_batch_size": 4,
    "num_workers": 0,
}


def _bundle(args: list[str], configs: list[str], cwd: Path) -> None:
    cmd = [sys.executable, "-m", "monai.bundle", "run", *args[:1], "--meta_file", str(CONFIGS / "metadata.json"),
           "--config_file", json.dumps(configs), "--logging_file", str(CONFIGS / "logging.conf"), *args[1:]]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from msanet_monai.io import read_bone_scan
    from msanet_monai.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("ml")
    datalist = generate_dataset(root / "data", num_patients=6, seed=42)
    tiny = root / "tiny.json"
    tiny.write_text(json.dumps(TINY))
    width_configs = [str(CONFIGS / "quick.json"), str(tiny)]
    train_root = root / "train"
    train_root.mkdir()
    _bundle(["training", "--bundle_root", str(train_root), "--datalist", datalist],
            [str(CONFIGS / "train.json"), *width_configs], BUNDLE)
    weights = root / "model" / "msanet.pt"
    weights.parent.mkdir()
    shutil.copyfile(train_root / "models" / "model.pt", weights)

    # studies: a two-view NM study, a NIfTI and a 16-bit PNG of single views
    items = json.loads(Path(datalist).read_text())["test"]
    dual = next(i for i in items if i.get("view") == "posterior")["image"]
    studies = root / "studies"
    studies.mkdir()
    dual_path = Path(shutil.copy(Path(datalist).parent / dual, studies / "study.dcm"))
    single = read_bone_scan(dual_path, view="anterior", mirror_posterior=False)
    counts = np.asarray(single[0])
    nib.save(nib.Nifti1Image(counts, np.diag([2.4, 2.4, 1.0, 1.0])), studies / "scan_nifti.nii.gz")
    Image.fromarray(np.clip(counts, 0, 65535).astype(np.uint16)).save(studies / "scan_png.png")
    # files a clinic's folder may hold beside the studies: another modality, a study cut short in
    # transfer, a text file named .dcm; the server must start without them and say why
    from pydicom.data import get_testdata_file

    shutil.copyfile(get_testdata_file("CT_small.dcm"), studies / "ct_chest.dcm")
    whole = dual_path.read_bytes()
    (studies / "cut_short.dcm").write_bytes(whole[: len(whole) // 3])
    (studies / "notes.dcm").write_text("patient moved during the posterior view\n")

    # the bundle's own inference on the same inputs (the study gives both views)
    ref_in = root / "ref_in"
    ref_in.mkdir()
    for name in ("study.dcm", "scan_nifti.nii.gz", "scan_png.png"):
        shutil.copy(studies / name, ref_in / name)
    ref_out = root / "ref_out"
    _bundle(["inference", "--bundle_root", str(BUNDLE), "--input_dir", str(ref_in), "--output_dir", str(ref_out),
             "--ckpt_path", str(weights), "--write_overlay", "false", "--write_dicom_seg", "false"],
            [str(CONFIGS / "inference.json"), *width_configs], BUNDLE)
    return {"root": root, "studies": studies, "weights": weights, "width_configs": width_configs, "ref": ref_out}


def _start_server(setup, app: Path, studies: Path, weights: Path, log_path: Path) -> Tuple[subprocess.Popen, str]:
    """``monailabel start_server`` with a copy of the app (made at ``app`` if absent), in its own process
    group; returns once ``/info`` answers."""
    port = _free_port()
    # a copy of the app: the server writes logs/ and the trainer train/ into the app folder
    if not app.exists():
        shutil.copytree(APP, app, ignore=shutil.ignore_patterns("logs", "model", "train", "tests", "__pycache__"))
    configs = ",".join(["configs/inference.json", *setup["width_configs"]])
    cmd = [str(Path(sys.executable).parent / "monailabel"), "start_server", "--app", str(app),
           "--studies", str(studies), "--host", "127.0.0.1", "--port", str(port),
           "--conf", "bundle", str(BUNDLE), "--conf", "configs", configs, "--conf", "model_path", str(weights)]
    env = dict(os.environ, MONAI_LABEL_DATASTORE_AUTO_RELOAD="false", MONAI_LABEL_SESSIONS="false")
    with open(log_path, "a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        assert proc.poll() is None, log_path.read_text()[-4000:]
        try:
            if requests.get(f"{url}/info/", timeout=5).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("server did not answer in 180 s:\n" + log_path.read_text()[-4000:])


def _stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


@pytest.fixture(scope="module")
def server(setup):
    proc, url = _start_server(setup, setup["root"] / "app", setup["studies"], setup["weights"],
                              setup["root"] / "server.log")
    yield url
    _stop_server(proc)


def _infer(url: str, image: str, tmp: Path, **files) -> np.ndarray:
    start = time.time()
    r = requests.post(f"{url}/infer/msanet", params={"image": image, "output": "image"}, files=files or None,
                      timeout=300)
    assert r.status_code == 200, r.text
    out = tmp / f"{image or 'upload'}_pred.nii.gz"
    out.write_bytes(r.content)
    print(f"/infer {image or 'upload'}: {time.time() - start:.2f} s")
    return np.asarray(nib.load(out).dataobj)


def _ref(setup, source: str, view: str) -> np.ndarray:
    """The mask the bundle's own ``run inference`` wrote for ``view`` of the study file ``source``."""
    from msanet_monai.inference.writer import output_base

    return np.asarray(nib.load(setup["ref"] / f"{output_base(source, view)}_mask.nii.gz").dataobj)


def test_info_lists_model(server):
    info = requests.get(f"{server}/info/", timeout=30).json()
    assert "msanet" in info["models"]
    assert info["models"]["msanet"]["labels"] == {"lesion": 1}
    assert info["models"]["msanet"]["dimension"] == 2


def test_datastore_lists_each_view(server):
    objects = requests.get(f"{server}/datastore/", params={"output": "all"}, timeout=30).json()["objects"]
    assert set(objects) == {"study_anterior", "study_posterior", "scan_nifti", "scan_png"}


def test_bad_study_files_are_left_out_and_named(server):
    skipped = requests.get(f"{server}/info/", timeout=30).json()["skipped_studies"]
    assert set(skipped) == {"ct_chest.dcm", "cut_short.dcm", "notes.dcm"}
    assert "CT Image Storage is not a whole-body NM view" in skipped["ct_chest.dcm"]
    assert "truncated or corrupt" in skipped["cut_short.dcm"]
    assert "not a DICOM file" in skipped["notes.dcm"]
    assert all(f"/{name}: " in reason for name, reason in skipped.items())  # each reason names its file


def test_infer_refuses_a_scan_that_is_not_a_whole_body_view(server, tmp_path):
    square = tmp_path / "square.png"
    Image.fromarray(np.full((300, 300), 50, np.uint16)).save(square)
    with open(square, "rb") as f:
        r = requests.post(f"{server}/infer/msanet", params={"output": "image"}, files={"file": ("square.png", f)},
                          timeout=300)
    assert r.status_code == 422, r.text
    assert "300 rows x 300 columns" in r.json()["detail"] and "not that of a whole-body view" in r.json()["detail"]


@pytest.mark.parametrize("image,source,view", [("study_anterior", "study.dcm", "anterior"),
                                               ("study_posterior", "study.dcm", "posterior"),
                                               ("scan_nifti", "scan_nifti.nii.gz", "anterior")])
def test_infer_equals_bundle_inference(server, setup, tmp_path, image, source, view):
    mask = _infer(server, image, tmp_path)
    ref = _ref(setup, source, view)
    assert mask.shape == ref.shape == (1024, 256)
    assert ref.any(), "the tiny model found nothing: the comparison would be trivial"
    assert not np.array_equal(ref, ref[:, ::-1]), "a left-right symmetric mask cannot show a mirrored posterior"
    assert np.array_equal(mask, ref), f"{int((mask != ref).sum())} pixels differ"


def test_infer_uploaded_png(server, setup, tmp_path):
    with open(setup["studies"] / "scan_png.png", "rb") as f:
        mask = _infer(server, "", tmp_path, file=("scan.png", f, "image/png"))
    ref = _ref(setup, "scan_png.png", "anterior")
    assert mask.shape == ref.shape == (1024, 256)
    assert np.array_equal(mask, ref), f"{int((mask != ref).sum())} pixels differ"


def test_label_train_then_infer(server, setup, tmp_path):
    before = setup["weights"].read_bytes()
    label = _ref(setup, "study.dcm", "posterior")
    label_file = tmp_path / "label.nii.gz"
    nib.save(nib.Nifti1Image(label.astype(np.uint8), np.diag([2.4, 2.4, 1.0, 1.0])), label_file)
    with open(label_file, "rb") as f:
        r = requests.put(f"{server}/datastore/label", params={"image": "study_posterior", "tag": "final"},
                         files={"label": ("label.nii.gz", f)}, timeout=60)
    assert r.status_code == 200, r.text
    # a label of the wrong shape (a viewer that saved a downsampled mask): left out of the fine-tune, named
    wrong = tmp_path / "wrong.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((512, 128), np.uint8), np.eye(4)), wrong)
    with open(wrong, "rb") as f:
        r = requests.put(f"{server}/datastore/label", params={"image": "scan_png", "tag": "final"},
                         files={"label": ("wrong.nii.gz", f)}, timeout=60)
    assert r.status_code == 200, r.text
    r = requests.post(f"{server}/train/msanet", params={"run_sync": True}, json={"max_epochs": 1}, timeout=600)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == 1 and list(r.json()["skipped_labels"]) == ["scan_png"]
    assert "(512, 128) differs from the image's (1024, 256)" in r.json()["skipped_labels"]["scan_png"]
    assert setup["weights"].read_bytes() != before
    mask = _infer(server, "study_posterior", tmp_path)
    assert mask.shape == (1024, 256)


def test_labelme_round_trip(server, setup, tmp_path):
    """Predictions -> LabelMe JSON (opened by the labelme package) -> datalist -> the bundle's loaders."""
    import labelme
    from monai.transforms import Compose

    from monailabel_app.labelme_export import export_predictions
    from msanet_monai.datalist import load_datalist
    from msanet_monai.transforms import LoadBoneScand, LoadLesionMaskd

    datalist = export_predictions(server, ["study_posterior", "scan_nifti"], tmp_path / "labelme")
    ref = {"study_posterior": _ref(setup, "study.dcm", "posterior"),
           "scan_nifti": _ref(setup, "scan_nifti.nii.gz", "anterior")}
    for image_id, mask in ref.items():
        document = labelme.LabelFile(str(tmp_path / "labelme" / f"{image_id}.json"))
        from scipy import ndimage

        assert len(document.shapes) == ndimage.label(mask, structure=np.ones((3, 3)))[1] > 0
        assert {s["label"] for s in document.shapes} == {"metastasis"}
    # required_spacing None as in configs/train.json: scan_nifti is 2.4 mm and the round trip is compared
    # in the file's own pixels (training then resamples with Spacingd)
    load = Compose([LoadBoneScand(keys="image", required_spacing=None), LoadLesionMaskd(keys="label")])
    items = load_datalist(datalist, "training", require_label=True)
    for item in items:
        data = load(item)
        label = np.asarray(data["label"][0])
        if data["image"].meta["mirrored"]:
            label = label[:, ::-1]  # the loader mirrors posterior views; compare in the file's orientation
        expected = ref[item["patient_id"]]
        assert np.array_equal(label > 0, expected > 0), f"{item['patient_id']}: LabelMe round trip changed the mask"


def test_server_killed_during_a_fine_tune_restarts_with_its_weights(setup, tmp_path):
    """kill -9 of the server (and its training subprocess) mid fine-tune: the served weights are the old
    ones, whole; a new server on the same folders serves them and fine-tunes again."""
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copyfile(setup["studies"] / "study.dcm", studies / "study.dcm")
    weights = tmp_path / "msanet.pt"
    shutil.copyfile(setup["weights"], weights)
    before = weights.read_bytes()
    app, log = tmp_path / "app", tmp_path / "server.log"
    proc, url = _start_server(setup, app, studies, weights, log)
    try:
        label = tmp_path / "label.nii.gz"
        nib.save(nib.Nifti1Image(_ref(setup, "study.dcm", "anterior"), np.diag([2.4, 2.4, 1.0, 1.0])), label)
        with open(label, "rb") as f:
            r = requests.put(f"{url}/datastore/label", params={"image": "study_anterior", "tag": "final"},
                             files={"label": ("label.nii.gz", f)}, timeout=60)
        assert r.status_code == 200, r.text
        r = requests.post(f"{url}/train/msanet", json={"max_epochs": 200}, timeout=60)  # asynchronous
        assert r.status_code == 200, r.text
        deadline = time.time() + 300
        while not list(app.glob("train/*/models/checkpoint_epoch=*.pt")):
            assert time.time() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert weights.read_bytes() == before

    proc, url = _start_server(setup, app, studies, weights, log)
    try:
        mask = _infer(url, "study_anterior", tmp_path)
        assert np.array_equal(mask, _ref(setup, "study.dcm", "anterior"))
        r = requests.post(f"{url}/train/msanet", params={"run_sync": True}, json={"max_epochs": 1}, timeout=600)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == 1 and weights.read_bytes() != before
    finally:
        _stop_server(proc)
