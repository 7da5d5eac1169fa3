"""A training run that cannot work ends with one line naming the file or config id, and a non-zero exit.

The real `python -m monai.bundle run training` in a subprocess: its last stderr line must be the
project's message, not MONAI's "Failed to instantiate component" at the end of a chained traceback.
The checks themselves (bad settings, the data folder rules of train.json) are also run in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from _bundle_runs import BUNDLE_DIR, CONFIGS, TINY, training_command

from msanet_monai.engines import check_training_outputs, check_training_settings
from msanet_monai.errors import BoneScanError, ConfigError
from msanet_monai.excepthook import project_error
from msanet_monai.networks.nets import MSANet


def _last_stderr_line(cmd: list[str]) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, *cmd], cwd=BUNDLE_DIR, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc.returncode, lines[-1] if lines else "", proc.stderr


@pytest.mark.parametrize("case", ["num_epochs", "datalist", "widths"])
def test_failed_run_ends_with_one_clear_line(case, tmp_path, synthetic_dataset):
    overrides, datalist = {}, synthetic_dataset
    if case == "num_epochs":
        overrides, expected = {"num_epochs": 0}, "ConfigError: config id 'num_epochs' = 0: must be at least 1"
    elif case == "datalist":
        datalist = str(tmp_path / "no_such" / "dataset.json")
        expected = f"BoneScanError: {datalist}: datalist file not found"
    else:  # a checkpoint of the quick widths, resumed with the tiny ones
        wide = MSANet(in_channels=1, out_channels=1, channels=(8, 16, 16, 32, 32), deep_supervision=True)
        (tmp_path / "models").mkdir()
        checkpoint = tmp_path / "models" / "checkpoint_epoch=1.pt"
        torch.save({"model": wide.state_dict(), "trainer": {"iteration": 1, "epoch_length": 1}}, checkpoint)
        overrides = {"resume": "true"}
        expected = f"CheckpointError: {checkpoint}: checkpoint was saved with other channel widths"
    code, last, stderr = _last_stderr_line(training_command(tmp_path, datalist, **overrides))
    assert code != 0
    assert last.startswith(expected), stderr[-3000:]
    assert "Traceback" not in stderr and "Failed to instantiate" not in stderr, stderr[-3000:]
    assert not (tmp_path / "models" / "model.pt").exists()


def test_a_fresh_run_over_an_earlier_one_stops_before_making_data(tmp_path):
    """The refusal comes first: no synthetic set generated, no TensorBoard files, the old model kept."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "model.pt").write_bytes(b"an earlier run's model")
    data = tmp_path / "data"
    cmd = training_command(tmp_path, None, ckpt_dir=str(models), dataset_dir=str(data), generate_dataset="true",
                           output_dir=str(tmp_path / "eval"))
    code, last, stderr = _last_stderr_line(cmd)
    assert code != 0
    assert last.startswith(f"CheckpointError: {models}: holds the outputs of an earlier training run (model.pt)"), stderr[-3000:]
    assert "--ckpt_dir" in last
    assert not data.exists() and not (tmp_path / "eval").exists()
    assert (models / "model.pt").read_bytes() == b"an earlier run's model"


def test_settings_that_would_never_write_model_pt_name_the_config_id(tmp_path):
    assert check_training_settings(10, 5, 0.2)
    for args, message in [
        ((0, 1, 0.2), "'num_epochs' = 0: must be at least 1"),
        ((-3, 1, 0.2), "'num_epochs' = -3"),
        ((2.5, 1, 0.2), "'num_epochs' = 2.5: must be a whole number"),
        ((10, 0, 0.2), "'val_interval' = 0: must be at least 1"),
        ((10, 11, 0.2), "'val_interval' = 11: is more than num_epochs"),
        ((10, 5, 0), "'val_fraction' = 0: must be above 0 and below 1"),
        ((10, 5, 1.0), "'val_fraction' = 1.0"),
        ((10, 5, "a lot"), "'val_fraction' = 'a lot'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_training_settings(*args)
    with pytest.raises(BoneScanError, match=r"model\.pt: training ended without writing the best model"):
        check_training_outputs(str(tmp_path))


def _datalist(tmp_path: Path, **overrides):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(CONFIGS / "quick.json")])
    parser.update({"bundle_root": str(tmp_path / "bundle"), **overrides})
    return parser.get_parsed_content("datalist", lazy=False)


def test_a_named_dataset_dir_is_used_never_generated_into(tmp_path, synthetic_dataset):
    # a folder the user named that does not exist: an error, unless generation is asked for
    with pytest.raises(RuntimeError) as info:  # MONAI wraps what an expression raises
        _datalist(tmp_path, dataset_dir=str(tmp_path / "mine"))
    cause = project_error(info.value)
    assert isinstance(cause, BoneScanError)
    quick_patients = json.loads((CONFIGS / "quick.json").read_text())["num_patients"]  # the configs' value, named
    assert str(cause).endswith("mine: dataset_dir does not exist and generate_dataset is false: pass --generate_dataset "
                               f"true to generate {quick_patients} synthetic patients (seed 42) into it, or --datalist "
                               "with your own dataset.json")
    assert not (tmp_path / "mine").exists()
    # the user's own datalist in that folder (no generator marker): used, nothing written
    own = tmp_path / "own"
    own.mkdir()
    document = json.loads(Path(synthetic_dataset).read_text())
    for section in ("training", "test"):
        for item in document[section]:
            for key in ("image", "label", "labelme"):
                item[key] = str(Path(synthetic_dataset).parent / item[key])
    (own / "dataset.json").write_text(json.dumps(document))
    assert _datalist(tmp_path, dataset_dir=str(own)) == str(own / "dataset.json")
    assert sorted(p.name for p in own.iterdir()) == ["dataset.json"]
    # explicit generation into a new folder: generated (2 patients keep it fast)
    path = _datalist(tmp_path, dataset_dir=str(tmp_path / "new"), generate_dataset="true", num_patients=2)
    assert Path(path).is_file() and (tmp_path / "new" / ".generated.json").is_file()


def test_tiny_settings_are_valid():
    assert check_training_settings(TINY["num_epochs"], TINY["val_interval"], 0.2)
