"""The summary's matrix and vector forms, checked in numbers against the true values.

Role in DESIGN.md's picture: part of the ``latex`` branch, a check on what ``vector.py``
prints, as ``symbolic/verify.py`` is on what ``derive()`` records. Every row of a
network's summary (each forward equation, the loss, each named adjoint and each
gradient) that has a matrix form is evaluated from that form, over whole arrays: every
:class:`~chainrule.codegen.backends.latex.vector.Atom` computes what its TeX shows (a
matrix product with the matrix the TeX names, transposed where the TeX shows ``⊤``; an
outer product in the order printed; ``Σ_t`` over ``t = 1..T``), and products and
functions of vectors act elementwise. The result is compared with the true value of the
left side, from :class:`~chainrule.symbolic.verify.Numbers`: the forward pass computed
from the equations, the adjoints and gradients by complex step. Nothing reuses the
derivation's own expressions: a form that names the wrong matrix, forgets a transpose,
swaps the factors of an outer product or drops a term is off.

What is checked is the printed form, Graves' letters included (``g(a_c)`` is the
``tanh`` it stands for, ``f'(a)`` the derivative of ``σ``): the TeX of an atom is made
beside its operation, not parsed back. The forms read an adjoint outside ``t = 1..T`` as
zero, whatever it multiplies (the summary's boundary values, ``δ^{T+1} = 0``, which make
the index forms' range conditions go without saying); a value outside its range (NaN)
makes the row fail. A named adjoint is checked at ``t = 1..T``, the steps of the
backward loop: at an initial step it is an initial state's gradient, a row of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
from sympy import Expr

from chainrule.codegen.backends.latex.printer import GravesBase
from chainrule.codegen.backends.latex.vector import Atom, VectorForms
from chainrule.symbolic import (
    NUMERIC_FUNCTIONS,
    TOLERANCE,
    Derivation,
    Numbers,
    Role,
    VerifyError,
    default_cases,
)


@dataclass
class FormCheck:
    """One summary row's matrix form against the true values: the ``worst`` discrepancy
    (as :mod:`symbolic.verify` measures it) at ``sizes``, or the ``problem``; ``expr`` is
    the row's right side in index form."""

    row: str
    sizes: dict[str, int]
    worst: float
    problem: str | None = None
    expr: Expr | None = None
    #: the left side's true values are not finite at these sizes (the forward pass
    #: overflows): nothing to compare with
    unchecked: bool = False

    def describe(self) -> str:
        at = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        return f"{self.row} at {at}: " + (self.problem or f"off by {self.worst:.2g}")

    @property
    def ok(self) -> bool:
        return self.problem is None and self.worst <= TOLERANCE


class _FormError(Exception):
    """A form that cannot be evaluated (named in its row's check)."""


class _Vanishing(np.ndarray):
    """Zeros that make a product zero, whatever its other factors (NaN too): an adjoint
    at a step outside ``1..T``, a range condition that fails, or what is made of them by
    products and matrix products. The index forms' range conditions make such a term zero
    where it reads a value out of range; the printed forms leave that to the boundary
    values."""


def _vanishing(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape).view(_Vanishing)


def _plain(value: object) -> np.ndarray:
    return np.asarray(value).view(np.ndarray)


