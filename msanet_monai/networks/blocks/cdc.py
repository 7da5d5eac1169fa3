"""Cascade dilated convolution (CDC) block: the first encoder level of MSA-Net."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn
from monai.networks.blocks import Convolution

__all__ = ["CDCBlock", "conv_bn_relu"]


def conv_bn_relu(
    in_channels: int, out_channels: int, dilation: int = 1, kernel_size: int = 3, spatial_dims: int = 2
) -> Convolution:
    """One "Conv" module of the paper: conv (size-preserving padding = dilation for 3x3) -> BN -> ReLU.

    Bias-free because the batch norm that follows absorbs it.
    """
    return Convolution(
        spatial_dims,
        in_channels,
        out_channels,
        kernel_size=kernel_size,
        dilation=dilation,
        act="RELU",
        norm="BATCH",
        bias=False,
    )


class CDCBlock(nn.Sequential):
    """Six cascaded 3x3 conv-BN-ReLU layers with dilations 1, 2, 4, 1, 2, 4 (paper Fig. 3, Table 2).

    The dilation pattern follows hybrid dilated convolution (no gridding); stride 1 and padding equal to
    the dilation keep the size, and the receptive fields after the six layers are 3, 7, 15, 17, 21, 29
    pixels (about 6.6 cm at 2.26 mm pixels on the bone scan). Being an ``nn.Sequential``, its layers
    iterate in order (``list(block)[:k]`` is the cascade up to layer ``k``).

    Args:
        in_channels: channels of the input (1 for a single anterior or posterior view).
        out_channels: channels of every layer (64 in the paper).
        dilations: dilation rate of each layer; the number of layers is its length.
        spatial_dims: 2 for planar scintigrams.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, dilations: Sequence[int] = (1, 2, 4, 1, 2, 4), spatial_dims: int = 2
    ) -> None:
        super().__init__()
        for i, d in enumerate(dilations):
            self.add_module(
                f"conv{i + 1}",
                conv_bn_relu(in_channels if i == 0 else out_channels, out_channels, d, spatial_dims=spatial_dims),
            )
