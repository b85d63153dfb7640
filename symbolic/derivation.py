"""What ``derive()`` returns: the adjoints, the steps recorded on the way, and their plain text.

Role in DESIGN.md's picture: the Derivation that every backend prints. This module
holds the result types (:class:`Derivation`, :class:`Adjoint`, :class:`Step`,
:class:`LocalPartial`) apart from the algorithm that builds them (``derive.py``),
and the smallest printer of a derivation, :meth:`Derivation.describe` (the terminal's
``chainrule derive NET``); the LaTeX notes are the full one. A recorded rule is a
key (``rules.py``); ``Step.rule`` and ``LocalPartial.rules`` give the engine's names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from sympy import Expr, Idx, IndexedBase

from .expressions import Partial
from .model import Equation, Model, Quantity, Role
from .rules import rule_text


@dataclass(frozen=True)
class Step:
    """One recorded rewrite: ``before`` became ``after`` by the rule ``rule_key``."""

    rule_key: str
    before: Expr
    after: Expr

    @property
    def rule(self) -> str:
        """The rule's name as the engine writes it, e.g. "chain rule"."""
        return rule_text(self.rule_key)

    def _repr_latex_(self) -> str:
        """Jupyter: ``before = after`` and the rule (``notebook.py``)."""
        from .notebook import step_latex

        return step_latex(self)


@dataclass(frozen=True)
class LocalPartial:
    """``∂c[d]/∂q[j]`` for one consumer equation ``c``, with the function rules it used."""

    consumer: Equation
    partial: Partial
    raw: Expr
    value: Expr
    rule_keys: tuple[str, ...]

    @property
    def rules(self) -> tuple[str, ...]:
        """The names of the function rules used, e.g. ("derivative of tanh",)."""
        return tuple(rule_text(key) for key in self.rule_keys)


@dataclass
class Adjoint:
    """``∂L/∂q[indices]`` as an expression of named adjoints and forward quantities."""

    quantity: Quantity
    base: IndexedBase
    indices: tuple[Idx, ...]
    expr: Expr
    inlined: bool
    time_range: tuple[Expr, Expr] | None
    steps: list[Step] = field(default_factory=list)
    local_partials: list[LocalPartial] = field(default_factory=list)

    @property
    def lhs(self) -> Expr:
        return self.base[self.indices] if self.indices else sympy.Symbol(self.base.name)

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def latex(self) -> str:
        if self.quantity.adjoint_latex:
            return self.quantity.adjoint_latex
        return rf"\frac{{\partial L}}{{\partial {self.quantity.latex}}}"

    def _repr_latex_(self) -> str:
        """Jupyter: the adjoint step by step in the notes' letters (``notebook.py``)."""
        from .notebook import adjoint_latex

        return adjoint_latex(self)


@dataclass
class Derivation:
    """The result of ``derive()``: every adjoint, in backward evaluation order."""

    model: Model
    adjoints: dict[str, Adjoint]
    backward_order: list[str]

    def adjoint(self, name: str) -> Adjoint:
        """The adjoint of quantity ``name`` (an intermediate, parameter or state)."""
        try:
            return self.adjoints[name]
        except KeyError:
            raise KeyError(f"no adjoint for {name!r}; quantities with adjoints: "
                           f"{', '.join(self.adjoints)}") from None

    @property
    def gradients(self) -> dict[str, Adjoint]:
        """Adjoints of the parameters and initial states: what the kernels return."""
        return {name: a for name, a in self.adjoints.items()
                if a.quantity.role in (Role.PARAMETER, Role.STATE)}

    @property
    def named(self) -> list[Adjoint]:
        """Adjoints of intermediates that the backward pass stores, in evaluation order."""
        return [self.adjoints[name] for name in self.backward_order]

    def _repr_latex_(self) -> str:
        """Jupyter: every adjoint and gradient in the notes' letters (``notebook.py``)."""
        from .notebook import derivation_latex

        return derivation_latex(self)

    def describe(self) -> str:
        """The derivation as plain text: the forward equations, then every adjoint's steps."""
        model = self.model
        lines = [f"{model.name}: {model.description}", "", "forward"]
        for name in model.evaluation_order():
            lines.append(f"  {model.equations[name]}")
        assert model.loss_equation is not None
        lines.append(f"  {model.loss_equation}")
        lines += ["", "backward (in evaluation order)"]
        for adjoint in self.named:
            lines += _adjoint_lines(adjoint)
        lines += ["", "gradients"]
        for adjoint in self.gradients.values():
            lines += _adjoint_lines(adjoint)
        return "\n".join(lines) + "\n"


def _text(expr: Expr) -> str:
    return sympy.sstr(expr, order="none")


def _adjoint_lines(adjoint: Adjoint) -> list[str]:
    lines = [f"  {_text(adjoint.lhs)} = ∂L/∂{_text(adjoint.quantity.base[adjoint.indices])}"
             if adjoint.indices else f"  {adjoint.name}"]
    for step in adjoint.steps:
        lines.append(f"      {step.rule + ':':<44} {_text(step.after)}")
    lines.append(f"    = {_text(adjoint.expr)}")
    return lines


__all__ = ["Adjoint", "Derivation", "LocalPartial", "Step"]
