"""NumPy printing of one step's elementwise statement as ufunc calls that write in place.

Role in DESIGN.md's picture: a printer of the plan → text stage, for the NumPy
backend's loop over ``t`` only. Outside the loop a statement runs once, over
every step, and :class:`~.printer.KernelNumPyPrinter` prints it as one
expression; inside it, the same statement runs T times on one step's rows, where
NumPy's cost is per operation rather than per element, and every operator of an
expression would allocate its result anew. So a step's statement
``out = expr`` prints as a chain of ufunc calls: each operation of ``expr``
(+, −, ·, /, powers, tanh, exp, log, and our own logistic, relu, step, softplus
in the printer's stable forms) writes into a scratch buffer of the step's shape,
allocated once before the loop (:class:`Scratch`), and the last one writes into
``out`` itself; the array written is the ufunc's last positional argument, its
``out`` (``numpy.tanh(a, r)``: the keyword costs a call more), but for
``numpy.maximum``, where NumPy deprecates it. ``1 − g`` is
``numpy.subtract(_c0, g, _s0)``, a quotient ``numpy.divide``: no reciprocal first.
A constant is a 0-d array of the kernel's dtype made before the loop (``_c0``):
NumPy converts a Python float at every call, which costs as much as the operation
at small sizes, and rounds it to the dtype just as the array does. Anything else
(erf, a user's function, a Piecewise) prints as one expression of the printer and
enters the chain as an operand.

An operation writes into a buffer that one of its operands already holds where it
can (``numpy.tanh(r, r)``), so a chain holds few buffers at once; ``out`` itself
is written only by the last operation, so an expression that reads ``out``'s rows
reads them before they change. NumPy makes an operation whose output overlaps an
input correct by itself.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy
from sympy import Expr

from chainrule.codegen.backends.numpy.printer import KernelNumPyPrinter
from chainrule.symbolic import logistic, relu, softplus, step


class Scratch:
    """What a loop's chains hold, made before the loop: buffers written between
    operations, named ``_s0``, ``_s1``, ... by shape (a buffer freed is taken again), and
    constants ``_c0``, ``_c1``, ... (a user's name starts with a letter)."""

    def __init__(self) -> None:
        self.shapes: dict[str, str] = {}  # name → its shape as Python code
        self.free: dict[str, list[str]] = {}
        self.constants: dict[str, str] = {}  # value as Python code → name

    def constant(self, value: str) -> str:
        return self.constants.setdefault(value, f"_c{len(self.constants)}")

    def take(self, shape: str) -> str:
        free = self.free.setdefault(shape, [])
        if free:
            return free.pop()
        name = f"_s{len(self.shapes)}"
        self.shapes[name] = shape
        return name

    def give(self, name: str) -> None:
        self.free[self.shapes[name]].append(name)

    def allocations(self, indent: str) -> list[str]:
        """The lines that make every buffer and constant, before the loop."""
        return [*(f"{indent}{name} = numpy.array({value}, dtype)"
                  for value, name in self.constants.items()),
                *(f"{indent}{name} = numpy.empty({shape}, dtype)"
                  for name, shape in self.shapes.items())]


#: A value on the way: its text, and the scratch buffer that holds it (None for an
#: operand the chain did not compute: an array's rows, a number, an expression).
Value = tuple[str, str | None]


class UfuncChain:
    """``target = expr`` as ufunc calls (:meth:`lines`); ``shape`` is the target's shape as
    Python code, the shape of every scratch buffer the chain takes."""

    def __init__(self, printer: KernelNumPyPrinter, scratch: Scratch, shape: str) -> None:
        self.printer = printer
        self.scratch = scratch
        self.shape = shape
        self.calls: list[str] = []

    def lines(self, target: str, expr: Expr) -> list[str] | None:
        """The calls, or None when ``expr`` has no operation of ours at its top (an array's
        rows, a number, erf(...)): then the caller assigns it as one expression."""
        if _operation(expr) is None:
            return None
        self.calls = []
        self.value(expr, target)
        return self.calls

    def value(self, expr: Expr, out: str | None = None) -> Value:
        """Compute ``expr``: into ``out`` when given, else into a scratch buffer (or, for no
        operation of ours, nowhere: its text is the operand)."""
        operation = _operation(expr)
        if operation is None:
            return self.number(expr) if expr.is_number else (self.printer.doprint(expr), None)
        return operation(self, expr, out)

    def call(self, ufunc: str, operands: list[Value], out: str | None) -> Value:
        """``numpy.<ufunc>(operands..., out)``: into ``out``, or into a buffer an operand
        holds, or into a new one; the operands' other buffers are free after it."""
        held = [buffer for _, buffer in operands if buffer is not None]
        if out is None:
            target = held.pop(0) if held else self.scratch.take(self.shape)
        else:
            target = out
        for buffer in held:
            self.scratch.give(buffer)
        args = ", ".join(text for text, _ in operands)
        written = f"out={target}" if ufunc in _OUT_BY_KEYWORD else target
        self.calls.append(f"numpy.{ufunc}({args}, {written})")
        return target, (None if out is not None else target)

    def number(self, value: Expr | str) -> Value:
        """A constant operand (a SymPy number as the printer prints it, or a literal) as
        the name of its 0-d array."""
        text = value if isinstance(value, str) else self.printer.doprint(value)
        return self.scratch.constant(text), None

    # --- operations, by SymPy class (the registry :data:`_OPERATIONS` holds them) ----------

    def add(self, expr: Expr, out: str | None) -> Value:
        terms = [(term.could_extract_minus_sign(), term) for term in sympy.Add.make_args(expr)]
        terms.sort(key=lambda signed: signed[0])  # a term added first, not one subtracted
        last = len(terms) - 1
        negative, first = terms[0]
        if negative:
            total = self.call("negative", [self.value(-first)], out if last == 0 else None)
        else:
            total = self.value(first)
        for position, (negative, term) in enumerate(terms[1:], start=1):
            operand = self.value(-term if negative else term)
            total = self.call("subtract" if negative else "add", [total, operand],
                              out if position == last else None)
        return total

    def mul(self, expr: Expr, out: str | None) -> Value:
        coefficient, rest = expr.as_coeff_Mul()
        factors, divisors = [], []
        for factor in sympy.Mul.make_args(rest):
            base, exponent = factor.as_base_exp()
            if exponent == -1:
                divisors.append(base)
            elif exponent.is_Number and exponent < 0:
                divisors.append(sympy.Pow(base, -exponent))
            else:
                factors.append(factor)
        operations: list[tuple[str, Value | Expr]] = []
        if coefficient != 1 or not factors:
            operations.append(("multiply", self.number(coefficient)))
        operations += [("multiply", f) for f in factors] + [("divide", d) for d in divisors]
        _, first = operations[0]
        total = first if isinstance(first, tuple) else self.value(first)
        last = len(operations) - 1
        for position, (ufunc, operand) in enumerate(operations[1:], start=1):
            value = operand if isinstance(operand, tuple) else self.value(operand)
            total = self.call(ufunc, [total, value], out if position == last else None)
        return total

    def pow(self, expr: Expr, out: str | None) -> Value:
        base, exponent = expr.as_base_exp()
        if exponent == 2:
            return self.call("square", [self.value(base)], out)
        if exponent == sympy.Rational(1, 2):
            return self.call("sqrt", [self.value(base)], out)
        if exponent.is_Number and exponent < 0:
            return self.call("divide", [self.number("1"),
                                        self.value(sympy.Pow(base, -exponent))], out)
        return self.call("power", [self.value(base), self.value(exponent)], out)

    def logistic(self, expr: Expr, out: str | None) -> Value:
        # the printer's σ(x) = (1 + tanh(x/2))/2, the same operations in the same order
        value = self.call("multiply", [self.value(expr.args[0]), self.number("0.5")],
                          None)
        value = self.call("tanh", [value], None)
        value = self.call("add", [self.number("1"), value], None)
        return self.call("multiply", [self.number("0.5"), value], out)

    def relu(self, expr: Expr, out: str | None) -> Value:
        return self.call("maximum", [self.value(expr.args[0]), self.number("0")], out)

    def step(self, expr: Expr, out: str | None) -> Value:
        return self.call("heaviside", [self.value(expr.args[0]), self.number("0")], out)

    def softplus(self, expr: Expr, out: str | None) -> Value:
        return self.call("logaddexp", [self.value(expr.args[0]), self.number("0")],
                         out)


def _elementwise(ufunc: str) -> Callable[[UfuncChain, Expr, str | None], Value]:
    def apply(chain: UfuncChain, expr: Expr, out: str | None) -> Value:
        return chain.call(ufunc, [chain.value(expr.args[0])], out)
    return apply


#: Ufuncs whose output NumPy 2 takes by keyword only (a positional one is deprecated).
_OUT_BY_KEYWORD = frozenset({"maximum", "minimum"})

#: SymPy class → how a chain computes it; a class not here enters a chain as an operand.
_OPERATIONS: dict[type, Callable[[UfuncChain, Expr, str | None], Value]] = {
    sympy.Add: UfuncChain.add,
    sympy.Mul: UfuncChain.mul,
    sympy.Pow: UfuncChain.pow,
    sympy.tanh: _elementwise("tanh"),
    sympy.exp: _elementwise("exp"),
    sympy.log: _elementwise("log"),
    sympy.sin: _elementwise("sin"),
    sympy.cos: _elementwise("cos"),
    sympy.Abs: _elementwise("absolute"),
    logistic: UfuncChain.logistic,
    relu: UfuncChain.relu,
    step: UfuncChain.step,
    softplus: UfuncChain.softplus,
}


def _operation(expr: Expr) -> Callable[[UfuncChain, Expr, str | None], Value] | None:
    if expr.is_number:
        return None  # a constant, sqrt(2) too: the printer's one literal
    return _OPERATIONS.get(type(expr))
