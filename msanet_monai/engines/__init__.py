"""Training engines: the adversarial (generator + critic) segmentation trainer and its config helpers."""

from .adversarial_trainer import AdversarialSegmentationTrainer
from .checkpoint_saver import AtomicCheckpointSaver, AtomicDiskSaver
from .utils import (
    LOSS_KEYS,
    AdversarialKeys,
    BestModelTracking,
    check_training_outputs,
    check_training_settings,
    latest_checkpoint,
    loss_terms,
    rank_zero_first,
    resume_checkpoint,
)

__all__ = [
    "AdversarialSegmentationTrainer",
    "AdversarialKeys",
    "LOSS_KEYS",
    "loss_terms",
    "latest_checkpoint",
    "resume_checkpoint",
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "BestModelTracking",
    "rank_zero_first",
    "check_training_settings",
    "check_training_outputs",
]
