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

__all__ = ["spans", "step_local"]

#: an array's references: (the array, its indices, or None where it is named whole)
_Reference = tuple[str, tuple[Expr, ...] | None]


def _references(statement: Statement) -> list[_Reference]:
    """What one statement (not what is inside it) writes and reads."""
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


def step_local(plan: Plan) -> dict[str, int]:
    """The arrays over time whose values live one step, each with the position of its
    time axis: every reference to the array lies in one loop over time and indexes it at
    ``t`` (no t−1, no other step, no reference outside that loop, none to the whole
    array), and the array is not a view, a fused buffer, or what ``predict`` returns."""
    if plan.time is None:
        return {}
    t = plan.time
    loop_of: dict[str, set[int]] = {}
    axis_of: dict[str, set[int | None]] = {}
    for position, top in enumerate(plan.all_statements()):
        loop = position if isinstance(top, Loop) else -1
        for statement in walk([top]):
            for name, indices in _references(statement):
                loop_of.setdefault(name, set()).add(loop)
                if indices is None:
                    axis_of.setdefault(name, set()).add(None)
                    continue
                at = [i for i, index in enumerate(indices) if t in index.free_symbols]
                axis_of.setdefault(name, set()).add(
                    at[0] if len(at) == 1 and indices[at[0]] == t else None)
    local: dict[str, int] = {}
    for name, array in plan.arrays.items():
        loops, axes = loop_of.get(name, set()), axis_of.get(name, set())
        if (array.time is None or array.view or array.parts or name in plan.outputs
                or array.initial_at is not None or array.padding or len(loops) != 1
                or -1 in loops or len(axes) != 1 or None in axes):
            continue
        local[name] = next(iter(axes))  # type: ignore[arg-type]
    return local


def spans(plan: Plan) -> dict[str, tuple[int, int]]:
    """Where each array is in use: the first and the last of the plan's top-level
    statements (``Plan.all_statements``; a loop counts as one) that name it, a view's
    references counted as its buffer's. Before its first and after its last, its storage
    holds nothing anyone reads."""
    found: dict[str, tuple[int, int]] = {}
    for position, top in enumerate(plan.all_statements()):
        for statement in walk([top]):
            references = _references(statement)
            if isinstance(statement, Allocate):
                references = [(statement.name, None)]
            for name, _ in references:
                array = plan.arrays.get(name)
                storage = array.view.buffer if array is not None and array.view else name
                first, _ = found.get(storage, (position, position))
                found[storage] = (first, position)
    return found
