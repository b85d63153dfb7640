"""The summary's matrix and vector forms (codegen/backends/latex/vector.py): each is the
index form rewritten over whole vectors, so a product of vectors over different units is
an outer product, never an elementwise one, and a matrix product inside an elementwise
product is parenthesised."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
from sympy import Idx

from chainrule.codegen.backends.latex.vector import Atom, VectorForms, _axes, _NoForm
from chainrule.symbolic import derive
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
