"""Scheduling through time: what runs inside the loops over ``t``, and what is hoisted out.

Role in DESIGN.md's picture: the plan stage for models with a time index. The
statements of one phase (forward or backward) are first lowered as if every
step ran at once. A statement belongs in a loop when it lies on a cycle of
dependencies that goes through another step (``b^{t-1}`` feeding ``a^t``, or
``δ^{t+1}`` feeding ``δ^t``); each such cycle is a loop, ascending or descending
as its reads ask (a bidirectional network has one of each). Every other
statement runs once for all steps, as early as its dependencies allow: before a
loop when it does not depend on it (the input projections ``x^t·W`` of every
step, the output layer's ``Σ_k δ_k^t w_hk``), after it otherwise (the output
layer and softmax of every step). Temporaries that live within one step lose their
time axis; arrays a loop writes step by step are allocated before it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import sympy
from sympy import Idx, Indexed, IndexedBase

from chainrule.codegen.plan.types import (
    Array,
    Assign,
    Contract,
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
class Segment:
    """Statements that run once for all steps (``step`` None) or in a loop over ``t``,
    ascending (``step`` 1) or descending (``step`` -1)."""

    step: int | None
    statements: list[Statement]


@dataclasses.dataclass
class Schedule:
    """One phase, in order: segments of hoisted work and loops through time."""

    segments: list[Segment]
    allocate: list[str]


def schedule(statements: list[Statement], arrays: dict[str, Array], time: Idx,
             temporary: Callable[[tuple[Idx, ...]], Ref] | None = None) -> Schedule:
    """Split ``statements`` (in a valid order for one step) around loops over ``time``.

    A recurrence through ``t-1`` runs ascending, one through ``t+1`` descending (a
    layer that reads the next step, in the forward pass of a bidirectional network,
    or the adjoints of a forward layer); each recurrent component is a loop, the loops
    run in the order their dependencies ask, and adjacent loops of one direction merge.
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
    depends: list[set[tuple[int, int]]] = [set() for _ in statements]
    for position, statement in enumerate(statements):
        for ref in read(statement):
            name = ref_name(ref)
            if name not in arrays:
                continue
            offset = _offset(ref, arrays[name], time) or 0
            for storage in _storage(arrays, name):
                for writer in writers.get(storage, []):
                    depends[position].add((writer, offset))
    writes_of = [{w for w, _ in edges} for edges in depends]
    # one loop per recurrent component (a strongly connected one: nothing lies between
    # it and itself); adjacent loops of one direction are then merged
    loops = dict(enumerate(_recurrent(count, depends, time)))
    segments = _merged(_segments(statements, loops, writes_of))
    if temporary is not None:
        segments = _hoisted(segments, arrays, temporary)
    everything = [s for segment in segments for s in segment.statements]
    for segment in segments:
        if segment.step is not None:
            others = [s for s in everything if not any(s is m for m in segment.statements)]
            segment.statements = _localize(segment.statements, others, arrays, time)
    everything = [s for segment in segments for s in segment.statements]
    for segment in segments:
        if segment.step is None:
            segment.statements = _guards_step_by_step(segment.statements, everything, arrays,
                                                      time)
    stepped = [s for segment in segments for s in
               (segment.statements if segment.step is not None
                else _stepped(segment.statements))]
    return Schedule(segments, _allocations(statements, stepped, arrays))


def _segments(statements: list[Statement], loops: dict[int, tuple[set[int], int]],
              writes_of: list[set[int]]) -> list[Segment]:
    """The statements as segments in an order their dependencies allow: each statement
    outside the loops as early as it can run, each loop as a whole (ascending loops first
    where the order is free)."""
    unit_of = {p: ("loop", key) for key, (members, _) in loops.items() for p in members}
    units: list[tuple[str, int]] = []
    for position in range(len(statements)):
        unit = unit_of.get(position, ("plain", position))
        if unit not in units:
            units.append(unit)
    needs: dict[tuple[str, int], set[tuple[str, int]]] = {u: set() for u in units}
    for position, writers in enumerate(writes_of):
        unit = unit_of.get(position, ("plain", position))
        for writer in writers:
            other = unit_of.get(writer, ("plain", writer))
            if other != unit:
                needs[unit].add(other)
    done: set[tuple[str, int]] = set()
    order: list[tuple[str, int]] = []
    while len(order) < len(units):
        ready = [u for u in units if u not in done and needs[u] <= done]
        if not ready:
            raise SchedulingError("the loops through time depend on each other")
        plain = [u for u in ready if u[0] == "plain"]
        chosen = plain[:1] or sorted(ready, key=lambda u: -loops[u[1]][1])[:1]
        order += chosen
        done |= set(chosen)
    segments: list[Segment] = []
    for kind, key in order:
        if kind == "loop":
            members, direction = loops[key]
            segments.append(Segment(direction, [statements[p] for p in sorted(members)]))
        elif segments and segments[-1].step is None:
            segments[-1].statements.append(statements[key])
        else:
            segments.append(Segment(None, [statements[key]]))
    return segments


