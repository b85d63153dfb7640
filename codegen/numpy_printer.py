"""NumPy printing of plan expressions: SymPy's NumPyPrinter, overriding only what differs.

Role in DESIGN.md's picture: a printer of the plan → text stage. An
elementwise statement is printed for one output whose axes are known; each
array it reads is printed as a view broadcast against those axes
(``b_h[numpy.newaxis, :]`` is just ``b_h``; a transposed operand gets
``.transpose(...)``). Functions of our own (logistic, relu, step) print as
stable NumPy forms.
"""

from __future__ import annotations

from collections.abc import Sequence

from sympy import Expr, Idx, Indexed
from sympy.printing.numpy import NumPyPrinter


class KernelNumPyPrinter(NumPyPrinter):
    """Prints an elementwise expression over the axes ``out_indices``."""

    def __init__(self, out_indices: Sequence[Idx] = ()) -> None:
        super().__init__({"fully_qualified_modules": True, "strict": True})
        self.out_indices = tuple(out_indices)

    def _print_Indexed(self, expr: Indexed) -> str:
        name = str(expr.base.label)
        indices = tuple(expr.indices)
        out = self.out_indices
        if indices == out[len(out) - len(indices):]:
            return name
        missing = [i for i in indices if i not in out]
        if missing:
            raise ValueError(f"{expr}: index {missing[0]} is not an axis of the output")
        order = sorted(range(len(indices)), key=lambda p: out.index(indices[p]))
        view = name if order == list(range(len(indices))) else (
            f"{name}.transpose({', '.join(map(str, order))})")
        first = min(out.index(i) for i in indices)
        slots = [":" if i in indices else "numpy.newaxis" for i in out[first:]]
        while slots and slots[-1] == ":":
            slots.pop()
        return f"{view}[{', '.join(slots)}]" if slots else view

    def _print_logistic(self, expr: Expr) -> str:
        # σ(x) = (1 + tanh(x/2))/2: no overflow for any x, unlike 1/(1 + exp(-x))
        return f"(0.5*(1 + numpy.tanh(0.5*({self._print(expr.args[0])}))))"

    def _print_relu(self, expr: Expr) -> str:
        return f"numpy.maximum({self._print(expr.args[0])}, 0)"

    def _print_step(self, expr: Expr) -> str:
        return f"numpy.heaviside({self._print(expr.args[0])}, 0)"
