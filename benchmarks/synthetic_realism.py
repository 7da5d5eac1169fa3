"""Realism of the synthetic scans, measured against the real NEMA NM1 scan (pydicom-data ``JPEG-LL.dcm``).

    python benchmarks/synthetic_realism.py [--simulator planar 3d] [--num-scans 20] [--seed 42]
        [--figure bundle/docs/images/realism.png]

Every figure compares an anterior view with NM1's (NM1 is an anterior view). Per simulator, over
``--num-scans`` patients (min / median / max):

- ``row_r``: Pearson r of the row profile (sum of counts per row) with NM1's, after aligning the top of
  the head and resampling both body lengths to 400 samples (the issue's target: median >= 0.95).
- ``col_r``: the same for the thorax column profile (sum over the 256 rows of the thorax window that
  ``locate_thorax`` finds), over the body's width.
- ``contrast_thorax`` / ``contrast_spine`` / ``contrast_femur``: mean counts on bone over mean counts on
  soft tissue in that region, as a ratio to NM1's value (1 = NM1's contrast; target 0.8-1.2). Bone and
  soft tissue are found the same way in every image, from the counts
  (:func:`~msanet_monai.synthetic.real_background.bone_mask`; soft tissue is body more than 3 px from
  bone and from the hottest spot, :func:`~msanet_monai.synthetic.real_background.hottest_spot`). Regions are bands of the body height from the top of the head: thorax 14-30 %, spine the
  central eighth of the body's width at 14-40 %, femur 50-68 %.
- ``hist_w`` / ``hist_ks``: Wasserstein distance and Kolmogorov-Smirnov statistic between the histograms
  of the counts inside the body (each image's counts divided by its 99.5th percentile inside the body).
- ``nps_soft`` / ``nps_bone``: noise power spectrum distance to NM1's: mean |log10| ratio of the radially
  averaged NPS of the relative fluctuations (counts minus a 2 px Gaussian smoothing, over the local
  mean) in a 24 x 24 soft-tissue window (the most uniform one at 32-45 % of the body height) and a
  12 x 12 window on the thoracic spine; 0 = the same spectrum.
- after each table, what limits ``row_r``: the mean profile's r with NM1, each patient's r with the
  mean, and the samples where the mean differs most from NM1;
- generation time per patient (both views, files not included); and, as before, total counts (M),
  maximum, % zero pixels and ``crop_err``: where ``locate_thorax`` puts the thorax window minus the
  simulator's own thorax box (rows).

The 3d / planar ratio of the median histogram distances ends the table (the issue's target: <= 0.5).
``--figure`` saves NM1 beside the anterior and posterior views of four simulated patients per
simulator, every view divided by its own 99.5th percentile inside the body and shown at one window
(0 to 1.2), inverted grey scale as bone scans are read.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from scipy import ndimage, stats

from msanet_monai.synthetic import SIMULATORS, simulate_patient
from msanet_monai.synthetic.real_background import bone_mask, hottest_spot
from msanet_monai.transforms.thorax import locate_thorax

PROFILE_SAMPLES = 400
REGIONS = {"thorax": (0.14, 0.30, None), "spine": (0.14, 0.40, 1 / 16), "femur": (0.50, 0.68, None)}


def _extent(profile: np.ndarray) -> tuple[int, int]:
    """First and one-past-last index where the (smoothed) profile is above 2 % of its maximum."""
    idx = np.nonzero(ndimage.uniform_filter1d(profile, 9) > 0.02 * profile.max())[0]
    return int(idx[0]), int(idx[-1]) + 1


def _resampled(profile: np.ndarray) -> np.ndarray:
    a, b = _extent(profile)
    return np.interp(np.linspace(0, 1, PROFILE_SAMPLES), np.linspace(0, 1, b - a), profile[a:b])


def _body(counts: np.ndarray) -> np.ndarray:
    smooth = ndimage.gaussian_filter(counts, 1.5)
    return smooth > 0.1 * np.percentile(smooth[smooth > 0], 99)


def _normalised_body_counts(counts: np.ndarray) -> np.ndarray:
    values = counts[_body(counts)]
    return values / max(float(np.percentile(values, 99.5)), 1e-6)


def _nps(window: np.ndarray) -> np.ndarray:
    """Radially averaged NPS (4 frequency bands) of the window's relative fluctuations."""
    mean = ndimage.gaussian_filter(window, 2.0)
    rel = (window - mean) / max(float(mean.mean()), 1e-6)
    rel = rel - rel.mean()
    power = np.abs(np.fft.fftshift(np.fft.fft2(rel))) ** 2 / rel.size
    n = window.shape[0]
    yy, xx = np.mgrid[:n, :n] - n // 2
    radius = np.hypot(yy, xx) / (n / 2)  # 1 = Nyquist
    bands = np.linspace(0.1, 1.0, 5)
    return np.array([power[(radius >= lo) & (radius < hi)].mean() for lo, hi in zip(bands[:-1], bands[1:])])


