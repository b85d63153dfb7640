"""The chain-rule driver: local partials of an equation's right side by one Indexed quantity.

Role in DESIGN.md's picture: the first half of ``derive()``'s one rule,
``∂c[i,t]/∂q[j,τ]``. It walks the expression tree, applies the product, power
and sum rules itself, and asks ``symbolic.functions`` for each function's local
factor. The derivative of ``q[e1, e2]`` by ``q[j, τ]`` is
``δ(e1, j)·δ(e2, τ)``: the Kronecker deltas that the contraction pass removes.
"""

from __future__ import annotations

import sympy
from sympy import Expr, Indexed, KroneckerDelta

from .functions import rule_for


def local_partial(expr: Expr, wrt: Indexed, rules_used: list[str] | None = None) -> Expr:
    """∂expr/∂wrt. ``rules_used`` collects the keys of the function rules applied."""

    def d(node: Expr) -> Expr:
        if not node.has(wrt.base):
            return sympy.S.Zero
        if isinstance(node, Indexed):
            if node.base != wrt.base:
                return sympy.S.Zero
            return sympy.Mul(*(KroneckerDelta(a, b)
                               for a, b in zip(node.indices, wrt.indices, strict=True)))
        if isinstance(node, sympy.Add):
            return sympy.Add(*(d(arg) for arg in node.args))
        if isinstance(node, sympy.Mul):
            args = node.args
            return sympy.Add(*(sympy.Mul(*args[:n], d(arg), *args[n + 1:])
                               for n, arg in enumerate(args)))
        if isinstance(node, sympy.Pow):
            base, exponent = node.args
            if exponent.has(wrt.base):
                return node * (d(exponent) * sympy.log(base) + exponent * d(base) / base)
            return exponent * base ** (exponent - 1) * d(base)
        if isinstance(node, sympy.Sum):
            return sympy.Sum(d(node.function), *node.limits)
        if isinstance(node, sympy.Function):
            (arg,) = node.args
            key, rule = rule_for(type(node))
            if rules_used is not None and key not in rules_used:
                rules_used.append(key)
            return rule(arg, node) * d(arg)
        raise TypeError(f"cannot differentiate {type(node).__name__}: {node}")

    return d(expr)
