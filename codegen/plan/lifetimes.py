"""How long the values of an array over time live: the arrays one step's row can hold.

Role in DESIGN.md's picture: an analysis of the plan (``plan → c``), asked by a backend
when it lays out memory. An array over time needs a row per step only if some
statement reads a step other than the one being computed: a recurrence reads t−1, the
backward pass reads what the forward pass stored, a product hoisted out of the loop
writes or reads every step at once. An array whose every reference lies in one time
loop and indexes the step ``t`` itself (a gate's pre-activation ``a_i[t]``, read by
``g_i[t] = σ(a_i[t])`` in the same step and never again) is dead when its step ends:
one row, reused by every step, holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sympy import Expr

from chainrule.codegen.plan.types import (
    Allocate,
    Assign,
    Concat,
    Contract,
    Guarded,
    Initial,
    Loop,
    OneHot,
    Plan,
    Softmax,
    Split,
    Statement,
    read,
    ref_indices,
    ref_name,
    walk,
)

__all__ = ["references", "spans", "step_local"]

#: an array's references: (the array, its indices, or None where it is named whole)
_Reference = tuple[str, tuple[Expr, ...] | None]


def references(statement: Statement) -> list[_Reference]:
    """What one statement (not what is inside it) writes and reads: (array, its indices,
    or None where the statement names it whole), the written array first."""
    if isinstance(statement, Loop):
        return []
    if isinstance(statement, Guarded):  # its body is walked on its own
        return [(ref_name(statement.out), ref_indices(statement.out))]
    if isinstance(statement, Contract | Assign | Softmax | OneHot):
        return [(ref_name(ref), ref_indices(ref)) for ref in (statement.out, *read(statement))]
    if isinstance(statement, Concat):
        return [(statement.out, None), *((part, None) for part in statement.parts)]
    if isinstance(statement, Allocate):  # storage of the array's shape: no value
        return []
    if isinstance(statement, Initial):
        return [(statement.array, None), (statement.state, None)]
    if isinstance(statement, Split):
        return [(statement.buffer, None)]
    raise TypeError(f"no references known for {type(statement).__name__}")


@dataclass(frozen=True)
class _Use:
    """One reference to an array: where (the top-level statement, and the statement's
    place in ``walk`` of it), whether it writes, its indices (None: the array named
    whole), and whether it is an Assign's (each element from the same element's reads)."""

    top: int
    inner: int
    writes: bool
    indices: tuple[Expr, ...] | None
    elementwise: bool


def _uses(plan: Plan) -> dict[str, list[_Use]]:
    uses: dict[str, list[_Use]] = {}
    for top, statement in enumerate(plan.all_statements()):
        for inner, each in enumerate(walk([statement])):
            # a product adding into its output updates the value an earlier write made
            writes = isinstance(each, Contract | Assign | Softmax | OneHot | Guarded) and not (
                isinstance(each, Contract) and each.accumulate)
            for position, (name, indices) in enumerate(references(each)):
                uses.setdefault(name, []).append(
                    _Use(top, inner, writes and position == 0, indices,
                         isinstance(each, Assign)))
    return uses


def step_local(plan: Plan) -> dict[str, int]:
    """The arrays over time that one step's row can hold, each with the position of its
    time axis. Every reference to the array lies in one loop over time at ``t``, or reads
    the step before in the loop's order (``t − 1`` ascending, ``t + 1`` descending)
    before the step's own value is written over it (``ε_s^{t+1}`` read for ``ε_s^t``),
    or, after the loop, reads the step it computed last (``ε_s^1`` for ``∂L/∂s^0``); the
    loop writes it once per step, and nothing else does; and the array is not a view, a
    fused buffer, what ``predict`` returns, nor an array with an initial state or
    padding."""
    if plan.time is None:
        return {}
    t = plan.time
    loops = {top: statement for top, statement in enumerate(plan.all_statements())
             if isinstance(statement, Loop)}
    local: dict[str, int] = {}
    for name, uses in _uses(plan).items():
        array = plan.arrays.get(name)
        if (array is None or array.time is None or array.view or array.parts
                or name in plan.outputs or array.initial_at is not None or array.padding):
            continue
        in_loops = {use.top for use in uses if use.top in loops}
        writes = [use for use in uses if use.writes]
        if len(in_loops) != 1 or len(writes) != 1 or writes[0].indices is None:
            continue
        (loop,) = in_loops
        write = writes[0]
        axes = [i for i, index in enumerate(write.indices) if t in index.free_symbols]
        if write.top != loop or len(axes) != 1 or write.indices[axes[0]] != t:
            continue
        step = loops[loop].step
        context = _Context(loop, axes[0], t, t - step, t.upper if step == 1 else t.lower)
        if all(_fits_one_row(use, write, context) for use in uses):
            local[name] = axes[0]
    return local


@dataclass(frozen=True)
class _Context:
    loop: int  # the loop's top-level position
    axis: int  # the time axis
    now: Expr  # t
    before: Expr  # the step before in the loop's order: t − 1 ascending, t + 1 descending
    last: Expr  # the loop's last step: T ascending, 1 descending


def _fits_one_row(use: _Use, write: _Use, at: _Context) -> bool:
    """Whether ``use`` reads what the one row holds when it runs."""
    if use is write:
        return True
    if use.writes or use.indices is None or use.top < at.loop:
        return False
    index = use.indices[at.axis]
    rest = [ix for i, ix in enumerate(use.indices) if i != at.axis]
    if any(at.now in ix.free_symbols for ix in rest):
        return False
    if use.top > at.loop:  # after the loop: the row holds the step computed last
        return index == at.last
    if index == at.now:
        return True
    if index != at.before:
        return False
    # the step before, read before this step writes over it; in the writing statement
    # itself only elementwise, each element from itself
    same_rest = rest == [ix for i, ix in enumerate(write.indices) if i != at.axis]  # type: ignore[arg-type]
    return use.inner < write.inner or (use.inner == write.inner and use.elementwise
                                       and same_rest)


def spans(plan: Plan) -> dict[str, tuple[int, int]]:
    """Where each array is in use: the first and the last of the plan's top-level
    statements (``Plan.all_statements``; a loop counts as one) that name it, a view's
    references counted as its buffer's. Before its first and after its last, its storage
    holds nothing anyone reads."""
    found: dict[str, tuple[int, int]] = {}
    for position, top in enumerate(plan.all_statements()):
        for statement in walk([top]):
            named = references(statement)
            if isinstance(statement, Allocate):
                named = [(statement.name, None)]
            for name, _ in named:
                array = plan.arrays.get(name)
                storage = array.view.buffer if array is not None and array.view else name
                first, _ = found.get(storage, (position, position))
                found[storage] = (first, position)
    return found
