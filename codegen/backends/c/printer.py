"""C printing of plan expressions: SymPy's C99CodePrinter, overriding only what differs.

Role in DESIGN.md's picture: a printer of the plan → text stage for the C
backend. An array reference ``h[t - 1, b#, c]`` prints as one element of a flat
row-major array through the array's :class:`Layout` (a view of a fused buffer
prints through the buffer's strides), its index nested the way row-major
addressing reads, ``h[((t - 1)*B + b)*H + c]``. Index names become C identifiers
(``b#`` → ``b``, ``c'`` → ``c1``), each one free in the kernel's
:class:`~symbolic.names.Names`.

The printer prints the kernel body once for every precision
(``codegen/precision.py``): its floating type is :data:`REAL`, a literal is
``CHAINRULE_LIT(0.5, 0.5F)`` (the literal of each precision, in the order of
``PRECISIONS``), and a libm function prints as the name the C file binds to the
precision's own (``chainrule_exp`` → ``exp`` or ``expf``); functions of our own
print the same way (``chainrule_logistic`` → ``chainrule_logistic_f32``; softplus and
sign too). A constant that is not rational (``2/sqrt(pi)``, ``sqrt(2)``) prints as one
literal, never as a ``<math.h>`` macro such as ``M_PI``, which strict C99 does not
define; a function printed by none of these is a
:class:`~symbolic.functions.MissingPrinter` error. The
printer records the bound names it printed (:attr:`KernelCPrinter.functions`) and
every array, size and scalar it named (:attr:`KernelCPrinter.names`), so that the
backend binds and declares exactly those.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sympy
from sympy import Expr, Float, Idx, Indexed, Symbol
from sympy.codegen.ast import real
from sympy.core.numbers import equal_valued
from sympy.printing.c import C99CodePrinter
from sympy.printing.precedence import PRECEDENCE

from chainrule.codegen.precision import PRECISIONS
from chainrule.symbolic import Names, missing_printer, numbered

__all__ = ["BOUND_PREFIX", "LITERAL", "REAL", "KernelCPrinter", "Layout", "c_identifier"]

#: the floating type of the kernel body (``#define chainrule_real double`` before the f64 one)
REAL = "chainrule_real"
#: a floating literal of the body: ``CHAINRULE_LIT(<f64 literal>, <f32 literal>)``
LITERAL = "CHAINRULE_LIT"
#: a function the body calls is ``chainrule_<name>``, bound to the precision's own
BOUND_PREFIX = "chainrule_"


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
    """Prints kernel expressions for every precision at once, arrays through their layouts."""

    def __init__(self, layouts: dict[str, Layout], variables: dict[Expr, Symbol]) -> None:
        super().__init__()
        self.layouts = layouts
        self.variables = variables
        #: the functions printed, by their unbound names (``exp``, ``tanh``, ``logistic``)
        self.functions: dict[str, None] = {}
        #: every array, size and scalar the printed text names
        self.names: set[str] = set()
        # each precision's own literal, as SymPy prints it for that precision's type
        self._literal_printers = [C99CodePrinter({"type_aliases": {real: p.sympy_type}})
                                  for p in PRECISIONS]

    # --- what the backend prints through the printer -------------------------------------

    def function(self, name: str) -> str:
        """The bound name of function ``name`` (``exp`` → ``chainrule_exp``), recorded."""
        self.functions.setdefault(name)
        return BOUND_PREFIX + name

    def literal(self, value: Float | float | str) -> str:
        """A floating literal: the literal of each precision, through ``CHAINRULE_LIT``."""
        number = Float(value)
        texts = [printer._print_Float(number) for printer in self._literal_printers]
        self.functions.setdefault(LITERAL)
        return f"{LITERAL}({', '.join(texts)})"

    @contextmanager
    def unrecorded(self) -> Iterator[None]:
        """Printing that only compares texts (is this the same element?): what it names
        is not recorded as named by the kernel."""
        names, functions = set(self.names), dict(self.functions)
        try:
            yield
        finally:
            self.names.clear()
            self.names.update(names)
            self.functions.clear()
            self.functions.update(functions)

    def element(self, ref: Indexed | Symbol) -> str:
        """The C lvalue of one element of ``ref`` at the current loop variables."""
        if isinstance(ref, Symbol):
            self.names.add(ref.name)
            return ref.name
        layout = self.layouts[str(ref.base.label)]
        return f"{self.pointer(layout)}[{self.flat_index(layout, ref.indices)}]"

    def pointer(self, layout: Layout) -> str:
        """The name of ``layout``'s pointer (recorded as used)."""
        self.names.add(layout.pointer)
        return layout.pointer

    def flat_index(self, layout: Layout, indices: Sequence[Expr]) -> str:
        """The offset of the element at ``indices`` (plan indices) in ``layout``.

        Nested as row-major addressing reads, one axis at a time from the outermost:
        ``((t - 1)*B + b)*H + c``; a view's offset into its buffer comes just before
        the innermost index (``b*(4*H) + H + c``). Where the strides do not nest (one is
        no whole multiple of the next), the expanded sum.
        """
        if len(indices) != len(layout.strides):
            raise ValueError(f"{len(indices)} indices into an array of {len(layout.strides)} axes")
        values = []
        for position, index in enumerate(indices):
            base = layout.first_time if position == 0 and layout.first_time is not None else 0
            values.append(sympy.expand(index.xreplace(self.variables) - base))
        # an axis of stride 0 (an array one step's row holds) takes no part in the address
        kept = [(value, stride) for value, stride in zip(values, layout.strides, strict=True)
                if stride != 0]
        values = [value for value, _ in kept]
        strides = tuple(stride for _, stride in kept)
        ratios = [sympy.cancel(strides[n - 1] / strides[n]) for n in range(1, len(strides))]
        if not all(_whole(ratio) for ratio in ratios):
            flat = layout.offset + sum((v * s for v, s in zip(values, strides, strict=True)),
                                       sympy.S.Zero)
            return self.doprint(sympy.expand(flat))
        offset = sympy.expand(layout.offset)
        text = _Sum(self)
        for position, value in enumerate(values):
            if position > 0:
                text.times(ratios[position - 1])
            if position == len(values) - 1 and strides[-1] == 1:
                text.plus(offset)
            text.plus(value)
        if not strides or strides[-1] != 1:
            if strides:
                text.times(strides[-1])
            text.plus(offset)
        return text.text or "0"

    def factor(self, expr: Expr) -> str:
        """``expr`` as a factor of a product: in parentheses unless it is one symbol or number
        (``i*(4*H)``: a row's length reads as one)."""
        return self.parenthesize(expr, PRECEDENCE["Mul"])

    # --- SymPy's hooks ------------------------------------------------------------------

    def _print_Symbol(self, expr: Symbol) -> str:
        self.names.add(expr.name)
        return super()._print_Symbol(expr)

    def _print_Indexed(self, expr: Indexed) -> str:
        return self.element(expr)

    def _print_Idx(self, expr: Idx) -> str:
        return self._print(self.variables.get(expr, Symbol(expr.name)))

    def _print_Float(self, flt: Float) -> str:
        return self.literal(flt)

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return f"{self.literal(f'{int(expr.p)}.0')}/{self.literal(f'{int(expr.q)}.0')}"

    def _print_math_func(self, expr: Expr, nest: bool = False, known: str | None = None) -> str:
        # SymPy's libm functions (exp, log, fabs, fmax, ...): the ones that come in every
        # precision print bound; a macro such as M_E and the others print as SymPy prints them
        if expr in self.math_macros:
            return str(self.math_macros[expr])
        name = known if known is not None else self.known_functions[type(expr).__name__]
        if not isinstance(name, str):
            name = next((n for condition, n in name if condition(*expr.args)), None)
            if name is None:
                raise ValueError(f"no C function prints {expr}")
        if name not in self._prec_funcs:
            return super()._print_math_func(expr, nest=nest, known=name)
        bound = self.function(name)
        args = [self._print(arg) for arg in expr.args]
        if not nest:
            return f"{bound}({', '.join(args)})"
        text = args[-1]  # fmax(a, fmax(b, c)), as SymPy nests them
        for arg in reversed(args[:-1]):
            text = f"{bound}({arg}, {text})"
        return text

    def _print_Max(self, expr: Expr) -> str:
        return self._print_math_func(expr, nest=True)

    def _print_Min(self, expr: Expr) -> str:
        return self._print_math_func(expr, nest=True)

    def _print_tanh(self, expr: Expr) -> str:
        # bound too: the float kernels compute tanh through their own helper
        return f"{self.function('tanh')}({self._print(expr.args[0])})"

    def _print_Pow(self, expr: sympy.Pow) -> str:
        if expr in self.math_macros:
            return str(self.math_macros[expr])
        # x*x for a cheap base; pow(f(x), 2) otherwise, which compilers expand without
        # evaluating f twice
        if expr.exp.is_Integer and 2 <= int(expr.exp) <= 3 \
                and isinstance(expr.base, Indexed | Symbol):
            base = self.parenthesize(expr.base, PRECEDENCE["Mul"])
            return "(" + "*".join([base] * int(expr.exp)) + ")"
        if equal_valued(expr.exp, -1):
            return f"{self.literal('1.0')}/{self.parenthesize(expr.base, PRECEDENCE['Pow'])}"
        if equal_valued(expr.exp, 0.5):
            return f"{self.function('sqrt')}({self._print(expr.base)})"
        if expr.exp == sympy.S.One / 3:
            return f"{self.function('cbrt')}({self._print(expr.base)})"
        return f"{self.function('pow')}({self._print(expr.base)}, {self._print(expr.exp)})"

    def _print_logistic(self, expr: Expr) -> str:
        return f"{self.function('logistic')}({self._print(expr.args[0])})"

    def _print_relu(self, expr: Expr) -> str:
        return self._print(sympy.Max(expr.args[0], 0))

    def _print_step(self, expr: Expr) -> str:
        return (f"(({self._print(expr.args[0])}) > 0 ? {self.literal('1.0')} : "
                f"{self.literal('0.0')})")

    def _print_softplus(self, expr: Expr) -> str:
        return f"{self.function('softplus')}({self._print(expr.args[0])})"

    def _print_sign(self, expr: Expr) -> str:
        return f"{self.function('sign')}({self._print(expr.args[0])})"

    def _print_Function(self, expr: Expr) -> str:
        # a function libm has no name for and no printer of ours knows: a user's, without
        # a _ccode method (SymPy asks for that before it dispatches here)
        if type(expr).__name__ in self.known_functions:
            return super()._print_Function(expr)
        raise missing_printer(type(expr), "C", "_ccode")

    def _print(self, expr: object, **kwargs: object) -> str:
        constant = _irrational_constant(expr)
        return super()._print(expr if constant is None else constant, **kwargs)

    def _print_Mul(self, expr: Expr, **kwargs: object) -> str:
        # fold the number factors into one literal when one of them is irrational
        numbers = [arg for arg in expr.args if arg.is_number]
        if any(not arg.is_Rational for arg in numbers):
            constant = _irrational_constant(sympy.Mul(*numbers))
            if constant is not None:
                rest = [arg for arg in expr.args if not arg.is_number]
                expr = sympy.Mul(constant, *rest, evaluate=False)
        return super()._print_Mul(expr, **kwargs)


