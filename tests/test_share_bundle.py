"""The shareable bundle: built by ``python -m msanet_monai.package``, run away from the repository.

The bundle is written into a temporary folder, copied elsewhere, and every command there runs in a
subprocess with ``PYTHONPATH`` unset and the bundle folder as working directory, so ``msanet_monai``
can only come from the bundle's ``scripts/`` (the test environment does not install the package).
The checks are those of the MONAI Model Zoo's CI as far as they run offline on CPU: required and
preferred files, ``large_files.yml`` hash, version in the changelog, metadata schema,
``verify_net_in_out`` and ``ckpt_export`` on ``configs/inference.json`` alone, the inference
properties of the apps in ``supported_apps``, and an inference run (the Zoo's unit-test style).
The repository's own package is built as a wheel and used from outside the checkout.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from msanet_monai.errors import CheckpointError
from msanet_monai.networks.nets import MSANet
from msanet_monai.package import BUNDLE_NAME, RELEASE_DIR, package_bundle, read_release

REPO = Path(__file__).resolve().parents[1]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env or _clean_env(), capture_output=True,
                          text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{log[-4000:]}"
    return log


@pytest.fixture(scope="module")
def shared_bundle(tmp_path_factory) -> Path:
    """The bundle as the package command writes it, then copied to a folder of its own."""
    build = tmp_path_factory.mktemp("build")
    out = _run(["-m", "msanet_monai.package", "--out", str(build)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    written = Path(out.strip().splitlines()[-1])
    assert written == build / BUNDLE_NAME and (written / "configs" / "metadata.json").is_file()
    away = tmp_path_factory.mktemp("elsewhere") / BUNDLE_NAME
    shutil.copytree(written, away)
    assert REPO not in away.parents
    return away


def test_layout_is_what_the_zoo_requires(shared_bundle):
    b = shared_bundle
    # verify_bundle.py: necessary files, then preferred ones (min mode fails without models/model.pt)
    for name in ("configs/metadata.json", "LICENSE", "models/model.pt", "configs/inference.json",
                 "docs/README.md", "docs/data_license.txt", "scripts/__init__.py", "scripts/msanet_monai/__init__.py"):
        assert (b / name).is_file(), name
    # the release weights only: no training checkpoint, no TorchScript / ONNX export
    assert sorted(p.name for p in (b / "models").iterdir()) == ["model.pt"]
    assert not [p for p in b.rglob("*") if p.suffix in {".ts", ".onnx", ".pt"} and p.name != "model.pt"]
    assert (b / "models" / "model.pt").read_bytes() == (RELEASE_DIR / "model.pt").read_bytes()
    assert "synthetic" in (b / "docs" / "data_license.txt").read_text().lower()
    meta = json.loads((b / "configs" / "metadata.json").read_text())
    assert meta["version"] in meta["changelog"]
    assert meta["supported_apps"], "the Zoo skips the properties check without supported_apps"
    # get_bundle_requirements.py pip-installs every required package: none may be this unpublished one
    assert "msanet-monai" not in meta["required_packages_version"]
    # the code is the repository's package at packaging time, file for file
    source = REPO / "msanet_monai"
    copied = b / "scripts" / "msanet_monai"
    py_files = sorted(p.relative_to(source) for p in source.rglob("*.py"))
    assert py_files == sorted(p.relative_to(copied) for p in copied.rglob("*.py"))
    assert all((source / f).read_bytes() == (copied / f).read_bytes() for f in py_files)
    # configs: code from scripts/, data inside the bundle, inference widths those of the weights
    inference = json.loads((b / "configs" / "inference.json").read_text())
    assert inference["imports"][0] == "$import scripts"
    assert inference["generator_channels"] == read_release()["generator_channels"]
    from monai.bundle import ConfigParser

    # the model-comparison overlays travel with the bundle, merged after train.json + quick.json
    repo_models = sorted(p.name for p in (REPO / "bundle" / "configs" / "models").glob("*.json"))
    assert sorted(p.name for p in (b / "configs" / "models").glob("*.json")) == repo_models
    for files in (["train.json"], ["train.json", "quick.json"], ["inference.json"], ["inference.json", "quick.json"],
                  ["train.json", "quick.json", "models/unet.json"], ["train.json", "quick.json", "models/segan.json"]):
        parser = ConfigParser()
        parser.read_config([str(b / "configs" / f) for f in files])
        parser["bundle_root"] = str(b)
        for key in ("dataset_dir", "synthetic_dataset_dir"):
            if key in parser:
                path = os.path.abspath(parser.get_parsed_content(key))
                assert path.startswith(str(b / "data") + os.sep), (files, key, path)


def test_large_files_hash_matches_and_catches_a_changed_file(shared_bundle, tmp_path):
    from monai.apps.utils import HashCheckError, download_url
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(shared_bundle / "large_files.yml"))
    (entry,) = parser.get()["large_files"]
    weights = shared_bundle / entry["path"]
    assert entry["hash_type"] == "sha256"
    assert entry["hash_val"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    # the Zoo CI calls download_url per entry: an existing file that matches is kept, no download
    download_url(url=entry["url"], filepath=str(weights), hash_val=entry["hash_val"], hash_type=entry["hash_type"])
    changed = tmp_path / "model.pt"
    data = weights.read_bytes()
    changed.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(HashCheckError):
        download_url(url=entry["url"], filepath=str(changed), hash_val=entry["hash_val"], hash_type="sha256")


def test_code_is_imported_from_the_bundle(shared_bundle):
    out = _run(["-c", "import sys, scripts, msanet_monai; print(msanet_monai.__file__); print(sys.path)"],
               cwd=shared_bundle)
    module_file, path = out.strip().splitlines()[-2:]
    assert Path(module_file) == shared_bundle / "scripts" / "msanet_monai" / "__init__.py"
    # the checkout itself is not an import root (a venv inside the checkout, as in CI, may be)
    assert str(REPO) not in [str(Path(p).resolve()) for p in ast.literal_eval(path) if p]


def test_monai_bundle_commands_on_the_shipped_weights(shared_bundle):
    b = shared_bundle
    log = _run(["-m", "monai.bundle", "verify_metadata", "--meta_file", "configs/metadata.json",
                "--filepath", "configs/schema/meta_schema_20240725.json"], cwd=b)
    assert "metadata is verified with no error" in log
    # the Zoo's full mode builds the network from inference.json alone
    log = _run(["-m", "monai.bundle", "verify_net_in_out", "network_def", "--meta_file", "configs/metadata.json",
                "--config_file", "configs/inference.json", "--bundle_root", "."], cwd=b)
    assert "data shape of network is verified with no error" in log
    _run(["-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", "models/verify_model.ts",
          "--ckpt_file", "models/model.pt", "--meta_file", "configs/metadata.json",
          "--config_file", "configs/inference.json", "--bundle_root", "."], cwd=b)
    scripted = torch.jit.load(str(b / "models" / "verify_model.ts"))
    (b / "models" / "verify_model.ts").unlink()
    # the exported module is the shipped weights in the released network, not a freshly initialised one
    network = MSANet(in_channels=1, out_channels=1, channels=read_release()["generator_channels"])
    network.load_state_dict(torch.load(b / "models" / "model.pt", weights_only=True))
    network.eval()
    image = torch.rand(1, 1, 256, 256, generator=torch.Generator().manual_seed(42)) * 2
    with torch.no_grad():
        assert torch.allclose(scripted(image), network(image), atol=1e-5)


def test_properties_of_supported_apps_and_an_inference_run(shared_bundle, tmp_path):
    """MONAI's inference + meta properties (what the Zoo checks per app), then the workflow runs."""
    script = """
import json, sys
from monai.bundle import create_workflow
from monai.bundle.properties import InferProperties, MetaProperties
workflow = create_workflow(workflow_type="inference", config_file="configs/inference.json",
    meta_file="configs/metadata.json", logging_file="configs/logging.conf", bundle_root=".", output_dir=sys.argv[1])
workflow.properties = {**MetaProperties, **InferProperties}
missing = workflow.check_properties()
workflow.run()
workflow.finalize()
print("missing properties:", json.dumps(missing))
"""
    out = _run(["-c", script, str(tmp_path / "sample_out")], cwd=shared_bundle)
    (line,) = [line for line in out.splitlines() if line.startswith("missing properties:")]
    assert json.loads(line.split(":", 1)[1]) == []
    rows = (tmp_path / "sample_out" / "inference.csv").read_text().splitlines()
    assert len(rows) >= 2 and all(",ok," in row for row in rows[1:])  # the shipped sample study


