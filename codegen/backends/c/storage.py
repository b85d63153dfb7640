"""The C backend's storage: where every array of the plan lives.

Role in DESIGN.md's picture: part of ``plan → c``, read by ``backend.py`` before any
statement is printed. Each array of the plan gets a place: the caller's arrays (the
inputs, the real-valued targets, the parameters, their gradients), a scalar local, or
a region of the caller's workspace, one region after another; a fused buffer's views print through
the buffer's strides. An array whose values live one step (``plan/lifetimes.py``) gets
one step's row, its time stride 0. A place is a ``printer.Layout``, row-major. The workspace's size,
``<net>_workspace_bytes``, counts each region's elements through the template's
saturating helpers, so that an overflow shows as ``SIZE_MAX`` instead of wrapping
around.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import Expr, Symbol

from chainrule.codegen.backends.c.printer import REAL, KernelCPrinter, Layout
from chainrule.codegen.plan.lifetimes import step_local
from chainrule.codegen.plan.types import Array, Kind, Plan

__all__ = ["Region", "Storage", "assign_storage", "contiguous", "region_starts",
           "share_places", "workspace_context"]

_SIZE_MUL, _SIZE_ADD = "chainrule_size_mul", "chainrule_size_add"


@dataclass(frozen=True)
class Region:
    """A place in the workspace: an array of ``size`` elements; with ``shares``, the place
    of that region, whose values are all read before this one's are written."""

    name: str
    size: Expr
    shares: str | None = None


@dataclass
class Storage:
    """The places of a plan's arrays."""

    #: every array with axes that is not a state, by name (a view's through its buffer)
    layouts: dict[str, Layout]
    #: the workspace's regions, in the plan's order
    regions: list[Region]
    #: the arrays without axes: locals of the run function
    scalars: list[str]
    #: (gradient, destination pointer): a parameter's gradient that is a view of a fused
    #: buffer, copied out to the caller's array after the backward pass
    gradient_copies: list[tuple[str, str]]


def assign_storage(plan: Plan) -> Storage:
    """The place of every array of ``plan``."""
    storage = Storage({}, [], [], [])
    layouts = storage.layouts
    one_row = step_local(plan)
    gradient_of = {g: p for p, g in plan.gradients.items()}
    for array in plan.arrays.values():
        name = array.name
        if array.view:
            continue
        if not array.axes:
            storage.scalars.append(name)
            continue
        if array.kind is Kind.INPUT or (array.kind is Kind.TARGET
                                        and name not in plan.labels):
            layouts[name] = _row_major(name, array)  # the caller's, bound by name
        elif array.kind is Kind.PARAMETER:
            layouts[name] = _row_major(name, array)
        elif array.kind is Kind.STATE:
            continue
        elif array.kind is Kind.GRADIENT and gradient_of.get(name) in plan.parameters:
            layouts[name] = _row_major(name, array)
        elif name in one_row:  # every step writes the same row (plan/lifetimes.py)
            time_axis = one_row[name]
            rest = [axis for i, axis in enumerate(array.axes) if i != time_axis]
            storage.regions.append(Region(name, sympy.Mul(*rest)))
            row = contiguous(name, rest, None)
            strides = list(row.strides)
            strides.insert(time_axis, sympy.S.Zero)
            layouts[name] = Layout(name, sympy.S.Zero, tuple(strides), array.first_time)
        else:
            storage.regions.append(Region(name, sympy.Mul(*array.axes)))
            layouts[name] = _row_major(name, array)
    for array in plan.arrays.values():
        if array.view:
            buffer = layouts[array.view.buffer]
            offset = buffer.offset + array.view.start * buffer.strides[array.view.axis]
            layouts[array.name] = Layout(buffer.pointer, offset, buffer.strides,
                                         buffer.first_time)
    for slot, parameter in enumerate(plan.parameters):
        gradient = plan.gradients[parameter]
        if plan.arrays[gradient].view:
            storage.gradient_copies.append((gradient, f"grads[{slot}]"))
    return storage


def contiguous(pointer: str, axes: tuple[Expr, ...] | list[Expr],
               first_time: int | None) -> Layout:
    """The row-major layout of an array over ``axes`` at ``pointer``."""
    strides = [sympy.S.One] * len(axes)
    for position in range(len(axes) - 2, -1, -1):
        strides[position] = strides[position + 1] * axes[position + 1]
    return Layout(pointer, sympy.S.Zero, tuple(strides), first_time)


