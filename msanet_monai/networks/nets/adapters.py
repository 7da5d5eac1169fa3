"""Adapters that let MONAI's segmentation networks stand in for the MSA-Net generator.

The trainer, the losses and the evaluator of this bundle take the generator output as sigmoid
probabilities: ``(B, C, H, W)``, or ``(B, K, C, H, W)`` with K deep-supervision maps at full size
(index 0 the final map). MONAI's ``BasicUNet``, ``AttentionUnet`` and ``DynUNet`` return logits, and
``DynUNet`` with ``deep_supervision=True`` stacks its (already upsampled) maps in training mode as
``(B, 1 + deep_supr_num, C, H, W)``. :class:`SigmoidOutput` wraps such a network so that it gives the
layout the bundle expects, without copying or changing the network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SigmoidOutput"]


class SigmoidOutput(nn.Module):
    """``sigmoid(network(x))``, with a list or tuple of deep-supervision maps stacked as ``(B, K, C, H, W)``.

    Args:
        network: a segmentation network returning logits: a tensor ``(B, C, H, W)`` or
            ``(B, K, C, H, W)`` (e.g. ``monai.networks.nets.DynUNet`` in training mode), or a sequence of
            ``(B, C, h, w)`` maps (the first the final one), which are resized bilinearly to the first's size.

    Shapes:
        input as the wrapped network's; output ``(B, C, H, W)`` or ``(B, K, C, H, W)`` in [0, 1].

    The weights are those of ``network`` under the prefix ``network.`` in the ``state_dict``.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x)
        if isinstance(out, Sequence) and not isinstance(out, torch.Tensor):
            size = out[0].shape[2:]
            out = torch.stack([o if o.shape[2:] == size else F.interpolate(o, size=size, mode="bilinear") for o in out], 1)
        return torch.sigmoid(out)
