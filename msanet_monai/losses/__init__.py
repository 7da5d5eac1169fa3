"""Losses of MSA-Net: deep-supervision Dice and SegAN's multi-scale L1 adversarial loss."""

from .adversarial import MultiScaleL1AdversarialLoss
from .deep_supervision_dice import DeepSupervisionDiceLoss, split_outputs

__all__ = ["DeepSupervisionDiceLoss", "MultiScaleL1AdversarialLoss", "split_outputs"]
