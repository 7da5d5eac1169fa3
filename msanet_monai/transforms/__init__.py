"""MONAI transforms for whole-body bone scans: loading, count scaling, thorax crop."""

from msanet_monai.transforms.intensity import ScaleCounts, ScaleCountsd
from msanet_monai.transforms.io import LoadBoneScand, LoadLesionMaskd
from msanet_monai.transforms.thorax import ThoraxCropd, locate_thorax

__all__ = ["LoadBoneScand", "LoadLesionMaskd", "ScaleCounts", "ScaleCountsd", "ThoraxCropd", "locate_thorax"]
