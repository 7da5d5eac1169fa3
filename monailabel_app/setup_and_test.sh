#!/usr/bin/env bash
# Build the MONAI Label environment (.monailabel-venv at the repository root) and run the app's tests.
# One command on a fresh machine with Python 3.11: bash monailabel_app/setup_and_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MONAILABEL_VENV:-.monailabel-venv}
here=monailabel_app

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m pip install -q --upgrade pip >/dev/null
# torch named first so that pip takes the CPU build; the project with its own dependencies (pydicom 3, numpy 2)
python -m pip install -q -c "$here/constraints.txt" torch==2.13.0 -e .
# monailabel's metadata pulls sam2, torchvision and numpy<2 through pydicom-seg: install both without
# their dependencies, then only what the server imports
python -m pip install -q --no-deps -r "$here/requirements.txt"
python -m pip install -q -c "$here/constraints.txt" -r "$here/requirements-server.txt"
# pydicom-seg 0.4.1 imports pydicom._storage_sopclass_uids (removed in pydicom 3): alias it at start-up
site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cp "$here/lib/pydicom_compat.py" "$site/msanet_pydicom_compat.py"
echo "import msanet_pydicom_compat; msanet_pydicom_compat.install()" > "$site/msanet_pydicom_compat.pth"
python -c "import monailabel.app" >/dev/null

export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python -m pytest -q -p no:cacheprovider "$here/tests"
