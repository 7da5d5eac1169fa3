"""MSANet generator: output layout, input pyramid, full-size build, input checks, TorchScript."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from msanet_monai.networks.nets import MSANet

TINY = (4, 8, 8, 16, 16)


def _tiny(**kwargs) -> MSANet:
    torch.manual_seed(42)
    return MSANet(in_channels=1, out_channels=1, channels=TINY, **kwargs)


@pytest.mark.parametrize("size", [(64, 64), (1024, 256)], ids=["crop", "whole-body"])
def test_training_returns_four_probability_maps_eval_returns_one(size):
    net = _tiny()
    x = torch.rand(2, 1, *size)
    train_out = net.train()(x)
    assert train_out.shape == (2, 4, 1, *size)
    assert train_out.min() >= 0 and train_out.max() <= 1
    with torch.no_grad():
        eval_out = net.eval()(x)
    assert eval_out.shape == (2, 1, *size)


def test_deep_supervision_off_returns_final_map_while_training():
    net = _tiny(deep_supervision=False).train()
    assert net(torch.rand(2, 1, 64, 64)).shape == (2, 1, 64, 64)


def test_output_layout_final_first_then_side_outputs_of_d2_d3_d4():
    net = _tiny().train()
    x = torch.rand(2, 1, 64, 64)
    side_logits = []
    hooks = [head.register_forward_hook(lambda m, i, o: side_logits.append(o)) for head in net.side_heads]
    out = net(x)
    for h in hooks:
        h.remove()
    # side outputs come from 1/2, 1/4, 1/8 resolution, upsampled bilinearly to the input size
    assert [tuple(s.shape[2:]) for s in side_logits] == [(32, 32), (16, 16), (8, 8)]
    for k, logits in enumerate(side_logits, start=1):
        expected = torch.sigmoid(F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False))
        assert torch.allclose(out[:, k], expected)
    # index 0 is the map the network returns without deep supervision (same weights, same batch statistics)
    net.deep_supervision = False
    assert torch.allclose(out[:, 0], net(x))


def test_input_pyramid_feeds_levels_2_to_4():
    net = _tiny()
    widths = [net.enc2.crac.unit1.conv1.conv.in_channels, net.enc3.crac.unit1.conv1.conv.in_channels,
              net.enc4.crac.unit1.conv1.conv.in_channels, net.enc5.crac.unit1.conv1.conv.in_channels]
    assert widths == [TINY[0] + 1, TINY[1] + 1, TINY[2] + 1, TINY[3]]
    # the last input channel of level 4 is the image average-pooled to 1/8
    captured = {}
    net.enc4.register_forward_hook(lambda m, i, o: captured.update(input=i[0]))
    x = torch.rand(1, 1, 64, 64)
    net.eval()(x)
    assert torch.allclose(captured["input"][:, -1:], F.avg_pool2d(x, 8), atol=1e-6)


def _conv(cin: int, cout: int, k: int = 3) -> int:
    return k * k * cin * cout + 2 * cout  # bias-free conv + BN scale and shift


def _cascade6(cin: int, c: int) -> int:  # CDC and CRAC: six 3x3 conv-BN-ReLU
    return _conv(cin, c) + 5 * _conv(c, c)


def _rfb(cin: int, c: int) -> int:
    m = max(c // 4, 1)
    return 3 * _conv(cin, m, 1) + 3 * _conv(m, m) + 3 * _conv(m, c) + _conv(cin, c, 1)


def _rms(cin: int, c: int) -> int:
    return _conv(cin, c) + 2 * _conv(c, c)


def _expected_parameters(c: tuple[int, ...], cin: int = 1, cout: int = 1) -> int:
    c1, c2, c3, c4, c5 = c
    encoder = _cascade6(cin, c1) + sum(
        _cascade6(a, b) + _rfb(a, b) for a, b in [(c1 + cin, c2), (c2 + cin, c3), (c3 + cin, c4), (c4, c5)]
    )
    decoder = _rms(c5 + c4, c4) + _rms(c4 + c3, c3) + _rms(c3 + c2, c2) + _rms(c2 + c1, c1)
    heads = sum(ci * cout + cout for ci in (c1, c2, c3, c4))
    return encoder + decoder + heads


@pytest.mark.parametrize("channels", [TINY, (8, 16, 16, 32, 32)])
def test_parameter_count_matches_the_layer_list(channels):
    net = MSANet(channels=channels)
    assert sum(p.numel() for p in net.parameters()) == _expected_parameters(channels)


def test_full_size_default_model():
    torch.manual_seed(42)
    net = MSANet()
    assert sum(p.numel() for p in net.parameters()) == _expected_parameters((64, 128, 256, 512, 512))
    with torch.no_grad():
        out = net.eval()(torch.rand(1, 1, 256, 256))
    assert out.shape == (1, 1, 256, 256) and torch.isfinite(out).all()
    # the other layouts on the meta device: shapes only, no arithmetic
    with torch.device("meta"):
        meta_net = MSANet()
        assert meta_net.train()(torch.empty(2, 1, 256, 256)).shape == (2, 4, 1, 256, 256)
        assert meta_net.train()(torch.empty(1, 1, 1024, 256)).shape == (1, 4, 1, 1024, 256)
        assert meta_net.eval()(torch.empty(1, 1, 1024, 256)).shape == (1, 1, 1024, 256)


@pytest.mark.parametrize(
    "shape, message",
    [((1, 1, 72, 64), "divisible by 16"), ((1, 1, 64, 40), "divisible by 16"),
     ((1, 3, 64, 64), r"expects \(B, 1, H, W\)"), ((1, 64, 64), r"expects \(B, 1, H, W\)")],
)
def test_bad_input_shape_is_named(shape, message):
    with pytest.raises(ValueError, match=message):
        _tiny()(torch.rand(*shape))


def test_same_seed_same_weights_and_output():
    x = torch.rand(1, 1, 64, 64)
    a, b = _tiny().eval(), _tiny().eval()
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_torchscript_script_and_trace_match_eager():
    net = _tiny().eval()
    x, other = torch.rand(1, 1, 64, 128), torch.rand(2, 1, 128, 64)
    scripted = torch.jit.script(net)
    traced = torch.jit.trace(net, x)
    with torch.no_grad():
        for model in (scripted, traced):
            assert torch.allclose(model(other), net(other), atol=1e-6)
        # the scripted model keeps the training-mode deep-supervision branch and the size check
        assert scripted.train()(x).shape == (1, 4, 1, 64, 128)
        with pytest.raises(torch.jit.Error, match="divisible by 16"):
            scripted(torch.rand(1, 1, 72, 64))


# ablation switches of the paper (bundle/configs/models/msanet_no_*.json)
@pytest.mark.parametrize(
    "switch, blocks",
    [("use_cdc", ["enc1"]), ("use_msfe", ["enc2", "enc3", "enc4", "enc5"]), ("use_rms", ["dec4", "dec3", "dec2", "dec1"])],
)
def test_ablation_switch_replaces_its_blocks_by_double_convs(switch, blocks):
    from msanet_monai.networks.blocks import DoubleConvBlock

    default, ablated = _tiny(), _tiny(**{switch: False})
    for name in ["enc1", "enc2", "enc3", "enc4", "enc5", "dec4", "dec3", "dec2", "dec1"]:
        replaced = isinstance(getattr(ablated, name), DoubleConvBlock)
        assert replaced == (name in blocks), name
        assert not isinstance(getattr(default, name), DoubleConvBlock)
    assert sum(p.numel() for p in ablated.parameters()) != sum(p.numel() for p in default.parameters())
    x = torch.rand(2, 1, 64, 64)
    assert ablated.train()(x).shape == (2, 4, 1, 64, 64)
    with torch.no_grad():
        assert ablated.eval()(x).shape == (2, 1, 64, 64)


def test_without_input_pyramid_levels_2_to_4_see_features_only():
    net = _tiny(input_pyramid=False)
    widths = [net.enc2.crac.unit1.conv1.conv.in_channels, net.enc3.crac.unit1.conv1.conv.in_channels,
              net.enc4.crac.unit1.conv1.conv.in_channels]
    assert widths == [TINY[0], TINY[1], TINY[2]]
    assert set(net.state_dict()) == set(_tiny().state_dict())  # same layers, narrower inputs
    assert net.train()(torch.rand(2, 1, 64, 64)).shape == (2, 4, 1, 64, 64)


def test_default_switches_keep_the_shipped_weights_loading():
    import json
    from pathlib import Path

    release = Path(__file__).resolve().parents[1] / "release"
    channels = json.loads((release / "release.json").read_text())["generator_channels"]
    net = MSANet(channels=channels, use_cdc=True, use_msfe=True, use_rms=True, input_pyramid=True)
    net.load_state_dict(torch.load(release / "model.pt", weights_only=True))  # strict: same keys, same shapes
