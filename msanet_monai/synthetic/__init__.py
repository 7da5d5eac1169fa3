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

__all__ = ["GENERATOR_VERSION", "SIMULATORS", "SyntheticScan", "ensure_dataset", "generate_dataset", "simulate_patient",
           "split_counts"]
