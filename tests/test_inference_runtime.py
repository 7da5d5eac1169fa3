"""Inference runtimes (``inference_runtime``) through the real bundle command on a real study file.

The study is a dual-head NM DICOM file built from the NEMA NM1 whole-body scan (pydicom-data
``JPEG-LL.dcm``: anterior frame, and the same scan mirrored as the posterior frame). The tiny generator
has random weights whose final 1x1 convolution is stretched and re-centred on this study, so that its
masks hold both lesion and background pixels and most probabilities lie far from the threshold.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from monai.bundle import ConfigParser

from msanet_monai.inference import EXACT_RUNTIMES, InferenceRuntime, fold_conv_bn
from msanet_monai.inference.timing import TIMING_PREFIX
from msanet_monai.io.nm_dicom import write_whole_body_nm
from msanet_monai.networks.nets import MSANet

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"
CONFIGS = BUNDLE / "configs"
TINY = [4, 8, 8, 16, 16]
ROI = [128, 128]


@pytest.fixture(scope="module")
def study(tmp_path_factory, nm1_scan) -> str:
    anterior = pydicom.dcmread(nm1_scan).pixel_array.astype(np.uint16)
    path = tmp_path_factory.mktemp("study") / "dual.dcm"
    write_whole_body_nm(str(path), {"anterior": anterior, "posterior": np.ascontiguousarray(anterior[:, ::-1])},
                        patient_id="RT001")
    return str(path)


def _tiny_network(study: str, seed: int = 42) -> MSANet:
    """Random tiny weights, final map stretched (x200) and centred on the median logit of the study's crop."""
    torch.manual_seed(seed)
    net = MSANet(channels=TINY).eval()
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser.update({"roi_size": ROI, "input_files": [study]})
    item = parser.get_parsed_content("preprocessing")({"image": study, "view": "anterior"})
    features = {}
    handle = net.head.register_forward_hook(lambda m, i, o: features.setdefault("logit", o))
    with torch.no_grad():
        net(item["image"][None].as_tensor())
    handle.remove()
    with torch.no_grad():
        conv = net.head.conv
        conv.weight *= 200
        conv.bias.copy_(conv.bias * 200 - features["logit"].median() * 200)
    return net


@pytest.fixture(scope="module")
def weights(tmp_path_factory, study) -> str:
    path = tmp_path_factory.mktemp("weights") / "model.pt"
    torch.save(_tiny_network(study).state_dict(), path)
    return str(path)


