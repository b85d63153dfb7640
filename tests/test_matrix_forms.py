"""The summary's matrix and vector forms (codegen/backends/latex/vector.py): each is the
index form rewritten over whole vectors, so a product of vectors over different units is
an outer product, never an elementwise one, and a matrix product inside an elementwise
product is parenthesised."""

from __future__ import annotations

import pytest
import sympy
from sympy import Idx

from chainrule.codegen.backends.latex.vector import Atom, VectorForms, _axes, _NoForm
from chainrule.symbolic import derive
from chainrule.symbolic.spec import loads_spec

#: a hidden layer scaled by a second input over the hidden units: a_h = u_h Σ_i w_ih x_i + β_h
SCALED = r'''
name = "scaled"
sizes = ["I", "H", "K"]

[indices]
i = "I"
h = "H"
k = "K"
k_ = { size = "K", latex = "k'" }

[quantities]
x = { role = "input", shape = ["I"] }
u = { role = "input", shape = ["H"] }
z = { role = "target", shape = ["K"] }
W = { role = "parameter", shape = ["I", "H"], latex = "w^{(xh)}" }
c = { role = "parameter", shape = ["H"], latex = '\beta^{(h)}' }
V = { role = "parameter", shape = ["H", "K"], latex = "w^{(hy)}" }
a = { role = "intermediate", shape = ["H"], latex = "a", adjoint = '\delta' }
b = { role = "intermediate", shape = ["H"], latex = "b" }
o = { role = "intermediate", shape = ["K"], latex = "a^{(y)}", adjoint = '\delta^{(y)}' }
y = { role = "intermediate", shape = ["K"], latex = "y" }

[equations]
forward = [
    "a[h] = u[h] * sum(W[i, h] * x[i], i) + c[h]",
    "b[h] = tanh(a[h])",
    "o[k] = sum(V[h, k] * b[h], h)",
    "y[k] = exp(o[k]) / sum(exp(o[k_]), k_)",
]
loss = "-sum(z[k] * log(y[k]), k)"
'''


def _forms():
    derivation = derive(loads_spec(SCALED))
    forms = VectorForms(derivation.model)
    return derivation, forms


def test_a_gradient_over_two_units_is_an_outer_product_of_elementwise_products() -> None:
    derivation, forms = _forms()
    gradient = derivation.gradients["W"]
    matrix = forms.form(gradient.expr, tuple(gradient.indices))
    # ∂L/∂w_ih = x_i u_h δ_h: x (u ⊙ δ)ᵀ, not the elementwise u ⊙ x ⊙ δ
    assert matrix == r"x (u \odot \delta)^{\top}", matrix


def test_a_matrix_product_inside_an_elementwise_product_is_parenthesised() -> None:
    derivation, forms = _forms()
    equation = derivation.model.equations["a"]
    matrix = forms.form(equation.rhs, tuple(equation.lhs.indices))
    assert r"\left(W^{(xh)\,\top} x\right) \odot u" in matrix, matrix
    backward = next(a for a in derivation.named if a.quantity.name == "a")
    assert r"\odot \left(W^{(hy)} \delta^{(y)}\right)" in forms.form(backward.expr), backward


def test_vectors_over_different_units_have_no_elementwise_product() -> None:
    i, h = Idx("i", sympy.Symbol("I")), Idx("h", sympy.Symbol("H"))
    x, d = Atom("x", (i,)), Atom(r"\delta", (h,))
    assert _axes(x * x) == (i,) and _axes(x + x) == (i,)
    with pytest.raises(_NoForm):
        _axes(x * d)
