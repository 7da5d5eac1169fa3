"""Inference runtimes: how the trained generator is run, chosen by ``inference_runtime`` in the config.

========================  =====  ===========================================================================
runtime                   exact  what it does
========================  =====  ===========================================================================
``eager``                 yes    the network as trained, fp32 PyTorch (the reference)
``folded``                yes    a copy with every convolution + batch norm folded into one convolution
``channels_last``         yes    ``folded``, weights and inputs in channels-last memory order
``onnxruntime``           yes    ``folded`` exported once to ONNX (cached by the weights' digest) and run by
                                 onnxruntime (``CUDAExecutionProvider`` when present, else the CPU one)
``cuda_amp``              opt-in GPU only: ``channels_last`` under fp16 autocast (changes masks slightly)
``bf16``                  opt-in ``folded`` under bfloat16 autocast, CPU or GPU (changes masks: see the docs)
========================  =====  ===========================================================================

"exact" means the masks at threshold 0.5 equal the eager fp32 ones (tests/test_inference_runtime.py).
:class:`InferenceRuntime` wraps the network that the checkpoint loader fills; it prepares the chosen
path once (:meth:`InferenceRuntime.prepare`, called when the evaluator starts, after the weights are
loaded), so a folder of studies uses one prepared network per process.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import threading
from typing import Any

import torch
from torch import nn

from msanet_monai.errors import ConfigError
from msanet_monai.io.atomic import atomic_output

__all__ = ["RUNTIMES", "EXACT_RUNTIMES", "InferenceRuntime", "fold_conv_bn", "weights_digest", "prepared_count"]

logger = logging.getLogger(__name__)

#: every value of ``inference_runtime``
RUNTIMES = ("eager", "folded", "channels_last", "onnxruntime", "cuda_amp", "bf16")
#: runtimes whose masks equal the eager fp32 masks
EXACT_RUNTIMES = ("eager", "folded", "channels_last", "onnxruntime")

_prepared = 0
_prepared_lock = threading.Lock()


def prepared_count() -> int:
    """How many times a network was prepared for inference in this process (one per bundle run)."""
    return _prepared


def fold_conv_bn(network: nn.Module) -> nn.Module:
    """Fold every batch norm that directly follows a convolution into that convolution, in place.

    Our own small walk instead of ``torch.fx.experimental.optimization.fuse``: MSA-Net's forward has
    shape-dependent control flow, which ``torch.fx`` cannot trace. The convolutions are MONAI
    ``Convolution`` blocks (``conv`` then ``adn`` = ``ADN(N, D, A)`` with the norm first), so the pairs
    are found structurally; the arithmetic is torch's ``fuse_conv_bn_eval``. The network must be in
    eval mode (the running statistics are folded). Returns ``network``.
    """
    from monai.networks.blocks import ADN, Convolution

    for module in network.modules():
        if not isinstance(module, Convolution):
            continue
        conv, adn = getattr(module, "conv", None), getattr(module, "adn", None)
        if not isinstance(conv, nn.Conv2d) or not isinstance(adn, ADN) or len(adn) == 0:
            continue
        name, first = next(iter(adn.named_children()))
        if isinstance(first, nn.BatchNorm2d) and first.track_running_stats:
            module.conv = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, first)
            setattr(adn, name, nn.Identity())
    return network


def weights_digest(network: nn.Module) -> str:
    """SHA-256 of the network's state dict (names, shapes, dtypes and values): the ONNX cache key."""
    h = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class InferenceRuntime(nn.Module):
    """The generator run on the chosen runtime: ``(B, 1, H, W)`` scaled counts -> ``(B, 1, H, W)`` probabilities.

    Args:
        network: the generator (filled by the checkpoint loader before :meth:`prepare`).
        runtime: one of :data:`RUNTIMES`.
        cache_dir: folder of the ONNX files (``onnxruntime``); one file per weights digest.
        device: device of the inputs and outputs (default: the network's).

    Raises:
        ConfigError: an unknown runtime, or ``cuda_amp`` without a CUDA device.
    """

    def __init__(
        self, network: nn.Module, runtime: str = "eager", cache_dir: str | os.PathLike | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        runtime = str(runtime)
        if runtime not in RUNTIMES:
            raise ConfigError("inference_runtime", runtime, f"must be one of {', '.join(RUNTIMES)}")
        self.network = network
        self.runtime = runtime
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self._device = torch.device(device) if device is not None else None
        self._fast: nn.Module | None = None
        self._session: Any = None
        self._ready = False
        self.onnx_path: str | None = None

    @property
    def device(self) -> torch.device:
        if self._device is not None:
            return self._device
        p = next(self.network.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def prepare(self) -> None:
        """Build the chosen path from the network's current weights (once; again only after :meth:`reset`)."""
        global _prepared
        if self._ready:
            return
        if self.runtime == "cuda_amp" and self.device.type != "cuda":
            raise ConfigError("inference_runtime", self.runtime, f"needs a CUDA device (device is {self.device})")
        if self.runtime != "eager":
            fast = fold_conv_bn(copy.deepcopy(self.network).eval())
            if self.runtime in ("channels_last", "cuda_amp"):
                fast = fast.to(memory_format=torch.channels_last)
            if self.runtime == "onnxruntime":
                self._session = self._onnx_session(fast)
            else:
                self._fast = fast
        self._ready = True
        with _prepared_lock:
            _prepared += 1
            n = _prepared
        logger.info("inference runtime %s: network prepared (%d time(s) in this process)", self.runtime, n)

    def reset(self) -> None:
        """Forget the prepared path (e.g. after loading other weights)."""
        self._fast, self._session, self._ready = None, None, False

    def _onnx_session(self, fast: nn.Module) -> Any:
        try:
            import onnx  # noqa: F401  (torch.onnx.export needs it)
            import onnxruntime as ort
        except ImportError as error:
            raise ConfigError("inference_runtime", self.runtime,
                              f"needs onnx and onnxruntime ({error.name} is not installed: pip install onnx onnxscript "
                              "onnxruntime; in a checkout of msanet-monai: pip install -e '.[export]')") from error

        digest = weights_digest(self.network)[:16]
        cache_dir = self.cache_dir or os.path.join(os.getcwd(), "models", "onnx_cache")
        os.makedirs(cache_dir, exist_ok=True)
        path = os.path.join(cache_dir, f"msanet_{digest}.onnx")
        if os.path.isfile(path):
            logger.info("onnxruntime: reusing %s", path)
        else:
            logger.info("onnxruntime: exporting the network to %s", path)
            cpu = fast.to("cpu").eval()
            example = torch.zeros(2, 1, 64, 64)
            with atomic_output(path) as tmp, torch.no_grad():
                # the TorchScript exporter: it takes eval-mode control flow as traced and needs no onnxscript
                torch.onnx.export(
                    cpu, (example,), tmp, input_names=["image"], output_names=["prob"], opset_version=17,
                    dynamic_axes={"image": {0: "batch", 2: "rows", 3: "cols"}, "prob": {0: "batch", 2: "rows", 3: "cols"}},
                    dynamo=False,
                )
        self.onnx_path = path
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        return ort.InferenceSession(path, sess_options=options, providers=providers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._ready:
            self.prepare()
        if self.runtime == "eager":
            return self.network(x)
        meta_free = x.as_tensor() if hasattr(x, "as_tensor") else x
        if self._session is not None:
            array = meta_free.detach().to("cpu", torch.float32).contiguous().numpy()
            (out,) = self._session.run(["prob"], {"image": array})
            return torch.from_numpy(out).to(x.device)
        assert self._fast is not None
        if self.runtime in ("channels_last", "cuda_amp"):
            meta_free = meta_free.contiguous(memory_format=torch.channels_last)
        if self.runtime == "cuda_amp":
            with torch.autocast("cuda", dtype=torch.float16):
                return self._fast(meta_free).float().contiguous()
        if self.runtime == "bf16":
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return self._fast(meta_free).float()
        return self._fast(meta_free).contiguous()
