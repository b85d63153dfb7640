"""Lowering: Derivation → Plan.

Role in DESIGN.md's picture: the one place that turns equations into
statements. It adds the batch axis (and puts time first), makes every sum a
contraction (a fresh temporary, or the output itself when the sum is all there
is), leaves the rest elementwise, and rewrites two patterns for numerical
stability wherever they occur: a softmax definition ``exp(u_k)/Σ_k' exp(u_k')``
becomes a stable softmax, and ``log`` of a softmax quantity becomes a
log-softmax of its logits. A boundary condition ``[t ≤ T-1]`` on a term of an
adjoint becomes a :class:`~codegen.plan.Guarded` temporary. Parameter gradients
and the loss sum over the batch (and time) in one contraction each. Models over
time are then split around one loop per phase (``schedule.py``), and
contractions that share an operand are fused (``fuse.py``); a function application
read twice in one step is computed once (``cse.py``). It knows no network
by name. The names it makes up (temporaries ``t<N>``, fused buffers) come from one
:class:`~symbolic.names.Names` allocator that holds every user name, every
adjoint and the reserved list, so that none captures another.
"""

from __future__ import annotations

import dataclasses

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase

from chainrule.codegen.plan.cse import common_subexpressions
from chainrule.codegen.plan.fuse import Fuser, split_coefficient
from chainrule.codegen.plan.schedule import SchedulingError, Segment, schedule
from chainrule.codegen.plan.types import (
    BATCH,
    BATCH_SIZE,
    Allocate,
    Array,
    Assign,
    Contract,
    Guarded,
    Initial,
    Kind,
    Loop,
    OneHot,
    Plan,
    Ref,
    Softmax,
    Split,
    Statement,
    ref_indices,
    walk,
    written,
)
from chainrule.symbolic import (
    Derivation,
    Equation,
    InRange,
    Model,
    Names,
    Quantity,
    Role,
    c_functions,
    logistic,
    reduce_ranges,
    softplus,
)


class LoweringError(ValueError):
    """The model is outside what the kernels support (named in the message)."""


def lower(derivation: Derivation, *, source: str | None = None) -> Plan:
    """The kernel plan of ``derivation``; ``source`` names where the model came from."""
    return _Lowering(derivation, source or f"the built-in network '{derivation.model.name}'").run()


