"""The benchmark scripts run (at tiny sizes: their timings mean nothing here, and no test
times anything). benchmarks/recurrent_product.py checks that its layouts compute the
same products before it times them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import torch_reference

ROOT = Path(__file__).resolve().parents[1]


def test_the_recurrent_product_layouts_agree_and_are_reported() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "recurrent_product.py"), "--sizes", "3,5",
         "--dtype", "both", "--threads", "1", "--rounds", "1", "--T", "2", "--B", "2"],
        capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("float")]
    assert len(rows) == 4, run.stdout
    for row in rows:
        assert row.count("ms (") == 4 and "ms (1.00x)" in row, row
    assert "packed-GEMM API: none" in run.stdout, run.stdout


@pytest.mark.skipif(torch_reference.torch is None, reason=torch_reference.SKIP_REASON)
def test_the_phase_split_reports_both_halves() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "phases.py"), "--sizes", "3",
         "--dtype", "both", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    rows = [line.split(" | ") for line in run.stdout.splitlines() if line.startswith("| 3 |")]
    assert [cells[1] for cells in rows] == ["float32", "float64"], run.stdout
    for cells in rows:
        c_forward, c_backward, c_whole = (float(cells[k]) for k in (2, 3, 4))
        assert c_forward > 0 and abs(c_forward + c_backward - c_whole) < 0.02, cells
    assert "running" in run.stdout and "kernels" in run.stdout, run.stdout
