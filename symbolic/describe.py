"""A plain-text rendering of a Derivation for the terminal (``chainrule derive NET``).

Role in DESIGN.md's picture: the smallest printer of the derivation; the
LaTeX notes are the full one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

if TYPE_CHECKING:
    from .derive import Adjoint, Derivation


def _text(expr: sympy.Expr) -> str:
    return sympy.sstr(expr, order="none")


def describe(derivation: Derivation) -> str:
    model = derivation.model
    lines = [f"{model.name}: {model.description}", "", "forward"]
    for name in model.evaluation_order():
        lines.append(f"  {model.equations[name]}")
    assert model.loss_equation is not None
    lines.append(f"  {model.loss_equation}")
    lines += ["", "backward (in evaluation order)"]
    for adjoint in derivation.named:
        lines += _adjoint_lines(adjoint)
    lines += ["", "gradients"]
    for adjoint in derivation.gradients.values():
        lines += _adjoint_lines(adjoint)
    return "\n".join(lines) + "\n"


def _adjoint_lines(adjoint: Adjoint) -> list[str]:
    lines = [f"  {_text(adjoint.lhs)} = ∂L/∂{_text(adjoint.quantity.base[adjoint.indices])}"
             if adjoint.indices else f"  {adjoint.name}"]
    for step in adjoint.steps:
        lines.append(f"      {step.rule + ':':<44} {_text(step.after)}")
    lines.append(f"    = {_text(adjoint.expr)}")
    return lines
