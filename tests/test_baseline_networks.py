"""Baseline pieces of the model comparison: SegAN's segmenter and the adapter of MONAI networks."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import BasicUNet, DynUNet

from msanet_monai.losses import DeepSupervisionDiceLoss
from msanet_monai.networks.nets import SegANSegmenter, SigmoidOutput


def test_segan_segmenter_gives_full_size_probabilities_and_learns():
    torch.manual_seed(42)
    net = SegANSegmenter(channels=(4, 8, 8, 16))
    x = torch.rand(2, 1, 64, 64)
    y = (x > 0.7).float()
    out = net(x).detach()
    assert out.shape == (2, 1, 64, 64) and 0 <= float(out.min()) and float(out.max()) <= 1
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss = DeepSupervisionDiceLoss()
    first = float(loss(net(x), y))
    for _ in range(10):
        optimizer.zero_grad()
        loss(net(x), y).backward()
        optimizer.step()
    assert float(loss(net(x), y)) < first


@pytest.mark.parametrize("shape, message", [((1, 2, 64, 64), "expects"), ((1, 1, 64, 40), "divisible by 16")])
def test_segan_segmenter_names_a_bad_input(shape, message):
    with pytest.raises(ValueError, match=message):
        SegANSegmenter(channels=(4, 8, 8, 16))(torch.rand(shape))


def test_sigmoid_output_of_a_unet_is_the_sigmoid_of_its_logits():
    torch.manual_seed(42)
    unet = BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=(4, 8, 8, 16, 16, 4)).eval()
    wrapped = SigmoidOutput(unet).eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), torch.sigmoid(unet(x)))
    assert all(k.startswith("network.") for k in wrapped.state_dict())


def test_sigmoid_output_keeps_dynunet_deep_supervision_layout():
    net = SigmoidOutput(DynUNet(2, 1, 1, kernel_size=[3] * 5, strides=[1, 2, 2, 2, 2], upsample_kernel_size=[2] * 4,
                                filters=[4, 8, 8, 16, 16], deep_supervision=True, deep_supr_num=3))
    x = torch.rand(2, 1, 64, 64)
    out = net.train()(x)
    assert out.shape == (2, 4, 1, 64, 64)  # (B, K, C, H, W), index 0 final, as MSANet
    assert DeepSupervisionDiceLoss()(out, (x > 0.5).float()).ndim == 0
    with torch.no_grad():
        assert net.eval()(x).shape == (2, 1, 64, 64)


def test_sigmoid_output_stacks_a_list_of_maps_at_the_final_size():
    class TwoScales(torch.nn.Module):
        def forward(self, x):
            return [x, x[:, :, ::2, ::2]]

    out = SigmoidOutput(TwoScales())(torch.zeros(1, 1, 8, 8))
    assert out.shape == (1, 2, 1, 8, 8) and torch.allclose(out, torch.full_like(out, 0.5))
