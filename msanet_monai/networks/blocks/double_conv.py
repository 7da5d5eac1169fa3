"""Plain double 3x3 convolution: U-Net's level block, the counterpart that MSA-Net's ablations put back."""

from __future__ import annotations

import torch.nn as nn

from .cdc import conv_bn_relu

__all__ = ["DoubleConvBlock"]


class DoubleConvBlock(nn.Sequential):
    """Two 3x3 conv-BN-ReLU layers (dilation 1), as in U-Net (Ronneberger et al. 2015).

    The ablations of the MSA-Net paper replace the CDC block (level 1), the MSFE blocks (levels 2-5)
    or the RMS blocks (decoder) by this block; see ``MSANet(use_cdc=..., use_msfe=..., use_rms=...)``.

    Args:
        in_channels: input channels.
        out_channels: channels of both layers.
        spatial_dims: 2 for planar scintigrams.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(in_channels, out_channels, spatial_dims=spatial_dims)
        self.conv2 = conv_bn_relu(out_channels, out_channels, spatial_dims=spatial_dims)
