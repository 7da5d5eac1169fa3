"""Generate the synthetic data set: ``python -m msanet_monai.synthetic --out data/synthetic``."""

from __future__ import annotations

import argparse
import json
import logging
import time

from msanet_monai.synthetic.generator import SIMULATORS, ensure_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m msanet_monai.synthetic", description=__doc__)
    parser.add_argument("--out", default="data/synthetic", help="output folder (default data/synthetic)")
    parser.add_argument("--num-patients", type=int, default=171, help="patients, at least 2 (default 171 = 286 views)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--simulator", default="3d", choices=SIMULATORS,
                        help="3d: voxel body imaged with attenuation and blur (default); planar: the first generator")
    parser.add_argument("--force", action="store_true", help="regenerate even if an identical set is there")
    args = parser.parse_args(argv)
    if args.num_patients < 2:  # the split needs a patient on each side
        parser.error(f"--num-patients {args.num_patients}: at least 2 (a training and a test patient)")
    start = time.perf_counter()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = ensure_dataset(args.out, num_patients=args.num_patients, seed=args.seed, force=args.force,
                          simulator=args.simulator)
    with open(path, encoding="utf-8") as f:
        datalist = json.load(f)
    for section in ("training", "test"):
        items = datalist[section]
        patients = {item["patient_id"] for item in items}
        print(f"{section}: {len(items)} images of {len(patients)} patients")
    print(f"datalist: {path} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
