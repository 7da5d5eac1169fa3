"""MSA-Net for bone-metastasis segmentation in whole-body SPECT bone scans, built on MONAI."""

__version__ = "0.1.0"
