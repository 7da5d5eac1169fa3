"""TorchScript and ONNX exports of the generator through MONAI's own bundle commands.

A tiny MSA-Net generator is saved as a checkpoint the way training saves ``models/model.pt``; the
real ``monai.bundle.ckpt_export`` / ``onnx_export`` / ``verify_net_in_out`` read the bundle's
train.json + quick.json and metadata.json (widths overridden to tiny), and the exported files are run
with ``torch.jit.load`` and onnxruntime against the eager network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ckpt_export, download, load, onnx_export, verify_metadata, verify_net_in_out
from monai.data import load_net_with_metadata

from msanet_monai.networks.nets import MSANet, SegANCritic

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "bundle"
BUNDLE_VERSION = json.loads((BUNDLE_DIR / "configs" / "metadata.json").read_text())["version"]
CONFIGS = BUNDLE_DIR / "configs"
CONFIG_FILES = [str(CONFIGS / "train.json"), str(CONFIGS / "quick.json")]
META_FILE = str(CONFIGS / "metadata.json")
TINY = [4, 8, 8, 16, 16]
ATOL = 1e-4
# exported ONNX models take a batch of any size; height and width stay those of the thorax crop
ONNX_IO = {
    "input_names": ["image"],
    "output_names": ["pred"],
    "dynamic_axes": {"image": {0: "batch"}, "pred": {0: "batch"}},
}


def _tiny_generator(seed: int = 42) -> MSANet:
    """The generator as train.json builds it (deep supervision on), with tiny widths."""
    torch.manual_seed(seed)
    return MSANet(in_channels=1, out_channels=1, channels=TINY, deep_supervision=True)


def _thorax_like_batch(batch: int, size: int = 256, seed: int = 42) -> torch.Tensor:
    """Scaled counts in [0, 1]: a smooth background with a few hot spots, shape (batch, 1, size, size)."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.linspace(0, 1, size).view(size, 1)
    image = 0.2 + 0.1 * torch.sin(6 * rows) * torch.ones(1, size)
    image = image.expand(batch, 1, size, size).clone()
    image += 0.05 * torch.rand(batch, 1, size, size, generator=gen)
    for b in range(batch):
        r, c = torch.randint(20, size - 20, (2,), generator=gen).tolist()
        image[b, 0, r - 4 : r + 4, c - 4 : c + 4] = 0.9
    return image.clamp(0, 1)


def _assert_same_masks(a: np.ndarray, b: np.ndarray, threshold: float = 0.5) -> None:
    # pixels within ATOL of the threshold may legitimately fall either side
    undecided = np.abs(a - threshold) < ATOL
    assert np.all(((a >= threshold) == (b >= threshold)) | undecided)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """A bare state dict in models/model.pt, as train.json's best-model saver writes it, and its network."""
    root = tmp_path_factory.mktemp("bundle_export")
    (root / "models").mkdir()
    network = _tiny_generator(seed=7)
    # one real optimisation step, so the weights (and BN running statistics) are not the initial ones
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    network.train()
    image = _thorax_like_batch(2, size=64)
    out = network(image)
    assert out.shape == (2, 4, 1, 64, 64)  # deep supervision during training
    out.mean().backward()
    optimizer.step()
    network.eval()
    ckpt = root / "models" / "model.pt"
    torch.save(network.state_dict(), ckpt)
    # a whole-training checkpoint as well (generator, critic, optimizer), exported with key_in_ckpt="model"
    critic = SegANCritic(in_channels=1, channels=[4, 8, 8, 16, 16, 16])
    torch.save({"model": network.state_dict(), "critic": critic.state_dict(), "optimizer": optimizer.state_dict()},
               root / "models" / "checkpoint.pt")
    return root, ckpt, network


@pytest.fixture(scope="module")
def torchscript_export(trained_checkpoint):
    """models/model.ts written by the real ``ckpt_export`` from train.json + quick.json (tiny widths)."""
    root, ckpt, _ = trained_checkpoint
    ts_file = root / "models" / "model.ts"
    ckpt_export(
        net_id="network_def", filepath=str(ts_file), ckpt_file=str(ckpt), meta_file=META_FILE,
        config_file=CONFIG_FILES, generator_channels=TINY,
    )
    return ts_file


def test_ckpt_export_torchscript_matches_eager(trained_checkpoint, torchscript_export):
    _, _, network = trained_checkpoint
    ts_file = torchscript_export
    scripted, meta, extra = load_net_with_metadata(str(ts_file), more_extra_files=("train.json", "quick.json"))
    # metadata and configs travel inside the TorchScript archive
    assert meta["version"] == BUNDLE_VERSION and meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [256, 256]
    configs = {k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items()}
    assert "MSANet" in configs["train.json"] and "generator_channels" in configs["quick.json"]
    assert not scripted.training  # saved in eval mode: one probability map, no side outputs
    for image in (_thorax_like_batch(1), _thorax_like_batch(3, size=128)):
        with torch.no_grad():
            expected = network(image)
            got = scripted(image)
        assert got.shape == expected.shape == (image.shape[0], 1, *image.shape[2:])
        assert torch.allclose(got, expected, atol=ATOL)
        assert 0.0 <= float(got.min()) and float(got.max()) <= 1.0
        _assert_same_masks(got.numpy(), expected.numpy())


