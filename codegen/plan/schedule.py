"""Scheduling through time: what runs inside the loop over ``t``, and what is hoisted out of it.

Role in DESIGN.md's picture: the plan stage for models with a time index. The
statements of one phase (forward or backward) are first lowered as if every
step ran at once. A statement belongs in the loop when it lies on a cycle of
dependencies that goes through another step (``b^{t-1}`` feeding ``a^t``, or
``δ^{t+1}`` feeding ``δ^t``), or between two such statements. Every other
statement runs once for all steps: before the loop when it does not depend on
the loop (the input projections ``x^t·W`` of every step, the output layer's
``Σ_k δ_k^t w_hk``), after it otherwise (the output layer and softmax of every
step). Temporaries that live within one step lose their time axis; arrays the
loop writes step by step are allocated before it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import sympy
from sympy import Idx, Indexed, IndexedBase

from chainrule.codegen.plan.types import (
    Array,
    Assign,
    Guarded,
    Kind,
    Loop,
    Ref,
    Statement,
    read,
    ref_name,
    written,
)


class SchedulingError(ValueError):
    """The phase cannot be split into hoisted work and one loop (named in the message)."""


@dataclasses.dataclass
class Schedule:
    """One phase, in order: ``before`` the loop, the ``loop`` body, ``after`` it."""

    before: list[Statement]
    loop: list[Statement]
    after: list[Statement]
    allocate: list[str]


def schedule(statements: list[Statement], arrays: dict[str, Array], time: Idx,
             temporary: Callable[[tuple[Idx, ...]], Ref] | None = None) -> Schedule:
    """Split ``statements`` (in a valid order for one step) around one loop over ``time``.

    ``arrays`` is updated in place: temporaries local to one step lose their time axis.
    With ``temporary`` (a factory of fresh arrays over given indices), the terms of a
    loop statement's sum that read nothing the loop writes (``β_i + Σ_i w x^t``) are
    added up once for all steps before the loop.
    """
    count = len(statements)
    writers: dict[str, list[int]] = {}
    for position, statement in enumerate(statements):
        for name in written(statement):
            writers.setdefault(name, []).append(position)
    depends: list[set[tuple[int, bool]]] = [set() for _ in statements]
    for position, statement in enumerate(statements):
        for ref in read(statement):
            name = ref_name(ref)
            if name not in arrays:
                continue
            shifted = _offset(ref, arrays[name], time) not in (0, None)
            for storage in _storage(arrays, name):
                for writer in writers.get(storage, []):
                    depends[position].add((writer, shifted))
    recurrent = _recurrent(count, depends)
    if not recurrent:
        before = _guards_step_by_step(list(statements), list(statements), arrays, time)
        return Schedule(before, [], [], _allocations(statements, _stepped(before), arrays))
    users: list[set[int]] = [set() for _ in statements]
    for position, edges in enumerate(depends):
        for writer, _ in edges:
            users[writer].add(position)
    below = _closure(recurrent, users)
    above = _closure(recurrent, [{w for w, _ in edges} for edges in depends])
    in_loop = recurrent | (below & above)
    after_loop = _closure(in_loop, users) - in_loop
    before = [s for p, s in enumerate(statements) if p not in in_loop | after_loop]
    loop = [s for p, s in enumerate(statements) if p in in_loop]
    after = [s for p, s in enumerate(statements) if p in after_loop]
    if temporary is not None:
        loop, hoisted = _hoist_invariant_terms(loop, arrays, temporary)
        before += hoisted
    loop = _localize(loop, [*before, *after], arrays, time)
    everything = [*before, *loop, *after]
    before = _guards_step_by_step(before, everything, arrays, time)
    after = _guards_step_by_step(after, everything, arrays, time)
    return Schedule(before, loop, after,
                    _allocations(statements, [*loop, *_stepped(before), *_stepped(after)],
                                 arrays))


def _guards_step_by_step(statements: list[Statement], phase: list[Statement],
                         arrays: dict[str, Array], time: Idx) -> list[Statement]:
    """A boundary condition outside the loop (``[t = T]`` from a read at the last step) runs
    in a loop of its own, one step at a time: its terms may read a neighbouring step, which
    exists only where the condition holds. Its temporaries that nothing else in the
    ``phase`` reads lose their time axis."""
    result: list[Statement] = []
    for statement in statements:
        if isinstance(statement, Guarded):
            others = [s for s in phase if s is not statement]
            (statement,) = _localize([statement], others, arrays, time)
            statement = Loop(1, (statement,), f"where {statement.lo} ≤ {time} ≤ "
                                              f"{statement.hi}, one step at a time")
        result.append(statement)
    return result


def _stepped(statements: list[Statement]) -> list[Statement]:
    """The bodies of the loops :func:`_guards_step_by_step` made."""
    return [inner for s in statements if isinstance(s, Loop) for inner in s.body]


def _offset(ref: object, array: Array, time: Idx) -> int | None:
    """``c`` for a reference at ``t + c`` to an array over time; None otherwise."""
    if array.time is None or not isinstance(ref, Indexed):
        return None
    first = ref.indices[0]
    if not first.has(time):
        return None
    return int(sympy.expand(first - time))


def _storage(arrays: dict[str, Array], name: str) -> set[str]:
    """``name`` and what shares its memory: a buffer's parts, a view's buffer."""
    array = arrays[name]
    names = {name, *array.parts}
    if array.view:
        names.add(array.view.buffer)
    return names


def _recurrent(count: int, depends: list[set[tuple[int, bool]]]) -> set[int]:
    """Statements in a strongly connected component with a dependency across steps."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    components: list[set[int]] = []

    def visit(node: int) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for writer, _ in depends[node]:
            if writer not in index:
                visit(writer)
                low[node] = min(low[node], low[writer])
            elif writer in on_stack:
                low[node] = min(low[node], index[writer])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in range(count):
        if node not in index:
            visit(node)
    recurrent: set[int] = set()
    for component in components:
        if any(shifted and writer in component
               for node in component for writer, shifted in depends[node]):
            recurrent |= component
    return recurrent


