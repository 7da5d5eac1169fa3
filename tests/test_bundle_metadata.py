"""The bundle's metadata.json, logging.conf, LICENSE and offline schema, checked with MONAI's own tools.

``verify_metadata`` runs as a user runs it (``python -m monai.bundle verify_metadata``) against the
schema copy shipped in ``configs/schema``, so no download happens.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from monai.apps.utils import HashCheckError
from monai.bundle import verify_metadata

from msanet_monai.transforms import ScaleCounts

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "bundle"
CONFIGS = BUNDLE_DIR / "configs"
META_FILE = CONFIGS / "metadata.json"
SCHEMA_NAME = "meta_schema_20240725.json"
SCHEMA_FILE = CONFIGS / "schema" / SCHEMA_NAME
SETUP_CFG = BUNDLE_DIR.parent / "setup.cfg"
# md5 of the Apache License 2.0 text as published at https://www.apache.org/licenses/LICENSE-2.0.txt
APACHE_2_MD5 = "86d3f3a95c324c9479bd8986968f4327"
# md5 of the shipped schema copy (the MONAI-extra-test-data 0.8.1 asset, 7340 bytes); the docs give it as --hash_val
SCHEMA_MD5 = "76e1add273836515d0bbb3bc71962474"


@pytest.fixture(scope="module")
def metadata() -> dict:
    return json.loads(META_FILE.read_text())


def _verify(meta: dict, tmp_path: Path) -> None:
    """In-process verify_metadata on a (modified) copy, with the shipped schema."""
    meta_file = tmp_path / "metadata.json"
    meta_file.write_text(json.dumps(meta))
    verify_metadata(meta_file=str(meta_file), filepath=str(SCHEMA_FILE))


@pytest.mark.filterwarnings("ignore:No hash value provided")
def test_verify_metadata_command_passes_offline():
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "verify_metadata", "--meta_file", "configs/metadata.json",
         "--filepath", f"configs/schema/{SCHEMA_NAME}", "--hash_val", SCHEMA_MD5],
        cwd=BUNDLE_DIR, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, no_proxy="*", HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9"),
    )  # a dead proxy: any download attempt would fail the command
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "skipped downloading" in log
    assert "Verified 'meta_schema_20240725.json', md5" in log  # MONAI checked the hash of the local copy
    assert "metadata is verified with no error" in log


def test_verify_metadata_refuses_a_tampered_schema(tmp_path):
    """With --hash_val, an edited schema copy is rejected instead of silently used."""
    tampered = tmp_path / SCHEMA_NAME
    tampered.write_text(SCHEMA_FILE.read_text().replace('"numpy_version",', "", 1))
    with pytest.raises(HashCheckError, match="md5 hash check of existing file failed"):
        verify_metadata(meta_file=str(META_FILE), filepath=str(tampered), hash_val=SCHEMA_MD5)


def test_schema_file_is_the_one_named_in_metadata(metadata):
    assert metadata["schema"].endswith("/" + SCHEMA_NAME)
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"].startswith("https://json-schema.org/draft/2019-09")
    for field in ("schema", "version", "monai_version", "pytorch_version", "numpy_version",
                  "required_packages_version", "task", "description",
                  "authors", "copyright", "network_data_format"):
        assert field in schema["required"]


@pytest.mark.filterwarnings("ignore:No hash value provided")
@pytest.mark.parametrize(
    "break_it, complaint",
    [
        (lambda m: m.pop("authors"), "'authors' is a required property"),
        (lambda m: m.pop("required_packages_version"), "'required_packages_version' is a required property"),
        (lambda m: m["network_data_format"]["inputs"]["image"].pop("dtype"), "'dtype' is a required property"),
        (lambda m: m["network_data_format"]["outputs"]["pred"].__setitem__("num_channels", "1"), "not of type"),
        (lambda m: m.__setitem__("references", "Wu et al."), "not of type 'array'"),
    ],
)
def test_schema_rejects_broken_metadata(metadata, tmp_path, break_it, complaint):
    broken = json.loads(json.dumps(metadata))
    break_it(broken)
    with pytest.raises(ValueError, match=re.escape(complaint)):
        _verify(broken, tmp_path)


def test_monai_parser_keeps_the_required_packages(metadata):
    """MONAI >= 1.4 reads ``optional_packages_version`` as a deprecated alias and writes it over
    ``required_packages_version``; the bundle therefore lists its packages only under the latter."""
    from monai.bundle import ConfigParser

    assert "optional_packages_version" not in metadata
    parser = ConfigParser()
    parser.read_meta(str(META_FILE))
    assert parser.get("_meta_#required_packages_version") == metadata["required_packages_version"]
    for package in ("msanet-monai", "pydicom", "highdicom", "nibabel", "pytorch-ignite"):
        assert package in metadata["required_packages_version"]


def test_model_zoo_fields_present(metadata):
    for field in ("name", "task", "description", "authors", "copyright", "data_source", "data_type",
                  "image_classes", "label_classes", "pred_classes", "eval_metrics", "intended_use",
                  "references", "changelog"):
        assert metadata.get(field), field
    # the version is the newest changelog entry (semantic versions), as the Model Zoo's CI expects
    releases = sorted(metadata["changelog"], key=lambda v: tuple(int(x) for x in v.split(".")))
    assert metadata["version"] == releases[-1] and len(metadata["version"].split(".")) == 3
    assert "research" in metadata["intended_use"].lower()
    assert "not" in metadata["intended_use"].lower() and "clinical" in metadata["intended_use"].lower()
    refs = " ".join(metadata["references"])
    for needle in ("10.1186/s40658-025-00785-w", "SegAN", "Receptive Field Block", "e0243253"):
        assert needle in refs, needle


def test_eval_metrics_are_paper_figures_or_marked_unmeasured(metadata):
    paper = metadata["eval_metrics"]["paper_reported"]
    assert (paper["mean_dice"], paper["precision"], paper["recall"]) == (0.6671, 0.7228, 0.6196)
    ours = metadata["eval_metrics"]["synthetic_test"]
    if not ours["measured"]:  # the lead fills these from the 5-run protocol; until then they stay null
        assert ours["mean_dice"] is None and ours["precision"] is None and ours["recall"] is None
    else:
        for key in ("mean_dice", "precision", "recall"):
            assert 0.0 <= ours[key] <= 1.0


def test_versions_match_the_environment_and_setup_cfg(metadata):
    import monai
    import numpy
    import torch

    def major_minor(v: str) -> str:
        return ".".join(v.split("+")[0].split(".")[:2])

    assert major_minor(metadata["monai_version"]) == major_minor(monai.__version__)
    assert major_minor(metadata["pytorch_version"]) == major_minor(torch.__version__)
    assert major_minor(metadata["numpy_version"]) == major_minor(numpy.__version__)
    assert metadata["required_packages_version"]["msanet-monai"] == importlib.metadata.version("msanet-monai")

    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    declared = {re.split(r"[<>=!~ ]", line.strip())[0].lower()
                for line in cfg["options"]["install_requires"].splitlines() if line.strip()}
    for package in metadata["required_packages_version"]:
        importlib.metadata.version(package)  # installed
        if package != "msanet-monai":
            assert package.lower() in declared, f"{package} is required by the bundle but not in setup.cfg"


def test_network_data_format_describes_thorax_crop_and_probability(metadata):
    train = json.loads((CONFIGS / "train.json").read_text())
    image = metadata["network_data_format"]["inputs"]["image"]
    pred = metadata["network_data_format"]["outputs"]["pred"]
    assert (image["type"], image["format"], image["num_channels"], image["dtype"]) == ("image", "magnitude", 1, "float32")
    assert image["spatial_shape"] == train["roi_size"] == [256, 256]
    # the input range is what the count scaling of the configs produces (ScaleCountsd with its defaults)
    scaled = ScaleCounts()(torch.full((1, 64, 64), 50.0).index_put_((torch.tensor([0]),) * 3, torch.tensor(5000.0)))
    assert image["value_range"] == [0, ScaleCounts().clip_max] == [0, float(scaled.max())]
    assert (pred["num_channels"], pred["dtype"], pred["value_range"]) == (1, "float32", [0, 1])
    assert pred["activation"] == "sigmoid"
    assert pred["threshold"] == train["threshold"] == 0.5
    assert "metastasis" in pred["channel_def"]["0"]


def test_logging_conf_sends_info_lines_to_stdout():
    code = (
        "import logging, logging.config, sys;"
        f"logging.config.fileConfig({str(CONFIGS / 'logging.conf')!r}, disable_existing_loggers=False);"
        "logging.getLogger('msanet').info('thorax crop ready'); logging.getLogger('msanet').debug('hidden')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - msanet - INFO - thorax crop ready\n", proc.stdout)


def test_logging_conf_passes_monai_safety_check():
    """MONAI >= 1.6 refuses logging files whose class=/args= would execute code; ours must pass."""
    from monai.bundle.workflows import _reject_executable_logging_config

    content = _reject_executable_logging_config(str(CONFIGS / "logging.conf"))
    assert "class=StreamHandler" in content and "args=(sys.stdout,)" in content


def test_license_is_full_apache_2_text():
    text = (BUNDLE_DIR / "LICENSE").read_bytes()
    assert b"Apache License" in text[:200] and b"Version 2.0, January 2004" in text[:200]
    assert b"END OF TERMS AND CONDITIONS" in text
    assert hashlib.md5(text).hexdigest() == APACHE_2_MD5
