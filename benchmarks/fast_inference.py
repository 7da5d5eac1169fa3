"""Inference runtimes against the machine's ceiling, the bundle command's time split, and one training iteration.

Printed in one run, for the full (paper) width or the quick width:

1. the ceiling: a large fp32 matmul and the heaviest 3x3 convolutions of the network's own shapes
   (GFLOP/s); the best convolution rate is "the ceiling";
2. every ``inference_runtime`` (msanet_monai/inference/runtime.py) on one study (the two 256 x 256
   thorax crops of a dual-head file built from the NEMA NM1 scan, as one batch of 2): seconds per
   study (median and min over ``--repeats``, runtimes timed in turns), GFLOP/s (FLOPs counted by
   torch's FlopCounterMode) and its fraction of the ceiling, and mask agreement with eager at 0.5;
3. the whole bundle command (``python -m monai.bundle run`` with configs/inference.json) on a folder
   of ``--studies`` studies for ``--bundle-runtimes``: seconds per study split into start-up (process
   start, imports, config, weights, runtime preparation), reading, preprocessing, network,
   postprocessing, writing (from the run's ``inference timing:`` log line, msanet_monai/inference/timing.py),
   and the command's peak resident memory;
4. one adversarial training iteration of the generator + critic (AdversarialSegmentationTrainer's
   own iteration) beside a supervised iteration of a MONAI BasicUNet of about the generator's FLOPs,
   and the ratio of their seconds per training FLOP;
5. if the fastest exact runtime is below 0.70 of the ceiling, a profile of its top operations.

The last line names the fastest exact runtime: ``<runtime>: 0.NN of ceiling``.

    python benchmarks/fast_inference.py --width quick --repeats 3
    python benchmarks/fast_inference.py --width full --repeats 2

Weights are random (seed 42) with the final 1x1 convolution stretched and centred on the study, so
that the masks hold lesion and background pixels (the speed does not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monai.bundle import ConfigParser  # noqa: E402
from monai.utils import set_determinism  # noqa: E402

from msanet_monai.inference import EXACT_RUNTIMES, RUNTIMES, InferenceRuntime  # noqa: E402
from msanet_monai.inference.timing import TIMING_PREFIX  # noqa: E402
from msanet_monai.networks.nets import MSANet  # noqa: E402

CONFIGS = ROOT / "bundle" / "configs"
_QUICK = json.loads((CONFIGS / "quick.json").read_text())
# generator and critic widths: train.json's (the paper's) and quick.json's (the README's CPU setting)
WIDTHS = {"full": ([64, 128, 256, 512, 512], [64, 128, 256, 512, 512, 512]),
          "quick": (_QUICK["generator_channels"], _QUICK["critic_channels"])}
# run a module as __main__ and print the process's peak resident memory at exit
PEAK_WRAPPER = ("import atexit, resource, runpy, sys; "
                "atexit.register(lambda: print('PEAK_RSS_MB=%.1f' % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "
                "file=sys.stderr, flush=True)); sys.argv = ['monai.bundle'] + sys.argv[1:]; "
                "runpy.run_module('monai.bundle', run_name='__main__')")


def make_study(folder: Path) -> str:
    """A dual-head NM DICOM file: NM1 as the anterior frame, NM1 mirrored as the posterior frame."""
    import pydicom
    from pydicom.data import get_testdata_file

    from msanet_monai.io.nm_dicom import write_whole_body_nm

    anterior = pydicom.dcmread(get_testdata_file("JPEG-LL.dcm")).pixel_array.astype(np.uint16)
    path = folder / "study.dcm"
    write_whole_body_nm(str(path), {"anterior": anterior, "posterior": np.ascontiguousarray(anterior[:, ::-1])},
                        patient_id="BENCH01")
    return str(path)


def study_crops(study: str) -> torch.Tensor:
    """The study's two preprocessed thorax crops, (2, 1, 256, 256), as the bundle's preprocessing makes them."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser.update({"input_files": [study]})
    pre = parser.get_parsed_content("preprocessing")
    return torch.stack([pre({"image": study, "view": v})["image"].as_tensor() for v in ("anterior", "posterior")])


def make_network(channels: list[int], crops: torch.Tensor) -> MSANet:
    torch.manual_seed(42)
    net = MSANet(channels=channels).eval()
    seen = {}
    handle = net.head.register_forward_hook(lambda m, i, o: seen.setdefault("logit", o))
    with torch.no_grad():
        net(crops)
    handle.remove()
    with torch.no_grad():
        net.head.conv.weight *= 200
        net.head.conv.bias.copy_(net.head.conv.bias * 200 - seen["logit"].median() * 200)
    return net


