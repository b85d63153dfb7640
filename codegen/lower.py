"""Lowering: Derivation → Plan.

Role in DESIGN.md's picture: the one place that turns equations into
statements. It adds the batch axis, makes every sum a contraction (a fresh
temporary, or the output itself when the sum is all there is), leaves the rest
elementwise, and rewrites two patterns for numerical stability wherever they
occur: a softmax definition ``exp(u_k)/Σ_k' exp(u_k')`` becomes a stable
softmax, and ``log`` of a softmax quantity becomes a log-softmax of its logits.
Parameter gradients and the loss sum over the batch (and time) in one
contraction each. It knows no network by name.
"""

from __future__ import annotations

import dataclasses

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase

from symbolic import Derivation, Role
from symbolic.model import Equation, Model, Quantity

from .plan import (
    BATCH,
    BATCH_SIZE,
    Array,
    Assign,
    Contract,
    Kind,
    OneHot,
    Plan,
    Ref,
    Softmax,
    Statement,
    ref_indices,
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
        self.arrays: dict[str, Array] = {}
        self.temporaries = 0
        self.softmax_logits: dict[str, tuple[Indexed, Idx]] = {}
        self.log_softmax: dict[str, Indexed] = {}
        if self.model.time_index is not None:
            raise LoweringError(f"model {self.model.name!r}: kernels over time are not "
                                f"supported yet")

    # --- arrays -----------------------------------------------------------------------------

    def declare(self, name: str, axes: tuple[sympy.Symbol, ...], kind: Kind,
                quantity: str | None = None) -> None:
        self.arrays[name] = Array(name, axes, kind, quantity)

    def per_example(self, quantity: Quantity) -> tuple[sympy.Symbol, ...]:
        return (BATCH_SIZE, *quantity.sizes)

    def temporary(self, indices: tuple[Idx, ...]) -> Ref:
        name = f"t{self.temporaries}"
        self.temporaries += 1
        self.declare(name, tuple(_size(i) for i in indices), Kind.TEMPORARY)
        return IndexedBase(name)[indices] if indices else sympy.Symbol(name)

    def convert(self, expr: Expr) -> Expr:
        """Model refs → plan refs: per-example arrays gain the batch index."""

        def to_plan(ref: Indexed) -> Expr:
            name = str(ref.base.label)
            array = self.arrays.get(name)
            if array is None:
                raise LoweringError(f"no array for {ref}")
            if array.axes and array.axes[0] == BATCH_SIZE:
                return IndexedBase(name)[(BATCH, *ref.indices)]
            return ref

        return expr.replace(lambda e: isinstance(e, Indexed), to_plan)

    # --- the run ----------------------------------------------------------------------------

    def run(self) -> Plan:
        model = self.model
        inputs = model.of_role(Role.INPUT)
        targets = model.of_role(Role.TARGET)
        if len(inputs) != 1 or len(inputs[0].sizes) != 1:
            raise LoweringError(f"model {model.name!r}: the kernels take one input vector "
                                f"per example, found {[q.name for q in inputs]}")
        if len(targets) != 1 or not targets[0].one_hot or len(targets[0].sizes) != 1:
            raise LoweringError(f"model {model.name!r}: the kernels take one one-hot target "
                                f"(class labels), found {[q.name for q in targets]}")
        for quantity in model.quantities.values():
            if quantity.role in (Role.INPUT, Role.TARGET, Role.INTERMEDIATE):
                self.declare(quantity.name, self.per_example(quantity), Kind.FORWARD
                             if quantity.role is Role.INTERMEDIATE else Kind(quantity.role.value),
                             quantity.name)
            elif quantity.role is Role.PARAMETER:
                self.declare(quantity.name, quantity.sizes, Kind.PARAMETER, quantity.name)
        for adjoint in self.derivation.named:
            self.declare(adjoint.name, self.per_example(adjoint.quantity), Kind.ADJOINT,
                         adjoint.quantity.name)
        gradients = {}
        for name, adjoint in self.derivation.gradients.items():
            self.declare(adjoint.name, adjoint.quantity.sizes, Kind.GRADIENT, name)
            gradients[name] = adjoint.name
        loss_name = model.loss_name
        self.declare(loss_name, (), Kind.FORWARD, loss_name)

        target = targets[0]
        forward: list[Statement] = []
        for name in model.evaluation_order():
            forward += self.define(model.equations[name])
        output = self.output_quantity()
        loss_statements: list[Statement] = [
            OneHot(IndexedBase(target.name)[BATCH, self.unit(target)], self.unit(target),
                   "one-hot targets from the labels")]
        assert model.loss_equation is not None
        loss_statements += self.assign(sympy.Symbol(loss_name), model.loss_equation.rhs,
                                       f"loss {loss_name}, summed over the batch")
        backward: list[Statement] = []
        for adjoint in self.derivation.named:
            out = self.convert(adjoint.lhs)
            backward += self.assign(out, adjoint.expr,
                                    f"{adjoint.name} = ∂L/∂{adjoint.quantity.name}")
        gradient_statements: list[Statement] = []
        for adjoint in self.derivation.gradients.values():
            gradient_statements += self.assign(adjoint.lhs, adjoint.expr,
                                               f"∂L/∂{adjoint.quantity.name}")
        return Plan(
            name=model.name, title=model.title, source=self.source,
            sizes=tuple(s for s in model.sizes.values()),
            arrays=self.arrays, input=inputs[0].name, target=target.name, output=output,
            loss=loss_name,
            parameters={q.name: q.sizes for q in model.of_role(Role.PARAMETER)},
            states={}, gradients=gradients,
            forward=forward, loss_statements=loss_statements, backward=backward,
            gradient_statements=gradient_statements)

    def unit(self, quantity: Quantity) -> Idx:
        return self.model.primary_index(quantity.sizes[0])

    def output_quantity(self) -> str:
        read_by_loss = {q.name for q, _ in self.model.dependencies(self.model.loss_name)}
        outputs = [name for name in self.softmax_logits if name in read_by_loss]
        if len(outputs) != 1:
            raise LoweringError(f"model {self.model.name!r}: the loss must read one softmax "
                                f"output (y_k = exp(a_k)/Σ exp(a_k')); found "
                                f"{outputs or 'none'}")
        return outputs[0]

    # --- statements -------------------------------------------------------------------------

    def define(self, equation: Equation) -> list[Statement]:
        out = self.convert(equation.lhs)
        rhs = self.convert(equation.rhs)
        logits = _softmax_logits(rhs, equation.free)
        if logits is not None:
            name = equation.quantity.name
            self.softmax_logits[name] = (logits, equation.free[-1])
            return [Softmax(out, logits, equation.free[-1], False, str(equation))]
        return self.assign(out, equation.rhs, str(equation))

    def assign(self, out: Ref, expr: Expr, comment: str) -> list[Statement]:
        """Statements computing ``out = expr`` (summed over the batch if ``out`` has none)."""
        statements: list[Statement] = []
        self._assign(out, expr, statements)
        # the comment names the whole group: it goes on its first statement
        return [dataclasses.replace(statements[0], comment=comment),
                *(dataclasses.replace(s, comment="") for s in statements[1:])]

    def _assign(self, out: Ref, expr: Expr, statements: list[Statement]) -> None:
        value = self.stable(self.convert(expr), statements)
        if BATCH not in ref_indices(out) and _has_batch(value):
            value = _merge_sums(sympy.Sum(value, (BATCH, 0, BATCH_SIZE - 1)))
        if isinstance(value, sympy.Mul | sympy.Sum) or isinstance(value, Indexed):
            coefficient, inner = _split_coefficient(value)
            if isinstance(inner, sympy.Sum):
                statements += self.contraction(inner, coefficient, out, "")
                return
        value = self.extract_sums(value, tuple(ref_indices(out)), statements)
        statements.append(Assign(out, value))

    def stable(self, expr: Expr, statements: list[Statement]) -> Expr:
        """``log(y[e])`` of a softmax quantity ``y`` → its stable log-softmax."""

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

        return expr.replace(is_log_softmax, rewrite)

    def extract_sums(self, expr: Expr, context: tuple[Idx, ...],
                     statements: list[Statement]) -> Expr:
        """Replace each sum in ``expr`` by a temporary filled by a contraction."""
        if isinstance(expr, sympy.Sum):
            coefficient, inner = _split_coefficient(_merge_sums(expr))
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
        body_coefficient, body = _split_coefficient(body)
        factors = sympy.Mul.make_args(body)
        refs = [f for f in factors if isinstance(f, Indexed)]
        others = [f for f in factors if not isinstance(f, Indexed)]
        if others:
            indices = _ordered(_indices(sympy.Mul(*others)), (*ref_indices(out), *summed))
            temporary = self.temporary(indices)
            statements.append(Assign(temporary, sympy.Mul(*others)))
            refs.append(temporary)
        statements.append(Contract(out, tuple(refs), coefficient * body_coefficient, False,
                                   comment))
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


def _split_coefficient(expr: Expr) -> tuple[Expr, Expr]:
    """``(c, rest)`` with ``c`` free of every index (numbers, sizes)."""
    if isinstance(expr, sympy.Mul):
        constant = [f for f in expr.args if not _indices(f)]
        rest = [f for f in expr.args if _indices(f)]
        return sympy.Mul(*constant), sympy.Mul(*rest)
    return sympy.S.One, expr


def _merge_sums(expr: Expr) -> Expr:
    """``Σ_a c·Σ_b f`` → ``c·Σ_{a,b} f``, so one contraction does both."""
    if not isinstance(expr, sympy.Sum):
        return expr
    coefficient, inner = _split_coefficient(_merge_sums(expr.function))
    if isinstance(inner, sympy.Sum):
        return coefficient * sympy.Sum(inner.function, *inner.limits, *expr.limits)
    return coefficient * sympy.Sum(inner, *expr.limits) if coefficient != 1 else expr


def _softmax_logits(rhs: Expr, free: tuple[Idx, ...]) -> Indexed | None:
    """The logits ``u[..., k]`` if ``rhs`` is ``exp(u[..., k]) / Σ_k' exp(u[..., k'])``."""
    if not free or not isinstance(rhs, sympy.Mul) or len(rhs.args) != 2:
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
    (variable, _, _), axis = total.limits[0], free[-1]
    if total.function != sympy.exp(logits.xreplace({axis: variable})) or variable == axis:
        return None
    return logits

