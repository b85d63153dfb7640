"""``chainrule verify``: every recorded step of a derivation, before against after, in numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sympy

from chainrule import codegen
from chainrule.codegen.app import cli
from chainrule.codegen.artifacts import render
from chainrule.codegen.backends.latex.backend import render_tex
from chainrule.codegen.writer import write_atomically
from chainrule.symbolic import (
    Derivation,
    InRange,
    Model,
    Partial,
    Rule,
    Sum,
    derive,
    exp,
    log,
    tanh,
)
from chainrule.symbolic import functions as rules_of_functions
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import load_spec
from chainrule.symbolic.verify import (
    TOLERANCE,
    Numbers,
    VerifyError,
    default_cases,
    verify_derivation,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
_DERIVED: dict[str, Derivation] = {}


def derived(name: str) -> Derivation:
    """The built-in's derivation, derived once for the whole file (never mutated)."""
    if name not in _DERIVED:
        _DERIVED[name] = derive(BUILTINS[name]())
    return _DERIVED[name]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def corrupted(derivation: Derivation, name: str, number: int,
              change: Callable[[sympy.Expr], sympy.Expr]) -> Derivation:
    """A copy of ``derivation`` whose adjoint ``name`` has step ``number``'s ``after`` changed."""
    adjoint = derivation.adjoints[name]
    steps = list(adjoint.steps)
    steps[number - 1] = dataclasses.replace(steps[number - 1],
                                            after=change(steps[number - 1].after))
    assert steps[number - 1] != adjoint.steps[number - 1], "the change changed nothing"
    return Derivation(derivation.model,
                      {**derivation.adjoints, name: dataclasses.replace(adjoint, steps=steps)},
                      derivation.backward_order)


@pytest.fixture
def wrong_tanh_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """tanh' = 1 - b instead of 1 - b², under the rule's own key."""
    wrong = rules_of_functions.RegisteredRule(Rule.DERIVATIVE_TANH, lambda x, y: 1 - y)
    monkeypatch.setitem(rules_of_functions._RULES, sympy.tanh, wrong)


# --- correct derivations pass ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILTINS))
def test_every_builtin_verifies(name: str) -> None:
    derivation = derived(name)
    report = verify_derivation(derivation)
    assert report.ok, report.table()
    assert len(report.steps) == sum(len(a.steps) for a in derivation.adjoints.values())
    assert report.worst < 1e-12  # rounding only: the derivatives are complex-step ones


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda path: path.name)
def test_every_example_verifies(path: Path) -> None:
    """Those reading t+1 (brnn, the blstms: a loop down in time) and t-2 (rnn_skip: a
    padding step t = -1) included."""
    report = verify_derivation(derive(load_spec(path)))
    assert report.ok, report.table()
    assert report.worst < 1e-12


def skip_ahead(*shifts: int) -> Model:
    """A tanh RNN whose hidden layer reads ``h`` at ``t + s`` for each shift (``1, 2``: a
    loop down in time, its initial state at T+1 and a padding step T+2; ``-1, -2``:
    rnn_skip's loop up), softmax output and cross-entropy at every step."""
    m = Model("skip_" + "_".join(f"{'ahead' if s > 0 else 'back'}{abs(s)}" for s in shifts))
    I, H, K = m.size("I"), m.size("H"), m.size("K")
    t = m.time()
    i, j, j_ = m.index("i", I), m.index("j", H), m.index("j_", H)
    k, k_ = m.index("k", K), m.index("k_", K)
    x, z = m.input("x", [I], time=True), m.target("z", [K], time=True)
    W_xh, W_hy = m.parameter("W_xh", [I, H]), m.parameter("W_hy", [H, K])
    W = [m.parameter(f"W_hh{n}", [H, H]) for n in range(len(shifts))]
    a_h, h = m.intermediate("a_h", [H], time=True), m.intermediate("h", [H], time=True)
    a_y, y = m.intermediate("a_y", [K], time=True), m.intermediate("y", [K], time=True)
    m.state("h0", of=h)
    m.define(a_h[j, t], Sum(W_xh[i, j] * x[i, t], i)
             + sum(Sum(w[j_, j] * h[j_, t + s], j_) for w, s in zip(W, shifts, strict=True)))
    m.define(h[j, t], tanh(a_h[j, t]))
    m.define(a_y[k, t], Sum(W_hy[j, k] * h[j, t], j))
    m.define(y[k, t], exp(a_y[k, t]) / Sum(exp(a_y[k_, t]), k_))
    m.loss(-Sum(z[k, t] * log(y[k, t]), k, t))
    return m