class _Lowering:
    def __init__(self, derivation: Derivation, source: str) -> None:
        self.derivation = derivation
        self.model: Model = derivation.model
        self.source = source
        self.time: Idx | None = self.model.time_index
        self.arrays: dict[str, Array] = {}
        self.names = Names([*self.model.user_names(), *c_functions(self.model.name),
                            *(a.name for a in derivation.adjoints.values())])
        self.fuser = Fuser(self.arrays, self.names)
        self.temporaries = 0
        self.softmax_logits: dict[str, tuple[Indexed, Idx]] = {}
        self.log_softmax: dict[str, Indexed] = {}
        #: a quantity defined as logistic(u): its reference as defined, and u
        self.logistic_of: dict[str, tuple[Indexed, Expr]] = {}

    # --- arrays -----------------------------------------------------------------------------

    def declare_quantity(self, name: str, quantity: Quantity, kind: Kind, *,
                         per_example: bool = True, time: bool | None = None) -> None:
        """An array for ``quantity`` (or its adjoint ``name``): time rows, batch, unit axes."""
        axes: tuple[Expr, ...] = (BATCH_SIZE, *quantity.sizes) if per_example else quantity.sizes
        over_time = quantity.time if time is None else time
        if over_time:
            assert self.time is not None
            # a state's row: before step 1 (t = 0), or after step T (t = T + 1) for a
            # quantity read at t + 1
            initial = self.model.initial_step(quantity) if kind is Kind.FORWARD else None
            # steps beyond the state's (t ≤ -1 for a read at t-2), zeros
            padding = max((abs(s) for s in self.model.shifts(quantity)), default=1) - 1 \
                if initial is not None else 0
            first = -padding if initial == 0 else 1
            rows = (self.time.upper - self.time.lower + 1
                    + (0 if initial is None else 1 + padding))
            self.arrays[name] = Array(name, (rows, *axes), kind, quantity.name, self.time, first,
                                      initial_at=initial, padding=padding)
        else:
            self.arrays[name] = Array(name, axes, kind, quantity.name)

    def temporary(self, indices: tuple[Idx, ...]) -> Ref:
        """A fresh temporary over ``indices`` (time first, then the batch, then the rest)."""
        name = f"t{self.temporaries}"
        while not self.names.is_free(name):  # a user's name, or a fused buffer (t1, t2: t12)
            self.temporaries += 1
            name = f"t{self.temporaries}"
        self.names.take(name)
        self.temporaries += 1
        indices = (*(i for i in indices if i == self.time), *(i for i in indices if i == BATCH),
                   *(i for i in indices if i not in (self.time, BATCH)))
        axes = tuple(_size(i) for i in indices)
        self.arrays[name] = Array(name, axes, Kind.TEMPORARY, None,
                                  self.time if self.time in indices else None)
        return IndexedBase(name)[indices] if indices else sympy.Symbol(name)

    def convert(self, expr: Expr) -> Expr:
        """Model refs → plan refs: time first, then the batch for per-example arrays."""

        def to_plan(ref: Indexed) -> Expr:
            name = str(ref.base.label)
            array = self.arrays.get(name)
            if array is None:
                raise LoweringError(f"no array for {ref}")
            indices = list(ref.indices)
            time = [indices.pop()] if array.time is not None else []
            batched = BATCH_SIZE in array.axes[len(time):len(time) + 1]
            return IndexedBase(name)[(*time, *([BATCH] if batched else []), *indices)]

        return expr.replace(lambda e: isinstance(e, Indexed), to_plan)

    # --- the run ----------------------------------------------------------------------------

    def run(self) -> Plan:
        model = self.model
        inputs = model.of_role(Role.INPUT)
        targets = model.of_role(Role.TARGET)
        if not inputs:
            raise LoweringError(f"model {model.name!r}: the kernels need at least one input "
                                f"(they read the batch size from the inputs' shapes); "
                                f"declare one with role = \"input\"")
        for target in targets:
            if target.one_hot and not target.sizes:
                raise LoweringError(
                    f"model {model.name!r}: the target {target.name!r} is one-hot (class "
                    f"labels) but has no unit axis to hold the classes; give it a shape such "
                    f"as [K], or declare it real-valued (one_hot = false)")
        for quantity in model.quantities.values():
            if quantity.role in (Role.INPUT, Role.TARGET, Role.INTERMEDIATE):
                self.declare_quantity(quantity.name, quantity, Kind.FORWARD
                                      if quantity.role is Role.INTERMEDIATE
                                      else Kind(quantity.role.value))
            elif quantity.role is Role.PARAMETER:
                self.declare_quantity(quantity.name, quantity, Kind.PARAMETER, per_example=False)
            elif quantity.role is Role.STATE:
                self.declare_quantity(quantity.name, quantity, Kind.STATE, time=False)
        for adjoint in self.derivation.named:
            self.declare_quantity(adjoint.name, adjoint.quantity, Kind.ADJOINT)
        gradients = {}
        for name, adjoint in self.derivation.gradients.items():
            state = adjoint.quantity.role is Role.STATE
            self.declare_quantity(adjoint.name, adjoint.quantity, Kind.GRADIENT,
                                  per_example=state, time=False)
            gradients[name] = adjoint.name
        loss_name = model.loss_name
        self.arrays[loss_name] = Array(loss_name, (), Kind.FORWARD, loss_name)

        forward: list[Statement] = []
        for name in model.evaluation_order():
            forward += self.define(model.equations[name])
        outputs = self.output_quantities()
        forward = self.phase(forward, step=1)
        labels = [target for target in targets if target.one_hot]
        loss_statements: list[Statement] = []
        for target in labels:
            indices = model.canonical_indices(target)
            axis = indices[-2 if target.time else -1]
            loss_statements.append(OneHot(self.convert(target.base[indices]), axis,
                                          f"{target.name}: one-hot rows from its labels"))
        assert model.loss_equation is not None
        over = "the batch and time" if self.time is not None else "the batch"
        loss_statements += self.assign(sympy.Symbol(loss_name),
                                       self.convert(model.loss_equation.rhs),
                                       f"loss {loss_name}, summed over {over}")
        # the one phase that does not go through phase()
        loss_statements = common_subexpressions(loss_statements, self.arrays, self.temporary,
                                                self.time)
        backward: list[Statement] = []
        for adjoint in self.derivation.named:
            backward += self.lower_adjoint(adjoint.lhs, adjoint.expr,
                                           f"{adjoint.name} = ∂L/∂{adjoint.quantity.name}")
        backward = self.phase(backward, step=-1)
        gradient_statements: list[Statement] = []
        for adjoint in self.derivation.gradients.values():
            out = self.convert(adjoint.lhs)
            value = self.guard(self.convert(adjoint.expr), ref_indices(out),
                               gradient_statements)
            gradient_statements += self.assign(out, value, f"∂L/∂{adjoint.quantity.name}")
        gradient_statements = self.phase(gradient_statements, step=0)
        return Plan(
            name=model.name, title=model.title, source=self.source,
            sizes=tuple(s for s in model.sizes.values()
                        if self.time is None or s != self.time.upper),
            arrays=self.arrays, inputs=tuple(q.name for q in inputs),
            targets=tuple(q.name for q in targets), labels=tuple(q.name for q in labels),
            outputs=outputs, loss=loss_name,
            parameters={q.name: q.sizes for q in model.of_role(Role.PARAMETER)},
            states={q.name: q.sizes for q in model.of_role(Role.STATE)}, gradients=gradients,
            time=self.time, forward=forward, loss_statements=loss_statements,
            backward=backward, gradient_statements=gradient_statements)

    def phase(self, statements: list[Statement], step: int) -> list[Statement]:
        """One phase as printed: set-up, then hoisted work and loops through time (``step``
        0: a phase without loops, the gradients)."""
        segments: list[Segment] = [Segment(None, statements)]
        allocate: list[str] = []
        if self.time is not None and step != 0:
            try:
                scheduled = schedule(statements, self.arrays, self.time, self.temporary)
            except SchedulingError as error:
                raise LoweringError(f"model {self.model.name!r}: {error}") from None
            segments, allocate = scheduled.segments, scheduled.allocate
        concats, buffers = self.fuser.take_new()
        in_place = {*allocate, *buffers, *(a.name for a in self.arrays.values() if a.view)}
        for segment in segments:
            segment.statements = self.fuser.fuse_statements(
                segment.statements, in_place,
                concatenate=self.time is None or segment.step is not None)
        more_concats, more_buffers = self.fuser.take_new()
        for statement in walk([s for segment in segments for s in segment.statements]):
            self.fuser.frozen |= written(statement)
        setup: list[Statement] = [*concats, *more_concats]
        for name in [*buffers, *more_buffers, *allocate]:
            setup.append(Allocate(name))
            if self.arrays[name].parts:
                setup.append(Split(name))
        for name in allocate:
            array = self.arrays[name]
            state = self.model.state_for(self.model.quantity(array.quantity)) \
                if array.initial_at is not None and array.quantity else None
            if state is not None:
                step_of_state = array.initial_at
                setup.append(Initial(name, state.name, step_of_state,
                                     f"{name} at {self.time} = {step_of_state} is {state.name}"))
        body: list[Statement] = []
        for segment in segments:
            if segment.step is None:
                body += segment.statements
            elif segment.statements:
                direction = "ascending" if segment.step > 0 else "descending"
                body.append(Loop(segment.step, tuple(segment.statements),
                                 f"through time, t {direction}"))
        # after scheduling and fusion: the pass sees the loop bodies and the views as printed
        return common_subexpressions([*setup, *body], self.arrays, self.temporary, self.time)

    def output_quantities(self) -> tuple[str, ...]:
        """What ``predict`` returns: every intermediate the loss reads, in the model's order."""
        read = {q.name for q, _ in self.model.dependencies(self.model.loss_name)
                if q.role is Role.INTERMEDIATE}
        outputs = tuple(name for name in self.model.equations if name in read)
        if not outputs:
            raise LoweringError(f"model {self.model.name!r}: the loss reads no intermediate, "
                                f"so the kernels have no output to predict; write the loss "
                                f"in terms of the network's output (e.g. y[k])")
        return outputs

    # --- statements -------------------------------------------------------------------------

    def define(self, equation: Equation) -> list[Statement]:
        out = self.convert(equation.lhs)
        rhs = self.convert(equation.rhs)
        units = [i for i in equation.free if i != self.time]  # the last is a softmax's axis
        axis = units[-1] if units else None
        logits = _softmax_logits(rhs, axis)
        if logits is not None:
            assert axis is not None
            self.softmax_logits[equation.quantity.name] = (logits, axis)
            return [Softmax(out, logits, axis, False, str(equation))]
        if isinstance(rhs, logistic) and isinstance(out, Indexed):
            self.logistic_of[equation.quantity.name] = (out, rhs.args[0])
        return self.assign(out, rhs, str(equation))

    def lower_adjoint(self, lhs: Expr, expr: Expr, comment: str) -> list[Statement]:
        """An adjoint at every step t ∈ 1..T; its boundary conditions become guards."""
        if self.time is not None:
            expr = reduce_ranges(expr, {self.time: (self.time.lower, self.time.upper)})
        out = self.convert(lhs)
        statements: list[Statement] = []
        value = self.guard(self.convert(expr), ref_indices(out), statements)
        statements += self.assign(out, value, comment)
        return statements

    def guard(self, expr: Expr, context: tuple[Expr, ...], statements: list[Statement]) -> Expr:
        """Replace the terms under ``[lo ≤ t ≤ hi]`` (or under a condition on the sizes,
        ``[2 ≤ T]``) by guarded temporaries, one per condition."""
        if not expr.has(InRange):
            return expr
        if isinstance(expr, sympy.Add):
            groups: dict[tuple[Expr, Expr, Expr], list[Expr]] = {}
            rest = []
            for term in expr.args:
                condition, inner = self.condition(term)
                if condition is None:
                    rest.append(self.guard(term, context, statements))
                else:
                    groups.setdefault(condition, []).append(inner)
            for condition, terms in groups.items():
                rest.append(self.guarded(*condition, sympy.Add(*terms), context, statements))
            return sympy.Add(*rest)
        condition, inner = self.condition(expr)
        if condition is not None:
            return self.guarded(*condition, inner, context, statements)
        return expr.func(*(self.guard(a, context, statements) for a in expr.args))

    def condition(self, term: Expr) -> tuple[tuple[Expr, Expr, Expr] | None, Expr]:
        """``((v, lo, hi), rest)`` if ``term`` is ``[lo ≤ v ≤ hi]·rest`` for ``v`` the time
        index or an expression in the sizes alone (a condition on the sizes, ``[2 ≤ T]``,
        from a read two steps back); the time index first."""
        factors = sympy.Mul.make_args(term)
        ranges = [f for f in factors if isinstance(f, InRange)]
        on_time = [f for f in ranges if f.target == self.time]
        on_sizes = [f for f in ranges
                    if not any(isinstance(s, Idx) for s in f.target.free_symbols)]
        brackets = on_time or [f for f in on_sizes if f.target == on_sizes[0].target]
        if not brackets:
            return None, term
        lo = sympy.Max(*(b.args[1] for b in brackets))
        hi = sympy.Min(*(b.args[2] for b in brackets))
        return (brackets[0].target, lo, hi), sympy.Mul(*(f for f in factors
                                                         if f not in brackets))

    def guarded(self, value: Expr, lo: Expr, hi: Expr, expr: Expr, context: tuple[Expr, ...],
                statements: list[Statement]) -> Ref:
        on_time = value == self.time
        # over time even where the guarded terms are not (δ(t, T)·Σ_k w δ_k): the guard is
        indices = _indices(expr) | ({self.time} if on_time and self.time in context else set())
        temporary = self.temporary(_ordered(indices, context))
        body: list[Statement] = []
        self._assign(temporary, self.guard(expr, ref_indices(temporary), body), body)
        statements.append(Guarded(lo, hi, tuple(body), temporary,
                                  f"only where {lo} ≤ {value} ≤ {hi} (zero elsewhere)",
                                  None if on_time else value))
        return temporary

    def assign(self, out: Ref, expr: Expr, comment: str) -> list[Statement]:
        """Statements computing ``out = expr`` (summed over the batch if ``out`` has none)."""
        statements: list[Statement] = []
        self._assign(out, expr, statements)
        # the comment names the whole group: it goes on its last statement, the one that
        # writes ``out``
        return [*statements[:-1], dataclasses.replace(statements[-1], comment=comment)]

    def _assign(self, out: Ref, expr: Expr, statements: list[Statement]) -> None:
        value = self.stable(self.fuser.fuse_sums(expr), statements)
        if value.has(InRange):
            condition = next(iter(value.atoms(InRange)))
            on = [s for s in condition.args[0].free_symbols if isinstance(s, Idx)]
            what = (f"a range condition on the unit index {on[0]}" if on else
                    f"a condition on the sizes alone ({condition.args[1]} ≤ "
                    f"{condition.args[0]} ≤ {condition.args[2]})")
            raise LoweringError(f"model {self.model.name!r}: {out} = {value}: {what} is not "
                                f"supported by the kernels; the kernels take conditions on "
                                f"the time index only (such as t ≤ T - 1 or t = T)")
        if BATCH not in ref_indices(out) and _has_batch(value):
            value = _merge_sums(sympy.Sum(value, (BATCH, 0, BATCH_SIZE - 1)))
        if isinstance(value, sympy.Mul | sympy.Sum) or isinstance(value, Indexed):
            coefficient, inner = split_coefficient(value)
            if isinstance(inner, sympy.Sum):
                statements += self.contraction(inner, coefficient, out, "")
                return
        value = self.extract_sums(value, tuple(ref_indices(out)), statements)
        statements.append(Assign(out, value))

    def stable(self, expr: Expr, statements: list[Statement]) -> Expr:
        """``log`` of a softmax quantity → its stable log-softmax; ``log σ(u)`` →
        ``-softplus(-u)`` and ``log(1 - σ(u))`` → ``-softplus(u)``, for a logistic written
        inline or a quantity defined as one (a binary cross-entropy stays finite where
        σ(u) rounds to 0 or 1)."""

        def is_log_softmax(node: Expr) -> bool:
            return (isinstance(node, sympy.log) and isinstance(node.args[0], Indexed)
                    and str(node.args[0].base.label) in self.softmax_logits)

        def rewrite(node: sympy.log) -> Expr:
            ref = node.args[0]
            name = str(ref.base.label)
            if name not in self.log_softmax:
                logits, axis = self.softmax_logits[name]
                log_out = self.temporary(tuple(logits.indices))
                statements.append(Softmax(log_out, logits, axis, True, f"ln {name}, stable"))
                self.log_softmax[name] = log_out
            return self.log_softmax[name].base[ref.indices]

        expr = expr.replace(is_log_softmax, rewrite)
        return expr.replace(lambda e: isinstance(e, sympy.log) and
                            self.log_logistic(e.args[0]) is not None,
                            lambda e: self.log_logistic(e.args[0]))

    def log_logistic(self, argument: Expr) -> Expr | None:
        """``ln argument`` as a softplus when ``argument`` is ``σ(u)`` or ``1 - σ(u)``."""
        def logistic_argument(value: Expr) -> Expr | None:
            if isinstance(value, logistic):
                return value.args[0]
            if isinstance(value, Indexed) and str(value.base.label) in self.logistic_of:
                defined, u = self.logistic_of[str(value.base.label)]
                return u.xreplace(dict(zip(defined.indices, value.indices, strict=True)))
            return None

        u = logistic_argument(argument)
        if u is not None:
            return -softplus(-u)
        rest = argument - 1  # 1 - σ(u) → -σ(u)
        if isinstance(rest, sympy.Mul) and len(rest.args) == 2 and rest.args[0] == -1:
            u = logistic_argument(rest.args[1])
            if u is not None:
                return -softplus(u)
        return None

    def extract_sums(self, expr: Expr, context: tuple[Expr, ...],
                     statements: list[Statement]) -> Expr:
        """Replace each sum in ``expr`` by a temporary filled by a contraction."""
        if isinstance(expr, sympy.Sum):
            coefficient, inner = split_coefficient(_merge_sums(expr))
            free = _ordered(_indices(inner), context)
            temporary = self.temporary(free)
            statements += self.contraction(inner, sympy.S.One, temporary, "")
            return coefficient * temporary
        if not expr.args or isinstance(expr, Indexed | Idx):
            return expr
        return expr.func(*(self.extract_sums(arg, context, statements) for arg in expr.args))

    def contraction(self, total: sympy.Sum, coefficient: Expr, out: Ref,
                    comment: str) -> list[Statement]:
        statements: list[Statement] = []
        summed = tuple(v for v, _, _ in total.limits)
        body = self.extract_sums(total.function, (*ref_indices(out), *summed), statements)
        body_coefficient, body = split_coefficient(body)
        factors = sympy.Mul.make_args(body)
        refs = [f for f in factors if isinstance(f, Indexed)]
        others = [f for f in factors if not isinstance(f, Indexed)]
        if others:
            indices = _ordered(_indices(sympy.Mul(*others)), (*ref_indices(out), *summed))
            temporary = self.temporary(indices)
            statements.append(Assign(temporary, sympy.Mul(*others)))
            refs.append(temporary)
        statements.append(Contract(out, tuple(refs), coefficient * body_coefficient, comment))
        return statements