def _windows(counts: np.ndarray, top: int, height: int, centre: int) -> dict[str, np.ndarray]:
    """A uniform soft-tissue window (24 x 24) and one on the thoracic spine (12 x 12)."""
    body = _body(counts)
    smooth = ndimage.gaussian_filter(counts, 3.0)
    best, soft = np.inf, None
    for r in range(top + int(0.32 * height), top + int(0.45 * height) - 24, 4):
        for c in range(0, counts.shape[1] - 24, 4):
            if not body[r:r + 24, c:c + 24].all():
                continue
            s = smooth[r:r + 24, c:c + 24]
            score = float(s.std() / max(s.mean(), 1e-6))
            if score < best:
                best, soft = score, counts[r:r + 24, c:c + 24]
    r = top + int(0.22 * height)
    strip = smooth[r:r + 12, max(centre - 15, 0):centre + 15].sum(axis=0)
    c = max(centre - 15, 0) + int(np.argmax(strip)) - 6
    return {"soft": soft if soft is not None else counts[r:r + 24, centre - 12:centre + 12],
            "bone": counts[r:r + 12, c:c + 12]}


def measure(counts: np.ndarray) -> dict:
    """The per-image measurements (profiles, contrasts, body histogram values, NPS) of one anterior view."""
    counts = counts.astype(np.float64)
    rows_profile = counts.sum(axis=1)
    top, bottom = _extent(rows_profile)
    height = bottom - top
    r0, _, r1, _ = locate_thorax(counts)
    col_profile = counts[r0:r1].sum(axis=0)
    body = _body(counts)
    bone = bone_mask(counts)
    # the hottest spot (bladder, or a hot lesion on the spine or sternum) is left out of bone by bone_mask;
    # it is not soft tissue either, and counted as such it swamps the soft-tissue mean of its region
    soft = body & ~ndimage.binary_dilation(bone | hottest_spot(counts), iterations=3)
    cols = np.nonzero(body.any(axis=0))[0]
    centre = int(round(np.average(np.arange(counts.shape[1]), weights=counts[top:top + int(0.4 * height)].sum(axis=0))))
    contrast = {}
    for name, (lo, hi, half_width) in REGIONS.items():
        region = np.zeros_like(body)
        a, b = top + int(lo * height), top + int(hi * height)
        if half_width is None:
            region[a:b] = True
        else:
            w = max(2, int(round(half_width * (cols[-1] - cols[0] + 1))))
            region[a:b, max(centre - w, 0):centre + w] = True
        on_bone, on_soft = counts[region & bone], counts[region & soft]
        contrast[name] = (float(on_bone.mean() / max(on_soft.mean(), 1e-6))
                          if on_bone.size > 10 and on_soft.size > 10 else np.nan)
    return {"rows": _resampled(rows_profile), "cols": _resampled(col_profile), "contrast": contrast,
            "hist": _normalised_body_counts(counts), "nps": {k: _nps(w) for k, w in _windows(counts, top, height, centre).items()}}


def compare(sim: dict, ref: dict) -> dict:
    figures = {
        "row_r": float(np.corrcoef(sim["rows"], ref["rows"])[0, 1]),
        "col_r": float(np.corrcoef(sim["cols"], ref["cols"])[0, 1]),
        "hist_w": float(stats.wasserstein_distance(sim["hist"], ref["hist"])),
        "hist_ks": float(stats.ks_2samp(sim["hist"], ref["hist"]).statistic),
    }
    for name in REGIONS:
        figures[f"contrast_{name}"] = sim["contrast"][name] / ref["contrast"][name]
    for name in ("soft", "bone"):
        figures[f"nps_{name}"] = float(np.mean(np.abs(np.log10(sim["nps"][name] / ref["nps"][name]))))
    return figures


def row_profile_breakdown(profiles: list[np.ndarray], nm1: np.ndarray, segment: int = 20) -> str:
    """What limits ``row_r``: the mean profile's r with NM1 (the systematic part), each patient's r with
    that mean (the spread between patients), and the three segments (of ``segment`` samples, profiles
    normalised to mean 1) where the mean differs most from NM1."""
    mean = np.mean(profiles, axis=0)
    spread = float(np.median([np.corrcoef(p, mean)[0, 1] for p in profiles]))
    diffs = [(a, float((mean[a:a + segment] - nm1[a:a + segment]).mean())) for a in range(0, len(mean), segment)]
    worst = sorted(diffs, key=lambda d: -abs(d[1]))[:3]
    return (f"row profile: mean of the patients vs NM1 r = {np.corrcoef(mean, nm1)[0, 1]:.3f}; each patient vs that mean "
            f"median r = {spread:.3f}; largest differences (simulated - NM1, profiles at mean 1): "
            + ", ".join(f"samples {a}-{a + segment} {d:+.2f}" for a, d in worst))