def test_run_inference_on_a_study(shared_bundle, synthetic_dataset, tmp_path):
    import nibabel as nib

    with open(synthetic_dataset, encoding="utf-8") as f:
        study = Path(synthetic_dataset).parent / json.load(f)["test"][0]["image"]
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copy2(study, studies / study.name)
    log = _run(["-m", "monai.bundle", "run", "inference", "--meta_file", "configs/metadata.json",
                "--config_file", "configs/inference.json", "--logging_file", "configs/logging.conf",
                "--input_dir", str(studies), "--output_dir", str(tmp_path / "out")], cwd=shared_bundle)
    assert "0 error(s)" in log
    masks = sorted((tmp_path / "out").glob("*_mask.nii.gz"))
    assert masks and all(nib.load(m).shape[:2] in {(256, 1024), (1024, 256)} for m in masks)
    assert sorted((tmp_path / "out").glob("*_seg.dcm"))

    # a list of files means those files alone, not the shipped sample study beside them
    log = _run(["-m", "monai.bundle", "run", "inference", "--meta_file", "configs/metadata.json",
                "--config_file", "configs/inference.json", "--logging_file", "configs/logging.conf",
                "--input_files", json.dumps([str(studies / study.name)]), "--output_dir", str(tmp_path / "listed")],
               cwd=shared_bundle)
    rows = list(csv.DictReader(open(tmp_path / "listed" / "inference.csv", newline="")))
    assert rows and {Path(r["file"]).name for r in rows} == {study.name}