def flops_of(fn) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def best_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ceiling(net: MSANet, crops: torch.Tensor, repeats: int) -> tuple[float, list[str]]:
    """(best 3x3 conv GFLOP/s, printed lines): a 2048^3 matmul and the 3 heaviest 3x3 conv shapes."""
    lines = []
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    t = best_time(lambda: a @ b, repeats + 2)
    lines.append(f"  matmul 2048x2048x2048 fp32: {2 * 2048 ** 3 / t / 1e9:8.1f} GFLOP/s")
    shapes = {}

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d) and module.kernel_size == (3, 3):
            x = inputs[0]
            key = (tuple(x.shape), tuple(module.weight.shape), module.stride, module.padding, module.dilation)
            shapes[key] = 2 * output.numel() * module.weight[0].numel()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(crops)
    for h in handles:
        h.remove()
    best = 0.0
    with torch.no_grad():
        for (xs, ws, stride, pad, dil), flops in sorted(shapes.items(), key=lambda kv: -kv[1])[:3]:
            rates = []
            for fmt in (torch.contiguous_format, torch.channels_last):  # the better memory order counts
                x, w = torch.randn(xs).to(memory_format=fmt), torch.randn(ws).to(memory_format=fmt)
                t = best_time(lambda: F.conv2d(x, w, None, stride, pad, dil), repeats + 2)
                rates.append(flops / t / 1e9)
            best = max(best, *rates)
            lines.append(f"  conv3x3 in {list(xs)} out {ws[0]} dilation {dil[0]}: {rates[0]:8.1f} GFLOP/s NCHW, "
                         f"{rates[1]:8.1f} channels_last")
    return best, lines


def time_runtimes(net, crops, runtimes, repeats, cache_dir) -> dict:
    """Per runtime: preparation seconds, median/min seconds per study (runtimes in turns), masks."""
    paths = {}
    for name in runtimes:
        rt = InferenceRuntime(net, name, cache_dir=cache_dir).eval()
        start = time.perf_counter()
        rt.prepare()
        paths[name] = {"runtime": rt, "prepare": time.perf_counter() - start, "times": []}
    with torch.no_grad():
        for name, p in paths.items():  # warm-up, and the probabilities
            p["prob"] = p["runtime"](crops).float()
        for _ in range(repeats):
            for p in paths.values():
                start = time.perf_counter()
                p["runtime"](crops)
                p["times"].append(time.perf_counter() - start)
    return paths


def run_bundle(runtime: str, folder: Path, root: Path, ckpt: str, channels: list[int]) -> dict:
    cmd = [sys.executable, "-c", PEAK_WRAPPER, "run", "--config_file", str(CONFIGS / "inference.json"),
           "--meta_file", str(CONFIGS / "metadata.json"), "--logging_file", str(CONFIGS / "logging.conf"),
           "--bundle_root", str(root), "--ckpt_path", ckpt, "--input_dir", str(folder),
           "--generator_channels", json.dumps(channels), "--inference_runtime", runtime,
           "--output_dir", str(root / f"out_{runtime}")]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT / "bundle", capture_output=True, text=True, env=env)
    total = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"bundle run ({runtime}) failed:\n{log[-3000:]}")
    timing = json.loads(log.split(TIMING_PREFIX, 1)[1].splitlines()[0])
    peak = float(log.split("PEAK_RSS_MB=", 1)[1].split()[0])
    return {"total": total, "timing": timing, "peak_mb": peak, "log": log}