def _merged(segments: list[Segment]) -> list[Segment]:
    """Adjacent loops of one direction as one: the later reads the earlier at the same step
    or before, which one loop computes first, and never the other way round."""
    result: list[Segment] = []
    for segment in segments:
        if result and segment.step is not None and result[-1].step == segment.step:
            result[-1].statements += segment.statements
        else:
            result.append(segment)
    return result


def _hoisted(segments: list[Segment], arrays: dict[str, Array],
             temporary: Callable[[tuple[Idx, ...]], Ref]) -> list[Segment]:
    """Each loop's invariant sums, computed for all steps just before the loop."""
    result: list[Segment] = []
    everything = [s for segment in segments for s in segment.statements]
    for segment in segments:
        if segment.step is None:
            result.append(segment)
            continue
        before = [s for done in result for s in done.statements]
        body, hoisted = _hoist_invariant_terms(segment.statements, arrays, temporary,
                                               before, everything)
        if hoisted:
            if result and result[-1].step is None:
                result[-1].statements += hoisted
            else:
                result.append(Segment(None, hoisted))
        result.append(Segment(segment.step, body))
    return result


def _guards_step_by_step(statements: list[Statement], phase: list[Statement],
                         arrays: dict[str, Array], time: Idx) -> list[Statement]:
    """A boundary condition outside the loops (``[t = T]`` from a read at the last step)
    runs in a loop of its own, one step at a time: its terms may read a neighbouring step,
    which exists only where the condition holds. Its temporaries that nothing else in the
    ``phase`` reads lose their time axis."""
    result: list[Statement] = []
    for statement in statements:
        if isinstance(statement, Guarded) and statement.value is None:
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


def _recurrent(count: int, depends: list[set[tuple[int, int]]],
               time: Idx) -> list[tuple[set[int], int]]:
    """The strongly connected components with a dependency across steps, each with the
    direction its loop runs: 1 (ascending) for reads at t-1, -1 for reads at t+1."""
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
    recurrent = []
    for component in components:
        offsets = {offset for node in component for writer, offset in depends[node]
                   if offset != 0 and writer in component}
        if not offsets:
            continue
        if len({offset > 0 for offset in offsets}) > 1:
            raise SchedulingError(f"a recurrence reads both earlier and later steps "
                                  f"({', '.join(f'{time}{o:+d}' for o in sorted(offsets))}): "
                                  f"no order of the steps computes it")
        recurrent.append((component, -1 if min(offsets) > 0 else 1))
    return recurrent


def _hoist_invariant_terms(loop: list[Statement], arrays: dict[str, Array],
                           temporary: Callable[[tuple[Idx, ...]], Ref],
                           before: list[Statement], phase: list[Statement]
                           ) -> tuple[list[Statement], list[Statement]]:
    """Sums of two or more loop-invariant terms of an in-loop assignment, hoisted: into
    a fresh temporary, or (``β_i + Σ_i w x^t``) added in place to the product that only
    this sum reads (its ``carrier``), so that no second array over time holds it."""
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
        target = _carrier(invariant, indices, statement, arrays, before, phase)
        if target is None:
            target = temporary(indices)
            hoisted.append(Assign(target, total, "the terms no step changes, for every step"))
        else:
            hoisted.append(Assign(target, total, f"the other terms no step changes, added "
                                                 f"to {ref_name(target)} for every step"))
        rest = [term for term in statement.value.args if term not in invariant]
        result.append(dataclasses.replace(statement, value=sympy.Add(target, *rest)))
    return result, hoisted


def _carrier(terms: list[sympy.Expr], indices: tuple[Idx, ...], statement: Assign,
             arrays: dict[str, Array], before: list[Statement],
             phase: list[Statement]) -> Indexed | None:
    """The term of ``terms`` that can hold their sum in place: a temporary over time at
    exactly ``indices``, written by one contraction that runs before the loop, and read
    by ``statement`` alone, once."""
    for term in terms:
        if not isinstance(term, Indexed) or tuple(term.indices) != indices:
            continue
        name = str(term.base.label)
        array = arrays.get(name)
        if (array is None or array.kind is not Kind.TEMPORARY or array.time is None
                or array.view or array.parts):
            continue
        writers = [s for s in phase if name in written(s)]
        if len(writers) != 1 or not isinstance(writers[0], Contract) \
                or not any(s is writers[0] for s in before):
            continue
        readers = [ref for s in phase for ref in read(s) if ref_name(ref) == name]
        if len(readers) == 1 and any(r is statement for r in phase
                                     if name in {ref_name(x) for x in read(r)}):
            return term
    return None


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
                    array.time is not None and array.initial_at is not None):
                names.append(name)
    return names


__all__ = ["Loop", "Schedule", "SchedulingError", "Segment", "schedule"]