# torch's dynamo exporter suggests dynamic_shapes; dynamic_axes (settable from the command line) works here
@pytest.mark.filterwarnings("ignore:# 'dynamic_axes' is not recommended")
def test_onnx_export_runs_in_onnxruntime(trained_checkpoint):
    ort = pytest.importorskip("onnxruntime")
    root, _, network = trained_checkpoint
    onnx_file = root / "models" / "model.onnx"
    onnx_export(  # from the whole-training checkpoint: the generator is its "model" entry
        net_id="network_def", filepath=str(onnx_file), ckpt_file=str(root / "models" / "checkpoint.pt"),
        key_in_ckpt="model", meta_file=META_FILE, config_file=CONFIG_FILES, converter_kwargs=ONNX_IO,
        generator_channels=TINY,
    )
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape) == ("image", ["batch", 1, 256, 256])  # shape from metadata.json
    assert (out.name, out.shape[1:]) == ("pred", [1, 256, 256])
    for batch in (1, 2):
        image = _thorax_like_batch(batch, seed=batch)
        with torch.no_grad():
            expected = network(image).numpy()
        (got,) = session.run(None, {"image": image.numpy()})
        assert got.shape == expected.shape == (batch, 1, 256, 256)
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
        _assert_same_masks(got, expected)


def test_verify_net_in_out_command():
    """The documented command, run from bundle/ with the quick widths, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "verify_net_in_out", "network_def",
         "--meta_file", "configs/metadata.json", "--config_file", "['configs/train.json','configs/quick.json']"],
        cwd=BUNDLE_DIR, capture_output=True, text=True, timeout=300, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "data shape of network is verified with no error" in log


def test_verify_net_in_out_catches_a_wrong_description():
    """verify_net_in_out compares the network with metadata.json: a wrong channel count fails."""
    with pytest.raises(ValueError, match="output channel number `1` doesn't match: `4`"):
        verify_net_in_out(
            net_id="network_def", meta_file=META_FILE, config_file=CONFIG_FILES, device="cpu",
            generator_channels=TINY, **{
                "_meta_#network_data_format#outputs#pred#num_channels": 4,
                "_meta_#network_data_format#inputs#image#spatial_shape": [64, 64],  # smaller fake input: faster
            },
        )


@pytest.mark.filterwarnings("ignore:No hash value provided")
def test_shared_bundle_downloads_and_loads(trained_checkpoint, torchscript_export, tmp_path):
    """The Model Zoo layout zipped as a release asset, fetched with monai.bundle.download and loaded back."""
    _, ckpt, network = trained_checkpoint
    name = "spect_bone_metastasis_segmentation"
    staged = tmp_path / "staged" / name
    shutil.copytree(CONFIGS, staged / "configs")
    shutil.copytree(BUNDLE_DIR / "docs", staged / "docs")
    shutil.copy(BUNDLE_DIR / "LICENSE", staged / "LICENSE")
    (staged / "models").mkdir()
    shutil.copy(ckpt, staged / "models" / "model.pt")
    shutil.copy(torchscript_export, staged / "models" / "model.ts")
    archive = shutil.make_archive(str(tmp_path / f"{name}_v{BUNDLE_VERSION}"), "zip", root_dir=staged.parent, base_dir=name)

    bundles = tmp_path / "bundles"
    download(name=name, url=Path(archive).as_uri(), bundle_dir=str(bundles), progress=False)
    fetched = bundles / name
    for part in ("configs/metadata.json", "configs/inference.json", "configs/logging.conf", "docs", "LICENSE",
                 "models/model.pt", "models/model.ts"):
        assert (fetched / part).exists(), part
    verify_metadata(meta_file=str(fetched / "configs" / "metadata.json"),
                    filepath=str(fetched / "configs" / "schema" / "meta_schema_20240725.json"))

    image = _thorax_like_batch(1, size=64)
    with torch.no_grad():
        expected = network(image)
        scripted, meta, _ = load(name, bundle_dir=str(bundles), load_ts_module=True, device="cpu")
        assert meta["version"] == BUNDLE_VERSION
        assert torch.allclose(scripted(image), expected, atol=ATOL)
        # weights only, into a network the user builds (no config parsed)
        weights = load(name, bundle_dir=str(bundles), model=_tiny_generator(seed=0), device="cpu").eval()
        assert torch.equal(weights(image), expected)
