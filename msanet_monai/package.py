"""Write a self-contained, shareable copy of the bundle: ``python -m msanet_monai.package --out DIR``.

The repository's ``bundle/`` names its components ``msanet_monai.*`` and needs this package
installed; its ``models/`` holds whatever the user trained. The shared bundle must run with only
the public packages of ``metadata.json`` installed, so this command assembles (MONAI Model Zoo
layout)::

    DIR/spect_bone_metastasis_segmentation/
        configs/          the repository's configs; every config's imports start with "$import scripts",
                          dataset_dir points inside the bundle, inference.json has the widths of
                          the shipped weights, metadata.json lists no msanet-monai package
        scripts/          __init__.py + msanet_monai/ (copied from this very package at packaging time)
        models/model.pt   the release weights (release/model.pt of the repository), nothing else
        large_files.yml   where models/model.pt comes from, with its sha256
        sample/           one synthetic study (the default input of inference.json)
        docs/             the bundle documentation and data_license.txt
        LICENSE

and prints the folder's path. MONAI resolves ``_target_`` and ``$`` expressions by importing
modules by name; the package imports itself by absolute ``msanet_monai.*`` names, so the copy has
to be importable as top-level ``msanet_monai``: ``scripts/__init__.py`` (imported first by every
config, with the bundle folder on ``sys.path`` as MONAI, the Model Zoo CI and MONAI Label arrange)
puts ``scripts/`` at the front of ``sys.path``.

The folder is assembled in a temporary sibling and renamed into place, and an existing
destination is never replaced.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import msanet_monai

__all__ = [
    "BUNDLE_NAME",
    "RELEASE_DIR",
    "SOURCE_BUNDLE_DIR",
    "SCRIPTS_INIT",
    "SAMPLE_DIR",
    "sha256sum",
    "read_release",
    "shareable_config",
    "package_bundle",
    "main",
]

BUNDLE_NAME = "spect_bone_metastasis_segmentation"
_REPO_ROOT = Path(msanet_monai.__file__).resolve().parents[1]
SOURCE_BUNDLE_DIR = _REPO_ROOT / "bundle"
RELEASE_DIR = _REPO_ROOT / "release"
# configs that read the data set; the repository keeps its data beside bundle/, a shared bundle inside it
_OUTSIDE_DATA = "@bundle_root + '/../data/"
_INSIDE_DATA = "@bundle_root + '/data/"
# the package is shipped as code; every other entry of required_packages_version is on PyPI
_THIS_DISTRIBUTION = "msanet-monai"
SAMPLE_DIR = "sample"

SCRIPTS_INIT = '''"""Code of this bundle, importable as ``msanet_monai`` once ``scripts`` is imported.