COLUMNS = ("row_r", "col_r", "contrast_thorax", "contrast_spine", "contrast_femur", "hist_w", "hist_ks", "nps_soft",
           "nps_bone", "total_M", "max", "zero_%", "crop_err")


def _display(counts: np.ndarray) -> np.ndarray:
    counts = counts.astype(np.float64)
    return counts / max(float(np.percentile(counts[_body(counts)], 99.5)), 1e-6)


def save_figure(path: str, nm1: np.ndarray, scans: dict[str, list]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 1 + 2 * max(len(v) for v in scans.values())
    fig, axes = plt.subplots(len(scans), n, figsize=(1.25 * n, 4.9 * len(scans)), squeeze=False)
    for row, (simulator, patients) in zip(axes, scans.items()):
        panels = [("NM1 (real)\nanterior", nm1)]
        for scan in patients:
            panels += [(f"{simulator} {scan.patient_id}\nanterior", scan.counts["anterior"]),
                       (f"{simulator} {scan.patient_id}\nposterior", scan.counts["posterior"])]
        for ax, (title, image) in zip(row, panels):
            ax.imshow(_display(image), cmap="gray_r", vmin=0.0, vmax=1.2, interpolation="nearest", aspect="equal")
            ax.set_title(title, fontsize=6)
            ax.axis("off")
    fig.suptitle("NM1 and simulated patients; each view / its 99.5th percentile in the body, window 0-1.2", fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simulator", nargs="+", default=["planar", "3d"], choices=SIMULATORS)
    parser.add_argument("--num-scans", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--figure", default=None, help="save NM1 and 4 simulated patients per simulator here (PNG)")
    args = parser.parse_args()

    nm1 = pydicom.dcmread(get_testdata_file("JPEG-LL.dcm")).pixel_array.astype(np.float64)
    ref = measure(nm1)
    print(f"NM1: total {nm1.sum() / 1e6:.3f} M counts, max {nm1.max():.0f}, {100 * (nm1 == 0).mean():.1f} % zero pixels; "
          "contrast bone / soft tissue " + ", ".join(f"{k} {v:.2f}" for k, v in ref["contrast"].items()))
    medians, shown = {}, {}
    header = f"{'simulator':9s} {'':6s} " + " ".join(f"{c:>{max(len(c), 6)}s}" for c in COLUMNS)
    for simulator in args.simulator:
        rows, seconds, shown[simulator], profiles = [], [], [], []
        for index in range(1, args.num_scans + 1):
            start = time.perf_counter()
            scan = simulate_patient(args.seed, index, simulator=simulator)
            seconds.append(time.perf_counter() - start)
            anterior = scan.counts["anterior"]
            measured = measure(anterior)
            profiles.append(measured["rows"] / measured["rows"].mean())
            rows.append({**compare(measured, ref), "total_M": anterior.sum() / 1e6, "max": anterior.max(),
                         "zero_%": 100 * float((anterior == 0).mean()),
                         "crop_err": locate_thorax(anterior.astype(np.float64))[0] - scan.thorax_box[0]})
            if len(shown[simulator]) < 4:
                shown[simulator].append(scan)
        table = {c: np.array([r[c] for r in rows]) for c in COLUMNS}
        medians[simulator] = {c: float(np.nanmedian(v)) for c, v in table.items()}
        print(f"\n{simulator}: {args.num_scans} patients (seed {args.seed}); generation {np.median(seconds):.2f} s per "
              f"patient (median; min {min(seconds):.2f}, max {max(seconds):.2f}; both views, no files)")
        print(header)
        for stat, fn in (("min", np.nanmin), ("median", np.nanmedian), ("max", np.nanmax)):
            print(f"{simulator:9s} {stat:6s} " + " ".join(f"{fn(table[c]):{max(len(c), 6)}.3f}" for c in COLUMNS))
        print(row_profile_breakdown(profiles, ref["rows"] / ref["rows"].mean()))
    if "planar" in medians and "3d" in medians:
        print("\nratio 3d / planar of the medians: " + ", ".join(
            f"{c} {medians['3d'][c] / medians['planar'][c]:.2f}" for c in ("hist_w", "hist_ks", "nps_soft", "nps_bone")))
    if args.figure:
        save_figure(args.figure, nm1, shown)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
