"""The checks of a Model: names, sizes, roles, shapes, LaTeX text and equations.

Role in DESIGN.md's picture: the validation of the first stage, apart from the
class that holds the declarations (``model.py``). :class:`~symbolic.model.Model`
calls these when something is declared or defined, and :func:`validate` for the
whole model (``derive()`` calls it through ``Model.validate``); each problem
raises :class:`~symbolic.model_types.ModelError` naming the name or the equation
and what was expected.

Every name is checked against the rule and the reserved list of ``names.py`` (so
that it is a safe identifier in every generated file), against the names already
declared, and against the adjoints the generated code will name after the
quantities (``names.adjoint_name``). The checks read a model through
:class:`ModelView`, the queries of ``Model`` they need, so this module does not
import ``model.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase, Symbol

from .functions import MissingDerivativeRule, rule_for
from .latex_text import LatexTextError, check_latex
from .model_types import WITH_ADJOINT, Equation, ModelError, Quantity, Role
from .names import adjoint_name, c_functions, quantity_of_adjoint, refusal


class ModelView(Protocol):
    """What the checks read of a model: its declarations and a few of its queries."""

    name: str
    sizes: dict[str, Symbol]
    indices: dict[str, Idx]
    time_index: Idx | None
    quantities: dict[str, Quantity]
    equations: dict[str, Equation]
    loss_equation: Equation | None

    @property
    def loss_name(self) -> str: ...

    def kind_of(self, name: str) -> str | None: ...

    def find_quantity(self, name_or_base: str | IndexedBase) -> Quantity | None: ...

    def references(self, expr: Expr) -> Iterator[Indexed]: ...

    def dependencies(self, name: str) -> list[tuple[Quantity, bool]]: ...

    def evaluation_order(self) -> list[str]: ...

    def state_for(self, quantity: Quantity) -> Quantity | None: ...

    def shifts(self, quantity: Quantity) -> set[int]: ...

    def time_shift(self, ref: Indexed) -> int | None: ...


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


# --- names, sizes and declarations ------------------------------------------------------------


def checked_latex(text: object, what: str) -> str | None:
    """``text`` if it is None or a safe math symbol's TeX (``latex_text.py``); else ModelError."""
    if text is None:
        return None
    try:
        return check_latex(text, what)
    except LatexTextError as error:
        raise ModelError(str(error)) from None


def check_model_name(name: str) -> None:
    """Refuse a model name that is no safe identifier."""
    why = refusal(name)
    if why is not None:
        raise ModelError(f"model name {name!r} {why}")


def check_new_name(model: ModelView, name: str, kind: str, *, role: Role | None = None) -> None:
    """Refuse a name that is no safe identifier, is taken, or is a generated adjoint's."""
    functions = frozenset(c_functions(model.name))
    why = refusal(name, size=kind == "size")
    if why is None and name in functions:
        why = (f"is reserved: {name!r} is a function of the generated C of model "
               f"{model.name!r}")
    if why is not None:
        raise ModelError(f"{kind} name {name!r} {why}")
    taken = model.kind_of(name)
    if taken is not None:
        raise ModelError(f"{kind} name {name!r} is already used by {_a(taken)}")
    adjointed = quantity_of_adjoint(name)
    owner = model.quantities.get(adjointed) if adjointed is not None else None
    if owner is not None and owner.role in WITH_ADJOINT:
        what = "adjoint" if owner.role is Role.INTERMEDIATE else "gradient"
        raise ModelError(f"{kind} name {name!r} is reserved: the generated code stores "
                         f"∂L/∂{owner.name}, the {what} of the {owner.role.value} "
                         f"{owner.name!r}, as {name!r}")
    adjoint = adjoint_name(name)
    adjoint_kind = model.kind_of(adjoint)
    if role in WITH_ADJOINT and (adjoint_kind is not None or adjoint in functions):
        what = _a(adjoint_kind) if adjoint_kind is not None else \
            f"a function of the generated C of model {model.name!r}"
        raise ModelError(f"{kind} name {name!r} cannot be used: the generated code would "
                         f"store ∂L/∂{name} as {adjoint!r}, which is already the name of "
                         f"{what}; rename one of them")


def check_size(model: ModelView, size: object, what: str) -> None:
    """Refuse anything but a size the model declared."""
    # == and not `is`: SymPy may hand back an equal Symbol that is another object
    if not isinstance(size, Symbol) or model.sizes.get(size.name) != size:
        known = ", ".join(model.sizes) or "none yet"
        raise ModelError(f"{what}: {size!r} is not a size of this model (sizes: {known}); "
                         f"declare it with Model.size()")


def check_time(model: ModelView) -> None:
    """Refuse a second time index."""
    if model.time_index is not None:
        raise ModelError(f"model {model.name!r} already has a time index "
                         f"{model.time_index.name!r}; a model has at most one")


