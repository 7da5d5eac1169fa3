"""The realism benchmark (benchmarks/synthetic_realism.py): its measures on the real NM1 scan, and the script as run.

NM1 against itself must give perfect figures, and a moved copy of it the same profile figures (the
profiles are aligned on the head top and resampled over the body length); a synthetic scan must not.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("pydicom.data")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "synthetic_realism.py"


def _module():
    spec = importlib.util.spec_from_file_location("synthetic_realism", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nm1() -> np.ndarray:
    from pydicom.data import get_testdata_file

    try:
        return pydicom.dcmread(get_testdata_file("JPEG-LL.dcm")).pixel_array.astype(np.float64)
    except (RuntimeError, ValueError) as e:  # no JPEG lossless decoder
        pytest.skip(f"NM1 cannot be decoded here: {e}")


def test_nm1_against_itself_and_moved(nm1):
    bench = _module()
    ref = bench.measure(nm1)
    same = bench.compare(ref, ref)
    assert same["row_r"] == pytest.approx(1.0) and same["col_r"] == pytest.approx(1.0)
    assert same["hist_w"] == pytest.approx(0.0) and same["hist_ks"] == pytest.approx(0.0)
    assert all(same[f"contrast_{r}"] == pytest.approx(1.0) for r in bench.REGIONS)
    assert same["nps_soft"] == pytest.approx(0.0) and same["nps_bone"] == pytest.approx(0.0)

    moved = np.zeros_like(nm1)
    moved[30:] = nm1[:-30]  # the patient 30 rows further down the table
    shifted = bench.compare(bench.measure(moved), ref)
    assert shifted["row_r"] > 0.999 and shifted["hist_ks"] < 0.01

    upside_down = bench.compare(bench.measure(nm1[::-1].copy()), ref)
    assert upside_down["row_r"] < 0.5


def test_row_profile_breakdown_separates_spread_from_bias():
    bench = _module()
    x = np.linspace(0, 1, bench.PROFILE_SAMPLES)
    nm1 = 1 + 0.5 * np.sin(6 * x)
    biased = nm1.copy()
    biased[100:120] += 1.0  # every patient brighter at samples 100-120
    text = bench.row_profile_breakdown([biased, biased], nm1)
    assert "each patient vs that mean median r = 1.000" in text
    assert text.split("mean 1): ")[1].startswith("samples 100-120 +1.00")


def test_script_prints_the_table_and_breakdown(tmp_path):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "realism.png"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--simulator", "planar", "3d", "--num-scans", "2",
                           "--figure", str(figure)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("row profile: mean of the patients vs NM1") == 2
    medians = [line.split() for line in out.splitlines() if line.split()[:2] in (["planar", "median"], ["3d", "median"])]
    assert len(medians) == 2 and all(0 < float(m[2]) < 1 for m in medians)  # row_r of simulated scans
    assert "ratio 3d / planar of the medians: hist_w" in out
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_hot_lesion_is_neither_bone_nor_soft_tissue(nm1):
    """A spot hotter than the bladder on the spine (a metastasis) is left out of bone by the bone finder;
    it must not count as soft tissue either, or the spine contrast falls for every patient with one."""
    bench = _module()
    ref = bench.measure(nm1)
    rows = nm1.sum(axis=1)
    top, bottom = bench._extent(rows)
    r = top + int(0.2 * (bottom - top))
    c = int(np.argmax(nm1[r - 3:r + 4].sum(axis=0)))  # the hottest column at a fifth of the body height (sternum)
    yy, xx = np.mgrid[:nm1.shape[0], :nm1.shape[1]]
    lesion = nm1.copy()
    lesion += 1.5 * nm1.max() * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 6.0 ** 2))
    with_lesion = bench.measure(lesion)
    # counted as soft tissue, the spot brought the spine figure to 0.62 of NM1's own
    assert with_lesion["contrast"]["spine"] == pytest.approx(ref["contrast"]["spine"], rel=0.1)
