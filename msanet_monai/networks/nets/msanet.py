"""MSA-Net generator: multi-scale encoder-decoder with input pyramid and deep supervision."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution

from msanet_monai.networks.blocks import CDCBlock, DoubleConvBlock, MSFEBlock, RMSBlock

__all__ = ["MSANet"]


class MSANet(nn.Module):
    """The MSA-Net segmenter (paper Fig. 2): sigmoid lesion probabilities for a bone-scan crop.

    Encoder (five levels, 2x2 average pooling between them)::

        level 1  CDC(in -> c1)                              at H
        level 2  MSFE(c1 + in -> c2) on [pool(e1), x/2]     at H/2   (x/k: image average-pooled by k)
        level 3  MSFE(c2 + in -> c3) on [pool(e2), x/4]     at H/4
        level 4  MSFE(c3 + in -> c4) on [pool(e3), x/8]     at H/8
        level 5  MSFE(c4 -> c5)      on pool(e4)            at H/16

    Decoder (bilinear x2 upsampling, skip connection, RMS block)::

        d4 = RMS(c5 + c4 -> c4) at H/8,  d3 = RMS(c4 + c3 -> c3) at H/4,
        d2 = RMS(c3 + c2 -> c2) at H/2,  d1 = RMS(c2 + c1 -> c1) at H

    Final map: 1x1 conv on d1, sigmoid. Deep supervision: 1x1 conv on d2, d3, d4, bilinear
    upsampling to H x W, sigmoid.

    Args:
        in_channels: image channels (1: one view of the scan).
        out_channels: probability maps per output (1: lesion).
        channels: widths c1..c5 of the five levels; the default is the full model, tiny widths such as
            ``(4, 8, 8, 16, 16)`` serve tests and CPU runs.
        deep_supervision: return the three side outputs too while training.
        use_cdc: level 1 is the CDC block; ``False`` puts a plain double 3x3 conv
            (:class:`~msanet_monai.networks.blocks.DoubleConvBlock`) in its place (paper ablation "w/o CDC").
        use_msfe: levels 2-5 are MSFE blocks; ``False``: double 3x3 convs ("w/o MSFE").
        use_rms: the decoder blocks are RMS blocks; ``False``: double 3x3 convs, U-Net's decoder ("w/o RMS").
        input_pyramid: concatenate the average-pooled image to the inputs of levels 2-4; ``False``
            feeds those levels the pooled features alone ("w/o input pyramid").

    The switches serve the paper's ablation study (``bundle/configs/models/msanet_no_*.json``). The
    defaults are the paper's network with unchanged ``state_dict`` keys (shipped weights load); the
    top-level module names (``enc1`` ... ``dec1``, ``head``, ``side_heads``) stay whatever the
    switches (the side heads exist even without deep supervision), a replaced block has the keys of
    its own layers inside them.

    Shapes:
        input ``(B, in_channels, H, W)``, H and W multiples of 16 (e.g. 256x256 thorax crops or
        1024x256 whole-body views). Training mode with ``deep_supervision``:
        ``(B, 4, out_channels, H, W)``, index 0 the final map, 1..3 the side outputs of d2, d3, d4
        (finest first, as MONAI's DynUNet orders them). Eval mode, or ``deep_supervision=False``:
        ``(B, out_channels, H, W)``. Values in [0, 1].

    Raises:
        ValueError: input is not 4-D with ``in_channels`` channels, or H or W is not a multiple of 16.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (64, 128, 256, 512, 512),
        deep_supervision: bool = True,
        use_cdc: bool = True,
        use_msfe: bool = True,
        use_rms: bool = True,
        input_pyramid: bool = True,
    ) -> None:
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"channels must give the widths of the 5 levels, got {tuple(channels)}.")
        c1, c2, c3, c4, c5 = (int(c) for c in channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.deep_supervision = deep_supervision
        self.input_pyramid = input_pyramid

        first = CDCBlock if use_cdc else DoubleConvBlock
        encoder = MSFEBlock if use_msfe else DoubleConvBlock
        decoder = RMSBlock if use_rms else DoubleConvBlock
        pyr = in_channels if input_pyramid else 0
        self.enc1 = first(in_channels, c1)
        self.enc2 = encoder(c1 + pyr, c2)
        self.enc3 = encoder(c2 + pyr, c3)
        self.enc4 = encoder(c3 + pyr, c4)
        self.enc5 = encoder(c4, c5)

        self.dec4 = decoder(c5 + c4, c4)
        self.dec3 = decoder(c4 + c3, c3)
        self.dec2 = decoder(c3 + c2, c2)
        self.dec1 = decoder(c2 + c1, c1)

        self.head = self._head(c1)
        # side outputs of d2, d3, d4: deep supervision of the three coarser decoder levels
        self.side_heads = nn.ModuleList([self._head(c2), self._head(c3), self._head(c4)])

    def _head(self, channels: int) -> Convolution:
        return Convolution(2, channels, self.out_channels, kernel_size=1, conv_only=True, bias=True)

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"MSANet expects (B, {self.in_channels}, H, W), got {list(x.shape)}.")
        if x.shape[2] % 16 != 0 or x.shape[3] % 16 != 0:
            raise ValueError(
                f"MSANet needs H and W divisible by 16 (four 2x poolings), got {list(x.shape[2:])}; "
                "crop or pad the image (e.g. monai.transforms.DivisiblePadd(k=16))."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing():  # a traced graph keeps no Python checks, tracing would only warn
            self._check_input(x)
        e1 = self.enc1(x)
        if self.input_pyramid:
            # the image itself, average-pooled like the features, refills detail lost by pooling
            x2 = F.avg_pool2d(x, 2)
            x4 = F.avg_pool2d(x2, 2)
            x8 = F.avg_pool2d(x4, 2)
            e2 = self.enc2(torch.cat([F.avg_pool2d(e1, 2), x2], dim=1))
            e3 = self.enc3(torch.cat([F.avg_pool2d(e2, 2), x4], dim=1))
            e4 = self.enc4(torch.cat([F.avg_pool2d(e3, 2), x8], dim=1))
        else:
            e2 = self.enc2(F.avg_pool2d(e1, 2))
            e3 = self.enc3(F.avg_pool2d(e2, 2))
            e4 = self.enc4(F.avg_pool2d(e3, 2))
        e5 = self.enc5(F.avg_pool2d(e4, 2))

        d4 = self.dec4(torch.cat([self._up(e5, e4), e4], dim=1))
        d3 = self.dec3(torch.cat([self._up(d4, e3), e3], dim=1))
        d2 = self.dec2(torch.cat([self._up(d3, e2), e2], dim=1))
        d1 = self.dec1(torch.cat([self._up(d2, e1), e1], dim=1))

        final = torch.sigmoid(self.head(d1))
        if not (self.training and self.deep_supervision):
            return final
        side2, side3, side4 = (torch.sigmoid(self._up(head(d), x)) for head, d in zip(self.side_heads, (d2, d3, d4)))
        return torch.stack([final, side2, side3, side4], dim=1)
