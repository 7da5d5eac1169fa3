"""Segmentation loss of MSA-Net: Dice loss averaged over the deep-supervision outputs (paper eq. 4)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from monai.losses import DiceLoss

__all__ = ["DeepSupervisionDiceLoss", "split_outputs"]


def split_outputs(pred: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    """The outputs ``y_i`` of a generator prediction, each ``(B, C, H, W)`` like ``target``.

    Args:
        pred: ``(B, K, C, H, W)`` (K deep-supervision outputs) or ``(B, C, H, W)`` (one output).
        target: ``(B, C, H, W)`` ground truth.

    Raises:
        ValueError: the shapes do not match one of those layouts.
    """
    if target.ndim != 4:
        raise ValueError(f"target must be (B, C, H, W), got {tuple(target.shape)}.")
    if pred.ndim == 5 and pred.shape[:1] + pred.shape[2:] == target.shape:
        return list(pred.unbind(dim=1))
    if pred.ndim == 4 and pred.shape == target.shape:
        return [pred]
    raise ValueError(
        f"prediction {tuple(pred.shape)} does not fit target {tuple(target.shape)}: "
        "expected (B, K, C, H, W) or (B, C, H, W) with the target's B, C, H, W."
    )


class DeepSupervisionDiceLoss(nn.Module):
    """``mean_i (1 - Dice(y_i, gt))`` over the generator outputs, each term a ``monai.losses.DiceLoss``.

    Args:
        sigmoid: apply a sigmoid to the prediction first; ``False`` because MSANet already outputs
            probabilities.
        dice_kwargs: further arguments of ``monai.losses.DiceLoss`` (e.g. ``batch=True`` to pool the
            pixels of the batch, ``smooth_nr`` / ``smooth_dr``, default 1e-5: an empty mask predicted
            empty scores Dice 1).

    Shapes:
        ``pred`` ``(B, K, C, H, W)`` or ``(B, C, H, W)``, ``target`` ``(B, C, H, W)`` in {0, 1} -> scalar.
    """

    def __init__(self, sigmoid: bool = False, **dice_kwargs: Any) -> None:
        super().__init__()
        self.dice = DiceLoss(sigmoid=sigmoid, **dice_kwargs)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        outputs = split_outputs(pred, target)
        return torch.stack([self.dice(y, target) for y in outputs]).mean()
