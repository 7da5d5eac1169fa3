"""Fixtures of the MONAI Label app tests (run by ``monailabel_app/setup_and_test.sh``)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