def _bundle(root: Path, ckpt: str, inputs: dict, runtime: str, check: bool = True) -> tuple[str, list[dict]]:
    """``python -m monai.bundle run`` with the inference config at tiny widths; returns (log, CSV rows)."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(CONFIGS / "inference.json"),
           "--meta_file", str(CONFIGS / "metadata.json"), "--logging_file", str(CONFIGS / "logging.conf"),
           "--bundle_root", str(root), "--ckpt_path", ckpt, "--generator_channels", json.dumps(TINY),
           "--roi_size", json.dumps(ROI), "--inference_runtime", runtime, "--write_overlay", "false"]
    for key, value in inputs.items():
        cmd += [f"--{key}", value]
    proc = subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, log[-5000:]
    csv_path = root / "outputs" / "inference.csv"
    rows = list(csv.DictReader(open(csv_path, newline=""))) if csv_path.is_file() else []
    return log, rows


def _masks(rows: list[dict]) -> dict[tuple[str, str], np.ndarray]:
    return {(Path(r["file"]).name, r["view"]): np.asarray(nib.load(r["mask_nifti"]).dataobj) for r in rows}


@pytest.fixture(scope="module")
def eager_masks(tmp_path_factory, study, weights) -> dict:
    _, rows = _bundle(tmp_path_factory.mktemp("eager"), weights, {"input_files": json.dumps([study])}, "eager")
    masks = _masks(rows)
    assert sorted(masks) == [("dual.dcm", "anterior"), ("dual.dcm", "posterior")]
    for mask in masks.values():  # a mask with lesion and background pixels: equality means something
        assert 0 < mask.sum() < ROI[0] * ROI[1]
    return masks


def test_fold_conv_bn_keeps_the_outputs():
    torch.manual_seed(0)
    net = MSANet(channels=TINY).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        ref = net(x)
        folded = fold_conv_bn(copy.deepcopy(net))
        out = folded(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("runtime", [r for r in EXACT_RUNTIMES if r != "eager"])
def test_exact_runtime_gives_the_eager_masks(runtime, tmp_path, study, weights, eager_masks):
    log, rows = _bundle(tmp_path, weights, {"input_files": json.dumps([study])}, runtime)
    assert f"inference runtime {runtime}: network prepared" in log
    masks = _masks(rows)
    assert masks.keys() == eager_masks.keys()
    for key, mask in masks.items():
        np.testing.assert_array_equal(mask, eager_masks[key], err_msg=f"{runtime} {key}")


def test_bf16_is_opt_in_and_close(tmp_path, study, weights, eager_masks):
    """bf16 changes masks (8-bit mantissa): it runs, and its masks mostly agree (figures in the docs)."""
    _, rows = _bundle(tmp_path, weights, {"input_files": json.dumps([study])}, "bf16")
    for key, mask in _masks(rows).items():
        assert mask.shape == eager_masks[key].shape
        assert (mask == eager_masks[key]).mean() > 0.95


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_cuda_amp_without_a_gpu_is_refused(tmp_path, study, weights):
    log, _ = _bundle(tmp_path, weights, {"input_files": json.dumps([study])}, "cuda_amp", check=False)
    assert "cuda_amp" in log and "needs a CUDA device" in log


def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="inference_runtime"):
        InferenceRuntime(torch.nn.Identity(), "tensorrt")


def test_folder_of_studies_loads_the_model_once(tmp_path, study, weights, eager_masks):
    folder = tmp_path / "studies"
    folder.mkdir()
    for name in ("a.dcm", "b.dcm", "c.dcm"):
        shutil.copy(study, folder / name)
    (folder / "d.dcm").write_bytes(b"not a DICOM file")  # reported, the batch goes on
    log, rows = _bundle(tmp_path, weights, {"input_dir": str(folder)}, "folded")
    assert len(re.findall(r"Restored all variables from", log)) == 1
    assert re.findall(r"network prepared \((\d+) time\(s\) in this process\)", log) == ["1"]
    assert [(Path(r["file"]).name, r["view"], r["status"]) for r in rows] == [
        (n, v, "ok") for n in ("a.dcm", "b.dcm", "c.dcm") for v in ("anterior", "posterior")] + [("d.dcm", "", "error")]
    for (name, view), mask in _masks([r for r in rows if r["status"] == "ok"]).items():
        np.testing.assert_array_equal(mask, eager_masks[("dual.dcm", view)])
    timing = json.loads(log.split(TIMING_PREFIX, 1)[1].splitlines()[0])
    assert timing["studies"] == 4 and timing["views"] == 7
    assert not re.search(r"highdicom\S* - INFO", log)  # its 9 INFO lines per DICOM SEG are quiet


def test_onnx_cache_is_reused_and_rebuilt_for_other_weights(tmp_path, study, weights):
    inputs = {"input_files": json.dumps([study]), "write_dicom_seg": "false"}
    cache = tmp_path / "models" / "onnx_cache"
    log1, _ = _bundle(tmp_path, weights, inputs, "onnxruntime")
    assert "onnxruntime: exporting" in log1
    (first,) = cache.glob("*.onnx")
    stamp = first.stat().st_mtime_ns
    log2, _ = _bundle(tmp_path, weights, inputs, "onnxruntime")
    assert "onnxruntime: reusing" in log2 and "exporting" not in log2
    assert first.stat().st_mtime_ns == stamp and list(cache.glob("*.onnx")) == [first]

    other = tmp_path / "other.pt"
    torch.save(_tiny_network(study, seed=7).state_dict(), other)
    log3, _ = _bundle(tmp_path, str(other), inputs, "onnxruntime")
    assert "onnxruntime: exporting" in log3
    assert len(list(cache.glob("*.onnx"))) == 2
    assert not list(cache.glob(".*"))  # written atomically: no temporary file left
