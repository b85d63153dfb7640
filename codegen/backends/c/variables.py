"""The C backend's loop variables: a C name for every loop counter of a kernel.

Role in DESIGN.md's picture: part of ``plan → c``. Every index of the plan's
statements becomes a ``long`` loop variable named after it (``i``, ``t``), free of
every array, size and reserved name (what the C code uses itself, ``symbolic/names.py``);
the time index is named first. A copy that has no index of the plan over one of its
ranges (a gradient copied out to the caller) gets a new one, named after the size.
The printer reads the same table (``KernelCPrinter.variables``) to print an index.
"""

from __future__ import annotations

from collections.abc import Iterable

from sympy import Expr, Idx, Indexed, Symbol

from chainrule.codegen.backends.c.printer import c_identifier
from chainrule.codegen.plan.types import Assign, Guarded, Loop, Plan, Statement, read, walk
from chainrule.symbolic import Names, c_functions

__all__ = ["LoopVariables"]


class LoopVariables:
    """The loop variables of one kernel: :attr:`symbols` maps each index to its C name."""

    def __init__(self, plan: Plan, sizes: Iterable[str]) -> None:
        self.names = Names([*sizes, *plan.arrays, *c_functions(plan.name)])
        #: index → the integer Symbol of its C name (shared with the printer)
        self.symbols: dict[Expr, Symbol] = {}
        indices = _indices(plan)
        if plan.time is not None:
            indices = [plan.time, *(i for i in indices if i != plan.time)]
        for index in indices:
            self.symbols[index] = Symbol(c_identifier(index.name, self.names), integer=True)

    def name(self, index: Idx) -> str:
        """The C name of ``index``'s loop variable."""
        return self.symbols[index].name

    def local(self, array: str) -> str:
        """A C name for a loop body's local holding one element of ``array``
        (``a_i_e``), free like a loop variable's."""
        return c_identifier(f"{array}_e", self.names)

    def copy_indices(self, extents: list[Expr], time_first: bool, bound: set[Idx]) -> list[Idx]:
        """Loop indices over ``extents`` for a copy, none in ``bound`` (the enclosing loops)
        nor twice: the kernel's own index over each range where it has one (so the copy of
        ``W_xi[i, c]`` loops over ``i`` and ``c``), else a new one named after the size. With
        ``time_first`` the first runs over the steps ``1..extent`` (the time index)."""
        chosen: list[Idx] = []
        for position, extent in enumerate(extents):
            lower = 1 if time_first and position == 0 else 0
            upper = extent if lower else extent - 1
            index = next((i for i in self.symbols
                          if isinstance(i, Idx) and i not in chosen and i not in bound
                          and i.lower == lower and i.upper == upper), None)
            if index is None:
                base = str(extent).lower() if isinstance(extent, Symbol) else "n"
                name = c_identifier(base, self.names)
                index = Idx(name, (lower, upper))
                self.symbols[index] = Symbol(name, integer=True)
            chosen.append(index)
        return chosen


def _indices(plan: Plan) -> list[Idx]:
    """Every index the plan's statements name, in their order (and the time index)."""
    found: dict[Idx, None] = {}
    for statement in walk(plan.all_statements()):
        for expr in _expressions(statement):
            for index in sorted((s for s in expr.free_symbols if isinstance(s, Idx)),
                                key=str):
                found.setdefault(index)
    if plan.time is not None:
        found.setdefault(plan.time)
    return list(found)


def _expressions(statement: Statement) -> list[Expr]:
    """The references ``statement`` itself writes and reads, and an assignment's value (a
    loop's or guard's body statements are statements of their own)."""
    out = getattr(statement, "out", None)
    written = [out] if isinstance(out, Indexed | Symbol) else []
    if isinstance(statement, Loop | Guarded):
        return written
    value = [statement.value] if isinstance(statement, Assign) else []
    return [*written, *read(statement), *value]
