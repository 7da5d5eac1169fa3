"""SegAN critic (Xue et al., Neuroinformatics 2018): multi-scale features of an image masked by a segmentation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution

__all__ = ["SegANCritic"]

# kernel size of each stride-2 layer in SegAN's NetC; padding (k - 1) // 2 halves the size exactly
_KERNELS = (7, 5, 4, 4, 4, 3)


class SegANCritic(nn.Module):
    """The discriminator of MSA-Net (paper Fig. 6): SegAN's NetC returning its multi-scale feature vector.

    Six bias-free stride-2 convolutions (kernels 7, 5, 4, 4, 4, 3), LeakyReLU(0.2) after each, batch
    norm after all but the first. The output is the flattened input and the flattened output of every
    layer, each multiplied by its weight (default 1, 1, 2, 2, 2, 2, 4 as in SegAN), concatenated. The
    MSA-Net losses compare this vector for ``image * prediction`` and ``image * ground truth``.

    Args:
        in_channels: channels of the masked image.
        channels: output channels of the six layers (SegAN: 64, 128, 256, 512, 512, 512).
        weights: weight of the input and of each layer in the feature vector (``len(channels) + 1``).

    Shapes:
        ``(B, in_channels, H, W) -> (B, F)`` with ``F = in_channels*H*W + sum_l channels[l]*H_l*W_l``,
        ``H_l = H / 2**(l+1)``. H and W should be multiples of 64 (six halvings; other sizes round).
        In training mode batch norm needs more than one value per channel in the last layer:
        ``B * H/64 * W/64 > 1`` (a single 64x64 image fails; 256x256 crops are fine).
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (64, 128, 256, 512, 512, 512),
        weights: Sequence[float] = (1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 4.0),
    ) -> None:
        super().__init__()
        if len(channels) != len(_KERNELS):
            raise ValueError(f"channels must give the widths of the {len(_KERNELS)} layers, got {tuple(channels)}.")
        if len(weights) != len(channels) + 1:
            raise ValueError(f"weights needs {len(channels) + 1} entries (input + each layer), got {tuple(weights)}.")
        self.in_channels = in_channels
        self.weights = tuple(float(w) for w in weights)
        layers = []
        prev = in_channels
        for i, (ch, k) in enumerate(zip(channels, _KERNELS)):
            layers.append(
                Convolution(
                    2,
                    prev,
                    int(ch),
                    strides=2,
                    kernel_size=k,
                    padding=(k - 1) // 2,
                    act=("leakyrelu", {"negative_slope": 0.2}),
                    norm=None if i == 0 else "BATCH",
                    bias=False,
                )
            )
            prev = int(ch)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SegANCritic expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}.")
        batch = x.shape[0]
        features = [self.weights[0] * x.reshape(batch, -1)]
        for weight, layer in zip(self.weights[1:], self.layers):
            x = layer(x)
            features.append(weight * x.reshape(batch, -1))
        return torch.cat(features, dim=1)
