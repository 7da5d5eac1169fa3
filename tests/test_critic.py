"""SegANCritic: SegAN NetC layout, weighted multi-scale feature vector, input checks."""

from __future__ import annotations

import pytest
import torch

from msanet_monai.networks.nets import SegANCritic

TINY = (4, 8, 8, 16, 16, 16)
SEGAN = (64, 128, 256, 512, 512, 512)


def _feature_length(channels, h: int, w: int, in_channels: int = 1) -> int:
    return in_channels * h * w + sum(c * (h >> (i + 1)) * (w >> (i + 1)) for i, c in enumerate(channels))


@pytest.mark.parametrize("size", [(64, 64), (128, 192)])
def test_feature_vector_length(size):
    critic = SegANCritic(in_channels=1, channels=TINY)
    assert critic(torch.rand(3, 1, *size)).shape == (3, _feature_length(TINY, *size))


def test_segan_layout_kernels_strides_norm_activation_no_bias():
    critic = SegANCritic()
    convs = [layer.conv for layer in critic.layers]
    assert [c.kernel_size[0] for c in convs] == [7, 5, 4, 4, 4, 3]
    assert all(c.stride == (2, 2) and c.bias is None for c in convs)
    assert [c.out_channels for c in convs] == list(SEGAN)
    has_bn = [any(isinstance(m, torch.nn.BatchNorm2d) for m in layer.modules()) for layer in critic.layers]
    assert has_bn == [False, True, True, True, True, True]
    slopes = [m.negative_slope for layer in critic.layers for m in layer.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert slopes == [0.2] * 6
    # bias-free convs (k*k*cin*cout) plus BN scale and shift on layers 2-6
    expected = sum(k * k * a * b for k, a, b in zip((7, 5, 4, 4, 4, 3), (1,) + SEGAN[:-1], SEGAN))
    expected += 2 * sum(SEGAN[1:])
    assert sum(p.numel() for p in critic.parameters()) == expected


def test_weights_1_1_2_2_2_2_4_scale_the_input_and_each_layer():
    torch.manual_seed(42)
    critic = SegANCritic(in_channels=1, channels=TINY)
    outputs = []
    for layer in critic.layers:
        layer.register_forward_hook(lambda m, i, o: outputs.append(o))
    x = torch.rand(2, 1, 64, 64)
    features = critic(x)
    pieces = [x] + outputs
    sizes = [p[0].numel() for p in pieces]
    chunks = torch.split(features, sizes, dim=1)
    for chunk, piece, weight in zip(chunks, pieces, (1, 1, 2, 2, 2, 2, 4)):
        assert torch.allclose(chunk, weight * piece.reshape(2, -1))


def test_full_size_critic_on_crop_and_whole_body_shapes():
    with torch.device("meta"):
        critic = SegANCritic()
        for size in [(256, 256), (1024, 256)]:
            assert critic(torch.empty(2, 1, *size)).shape == (2, _feature_length(SEGAN, *size))


def test_wrong_settings_and_input_named():
    with pytest.raises(ValueError, match="widths of the 6 layers"):
        SegANCritic(channels=(4, 8, 8))
    with pytest.raises(ValueError, match="weights needs 7 entries"):
        SegANCritic(channels=TINY, weights=(1, 1, 2))
    with pytest.raises(ValueError, match=r"expects \(B, 1, H, W\)"):
        SegANCritic(channels=TINY)(torch.rand(1, 2, 64, 64))
