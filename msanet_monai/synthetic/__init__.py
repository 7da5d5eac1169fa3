"""Synthetic whole-body SPECT bone scans with bone-metastasis labels (the project's built-in data)."""

from msanet_monai.synthetic.generator import (
    GENERATOR_VERSION,
    SIMULATORS,
    SyntheticScan,
    ensure_dataset,
    generate_dataset,
    simulate_patient,
    split_counts,
)
from msanet_monai.synthetic.real_background import ensure_real_background, generate_real_background, real_background_scans

__all__ = ["GENERATOR_VERSION", "SIMULATORS", "SyntheticScan", "ensure_dataset", "generate_dataset", "simulate_patient",
           "split_counts", "ensure_real_background", "generate_real_background", "real_background_scans"]
