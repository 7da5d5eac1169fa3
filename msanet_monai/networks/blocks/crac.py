"""Cascade residual atrous convolution (CRAC) module: the CDC cascade with two residual links."""

from __future__ import annotations

import torch
import torch.nn as nn

from .cdc import conv_bn_relu

__all__ = ["CRACBlock"]


class CRACBlock(nn.Module):
    """Six 3x3 conv-BN-ReLU modules, dilations 1, 2, 4, 1, 2, 4, with residual links 1 -> 3 and 4 -> 6.

    Part of the MSFE block (paper Fig. 4): the output of module 1 is added to the output of module 3,
    and the output of module 4 to the output of module 6, to ease the gradient flow through the cascade.
    The first module maps ``in_channels`` to ``out_channels`` so both links add equal widths.

    Args:
        in_channels: input channels.
        out_channels: channels of every module and of the output.
        spatial_dims: 2 for planar scintigrams.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels, out_channels, 1, spatial_dims=spatial_dims)
        self.conv2 = conv_bn_relu(out_channels, out_channels, 2, spatial_dims=spatial_dims)
        self.conv3 = conv_bn_relu(out_channels, out_channels, 4, spatial_dims=spatial_dims)
        self.conv4 = conv_bn_relu(out_channels, out_channels, 1, spatial_dims=spatial_dims)
        self.conv5 = conv_bn_relu(out_channels, out_channels, 2, spatial_dims=spatial_dims)
        self.conv6 = conv_bn_relu(out_channels, out_channels, 4, spatial_dims=spatial_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x3 = self.conv3(self.conv2(x1)) + x1
        x4 = self.conv4(x3)
        return self.conv6(self.conv5(x4)) + x4