def check_declaration(model: ModelView, name: str, role: Role, sizes: Sequence[Symbol],
                      time: bool) -> tuple[Symbol, ...]:
    """Check a quantity about to be declared: its name, its sizes and its time axis."""
    check_new_name(model, name, role.value, role=role)
    sizes = tuple(sizes)
    for size in sizes:
        check_size(model, size, f"{role.value} {name!r}")
    if time and model.time_index is None:
        raise ModelError(f"{role.value} {name!r} is indexed by time, but the model has no "
                         f"time index; declare one with Model.time()")
    return sizes


def check_state(model: ModelView, name: str, owner: Quantity) -> None:
    """Check that ``owner`` can take the initial state ``name``."""
    if model.time_index is None or not owner.time:
        raise ModelError(f"state {name!r}: {owner.name!r} is not indexed by time; "
                         f"only a quantity with a time index has an initial state")
    if any(q.state_of == owner.name for q in model.quantities.values()):
        raise ModelError(f"state {name!r}: {owner.name!r} already has an initial state")


def quantity_of(model: ModelView, base: object, where: str) -> Quantity:
    """The quantity ``base`` (an IndexedBase) stands for; ModelError if the model has none."""
    quantity = model.find_quantity(base) if isinstance(base, IndexedBase) else None
    if quantity is None:
        known = ", ".join(model.quantities) or "none"
        raise ModelError(f"{where}: {base} is not a quantity of model {model.name!r} "
                         f"(quantities: {known})")
    return quantity


# --- equations ----------------------------------------------------------------------------------


def check_definition(model: ModelView, lhs: object, rhs: Expr) -> Quantity:
    """Check the equation ``lhs = rhs`` defining an intermediate; returns the intermediate."""
    if not isinstance(lhs, Indexed):
        raise ModelError(f"equation {sympy.sstr(lhs)} = {sympy.sstr(rhs)}: the left side must "
                         f"be an intermediate with its indices, e.g. a[h]")
    quantity = quantity_of(model, lhs.base, f"equation {sympy.sstr(lhs)}")
    where = f"equation {sympy.sstr(lhs)} = {sympy.sstr(rhs)}"
    if quantity.role is not Role.INTERMEDIATE:
        raise ModelError(f"{where}: {quantity.name!r} is a {quantity.role.value}; "
                         f"only intermediates are defined by equations")
    if quantity.name in model.equations:
        raise ModelError(f"{where}: {quantity.name!r} is defined twice (first: "
                         f"{model.equations[quantity.name]})")
    _check_lhs(model, lhs, quantity, where)
    _check_rhs(model, rhs, set(lhs.indices), where)
    return quantity


def check_loss(model: ModelView, name: str, rhs: Expr) -> None:
    """Check the loss ``name = rhs``: set once, a new name, a scalar."""
    where = f"loss {name} = {sympy.sstr(rhs)}"
    if model.loss_equation is not None:
        raise ModelError(f"{where}: the loss is defined twice (first: {model.loss_equation})")
    check_new_name(model, name, "loss")
    _check_rhs(model, rhs, set(), where, scalar=True)


def _expected_ranges(model: ModelView, quantity: Quantity) -> list[tuple[Expr, Expr]]:
    ranges = [(sympy.S.Zero, size - 1) for size in quantity.sizes]
    if quantity.time:
        assert model.time_index is not None
        ranges.append((model.time_index.lower, model.time_index.upper))
    return ranges


def _shape_text(quantity: Quantity) -> str:
    axes = [s.name for s in quantity.sizes] + (["T"] if quantity.time else [])
    return ", ".join(axes) if axes else "a scalar"


def _example_index(model: ModelView, lo: Expr, hi: Expr) -> str:
    for index in model.indices.values():
        if (index.lower, index.upper) == (lo, hi):
            return index.name
    return "an index declared with Model.index()"


def _check_lhs(model: ModelView, lhs: Indexed, quantity: Quantity, where: str) -> None:
    indices = lhs.indices
    if len(indices) != quantity.rank:
        raise ModelError(f"{where}: {quantity.name!r} takes {quantity.rank} indices "
                         f"({_shape_text(quantity)}), got {len(indices)}")
    for position, (index, (lo, hi)) in enumerate(zip(indices, _expected_ranges(model, quantity),
                                                     strict=True)):
        if not isinstance(index, Idx) or model.indices.get(index.name) != index:
            raise ModelError(f"{where}: index {index} on the left side must be a plain index "
                             f"of the model (e.g. {_example_index(model, lo, hi)})")
        if (index.lower, index.upper) != (lo, hi):
            raise ModelError(f"{where}: index {index} runs over {index.lower}..{index.upper} "
                             f"but axis {position} of {quantity.name!r} runs over {lo}..{hi}")
    if len(set(indices)) != len(indices):
        raise ModelError(f"{where}: an index appears twice on the left side")