def _closure(start: set[int], edges: list[set[int]]) -> set[int]:
    """Everything reachable from ``start`` along ``edges`` (``start`` included)."""
    seen = set(start)
    frontier = list(start)
    while frontier:
        for nxt in edges[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


def _hoist_invariant_terms(loop: list[Statement], arrays: dict[str, Array],
                           temporary: Callable[[tuple[Idx, ...]], Ref]
                           ) -> tuple[list[Statement], list[Statement]]:
    """Sums of two or more loop-invariant terms of an in-loop assignment, hoisted."""
    changing: set[str] = set()
    for statement in loop:
        for name in written(statement):
            changing |= _storage(arrays, name)
    hoisted: list[Statement] = []
    result: list[Statement] = []
    for statement in loop:
        if not isinstance(statement, Assign) or not isinstance(statement.value, sympy.Add):
            result.append(statement)
            continue
        invariant = [term for term in statement.value.args
                     if not any(_storage(arrays, str(ref.base.label)) & changing
                                for ref in term.atoms(Indexed))]
        if len(invariant) < 2:
            result.append(statement)
            continue
        total = sympy.Add(*invariant)
        context = tuple(statement.out.indices) if isinstance(statement.out, Indexed) else ()
        free = {s for s in total.free_symbols if isinstance(s, Idx)}
        indices = (*(i for i in context if i in free),
                   *sorted(free - set(context), key=lambda i: i.name))
        target = temporary(indices)
        hoisted.append(Assign(target, total, "the terms no step changes, for every step"))
        rest = [term for term in statement.value.args if term not in invariant]
        result.append(dataclasses.replace(statement, value=sympy.Add(target, *rest)))
    return result, hoisted


def _localize(loop: list[Statement], outside: list[Statement], arrays: dict[str, Array],
              time: Idx) -> list[Statement]:
    """Temporaries written and read within one step of the loop lose their time axis."""
    written_in_loop = set().union(*(written(s) for s in loop)) if loop else set()
    read_outside = {ref_name(r) for s in outside for r in read(s)}
    local = set()
    for name in written_in_loop:
        array = arrays[name]
        if (array.kind is not Kind.TEMPORARY or array.time is None or array.view or array.parts
                or name in read_outside):
            continue
        if all(_offset(r, array, time) == 0 for s in loop for r in read(s)
               if ref_name(r) == name):
            local.add(name)
    for name in local:
        array = arrays[name]
        arrays[name] = dataclasses.replace(array, axes=array.axes[1:], time=None)

    def drop_time(expr: sympy.Expr) -> sympy.Expr:
        return expr.replace(
            lambda e: isinstance(e, Indexed) and str(e.base.label) in local,
            lambda e: IndexedBase(str(e.base.label))[tuple(e.indices[1:])]
            if len(e.indices) > 1 else sympy.Symbol(str(e.base.label)))

    return [_rewrite(s, drop_time) for s in loop]


def _rewrite(statement: Statement, change: object) -> Statement:
    """``statement`` with ``change`` applied to every expression and reference in it."""
    fields = {}
    for field in dataclasses.fields(statement):
        value = getattr(statement, field.name)
        if isinstance(value, sympy.Basic) and not isinstance(value, Idx):
            fields[field.name] = change(value)  # type: ignore[operator]
        elif field.name == "operands":
            fields[field.name] = tuple(change(v) for v in value)  # type: ignore[operator]
        elif field.name == "body":
            fields[field.name] = tuple(_rewrite(s, change) for s in value)
    return dataclasses.replace(statement, **fields)


def _allocations(statements: list[Statement], loop: list[Statement],
                 arrays: dict[str, Array]) -> list[str]:
    """Arrays that need storage before they are written: those the loop writes one step at a
    time, and those whose row 0 is an initial state (not views: their buffer is allocated)."""
    names: list[str] = []
    in_loop = set().union(*(written(s) for s in loop)) if loop else set()
    for statement in statements:
        for name in sorted(written(statement)):
            array = arrays[name]
            if array.view or name in names:
                continue
            if (name in in_loop and array.time is not None) or (
                    array.time is not None and array.first_time == 0):
                names.append(name)
    return names


__all__ = ["Loop", "Schedule", "SchedulingError", "schedule"]
