"""The summary's matrix and vector forms (codegen/backends/latex/vector.py): each is the
index form rewritten over whole vectors, so a product of vectors over different units is
an outer product, never an elementwise one, and a matrix product inside an elementwise
product is parenthesised."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
from sympy import Idx

from chainrule.codegen.backends.latex.printer import NotesLatexPrinter, graves_function
from chainrule.codegen.backends.latex.teaching import teaching_context
from chainrule.codegen.backends.latex.vector import Atom, VectorForms, _axes, _NoForm
from chainrule.codegen.backends.latex.vector_check import FormCheck, check_forms, failing_forms
from chainrule.symbolic import derive
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import load_spec

#: its hidden layer is scaled by a second input over the hidden units:
#: a_h = u_h Σ_i w_ih x_i + β_h
SCALED = Path(__file__).resolve().parents[1] / "examples" / "mlp_two_inputs.toml"


def _forms():
    derivation = derive(load_spec(SCALED))
    forms = VectorForms(derivation.model)
    return derivation, forms


def test_a_gradient_over_two_units_is_an_outer_product_of_elementwise_products() -> None:
    derivation, forms = _forms()
    gradient = derivation.gradients["W_xh"]
    matrix = forms.form(gradient.expr, tuple(gradient.indices))
    # ∂L/∂w_ih = x_i u_h δ_h: x (u ⊙ δ)ᵀ, not the elementwise u ⊙ x ⊙ δ
    assert matrix == r"x (u \odot \delta)^{\top}", matrix


def test_a_matrix_product_inside_an_elementwise_product_is_parenthesised() -> None:
    derivation, forms = _forms()
    equation = derivation.model.equations["a_h"]
    matrix = forms.form(equation.rhs, tuple(equation.lhs.indices))
    assert r"\left(W^{(xh)\,\top} x\right) \odot u" in matrix, matrix
    backward = next(a for a in derivation.named if a.quantity.name == "a_h")
    assert r"\odot \left(W^{(hy)} \delta^{(y)}\right)" in forms.form(backward.expr), backward


def test_vectors_over_different_units_have_no_elementwise_product() -> None:
    i, h = Idx("i", sympy.Symbol("I")), Idx("h", sympy.Symbol("H"))
    x, d = Atom("x", (i,)), Atom(r"\delta", (h,))
    assert _axes(x * x) == (i,) and _axes(x + x) == (i,)
    with pytest.raises(_NoForm):
        _axes(x * d)


# --- the numerical check of every matrix form (codegen/backends/latex/vector_check.py) ------

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_matrix_form_of_a_builtin_equals_the_true_values(name: str) -> None:
    checks = check_forms(derive(BUILTINS[name]()))
    assert checks and all(check.ok for check in checks), \
        [check.describe() for check in checks if not check.ok]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_matrix_form_of_an_example_equals_the_true_values(path: Path) -> None:
    checks = check_forms(derive(load_spec(path)))
    assert checks and all(check.ok for check in checks), \
        [check.describe() for check in checks if not check.ok]


def test_the_builtins_summaries_have_a_matrix_form_in_every_row() -> None:
    # every forward equation, the loss, each adjoint and gradient: 16 rows of the MLP,
    # 38 of the LSTM (rows without a form are not checked, so none may go missing)
    rows = {name: len({c.row for c in check_forms(derive(BUILTINS[name]()),
                                                  cases=[SIZES])}) for name in BUILTINS}
    assert rows == {"mlp": 16, "rnn": 13, "lstm": 38, "lstm_no_peepholes": 35, "brnn": 21,
                    "blstm": 65}, rows


SIZES = {"I": 4, "H": 2, "H1": 2, "H2": 3, "K": 3, "T": 3}


def _checked(model, sizes=None) -> dict[str, FormCheck]:
    derivation = derive(model)
    cases = [{n: v for n, v in (sizes or SIZES).items() if n in model.sizes}]
    return {check.row: check for check in check_forms(derivation, cases=cases)}


def test_a_form_with_a_forgotten_transpose_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # the RNN's recurrent product W^{(hh)⊤} b^{t-1}, printed and computed without ⊤
    real = VectorForms.symbol

    def untransposed(self, name, adjoint, time, transposed=False):
        return real(self, name, adjoint, time)

    monkeypatch.setattr(VectorForms, "symbol", untransposed)
    original = Atom.__new__

    def flipped(cls, tex, axes, rank=2, compound=False, op=()):
        if op[:1] == ("matvec",):
            op = (op[0], op[1], not op[2], op[3])
        return original(cls, tex, axes, rank, compound, op)

    monkeypatch.setattr(Atom, "__new__", flipped)
    checks = _checked(BUILTINS["rnn"]())
    # W^{(xh)} x^t does not fit (I ≠ H); W^{(hh)} b^{t-1} fits and is off
    assert not checks["a_h"].ok
    assert "matrix of shape (4, 2) times a vector of shape (4,)" in checks["a_h"].problem
    checks = _checked(BUILTINS["rnn"](), {**SIZES, "I": 2})
    assert not checks["a_h"].ok and checks["a_h"].problem is None, checks["a_h"]
    assert checks["a_h"].worst > 1e-3


def test_a_form_with_swapped_outer_factors_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Atom.__new__

    def swapped(cls, tex, axes, rank=2, compound=False, op=()):
        if op[:1] == ("outer",):
            op = (op[0], op[2], op[1])
        return original(cls, tex, axes, rank, compound, op)

    monkeypatch.setattr(Atom, "__new__", swapped)
    checks = _checked(BUILTINS["mlp"]())
    gradients = [c for row, c in checks.items() if row.startswith("dL/dW")]
    # x (δ)ᵀ computed as δ xᵀ: the wrong shape, or (H2 = K) the transposed values
    assert len(gradients) == 3 and not any(c.ok for c in gradients), gradients
    assert "the form has shape (2, 4), the left side (4, 2)" in checks["dL/dW_xh1"].problem


def test_a_dropped_range_condition_fails_and_the_notes_leave_the_form_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the classifier reads the output at t = T only: ε_c^t = ... + [t = T] W^{(y)} δ_k; a
    # form without the bracket adds the output's term at every step
    model = load_spec(Path(__file__).resolve().parents[1] / "examples" / "lstm_classifier.toml")
    assert _checked(model)["dL/dh"].ok
    monkeypatch.setattr(NotesLatexPrinter, "implied", lambda self, condition, product: True)
    check = _checked(model)["dL/dh"]
    assert not check.ok and check.worst > 1e-3, check
    with pytest.warns(UserWarning, match=r"matrix form of dL/dh at .*off by"):
        context = teaching_context(derive(model))
    rows = context["summary"]["backward"]
    epsilon = next(row for row in rows if r"\epsilon_{c}^{t} &=" in row["index"]
                   or r"\epsilon_{c}^{t} =" in row["index"])
    assert epsilon["matrix"] == "", epsilon


def test_the_index_form_prints_a_range_condition_the_boundary_values_do_not_imply() -> None:
    model = load_spec(Path(__file__).resolve().parents[1] / "examples" / "lstm_classifier.toml")
    derivation = derive(model)
    printer = NotesLatexPrinter(model)
    adjoint = next(a for a in derivation.named if a.quantity.name == "h")
    printed = printer.doprint(adjoint.expr)
    # [t ≤ T-1] on the δ^{t+1} terms goes without saying (δ^{T+1} = 0); [t = T] does not
    assert printed.count(r"\left[") == 1, printed
    assert r"\left[t = T\right] \sum_{k} w_{c k} \delta_{k}" in printed, printed
    units = tuple(i for i in adjoint.indices if i != model.time_index)
    assert r"\left[t = T\right] W^{(y)} \delta_{k}" in VectorForms(model).form(
        adjoint.expr, units)


def test_graves_letters_are_checked_as_the_functions_they_stand_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # g'(a_c) evaluated as if it were g(a_c): the LSTM's δ_c is off
    from chainrule.codegen.backends.latex import vector_check

    real = vector_check._graves_value
    monkeypatch.setattr(vector_check, "_graves_value", lambda expr: real(
        graves_function(expr.letter, False, expr.squashing)(*expr.args)))
    assert _checked(BUILTINS["lstm"]())["s"].ok  # g(a_c) is still tanh(a_c)
    assert not _checked(BUILTINS["lstm"]())["dL/da_c"].ok


def test_the_notes_say_where_a_bracketed_term_is_there() -> None:
    model = load_spec(Path(__file__).resolve().parents[1] / "examples" / "lstm_classifier.toml")
    boundary = teaching_context(derive(model))["boundary"]
    assert (r"The term $\left[t = T\right] \sum_{k} w_{c k} \delta_{k}$ of $\epsilon_{c}^{t}$ "
            r"is there only where $t = T$") in boundary, boundary
    # the built-ins have no such term: their range conditions all go without saying
    assert "only where" not in teaching_context(derive(BUILTINS["lstm"]()))["boundary"]


def test_a_wrong_derivation_loses_its_matrix_forms_not_the_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the forms are made from the derivation; the truth is not: tanh' = 1 - b (not 1 - b²)
    derivation = derive(BUILTINS["rnn"]())
    adjoint = next(a for a in derivation.named if a.quantity.name == "a_h")
    h = derivation.model.quantity("h").base
    wrong = adjoint.expr.replace(lambda e: isinstance(e, sympy.Pow) and e.base.func is type(
        h[0, 0]) and e.exp == 2, lambda e: e.base)
    assert wrong != adjoint.expr
    monkeypatch.setattr(adjoint, "expr", wrong)
    failing = {check.row for check in failing_forms(derivation).values()}
    assert failing == {"dL/da_h"}, failing


def test_the_command_line_names_a_matrix_form_it_leaves_out(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    from chainrule.codegen.app.cli import main
    from chainrule.codegen.backends.latex import teaching

    def one_failing(derivation):
        expr = derivation.model.equations["a_h"].rhs
        return {expr: FormCheck("a_h", {"I": 4, "H": 2}, 0.5, None, expr)}

    monkeypatch.setattr(teaching, "failing_forms", one_failing)
    spec = Path(__file__).resolve().parents[1] / "examples" / "rnn.toml"
    assert main(["generate", "--model", str(spec), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert ("chainrule: warning: rnn: the matrix form of a_h at I=4, H=2: off by 0.5; the "
            "summary shows the index form alone") in err, err
    assert "UserWarning" not in err and "teaching.py" not in err, err