def _check_rhs(model: ModelView, rhs: Expr, free: set[Idx], where: str, *,
               scalar: bool = False) -> set[Idx]:
    """Walk ``rhs``: known quantities, bound indices in range, functions with rules."""
    used_free: set[Idx] = set()

    def walk(node: Expr, bound: frozenset[Idx]) -> None:
        if isinstance(node, sympy.Sum):
            inner = set(bound)
            for limit in node.limits:
                index, lo, hi = limit
                if not isinstance(index, Idx) or model.indices.get(index.name) != index:
                    raise ModelError(f"{where}: sum over {index}, which is not an index of "
                                     f"the model (indices: {', '.join(model.indices)})")
                if (lo, hi) != (index.lower, index.upper):
                    raise ModelError(f"{where}: the sum over {index} runs over {lo}..{hi}; "
                                     f"sums run over the index's whole range "
                                     f"{index.lower}..{index.upper}")
                if index in free or index in bound:
                    raise ModelError(f"{where}: the sum over {index} reuses an index that "
                                     f"is already in scope; use another index of the same "
                                     f"range (e.g. a primed copy)")
                inner.add(index)
            walk(node.function, frozenset(inner))
            return
        if isinstance(node, Indexed):
            _check_reference(model, node, free | bound, where, used_free, scalar)
            return
        if isinstance(node, sympy.Function):
            try:
                rule_for(type(node))
            except MissingDerivativeRule as error:
                raise ModelError(f"{where}: {error}") from None
            if len(node.args) != 1:
                raise ModelError(f"{where}: {node.func} takes one argument")
        elif isinstance(node, Idx):
            raise ModelError(f"{where}: the index {node} is used as a value; indices may "
                             f"only subscript quantities")
        elif isinstance(node, Symbol):
            if model.sizes.get(node.name) != node:
                raise ModelError(f"{where}: unknown symbol {node}; a value must be a "
                                 f"quantity with its indices, a size or a number")
        elif not isinstance(node, sympy.Add | sympy.Mul | sympy.Pow | sympy.Number
                            | sympy.NumberSymbol):
            raise ModelError(f"{where}: {type(node).__name__} ({node}) is not allowed in an "
                             f"equation; use + - * / **, sums and functions with rules")
        for arg in node.args:
            walk(arg, bound)

    walk(rhs, frozenset())
    return used_free


def _check_reference(model: ModelView, ref: Indexed, scope: set[Idx], where: str,
                     used: set[Idx], scalar: bool) -> None:
    unbound = ("the loss must be a scalar, so every index is summed over"
               if scalar else "bind it on the left side or sum over it")
    quantity = quantity_of(model, ref.base, where)
    if quantity.role in (Role.LOSS, Role.STATE):
        raise ModelError(f"{where}: {quantity.name!r} ({quantity.role.value}) cannot be read "
                         f"by an equation"
                         + (f"; read {quantity.state_of}[..., t-1] instead"
                            if quantity.state_of else ""))
    if len(ref.indices) != quantity.rank:
        raise ModelError(f"{where}: {quantity.name!r} takes {quantity.rank} indices "
                         f"({_shape_text(quantity)}), got {len(ref.indices)} in {ref}")
    ranges = _expected_ranges(model, quantity)
    for position, (index, (lo, hi)) in enumerate(zip(ref.indices, ranges, strict=True)):
        is_time = quantity.time and position == len(ranges) - 1
        if is_time:
            t = model.time_index
            if index == t:
                used.add(t)
                if t not in scope:
                    raise ModelError(f"{where}: the time index {t} in {ref} is not bound; "
                                     f"{unbound}")
                continue
            shift = sympy.expand(index - t)
            if shift.is_Integer and shift != 0:
                if t not in scope:
                    raise ModelError(f"{where}: the time index {t} in {ref} is not bound; "
                                     f"{unbound}")
                if quantity.role is not Role.INTERMEDIATE:
                    step = f"{t}{int(shift):+d}"
                    raise ModelError(f"{where}: {ref} reads the {quantity.role.value} "
                                     f"{quantity.name!r} at {step}; only intermediates with "
                                     f"an initial state may be read at another step")
                used.add(t)
                continue
            if index == t.upper:
                if t in scope:
                    raise ModelError(f"{where}: {ref} reads the last step {t.upper} inside an "
                                     f"equation over {t}; read {t} or {t}-1 there, or read "
                                     f"{t.upper} from an equation without {t} (or the loss)")
                continue
            raise ModelError(f"{where}: time index {index} in {ref}: expected {t}, {t}-1, "
                             f"{t}+1, or the last step {t.upper} (a quantity may read the "
                             f"previous or the next step, not others)")
        if not isinstance(index, Idx):
            raise ModelError(f"{where}: index {index} in {ref}: unit axes take a plain index, "
                             f"no arithmetic")
        if model.indices.get(index.name) != index or index == model.time_index:
            raise ModelError(f"{where}: {index} in {ref} is not a unit index of the model")
        if index not in scope:
            raise ModelError(f"{where}: index {index} in {ref} is not bound; {unbound}")
        if (index.lower, index.upper) != (lo, hi):
            raise ModelError(f"{where}: index {index} ({index.lower}..{index.upper}) used for "
                             f"axis {position} of {quantity.name!r}, which runs over "
                             f"{lo}..{hi}")
        used.add(index)


