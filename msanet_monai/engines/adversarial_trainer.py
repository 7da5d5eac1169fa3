"""Adversarial segmentation training (MSA-Net generator against a SegAN critic) as a MONAI engine.

MONAI's ``AdversarialTrainer`` is built for reconstruction GANs (it has no "loss" output on CPU and
its critic sees the reconstruction alone), and ``GanTrainer`` draws latent codes; neither fits a
segmenter whose critic sees the image masked by a prediction. This engine is therefore a
``SupervisedTrainer`` whose iteration adds the critic update of SegAN (Xue et al. 2018) in front of
the usual generator update, so every MONAI/Ignite handler written for ``SupervisedTrainer`` keeps
working (events, decollation, postprocessing, metrics, checkpoints).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.optim.optimizer import Optimizer
from torch.utils.data import DataLoader

from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents, default_metric_cmp_fn, default_prepare_batch
from monai.engines.workflow import Workflow
from monai.inferers import Inferer
from monai.transforms import Transform
from monai.utils.enums import CommonKeys as Keys

from .utils import AdversarialKeys

__all__ = ["AdversarialSegmentationTrainer"]


class AdversarialSegmentationTrainer(SupervisedTrainer):
    """Train a segmentation generator against a SegAN-style critic (MSA-Net paper, eqs. 3 to 6).

    One iteration on a batch (image ``(B, C, H, W)``, label ``(B, 1, H, W)``):

    1. generator forward: ``pred`` is ``(B, K, 1, H, W)`` with deep supervision (index 0 final) or
       ``(B, 1, H, W)``; fires ``FORWARD_COMPLETED``.
    2. critic update on the detached prediction: ``L(D) = 1 - adv(critic, pred, label, image)`` (eq. 6),
       i.e. the critic maximises the multi-scale L1 distance; then, if ``critic_clip`` is given, the
       critic's weights are clamped to ``[-critic_clip, critic_clip]`` as in SegAN.
    3. generator update with ``L(G) = alpha * seg(pred, label) + beta * adv(critic, pred, label, image)``
       (eqs. 3 to 5) against the critic just updated; fires ``LOSS_COMPLETED``,
       ``BACKWARD_COMPLETED`` and ``MODEL_COMPLETED`` as ``SupervisedTrainer`` does.

    The generator is run once per iteration (SegAN's code runs it twice): the critic step only sees
    a detached copy of its output, so the same graph serves the generator step.

    Engine output (``engine.state.output`` before decollation): ``image``, ``label``, ``pred`` (the final
    probability map ``(B, 1, H, W)``; the side outputs only enter the losses), ``loss`` (generator total),
    ``seg_loss``, ``adv_loss``, ``critic_loss`` (detached scalar tensors). :func:`msanet_monai.engines.utils.loss_terms` turns it
    into the dict that ``StatsHandler`` and ``TensorBoardStatsHandler`` log.

    Args:
        device: device to train on.
        max_epochs: total number of epochs.
        train_data_loader: loader of dicts with ``image`` and ``label`` (see ``prepare_batch``).
        network: the generator (e.g. ``MSANet``); sigmoid probabilities out.
        optimizer: optimizer of the generator.
        loss_function: segmentation loss ``(pred, label) -> scalar`` (e.g. ``DeepSupervisionDiceLoss``).
        critic: the critic (e.g. ``SegANCritic``), ``(B, C, H, W) -> (B, F)``.
        critic_optimizer: optimizer of the critic.
        adversarial_loss_function: ``(critic, pred, label, image) -> scalar``
            (e.g. ``MultiScaleL1AdversarialLoss``).
        alpha: weight of the segmentation loss in the generator loss (eq. 3).
        beta: weight of the adversarial loss in the generator loss (eq. 3).
        critic_clip: clamp the critic's parameters to ``[-critic_clip, critic_clip]`` after each critic
            step (SegAN uses 0.05); ``None`` disables clipping.
        adversarial: ``False`` trains the generator with ``alpha * seg`` alone: the critic is neither
            called nor stepped (the ablation "without the critic" and the non-adversarial baselines);
            ``adv_loss`` and ``critic_loss`` are then reported as 0. ``critic``, ``critic_optimizer``
            and ``adversarial_loss_function`` may be ``None`` in that case.
        amp: mixed precision (``torch.autocast`` plus one ``GradScaler`` per optimizer); only honoured
            when ``device`` is a CUDA device, ignored elsewhere.
        other args: as ``monai.engines.SupervisedTrainer``.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable | DataLoader,
        network: torch.nn.Module,
        optimizer: Optimizer,
        loss_function: Callable,
        critic: torch.nn.Module | None,
        critic_optimizer: Optimizer | None,
        adversarial_loss_function: Callable | None,
        alpha: float = 1.0,
        beta: float = 1.0,
        critic_clip: float | None = 0.05,
        adversarial: bool = True,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        prepare_batch: Callable = default_prepare_batch,
        iteration_update: Callable[[Any, Any], Any] | None = None,
        inferer: Inferer | None = None,
        postprocessing: Transform | None = None,
        key_train_metric: dict | None = None,
        additional_metrics: dict | None = None,
        metric_cmp_fn: Callable = default_metric_cmp_fn,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        event_names: list | None = None,
        event_to_attr: dict | None = None,
        decollate: bool = True,
        optim_set_to_none: bool = False,
        to_kwargs: dict | None = None,
        amp_kwargs: dict | None = None,
    ) -> None:
        if critic_clip is not None and critic_clip <= 0:
            raise ValueError(f"critic_clip must be positive or None, got {critic_clip}.")
        adversarial = bool(adversarial)
        missing = [n for n, v in (("critic", critic), ("critic_optimizer", critic_optimizer),
                                  ("adversarial_loss_function", adversarial_loss_function)) if v is None]
        if adversarial and missing:
            raise ValueError(f"adversarial training needs {', '.join(missing)}; pass them or set adversarial=False.")
        device = torch.device(device)
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss_function,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            prepare_batch=prepare_batch,
            iteration_update=iteration_update,
            inferer=inferer,
            postprocessing=postprocessing,
            key_train_metric=key_train_metric,
            additional_metrics=additional_metrics,
            metric_cmp_fn=metric_cmp_fn,
            train_handlers=train_handlers,
            amp=amp and device.type == "cuda",  # autocast/GradScaler here are CUDA-only
            event_names=event_names,
            event_to_attr=event_to_attr,
            decollate=decollate,
            optim_set_to_none=optim_set_to_none,
            to_kwargs=to_kwargs,
            amp_kwargs=amp_kwargs,
        )
        self.critic = critic
        self.critic_optimizer = critic_optimizer
        self.adversarial_loss_function = adversarial_loss_function
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.critic_clip = critic_clip
        self.adversarial = adversarial
        self.critic_scaler: torch.amp.GradScaler | None = None

    def run(self) -> None:  # type: ignore[override]
        """Run training; one ``GradScaler`` per optimizer when AMP is on (``Trainer.run`` makes only one)."""
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.critic_scaler = torch.amp.GradScaler("cuda") if self.amp else None
        Workflow.run(self)

    def _autocast(self) -> Any:
        return torch.autocast("cuda", **self.amp_kwargs) if self.amp else contextlib.nullcontext()

    def _backward_step(
        self,
        loss: torch.Tensor,
        optimizer: Optimizer,
        scaler: torch.amp.GradScaler | None,
        after_backward: Callable[[], Any] | None = None,
    ) -> None:
        """Backward and optimizer step, through the GradScaler when AMP is on."""
        (scaler.scale(loss) if scaler is not None else loss).backward()
        if after_backward is not None:
            after_backward()
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    def _iteration(self, engine: AdversarialSegmentationTrainer, batchdata: dict[str, torch.Tensor]) -> dict:
        """One critic step then one generator step; returns the engine output described in the class doc."""
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        if len(batch) == 2:
            inputs, targets = batch
            args: tuple = ()
            kwargs: dict = {}
        else:
            inputs, targets, args, kwargs = batch
        engine.state.output = {Keys.IMAGE: inputs, Keys.LABEL: targets}
        engine.network.train()
        if engine.adversarial:
            engine.critic.train()

        with engine._autocast():
            pred = engine.inferer(inputs, engine.network, *args, **kwargs)
        engine.state.output[Keys.PRED] = pred
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)

        zero = torch.zeros((), device=inputs.device)
        critic_loss = zero
        if engine.adversarial:
            # critic: maximise the multi-scale L1 distance on a detached prediction (eq. 6)
            engine.critic_optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
            with engine._autocast():
                critic_loss = 1.0 - engine.adversarial_loss_function(engine.critic, pred.detach(), targets, inputs)
            engine._backward_step(critic_loss, engine.critic_optimizer, engine.critic_scaler)
            if engine.critic_clip is not None:
                with torch.no_grad():
                    for p in engine.critic.parameters():
                        p.clamp_(-engine.critic_clip, engine.critic_clip)

        # generator: alpha * Dice loss + beta * multi-scale L1 against the updated critic (eqs. 3-5)
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with engine._autocast():
            seg_loss = engine.loss_function(pred, targets).mean()
            if engine.adversarial:
                adv_loss = engine.adversarial_loss_function(engine.critic, pred, targets, inputs)
                loss = engine.alpha * seg_loss + engine.beta * adv_loss
            else:
                adv_loss = zero
                loss = engine.alpha * seg_loss
        engine.state.output[Keys.LOSS] = loss
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        engine._backward_step(
            loss, engine.optimizer, engine.scaler, lambda: engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        )

        # report the final map only: metrics and postprocessing expect (B, 1, H, W)
        final = pred[:, 0] if pred.ndim == inputs.ndim + 1 else pred
        engine.state.output.update(
            {
                Keys.PRED: final.detach(),
                Keys.LOSS: loss.detach(),
                AdversarialKeys.SEG_LOSS: seg_loss.detach(),
                AdversarialKeys.ADV_LOSS: adv_loss.detach(),
                AdversarialKeys.CRITIC_LOSS: critic_loss.detach(),
            }
        )
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
