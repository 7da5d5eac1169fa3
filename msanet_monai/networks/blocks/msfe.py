"""Multi-scale feature extraction (MSFE) block: MSA-Net encoder levels 2 to 5."""

from __future__ import annotations

import torch
import torch.nn as nn

from .crac import CRACBlock
from .rfb import RFBBlock

__all__ = ["MSFEBlock"]


class MSFEBlock(nn.Module):
    """CRAC + RFB branches + residual path, summed, then ReLU (paper Fig. 4).

    ``ReLU(CRAC(x) + sum_k branch_k(x) + shortcut(x))``: the RFB's linear output (its three branches
    plus its 1x1 shortcut, which serves as the block's residual path) is added to the CRAC output
    before the single ReLU.

    Args:
        in_channels: input channels (the previous level's features, plus the pyramid image at levels 2-4).
        out_channels: output channels.
        spatial_dims: 2 for planar scintigrams.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.crac = CRACBlock(in_channels, out_channels, spatial_dims=spatial_dims)
        self.rfb = RFBBlock(in_channels, out_channels, activation=False, spatial_dims=spatial_dims)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.crac(x) + self.rfb(x))