class FormValues:
    """Evaluates converted expressions of one model at the numbers of one case."""

    def __init__(self, numbers: Numbers) -> None:
        self.numbers = numbers
        self.model = numbers.model
        self.time = self.model.time_index

    def step(self, time: Expr, t: int | None) -> int:
        if t is not None and self.time is not None:
            time = sympy.sympify(time).xreplace({self.time: sympy.Integer(t)})
        return self.numbers.integer(time)

    def array(self, name: str, adjoint: bool, time: Expr | None, t: int | None) -> np.ndarray:
        numbers = self.numbers
        quantity = self.model.quantity(name)
        if quantity.role is Role.LOSS:
            raise _FormError(f"the loss {name} as a factor")
        whole = numbers.adjoint(quantity) if adjoint else numbers.values[name]
        whole = whole[0]
        if not quantity.time:
            return np.nan_to_num(whole, nan=0.0) if adjoint else whole
        if time is None:
            raise _FormError(f"{name} without its step")
        slot = numbers.slot(self.step(time, t))
        if not 0 <= slot < whole.shape[-1]:
            if adjoint:
                return _vanishing(whole.shape[:-1])
            raise _FormError(f"{name} read at step {slot - numbers.pad}, outside its array")
        found = whole[..., slot]
        if adjoint and np.isnan(found).all():
            # the boundary values: an adjoint is zero outside the steps where it is a variable
            return _vanishing(found.shape)
        return found

    def value(self, expr: Expr, t: int | None) -> np.ndarray:
        if isinstance(expr, Atom):
            return self.atom(expr, t)
        if expr.is_Number or isinstance(expr, sympy.NumberSymbol):  # 2, 1/2, π
            return np.asarray(float(expr))
        if isinstance(expr, sympy.Add):
            terms = [self.value(a, t) for a in expr.args]
            total = sum((_plain(v) for v in terms[1:]), _plain(terms[0]))
            return total.view(_Vanishing) if all(
                isinstance(v, _Vanishing) for v in terms) else total
        if isinstance(expr, sympy.Mul):
            factors = [self.value(f, t) for f in expr.args]
            shape = np.broadcast_shapes(*(np.shape(f) for f in factors))
            if any(isinstance(f, _Vanishing) for f in factors):
                return _vanishing(shape)
            result = np.asarray(1.0)
            for factor in factors:
                result = result * factor
            return result
        if isinstance(expr, sympy.Pow):
            base = self.value(expr.base, t)
            if isinstance(base, _Vanishing) and expr.exp.is_positive:
                return base
            return np.power(_plain(base), float(expr.exp))
        function = _graves_value(expr) if isinstance(expr, GravesBase) else \
            NUMERIC_FUNCTIONS.get(type(expr))
        if function is not None and len(expr.args) == 1:
            return function(_plain(self.value(expr.args[0], t)))
        raise _FormError(f"no value for {type(expr).__name__} {expr}")

    def atom(self, atom: Atom, t: int | None) -> np.ndarray:
        kind, *arguments = atom.op or ("",)
        if kind == "array":
            name, adjoint, time = arguments
            return self.array(name, adjoint, time, t)
        if kind == "softmax":
            argument = self.value(arguments[0], t)
            shifted = np.exp(argument - argument.max())
            return shifted / shifted.sum()
        if kind == "matvec":
            name, transposed, vector = arguments
            matrix = self.array(name, False, None, t)
            operand, vector_value = (matrix.T if transposed else matrix), self.value(vector, t)
            if operand.shape[-1:] != np.shape(vector_value)[:1]:
                raise _FormError(f"a matrix of shape {operand.shape} times a vector of "
                                 f"shape {np.shape(vector_value)}")
            product = operand @ _plain(vector_value)
            vanishing = isinstance(vector_value, _Vanishing)
            return product.view(_Vanishing) if vanishing else product
        if kind == "dot":
            first, second = (self.value(v, t) for v in arguments)
            if isinstance(first, _Vanishing) or isinstance(second, _Vanishing):
                return _vanishing(())
            return np.asarray(np.dot(first, second))
        if kind == "outer":
            left, right = (self.value(v, t) for v in arguments)
            if isinstance(left, _Vanishing) or isinstance(right, _Vanishing):
                return _vanishing((*np.shape(left), *np.shape(right)))
            return np.multiply.outer(left, right)
        if kind == "range":
            target, lo, hi = (self.step(e, t) for e in arguments)
            return np.asarray(1.0) if lo <= target <= hi else _vanishing(())
        if kind == "time_sum":
            if t is not None:
                raise _FormError("a sum over time inside one step")
            return sum(_plain(self.value(arguments[0], step))
                       for step in range(1, self.numbers.T + 1))
        if kind == "value":
            return self.value(arguments[0], t)
        raise _FormError(f"an atom without an operation: {atom.tex}")


#: the squashing functions Graves' letters stand for, by SymPy class name (``tanh``,
#: ``logistic``), as symbolic.verify evaluates them
_SQUASHING = {kind.__name__: function for kind, function in NUMERIC_FUNCTIONS.items()}


def _graves_value(expr: GravesBase) -> Callable[[np.ndarray], np.ndarray] | None:
    """What Graves' ``g``, ``g'`` computes: the squashing function it stands for, or its
    derivative (``1 - g²`` for tanh, ``f (1 - f)`` for the logistic function)."""
    function = _SQUASHING.get(expr.squashing)
    if function is None or not expr.prime:
        return function
    if expr.squashing == "tanh":
        return lambda v: 1.0 - function(v) ** 2
    return lambda v: function(v) * (1.0 - function(v))


@dataclass
class _Row:
    """A summary row: its left side, right side and unit indices, and the true values of
    its left side at each step (``None``: a row without time)."""

    name: str
    expr: Expr
    units: tuple[Expr, ...]
    truth: Mapping[int | None, np.ndarray]