def _size(index: Idx) -> Expr:
    return sympy.simplify(index.upper - index.lower + 1)


def _indices(expr: Expr) -> set[Idx]:
    return {s for s in expr.free_symbols if isinstance(s, Idx)}


def _has_batch(expr: Expr) -> bool:
    return BATCH in expr.free_symbols


def _ordered(indices: set[Idx], context: tuple[Idx, ...]) -> tuple[Idx, ...]:
    """``indices`` in the order of ``context``, others after by name: stable axis orders."""
    first = [i for i in context if i in indices]
    rest = sorted((i for i in indices if i not in context), key=lambda i: i.name)
    return (*first, *rest)


def _merge_sums(expr: Expr) -> Expr:
    """``Σ_a c·Σ_b f`` → ``c·Σ_{a,b} f``, so one contraction does both."""
    if not isinstance(expr, sympy.Sum):
        return expr
    coefficient, inner = split_coefficient(_merge_sums(expr.function))
    if isinstance(inner, sympy.Sum):
        return coefficient * sympy.Sum(inner.function, *inner.limits, *expr.limits)
    return coefficient * sympy.Sum(inner, *expr.limits) if coefficient != 1 else expr


def _softmax_logits(rhs: Expr, axis: Idx | None) -> Indexed | None:
    """The logits ``u[..., k]`` if ``rhs`` is ``exp(u[..., k]) / Σ_k' exp(u[..., k'])``."""
    if axis is None or not isinstance(rhs, sympy.Mul) or len(rhs.args) != 2:
        return None
    numerator = [a for a in rhs.args if isinstance(a, sympy.exp)]
    denominator = [a for a in rhs.args if isinstance(a, sympy.Pow) and a.exp == -1]
    if len(numerator) != 1 or len(denominator) != 1:
        return None
    logits = numerator[0].args[0]
    total = denominator[0].base
    if not isinstance(logits, Indexed) or not isinstance(total, sympy.Sum):
        return None
    if len(total.limits) != 1:
        return None
    (variable, _, _) = total.limits[0]
    if total.function != sympy.exp(logits.xreplace({axis: variable})) or variable == axis:
        return None
    return logits

