"""Fold-back: rewrite expressions in terms of named quantities, using their definitions.

Role in DESIGN.md's picture: after a local partial is taken, ``exp(a_k)/Σ exp(a_k')``
becomes ``y_k`` and ``tanh(a_h)`` becomes ``b_h``, so that derivative rules written in
terms of outputs read ``1 - b_h²``. A definition ``q[i] = f(i)`` is tried at every
index tuple the caller names as a candidate.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence

import sympy
from sympy import Expr, Idx

from .model import Equation


def fold_back(expr: Expr, definitions: Iterable[tuple[Equation, Expr]],
              candidates: Sequence[Expr]) -> Expr:
    """Replace each definition's right side, at each candidate index tuple, by its left side.

    ``definitions`` pairs each equation with its right side as it stands in
    ``expr`` (bound indices renamed the way the caller renamed them).
    ``candidates`` lists the index expressions to try; each position of a
    definition's left side takes those that run over its range.
    """
    present = _heads(expr)
    for equation, rhs in definitions:
        if isinstance(rhs, sympy.Indexed) or rhs.is_number:
            continue  # an alias or a constant would fold everywhere
        if not _heads(rhs) <= present:
            continue  # a quantity or function of the definition is missing: no index fits
        free: tuple[Idx, ...] = equation.free
        options = [[e for e in candidates if _same_range(e, index)] for index in free]
        for choice in itertools.product(*options):
            mapping = dict(zip(free, choice, strict=True))
            pattern = rhs.xreplace(mapping)
            if pattern == expr or _contains(expr, pattern):
                expr = expr.subs(pattern, equation.lhs.xreplace(mapping))
                present = _heads(expr)
    return expr


@functools.lru_cache(maxsize=4096)
def _heads(expr: Expr) -> frozenset[object]:
    """The quantities (IndexedBase labels) and function classes that occur in ``expr``,
    whatever their indices: what a pattern at any index tuple needs from it."""
    return frozenset(atom.base.label if isinstance(atom, sympy.Indexed) else atom.func
                     for atom in expr.atoms(sympy.Indexed, sympy.Function))


def _same_range(candidate: Expr, index: Idx) -> bool:
    variables = [s for s in candidate.free_symbols if isinstance(s, Idx)]
    return len(variables) == 1 and (variables[0].lower, variables[0].upper) == (
        index.lower, index.upper)


def _contains(expr: Expr, pattern: Expr) -> bool:
    """Cheap test that every function and quantity of ``pattern`` occurs in ``expr``."""
    needed = pattern.atoms(sympy.Indexed, sympy.Function)
    return needed <= expr.atoms(sympy.Indexed, sympy.Function)
