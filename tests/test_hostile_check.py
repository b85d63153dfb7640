"""Hostile spec files (issue 11): ``chainrule check`` never passes a NaN or infinite result.

NaN compares false with everything: the worst error of a gradient was kept with
``max(0.0, nan)``, which is ``0.0``, so a kernel that computed NaN printed "ok".
Now a NaN or infinite loss or gradient fails the check, named per backend, and
NaN errors of the finite differences stay NaN through the worst-of-the-cases.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule.codegen.app import check
from chainrule.codegen.app.cli import main
from chainrule.symbolic.networks import BUILTINS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


class Poisoned:
    """A real kernel whose gradient ``name`` (or loss, for ``"loss"``) is ``value``."""

    def __init__(self, kernel: Any, name: str, value: float) -> None:
        self.kernel, self.name, self.value = kernel, name, value
        self.SIZES, self.PARAMS, self.STATE = kernel.SIZES, kernel.PARAMS, kernel.STATE
        self.CONTRACT = kernel.CONTRACT
        self.init_params = kernel.init_params

    def loss_and_grad(self, params, inputs, targets, state=None):
        loss, grads = self.kernel.loss_and_grad(params, inputs, targets, state)
        if self.name == "loss":
            return loss * self.value, grads
        grads = dict(grads)
        grads[self.name] = np.full_like(grads[self.name], self.value)
        return loss, grads


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("b_h1", math.nan, "the gradient of b_h1 (nan)"),
    ("W_h2y", math.inf, "the gradient of W_h2y (inf)"),
    ("loss", math.nan, "the loss (nan)"),
    ("loss", -math.inf, "the loss (inf)"),
])
def test_a_nan_or_infinite_result_fails_and_is_named(name, value, expected, monkeypatch) -> None:
    real = check.load
    monkeypatch.setattr(check, "load", lambda folder, backend="numpy":
                        Poisoned(real(folder, backend=backend), name, value))
    report = check.check_model(BUILTINS["mlp"](), backends=("numpy",))
    assert not report.ok
    assert report.not_finite == {"numpy": [expected]}
    table = report.table()
    assert f"numpy: FAILED, not finite: {expected}" in table
    assert table.rstrip().endswith("FAILED: NaN or infinite loss or gradients from the numpy "
                                   "kernel")


def test_a_nan_error_is_not_lost_in_the_worst_of_the_cases(monkeypatch) -> None:
    """The first case's error is NaN, the second's 0: the worst stays NaN (max gave 0.0)."""
    results = iter([{"W_xh1": math.nan}, {"W_xh1": 0.0}])
    monkeypatch.setattr(check, "finite_difference_errors", lambda *a, **k: next(results))
    report = check.check_model(BUILTINS["mlp"](), backends=("numpy",), cases=2)
    assert math.isnan(report.errors["numpy"]["W_xh1"])
    assert math.isnan(report.worst)
    assert not report.ok
    table = report.table()
    assert "FAILED: above the tolerance 1e-06: W_xh1 (numpy)" in table
    assert "nan" in table.splitlines()[-2]  # the worst row


def test_report_with_a_nan_error() -> None:
    report = check.Report("toy", 1e-6, cases=[{"I": 1}],
                          errors={"numpy": {"W": 1e-12, "b": math.nan}})
    assert not report.ok and math.isnan(report.worst)
    assert "FAILED: above the tolerance 1e-06: b (numpy)" in report.table()


def test_a_spec_whose_kernels_overflow_fails_the_check(capsys, tmp_path: Path) -> None:
    """exp(1000 b_y) overflows for the random parameters: NaN softmax, NaN everything."""
    mlp = (EXAMPLES / "mlp.toml").read_text()
    old = '"a_y[k] = sum(W_h2y[h2, k] * act2[h2], h2) + b_y[k]"'
    assert mlp.count(old) == 1
    spec = tmp_path / "overflow.toml"
    spec.write_text(mlp.replace(old, old.replace("b_y[k]", "exp(b_y[k] * 1000)")))
    code, out = run(capsys, "check", "--model", str(spec))
    assert code == 1, out
    assert "ok:" not in out
    assert "numpy: FAILED, not finite: the loss (nan)" in out
    if "c: skipped" not in out:
        assert "c: FAILED, not finite: the loss (nan)" in out
    assert "FAILED: NaN or infinite loss or gradients" in out.splitlines()[-1]


def test_not_finite_names_every_bad_output() -> None:
    grads = {"W": np.array([[1.0, np.nan], [np.inf, 0.0]]), "b": np.zeros(2)}
    assert check.not_finite(np.float32(1.0), grads) == ["the gradient of W (nan, inf)"]
    assert check.not_finite(math.nan, {"b": np.zeros(2)}) == ["the loss (nan)"]
    assert check.not_finite(1.0, {"b": np.zeros(2)}) == []


def test_a_finite_check_still_passes(capsys) -> None:
    code, out = run(capsys, "check", "mlp")
    assert code == 0 and "ok: every gradient within 1e-06" in out