def test_package_refuses_weights_of_other_widths(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy2(RELEASE_DIR / "model.pt", release / "model.pt")
    record = json.loads((RELEASE_DIR / "release.json").read_text())
    (release / "release.json").write_text(json.dumps({**record, "generator_channels": [4, 8, 8, 16, 16]}))
    with pytest.raises(CheckpointError, match="model.pt"):
        package_bundle(tmp_path / "out", release_dir=release)
    assert not any((tmp_path / "out").iterdir())  # nothing half-written left behind
    (release / "model.pt").write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="sha256"):
        package_bundle(tmp_path / "out", release_dir=release)


def test_wheel_builds_and_works_outside_the_checkout(tmp_path):
    source = tmp_path / "src"  # build from a copy: the build writes build/ and *.egg-info next to setup.cfg
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "msanet_monai", source / "msanet_monai", ignore=shutil.ignore_patterns("__pycache__"))
    _run(["-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
         cwd=source)
    (wheel,) = (tmp_path / "dist").glob("msanet_monai-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "msanet_monai/networks/nets/msanet.py" in names and "msanet_monai/package.py" in names
    site = tmp_path / "site"
    _run(["-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], cwd=tmp_path)
    env = dict(_clean_env(), PYTHONPATH=str(site))
    out = _run(["-m", "msanet_monai.synthetic", "--out", str(tmp_path / "data"), "--num-patients", "2"],
               cwd=tmp_path, env=env)
    assert "datalist:" in out and (tmp_path / "data" / "dataset.json").is_file()
    # packaging needs the repository's bundle/ and release/: outside the checkout it says so
    proc = subprocess.run([sys.executable, "-m", "msanet_monai.package", "--out", str(tmp_path / "b")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "--bundle-dir" in proc.stderr


def test_training_in_the_shared_bundle_zoo_unit_test_style(shared_bundle, tmp_path):
    """train.json + quick.json of the shared bundle: data generated inside it, properties, one tiny epoch."""
    bundle = tmp_path / BUNDLE_NAME
    shutil.copytree(shared_bundle, bundle)
    shipped = (bundle / "models" / "model.pt").read_bytes()
    script = """
import json
from monai.bundle import ConfigWorkflow
tiny = {"generator_channels": [4, 8, 8, 16, 16], "critic_channels": [4, 8, 8, 16, 16, 16], "roi_size": [128, 128],
        "num_patients": 6, "train_items": "$@data_split[0][:4]", "val_items": "$@data_split[1][:2]",
        "num_epochs": 1, "val_interval": 1, "cache_rate": 0.0, "num_workers": 0, "ckpt_dir": "models/retrained"}
workflow = ConfigWorkflow(workflow_type="train", config_file=["configs/train.json", "configs/quick.json"],
    meta_file="configs/metadata.json", logging_file="configs/logging.conf", bundle_root=".", **tiny)
workflow.initialize()
missing = workflow.check_properties()
workflow.run()
workflow.finalize()
print("missing properties:", json.dumps(missing))
"""
    out = _run(["-c", script], cwd=bundle)
    (line,) = [line for line in out.splitlines() if line.startswith("missing properties:")]
    assert json.loads(line.split(":", 1)[1]) == []
    assert (bundle / "data" / "synthetic_quick" / "dataset.json").is_file()  # inside the bundle
    trained = torch.load(bundle / "models" / "retrained" / "model.pt", weights_only=True)
    assert trained["enc1.conv1.conv.weight"].shape[0] == 4  # the tiny widths of this run
    assert (bundle / "models" / "model.pt").read_bytes() == shipped  # the shipped weights are never overwritten