def test_reads_two_steps_ahead_verify() -> None:
    report = verify_derivation(derive(skip_ahead(1, 2)))
    assert report.ok, report.table()
    assert report.worst < 1e-12


def test_initial_states_and_padding_are_where_the_kernels_have_them() -> None:
    """A loop up in t starts from its state at t = 0, one down from its state at T+1; a
    read further back (t-2) or ahead (t+2) finds zeros beyond the state, not NaN."""
    for model, initial, padding in [(skip_ahead(-1, -2), 0, -1), (skip_ahead(1, 2), 4, 5),
                                    (load_spec(EXAMPLES / "brnn.toml"), 4, None)]:
        numbers = Numbers(model, {"I": 2, "H": 3, "K": 2, "T": 3}, np.random.default_rng(0))
        state = "g0" if model.name == "brnn" else "h0"
        owner = numbers.values[model.quantity(state).state_of]
        assert np.array_equal(owner[..., numbers.slot(initial)], numbers.values[state])
        if padding is not None:
            assert np.all(owner[..., numbers.slot(padding)] == 0)
        assert np.isfinite(owner[..., numbers.slot(1):numbers.slot(3) + 1]).all()


@pytest.mark.parametrize("model", [load_spec(EXAMPLES / "brnn.toml"), skip_ahead(-1, -2),
                                   skip_ahead(1, 2)], ids=lambda model: model.name)
def test_the_forward_pass_and_its_adjoints_are_the_kernels(model: Model,
                                                            tmp_path: Path) -> None:
    """The verifier's own forward pass (loops up and down, states, padding) gives the
    generated NumPy kernel's loss, and its complex-step adjoints the kernel's gradients."""
    write_atomically(tmp_path, render(model))
    kernel = codegen.load(tmp_path)
    numbers = Numbers(model, {"I": 2, "H": 3, "K": 2, "T": 4}, np.random.default_rng(1))
    steps = slice(numbers.slot(1), numbers.slot(numbers.T) + 1)

    def series(name: str) -> np.ndarray:  # (1, *units, slots) -> (T, B = 1, *units)
        return np.moveaxis(numbers.values[name][0][..., steps], -1, 0)[:, np.newaxis]

    contract = kernel.CONTRACT
    assert not contract["targets"]
    params = {name: numbers.values[name][0] for name in contract["params"]}
    state = {name: numbers.values[name] for name in contract["state"]}
    labels = {name: np.argmax(series(name), axis=-1) for name in contract["labels"]}
    loss, grads = kernel.loss_and_grad(params, {n: series(n) for n in contract["inputs"]},
                                       labels, state)
    assert abs(loss - numbers.values[model.loss_name][0]) < 1e-12
    assert set(grads) == {*params, *state}
    for name, grad in grads.items():
        adjoint = numbers.adjoint(model.quantity(name))[0]
        assert np.abs(grad - adjoint).max() < 1e-12, name


def test_a_recurrence_both_up_and_down_in_time_is_refused() -> None:
    """a reads b at t-1 and b reads a at t+1: no loop through time computes them. The model
    checks refuse it before derive() (tests/test_model_errors.py); the verifier's own
    forward pass refuses it too."""
    m = Model("zigzag")
    H = m.size("H")
    t = m.time()
    j = m.index("j", H)
    x = m.input("x", [H], time=True)
    a, b = m.intermediate("a", [H], time=True), m.intermediate("b", [H], time=True)
    m.state("a0", of=a)
    m.state("b0", of=b)
    m.define(a[j, t], tanh(x[j, t] + b[j, t - 1]))
    m.define(b[j, t], tanh(a[j, t + 1]))
    m.loss(Sum(a[j, t] * b[j, t], j, t))
    with pytest.raises(VerifyError, match="a, b read each other both at earlier and at later "
                                          "steps"):
        Numbers(m, {"H": 2, "T": 3}, np.random.default_rng(0))


def test_the_cases_include_size_one_and_a_long_sequence() -> None:
    rnn = default_cases(BUILTINS["rnn"](), np.random.default_rng(0))
    assert rnn[0] == {"I": 1, "H": 1, "K": 1, "T": 1}
    assert any(case["T"] >= 3 for case in rnn)
    assert any(min(case.values()) >= 2 for case in rnn)
    mlp = default_cases(BUILTINS["mlp"](), np.random.default_rng(0))
    assert all(set(case) == {"I", "H1", "H2", "K"} for case in mlp)


