"""Losses: hand-computed values on tiny tensors, gradient flow to every parameter, a few real Adam steps."""

from __future__ import annotations

import pytest
import torch

from msanet_monai.losses import DeepSupervisionDiceLoss, MultiScaleL1AdversarialLoss
from msanet_monai.networks.nets import MSANet, SegANCritic

GENERATOR = (4, 8, 8, 16, 16)
CRITIC = (4, 8, 8, 16, 16, 16)


def _target() -> torch.Tensor:
    """(1, 1, 4, 4) mask with 4 lesion pixels out of 16."""
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2, :2] = 1
    return t


def test_dice_perfect_prediction_is_zero_in_both_layouts():
    t = _target()
    loss = DeepSupervisionDiceLoss()
    assert loss(t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(torch.stack([t] * 4, dim=1), t).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_hand_computed_mean_over_outputs():
    t = _target()
    # constant prediction c: intersection 4c, sums 16c + 4 -> Dice = 8c / (16c + 4)
    pred = torch.stack([torch.full_like(t, c) for c in (1.0, 0.5, 0.25, 0.0)], dim=1)
    dice = [8 * c / (16 * c + 4) for c in (1.0, 0.5, 0.25, 0.0)]  # 1/2.5, 1/3, 0.25, 0
    expected = sum(1 - d for d in dice) / 4
    assert DeepSupervisionDiceLoss()(pred, t).item() == pytest.approx(expected, abs=1e-5)


def test_dice_all_empty_mask():
    empty = torch.zeros(1, 1, 4, 4)
    loss = DeepSupervisionDiceLoss()
    # nothing to find and nothing found: Dice 1 (smoothing 1e-5 / 1e-5), loss 0
    assert loss(empty, empty).item() == pytest.approx(0.0, abs=1e-6)
    # nothing to find, 0.5 everywhere: Dice = 1e-5 / (8 + 1e-5) -> loss ~1
    assert loss(torch.full_like(empty, 0.5), empty).item() == pytest.approx(1.0, abs=1e-5)


def test_dice_batch_of_images_is_averaged():
    t = torch.cat([_target(), torch.ones(1, 1, 4, 4)])
    pred = torch.cat([_target(), torch.zeros(1, 1, 4, 4)])  # perfect, then all missed
    assert DeepSupervisionDiceLoss()(pred, t).item() == pytest.approx(0.5, abs=1e-5)


@pytest.mark.parametrize("pred_shape", [(1, 4, 1, 8, 8), (1, 1, 8, 8), (2, 1, 4, 4), (4, 4)])
def test_shape_mismatch_named(pred_shape):
    with pytest.raises(ValueError, match="does not fit target"):
        DeepSupervisionDiceLoss()(torch.rand(*pred_shape), _target())


def test_adversarial_perfect_prediction_is_exactly_zero():
    torch.manual_seed(42)
    critic = SegANCritic(channels=CRITIC)
    image = torch.rand(2, 1, 64, 64)
    t = (torch.rand(2, 1, 64, 64) > 0.9).float()
    assert MultiScaleL1AdversarialLoss()(critic, torch.stack([t] * 4, dim=1), t, image).item() == 0.0


def test_adversarial_hand_computed_with_identity_features():
    image = torch.full((1, 1, 4, 4), 2.0)
    t = _target()
    pred = torch.stack([torch.full_like(t, c) for c in (1.0, 0.5, 0.25, 0.0)], dim=1)
    # D = flatten: |2c - 2t| is |2c - 2| on 4 pixels and 2c on 12 -> mean (4|2c - 2| + 24c) / 16
    expected = sum((4 * abs(2 * c - 2) + 24 * c) / 16 for c in (1.0, 0.5, 0.25, 0.0)) / 4
    value = MultiScaleL1AdversarialLoss()(torch.nn.Flatten(), pred, t, image)
    assert value.item() == pytest.approx(expected)


def test_adversarial_with_segan_critic_reading_only_the_input():
    # weights (1, 0, ...): the feature vector is the masked image then zeros for every layer
    critic = SegANCritic(channels=CRITIC, weights=(1, 0, 0, 0, 0, 0, 0))
    image = torch.rand(1, 1, 128, 128)  # one image: layer 6 is 2x2, enough for training-mode batch norm
    t = torch.zeros(1, 1, 128, 128)
    t[..., 10:20, 30:40] = 1
    pred = torch.full_like(t, 0.5)
    length = critic(image).shape[1]
    expected = ((pred - t) * image).abs().sum() / length
    assert MultiScaleL1AdversarialLoss()(critic, pred, t, image).item() == pytest.approx(expected.item(), rel=1e-5)


def test_adversarial_image_mismatch_named():
    with pytest.raises(ValueError, match="does not match target"):
        MultiScaleL1AdversarialLoss()(torch.nn.Flatten(), _target(), _target(), torch.rand(1, 1, 8, 8))


def _tiny_pair() -> tuple[MSANet, SegANCritic]:
    torch.manual_seed(42)
    return MSANet(channels=GENERATOR).train(), SegANCritic(channels=CRITIC).train()


def _hot_spot_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(42)
    label = torch.zeros(2, 1, 64, 64)
    label[0, :, 20:28, 30:38] = 1
    label[1, :, 40:46, 10:18] = 1
    return 0.3 * torch.rand(2, 1, 64, 64, generator=gen) + 0.7 * label, label


def _all_have_gradients(module: torch.nn.Module) -> bool:
    return all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_every_parameter_gets_a_gradient_from_each_loss():
    image, label = _hot_spot_batch()
    generator, critic = _tiny_pair()
    DeepSupervisionDiceLoss()(generator(image), label).backward()
    assert _all_have_gradients(generator)

    generator.zero_grad()
    MultiScaleL1AdversarialLoss()(critic, generator(image), label, image).backward()
    assert _all_have_gradients(generator)
    assert _all_have_gradients(critic)


def test_few_adam_steps_lower_the_generator_loss():
    image, label = _hot_spot_batch()
    generator, critic = _tiny_pair()
    seg, adv = DeepSupervisionDiceLoss(), MultiScaleL1AdversarialLoss()
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        pred = generator(image)
        loss = seg(pred, label) + adv(critic, pred, label, image)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
