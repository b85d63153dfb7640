"""Transposed copies: a concatenated weight that a loop's product reads transposed gets a
copy laid out the other way.

Role in DESIGN.md's picture: a pass of the plan stage that a backend runs on its copy of
the plan before printing it, when the library behind its products packs each operand
anew on every call (CBLAS; the C backend). It knows no network; it looks for products
inside a loop over time that read a matrix made by a :class:`~codegen.plan.Concat` (a
copy of parameters, once per call) as ``W[q, k]`` with ``k`` summed and ``q`` the
output's last axis: ``out = L·Wᵀ``, the backward recurrent product ``δ W_hᵀ`` of the
LSTM's four gates (``ε_c^t = Σ_g Σ_c' w_{cc'} δ_g^{t+1}``).

Every product that reads ``W`` that way then reads ``Wᵀ`` instead, as ``Wᵀ[k, q]``: a
second Concat of the same parameters, each transposed, placed just before the first
statement that reads it. The product becomes a plain one (CBLAS ``NoTrans``), whose
per-call packing of the large operand OpenBLAS does faster than the transposed read's
(``python benchmarks/recurrent_product.py``, "copy for backward"). The forward pass
reads ``W`` as before; once it is done, ``W`` is read no more, and the copy can take
its place in the workspace (``share_places`` in the C backend), so the copy costs no
memory where the forward and backward uses do not overlap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from sympy import Basic, Idx, IndexedBase, Symbol

from chainrule.codegen.plan.types import (
    Concat,
    Contract,
    Guarded,
    Loop,
    Plan,
    Statement,
    ref_indices,
    ref_name,
    walk,
)
from chainrule.symbolic import Names, numbered

__all__ = ["transpose_concatenations"]

_PHASES = ("forward", "loss_statements", "backward", "gradient_statements")


def transpose_concatenations(plan: Plan) -> Plan:
    """``plan`` with every concatenated matrix that a product in a loop reads transposed
    read through a transposed copy instead (see the module's docstring)."""
    concats = {s.out: s for s in walk(plan.all_statements())
               if isinstance(s, Concat) and not s.transposed and _is_matrix(plan, s)}
    in_loops = {name for s in walk(plan.all_statements()) if isinstance(s, Loop)
                for inner in walk(list(s.body)) if isinstance(inner, Contract)
                for name in _transposed_reads(inner, concats)}
    if not in_loops:
        return plan
    arrays = dict(plan.arrays)
    names = Names(_taken(plan))
    copies: dict[str, str] = {}
    for name in sorted(in_loops):
        array = plan.arrays[name]
        copy = names.fresh(numbered(f"{name}_T"))
        arrays[copy] = dataclasses.replace(array, name=copy, axes=array.axes[::-1],
                                           quantity=None)
        copies[name] = copy
    out = dataclasses.replace(plan, arrays=arrays)
    pending = dict(copies)  # the copies not yet made
    for phase in _PHASES:
        statements: list[Statement] = []
        for statement in getattr(plan, phase):
            rewritten = _rewrite(statement, copies)
            for name in [n for n in pending if _reads(rewritten, pending[n])]:
                concat, axis = concats[name], 1 - concats[name].axis
                placed = "one below the other" if axis == 0 else "side by side"
                statements.append(Concat(
                    pending.pop(name), concat.parts, axis,
                    f"{', '.join(concat.parts)}, each transposed, {placed}", transposed=True))
            statements.append(rewritten)
        setattr(out, phase, statements)
    return out


def _is_matrix(plan: Plan, concat: Concat) -> bool:
    return all(len(plan.arrays[name].axes) == 2 for name in (concat.out, *concat.parts))


def _transposed_reads(product: Contract, concats: Collection[str]) -> list[str]:
    """The concatenated matrices ``product`` reads as ``W[q, k]``: ``k`` summed, ``q`` the
    output's last index, both plain indices."""
    out_indices = ref_indices(product.out)
    found = []
    for operand in product.operands:
        name = ref_name(operand)
        if name not in concats:
            continue
        q, k = ref_indices(operand)
        if isinstance(q, Idx) and isinstance(k, Idx) and out_indices \
                and out_indices[-1] == q and k not in out_indices and q != k:
            found.append(name)
    return found


def _rewrite(statement: Statement, copies: dict[str, str]) -> Statement:
    if isinstance(statement, Loop | Guarded):
        return dataclasses.replace(
            statement, body=tuple(_rewrite(s, copies) for s in statement.body))
    if not isinstance(statement, Contract):
        return statement
    targets = set(_transposed_reads(statement, copies))
    if not targets:
        return statement
    operands = tuple(
        IndexedBase(copies[ref_name(op)])[tuple(ref_indices(op))[::-1]]
        if ref_name(op) in targets else op for op in statement.operands)
    return dataclasses.replace(statement, operands=operands)


def _reads(statement: Statement, name: str) -> bool:
    return any(isinstance(s, Contract) and any(ref_name(op) == name for op in s.operands)
               for s in walk([statement]))


def _taken(plan: Plan) -> set[str]:
    """Every name the plan's kernels print: its arrays, sizes and loop indices, and what
    the caller names (a copy's name must capture none of them)."""
    taken = {*plan.arrays, *map(str, plan.sizes), *plan.parameters, *plan.states,
             *plan.inputs, *plan.targets, plan.name}
    if plan.time is not None:
        taken.add(str(plan.time))
    for statement in walk(plan.all_statements()):
        for field in dataclasses.fields(statement):
            value = getattr(statement, field.name)
            for expr in value if isinstance(value, tuple) else (value,):
                if isinstance(expr, Basic):
                    taken |= {str(atom) for atom in expr.atoms(Symbol, Idx)}
    return taken
