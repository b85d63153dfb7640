"""``chainrule check``: every backend's gradients against finite differences, as a table."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from chainrule.codegen.app import check
from chainrule.codegen.app.cli import main
from chainrule.symbolic import Role
from chainrule.symbolic.networks import BUILTINS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows(table: str) -> dict[str, list[str]]:
    """The table's rows by first cell (the header row is keyed 'gradient')."""
    return {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]
            if line and not line.endswith(")") and ":" not in line}


def test_check_a_builtin(capsys) -> None:
    code, out, err = run(capsys, "check", "lstm")
    assert code == 0, out + err
    table = rows(out)
    backends = table["gradient"]
    assert backends[0] == "numpy"
    model = BUILTINS["lstm"]()
    names = [n for n in table if n not in ("gradient", "worst")]
    assert names == [q.name for q in model.of_role(Role.PARAMETER)] + ["h0", "s0"]
    for name in names:
        assert all(float(cell) < 1e-6 for cell in table[name] if cell != "-"), name
    assert out.startswith("lstm: gradients against central finite differences, float64")
    assert "ok: every gradient within 1e-06" in out
    if "c" not in backends:
        assert "c: skipped (" in out


def test_check_a_spec(capsys) -> None:
    code, out, _ = run(capsys, "check", "--model", str(EXAMPLES / "gru.toml"), "--seed", "3")
    assert code == 0, out
    assert set(rows(out)) >= {"W_xr", "W_hn", "b_xn", "b_hn", "h0", "worst"}


def test_check_fails_above_the_tolerance(capsys) -> None:
    code, out, _ = run(capsys, "check", "mlp", "--tolerance", "1e-30")
    assert code == 1
    assert "FAILED: above the tolerance 1e-30:" in out and "W_xh1 (numpy)" in out


def test_check_without_a_compiler_skips_c(capsys, monkeypatch) -> None:
    from chainrule.codegen.backends.c import loader as c_loader

    def find_compiler():
        raise c_loader.CompilerError("no C compiler was found: looked for 'cc'")

    monkeypatch.setattr(c_loader, "find_compiler", find_compiler)
    code, out, _ = run(capsys, "check", "rnn")
    assert code == 0
    assert "c: skipped (no C compiler was found: looked for 'cc')" in out
    assert rows(out)["gradient"] == ["numpy"]


def test_a_kernel_that_does_not_build_fails(capsys, monkeypatch) -> None:
    real = check.load

    def load(folder, backend="numpy"):
        if backend == "c":
            raise RuntimeError("cc failed:\nrnn.c:1: error: ...")
        return real(folder, backend=backend)

    monkeypatch.setattr(check, "load", load)
    code, out, _ = run(capsys, "check", "rnn")
    assert code == 1
    assert "c: FAILED, the kernel raised RuntimeError: cc failed: (... 1 more lines)" in out
    assert out.rstrip().endswith("FAILED: could not run the c kernel")


def test_a_model_the_engine_cannot_generate_fails(capsys, monkeypatch) -> None:
    def render(model, source=None):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(check, "render", render)
    code, out, _ = run(capsys, "check", "mlp")
    assert code == 1
    assert out.splitlines() == [
        "mlp: gradients against central finite differences, float64, 0 random cases",
        "generate: FAILED, generating the kernels raised IndexError: tuple index out of range",
        "FAILED: the kernels could not be generated",
    ]


