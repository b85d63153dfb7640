"""Named identities that simplify a contracted adjoint, each applied as a recorded step.

Role in DESIGN.md's picture: the last rewrites of ``derive()``. An identity is
a function ``(expr, model) → expr`` registered under a rule key (``rules.py``)
with the name the derivation's steps show; ``derive()`` applies each in turn and
records a step when one changes the expression. Nothing here knows a network:
one-hot targets are found by their role, not by name.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy import Expr

from .expressions import InRange
from .model import Model, Role
from .rules import Rule, register_rule_text

Identity = Callable[[Expr, Model], Expr]

#: rule key → identity, in the order derive() applies them
IDENTITIES: dict[str, Identity] = {}


def identity(key: str, text: str) -> Callable[[Identity], Identity]:
    """Register an identity under the rule ``key``; ``text`` is its name in the steps."""

    def register(function: Identity) -> Identity:
        register_rule_text(key, text)
        IDENTITIES[key] = function
        return function

    return register


@identity(Rule.ONE_HOT_TARGETS, "one-hot targets: Σ_k z_k = 1")
def one_hot_sum(expr: Expr, model: Model) -> Expr:
    """``Σ_k z[k, ...] = 1`` for a one-hot target summed over its (only) unit axis."""

    def is_one_hot_sum(node: Expr) -> bool:
        if not isinstance(node, sympy.Sum) or len(node.limits) != 1:
            return False
        body, (variable, _, _) = node.function, node.limits[0]
        if not isinstance(body, sympy.Indexed):
            return False
        quantity = model.find_quantity(body.base)
        return (quantity is not None and quantity.role is Role.TARGET and quantity.one_hot
                and len(quantity.sizes) == 1 and body.indices[0] == variable)

    return expr.replace(is_one_hot_sum, lambda node: sympy.S.One)


@identity(Rule.FACTORS_CANCEL, "the factors cancel")
def factors_cancel(expr: Expr, model: Model) -> Expr:
    """Each term without sums or boundary conditions as one fraction in lowest terms
    (``sympy.cancel``), where that makes it shorter: the logistic output's
    ``σ'(a) = y(1 - y)`` against the binary cross-entropy's ``-z/y + (1 - z)/(1 - y)``
    leaves ``y - z``. A term with a sum, or one that would not get shorter, stays as
    written, so that Graves' factored forms such as ``(1 - b²) Σ w δ`` stay."""
    terms = []
    for term in sympy.Add.make_args(expr):
        if term.has(sympy.Sum) or term.has(InRange):
            terms.append(term)
            continue
        cancelled = sympy.cancel(term)
        terms.append(cancelled if sympy.count_ops(cancelled) < sympy.count_ops(term) else term)
    return sympy.Add(*terms)
