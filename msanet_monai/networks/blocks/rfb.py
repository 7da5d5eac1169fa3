"""Receptive field block (RFB, Liu et al., ECCV 2018) as used inside MSA-Net's MSFE block."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution

from .cdc import conv_bn_relu

__all__ = ["RFBBlock"]


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, dilation: int, spatial_dims: int) -> Convolution:
    """Conv -> BN without activation: RFB ends each branch and its shortcut linearly, before the sum."""
    return Convolution(
        spatial_dims, in_channels, out_channels, kernel_size=kernel_size, dilation=dilation, act=None, norm="BATCH", bias=False
    )


class RFBBlock(nn.Module):
    """Three parallel branches with equivalent kernels 1, 3, 5 and dilated 3x3 convs of rate 1, 3, 5, plus a shortcut.

    Branch ``k`` (k = 0, 1, 2): a 1x1 conv-BN-ReLU bottleneck to ``bottleneck_channels``, then ``k``
    stacked 3x3 conv-BN-ReLU (equivalent kernel 1, 3, 5; the 5x5 as two 3x3 as in the RFBNet code),
    then a 3x3 conv-BN of dilation ``2k + 1`` (1, 3, 5) to ``out_channels``. The branch outputs and a
    1x1 conv-BN shortcut of the input are summed element-wise (the MSA-Net text says summed; RFBNet's
    code concatenates and fuses with a 1x1 conv). With ``activation=True`` a ReLU follows the sum as in
    RFBNet; ``MSFEBlock`` turns it off and applies one ReLU after adding the CRAC output, as the paper
    describes (the shortcut then is the MSFE residual path).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        bottleneck_channels: width inside the branches; default ``max(out_channels // 4, 1)`` (RFBNet
            narrows its branches to a fraction of the input width in the same way).
        activation: apply ReLU to the sum.
        spatial_dims: 2 for planar scintigrams.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bottleneck_channels: int | None = None,
        activation: bool = True,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        mid = bottleneck_channels or max(out_channels // 4, 1)
        branches = []
        for k, rate in enumerate((1, 3, 5)):
            layers = [conv_bn_relu(in_channels, mid, kernel_size=1, spatial_dims=spatial_dims)]
            layers += [conv_bn_relu(mid, mid, spatial_dims=spatial_dims) for _ in range(k)]
            layers.append(_conv_bn(mid, out_channels, 3, rate, spatial_dims))
            branches.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(branches)
        self.shortcut = _conv_bn(in_channels, out_channels, 1, 1, spatial_dims)
        self.act = nn.ReLU() if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)
        for branch in self.branches:
            out = out + branch(x)
        return self.act(out)
