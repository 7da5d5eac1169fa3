"""Residual multi-scale (RMS) block: MSA-Net's decoder block in place of U-Net's double conv."""

from __future__ import annotations

import torch
import torch.nn as nn

from .cdc import conv_bn_relu

__all__ = ["RMSBlock"]


class RMSBlock(nn.Module):
    """Three 3x3 conv-BN-ReLU layers with dilations 1, 2, 4; residual link from layer 1 to layer 3 (paper Fig. 5).

    ``x1 = conv1(x); out = conv3(conv2(x1)) + x1``: the first layer maps the concatenated decoder input
    (upsampled features and skip) to ``out_channels``, so the link adds equal widths, as in CRAC. The
    dilations widen the receptive field to 15 pixels at the cost of two 3x3 layers.

    Args:
        in_channels: input channels (upsampled deeper features + skip connection).
        out_channels: output channels.
        dilations: dilation of the three layers.
        spatial_dims: 2 for planar scintigrams.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, dilations: tuple[int, int, int] = (1, 2, 4), spatial_dims: int = 2
    ) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels, out_channels, dilations[0], spatial_dims=spatial_dims)
        self.conv2 = conv_bn_relu(out_channels, out_channels, dilations[1], spatial_dims=spatial_dims)
        self.conv3 = conv_bn_relu(out_channels, out_channels, dilations[2], spatial_dims=spatial_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        return self.conv3(self.conv2(x1)) + x1
