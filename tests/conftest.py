"""Shared fixtures: a small synthetic data set (generated once per session) and the real NEMA NM1 scan."""

from __future__ import annotations

import os

# One intra-op thread for the whole session and the bundle runs it starts as subprocesses (they inherit
# the variable): the test networks are tiny, and on a 2-core runner spinning OpenMP threads of
# concurrent processes (DDP ranks, other jobs) slow them down many times over.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

SYNTHETIC_PATIENTS = 6
SYNTHETIC_SEED = 42


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> str:
    """Path of the ``dataset.json`` of a 6-patient synthetic set (4 training, 2 test patients)."""
    from msanet_monai.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("synthetic"), num_patients=SYNTHETIC_PATIENTS, seed=SYNTHETIC_SEED)


@pytest.fixture(scope="session")
def nm1_scan() -> str:
    """Path of the real NEMA NM1 whole-body anterior scan (pydicom-data ``JPEG-LL.dcm``)."""
    # ask for the one named file: a glob over pydicom's test files tries to download and hangs offline
    pydicom_data = pytest.importorskip("pydicom.data")
    return pydicom_data.get_testdata_file("JPEG-LL.dcm")
