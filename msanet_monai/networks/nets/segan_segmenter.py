"""SegAN's segmenter (Xue et al., Neuroinformatics 2018), the adversarial baseline of the MSA-Net paper."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution

__all__ = ["SegANSegmenter"]


class SegANSegmenter(nn.Module):
    """SegAN's segmentor network "S": a four-level convolutional encoder-decoder with sigmoid output.

    MONAI has no SegAN network, hence this module (written from the paper's description, not from
    its code). Encoder: four 4x4 convolutions of stride 2, LeakyReLU(0.2), batch norm after all but the
    first. Decoder: at each level a x2 nearest-neighbour resize followed by a 3x3 conv-BN-ReLU
    ("resize-convolution"), its output concatenated with the encoder features of the same size; a
    last resize-convolution to ``out_channels`` and a sigmoid give the probability map. Trained against
    :class:`~msanet_monai.networks.nets.SegANCritic` with the multi-scale L1 loss, as in SegAN (config
    ``bundle/configs/models/segan.json``).

    Args:
        in_channels: image channels.
        out_channels: probability maps.
        channels: widths of the four encoder levels (SegAN: 64, 128, 256, 512).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``, values in [0, 1]; H and W multiples of 16.

    Raises:
        ValueError: input not 4-D with ``in_channels`` channels, or H or W not a multiple of 16.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, channels: Sequence[int] = (64, 128, 256, 512)) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"channels must give the widths of the 4 encoder levels, got {tuple(channels)}.")
        c = [int(v) for v in channels]
        self.in_channels = in_channels
        leaky = ("leakyrelu", {"negative_slope": 0.2})
        self.encoder = nn.ModuleList(
            Convolution(2, cin, cout, strides=2, kernel_size=4, padding=1, act=leaky,
                        norm=None if i == 0 else "BATCH", bias=i == 0)
            for i, (cin, cout) in enumerate(zip([in_channels, *c[:3]], c))
        )
        # decoder level l maps the (concatenated) deeper features to c[l] at the size of encoder level l
        dec_in = [c[3], 2 * c[2], 2 * c[1]]
        self.decoder = nn.ModuleList(
            Convolution(2, cin, cout, kernel_size=3, act="RELU", norm="BATCH", bias=False)
            for cin, cout in zip(dec_in, [c[2], c[1], c[0]])
        )
        self.head = Convolution(2, 2 * c[0], out_channels, kernel_size=3, conv_only=True, bias=True)

    @staticmethod
    def _resize(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SegANSegmenter expects (B, {self.in_channels}, H, W), got {list(x.shape)}.")
        if x.shape[2] % 16 or x.shape[3] % 16:
            raise ValueError(f"SegANSegmenter needs H and W divisible by 16, got {list(x.shape[2:])}.")
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        out = skips.pop()  # the deepest level, H/16
        for layer in self.decoder:
            out = torch.cat([layer(self._resize(out)), skips.pop()], dim=1)
        return torch.sigmoid(self.head(self._resize(out)))
