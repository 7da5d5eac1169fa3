"""Adversarial loss of MSA-Net: SegAN's multi-scale L1 distance, averaged over the outputs (paper eqs. 5, 6)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .deep_supervision_dice import split_outputs

__all__ = ["MultiScaleL1AdversarialLoss"]


class MultiScaleL1AdversarialLoss(nn.Module):
    """``mean_i mean |D(y_i * image) - D(gt * image)|`` with ``D`` the critic's multi-scale feature vector.

    MONAI has no loss of this kind (its GAN losses compare a discriminator's output with real/fake
    labels, not two feature vectors), hence this module. The generator minimises the value; the critic
    maximises it, i.e. minimises ``L(D) = 1 - value`` (eq. 6), which the trainer forms.

    The critic is called once on the ground-truth-masked image and once per output, each as its own
    batch, as SegAN does: batch norm statistics of one call are not mixed with the other's.

    Shapes:
        ``critic``: ``(B, C, H, W) -> (B, F)``; ``pred`` ``(B, K, 1, H, W)`` or ``(B, 1, H, W)``
        probabilities; ``target`` ``(B, 1, H, W)``; ``image`` ``(B, C, H, W)`` -> scalar.
    """

    def forward(
        self, critic: nn.Module, pred: torch.Tensor, target: torch.Tensor, image: torch.Tensor
    ) -> torch.Tensor:
        outputs = split_outputs(pred, target)
        if image.ndim != 4 or image.shape[0] != target.shape[0] or image.shape[2:] != target.shape[2:]:
            raise ValueError(f"image {tuple(image.shape)} does not match target {tuple(target.shape)} in B, H, W.")
        real = critic(target * image)
        return torch.stack([(critic(y * image) - real).abs().mean() for y in outputs]).mean()
