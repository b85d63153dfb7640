"""Every recorded step of a derivation, checked in numbers: ``before`` against ``after``.

Role in DESIGN.md's picture: a check on the arrow ``Model ──derive()──> Derivation``,
kept in ``symbolic/`` beside it (it reads a Derivation, never ``codegen``). Each
:class:`~symbolic.derivation.Step` of every adjoint and gradient claims ``before = after``
for every value of the adjoint's free indices; :func:`verify_derivation` gives both
sides numbers on several small sizes and reports the worst discrepancy per step
(``chainrule verify NET`` prints it). The kernels' check (``chainrule check``) tests
the end result; this tests each rewrite on the way, so a wrong rule is named.

How everything in a step gets a number, in float64, for one case (a set of sizes):

- inputs, parameters and initial states are random; one-hot targets are one-hot rows
  (the identity ``Σ_k z_k = 1`` assumes them), other targets random;
- every intermediate is computed from its defining equation, in dependency order: an
  equation that reads no quantity of its own group is evaluated at every ``t`` at once;
  a recurrence (a strongly connected group of equations reading each other at other
  steps) runs one step at a time, up in ``t`` (1..T) when it reads ``t-k``, down (T..1)
  when it reads ``t+k``. A recurrent quantity is its initial state at its initial step
  (``Model.initial_step``: ``t = 0`` when read at earlier steps, ``t = T+1`` when read at
  later ones) and zero at the ``k-1`` padding steps beyond it (``t = -1`` for a read at
  ``t-2``, ``t = T+2`` for one at ``t+2``), as the kernels' arrays hold it; a test checks
  the loss and gradients against the generated NumPy kernel's;
- sums, Kronecker deltas and range conditions (:class:`InRange`) are expanded at the
  case's sizes, for every value of the free indices (vectorized, one axis per index);
- ``∂L/∂q[idx]`` (a :class:`Partial` of the loss) and an adjoint array ``d_q[idx]``
  are the derivative of the loss with ``q[idx]`` moved in the forward pass (what reads
  it is recomputed, the rest held); a local partial ``∂c[..]/∂q[..]`` is the derivative
  of ``c``'s equation alone, ``q`` moved and every other value held. Nothing reuses the
  engine's symbolic derivatives. The local partial of the loss's own equation appears
  as ``∂L/∂L · ∂L/∂q``: a ``∂L/∂q`` multiplied by ``∂L/∂L`` is the loss equation's local
  partial, any other the adjoint;
- a read outside a quantity's range is NaN: of a value, outside 1..T and its initial
  and padding steps (``t = T+1`` of a quantity read at ``t-1``, ``t = 0`` of one read at
  ``t+1`` or of one without an initial state, ``t = -2`` of one read at ``t-2``); of an
  adjoint, outside 1..T and the initial step (padding zeros are constants, no variables,
  so ``δ^{-1}`` of rnn_skip is NaN). A term that reads one must be zeroed by an
  ``InRange`` (or delta) factor of its product; otherwise the step fails as not finite.

The derivatives are complex-step derivatives, ``f'(x) = Im f(x + ih) / h`` with
``h = 1e-20``, in complex128: no difference of nearby values is taken, so they are
exact to rounding (every function a model may use is analytic, or piecewise so, like
relu). Central differences were tried first: with ``h = 1e-5`` they were off by up to
1e-8 on the built-ins (``∂L/∂y = -z/y`` for a small softmax output ``y``: ``h²/3y³``),
too close to any tolerance that a subtly wrong step must fail.

The discrepancy of a step in a case is ``max|before - after| / max(1, max|before|,
max|after|)`` over the free index values: relative for large values, absolute below 1.
Correct steps of the built-ins and examples come out below 1e-15 (rounding); a wrong
rule (``tanh' = 1 - b``, a dropped or time-shifted term) is off by 1e-2 or more, and a
lost boundary condition reads out of range (``t = T+1`` up in time, ``t = 0`` down).
:data:`TOLERANCE`, 1e-9, leaves a factor of a million on either side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy
from sympy import Expr, Idx, Indexed, KroneckerDelta

from .derivation import Adjoint, Derivation, Step
from .expressions import InRange, Partial
from .functions import logistic, relu, softplus, step
from .model import Equation, Model, Quantity, Role
from .names import adjoint_name, quantity_of_adjoint
from .rules import rule_text

__all__ = ["NUMERIC_FUNCTIONS", "STEP", "TOLERANCE", "Numbers", "StepCheck", "VerifyError",
           "VerifyReport", "default_cases", "verify_derivation"]

#: the largest discrepancy a correct step may show (see the module docstring)
TOLERANCE = 1e-9
#: the imaginary step of the complex-step derivatives
STEP = 1e-20
#: the scale of the random parameters, inputs and initial states
SCALE = 0.7


@dataclass(frozen=True)
class StepCheck:
    """The worst discrepancy of one recorded step over the cases, and where it occurred."""

    adjoint: str
    """The quantity whose adjoint (or gradient) the step belongs to, e.g. ``a_h``."""
    number: int
    """The step's position in the adjoint's steps, from 1."""
    step: Step = field(repr=False)
    worst: float
    sizes: dict[str, int]
    """The case of the worst discrepancy."""
    at: dict[str, int]
    """The free index values of the worst discrepancy."""
    problem: str | None = None
    """Why a side has no finite value there (it reads out of range, cannot be evaluated)."""

    @property
    def rule_key(self) -> str:
        return self.step.rule_key

    @property
    def rule(self) -> str:
        return rule_text(self.step.rule_key)

    def ok(self, tolerance: float) -> bool:
        return self.problem is None and self.worst <= tolerance

    def describe(self) -> str:
        """One line: which step, its rule, its adjoint, the sizes, and what went wrong."""
        where = _pairs(self.sizes) + (f", at {_pairs(self.at)}" if self.at else "")
        what = self.problem if self.problem is not None else f"off by {self.worst:.1e}"
        return (f"step {self.number} ({self.rule}) of {adjoint_name(self.adjoint)} = "
                f"∂L/∂{self.adjoint}: {what} ({where})")


@dataclass
class VerifyReport:
    """Every step's worst discrepancy; ``ok`` when all are within the tolerance."""

    name: str
    tolerance: float
    cases: list[dict[str, int]] = field(default_factory=list)
    steps: list[StepCheck] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max((s.worst for s in self.steps), default=0.0)

    @property
    def failures(self) -> list[StepCheck]:
        return [s for s in self.steps if not s.ok(self.tolerance)]

    @property
    def ok(self) -> bool:
        return bool(self.steps) and not self.failures

    def table(self) -> str:
        """The report as text: the cases, one row per step, then the verdict."""
        cases = "; ".join(_pairs(case, " ") for case in self.cases)
        lines = [f"{self.name}: every recorded step, before against after, at random values "
                 f"(derivatives by complex step), {len(self.cases)} case"
                 f"{'s' if len(self.cases) != 1 else ''} ({cases})"]
        names = [adjoint_name(s.adjoint) for s in self.steps]
        width = max([len("adjoint"), *map(len, names)])
        rule_width = max([len("rule"), *(len(s.rule) for s in self.steps)])
        lines.append(f"{'adjoint':<{width}}  step  {'rule':<{rule_width}}  {'worst':>9}")
        for name, check in zip(names, self.steps, strict=True):
            worst = f"{check.worst:>9.1e}" if check.problem is None else f"{'-':>9}"
            lines.append(f"{name:<{width}}  {check.number:>4}  {check.rule:<{rule_width}}  "
                         f"{worst}")
        lines.append(f"{'worst':<{width + 8 + rule_width}}  {self.worst:>9.1e}")
        failures = self.failures
        if not self.steps:
            lines.append("FAILED: the derivation records no step")
        elif not failures:
            lines.append(f"ok: all {len(self.steps)} steps within {self.tolerance:g}")
        else:
            lines.append(f"FAILED: {len(failures)} of {len(self.steps)} steps above the "
                         f"tolerance {self.tolerance:g}:")
            lines += [f"  {check.describe()}" for check in failures]
        return "\n".join(lines) + "\n"


