"""Cascade residual atrous convolution (CRAC) module: the CDC cascade with two residual links."""

from __future__ import annotations

import torch.nn as nn

from .rms import RMSBlock

__all__ = ["CRACBlock"]


class CRACBlock(nn.Sequential):
    """Six 3x3 conv-BN-ReLU modules, dilations 1, 2, 4, 1, 2, 4, with residual links 1 -> 3 and 4 -> 6.

    Part of the MSFE block (paper Fig. 4): the output of module 1 is added to the output of module 3,
    and the output of module 4 to the output of module 6, to ease the gradient flow through the cascade.
    Each half (three modules of dilation 1, 2, 4 with a link from the first to the third) is exactly the
    decoder's :class:`RMSBlock`, so the module is built as two of them. The first module maps
    ``in_channels`` to ``out_channels`` so both links add equal widths.

    Args:
        in_channels: input channels.
        out_channels: channels of every module and of the output.
        spatial_dims: 2 for planar scintigrams.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.unit1 = RMSBlock(in_channels, out_channels, spatial_dims=spatial_dims)  # modules 1-3, link 1 -> 3
        self.unit2 = RMSBlock(out_channels, out_channels, spatial_dims=spatial_dims)  # modules 4-6, link 4 -> 6
