"""Thorax-crop inference time and peak memory per scan: MSA-Net against a MONAI U-Net baseline.

One scan is a dual-head whole-body study, so one forward pass takes the two 256 x 256 thorax crops
(anterior and posterior view) as a batch of 2. Both networks are timed in the same run, each in its
own child process for memory (so that one's high-water mark does not hide the other's), and timed
in turns in one process (so that both see the same load on a shared machine).

    python benchmarks/inference_speed.py                  # CPU, full-size MSA-Net vs classic U-Net
    python benchmarks/inference_speed.py --device cuda    # GPU: peak memory from the CUDA allocator
    python benchmarks/inference_speed.py --repeats 10 --views 1

Printed per network: parameters (M), median and min seconds per scan, peak memory per scan (MB), and
the MSA-Net / baseline ratios. On CPU the peak memory is the rise of the process' maximum resident set
size during inference (``resource.getrusage``), since PyTorch has no CPU allocator statistics; on CUDA it
is ``torch.cuda.max_memory_allocated`` minus the memory held before the first forward pass.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time
from typing import Any

import torch
from monai.networks.nets import BasicUNet
from monai.utils import set_determinism

from msanet_monai.networks.nets import MSANet

# the classic U-Net widths (Ronneberger et al.), the baseline the MSA-Net paper compares against
BASELINE_FEATURES = (64, 128, 256, 512, 1024, 64)
PAPER_CHANNELS = (64, 128, 256, 512, 512)


def build(name: str, msanet_channels: tuple[int, ...]) -> torch.nn.Module:
    """The network to time, in eval mode (MSA-Net then returns only its final map, (B, 1, H, W))."""
    if name == "MSANet":
        return MSANet(in_channels=1, out_channels=1, channels=msanet_channels, deep_supervision=True).eval()
    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=BASELINE_FEATURES).eval()


def peak_memory(name: str, args: dict[str, Any], queue: mp.Queue) -> None:
    """Run in a child process: peak memory (MB) of one forward pass on one scan."""
    device = torch.device(args["device"])
    net = build(name, tuple(args["msanet_channels"])).to(device)
    scan = torch.rand(args["views"], 1, args["size"], args["size"], device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        held = torch.cuda.memory_allocated(device)
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with torch.inference_mode():
        net(scan)
    if device.type == "cuda":
        queue.put((torch.cuda.max_memory_allocated(device) - held) / 2**20)
    else:
        queue.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before_kb) / 1024)


def seconds_per_scan(nets: dict[str, torch.nn.Module], scan: torch.Tensor, warmup: int, repeats: int) -> dict:
    """Time the networks in turns (A, B, A, B, ...) so that both see the same load on a shared machine."""
    device = scan.device

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times: dict[str, list[float]] = {name: [] for name in nets}
    with torch.inference_mode():
        for i in range(warmup + repeats):
            for name, net in nets.items():
                sync()
                start = time.perf_counter()
                out = net(scan)
                sync()
                if i >= warmup:
                    times[name].append(time.perf_counter() - start)
                assert out.shape == (scan.shape[0], 1, *scan.shape[2:])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cpu (default) or cuda")
    parser.add_argument("--views", type=int, default=2, help="thorax crops per scan, the batch size (default 2)")
    parser.add_argument("--size", type=int, default=256, help="thorax crop side in pixels (default 256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forward passes (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forward passes first (default 1)")
    parser.add_argument("--msanet-channels", type=int, nargs=5, default=list(PAPER_CHANNELS),
                        help="MSA-Net widths per level (default 64 128 256 512 512)")
    args = vars(parser.parse_args())
    if args["device"] == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda given but torch.cuda.is_available() is False")

    names = ("MSANet", "BasicUNet")
    ctx = mp.get_context("spawn")  # a fresh process per network: its own memory high-water mark
    peak_mb = {}
    for name in names:
        queue = ctx.Queue()
        child = ctx.Process(target=peak_memory, args=(name, args, queue))
        child.start()
        peak_mb[name] = queue.get()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"{name} memory measurement failed (exit code {child.exitcode})")

    set_determinism(seed=42)
    device = torch.device(args["device"])
    nets = {name: build(name, tuple(args["msanet_channels"])).to(device) for name in names}
    scan = torch.rand(args["views"], 1, args["size"], args["size"], device=device)  # the thorax crops of one scan
    times = seconds_per_scan(nets, scan, args["warmup"], args["repeats"])
    results = {
        name: {"params_m": sum(p.numel() for p in nets[name].parameters()) / 1e6,
               "median_s": statistics.median(times[name]), "min_s": min(times[name]), "peak_mb": peak_mb[name]}
        for name in names
    }

    ms, base = results["MSANet"], results["BasicUNet"]
    print(f"device {args['device']}, {torch.get_num_threads()} torch threads, one scan = {args['views']} thorax crop(s) of "
          f"{args['size']} x {args['size']}, {args['repeats']} timed passes after {args['warmup']} warm-up")
    print(f"{'network':<56}{'params (M)':>11}{'median s/scan':>15}{'min s/scan':>12}{'peak MB/scan':>14}")
    labels = {"MSANet": f"MSANet channels={tuple(args['msanet_channels'])}",
              "BasicUNet": f"MONAI BasicUNet features={BASELINE_FEATURES}"}
    for name in ("MSANet", "BasicUNet"):
        r = results[name]
        print(f"{labels[name]:<56}{r['params_m']:>11.2f}{r['median_s']:>15.3f}{r['min_s']:>12.3f}{r['peak_mb']:>14.0f}")
    print(f"ratio MSANet / BasicUNet: time {ms['median_s'] / base['median_s']:.2f}x (median), "
          f"{ms['min_s'] / base['min_s']:.2f}x (min), "
          f"peak memory {ms['peak_mb'] / max(base['peak_mb'], 1e-9):.2f}x, parameters {ms['params_m'] / base['params_m']:.2f}x")


if __name__ == "__main__":
    main()