def _row_major(pointer: str, array: Array) -> Layout:
    return contiguous(pointer, array.axes,
                      array.first_time if array.time is not None else None)


# --- the workspace ------------------------------------------------------------------------


def share_places(regions: list[Region], spans: dict[str, tuple[int, int]],
                 kept: set[str]) -> list[Region]:
    """``regions`` with the places of arrays whose uses do not overlap shared: a region
    takes the place of one in use only before it (``spans``: first and last statement)
    and at least as large for every size, else a place of its own. The arrays in
    ``kept`` (copied out after the last statement) keep theirs to the end."""
    end = max((last for _, last in spans.values()), default=0) + 1
    def span(name: str) -> tuple[int, int]:
        first, last = spans.get(name, (0, end))
        return first, end if name in kept else last
    places: list[list[object]] = []  # [head region, its size, the last statement in use]
    shared: dict[str, str] = {}
    for region in sorted(regions, key=lambda r: span(r.name)):
        first, last = span(region.name)
        for place in places:
            head, size, busy_until = place
            if busy_until < first and _at_least(size, region.size):  # type: ignore[arg-type]
                shared[region.name] = head.name  # type: ignore[attr-defined]
                place[2] = last
                break
        else:
            places.append([region, region.size, last])
    return [Region(r.name, r.size, shared.get(r.name)) for r in regions]


def _at_least(size: Expr, other: Expr) -> bool:
    """Whether ``size ≥ other`` for every value ≥ 1 of the sizes they name: with each size
    s written s' + 1, the difference's coefficients are all ≥ 0."""
    symbols = sorted((size - other).free_symbols, key=str)
    shifted = sympy.expand((size - other).xreplace({s: s + 1 for s in symbols}))
    if not symbols:
        return bool(shifted >= 0)
    return all(c >= 0 for c in sympy.Poly(shifted, *symbols).coeffs())


def region_starts(regions: list[Region], printer: KernelCPrinter) -> list[tuple[str, str]]:
    """(region, its first element): the regions of their own one after another in the
    workspace, then those that share one's place."""
    starts, start = [], f"({REAL} *)workspace"
    for region in regions:
        if region.shares is None:
            starts.append((region.name, start))
            start = f"{region.name} + {printer.doprint(region.size)}"
    starts += [(region.name, region.shares) for region in regions if region.shares]
    return starts


def workspace_context(regions: list[Region], size_names: list[str]) -> dict[str, object]:
    """``<net>_workspace_bytes``'s regions, counted with the overflow-checked helpers, and the
    sizes (with their places in ``sizes``) that the counts read."""
    own = [region for region in regions if region.shares is None]
    counts = [(region.name, _checked_count(region.size)) for region in own]
    read = {str(s) for region in own for s in region.size.free_symbols}
    return {"region_counts": counts,
            "counted_sizes": [(size, slot) for slot, size in enumerate(size_names)
                              if size in read],
            "uses_size_add": bool(counts),  # the mul helper only ever comes with the add
            "uses_size_mul": any(_SIZE_MUL in count for _, count in counts)}


def _checked_count(size: Expr) -> str:
    """A region's element count (sizes, positive integers, + * and whole powers) in C, each
    product and sum through the saturating ``chainrule_size_mul`` / ``_add`` of the template,
    so that an overflow shows as SIZE_MAX instead of wrapping around."""
    if isinstance(size, sympy.Integer) and 0 < size < 2**31:
        return str(size)
    if isinstance(size, Symbol):
        return str(size)
    if isinstance(size, sympy.Pow) and isinstance(size.exp, sympy.Integer) and size.exp > 0:
        return _fold(_SIZE_MUL, [_checked_count(size.base)] * int(size.exp))
    if isinstance(size, sympy.Mul):
        return _fold(_SIZE_MUL, [_checked_count(arg) for arg in size.args])
    if isinstance(size, sympy.Add):
        return _fold(_SIZE_ADD, [_checked_count(arg) for arg in size.args])
    raise ValueError(f"the workspace region size {size} is not a sum of products of sizes and "
                     f"positive integers; its overflow check cannot be printed")


def _fold(helper: str, operands: list[str]) -> str:
    """``helper(helper(a, b), c)``: ``operands`` joined by a two-argument helper."""
    text = operands[0]
    for operand in operands[1:]:
        text = f"{helper}({text}, {operand})"
    return text