def test_a_loss_reading_a_quantity_that_others_read() -> None:
    """``∂L/∂L · ∂L/∂h`` in the chain rule is the loss equation's local partial, not the
    adjoint ∂L/∂h: a model whose loss reads h beside a_y tells the two apart."""
    m = Model("reg")
    I, H, K = m.size("I"), m.size("H"), m.size("K")
    t = m.time()
    i, j, j_ = m.index("i", I), m.index("j", H), m.index("j_", H)
    k, k_ = m.index("k", K), m.index("k_", K)
    x, z = m.input("x", [I], time=True), m.target("z", [K], time=True)
    W_xh, W_hh = m.parameter("W_xh", [I, H]), m.parameter("W_hh", [H, H])
    W_hy, g = m.parameter("W_hy", [H, K]), m.parameter("g", [H])
    a_h, h = m.intermediate("a_h", [H], time=True), m.intermediate("h", [H], time=True)
    a_y, y = m.intermediate("a_y", [K], time=True), m.intermediate("y", [K], time=True)
    v = m.intermediate("v", [H])  # over no time, in a model over time
    m.state("h0", of=h)
    m.define(v[j], 2 * tanh(g[j]))
    m.define(a_h[j, t], Sum(W_xh[i, j] * x[i, t], i) + Sum(W_hh[j_, j] * h[j_, t - 1], j_) + v[j])
    m.define(h[j, t], tanh(a_h[j, t]))
    m.define(a_y[k, t], Sum(W_hy[j, k] * h[j, t], j))
    m.define(y[k, t], exp(a_y[k, t]) / Sum(exp(a_y[k_, t]), k_))
    m.loss(-Sum(z[k, t] * log(y[k, t]), k, t) + Sum(h[j, t] ** 2, j, t) / 10)
    derivation = derive(m)
    loss = sympy.Symbol("L")
    assert derivation.adjoint("h").steps[0].after.has(Partial(loss, loss))
    report = verify_derivation(derivation)
    assert report.ok, report.table()


# --- wrong steps are caught and named -----------------------------------------------------------


@pytest.mark.usefixtures("wrong_tanh_rule")
def test_a_wrong_derivative_rule_is_caught() -> None:
    report = verify_derivation(derive(BUILTINS["rnn"]()))
    assert not report.ok
    (failure,) = report.failures
    assert (failure.adjoint, failure.number, failure.rule_key) == ("a_h", 2, Rule.LOCAL_PARTIALS)
    assert failure.worst > 1e-3
    assert set(failure.sizes) == {"I", "H", "K", "T"} and set(failure.at) == {"j", "t"}
    table = report.table()
    assert f"FAILED: 1 of {len(report.steps)} steps above the tolerance 1e-09:" in table
    sizes = ", ".join(f"{n}={v}" for n, v in failure.sizes.items())
    assert (f"step 2 (local partials) of d_a_h = ∂L/∂a_h: off by {failure.worst:.1e} "
            f"({sizes}, at ") in table


def test_a_lost_boundary_condition_is_caught() -> None:
    """Without [t ≤ T-1], δ_h^t reads δ_h^{T+1}, which does not exist."""
    derivation = corrupted(derived("rnn"), "a_h", 4, lambda after: after.replace(
        lambda node: isinstance(node, InRange), lambda node: sympy.S.One))
    (failure,) = verify_derivation(derivation).failures
    assert (failure.adjoint, failure.number, failure.rule_key) == ("a_h", 4,
                                                                   Rule.KRONECKER_DELTA)
    assert failure.problem is not None and "not finite" in failure.problem
    assert failure.at["t"] == failure.sizes["T"]


def test_a_term_at_the_wrong_time_is_caught() -> None:
    """ε_s^t reads ε_s^{t+1}; reading ε_s^t instead is wrong wherever T > 1."""
    lstm = derived("lstm")
    t = lstm.model.time_index

    def shift(after: sympy.Expr) -> sympy.Expr:
        return after.replace(
            lambda node: isinstance(node, sympy.Indexed) and node.base.name == "d_s",
            lambda node: node.base[node.indices[0], t])

    report = verify_derivation(corrupted(lstm, "s", 4, shift))
    (failure,) = report.failures
    assert (failure.adjoint, failure.number, failure.rule_key) == ("s", 4, Rule.KRONECKER_DELTA)
    assert failure.worst > 1e-3 and failure.sizes["T"] > 1


