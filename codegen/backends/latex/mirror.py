"""The layer of a bidirectional network that mirrors another in time, found from the equations.

Role in DESIGN.md's picture: part of the ``latex`` branch. A bidirectional network has a
layer that reads ``t-1`` and one that reads ``t+1`` with the same equations: each
quantity of the second is its namesake of the first with every ``t+k`` read as ``t-k``.
The summary prints the first layer's rows and says the second's are their mirror
images, so that the page is not spent twice on the same equations.

:func:`mirror` finds the pairing from the equations alone, never from the names: it
pairs a quantity read at ``t-1`` with one read at ``t+1`` and unifies their equations,
one of them reversed in time: where the first reads ``p`` the second must read the
image of ``p`` at the reversed step, in the same place of the same expression (the
terms of a sum and the factors of a product matched in any order). What is not reached
so must be its own image (an input, the output layer that reads both directions). The
pairing is kept only where every equation and the loss agree with it; otherwise there
is none and the summary prints every row.

A stacked bidirectional network (``examples/blstm_stacked.toml``) is one mirror image
too: its second layer that reads ``t-1`` reads both of the first, ``w^{(h_1 ι_2)} b_1``
and ``w^{(h_1^r ι_2)} b_1^{(r)}``, and its image reads them crosswise.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import sympy
from sympy import Expr, Indexed

from chainrule.symbolic import Model, Role


def reversed_in_time(expr: Expr, model: Model) -> Expr:
    """``expr`` with every read at ``t+k`` made a read at ``t-k``."""
    time = model.time_index
    if time is None:
        return expr

    def flip(ref: Indexed) -> Indexed:
        *units, step = ref.indices
        return ref.base[(*units, sympy.expand(2 * time - step))]

    return expr.replace(lambda e: isinstance(e, Indexed) and e.indices and
                        e.indices[-1].has(time), flip)


class _Unifier:
    """Grows a pairing of quantity names (both ways) while two expressions agree; holds
    the model's equations (the loss's too), each also reversed in time, and how many
    partial pairings may still be tried (:data:`BUDGET`)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.equations = _equations(model)
        self.reversed = {name: reversed_in_time(rhs, model)
                         for name, rhs in self.equations.items()}
        self.budget = BUDGET

    def key(self, expr: Expr) -> str:
        """What two expressions that may match share: the tree less the names."""
        if isinstance(expr, Indexed):
            quantity = self.model.find_quantity(expr.base)
            role = quantity.role.value if quantity else expr.base.name
            return f"{role}[{len(expr.indices)}]"
        if not expr.args:
            return type(expr).__name__ if isinstance(expr, sympy.Symbol) else str(expr)
        return f"{type(expr).__name__}(" + ",".join(sorted(self.key(a) for a in expr.args)) + ")"

    def unify(self, a: Expr, b: Expr, pairs: dict[str, str]) -> Iterator[dict[str, str]]:
        """Every extension of ``pairs`` under which ``b`` is ``a`` with names replaced."""
        if isinstance(a, Indexed) or isinstance(b, Indexed):
            if not (isinstance(a, Indexed) and isinstance(b, Indexed)) or \
                    a.indices != b.indices:
                return
            bound = _bind(pairs, a.base.name, b.base.name)
            if bound is not None:
                yield bound
            return
        if type(a) is not type(b) or len(a.args) != len(b.args):
            return
        if not a.args:
            if a == b:
                yield pairs
            return
        if isinstance(a, sympy.Add | sympy.Mul):
            yield from self._unordered(list(a.args), list(b.args), pairs)
            return
        yield from self._ordered(list(a.args), list(b.args), pairs)

    def _ordered(self, a: list[Expr], b: list[Expr], pairs: dict[str, str]
                 ) -> Iterator[dict[str, str]]:
        if not a:
            yield pairs
            return
        for bound in self.unify(a[0], b[0], pairs):
            yield from self._ordered(a[1:], b[1:], bound)

    def _unordered(self, a: list[Expr], b: list[Expr], pairs: dict[str, str]
                   ) -> Iterator[dict[str, str]]:
        if not a:
            yield pairs
            return
        first, key = a[0], self.key(a[0])
        for position, candidate in enumerate(b):
            if self.key(candidate) != key:
                continue
            for bound in self.unify(first, candidate, pairs):
                yield from self._unordered(a[1:], b[:position] + b[position + 1:], bound)


def _bind(pairs: dict[str, str], a: str, b: str) -> dict[str, str] | None:
    """``pairs`` with ``a ↔ b``, or None where it pairs either with another name."""
    if pairs.get(a, b) != b or pairs.get(b, a) != a:
        return None
    if pairs.get(a) == b:
        return pairs
    return {**pairs, a: b, b: a}


def _equations(model: Model) -> dict[str, Expr]:
    found = {name: eq.rhs for name, eq in model.equations.items()}
    if model.loss_equation is not None:
        found[model.loss_name] = model.loss_equation.rhs
    return found


#: how many partial pairings :func:`mirror` tries before it gives up (a pairing is
#: almost always forced: the terms of a sum rarely look alike)
BUDGET = 2000


