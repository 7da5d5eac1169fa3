"""Infer and train tasks of the MSA-Net MONAI Label app."""