def verify_derivation(derivation: Derivation, *, seed: int = 0,
                      cases: Sequence[Mapping[str, int]] | None = None,
                      tolerance: float = TOLERANCE) -> VerifyReport:
    """Evaluate both sides of every recorded step at random values; see the module docstring.

    ``cases`` are the sizes to check at (every size of the model, ``T`` included for a
    recurrent one); by default :func:`default_cases`. ``seed`` draws the sizes and values.
    """
    model = derivation.model
    rng = np.random.default_rng(seed)
    sizes_list = [dict(case) for case in cases] if cases is not None else default_cases(
        model, rng)
    report = VerifyReport(model.name, tolerance, cases=sizes_list)
    worst: dict[tuple[str, int], StepCheck] = {}
    for sizes in sizes_list:
        try:
            numbers = Numbers(model, sizes, rng)
        except _Unevaluable as error:
            raise VerifyError(f"{model.name}: the forward pass cannot be evaluated at "
                              f"{_pairs(sizes, ' ')}: {error}") from None
        for adjoint in derivation.adjoints.values():
            for number, recorded in enumerate(adjoint.steps, start=1):
                check = _check_step(numbers, adjoint, number, recorded)
                key = (adjoint.name, number)
                if key not in worst or _worse(check, worst[key]):
                    worst[key] = check
    report.steps = list(worst.values())
    return report


def default_cases(model: Model, rng: np.random.Generator) -> list[dict[str, int]]:
    """Three small cases: every size 1 (and ``T = 1``); distinct sizes from 2 up (``T = 3``,
    so the loop through time has an inside as well as both ends); sizes from 1..3 mixed
    (``T = 2``)."""
    time = model.time_index
    T = time.upper.name if time is not None else None
    units = [name for name in model.sizes if name != T]
    ones = dict.fromkeys(units, 1)
    # distinct sizes, so that an index swapped for another of its kind cannot match by chance
    distinct = {name: 2 + int(n) for name, n in zip(
        units, rng.permutation(max(len(units), 3))[:len(units)], strict=True)}
    mixed = {name: int(rng.integers(1, 4)) for name in units}
    if len(units) > 1:  # some sizes 1 and some not, whatever the draw
        one, other = rng.choice(len(units), size=2, replace=False)
        mixed[units[one]], mixed[units[other]] = 1, int(rng.integers(2, 4))
    cases = [ones, distinct, mixed]
    if T is not None:
        for case, steps in zip(cases, (1, 3, 2), strict=True):
            case[T] = steps
    return cases