def training_ratio(gen_channels, critic_channels, batch: int, size: int, repeats: int) -> list[str]:
    """One adversarial iteration of MSA-Net + critic beside a BasicUNet supervised iteration of similar FLOPs."""
    from monai.losses import DiceLoss
    from monai.networks.nets import BasicUNet

    from msanet_monai.engines import AdversarialSegmentationTrainer
    from msanet_monai.losses import DeepSupervisionDiceLoss, MultiScaleL1AdversarialLoss
    from msanet_monai.networks.nets import SegANCritic

    torch.manual_seed(42)
    image = torch.rand(batch, 1, size, size)
    label = (torch.rand(batch, 1, size, size) > 0.9).float()
    # BasicUNet features (f, 2f, 4f, 8f, 16f, f) with forward FLOPs nearest the generator's (counted on meta tensors)
    with torch.device("meta"):
        small = torch.empty(1, 1, 64, 64)
        target = flops_of(lambda: MSANet(channels=gen_channels).eval()(small))
        best_f = min(range(2, 129), key=lambda f: abs(flops_of(
            lambda: BasicUNet(2, 1, 1, features=(f, 2 * f, 4 * f, 8 * f, 16 * f, f))(small)) - target))
    gen = MSANet(channels=gen_channels, deep_supervision=True)
    critic = SegANCritic(channels=critic_channels)
    trainer = AdversarialSegmentationTrainer(
        device="cpu", max_epochs=1, train_data_loader=[{"image": image, "label": label}], network=gen,
        optimizer=torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.5, 0.999)), loss_function=DeepSupervisionDiceLoss(),
        critic=critic, critic_optimizer=torch.optim.Adam(critic.parameters(), 2e-4, betas=(0.5, 0.999)),
        adversarial_loss_function=MultiScaleL1AdversarialLoss(), decollate=False)
    trainer.state.iteration, trainer.state.epoch = 1, 1
    batchdata = {"image": image, "label": label}

    def adversarial():
        gen.train(), critic.train()
        trainer._iteration(trainer, batchdata)

    unet = BasicUNet(2, 1, 1, features=(best_f, 2 * best_f, 4 * best_f, 8 * best_f, 16 * best_f, best_f))
    opt = torch.optim.Adam(unet.parameters(), 2e-4)
    dice = DiceLoss(sigmoid=True)

    def supervised():
        unet.train()
        opt.zero_grad()
        dice(unet(image), label).backward()
        opt.step()

    f_adv, f_sup = flops_of(adversarial), flops_of(supervised)
    t_adv, t_sup = [], []
    for _ in range(repeats):  # in turns; the FLOP counting runs above were the warm-up
        for fn, ts in ((adversarial, t_adv), (supervised, t_sup)):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    a, s = min(t_adv), min(t_sup)
    return [
        f"  batch {batch} x {size}x{size}; BasicUNet features {best_f}..{16 * best_f} "
        f"(forward {flops_of(lambda: unet.eval()(image[:1])) / 1e9:.1f} vs MSA-Net {target * (size / 64) ** 2 / 1e9:.1f} GFLOPs per crop)",
        f"  MSA-Net adversarial iteration : {a:7.2f} s (min of {repeats}), {f_adv / 1e9:8.1f} GFLOPs, {f_adv / a / 1e9:6.1f} GFLOP/s",
        f"  BasicUNet supervised iteration: {s:7.2f} s (min of {repeats}), {f_sup / 1e9:8.1f} GFLOPs, {f_sup / s / 1e9:6.1f} GFLOP/s",
        f"  seconds per training FLOP, MSA-Net adversarial / BasicUNet: {(a / f_adv) / (s / f_sup):.2f}",
    ]