def test_invalid_spec_is_a_usage_error(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "bad"\n')
    code, out, err = run(capsys, "check", "--model", str(spec))
    assert code == 2 and out == ""
    assert f"{spec}: the spec: the key 'sizes' is missing" in err


def test_the_oracle_catches_a_wrong_gradient() -> None:
    """A kernel whose gradient is off by a factor of two fails by a wide margin."""

    def loss_and_grad(params, x, labels, state=None):
        W = params["W"]
        return float((W**2).sum() + (W**3).sum()), {"W": W + 3 * W**2}  # 2W + 3W² is right

    kernel = SimpleNamespace(loss_and_grad=loss_and_grad)
    W = np.random.default_rng(0).normal(size=(2, 3))
    errors = check.finite_difference_errors(kernel, {"W": W}, None, None)
    assert errors["W"] > 0.1


def test_report_table() -> None:
    report = check.Report("toy", 1e-6, cases=[{"I": 2, "B": 1}],
                          errors={"numpy": {"W": 1e-12, "b": 2e-3}, "c": {"W": 3e-12}},
                          skipped={})
    assert not report.ok
    table = report.table()
    assert rows(table) == {"gradient": ["numpy", "c"], "W": ["1.0e-12", "3.0e-12"],
                           "b": ["2.0e-03", "-"], "worst": ["2.0e-03", "3.0e-12"]}
    assert "FAILED: above the tolerance 1e-06: b (numpy)" in table


def test_a_kernel_that_raises_is_reported(capsys, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(check, "finite_difference_errors", boom)
    code, out, _ = run(capsys, "check", "mlp")
    assert code == 1
    assert "numpy: FAILED, the kernel raised RuntimeError: boom" in out
    assert out.rstrip().splitlines()[-1].startswith("FAILED: could not run the numpy")


# A cell of our own (a minimal gated unit with a ReLU readout): its candidate reads the
# gated state f ⊙ h^{t-1} inside the recurrent sum. It found an engine bug: the fused
# input projections of f and n make a buffer named ``t12`` (Fuser.fresh joins t1 and
# t2), and lowering later hands out the same name to a fresh temporary of the backward
# pass: rendering the C kernel fails (IndexError in storage.assign_storage), or, for
# other cells, NumPy reads an unbound t1 and C overwrites the buffer (wrong gradients).
# The fix: codegen/lower.py's temporary() skips names already in the plan's arrays.
MGU = '''\
name = "mgu"
title = "Minimal gated unit with a ReLU readout"
sizes = ["I", "H", "O", "K"]
time = { index = "t", size = "T" }

[indices]
i = "I"
j = "H"
j_ = { size = "H", latex = "j'" }
o = "O"
k = "K"
k_ = { size = "K", latex = "k'" }

[quantities]
x = { role = "input", shape = ["I"], time = true }
z = { role = "target", shape = ["K"], time = true }
W_xf = { role = "parameter", shape = ["I", "H"] }
W_hf = { role = "parameter", shape = ["H", "H"] }
b_f = { role = "parameter", shape = ["H"] }
W_xn = { role = "parameter", shape = ["I", "H"] }
W_hn = { role = "parameter", shape = ["H", "H"] }
b_n = { role = "parameter", shape = ["H"] }
W_ho = { role = "parameter", shape = ["H", "O"] }
b_o = { role = "parameter", shape = ["O"] }
W_oy = { role = "parameter", shape = ["O", "K"] }
b_y = { role = "parameter", shape = ["K"] }
a_f = { role = "intermediate", shape = ["H"], time = true }
f = { role = "intermediate", shape = ["H"], time = true }
a_n = { role = "intermediate", shape = ["H"], time = true }
n = { role = "intermediate", shape = ["H"], time = true }
h = { role = "intermediate", shape = ["H"], time = true }
h0 = { role = "state", of = "h" }
a_o = { role = "intermediate", shape = ["O"], time = true }
r = { role = "intermediate", shape = ["O"], time = true }
a_y = { role = "intermediate", shape = ["K"], time = true }
y = { role = "intermediate", shape = ["K"], time = true }

[equations]
forward = [
    "a_f[j, t] = sum(W_xf[i, j] * x[i, t], i) + sum(W_hf[j_, j] * h[j_, t - 1], j_) + b_f[j]",
    "f[j, t] = logistic(a_f[j, t])",
    """a_n[j, t] = sum(W_xn[i, j] * x[i, t], i)
                 + sum(W_hn[j_, j] * f[j_, t] * h[j_, t - 1], j_) + b_n[j]""",
    "n[j, t] = tanh(a_n[j, t])",
    "h[j, t] = f[j, t] * h[j, t - 1] + (1 - f[j, t]) * n[j, t]",
    "a_o[o, t] = sum(W_ho[j, o] * h[j, t], j) + b_o[o]",
    "r[o, t] = relu(a_o[o, t])",
    "a_y[k, t] = sum(W_oy[o, k] * r[o, t], o) + b_y[k]",
    "y[k, t] = exp(a_y[k, t]) / sum(exp(a_y[k_, t]), k_)",
]
loss = "-sum(z[k, t] * log(y[k, t]), k, t)"
'''


def test_a_cell_of_our_own(capsys, tmp_path: Path) -> None:
    spec = tmp_path / "mgu.toml"
    spec.write_text(MGU)
    code, out, _ = run(capsys, "check", "--model", str(spec))
    assert code == 0, out


def test_readme_cell_goes_from_spec_to_checked_kernels(capsys, tmp_path: Path) -> None:
    """The README's own-cell walkthrough: its spec loads, and `chainrule check` passes on it."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    if not blocks:
        pytest.skip("the README has no spec walkthrough (a ```toml block) yet")
    spec = tmp_path / "mycell.toml"
    spec.write_text(blocks[0])
    assert "chainrule check --model mycell.toml" in readme
    code, out, _ = run(capsys, "check", "--model", str(spec))
    assert code == 0, out