# --- the whole model ------------------------------------------------------------------------------


def validate(model: ModelView) -> None:
    """Whole-model checks: every intermediate defined, a loss, no cycle, initial states."""
    for q in model.quantities.values():
        if q.role is Role.INTERMEDIATE and q.name not in model.equations:
            users = [str(e) for e in model.equations.values()
                     if any(r.base == q.base for r in model.references(e.rhs))]
            used = f" but used in: {'; '.join(users)}" if users else ""
            raise ModelError(f"intermediate {q.name!r} is declared{used}, and never defined; "
                             f"add an equation with Model.define({q.name}[...], ...)")
    if model.loss_equation is None:
        raise ModelError(f"model {model.name!r} has no loss; set one with Model.loss(...)")
    model.evaluation_order()  # raises on a cycle
    _check_every_intermediate_is_read(model)
    for q in model.quantities.values():
        if q.role is Role.INTERMEDIATE and q.time:
            shifts = model.shifts(q)
            if any(s < 0 for s in shifts) and any(s > 0 for s in shifts):
                raise ModelError(f"{q.name!r} is read at t-1 and at t+1 (steps "
                                 f"{', '.join(f't{s:+d}' for s in sorted(shifts))}): a "
                                 f"quantity runs forward or backward in time, not both; "
                                 f"split it in two")
            if shifts and model.state_for(q) is None:
                ahead = max(shifts) > 0
                step = "t+1" if ahead else "t-1"
                at = "t = T+1" if ahead else "t = 0"
                raise ModelError(f"{q.name!r} is read at {step} but has no initial state "
                                 f"(its value at {at}); declare one with "
                                 f"Model.state('...', of={q.name})")
    _check_one_direction_per_recurrence(model)


def _check_one_direction_per_recurrence(model: ModelView) -> None:
    """Quantities that read each other (a recurrence through several equations) must all
    read earlier steps or all later ones: ``a^t`` from ``b^{t-1}`` and ``b^t`` from
    ``a^{t+1}`` have no order of the steps that computes them."""
    reads: dict[str, set[tuple[str, int]]] = {}
    for name, equation in model.equations.items():
        for ref in model.references(equation.rhs):
            read = model.find_quantity(ref.base)
            if read is not None and read.name in model.equations:
                reads.setdefault(name, set()).add((read.name, model.time_shift(ref) or 0))

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for other, _ in reads.get(todo.pop(), ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return seen

    reach = {name: reachable(name) for name in model.equations}
    for name in model.equations:
        group = {other for other in reach[name] if name in reach[other]}
        offsets = {shift for member in group for other, shift in reads.get(member, ())
                   if other in group and shift}
        if any(s < 0 for s in offsets) and any(s > 0 for s in offsets):
            raise ModelError(
                f"the recurrence through {', '.join(sorted(group))} reads both earlier and "
                f"later steps ({', '.join(f't{s:+d}' for s in sorted(offsets))}): no order of "
                f"the steps computes it; a recurrence runs forward or backward in time")


def _check_every_intermediate_is_read(model: ModelView) -> None:
    """An intermediate that no equation (nor the loss) reads has no adjoint and no place in
    the kernels' schedule; it happens when SymPy cancels the only read (``0*v``, ``v - v``,
    ``logistic(v - v)`` become numbers as they are written)."""
    read = {dep.name for name in [*model.equations, model.loss_name]
            for dep, _ in model.dependencies(name)}
    for q in model.quantities.values():
        if q.role is Role.INTERMEDIATE and q.name not in read:
            raise ModelError(
                f"intermediate {q.name!r} is defined but nothing reads it: no equation and not "
                f"the loss depends on it (a read that cancels, such as 0*{q.name} or "
                f"{q.name} - {q.name}, is simplified away as it is written); remove it, or "
                f"use it in an equation")


__all__ = ["ModelView", "check_declaration", "check_definition", "check_loss",
           "check_model_name", "check_new_name", "check_size", "check_state", "check_time",
           "checked_latex", "quantity_of", "validate"]
