"""C printing of plan expressions: SymPy's C99CodePrinter, overriding only what differs.

Role in DESIGN.md's picture: a printer of the plan → text stage for the C
backend. An array reference ``h[t - 1, b#, c]`` prints as one element of a flat
row-major array, ``h[B*H*(t - 1) + H*b + c]``, through the array's
:class:`Layout` (a view of a fused buffer prints through the buffer's strides).
Index names become C identifiers (``b#`` → ``b``, ``c'`` → ``c1``), each one
free in the kernel's :class:`~symbolic.names.Names`. The
precision is SymPy's own type alias, so ``tanh`` prints as ``tanhf`` and
``0.5`` as ``0.5F`` in the float functions. Functions of our own print as the
kernel's helpers (``chainrule_logistic_f32``), ``fmax`` and a comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy
from sympy import Expr, Idx, Indexed, Symbol
from sympy.codegen.ast import float32, float64, real
from sympy.printing.c import C99CodePrinter

from chainrule.symbolic.names import Names, numbered


@dataclass(frozen=True)
class Layout:
    """Where an array's elements live: ``pointer[offset + Σ (index - base) · stride]``."""

    pointer: str
    offset: Expr
    strides: tuple[Expr, ...]
    first_time: int | None  # the step in row 0 when the first axis is time, else None


def c_identifier(name: str, names: Names) -> str:
    """A C identifier for an index name, free in ``names`` (which takes it): not a user's
    array or size, not another loop variable, nothing reserved (``symbolic/names.py``)."""
    base = re.sub(r"[^0-9A-Za-z_]", "", name.replace("'", "1").replace("#", "_")).strip("_")
    base = base or "n"
    if base[0].isdigit():
        base = "n" + base
    return names.fresh(numbered(base))


class KernelCPrinter(C99CodePrinter):
    """Prints kernel expressions for one precision, arrays through their layouts."""

    def __init__(self, precision: str, layouts: dict[str, Layout],
                 variables: dict[Expr, Symbol]) -> None:
        settings = {"type_aliases": {real: float32 if precision == "f32" else float64}}
        super().__init__(settings)
        self.precision = precision
        self.layouts = layouts
        self.variables = variables

    def element(self, ref: Indexed | Symbol) -> str:
        """The C lvalue of one element of ``ref`` at the current loop variables."""
        if isinstance(ref, Symbol):
            return ref.name
        layout = self.layouts[str(ref.base.label)]
        flat = layout.offset
        for position, (index, stride) in enumerate(zip(ref.indices, layout.strides,
                                                       strict=True)):
            base = layout.first_time if position == 0 and layout.first_time is not None else 0
            flat += (index.xreplace(self.variables) - base) * stride
        return f"{layout.pointer}[{self.doprint(sympy.expand(flat))}]"

    def _print_Indexed(self, expr: Indexed) -> str:
        return self.element(expr)

    def _print_Idx(self, expr: Idx) -> str:
        return self._print(self.variables.get(expr, Symbol(expr.name)))

    def _print_tanh(self, expr: Expr) -> str:
        if self.precision == "f32":
            return f"chainrule_tanh_f32({self._print(expr.args[0])})"
        return f"tanh({self._print(expr.args[0])})"

    def _print_Pow(self, expr: sympy.Pow) -> str:
        # x*x for a cheap base; pow(f(x), 2) otherwise, which compilers expand without
        # evaluating f twice
        if expr.exp.is_Integer and 2 <= int(expr.exp) <= 3 \
                and isinstance(expr.base, Indexed | Symbol):
            base = self.parenthesize(expr.base, sympy.printing.precedence.PRECEDENCE["Mul"])
            return "(" + "*".join([base] * int(expr.exp)) + ")"
        return super()._print_Pow(expr)

    def _print_logistic(self, expr: Expr) -> str:
        return f"chainrule_logistic_{self.precision}({self._print(expr.args[0])})"

    def _print_relu(self, expr: Expr) -> str:
        return self._print(sympy.Max(expr.args[0], 0))

    def _print_step(self, expr: Expr) -> str:
        one = "1.0F" if self.precision == "f32" else "1.0"
        zero = "0.0F" if self.precision == "f32" else "0.0"
        return f"(({self._print(expr.args[0])}) > 0 ? {one} : {zero})"
