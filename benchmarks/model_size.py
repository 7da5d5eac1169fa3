"""Parameters and FLOPs of MSA-Net per block at 256x256, and its training-step speed against MONAI's BasicUNet.

Usage::

    python benchmarks/model_size.py                      # full model (64, 128, 256, 512, 512)
    python benchmarks/model_size.py --channels 8 16 16 32 32 --repeats 5

Prints a Markdown table (one row per encoder/decoder block, the heads, the whole generator and the
SegAN critic) with parameters and forward FLOPs for one image, then the median time of a
forward + backward pass of MSANet and of ``monai.networks.nets.BasicUNet`` (default features) on the
same batch, and their ratio. FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on the
meta device (convolutions and matmuls, 2 FLOPs per multiply-add; pooling, interpolation, norms and
activations are not counted).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from monai.networks.nets import BasicUNet
from torch.utils.flop_counter import FlopCounterMode

from msanet_monai.networks.nets import MSANet, SegANCritic

BLOCKS = ["enc1", "enc2", "enc3", "enc4", "enc5", "dec4", "dec3", "dec2", "dec1", "head", "side_heads"]


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def flops_per_module(model: torch.nn.Module, shape: tuple[int, ...]) -> dict[str, int]:
    """Forward FLOPs of ``model`` for an input of ``shape``, by submodule name ("Global" = whole model)."""
    with torch.device("meta"):
        model = model.to("meta")
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty(shape))
    name = type(model).__name__
    return {k.removeprefix(f"{name}."): sum(v.values()) for k, v in counter.get_flop_counts().items()}


def step_time(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward + backward in training mode (one warm-up pass first)."""
    model.train()
    times = []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        out = model(x)
        out.float().mean().backward()
        if i:  # the first pass allocates and picks kernels
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, nargs=5, default=[64, 128, 256, 512, 512])
    parser.add_argument("--critic-channels", type=int, nargs=6, default=[64, 128, 256, 512, 512, 512])
    parser.add_argument("--size", type=int, default=256, help="side of the square crop")
    parser.add_argument("--batch", type=int, default=1, help="batch size of the speed test")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    shape = (1, 1, args.size, args.size)

    net = MSANet(channels=tuple(args.channels)).eval()
    flops = flops_per_module(MSANet(channels=tuple(args.channels)).eval(), shape)
    train_flops = flops_per_module(MSANet(channels=tuple(args.channels)).train(), shape)
    print(f"MSANet channels={tuple(args.channels)}, one {args.size}x{args.size} image, eval mode (final map only)\n")
    print("| block | paper concept | parameters | GFLOPs |")
    print("|---|---|---:|---:|")
    concepts = {"enc1": "CDC", "head": "1x1 conv, final map", "side_heads": "1x1 convs, deep supervision"}
    for name in BLOCKS:
        concept = concepts.get(name, "MSFE (CRAC + RFB)" if name.startswith("enc") else "RMS")
        # side heads run only in training: their FLOPs come from a training-mode pass
        block_flops = (train_flops if name == "side_heads" else flops).get(name, 0)
        print(f"| {name} | {concept} | {_params(getattr(net, name)):,} | {block_flops / 1e9:.3f} |")
    print(f"| **MSANet (eval)** | generator | **{_params(net):,}** | **{flops['Global'] / 1e9:.3f}** |")
    print(f"| MSANet (training, 4 outputs) | generator | {_params(net):,} | {train_flops['Global'] / 1e9:.3f} |")
    critic = SegANCritic(channels=tuple(args.critic_channels))
    critic_flops = flops_per_module(SegANCritic(channels=tuple(args.critic_channels)).eval(), shape)
    print(f"| SegANCritic | discriminator (per call) | {_params(critic):,} | {critic_flops['Global'] / 1e9:.3f} |")
    baseline = BasicUNet(spatial_dims=2, in_channels=1, out_channels=1)
    base_flops = flops_per_module(BasicUNet(spatial_dims=2, in_channels=1, out_channels=1).eval(), shape)
    print(f"| BasicUNet (MONAI default) | baseline | {_params(baseline):,} | {base_flops['Global'] / 1e9:.3f} |")

    x = torch.rand(args.batch, 1, args.size, args.size)
    print(f"\nforward + backward, batch {args.batch} x {args.size}x{args.size}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}:")
    t_msa = step_time(net, x, args.repeats)
    t_base = step_time(baseline, x, args.repeats)
    print(f"  MSANet    {t_msa:.3f} s")
    print(f"  BasicUNet {t_base:.3f} s")
    print(f"  ratio MSANet / BasicUNet = {t_msa / t_base:.2f}")


if __name__ == "__main__":
    main()