def _rows(derivation: Derivation, numbers: Numbers) -> list[_Row]:
    model = derivation.model
    time = model.time_index
    T = numbers.T

    def steps(quantity, whole: np.ndarray, span: Sequence[int]) -> dict[int | None, np.ndarray]:
        if not quantity.time:
            return {None: whole[0]}
        return {t: whole[0][..., numbers.slot(t)] for t in span}

    def units(indices: Sequence[Expr]) -> tuple[Expr, ...]:
        return tuple(i for i in indices if i != time)

    rows = []
    for name in model.evaluation_order():
        equation = model.equations[name]
        quantity = model.quantity(name)
        rows.append(_Row(name, equation.rhs, units(equation.lhs.indices),
                         steps(quantity, numbers.values[name], range(1, T + 1))))
    loss = model.loss_equation
    assert loss is not None
    rows.append(_Row(model.loss_name, loss.rhs, (), {None: numbers.values[model.loss_name][0]}))
    for adjoint in derivation.named:
        # the steps of the backward loop, as the summary states them: the adjoint at an
        # initial step (t = 0, or T+1) is an initial state's gradient, a row of its own
        span = range(1, T + 1)
        if adjoint.time_range is not None:
            lo, hi = (numbers.integer(e) for e in adjoint.time_range)
            span = range(max(lo, 1), min(hi, T) + 1)
        rows.append(_Row(f"dL/d{adjoint.quantity.name}", adjoint.expr, units(adjoint.indices),
                         steps(adjoint.quantity, numbers.adjoint(adjoint.quantity), span)))
    for gradient in derivation.gradients.values():
        rows.append(_Row(f"dL/d{gradient.quantity.name}", gradient.expr,
                         units(gradient.indices),
                         steps(gradient.quantity, numbers.adjoint(gradient.quantity), [])))
    return rows


def check_forms(derivation: Derivation, *, seed: int = 0,
                cases: Sequence[Mapping[str, int]] | None = None) -> list[FormCheck]:
    """Every summary row with a matrix form, checked at each case's sizes (by default
    :func:`~chainrule.symbolic.verify.default_cases`): one :class:`FormCheck` per row and
    case. Rows without a matrix form are not listed."""
    model = derivation.model
    rng = np.random.default_rng(seed)
    forms = VectorForms(model)
    converted_rows: dict[str, Expr | None] = {}  # the forms do not depend on the sizes
    checks = []
    for sizes in [dict(c) for c in cases] if cases is not None else default_cases(model, rng):
        numbers = Numbers(model, sizes, rng)
        values = FormValues(numbers)
        for row in _rows(derivation, numbers):
            if row.name not in converted_rows:
                converted_rows[row.name] = forms.converted(row.expr, row.units, graves=True)
            converted = converted_rows[row.name]
            if converted is None:
                continue
            worst, problem = 0.0, None
            try:
                if not all(np.isfinite(v).all() for v in row.truth.values()):
                    checks.append(FormCheck(row.name, sizes, 0.0, "the true values are not "
                                            "finite", row.expr, unchecked=True))
                    continue
                for t, truth in row.truth.items():
                    with np.errstate(all="ignore"):
                        got = values.value(converted, t)
                    if np.shape(got) != np.shape(truth):
                        problem = (f"the form has shape {np.shape(got)}, the left side "
                                   f"{np.shape(truth)}")
                        break
                    if not np.isfinite(got).all():
                        at = "" if t is None else f" at t = {t}"
                        problem = f"not finite{at}: it reads a value out of range"
                        break
                    scale = max(1.0, float(np.abs(truth).max(initial=0.0)))
                    worst = max(worst, float(np.abs(got - truth).max(initial=0.0)) / scale)
            except (_FormError, ValueError, IndexError, TypeError) as error:
                # NumPy refusing the shapes (or the values) the form puts together
                problem = str(error)
            checks.append(FormCheck(row.name, sizes, worst, problem, row.expr))
    return checks


def failing_forms(derivation: Derivation) -> dict[Expr, FormCheck]:
    """The rows whose matrix form fails its check at distinct sizes (every unit size
    different, ``T = 3``: the case that tells a transpose or a swapped outer product), by
    the right side in index form. The notes leave their matrix form out.

    A model whose forward pass has no numbers (a function SymPy cannot evaluate, such
    as one a user registers with a printer but no numeric value) cannot be checked:
    none is listed, and its forms are printed as made."""
    model = derivation.model
    distinct = default_cases(model, np.random.default_rng(0))[1]
    try:
        checks = check_forms(derivation, cases=[distinct])
    except VerifyError:
        return {}
    return {check.expr: check for check in checks
            if not check.ok and not check.unchecked and check.expr is not None}


__all__ = ["FormCheck", "FormValues", "check_forms", "failing_forms"]
