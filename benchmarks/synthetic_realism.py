"""Realism figures of the synthetic scans next to the real NEMA NM1 scan (pydicom-data ``JPEG-LL.dcm``).

    python benchmarks/synthetic_realism.py [--num-scans 20] [--seed 42]

Prints, for NM1 and for each synthetic anterior view: total counts, maximum, fraction of zero pixels,
mean background (pixels far from the body), correlation of the row profile (sum of counts per row)
with NM1's after aligning the head tops and scaling to the same body length, the true thorax box
and where ``locate_thorax`` put it. Ends with min/median/max
and the time to simulate one patient (x 171 for the full set).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from scipy import ndimage

from msanet_monai.synthetic import simulate_patient
from msanet_monai.transforms.thorax import locate_thorax


def _body_rows(profile: np.ndarray) -> tuple[int, int]:
    rows = np.nonzero(profile > 0.02 * profile.max())[0]
    return int(rows[0]), int(rows[-1]) + 1


def figures(counts: np.ndarray, reference_profile: np.ndarray | None) -> dict:
    counts = counts.astype(np.float64)
    profile = counts.sum(axis=1)
    smooth = ndimage.uniform_filter(counts, 15)
    top, bottom = _body_rows(ndimage.uniform_filter1d(profile, 9))
    background = counts[(smooth < 0.6) & (profile[:, None] > 0)]  # far from the body, inside the scan
    result = {
        "total": counts.sum(), "max": counts.max(), "zero": float((counts == 0).mean()),
        "background": float(background.mean()) if background.size else 0.0, "body_rows": (top, bottom),
    }
    if reference_profile is not None:
        # resample both body lengths to 400 samples, compare shapes (Pearson r)
        ref_top, ref_bottom = _body_rows(ndimage.uniform_filter1d(reference_profile, 9))
        grid = np.linspace(0, 1, 400)
        a = np.interp(grid, np.linspace(0, 1, bottom - top), profile[top:bottom])
        b = np.interp(grid, np.linspace(0, 1, ref_bottom - ref_top), reference_profile[ref_top:ref_bottom])
        result["profile_r"] = float(np.corrcoef(a, b)[0, 1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-scans", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    nm1 = pydicom.dcmread(get_testdata_file("JPEG-LL.dcm")).pixel_array.astype(np.float64)
    ref_profile = nm1.sum(axis=1)
    rows = []
    f = figures(nm1, None)
    crop = locate_thorax(nm1)[0]
    print(f"{'scan':10s} {'total':>9s} {'max':>5s} {'zero%':>6s} {'bg':>5s} {'prof_r':>6s} {'true_r0':>7s} {'crop_r0':>7s}")
    print(f"{'NM1':10s} {f['total']:9.0f} {f['max']:5.0f} {100 * f['zero']:6.1f} {f['background']:5.2f} "
          f"{1.0:6.3f} {'~190':>7s} {crop!s:>7s}")
    start = time.perf_counter()
    for index in range(1, args.num_scans + 1):
        scan = simulate_patient(args.seed, index)
        counts = scan.counts["anterior"]
        f = figures(counts, ref_profile)
        crop = locate_thorax(counts)[0]
        f["crop_error"] = crop - scan.thorax_box[0]
        rows.append(f)
        print(f"{scan.patient_id:10s} {f['total']:9.0f} {f['max']:5.0f} {100 * f['zero']:6.1f} "
              f"{f['background']:5.2f} {f['profile_r']:6.3f} {scan.thorax_box[0]:7d} {crop:7d}")
    per_patient = (time.perf_counter() - start) / args.num_scans
    print("\nsynthetic, min / median / max over", args.num_scans, "anterior views:")
    for key, scale, unit in (("total", 1e6, "M counts"), ("max", 1, "counts"), ("zero", 0.01, "% zero pixels"),
                             ("background", 1, "counts/pixel background"), ("profile_r", 1, "row-profile r vs NM1")):
        values = np.array([r[key] for r in rows]) / scale
        print(f"  {unit:26s} {values.min():8.3f} {np.median(values):8.3f} {values.max():8.3f}")
    errors = np.array([r["crop_error"] for r in rows])
    print(f"  locate_thorax - true r0 (rows): mean {errors.mean():+.1f}, max |error| {np.abs(errors).max():.0f}")
    print(f"NM1: total {nm1.sum() / 1e6:.3f} M, max {nm1.max():.0f}")
    print(f"simulation time: {per_patient * 1000:.0f} ms per patient (both views), "
          f"x171 = {171 * per_patient:.1f} s (files not included)")


if __name__ == "__main__":
    main()