def _worse(a: StepCheck, b: StepCheck) -> bool:
    if (a.problem is None) != (b.problem is None):
        return a.problem is not None
    return a.worst > b.worst


def _pairs(values: Mapping[str, int], sep: str = ", ") -> str:
    return sep.join(f"{name}={value}" for name, value in values.items())


class VerifyError(ValueError):
    """The forward pass of a model cannot be given numbers (nothing can be checked)."""


class _Unevaluable(VerifyError):
    """An expression the numbers cannot be given to (named in the step's report; outside
    a step, a :class:`VerifyError` like any other)."""


# --- one case: the sizes, the values, the true adjoints and local partials ------------------


class Numbers:
    """Values of everything a step can name, at one set of sizes.

    Arrays have a leading batch axis (perturbations; 1 for the values themselves), then
    the quantity's unit axes, then (for a quantity over time) one slot per step from
    ``t = -P`` to ``t = T+1+P``, ``P`` the most padding steps of any quantity (0 without
    reads at t±2 or further); step ``t`` is slot ``t + P``. A recurrent quantity's slot at
    its initial step (0, or T+1 for one read at t+1) holds its initial state, its padding
    steps beyond that zeros, as the kernels hold them; every other slot outside 1..T is NaN.
    """

    def __init__(self, model: Model, sizes: Mapping[str, int], rng: np.random.Generator):
        self.model = model
        self.symbols = {model.sizes[name]: int(value) for name, value in sizes.items()
                        if name in model.sizes}
        missing = [name for name in model.sizes if model.sizes[name] not in self.symbols]
        if missing:
            raise VerifyError(f"a case must give every size of {model.name!r}; missing: "
                              f"{', '.join(missing)}")
        self.sizes = {name: int(value) for name, value in sizes.items()}
        time = model.time_index
        self.T = self.symbols[time.upper] if time is not None else 0
        # Model.shifts walks every equation: once per quantity here
        shifts = {q.name: model.shifts(q) for q in model.quantities.values() if q.time}
        self._initial: dict[str, int | None] = {}
        self._padding: dict[str, int] = {}
        for name in shifts:
            step = model.initial_step(model.quantities[name])
            self._initial[name] = None if step is None else self.integer(step)
            # as the kernels' arrays have them: steps of zeros beyond the initial state's
            self._padding[name] = 0 if step is None else max(
                (abs(s) for s in shifts[name]), default=1) - 1
        self.pad = max(self._padding.values(), default=0)
        self.loss = sympy.Symbol(model.loss_name)
        self._evaluators: dict[int, _Evaluator] = {}
        self._adjoints: dict[str, np.ndarray] | None = None
        self._locals: dict[tuple[str, str], np.ndarray] = {}
        self.values = self._random_values(rng)
        self._forward_plan = self._plan_forward()
        self.values.update(self.forward([]))

    # --- shapes and ranges of quantities

    def slot(self, t: int) -> int:
        """The position of step ``t`` on a time axis."""
        return t + self.pad

    def initial_step(self, quantity: Quantity) -> int | None:
        """The step whose slot holds the quantity's initial state (0, or T+1 for one read at
        later steps: ``Model.initial_step``), if it has one."""
        return self._initial.get(quantity.name)

    def padding(self, quantity: Quantity) -> int:
        """The steps of zeros beyond the initial state's (1 for a read at t-2 or t+2)."""
        return self._padding.get(quantity.name, 0)

    def shape(self, quantity: Quantity) -> tuple[int, ...]:
        units = tuple(self.symbols[s] for s in quantity.sizes)
        return (*units, self.T + 2 + 2 * self.pad) if quantity.time else units

    def offsets(self, quantity: Quantity) -> list[int]:
        """What an index value adds to give the array position, per axis."""
        return [0] * len(quantity.sizes) + ([self.pad] if quantity.time else [])

    def ranges(self, quantity: Quantity, *, padding: bool = False) -> list[tuple[int, int]]:
        """The index range of each axis where the quantity is a variable (time: 1..T, and
        its initial step), or with ``padding`` where it has a value (its padding steps of
        zeros too)."""
        units = [(0, self.symbols[s] - 1) for s in quantity.sizes]
        if quantity.time:
            initial = self.initial_step(quantity)
            extra = self.padding(quantity) if padding else 0
            if initial is None:
                units.append((1, self.T))
            elif initial <= 0:
                units.append((initial - extra, self.T))
            else:
                units.append((1, initial + extra))
        return units

    def cells(self, quantity: Quantity) -> list[tuple[int, ...]]:
        """Every cell of ``quantity`` where it is a variable, as array positions."""
        bounds = [(lo + offset, hi + offset) for (lo, hi), offset in zip(
            self.ranges(quantity), self.offsets(quantity), strict=True)]
        return [tuple(cell) for cell in np.ndindex(*self.shape(quantity))
                if all(lo <= c <= hi for c, (lo, hi) in zip(cell, bounds, strict=True))]

    def aliases(self, quantity: Quantity, cell: tuple[int, ...]) -> list[tuple[str, tuple]]:
        """The array cells holding the value ``quantity[cell]``: an initial state is also
        its owner's slot at the initial step, and that slot is the state."""
        if quantity.role is Role.STATE:
            assert quantity.state_of is not None
            initial = self.initial_step(self.model.quantity(quantity.state_of))
            assert initial is not None
            return [(quantity.name, cell), (quantity.state_of, (*cell, self.slot(initial)))]
        if quantity.time and cell[-1] == self._initial_slot(quantity):
            state = self.model.state_for(quantity)
            assert state is not None
            return [(state.name, cell[:-1]), (quantity.name, cell)]
        return [(quantity.name, cell)]

    def _initial_slot(self, quantity: Quantity) -> int | None:
        initial = self.initial_step(quantity)
        return None if initial is None else self.slot(initial)

    # --- values

    def _random_values(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = {}
        for quantity in self.model.quantities.values():
            shape = self.shape(quantity)
            if quantity.role in (Role.INPUT, Role.PARAMETER, Role.STATE):
                array = rng.normal(scale=SCALE, size=shape)
            elif quantity.role is Role.TARGET:
                array = self._target(quantity, rng)
            else:
                continue
            if quantity.time:  # inputs and targets are given at t = 1..T only
                array[..., :self.slot(1)] = np.nan
                array[..., self.slot(self.T + 1):] = np.nan
            values[quantity.name] = array[np.newaxis]
        return values

    def _target(self, quantity: Quantity, rng: np.random.Generator) -> np.ndarray:
        shape = self.shape(quantity)
        if not (quantity.one_hot and len(quantity.sizes) == 1):
            return rng.uniform(size=shape)
        classes = shape[0]
        array = np.zeros(shape)
        if quantity.time:
            for t in range(1, self.T + 1):
                array[rng.integers(classes), self.slot(t)] = 1.0
        else:
            array[rng.integers(classes)] = 1.0
        return array

    def _plan_forward(self) -> list[tuple[int, list[Equation]]]:
        """The equations in dependency order, in groups ``(direction, equations)``: one
        equation evaluated at once (at every t, if over time) with direction 0, or a
        recurrence (a strongly connected group of quantities reading each other at other
        steps) run one step at a time, up in t (direction +1) for reads at t-k, down (-1)
        for reads at t+k, its equations in their order within a step."""
        model = self.model
        within = {name: n for n, name in enumerate(model.evaluation_order())}
        reads: dict[str, dict[str, set[int]]] = {}
        for name, eq in model.equations.items():
            shifts: dict[str, set[int]] = {}
            reads[name] = shifts
            for ref in model.references(eq.rhs):
                dep = model.quantity(ref.base)
                if dep.role is Role.INTERMEDIATE:
                    shifts.setdefault(dep.name, set()).add(model.time_shift(ref) or 0)
        # Tarjan's algorithm over "reads" edges: a group comes out after every group it reads
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        groups: list[list[str]] = []

        def connect(name: str) -> None:
            index[name] = low[name] = len(index)
            stack.append(name)
            for dep in reads[name]:
                if dep not in index:
                    connect(dep)
                    low[name] = min(low[name], low[dep])
                elif dep in stack:
                    low[name] = min(low[name], index[dep])
            if low[name] == index[name]:
                group = []
                while True:
                    member = stack.pop()
                    group.append(member)
                    if member == name:
                        break
                groups.append(sorted(group, key=within.__getitem__))

        for name in model.equations:
            if name not in index:
                connect(name)
        plan: list[tuple[int, list[Equation]]] = []
        for group in groups:
            inner = {s for name in group for dep, found in reads[name].items() if dep in group
                     for s in found if s}
            if any(s > 0 for s in inner) and any(s < 0 for s in inner):
                raise VerifyError(f"{model.name}: {', '.join(group)} read each other both at "
                                  f"earlier and at later steps: no order in time computes them")
            direction = 0 if not inner else (1 if min(inner) < 0 else -1)
            plan.append((direction, [model.equations[name] for name in group]))
        return plan

    def forward(self, moves: Sequence[tuple[int, str, tuple[int, ...], complex]],
                batch: int = 1) -> dict[str, np.ndarray]:
        """Every intermediate and the loss (shape ``(batch,)``), with each move ``(row, name,
        cell, amount)`` adding ``amount`` to ``name[cell]`` in that row of the batch: an
        input, parameter or state before the pass, an intermediate right after it is
        computed, so that what reads it sees the moved value."""
        model = self.model
        values = dict(self.values)
        by_name: dict[str, list[tuple[int, tuple[int, ...], complex]]] = {}
        for row, name, cell, amount in moves:
            by_name.setdefault(name, []).append((row, cell, amount))

        def move(name: str, position: int | None = None) -> None:
            for row, cell, amount in by_name.get(name, ()):
                if position is None or cell[-1] == position:
                    values[name][(row, *cell)] += amount

        dtype = complex if moves else float
        for name in by_name:
            if model.quantity(name).role is not Role.INTERMEDIATE:
                values[name] = np.repeat(self.values[name], batch, axis=0).astype(dtype)
                move(name)
        for eq in model.equations.values():
            array = np.full((batch, *self.shape(eq.quantity)), np.nan, dtype=dtype)
            state = model.state_for(eq.quantity)
            if state is not None:
                (lo, hi) = self.ranges(eq.quantity, padding=True)[-1]
                initial = self.initial_step(eq.quantity)
                assert initial is not None
                if initial <= 0:  # the padding steps before the state's
                    array[..., self.slot(lo):self.slot(initial)] = 0
                else:  # after it
                    array[..., self.slot(initial) + 1:self.slot(hi) + 1] = 0
                array[..., self.slot(initial)] = values[state.name]
            values[eq.quantity.name] = array
        steps = slice(self.slot(1), self.slot(self.T) + 1)  # t = 1..T
        for direction, group in self._forward_plan:
            if direction == 0:
                (eq,) = group
                out = values[eq.quantity.name]
                value = self.right_side(eq, values, batch, None)
                if eq.quantity.time:
                    out[..., steps] = value
                else:
                    out[...] = value
                move(eq.quantity.name)
                continue
            for t in range(1, self.T + 1) if direction > 0 else range(self.T, 0, -1):
                for eq in group:
                    values[eq.quantity.name][..., self.slot(t)] = self.right_side(
                        eq, values, batch, t)
                    move(eq.quantity.name, self.slot(t))
        assert model.loss_equation is not None
        values[model.loss_name] = self.right_side(model.loss_equation, values, batch, None)
        return values

    def right_side(self, eq: Equation, values: Mapping[str, np.ndarray], batch: int,
                   t: int | None) -> np.ndarray:
        """``eq``'s right side at every value of its left side's indices (at time ``t`` only,
        if given; else at t = 1..T): shape ``(batch, *units[, T])``."""
        time = self.model.time_index
        evaluator = self._evaluators.get(id(eq))
        if evaluator is None:
            evaluator = self._evaluators[id(eq)] = _Evaluator(self, [eq.rhs], eq.free)
        ranges: dict[Expr, tuple[int, int]] = {}
        fixed: dict[Expr, int] = {}
        for index in eq.free:
            if index == time:
                if t is None:
                    ranges[index] = (1, self.T)
                else:
                    fixed[index] = t
            else:
                ranges[index] = (self.integer(index.lower), self.integer(index.upper))
        value = evaluator.evaluate(eq.rhs, values, evaluator.scope(ranges, fixed))
        lengths = [ranges[i][1] - ranges[i][0] + 1 if i in ranges else 1 for i in eq.free]
        full = (batch, *lengths, *(1,) * (evaluator.ndim - 1 - len(lengths)))
        kept = [n for i, n in zip(eq.free, lengths, strict=True) if i in ranges]
        return np.broadcast_to(value, full).reshape(batch, *kept)

    def integer(self, expr: Expr) -> int:
        value = sympy.sympify(expr).xreplace(
            {symbol: sympy.Integer(n) for symbol, n in self.symbols.items()})
        if not value.is_Integer:
            raise _Unevaluable(f"{expr} is not an integer at these sizes")
        return int(value)

    # --- the true adjoints and local partials, by complex step

    def adjoint(self, quantity: Quantity) -> np.ndarray:
        """``∂L/∂quantity`` at every cell (NaN outside its range), shape ``(1, *shape)``."""
        if self._adjoints is None:
            self._adjoints = self._all_adjoints()
        if quantity.name not in self._adjoints:
            raise _Unevaluable(f"{quantity.name} ({quantity.role.value}) has no adjoint")
        return self._adjoints[quantity.name]

    def _all_adjoints(self) -> dict[str, np.ndarray]:
        """All adjoints from one batched forward pass, a row per cell moved (by ih)."""
        moves = []
        cells: list[tuple[Quantity, tuple[int, ...]]] = []
        for quantity in self.model.quantities.values():
            if quantity.role not in (Role.INTERMEDIATE, Role.PARAMETER, Role.STATE):
                continue
            for cell in self.cells(quantity):
                if quantity.role is Role.INTERMEDIATE and quantity.time and \
                        cell[-1] == self._initial_slot(quantity):
                    continue  # the initial state: moved as the state itself
                moves.append((len(cells), quantity.name, cell, 1j * STEP))
                cells.append((quantity, cell))
        loss = self.forward(moves, batch=len(cells))[self.model.loss_name]
        slopes = loss.imag / STEP
        adjoints: dict[str, np.ndarray] = {}
        for (quantity, cell), slope in zip(cells, slopes, strict=True):
            array = adjoints.get(quantity.name)
            if array is None:
                array = adjoints[quantity.name] = np.full((1, *self.shape(quantity)), np.nan)
            array[(0, *cell)] = slope
        for state in self.model.of_role(Role.STATE):
            assert state.state_of is not None
            owner = adjoints[state.state_of]
            owner[..., self._initial_slot(self.model.quantity(state.state_of))] = \
                adjoints[state.name]
        return adjoints

    def local(self, consumer: Equation, quantity: Quantity) -> np.ndarray:
        """``∂c[..]/∂q[..]`` for the consumer's equation alone: shape ``(1, *c's shape,
        *q's shape)``, NaN where c is not defined (t outside 1..T) or q is no variable."""
        key = (consumer.quantity.name, quantity.name)
        if key in self._locals:
            return self._locals[key]
        cells = self.cells(quantity)
        batch = len(cells)
        values = dict(self.values)
        for row, cell in enumerate(cells):
            for name, alias in self.aliases(quantity, cell):
                if values[name] is self.values[name]:
                    values[name] = np.repeat(self.values[name], batch, axis=0).astype(complex)
                values[name][(row, *alias)] += 1j * STEP
        out = self.right_side(consumer, values, batch, None)
        slopes = out.imag / STEP
        c = consumer.quantity
        c_shape = self.shape(c) if c.role is not Role.LOSS else ()
        array = np.full((1, *c_shape, *self.shape(quantity)), np.nan)
        where = (slice(None),) * len(c.sizes) + (
            (slice(self.slot(1), self.slot(self.T) + 1),) if c.time else ())
        for cell, slope in zip(cells, slopes, strict=True):
            array[(0, *where, *cell)] = slope
        self._locals[key] = array
        return array


# --- expressions to numbers -------------------------------------------------------------------


def _softplus(v: np.ndarray) -> np.ndarray:
    """ln(1 + e^v) as max(v, 0) + ln(1 + e^{-|v|}), which overflows for no v; each branch
    is analytic, so the complex step passes through it."""
    positive = np.real(v) > 0
    return np.where(positive, v, 0.0) + np.log1p(np.exp(np.where(positive, -v, v)))


def _erf(v: np.ndarray) -> np.ndarray:
    """erf, with the complex step: NumPy has no erf, and ``math.erf`` takes no complex
    number. The imaginary part of an argument here is a step of ``STEP`` (1e-20), so
    ``erf(x + ih) = erf(x) + ih·(2/√π)e^{-x²}`` (the integrand of erf's definition) is
    exact: the next term is h² smaller."""
    v = np.asarray(v)
    real = np.real(v).astype(float)
    value = np.vectorize(math.erf, otypes=[float])(real)
    if not np.iscomplexobj(v):
        return value
    return value + 1j * np.imag(v) * (2 / math.sqrt(math.pi)) * np.exp(-real**2)


#: NumPy values of the functions an equation may apply, by SymPy class (complex arguments
#: too, for the complex step)
NUMERIC_FUNCTIONS: dict[type, Callable[[np.ndarray], np.ndarray]] = {
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.tanh: np.tanh,
    logistic: lambda v: 0.5 * (1.0 + np.tanh(0.5 * v)),
    relu: lambda v: np.where(np.real(v) > 0, v, 0.0),
    step: lambda v: (np.real(v) > 0).astype(float),
    sympy.sin: np.sin,
    sympy.cos: np.cos,
    sympy.Abs: lambda v: np.where(np.real(v) < 0, -v, v),
    sympy.sign: lambda v: np.sign(np.real(v)).astype(float),
    sympy.erf: _erf,
    softplus: _softplus,
}


class _Evaluator:
    """Numbers for expressions of one step (or equation), vectorized over the index values.

    Every index variable (the free ones first, then each bound one) has its own axis,
    after the batch axis; a value is an array broadcast over those axes, and a sum
    adds along its variables' axes (keeping them, of length 1).
    """

    def __init__(self, numbers: Numbers, exprs: Sequence[Expr], free: Sequence[Expr]) -> None:
        self.numbers = numbers
        variables = list(dict.fromkeys(free))
        for expr in exprs:
            for node in sympy.preorder_traversal(expr):
                if isinstance(node, Idx) and node not in variables:
                    variables.append(node)
                elif isinstance(node, sympy.Sum):
                    variables += [v for v, _, _ in node.limits if v not in variables]
        self.axes = {variable: axis for axis, variable in enumerate(variables, start=1)}
        self.ndim = 1 + len(variables)
        self.loss_partial = Partial(numbers.loss, numbers.loss)

    def along(self, variable: Expr, lo: int, hi: int) -> np.ndarray:
        """The values ``lo..hi`` laid along ``variable``'s axis."""
        shape = [1] * self.ndim
        shape[self.axes[variable]] = max(hi - lo + 1, 0)
        return np.arange(lo, hi + 1).reshape(shape)

    def scope(self, ranges: Mapping[Expr, tuple[int, int]],
              fixed: Mapping[Expr, int] | None = None) -> dict[Expr, object]:
        scope: dict[Expr, object] = {v: self.along(v, lo, hi) for v, (lo, hi) in ranges.items()}
        scope.update(fixed or {})
        return scope

    def evaluate(self, expr: Expr, values: Mapping[str, np.ndarray],
                 scope: Mapping[Expr, object]) -> np.ndarray:
        with np.errstate(all="ignore"):  # overflow and 0/0 show as a step that is not finite
            return np.asarray(self.value(expr, values, scope))

    def value(self, node: Expr, values: Mapping[str, np.ndarray], scope: Mapping[Expr, object],
              loss_local: bool = False) -> object:
        if node in scope:
            return scope[node]
        if node.is_Integer:
            return int(node)
        if node.is_Number or isinstance(node, sympy.NumberSymbol):
            return float(node)
        # a function of constants (logistic(0.5)) goes on below, as SymPy cannot evaluate
        # our own functions
        if isinstance(node, Idx):
            raise _Unevaluable(f"the index {node} is not bound")
        if isinstance(node, sympy.Symbol):
            if node in self.numbers.symbols:
                return self.numbers.symbols[node]
            raise _Unevaluable(f"the symbol {node} has no value")
        if isinstance(node, Indexed):
            return self.indexed(node, values, scope)
        if isinstance(node, Partial):
            return self.partial(node, values, scope, loss_local)
        if isinstance(node, sympy.Add):
            total: object = 0
            for arg in node.args:
                total = total + self.value(arg, values, scope)  # type: ignore[operator]
            return total
        if isinstance(node, sympy.Mul):
            return self.product(node, values, scope)
        if isinstance(node, sympy.Pow):
            base = self.value(node.base, values, scope)
            exponent = self.value(node.exp, values, scope)
            if isinstance(exponent, int) and exponent >= 0:
                return np.power(base, exponent)
            base = np.asarray(base)
            return np.power(base.astype(float) if base.dtype.kind in "iu" else base, exponent)
        if isinstance(node, sympy.Sum):
            return self.sum(node, values, scope)
        if isinstance(node, KroneckerDelta):
            a, b = (self.value(arg, values, scope) for arg in node.args)
            return np.equal(a, b).astype(float)
        if isinstance(node, InRange):
            e, lo, hi = (self.value(arg, values, scope) for arg in node.args)
            return (np.less_equal(lo, e) & np.less_equal(e, hi)).astype(float)
        if isinstance(node, sympy.Function) and len(node.args) == 1:
            argument = np.asarray(self.value(node.args[0], values, scope))
            function = NUMERIC_FUNCTIONS.get(type(node))
            if function is None:
                kind = type(node)
                function = np.vectorize(lambda v: complex(kind(v).evalf()), otypes=[complex])
            try:
                return function(argument)
            except (TypeError, ValueError) as error:
                raise _Unevaluable(f"{type(node).__name__} has no numeric value: {error}") \
                    from None
        raise _Unevaluable(f"cannot give a number to {type(node).__name__} {node}")

    def product(self, node: sympy.Mul, values: Mapping[str, np.ndarray],
                scope: Mapping[Expr, object]) -> object:
        # A delta or range factor that is 0 makes the product 0 even where another factor
        # reads out of range (NaN): that is what the factor is there for.
        loss_local = self.loss_partial in node.args
        guard: object = True
        result: object = 1
        for arg in node.args:
            value = self.value(arg, values, scope, loss_local)
            if isinstance(arg, KroneckerDelta | InRange):
                guard = np.logical_and(guard, np.not_equal(value, 0))
            else:
                result = result * value  # type: ignore[operator]
        return result if guard is True else np.where(guard, result, 0.0)

    def sum(self, node: sympy.Sum, values: Mapping[str, np.ndarray],
            scope: Mapping[Expr, object]) -> object:
        inner = dict(scope)
        masks = []
        axes = []
        # the last limit is the outermost sum: an inner one's bounds may read its variable
        for variable, lo_expr, hi_expr in reversed(node.limits):
            lo, hi = (self.value(e, values, inner) for e in (lo_expr, hi_expr))
            if np.ndim(lo) == 0 and np.ndim(hi) == 0:
                # an empty range (hi < lo) sums to 0: the loop a range stands for is empty
                inner[variable] = self.along(variable, int(lo), int(hi))  # type: ignore[arg-type]
            else:
                low, high = int(np.min(lo)), int(np.max(hi))  # type: ignore[call-overload]
                span = self.along(variable, low, high)
                inner[variable] = span
                masks.append(np.less_equal(lo, span) & np.less_equal(span, hi))
            axes.append(self.axes[variable])
        body = np.asarray(self.value(node.function, values, inner))
        shape = np.broadcast_shapes(body.shape, *(np.shape(inner[v]) for v, _, _ in node.limits),
                                    *(m.shape for m in masks))
        body = np.broadcast_to(body, shape)
        for mask in masks:
            body = np.where(mask, body, 0.0)
        return body.sum(axis=tuple(axes), keepdims=True)

    def reference(self, node: Expr) -> tuple[Quantity, tuple[Expr, ...]]:
        """The quantity and the index expressions of ``q[...]`` (or of a scalar quantity)."""
        if isinstance(node, Indexed):
            quantity = self.numbers.model.find_quantity(node.base)
            if quantity is not None:
                return quantity, tuple(node.indices)
        elif isinstance(node, sympy.Symbol):
            quantity = self.numbers.model.find_quantity(node.name)
            if quantity is not None and quantity.rank == 0:
                return quantity, ()
        raise _Unevaluable(f"{node} is not a quantity of the model")

    def indexed(self, node: Indexed, values: Mapping[str, np.ndarray],
                scope: Mapping[Expr, object]) -> np.ndarray:
        numbers = self.numbers
        quantity = numbers.model.find_quantity(node.base)
        if quantity is not None:
            if quantity.name not in values:
                raise _Unevaluable(f"{quantity.name} has no value")
            array = values[quantity.name]
        else:
            owner = quantity_of_adjoint(node.base.name)
            quantity = numbers.model.find_quantity(owner) if owner else None
            if quantity is None:
                raise _Unevaluable(f"{node.base.name} is neither a quantity nor an adjoint")
            array = numbers.adjoint(quantity)
        indices = [self.value(i, values, scope) for i in node.indices]
        # a value is read where the quantity has one (its padding zeros too), an adjoint
        # only where the quantity is a variable
        ranges = numbers.ranges(quantity, padding=quantity.name == node.base.name)
        return self.gather(array, indices, ranges, numbers.offsets(quantity))

    def partial(self, node: Partial, values: Mapping[str, np.ndarray],
                scope: Mapping[Expr, object], loss_local: bool) -> np.ndarray | float:
        numbers = self.numbers
        if node == self.loss_partial:
            return 1.0
        quantity, indices = self.reference(node.den)
        ranges = numbers.ranges(quantity)
        offsets = numbers.offsets(quantity)
        if node.num == numbers.loss and not loss_local:
            array = numbers.adjoint(quantity)
        elif node.num == numbers.loss:
            assert numbers.model.loss_equation is not None
            array = numbers.local(numbers.model.loss_equation, quantity)
        else:
            consumer, at = self.reference(node.num)
            equation = numbers.model.equations.get(consumer.name)
            if equation is None:
                raise _Unevaluable(f"{consumer.name} is defined by no equation")
            array = numbers.local(equation, quantity)
            indices = (*at, *indices)
            units = [(0, numbers.symbols[s] - 1) for s in consumer.sizes]
            ranges = [*units, *([(1, numbers.T)] if consumer.time else []), *ranges]
            offsets = [*numbers.offsets(consumer), *offsets]
        return self.gather(array, [self.value(i, values, scope) for i in indices], ranges,
                           offsets)

    def gather(self, array: np.ndarray, indices: Sequence[object],
               ranges: Sequence[tuple[int, int]], offsets: Sequence[int]) -> np.ndarray:
        """``array`` (batch first) at the index values (each axis's position is the value
        plus its offset); NaN outside ``ranges``."""
        inside: object = True
        positions = []
        for index, (lo, hi), offset, length in zip(indices, ranges, offsets, array.shape[1:],
                                                   strict=True):
            index = np.asarray(index)
            if index.dtype.kind not in "iu":
                raise _Unevaluable(f"an index is not an integer: {index}")
            inside = np.logical_and(inside, (index >= lo) & (index <= hi))
            positions.append(np.clip(index + offset, 0, length - 1))
        batch = np.arange(array.shape[0]).reshape((-1,) + (1,) * (self.ndim - 1))
        found = array[(batch, *positions)]
        return found if inside is True else np.where(inside, found, np.nan)


# --- one step ---------------------------------------------------------------------------------


def _check_step(numbers: Numbers, adjoint: Adjoint, number: int, recorded: Step) -> StepCheck:
    """The worst discrepancy of ``recorded`` at ``numbers``' sizes, over the free indices."""
    time = numbers.model.time_index
    ranges: dict[Expr, tuple[int, int]] = {}
    for index in adjoint.indices:
        lo, hi = adjoint.time_range if index == time and adjoint.time_range else (
            index.lower, index.upper)
        ranges[index] = (numbers.integer(lo), numbers.integer(hi))
    names = [index.name for index in ranges]

    def check(worst: float, at: dict[str, int], problem: str | None = None) -> StepCheck:
        return StepCheck(adjoint.quantity.name, number, recorded, worst, dict(numbers.sizes),
                         at, problem)

    evaluator = _Evaluator(numbers, [recorded.before, recorded.after], list(ranges))
    try:
        scope = evaluator.scope(ranges)
        before = evaluator.evaluate(recorded.before, numbers.values, scope)
        after = evaluator.evaluate(recorded.after, numbers.values, scope)
    except _Unevaluable as error:
        return check(math.inf, {}, f"cannot be evaluated: {error}")
    full = (1, *(hi - lo + 1 for lo, hi in ranges.values()))
    full += (1,) * (evaluator.ndim - len(full))
    before, after = (np.broadcast_to(side, np.broadcast_shapes(side.shape, full))
                     for side in (before, after))

    def where(flat: int) -> dict[str, int]:
        position = np.unravel_index(flat, before.shape)[1:1 + len(names)]
        return {name: lo + int(p) for name, (lo, _), p in zip(
            names, ranges.values(), position, strict=True)}

    bad = ~np.isfinite(before) | ~np.isfinite(after)
    if bad.any():
        flat = int(np.argmax(bad))
        sides = [side for side, array in (("before", before), ("after", after))
                 if not np.isfinite(array.flat[flat])]
        return check(math.inf, where(flat),
                     f"{' and '.join(sides)} not finite (before {before.flat[flat]:.3g}, "
                     f"after {after.flat[flat]:.3g}): it reads a value out of range (a step "
                     f"before t = 1 or after T without a value there) that no InRange "
                     f"zeroes, or overflows")
    difference = np.abs(before - after)
    scale = max(1.0, float(np.abs(before).max(initial=0.0)), float(np.abs(after).max(initial=0.0)))
    flat = int(np.argmax(difference)) if difference.size else 0
    worst = float(difference.flat[flat]) / scale if difference.size else 0.0
    return check(worst, where(flat) if difference.size else {})
