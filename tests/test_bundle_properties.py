"""MONAI bundle properties: what MONAI Label, MONAI Deploy and NVFlare look up in a bundle by id.

``ConfigWorkflow.check_properties()`` returns the optional properties defined under a wrong id and
fails on a required one it cannot find; it must return an empty list for train.json and inference.json.
The workflows are built on the synthetic dataset fixture with tiny widths, so every property is
really instantiated (trainer, datasets, evaluator, network).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigWorkflow
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.inferers import Inferer

from msanet_monai.networks.nets import MSANet

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "bundle"
CONFIGS = BUNDLE_DIR / "configs"
TINY_TRAIN = {
    "generator_channels": [4, 8, 8, 16, 16],
    "critic_channels": [4, 8, 8, 16, 16, 16],
    "num_workers": 0,
    "cache_rate": 0.0,
}


def _workflow(config_files: list[Path], workflow_type: str, **override) -> ConfigWorkflow:
    workflow = ConfigWorkflow(
        config_file=[str(f) for f in config_files],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        workflow_type=workflow_type,
        **override,
    )
    workflow.initialize()
    return workflow


@pytest.fixture
def train_workflow(synthetic_dataset, tmp_path):
    return _workflow(
        [CONFIGS / "train.json", CONFIGS / "quick.json"], "train",
        bundle_root=str(tmp_path), datalist=synthetic_dataset, **TINY_TRAIN,
    )


@pytest.fixture
def infer_workflow(synthetic_dataset, tmp_path):
    if not (CONFIGS / "inference.json").is_file():
        pytest.fail("bundle/configs/inference.json is missing")
    dataset_dir = str(Path(synthetic_dataset).parent)
    return _workflow(
        [CONFIGS / "inference.json"], "infer",
        bundle_root=str(tmp_path), dataset_dir=dataset_dir, generator_channels=TINY_TRAIN["generator_channels"],
    )


def test_train_properties_complete(train_workflow):
    assert train_workflow.check_properties() == []
    # the properties resolve to the objects an application expects
    assert isinstance(train_workflow.trainer, SupervisedTrainer)
    assert train_workflow.max_epochs == json.loads((CONFIGS / "quick.json").read_text())["num_epochs"]
    assert len(train_workflow.train_dataset) > 0
    assert isinstance(train_workflow.train_inferer, Inferer)
    assert isinstance(train_workflow.evaluator, SupervisedEvaluator)
    assert isinstance(train_workflow.network_def, MSANet)
    assert isinstance(train_workflow.device, torch.device)
    # an application may replace the data through the property, e.g. a federated-learning client
    first = train_workflow.train_dataset_data[:1]
    train_workflow.train_dataset_data = first
    train_workflow.initialize()
    assert len(train_workflow.train_dataset) == 1


def test_train_properties_report_a_missing_id(synthetic_dataset, tmp_path):
    """check_properties really looks: move the train inferer out of its id and it is reported."""
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / "train.json"), str(CONFIGS / "quick.json")],
        meta_file=str(CONFIGS / "metadata.json"), logging_file=str(CONFIGS / "logging.conf"),
        workflow_type="train", bundle_root=str(tmp_path), datalist=synthetic_dataset, **TINY_TRAIN,
    )
    train = workflow.parser["train"]
    train.pop("inferer")  # the train inferer is a required property ...
    train["trainer"]["inferer"] = {"_target_": "SimpleInferer"}  # ... the trainer still gets one inline
    workflow.initialize()
    # MONAI 1.6 raises here rather than listing it: hasattr() inside check_properties lets the KeyError through
    with pytest.raises(KeyError, match="Property 'train_inferer' with config ID 'train::inferer' not in the config"):
        workflow.check_properties()


def test_infer_properties_complete(infer_workflow):
    assert infer_workflow.check_properties() == []
    assert isinstance(infer_workflow.evaluator, SupervisedEvaluator)
    assert isinstance(infer_workflow.network_def, MSANet)
    assert isinstance(infer_workflow.inferer, Inferer)
    assert len(infer_workflow.dataset) > 0
    assert isinstance(infer_workflow.device, torch.device)
