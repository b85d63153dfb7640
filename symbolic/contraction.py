"""The contraction pass: summing Kronecker deltas out with the index ranges known.

Role in DESIGN.md's picture: the second half of ``derive()``'s one rule. After
the chain rule, an adjoint is a sum over each consumer's indices of products
holding deltas such as ``δ(h', h)`` or ``δ(t'-1, t)``. Here

    Σ_{t'=1..T} f(t') δ(t'-1, t)  =  f(t+1) · [1 ≤ t+1 ≤ T]

and the bracket (an :class:`~symbolic.expressions.InRange`) is reduced against the
free indices' ranges: it vanishes where provably true (unit indices), and stays
as data where it is not (``[t ≤ T-1]``: Graves' ``δ^{T+1} = 0``, derived).

We do not use ``Sum.doit()``: on Indexed objects it leaves ``Piecewise`` range
conditions it cannot prove and keeps shifted deltas. This pass works on
monomials — a list of sum limits and a list of factors — and distributes only
the sums that hold a delta.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy
from sympy import Expr, Idx, KroneckerDelta

from .expressions import InRange

Limit = tuple[Idx, Expr, Expr]
Ranges = Mapping[Idx, tuple[Expr, Expr]]


class Namer:
    """Fresh, unique names for bound indices: ``h#1``, ``k#2``, ... (one counter per derivation).

    The ``#`` cannot occur in an index a user declares, so a fresh name never
    captures one; :func:`prettify` later gives every bound index a primed name.
    """

    def __init__(self) -> None:
        self._count = itertools.count(1)

    def fresh(self, like: Idx) -> Idx:
        stem = like.name.split("#")[0].rstrip("'")
        return Idx(f"{stem}#{next(self._count)}", (like.lower, like.upper))


def rename_bound(expr: Expr, namer: Namer) -> Expr:
    """Give every Sum in ``expr`` fresh bound-index names (alpha-renaming)."""
    if isinstance(expr, sympy.Sum):
        mapping = {v: namer.fresh(v) for v, _, _ in expr.limits}
        body = rename_bound(expr.function, namer).xreplace(mapping)
        limits = [(mapping[v], lo, hi) for v, lo, hi in expr.limits]
        return sympy.Sum(body, *limits)
    if not expr.args or isinstance(expr, sympy.Indexed | Idx):
        return expr
    return expr.func(*(rename_bound(arg, namer) for arg in expr.args))


@dataclass
class Monomial:
    """``Σ_{limits} Π factors``."""

    limits: list[Limit] = field(default_factory=list)
    factors: list[Expr] = field(default_factory=list)

    def times(self, other: Monomial) -> Monomial:
        return Monomial(self.limits + other.limits, self.factors + other.factors)


def _holds_delta(expr: Expr) -> bool:
    return expr.has(KroneckerDelta)


def monomials(expr: Expr, namer: Namer) -> list[Monomial]:
    """Split ``expr`` into monomials, pulling sums outward and distributing only around deltas."""
    if isinstance(expr, sympy.Add):
        return [m for arg in expr.args for m in monomials(arg, namer)]
    if isinstance(expr, sympy.Mul):
        result = [Monomial()]
        for arg in expr.args:
            if isinstance(arg, sympy.Sum | sympy.Mul) or (
                    isinstance(arg, sympy.Add) and _holds_delta(arg)):
                parts = monomials(arg, namer)
            else:
                parts = [Monomial(factors=[arg])]
            result = [r.times(p) for r in result for p in parts]
        return result
    if isinstance(expr, sympy.Sum):
        # fresh names: the same sum may stand intact elsewhere in the product (inside a power)
        mapping = {v: namer.fresh(v) for v, _, _ in expr.limits}
        limits = [(mapping[v], lo, hi) for v, lo, hi in expr.limits]
        body = expr.function.xreplace(mapping)
        return [Monomial(limits + m.limits, m.factors) for m in monomials(body, namer)]
    return [Monomial(factors=[expr])]


def _solve_for(delta: KroneckerDelta, variable: Idx) -> Expr | None:
    """Solve ``δ(a, b)`` for ``variable`` when it occurs linearly with coefficient ±1."""
    difference = sympy.expand(delta.args[0] - delta.args[1])
    coefficient = difference.coeff(variable)
    if coefficient not in (1, -1) or (difference - coefficient * variable).has(variable):
        return None
    return sympy.expand(-(difference - coefficient * variable) / coefficient)


def eliminate(monomial: Monomial) -> Monomial | None:
    """Sum out every delta that binds a summed index; ``None`` when the monomial is zero."""
    limits = list(monomial.limits)
    factors = list(monomial.factors)
    progress = True
    while progress:
        progress = False
        for position, factor in enumerate(factors):
            if factor == 0:
                return None
            if not isinstance(factor, KroneckerDelta):
                continue
            for limit_position, (variable, lo, hi) in enumerate(limits):
                solution = _solve_for(factor, variable) if factor.has(variable) else None
                if solution is None:
                    continue
                rest = factors[:position] + factors[position + 1:]
                factors = [f.xreplace({variable: solution}) for f in rest]
                factors.append(InRange(solution, lo, hi))
                del limits[limit_position]
                progress = True
                break
            else:
                difference = sympy.expand(factor.args[0] - factor.args[1])
                if difference == 0:
                    del factors[position]
                    progress = True
                elif difference.is_number:
                    return None
            if progress:
                break
    if any(f == 0 for f in factors):
        return None
    return Monomial(limits, factors)


def rebuild(monomial: Monomial) -> Expr:
    """``Π (factors free of the sums) · Π_groups Σ (the factors that share summed indices)``."""
    variables = [v for v, _, _ in monomial.limits]
    outside = [f for f in monomial.factors if not any(f.has(v) for v in variables)]
    inside = [f for f in monomial.factors if any(f.has(v) for v in variables)]
    # group the summed indices that share a factor (union-find on the variables)
    group = {v: v for v in variables}

    def root(v: Idx) -> Idx:
        while group[v] != v:
            v = group[v]
        return v

    for factor in inside:
        members = [v for v in variables if factor.has(v)]
        for v in members[1:]:
            group[root(v)] = root(members[0])
    result = sympy.Mul(*outside)
    for leader in dict.fromkeys(root(v) for v in variables):
        limits = [limit for limit in monomial.limits if root(limit[0]) == leader]
        body = [f for f in inside if any(f.has(v) for v, _, _ in limits)]
        result *= sympy.Sum(sympy.Mul(*body), *limits) if body else sympy.Mul(
            *(hi - lo + 1 for _, lo, hi in limits))
    return result


def _bounds(index: Idx, ranges: Ranges) -> tuple[Expr, Expr]:
    return ranges.get(index, (index.lower, index.upper))


def _at_most(a: Expr, b: Expr) -> bool | None:
    difference = sympy.simplify(b - a)
    if difference.is_number:
        return bool(difference >= 0)
    return None


def reduce_ranges(expr: Expr, ranges: Ranges) -> Expr:
    """Reduce every ``[lo ≤ v + c ≤ hi]`` against the free index ``v``'s range.

    The result is 1 where provably true, 0 where provably false, else the
    canonical ``[lo' ≤ v ≤ hi']`` narrowed to ``v``'s range.
    """

    def reduce(node: InRange) -> Expr:
        target, lo, hi = node.args
        variables = [s for s in target.free_symbols if isinstance(s, Idx)]
        if len(variables) != 1:
            return node
        (variable,) = variables
        offset = sympy.expand(target - variable)
        if offset.has(variable):
            return node
        v_lo, v_hi = _bounds(variable, ranges)
        new_lo, new_hi = sympy.expand(lo - offset), sympy.expand(hi - offset)
        lower = v_lo if _at_most(new_lo, v_lo) else new_lo
        upper = v_hi if _at_most(v_hi, new_hi) else new_hi
        if _at_most(lower, upper) is False:
            return sympy.S.Zero
        if lower == v_lo and upper == v_hi:
            return sympy.S.One
        return InRange(variable, lower, upper)

    return expr.replace(lambda e: isinstance(e, InRange), reduce)


def contract(expr: Expr, ranges: Ranges, namer: Namer, *, time: Idx | None = None) -> Expr:
    """Eliminate every Kronecker delta ``expr``'s sums allow; keep range conditions as data.

    A delta left on the free ``time`` index and a fixed step, ``δ(T, t)`` (from a read at
    the last step, ``y[k, T]``), becomes the bracket ``[t = T]``: data, as ``[t ≤ T-1]``
    is, and under it every read at ``T`` is a read at ``t``."""
    total = sympy.S.Zero
    for monomial in monomials(expr, namer):
        reduced = eliminate(monomial)
        if reduced is not None:
            if time is not None:
                reduced = _fixed_step_bracket(reduced, time)
            total += rebuild(reduced)
    return reduce_ranges(total, ranges)


def _fixed_step_bracket(monomial: Monomial, time: Idx) -> Monomial:
    """``δ(c, t)`` with ``c`` free of indices → ``[c ≤ t ≤ c]``, and ``q[..., c]`` → ``q[..., t]``
    in the monomial's other factors (a unit axis never holds a bare size, so an index equal
    to ``c`` is a time position)."""
    factors = list(monomial.factors)
    for position, factor in enumerate(factors):
        if not isinstance(factor, KroneckerDelta):
            continue
        solution = _solve_for(factor, time)
        if solution is None or any(isinstance(s, Idx) for s in solution.free_symbols):
            continue
        rest = factors[:position] + factors[position + 1:]

        def at_t(ref: sympy.Indexed, step: Expr = solution) -> Expr:
            return ref.base[(*ref.indices[:-1], time)] if ref.indices[-1] == step else ref

        rest = [f.replace(lambda e: isinstance(e, sympy.Indexed), at_t) for f in rest]
        return Monomial(monomial.limits, [*rest, InRange(time, solution, solution)])
    return monomial


def prettify(expr: Expr, family: Mapping[Expr, str], free: set[Idx]) -> Expr:
    """Rename every bound index to the first unused name of its family: ``k'``, ``k''``, ...

    ``family`` maps an index range ``(lo, hi)`` to its stem (``(0, K-1) → "k"``).
    A bound index never takes the name of an index that is free in the whole
    expression, so ``y_k Σ_{k'} z_{k'}`` never reads as ``y_k Σ_k z_k``.
    """
    taken_at_top = {index.name for index in free}

    def walk(node: Expr, taken: frozenset[str]) -> Expr:
        if isinstance(node, sympy.Sum):
            inner_taken = set(taken)
            mapping: dict[Idx, Idx] = {}
            body = node.function
            visible = {s.name for s in node.free_symbols if isinstance(s, Idx)}
            for variable, _, _ in node.limits:
                stem = family.get((variable.lower, variable.upper),
                                  variable.name.split("#")[0].rstrip("'"))
                for primes in itertools.count():
                    name = stem + "'" * primes
                    if name not in inner_taken and name not in visible:
                        break
                mapping[variable] = Idx(name, (variable.lower, variable.upper))
                inner_taken.add(name)
            body = walk(body.xreplace(mapping), frozenset(inner_taken))
            return sympy.Sum(body, *[(mapping[v], lo, hi) for v, lo, hi in node.limits])
        if not node.args or isinstance(node, sympy.Indexed | Idx):
            return node
        return node.func(*(walk(arg, taken) for arg in node.args))

    return walk(expr, frozenset(taken_at_top))
