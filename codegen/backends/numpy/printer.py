"""NumPy printing of plan expressions: SymPy's NumPyPrinter, overriding only what differs.

Role in DESIGN.md's picture: a printer of the plan → text stage. An
elementwise statement is printed for one output whose axes are known; each
array it reads is printed as a view broadcast against those axes
(``b_h[numpy.newaxis, :]`` is just ``b_h``; a transposed operand gets
``.transpose(...)``). Where an array runs over time, :class:`Rows` says which
rows a reference means: one step inside the loop over ``t`` (``h[t - 1]``), or
every step at once outside it (``h[1:]``, ``h[:T]``). Functions of our own
(logistic, relu, step, softplus) print as stable NumPy forms; ``erf``, which NumPy
lacks, as the module's helper ``_erf`` (``templates/kernel.py.j2``). A constant that
is not rational (``2/sqrt(pi)``) prints as one float literal: a Python float, which
keeps a float32 kernel in float32 where ``numpy.sqrt(numpy.pi)`` would not. A function
printed by none of these is a :class:`~symbolic.functions.MissingPrinter` error.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy
from sympy import Expr, Idx, Indexed, Symbol
from sympy.printing.numpy import NumPyPrinter

from chainrule.codegen.plan.types import Array, Ref
from chainrule.symbolic import missing_printer


class Rows:
    """How references to arrays over time print: at one step (``loop``) or at all of them."""

    def __init__(self, arrays: dict[str, Array], time: Idx | None, loop: bool) -> None:
        self.arrays = arrays
        self.time = time
        self.loop = loop

    def view(self, ref: Ref) -> tuple[str, tuple[Expr, ...]]:
        """The text of ``ref``'s rows and the axes (as indices) that remain."""
        if isinstance(ref, Symbol):
            return ref.name, ()
        name = str(ref.base.label)
        array = self.arrays[name]
        indices = tuple(ref.indices)
        if array.time is None:
            return name, indices
        row, rest = indices[0] - array.first_time, indices[1:]
        if self.time is None or not row.has(self.time) or self.loop:
            return f"{name}[{_index(row)}]", rest
        # every step t = lo..hi at once: rows lo + offset .. hi + offset
        start = sympy.expand(row.subs(self.time, self.time.lower))
        stop = sympy.expand(row.subs(self.time, self.time.upper) + 1)
        length = array.axes[0]
        text = ("" if start == 0 else _index(start)) + ":" + (
            "" if sympy.expand(stop - length) == 0 else _index(stop))
        return (name if text == ":" else f"{name}[{text}]"), (self.time, *rest)


def _index(expr: Expr) -> str:
    return str(sympy.expand(expr)).replace(" ", "") if expr.is_number else str(expr)


class KernelNumPyPrinter(NumPyPrinter):
    """Prints an elementwise expression over the axes ``out_indices``."""

    def __init__(self, out_indices: Sequence[Expr] = (), rows: Rows | None = None) -> None:
        super().__init__({"fully_qualified_modules": True, "strict": True})
        self.out_indices = tuple(out_indices)
        self.rows = rows

    def _print_Indexed(self, expr: Indexed) -> str:
        if self.rows is not None:
            name, indices = self.rows.view(expr)
        else:
            name, indices = str(expr.base.label), tuple(expr.indices)
        return broadcast(name, indices, self.out_indices)

    def _print_logistic(self, expr: Expr) -> str:
        # σ(x) = (1 + tanh(x/2))/2: no overflow for any x, unlike 1/(1 + exp(-x))
        return f"(0.5*(1 + numpy.tanh(0.5*({self._print(expr.args[0])}))))"

    def _print_relu(self, expr: Expr) -> str:
        return f"numpy.maximum({self._print(expr.args[0])}, 0)"

    def _print_step(self, expr: Expr) -> str:
        return f"numpy.heaviside({self._print(expr.args[0])}, 0)"

    def _print_softplus(self, expr: Expr) -> str:
        # ln(e^x + e^0), which NumPy computes as max(x, 0) + ln(1 + e^{-|x|}): no overflow
        return f"numpy.logaddexp({self._print(expr.args[0])}, 0)"

    def _print_erf(self, expr: Expr) -> str:
        return f"_erf({self._print(expr.args[0])})"

    def _print_Abs(self, expr: Expr) -> str:
        return f"numpy.abs({self._print(expr.args[0])})"

    def _print_Function(self, expr: Expr) -> str:
        # a function NumPy has no name for and no printer of ours knows: a user's, without
        # a _numpycode method (SymPy asks for that before it dispatches here)
        raise missing_printer(type(expr), "NumPy", "_numpycode")

    def _print(self, expr: object, **kwargs: object) -> str:
        constant = _irrational_constant(expr)
        return super()._print(expr if constant is None else constant, **kwargs)

    def _print_Mul(self, expr: Expr) -> str:
        # fold the number factors into one literal when one of them is irrational
        numbers = [arg for arg in expr.args if arg.is_number]
        if any(not arg.is_Rational for arg in numbers):
            constant = _irrational_constant(sympy.Mul(*numbers))
            if constant is not None:
                rest = [arg for arg in expr.args if not arg.is_number]
                return super()._print_Mul(sympy.Mul(constant, *rest, evaluate=False))
        return super()._print_Mul(expr)


def _irrational_constant(expr: object) -> sympy.Float | None:
    """``expr`` as a Float of 17 digits (a double's) when it is a real constant that is not
    rational (``sqrt(2)``, ``log(2)``, ``2/sqrt(pi)``); None otherwise."""
    if not isinstance(expr, Expr) or expr.is_Rational or expr.is_Float or not expr.is_number:
        return None
    value = expr.evalf(20)
    if not value.is_Float or not value.is_finite:
        return None
    return sympy.Float(float(value), 17)


def broadcast(name: str, indices: tuple[Expr, ...], out: tuple[Expr, ...]) -> str:
    """``name`` (with axes ``indices``) as a view that broadcasts against axes ``out``."""
    if indices == out[len(out) - len(indices):]:
        return name
    missing = [i for i in indices if i not in out]
    if missing:
        raise ValueError(f"{name}: index {missing[0]} is not an axis of the output")
    order = sorted(range(len(indices)), key=lambda p: out.index(indices[p]))
    view = name if order == list(range(len(indices))) else (
        f"{name}.transpose({', '.join(map(str, order))})")
    first = min(out.index(i) for i in indices)
    slots = [":" if i in indices else "numpy.newaxis" for i in out[first:]]
    while slots and slots[-1] == ":":
        slots.pop()
    if not slots:
        return view
    if view.endswith("]") and "." not in view and ":" not in view:
        # h[t - 1] then [:, numpy.newaxis] → one subscript: h[t - 1, :, numpy.newaxis]
        return f"{view[:-1]}, {', '.join(slots)}]"
    return f"{view}[{', '.join(slots)}]"