# SymPy routes each libm function (_print_exp, _print_log, ...) straight to
# C99CodePrinter._print_math_func; route them to the override above instead.
for _name in dir(C99CodePrinter):
    if _name.startswith("_print_") and _name not in KernelCPrinter.__dict__ \
            and getattr(C99CodePrinter, _name) is C99CodePrinter._print_math_func:
        setattr(KernelCPrinter, _name, KernelCPrinter._print_math_func)


def _irrational_constant(expr: object) -> Float | None:
    """``expr`` as a Float of 17 digits (a double's) when it is a real constant that is not
    rational (``sqrt(2)``, ``log(2)``, ``2/sqrt(pi)``); None otherwise."""
    if not isinstance(expr, Expr) or expr.is_Rational or expr.is_Float or not expr.is_number:
        return None
    value = expr.evalf(20)
    if not value.is_Float or not value.is_finite:
        return None
    return Float(float(value), 17)


def _whole(ratio: Expr) -> bool:
    """Whether ``ratio`` (of two strides) is a product of sizes and whole numbers."""
    numerator, denominator = sympy.fraction(sympy.factor(ratio))
    return denominator == 1 and numerator.is_polynomial()


class _Sum:
    """A sum of printed terms, built left to right; ``times`` makes it one factor of a
    product. A sum that is one number is kept as the number (``1*B`` prints as ``B``)."""

    def __init__(self, printer: KernelCPrinter) -> None:
        self.printer = printer
        self.text = ""
        self.is_sum = False
        self.number: Expr | None = None

    def plus(self, term: Expr) -> None:
        if term == 0:
            return
        printed = self.printer.doprint(term)
        if not self.text:
            self.text, self.is_sum = printed, isinstance(term, sympy.Add)
            self.number = term if term.is_Number else None
            return
        self.number = None
        if printed.startswith("-"):
            self.text, self.is_sum = f"{self.text} - {printed[1:]}", True
        else:
            self.text, self.is_sum = f"{self.text} + {printed}", True

    def times(self, factor: Expr) -> None:
        if not self.text:
            return
        if self.number is not None:
            number, self.text = self.number, ""
            self.plus(number * factor)
            return
        text = f"({self.text})" if self.is_sum else self.text
        self.text, self.is_sum = f"{text}*{self.printer.factor(factor)}", False
