"""MSA-Net building blocks: shapes, receptive fields measured from gradients, residual links, gradient flow."""

from __future__ import annotations

import pytest
import torch

from msanet_monai.networks.blocks import CDCBlock, CRACBlock, MSFEBlock, RFBBlock, RMSBlock

BLOCKS = [CDCBlock, CRACBlock, RFBBlock, MSFEBlock, RMSBlock]


def _positive_eval(block: torch.nn.Module) -> torch.nn.Module:
    """Positive conv weights and eval-mode batch norm: every ReLU passes, so every tap shows in the gradient."""
    torch.manual_seed(0)
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.copy_(torch.rand_like(module.weight) + 0.1)
    return block.eval()


def _receptive_field(block: torch.nn.Module, size: int = 65) -> tuple[int, int]:
    """(extent along the centre row, number of input pixels on that row reached) for the centre output pixel."""
    x = torch.ones(1, 1, size, size, requires_grad=True)
    y = block(x)
    y[0, :, size // 2, size // 2].sum().backward()
    cols = torch.nonzero(x.grad[0, 0, size // 2] != 0).flatten()
    return int(cols.max() - cols.min() + 1), int(cols.numel())


@pytest.mark.parametrize("block_type", BLOCKS)
def test_shape_preserved_and_channels_mapped(block_type):
    block = block_type(3, 5)
    x = torch.rand(2, 3, 32, 48)
    assert block(x).shape == (2, 5, 32, 48)


def test_cdc_receptive_fields_3_7_15_17_21_29():
    cdc = _positive_eval(CDCBlock(1, 2))
    assert [m.conv.dilation[0] for m in cdc] == [1, 2, 4, 1, 2, 4]
    found = [_receptive_field(torch.nn.Sequential(*list(cdc)[:k])) for k in range(1, 7)]
    assert [extent for extent, _ in found] == [3, 7, 15, 17, 21, 29]
    # hybrid dilation rates leave no holes (no gridding): every pixel inside the field contributes
    assert all(extent == reached for extent, reached in found)


def test_rfb_largest_branch_sees_15_pixels():
    # branch 3: 1x1, two 3x3 (equivalent 5x5), then 3x3 of dilation 5 -> 5 + 10 = 15
    assert _receptive_field(_positive_eval(RFBBlock(1, 4)))[0] == 15


def test_rms_receptive_field_15():
    assert _receptive_field(_positive_eval(RMSBlock(1, 2)))[0] == 15


def _silence(conv_module: torch.nn.Module) -> None:
    """Make a conv-BN-ReLU module output zeros (BN scale and shift 0)."""
    bn = conv_module.adn.N
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()


def test_crac_residual_links_1_to_3_and_4_to_6():
    crac = CRACBlock(2, 4).eval()
    x = torch.rand(1, 2, 16, 16)
    assert [m.conv.dilation[0] for unit in crac for m in (unit.conv1, unit.conv2, unit.conv3)] == [1, 2, 4, 1, 2, 4]
    _silence(crac.unit1.conv3)
    _silence(crac.unit2.conv3)
    # with modules 3 and 6 silent, only the links carry: out = module4(module1(x))
    assert torch.allclose(crac(x), crac.unit2.conv1(crac.unit1.conv1(x)))
    assert crac(x).abs().sum() > 0


def test_rms_residual_link_1_to_3():
    rms = RMSBlock(3, 4).eval()
    x = torch.rand(1, 3, 16, 16)
    _silence(rms.conv3)
    assert torch.allclose(rms(x), rms.conv1(x))


def test_rfb_activation_switch():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    linear = RFBBlock(3, 4, activation=False).eval()
    rectified = RFBBlock(3, 4, activation=True).eval()
    rectified.load_state_dict(linear.state_dict())
    assert (linear(x) < 0).any()
    assert torch.equal(rectified(x), torch.relu(linear(x)))


def test_msfe_is_relu_of_crac_plus_rfb():
    msfe = MSFEBlock(3, 4).eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(msfe(x), torch.relu(msfe.crac(x) + msfe.rfb(x)))
    assert (msfe(x) >= 0).all()


@pytest.mark.parametrize("block_type", BLOCKS)
def test_every_parameter_gets_a_gradient(block_type):
    torch.manual_seed(0)
    block = block_type(2, 4)
    block(torch.randn(2, 2, 16, 16)).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())