def profile_lines(rt: InferenceRuntime, crops: torch.Tensor, top: int = 12) -> list[str]:
    """Top operations of one forward: torch.profiler for PyTorch runtimes, onnxruntime's profiler for ONNX."""
    if rt.runtime == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.enable_profiling = True
        options.intra_op_num_threads = torch.get_num_threads()
        options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
        session = ort.InferenceSession(rt.onnx_path, sess_options=options, providers=["CPUExecutionProvider"])
        session.run(None, {"image": crops.numpy()})
        session.run(None, {"image": crops.numpy()})
        events = json.load(open(session.end_profiling()))
        per_op: dict[str, float] = {}
        for e in events:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                op = e.get("args", {}).get("op_name", "?")
                per_op[op] = per_op.get(op, 0.0) + e["dur"] / 2e6  # 2 runs, us -> s per run
        total = sum(per_op.values()) or 1.0
        return [f"  {op:24s} {s:8.3f} s  {100 * s / total:5.1f} %" for op, s in sorted(per_op.items(), key=lambda kv: -kv[1])[:top]]
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        rt(crops)
    return ["  " + line for line in prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top).splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", choices=sorted(WIDTHS), default="full")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--studies", type=int, default=2, help="studies in the bundle command's input folder")
    parser.add_argument("--bundle-runtimes", default="eager,fastest", help="comma list; 'fastest' = fastest exact runtime")
    parser.add_argument("--train-batch", type=int, default=2)
    parser.add_argument("--train-repeats", type=int, default=1)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-bundle", action="store_true")
    args = parser.parse_args()
    set_determinism(42)
    gen_channels, critic_channels = WIDTHS[args.width]
    work = Path(tempfile.mkdtemp(prefix="fast_inference_"))
    try:
        study = make_study(work)
        crops = study_crops(study)
        net = make_network(gen_channels, crops)
        flops = flops_of(lambda: net(crops))
        print(f"width {args.width} {gen_channels}; {torch.get_num_threads()} threads; torch {torch.__version__}; "
              f"one study = 2 crops {list(crops.shape[2:])}: {flops / 1e9:.1f} GFLOPs")
        top, lines = ceiling(net, crops, args.repeats)
        print("ceiling (best of repeats):")
        print("\n".join(lines))
        print(f"  conv ceiling: {top:.1f} GFLOP/s")

        runtimes = [r for r in RUNTIMES if r != "cuda_amp" or torch.cuda.is_available()]
        paths = time_runtimes(net, crops, runtimes, args.repeats, work / "onnx_cache")
        ref = paths["eager"]["prob"] > 0.5
        print(f"runtimes, one study per call (min/median of {args.repeats}, in turns):")
        print(f"  {'runtime':14s} {'exact':5s} {'prepare s':>9s} {'min s':>7s} {'median s':>8s} {'GFLOP/s':>8s} "
              f"{'of ceiling':>10s} {'pixels differing':>16s} {'max |dp|':>9s}")
        for name, p in paths.items():
            t_min, t_med = min(p["times"]), statistics.median(p["times"])
            diff = int(((p["prob"] > 0.5) != ref).sum())
            p["fraction"] = flops / t_min / 1e9 / top
            print(f"  {name:14s} {'yes' if name in EXACT_RUNTIMES else 'no':5s} {p['prepare']:9.2f} {t_min:7.3f} "
                  f"{t_med:8.3f} {flops / t_min / 1e9:8.1f} {p['fraction']:10.2f} {diff:9d} of {ref.numel()} "
                  f"{(p['prob'] - paths['eager']['prob']).abs().max().item():9.2e}")
        print(f"  eager mask: {int(ref.sum())} lesion pixels of {ref.numel()}")
        exact = [n for n in paths if n in EXACT_RUNTIMES and int(((paths[n]["prob"] > 0.5) != ref).sum()) == 0]
        fastest = min(exact, key=lambda n: min(paths[n]["times"]))

        if not args.skip_bundle:
            folder = work / "studies"
            folder.mkdir()
            for i in range(args.studies):
                shutil.copy(study, folder / f"study{i:03d}.dcm")
            ckpt = work / "model.pt"
            torch.save(net.state_dict(), ckpt)
            print(f"bundle command on {args.studies} studies (seconds per study; start-up once per run):")
            print(f"  {'runtime':14s} {'total':>7s} {'start-up':>8s} {'reading':>8s} {'preproc':>8s} {'network':>8s} "
                  f"{'postproc':>8s} {'writing':>8s} {'peak MB':>8s}")
            for name in dict.fromkeys(fastest if r == "fastest" else r for r in args.bundle_runtimes.split(",")):
                res = run_bundle(name, folder, work, str(ckpt), gen_channels)
                t = res["timing"]
                n = max(1, t["studies"])
                startup = res["total"] - t["wall"] + t["prepare"]
                print(f"  {name:14s} {res['total'] / n:7.2f} {startup:8.2f} {t['reading'] / n:8.2f} "
                      f"{t['preprocessing'] / n:8.2f} {t['network'] / n:8.2f} {t['postprocessing'] / n:8.2f} "
                      f"{t['writing'] / n:8.2f} {res['peak_mb']:8.0f}")
            print("  (reading, preprocessing and writing run in background threads, overlapping the network)")

        if not args.skip_training:
            print("training, one iteration:")
            print("\n".join(training_ratio(gen_channels, critic_channels, args.train_batch, crops.shape[-1], args.train_repeats)))

        fraction = paths[fastest]["fraction"]
        if fraction < 0.70:
            print(f"profile of {fastest} (below 0.70 of the ceiling), top operations of one study:")
            print("\n".join(profile_lines(paths[fastest]["runtime"], crops)))
        print(f"{fastest}: {fraction:.2f} of ceiling")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