Every config of the bundle starts its imports with ``$import scripts``. This file puts the folder it
lives in at the front of ``sys.path``, so that the configs' ``msanet_monai.*`` components (and the
package's own absolute imports) resolve to ``scripts/msanet_monai``, the copy of the msanet-monai
package this bundle was packaged with (version {version}), ahead of any installed copy.
"""

import os
import sys

_SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _SCRIPTS_DIR not in sys.path:
    sys.path.insert(0, _SCRIPTS_DIR)
'''


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_release(release_dir: str | os.PathLike = RELEASE_DIR) -> dict[str, Any]:
    """``release/release.json``: the shipped weights' file, sha256 and ``generator_channels``.

    Raises:
        FileNotFoundError: no ``release.json`` or no weights file next to it.
        ValueError: the weights' sha256 is not the one recorded (the file was replaced or damaged).
    """
    release_dir = Path(release_dir)
    record_file = release_dir / "release.json"
    if not record_file.is_file():
        raise FileNotFoundError(f"{record_file}: no release record (the shipped weights are described there)")
    with open(record_file, encoding="utf-8") as f:
        record = json.load(f)
    weights = release_dir / record["weights"]
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: the release weights named in {record_file} are missing")
    found = sha256sum(weights)
    if found != record["sha256"]:
        raise ValueError(
            f"{weights}: sha256 {found} is not the {record['sha256']} recorded in {record_file}; "
            "the release weights were replaced without updating their record"
        )
    return {**record, "weights_path": str(weights)}


def shareable_config(config: dict[str, Any], generator_channels: list[int] | None = None) -> dict[str, Any]:
    """One config of ``bundle/configs`` as the shared bundle holds it.

    ``"$import scripts"`` goes first in ``imports`` (when the config has imports: override files
    such as quick.json have none and are merged onto one that has), a ``dataset_dir`` or
    ``synthetic_dataset_dir`` beside the bundle moves inside it, and ``generator_channels`` (when
    given) is set to the shipped weights'.
    """
    config = dict(config)
    if "imports" in config:
        config["imports"] = ["$import scripts"] + [item for item in config["imports"] if item != "$import scripts"]
    for key in ("synthetic_dataset_dir", "dataset_dir"):
        if isinstance(config.get(key), str):
            config[key] = config[key].replace(_OUTSIDE_DATA, _INSIDE_DATA)
    if generator_channels is not None:
        config["generator_channels"] = list(generator_channels)
    return config


def _shareable_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    # the Model Zoo CI pip-installs every required package: msanet-monai is not on PyPI, it ships in scripts/
    meta = dict(meta)
    packages = dict(meta.get("required_packages_version", {}))
    packages.pop(_THIS_DISTRIBUTION, None)
    meta["required_packages_version"] = packages
    return meta


def _write_json(path: Path, content: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(content, f, indent=4)
        f.write("\n")


def _large_files_yml(sha256: str, url: str) -> str:
    # MONAI reads large_files.yml with its ConfigParser (YAML); JSON string literals are valid YAML scalars
    return (
        "# models/model.pt is shipped in this folder; where the Model Zoo does not keep binaries it is\n"
        "# fetched from url and checked against hash_val (MONAI's download_url skips a file that matches)\n"
        "large_files:\n"
        f"- path: {json.dumps('models/model.pt')}\n"
        f"  url: {json.dumps(url)}\n"
        f"  hash_val: {json.dumps(sha256)}\n"
        f"  hash_type: {json.dumps('sha256')}\n"
    )


def _write_sample(sample_dir: Path, seed: int = 42) -> None:
    """The test patient of a 2-patient synthetic set (NM DICOM, one or two views) into ``sample_dir``."""
    from msanet_monai.synthetic import generate_dataset

    sample_dir.mkdir()
    with tempfile.TemporaryDirectory() as tmp:
        with open(generate_dataset(tmp, num_patients=2, seed=seed), encoding="utf-8") as f:
            test_images = sorted({item["image"] for item in json.load(f)["test"]})
        for image in test_images:
            shutil.copy2(Path(tmp) / image if not os.path.isabs(image) else image, sample_dir / Path(image).name)


def _check_weights_fit(inference_config: Path, meta_file: Path, weights: str) -> None:
    """Build ``network_def`` from the shared inference.json alone and load the weights strictly."""
    from monai.bundle import ConfigParser

    from msanet_monai.checkpoints import load_generator_weights

    parser = ConfigParser()
    parser.read_config(str(inference_config))
    parser.read_meta(str(meta_file))
    # the imports name ``scripts``, which is not on sys.path while packaging: only the network is needed
    parser["imports"] = ["$import torch"]
    network = parser.get_parsed_content("network_def")
    load_generator_weights(network, weights, map_location="cpu")  # CheckpointError names the file


def package_bundle(
    out_dir: str | os.PathLike,
    bundle_dir: str | os.PathLike = SOURCE_BUNDLE_DIR,
    release_dir: str | os.PathLike = RELEASE_DIR,
    name: str = BUNDLE_NAME,
    weights_url: str = "",
) -> Path:
    """Write ``out_dir/name/``, the shareable bundle, and return its path.

    Args:
        out_dir: parent folder (created if needed).
        bundle_dir: the repository's ``bundle/`` (configs, docs, LICENSE).
        release_dir: folder with ``release.json`` and the release weights.
        name: folder name of the shared bundle (the Model Zoo uses it as the bundle's name).
        weights_url: where ``models/model.pt`` can be downloaded from, written to ``large_files.yml``
            (empty: the weights travel only inside the folder).

    Raises:
        FileExistsError: ``out_dir/name`` exists (it is never replaced).
        FileNotFoundError: ``bundle_dir`` or the release files are missing.
        CheckpointError: the release weights do not fit the network of the shared inference.json.
    """
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    configs_dir = bundle_dir / "configs"
    if not (configs_dir / "metadata.json").is_file():
        raise FileNotFoundError(
            f"{configs_dir / 'metadata.json'}: no bundle to package; run from a checkout of the repository "
            "(python -m msanet_monai.package reads its bundle/ and release/ folders) or pass --bundle-dir"
        )
    release = read_release(release_dir)
    target = out_dir / name
    if target.exists():
        raise FileExistsError(f"{target}: already exists; remove it or choose another --out (it is never replaced)")
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
    os.chmod(staging, 0o755)  # mkdtemp makes it private (0o700); the bundle is meant to be shared
    try:
        # configs: the JSON ones rewritten, the rest (logging.conf, schema/) as they are
        (staging / "configs").mkdir()
        for source in sorted(configs_dir.iterdir()):
            if source.is_dir():
                shutil.copytree(source, staging / "configs" / source.name, ignore=shutil.ignore_patterns(".*"))
                continue
            if source.suffix != ".json":
                shutil.copy2(source, staging / "configs" / source.name)
                continue
            with open(source, encoding="utf-8") as f:
                content = json.load(f)
            if source.name == "metadata.json":
                content = _shareable_metadata(content)
            elif source.name == "inference.json":
                content = shareable_config(content, generator_channels=release["generator_channels"])
                # default input: the shipped sample study, so `run inference` works right after download;
                # only when no --input_files are given (a list of files means those files alone)
                content["input_files"] = []
                content["input_dir"] = f"$None if @input_files else @bundle_root + '/{SAMPLE_DIR}'"
            else:
                content = shareable_config(content)
            _write_json(staging / "configs" / source.name, content)
        # scripts: this package, copied from where it is imported now (the one source of the code)
        package_dir = Path(msanet_monai.__file__).resolve().parent
        (staging / "scripts").mkdir()
        (staging / "scripts" / "__init__.py").write_text(SCRIPTS_INIT.format(version=msanet_monai.__version__))
        shutil.copytree(
            package_dir, staging / "scripts" / "msanet_monai", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        # weights: the release file only (no training checkpoints, no exports)
        (staging / "models").mkdir()
        shutil.copy2(release["weights_path"], staging / "models" / "model.pt")
        _write_sample(staging / SAMPLE_DIR)
        (staging / "large_files.yml").write_text(_large_files_yml(release["sha256"], weights_url))
        shutil.copytree(bundle_dir / "docs", staging / "docs", ignore=shutil.ignore_patterns(".*"))
        shutil.copy2(bundle_dir / "LICENSE", staging / "LICENSE")
        # loads the release file itself (same bytes as models/model.pt) so an error names it, not the staging copy
        _check_weights_fit(staging / "configs" / "inference.json", staging / "configs" / "metadata.json",
                           release["weights_path"])
        os.replace(staging, target)  # an empty-or-absent target only: checked above
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # our own temporary folder
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m msanet_monai.package", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write the bundle folder into")
    parser.add_argument("--name", default=BUNDLE_NAME, help=f"bundle folder name (default {BUNDLE_NAME})")
    parser.add_argument("--bundle-dir", default=str(SOURCE_BUNDLE_DIR), help="the repository's bundle/ folder")
    parser.add_argument("--release-dir", default=str(RELEASE_DIR), help="folder with release.json and the weights")
    parser.add_argument("--weights-url", default="", help="download URL of models/model.pt for large_files.yml")
    args = parser.parse_args(argv)
    try:
        path = package_bundle(args.out, args.bundle_dir, args.release_dir, args.name, args.weights_url)
    except (OSError, ValueError) as err:  # CheckpointError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
