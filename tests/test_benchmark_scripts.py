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
         "--dtype", "both", "--repeat", "1", "--onednn", "off"],
        capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    rows = [line.split(" | ") for line in run.stdout.splitlines() if line.startswith("| 3 |")]
    assert [cells[1] for cells in rows] == ["float32", "float64"], run.stdout
    for cells in rows:
        c_forward, c_backward, c_whole = (float(cells[k]) for k in (2, 3, 4))
        assert c_forward > 0 and abs(c_forward + c_backward - c_whole) < 0.02, cells
    assert "running" in run.stdout and "kernels" in run.stdout, run.stdout
    assert "oneDNN" in run.stdout and "--onednn off" in run.stdout, run.stdout


def test_the_backends_table_names_the_blas_it_ran() -> None:
    """Issue 16 item 6: the header names the C kernels' BLAS (library, version, kernel
    family, threads) and NumPy's; with PyTorch, whether nn.LSTM runs oneDNN."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "backends.py"), "--nets",
         "lstm_no_peepholes", "--sizes", "3", "--dtype", "float64", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| lstm_no_peepholes |")]
    assert len(rows) == 1 and "C<NumPy" in rows[0], run.stdout
    assert "C kernel uses CBLAS: yes, bundled: OpenBLAS" in run.stdout, run.stdout
    assert "kernels on" in run.stdout and "numpy" in run.stdout, run.stdout
    if torch_reference.torch is not None:
        assert "oneDNN" in run.stdout, run.stdout


def test_a_fallback_kernel_family_is_a_warning() -> None:
    """OpenBLAS that did not know the CPU (Prescott, Core2) is named as such in the header."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.backends import c_blas_line
    from chainrule.codegen.backends.c.blas import BlasInfo

    class Kernel:  # what c_blas_line reads of a loaded C kernel
        def __init__(self, core: str) -> None:
            self.core = core
            self.blas = type("Blas", (), {"name": "system", "origin": "-lopenblas"})()

        def blas_info(self) -> BlasInfo:
            return BlasInfo(config="OpenBLAS 0.3.21", core=self.core, threads=2)

    assert "WARNING: Prescott is OpenBLAS's fallback" in c_blas_line(Kernel("Prescott"))
    assert "WARNING" not in c_blas_line(Kernel("Haswell"))


def test_peers_are_timed_in_turn_in_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """backends.interleaved_ms: each round times a block of every step, in order, so a ratio
    of two steps samples the same stretches of a drifting machine; the timed runs of a step
    are its repeat spread over the rounds (rounded up), each block after a warm-up."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import backends

    monkeypatch.setattr(backends, "WARMUP_S", 0.0)
    calls: list[str] = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ("C", "nn")}
    times = backends.interleaved_ms(steps, repeat=4, rounds=3)
    assert set(times) == {"C", "nn"} and all(value >= 0 for value in times.values())
    # per round and step: two warm-up calls, then ceil(4 / 3) = 2 timed ones
    assert calls == (["C"] * 4 + ["nn"] * 4) * 3, calls


def test_the_neighbours_table_times_c_alone_and_after_each_peer() -> None:
    """benchmarks/neighbours.py: one row per size, a column per neighbour (nn.LSTM only
    with PyTorch), each cell a median and the rounds' range."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "neighbours.py"), "--sizes", "3",
         "--dtype", "float64", "--rounds", "2", "--calls", "1"],
        capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| 3 | float64 |")]
    assert len(rows) == 1, run.stdout
    columns = 3 if torch_reference.torch is not None else 2
    assert rows[0].count("–") == columns and rows[0].count("|") == 2 + 2 * columns + 1, rows
    assert "after NumPy ms" in run.stdout and "C: yes, bundled: OpenBLAS" in run.stdout
