"""Named identities that simplify a contracted adjoint, each applied as a recorded step.

Role in DESIGN.md's picture: the last rewrites of ``derive()``. An identity is
a function ``(expr, model) → expr`` registered under the name the notes print;
``derive()`` applies each in turn and records a step when one changes the
expression. Nothing here knows a network: one-hot targets are found by their
role, not by name.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy import Expr

from .model import Model, Role

Identity = Callable[[Expr, Model], Expr]

IDENTITIES: dict[str, Identity] = {}


def identity(name: str) -> Callable[[Identity], Identity]:
    """Register an identity under the name the derivation's steps show."""

    def register(function: Identity) -> Identity:
        IDENTITIES[name] = function
        return function

    return register


@identity("one-hot targets: Σ_k z_k = 1")
def one_hot_sum(expr: Expr, model: Model) -> Expr:
    """``Σ_k z[k, ...] = 1`` for a one-hot target summed over its (only) unit axis."""

    def is_one_hot_sum(node: Expr) -> bool:
        if not isinstance(node, sympy.Sum) or len(node.limits) != 1:
            return False
        body, (variable, _, _) = node.function, node.limits[0]
        if not isinstance(body, sympy.Indexed) or body.base not in model._by_base:
            return False
        quantity = model.quantity(body.base)
        return (quantity.role is Role.TARGET and quantity.one_hot and len(quantity.sizes) == 1
                and body.indices[0] == variable)

    return expr.replace(is_one_hot_sum, lambda node: sympy.S.One)