def test_a_wrong_step_of_a_loop_down_in_time_is_caught() -> None:
    """brnn's backward layer g reads g[t+1]: δ_g^t takes W_gg δ_{a_g}^{t-1}; the weight
    transposed is wrong wherever H > 1 and T > 1."""
    brnn = derive(load_spec(EXAMPLES / "brnn.toml"))
    step = brnn.adjoint("g").steps[3]
    assert "W_gg[j, j']*d_a_g[j', t - 1]" in str(step.after)

    def transpose(after: sympy.Expr) -> sympy.Expr:
        return after.replace(
            lambda node: isinstance(node, sympy.Indexed) and node.base.name == "W_gg",
            lambda node: node.base[node.indices[1], node.indices[0]])

    (failure,) = verify_derivation(corrupted(brnn, "g", 4, transpose)).failures
    assert (failure.adjoint, failure.number, failure.rule_key) == ("g", 4, Rule.KRONECKER_DELTA)
    assert failure.problem is None and failure.worst > 1e-3
    assert failure.sizes["H"] > 1 and failure.sizes["T"] > 1


def test_a_lost_boundary_of_a_loop_down_in_time_is_caught() -> None:
    """Without [2 ≤ t], δ_g^1 reads δ_{a_g}^0, which does not exist; and the state at
    T+1 takes δ_{a_g}^T, not δ_{a_g}^1."""
    brnn = derive(load_spec(EXAMPLES / "brnn.toml"))
    T = brnn.model.time_index.upper
    lost = corrupted(brnn, "g", 4, lambda after: after.replace(
        lambda node: isinstance(node, InRange) and node.args[1] == 2,
        lambda node: sympy.S.One))
    (failure,) = verify_derivation(lost).failures
    assert (failure.adjoint, failure.number) == ("g", 4)
    assert failure.problem is not None and "not finite" in failure.problem
    assert failure.at["t"] == 1
    early = corrupted(brnn, "g0", 2, lambda after: after.xreplace({T: sympy.S.One}))
    (failure,) = verify_derivation(early).failures
    assert (failure.adjoint, failure.number, failure.rule_key) == ("g0", 2,
                                                                   Rule.BOUNDARY_AFTER_END)
    assert failure.worst > 1e-3 and failure.sizes["T"] > 1


# --- the command line ---------------------------------------------------------------------------


def test_verify_a_builtin_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "verify", "mlp")
    assert code == 0, out + err
    assert out.startswith("mlp: every recorded step, before against after, at random values")
    assert "3 cases (I=1 H1=1 H2=1 K=1; " in out
    assert out.splitlines()[1].split() == ["adjoint", "step", "rule", "worst"]
    assert "ok: all 49 steps within 1e-09" in out


def test_verify_a_spec_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "verify", "--model", str(EXAMPLES / "rnn.toml"), "--seed", "3")
    assert code == 0, out
    assert "d_h0        2  boundary: t = 0" in out


@pytest.mark.usefixtures("wrong_tanh_rule")
def test_verify_a_wrong_step_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "verify", "mlp")
    assert code == 1, out
    assert "FAILED: 2 of 49 steps above the tolerance 1e-09:" in out
    assert "step 2 (local partials) of d_a2 = ∂L/∂a2: off by " in out
    assert "step 2 (local partials) of d_a1 = ∂L/∂a1: off by " in out


def test_verify_exits_2_when_the_model_cannot_be_read(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "bad"\n')
    code, _, err = run(capsys, "verify", "--model", str(spec))
    assert code == 2 and "the key 'sizes' is missing" in err
    code, _, err = run(capsys, "verify", "--model", str(tmp_path / "missing.toml"))
    assert code == 2 and "cannot read the spec file" in err
    code, _, err = run(capsys, "verify", "nonet")
    assert code == 2 and "unknown network 'nonet'" in err
    code, _, err = run(capsys, "verify")
    assert code == 2 and "give NET (a built-in network) or --model FILE" in err


def test_the_default_tolerance_is_the_modules() -> None:
    assert cli.VERIFY_TOLERANCE == TOLERANCE
    assert cli.build_parser().parse_args(["verify", "mlp"]).tolerance == TOLERANCE


# --- the notes say so ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_notes_say_every_step_was_checked(lang: str) -> None:
    text = render_tex(derive(BUILTINS["rnn"]()), lang)
    steps = len(verify_derivation(derive(BUILTINS["rnn"]())).steps)
    assert "\\texttt{chainrule verify}" in text
    assert f"{steps} " in text and "$10^{-12}$" in text


@pytest.mark.usefixtures("wrong_tanh_rule")
def test_the_notes_of_a_wrong_derivation_say_so() -> None:
    # the summary's matrix forms are checked against the true values, not the derivation:
    # the wrong δ_h loses its matrix form
    with pytest.warns(UserWarning, match=r"the matrix form of dL/da_h at .* off by"):
        text = render_tex(derive(BUILTINS["rnn"]()), "en")
    assert "The numerical check of the steps failed" in text
    assert "$10^{-12}$" not in text
