"""Config switches read the same from JSON and from the command line (where fire hands over strings)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from msanet_monai.excepthook import project_error
from msanet_monai.transforms import ThoraxCropd
from msanet_monai.utils import as_flag

CONFIGS = Path(__file__).resolve().parents[1] / "bundle" / "configs"


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("false", False), ("False", False), (" TRUE ", True), ("0", False),
    ("yes", True), ("off", False), (1, True), (0, False), (None, False),
])
def test_as_flag(value, expected):
    assert as_flag(value) is expected


@pytest.mark.parametrize("value", ["maybe", "ture", [True]])
def test_as_flag_refuses_what_is_no_switch(value):
    with pytest.raises(ValueError, match="not a true/false switch"):
        as_flag(value)


@pytest.mark.parametrize("crop_thorax, cropped", [(True, True), ("false", False), ("False", False), ("true", True)])
def test_inference_crop_switch_from_the_command_line(crop_thorax, cropped):
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser["crop_thorax"] = crop_thorax
    transforms = parser.get_parsed_content("preprocessing").transforms
    assert any(isinstance(t, ThoraxCropd) for t in transforms) is cropped


@pytest.mark.parametrize("resume", ["false", False])
def test_training_resume_switch_off(tmp_path, resume):
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({"ckpt_dir": str(tmp_path), "resume": resume})
    assert parser.get_parsed_content("resume_checkpoint") is None
    # a fresh run into the checkpoints of an earlier one is refused rather than overwriting its model
    torch.save({"trainer": {"iteration": 3, "epoch_length": 1}}, tmp_path / "checkpoint_epoch=3.pt")
    with pytest.raises(RuntimeError) as info:
        parser.get_parsed_content("resume_checkpoint", lazy=False)
    assert "holds the outputs of an earlier training run (checkpoint_epoch=3.pt): add --resume true" in str(
        project_error(info.value))
    parser["resume"] = "true"
    assert parser.get_parsed_content("resume_checkpoint", lazy=False).endswith("checkpoint_epoch=3.pt")
