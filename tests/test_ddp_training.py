"""multi_gpu_train.json: the same training under torchrun with DistributedDataParallel, here two CPU
processes on the gloo backend (chosen by the config when CUDA is absent)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from conftest import SYNTHETIC_PATIENTS, SYNTHETIC_SEED
from _bundle_runs import CONFIGS, TINY, completed_epochs, run, training_command, val_metric_lines


def test_two_process_ddp_on_gloo(tmp_path, synthetic_dataset):
    batch = 2  # each rank gets 2 of the 4 training images: one iteration per epoch instead of two
    # the config's own datalist: ensure_dataset on rank 0 first; the fixture's set is found current, not rewritten
    cmd = training_command(
        tmp_path,
        None,
        extra_configs=[str(CONFIGS / "multi_gpu_train.json")],
        dataset_dir=str(Path(synthetic_dataset).parent),
        num_patients=SYNTHETIC_PATIENTS,
        dataset_seed=SYNTHETIC_SEED,
        train_batch_size=batch,
    )
    written = Path(synthetic_dataset).stat().st_mtime_ns
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    log = run(cmd, launcher=launcher, extra_env={"OMP_NUM_THREADS": "1"})  # two processes, small machine

    assert Path(synthetic_dataset).stat().st_mtime_ns == written, "the existing data set was generated again"
    for rank in (0, 1):
        assert f"DDP: rank {rank} of world size 2, backend gloo" in log, log[-3000:]
    state = torch.load(tmp_path / "models" / "checkpoint_epoch=2.pt", weights_only=True)["trainer"]
    assert completed_epochs(state) == TINY["num_epochs"]
    per_rank = math.ceil(4 / 2)  # DistributedSampler shards the 4 images between the 2 ranks
    assert state["epoch_length"] == math.ceil(per_rank / batch)
    assert (tmp_path / "models" / "model.pt").is_file()
    assert len(val_metric_lines(log)) == TINY["num_epochs"]  # rank 0 logs, the others are quiet