def _complete(pairs: dict[str, str], unifier: _Unifier) -> dict[str, str] | None:
    """``pairs`` grown until every equation agrees with it (the first way found), or
    None."""
    unifier.budget -= 1
    if unifier.budget < 0:
        return None
    equations = unifier.equations
    # the paired first: a quantity is its own image only where nothing pairs it; of the
    # others, the loss's side first (the output reads both directions of a stacked
    # network's last layers, and so pairs them before they could be taken for their own)
    names = list(equations)
    order = sorted(names, key=lambda name: (name not in pairs, -names.index(name)))
    for name in order:
        rhs = equations[name]
        own = _bind(pairs, name, pairs.get(name, name))
        if own is None:
            return None
        image = own[name]
        if image not in equations:
            return None
        target = unifier.reversed[image]
        extensions = list(itertools.islice(unifier.unify(rhs, target, own), 16))
        if own == pairs and own in extensions:
            continue  # this equation agrees as it is
        for bound in extensions:
            completed = _complete(bound, unifier)
            if completed is not None:
                return completed
        return None
    return pairs


def _recurrences(model: Model) -> tuple[list[str], list[str]]:
    """The quantities read at earlier steps only, and those read at later steps only."""
    quantities = [q for q in model.quantities.values() if q.time]
    behind = [q.name for q in quantities if model.shifts(q) and max(model.shifts(q)) < 0]
    ahead = [q.name for q in quantities if model.shifts(q) and min(model.shifts(q)) > 0]
    return behind, ahead


def mirror(model: Model) -> dict[str, str] | None:
    """The names of the quantities of the layer that reads ``t+1``, by the names of
    their namesakes in the layer that reads ``t-1`` (the parameters and initial states
    too), or None where the model has no such pair of layers."""
    if model.time_index is None:
        return None
    behind, ahead = _recurrences(model)
    if not behind or len(behind) != len(ahead):
        return None
    unifier = _Unifier(model)
    seed = model.quantity(behind[0])
    for name in ahead:
        candidate = model.quantity(name)
        if candidate.sizes != seed.sizes or candidate.role is not seed.role:
            continue
        unifier.budget = BUDGET  # each seed pairing its own
        pairs = _complete({seed.name: candidate.name, candidate.name: seed.name}, unifier)
        if pairs is None:
            continue
        pairs = _with_states(model, pairs)
        if pairs is None:
            continue
        forward = _forward_side(model, pairs)
        if forward is not None:
            return forward
    return None


def _with_states(model: Model, pairs: dict[str, str]) -> dict[str, str] | None:
    """``pairs`` with the initial states of paired quantities paired too."""
    result = dict(pairs)
    for state in model.of_role(Role.STATE):
        assert state.state_of is not None
        owner = pairs.get(state.state_of)
        if owner is None or owner == state.state_of:
            continue
        other = model.state_for(model.quantity(owner))
        if other is None:
            return None
        bound = _bind(result, state.name, other.name)
        if bound is None:
            return None
        result = bound
    return result


def _forward_side(model: Model, pairs: dict[str, str]) -> dict[str, str] | None:
    """The pairing from the side that reads ``t-1``: each quantity of a pair takes the
    direction of the nearest recurrence it feeds (``a_ι`` feeds ``s`` through ``b_ι``;
    a second layer's weights on the first layer's outputs feed the second's), and one
    that feeds none (the output layer's weights) that of the paired factors beside it in
    a product (``w^{(y)}_{ck} b_c``)."""
    behind, ahead = _recurrences(model)
    direction = {**dict.fromkeys(behind, -1), **dict.fromkeys(ahead, 1)}
    paired = {a for a, b in pairs.items() if a != b}
    equations = _equations(model)
    consumers: dict[str, set[str]] = {}
    for name, rhs in equations.items():
        for ref in rhs.atoms(Indexed):
            consumers.setdefault(ref.base.name, set()).add(name)
    for name in paired - direction.keys():
        seen, frontier = {name}, [name]
        while frontier and name not in direction:
            found = {direction[c] for q in frontier for c in consumers.get(q, ())
                     if c in paired and c in direction}
            if len(found) == 1:
                direction[name] = found.pop()
            frontier = [c for q in frontier for c in consumers.get(q, ())
                        if c in paired and c not in seen]
            seen.update(frontier)
    for rhs in equations.values():
        for product in rhs.atoms(sympy.Mul):
            group = {r.base.name for r in product.atoms(Indexed)} & paired
            known = {direction[n] for n in group if n in direction}
            if len(known) == 1:
                for n in group - direction.keys():
                    direction[n] = next(iter(known))
    forward = {}
    states = {q.name for q in model.of_role(Role.STATE)}
    for a, b in pairs.items():
        if a == b or a in states:
            continue
        if direction.get(a) == -1 and direction.get(b) == 1:
            forward[a] = b
        elif not (direction.get(a) == 1 and direction.get(b) == -1):
            return None
    for state in model.of_role(Role.STATE):  # an initial state takes its owner's side
        assert state.state_of is not None
        if state.name in pairs and state.state_of in forward:
            forward[state.name] = pairs[state.name]
    order = list(model.quantities)
    return dict(sorted(forward.items(), key=lambda item: order.index(item[0]))) or None


__all__ = ["mirror", "reversed_in_time"]
