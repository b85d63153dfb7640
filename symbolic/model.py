"""The model API: sizes, indices, named quantities with roles, equations in index notation.

Role in DESIGN.md's picture: the first stage. A :class:`Model` holds what a user
writes down about one example of a network (the batch is implicit) and is the
only input of ``derive()``. The built-in networks and TOML specs both build
Models through this public API.

Every name is checked once, when it is declared, against the rule and the
reserved list of ``names.py`` (so that it is a safe identifier in every generated
file), against the names already declared, and against the adjoints the
generated code will name after the quantities (``d_<q>``). Every equation is
checked when it is added, and the whole model when :meth:`Model.validate` runs
(``derive()`` calls it); each problem raises :class:`ModelError` naming the name
or the equation and what was expected.

Conventions: unit indices run ``0..N-1`` for a size ``N``; the one optional time
index runs ``1..T``; an equation may read a quantity at ``t-1``, and the value of
a recurrent quantity at ``t = 0`` is a STATE quantity declared with
:meth:`Model.state`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase, Symbol

from .functions import MissingDerivativeRule, rule_for
from .latex_text import LatexTextError, check_latex
from .names import ADJOINT_PREFIX, adjoint_name, c_functions, refusal


class ModelError(ValueError):
    """A model is malformed; the message names the equation and what is wrong."""


class Role(enum.Enum):
    INPUT = "input"
    TARGET = "target"
    PARAMETER = "parameter"
    STATE = "state"
    INTERMEDIATE = "intermediate"
    LOSS = "loss"


@dataclass(frozen=True)
class Quantity:
    """A named array of the model, per example: ``sizes`` are its unit axes, ``time`` adds t."""

    name: str
    role: Role
    sizes: tuple[Symbol, ...]
    time: bool
    latex: str
    base: IndexedBase = field(compare=False, repr=False)
    adjoint_latex: str | None = None
    state_of: str | None = None
    one_hot: bool = False

    @property
    def rank(self) -> int:
        return len(self.sizes) + (1 if self.time else 0)


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs``: the definition of one intermediate (or of the loss, whose lhs is a Symbol)."""

    quantity: Quantity
    lhs: Expr
    rhs: Expr

    @property
    def free(self) -> tuple[Idx, ...]:
        return tuple(self.lhs.indices) if isinstance(self.lhs, Indexed) else ()

    def __str__(self) -> str:
        return f"{sympy.sstr(self.lhs)} = {sympy.sstr(self.rhs)}"


#: The roles whose quantities get an adjoint (or gradient) array ``d_<name>``.
_WITH_ADJOINT = (Role.INTERMEDIATE, Role.PARAMETER, Role.STATE)


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _checked_latex(text: object, what: str) -> str | None:
    """``text`` if it is None or a safe math symbol's TeX (``latex_text.py``); else ModelError."""
    if text is None:
        return None
    try:
        return check_latex(text, what)
    except LatexTextError as error:
        raise ModelError(str(error)) from None


def _size_of(index: Idx) -> Expr:
    """The size an index runs over: ``hi - lo + 1`` (``N`` for ``0..N-1``, ``T`` for ``1..T``)."""
    return sympy.simplify(index.upper - index.lower + 1)


class Model:
    """A network written in index notation, per example. See the module docstring."""

    def __init__(self, name: str, *, description: str = "", title: str | None = None) -> None:
        why = refusal(name, input=True)  # x is reserved as an argument, not as a file name
        if why is not None:
            raise ModelError(f"model name {name!r} {why}")
        self.name = name
        self._c_functions = frozenset(c_functions(name))
        #: every name declared (sizes, indices, quantities, the loss) → its kind
        self._kinds: dict[str, str] = {}
        self.description = description
        self.title = title or name
        self.sizes: dict[str, Symbol] = {}
        self.indices: dict[str, Idx] = {}
        self.index_latex: dict[str, str] = {}
        self.time_index: Idx | None = None
        self.quantities: dict[str, Quantity] = {}
        self.equations: dict[str, Equation] = {}
        self.loss_equation: Equation | None = None
        self._by_base: dict[IndexedBase, Quantity] = {}

    # --- declarations -----------------------------------------------------------------------

    def size(self, name: str) -> Symbol:
        """Declare a size, e.g. ``I``; a positive integer symbol."""
        self._check_new_name(name, "size")
        symbol = Symbol(name, integer=True, positive=True)
        self.sizes[name] = symbol
        self._kinds[name] = "size"
        return symbol

    def index(self, name: str, size: Symbol, *, latex: str | None = None) -> Idx:
        """Declare a unit index ``name ∈ 0..size-1``."""
        self._check_new_name(name, "index")
        self._check_size(size, f"index {name!r}")
        index = Idx(name, (0, size - 1))
        self.indices[name] = index
        self._kinds[name] = "index"
        self.index_latex[name] = _checked_latex(latex, f"index {name!r}: latex") or name
        return index

    def time(self, name: str = "t", size: str = "T") -> Idx:
        """Declare the model's one time index ``name ∈ 1..size``; equations may read ``t-1``."""
        if self.time_index is not None:
            raise ModelError(f"model {self.name!r} already has a time index "
                             f"{self.time_index.name!r}; a model has at most one")
        T = self.size(size)
        self._check_new_name(name, "index")
        index = Idx(name, (1, T))
        self.indices[name] = index
        self._kinds[name] = "index"
        self.index_latex[name] = name
        self.time_index = index
        return index

    def input(self, name: str, sizes: Sequence[Symbol], *, time: bool = False,
              latex: str | None = None) -> IndexedBase:
        """Declare an input such as ``x``."""
        return self._declare(name, Role.INPUT, sizes, time, latex)

    def target(self, name: str, sizes: Sequence[Symbol], *, time: bool = False,
               latex: str | None = None, one_hot: bool = True) -> IndexedBase:
        """Declare a target such as ``z``; one-hot targets give the identity ``Σ_k z_k = 1``."""
        return self._declare(name, Role.TARGET, sizes, time, latex, one_hot=one_hot)

    def parameter(self, name: str, sizes: Sequence[Symbol], *,
                  latex: str | None = None) -> IndexedBase:
        """Declare a trainable parameter such as ``W_xh``; the derivation yields its gradient."""
        return self._declare(name, Role.PARAMETER, sizes, False, latex)

    def intermediate(self, name: str, sizes: Sequence[Symbol], *, time: bool = False,
                     latex: str | None = None, adjoint: str | None = None) -> IndexedBase:
        """Declare an intermediate; define it with :meth:`define`.

        ``adjoint`` is the LaTeX symbol of ∂L/∂(this), e.g. ``\\delta`` or ``\\epsilon_s``.
        """
        return self._declare(name, Role.INTERMEDIATE, sizes, time, latex, adjoint_latex=adjoint)

    def state(self, name: str, of: IndexedBase, *, latex: str | None = None) -> IndexedBase:
        """Declare the initial value (t = 0) of the recurrent intermediate ``of``, e.g. ``h0``."""
        owner = self._quantity_of(of, f"state {name!r}")
        if self.time_index is None or not owner.time:
            raise ModelError(f"state {name!r}: {owner.name!r} is not indexed by time; "
                             f"only a quantity with a time index has an initial state")
        if any(q.state_of == owner.name for q in self.quantities.values()):
            raise ModelError(f"state {name!r}: {owner.name!r} already has an initial state")
        return self._declare(name, Role.STATE, owner.sizes, False, latex, state_of=owner.name)

    def define(self, lhs: Indexed, rhs: Expr) -> Equation:
        """Add the equation defining an intermediate, e.g. ``a[h] = Σ_i W[i,h] x[i] + b[h]``."""
        rhs = sympy.sympify(rhs)
        if not isinstance(lhs, Indexed):
            raise ModelError(f"equation {sympy.sstr(lhs)} = {sympy.sstr(rhs)}: the left side must "
                             f"be an intermediate with its indices, e.g. a[h]")
        quantity = self._quantity_of(lhs.base, f"equation {sympy.sstr(lhs)}")
        where = f"equation {sympy.sstr(lhs)} = {sympy.sstr(rhs)}"
        if quantity.role is not Role.INTERMEDIATE:
            raise ModelError(f"{where}: {quantity.name!r} is a {quantity.role.value}; "
                             f"only intermediates are defined by equations")
        if quantity.name in self.equations:
            raise ModelError(f"{where}: {quantity.name!r} is defined twice (first: "
                             f"{self.equations[quantity.name]})")
        self._check_lhs(lhs, quantity, where)
        self._check_rhs(rhs, set(lhs.indices), where, defining=quantity)
        equation = Equation(quantity, lhs, rhs)
        self.equations[quantity.name] = equation
        return equation

    def loss(self, rhs: Expr, *, name: str = "L", latex: str = "L") -> Symbol:
        """Set the per-example loss, a scalar: every index must be summed over."""
        rhs = sympy.sympify(rhs)
        where = f"loss {name} = {sympy.sstr(rhs)}"
        if self.loss_equation is not None:
            raise ModelError(f"{where}: the loss is defined twice (first: {self.loss_equation})")
        self._check_new_name(name, "loss")
        self._check_rhs(rhs, set(), where, defining=None, scalar=True)
        base = IndexedBase(name)
        latex = _checked_latex(latex, f"loss {name!r}: latex") or name
        quantity = Quantity(name, Role.LOSS, (), False, latex, base)
        self.quantities[name] = quantity
        self._kinds[name] = "loss"
        symbol = Symbol(name)
        self.loss_equation = Equation(quantity, symbol, rhs)
        return symbol

    # --- queries ----------------------------------------------------------------------------

    def user_names(self) -> frozenset[str]:
        """Every name declared: sizes, indices, quantities and the loss."""
        return frozenset(self._kinds)

    def quantity(self, name_or_base: str | IndexedBase) -> Quantity:
        if isinstance(name_or_base, IndexedBase):
            return self._by_base[name_or_base]
        return self.quantities[name_or_base]

    def of_role(self, role: Role) -> list[Quantity]:
        return [q for q in self.quantities.values() if q.role is role]

    def state_for(self, quantity: Quantity) -> Quantity | None:
        """The STATE quantity holding ``quantity`` at t = 0, if any."""
        for q in self.quantities.values():
            if q.state_of == quantity.name:
                return q
        return None

    def primary_index(self, size: Expr) -> Idx:
        """The first declared index over ``size`` (the time index for ``T``)."""
        for index in self.indices.values():
            if index is not self.time_index and index.upper == size - 1 and index.lower == 0:
                return index
        raise ModelError(f"model {self.name!r} declares no index over size {size}")

    def canonical_indices(self, quantity: Quantity) -> tuple[Idx, ...]:
        """The indices a quantity and its adjoint are written with: ``W_hh[h, h']``, ``a[h, t]``."""
        indices: list[Idx] = []
        for size in quantity.sizes:
            index = self.primary_index(size)
            while index in indices:
                index = Idx(index.name + "'", (index.lower, index.upper))
            indices.append(index)
        if quantity.time:
            assert self.time_index is not None
            indices.append(self.time_index)
        return tuple(indices)

    def references(self, expr: Expr) -> Iterator[Indexed]:
        """Every Indexed quantity read by ``expr`` (in a stable order)."""
        for node in sympy.preorder_traversal(expr):
            if isinstance(node, Indexed):
                yield node

    def dependencies(self, name: str) -> list[tuple[Quantity, bool]]:
        """(quantity, read at t-1) pairs read by the definition of intermediate ``name``."""
        equation = self.loss_equation if name == self.loss_name else self.equations[name]
        seen: dict[tuple[str, bool], Quantity] = {}
        for ref in self.references(equation.rhs):
            q = self._by_base[ref.base]
            shifted = q.time and ref.indices[-1] != self.time_index
            seen.setdefault((q.name, shifted), q)
        return [(q, shifted) for (_, shifted), q in seen.items()]

    @property
    def loss_name(self) -> str:
        if self.loss_equation is None:
            raise ModelError(f"model {self.name!r} has no loss; set one with Model.loss(...)")
        return self.loss_equation.quantity.name

    def evaluation_order(self) -> list[str]:
        """Intermediates in forward order within one step (reads at t-1 do not constrain it)."""
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = [*path[path.index(name):], name]
                raise ModelError(
                    f"model {self.name!r}: the equations form a cycle "
                    f"{' -> '.join(cycle)} (equation {self.equations[name]}); a quantity may "
                    f"depend on itself only through t-1")
            state[name] = 1
            for dep, shifted in self.dependencies(name):
                if dep.role is Role.INTERMEDIATE and not shifted:
                    visit(dep.name, [*path, name])
            state[name] = 2
            order.append(name)

        for name in self.equations:
            visit(name, [])
        return order

    def validate(self) -> Model:
        """Whole-model checks: every intermediate defined, no cycle, a loss; returns self."""
        for q in self.quantities.values():
            if q.role is Role.INTERMEDIATE and q.name not in self.equations:
                users = [str(e) for e in self.equations.values()
                         if any(r.base == q.base for r in self.references(e.rhs))]
                used = f" but used in: {'; '.join(users)}" if users else ""
                raise ModelError(f"intermediate {q.name!r} is declared{used}, and never defined; "
                                 f"add an equation with Model.define({q.name}[...], ...)")
        if self.loss_equation is None:
            raise ModelError(f"model {self.name!r} has no loss; set one with Model.loss(...)")
        self.evaluation_order()
        for q in self.quantities.values():
            if q.role is Role.INTERMEDIATE and q.time:
                reads_previous = any(
                    dep.name == q.name and shifted
                    for name in [*self.equations, self.loss_name]
                    for dep, shifted in self.dependencies(name))
                if reads_previous and self.state_for(q) is None:
                    raise ModelError(f"{q.name!r} is read at t-1 but has no initial state; "
                                     f"declare one with Model.state('...', of={q.name})")
        return self

    # --- checks ----------------------------------------------------------------------------

    def _declare(self, name: str, role: Role, sizes: Sequence[Symbol], time: bool,
                 latex: str | None, **extra: object) -> IndexedBase:
        self._check_new_name(name, role.value, role=role)
        sizes = tuple(sizes)
        for size in sizes:
            self._check_size(size, f"{role.value} {name!r}")
        if time and self.time_index is None:
            raise ModelError(f"{role.value} {name!r} is indexed by time, but the model has no "
                             f"time index; declare one with Model.time()")
        latex = _checked_latex(latex, f"{role.value} {name!r}: latex")
        if extra.get("adjoint_latex") is not None:
            extra["adjoint_latex"] = _checked_latex(extra["adjoint_latex"],
                                                    f"{role.value} {name!r}: adjoint")
        base = IndexedBase(name)
        quantity = Quantity(name, role, sizes, time, latex or name, base, **extra)  # type: ignore[arg-type]
        self.quantities[name] = quantity
        self._kinds[name] = role.value
        self._by_base[base] = quantity
        return base

    def _check_new_name(self, name: str, kind: str, *, role: Role | None = None) -> None:
        """Refuse a name that is no safe identifier, is taken, or is a generated adjoint's."""
        why = refusal(name, input=role is Role.INPUT, size=kind == "size")
        if why is None and name in self._c_functions:
            why = (f"is reserved: {name!r} is a function of the generated C of model "
                   f"{self.name!r}")
        if why is not None:
            raise ModelError(f"{kind} name {name!r} {why}")
        if name in self._kinds:
            raise ModelError(f"{kind} name {name!r} is already used by {_a(self._kinds[name])}")
        owner = self.quantities.get(name[len(ADJOINT_PREFIX):]) \
            if name.startswith(ADJOINT_PREFIX) else None
        if owner is not None and owner.role in _WITH_ADJOINT:
            what = "adjoint" if owner.role is Role.INTERMEDIATE else "gradient"
            raise ModelError(f"{kind} name {name!r} is reserved: the generated code stores "
                             f"∂L/∂{owner.name}, the {what} of the {owner.role.value} "
                             f"{owner.name!r}, as {name!r}")
        adjoint = adjoint_name(name)
        if role in _WITH_ADJOINT and (adjoint in self._kinds or adjoint in self._c_functions):
            what = _a(self._kinds[adjoint]) if adjoint in self._kinds else \
                f"a function of the generated C of model {self.name!r}"
            raise ModelError(f"{kind} name {name!r} cannot be used: the generated code would "
                             f"store ∂L/∂{name} as {adjoint!r}, which is already the name of "
                             f"{what}; rename one of them")

    def _check_size(self, size: object, what: str) -> None:
        # == and not `is`: SymPy may hand back an equal Symbol that is another object
        if not isinstance(size, Symbol) or self.sizes.get(size.name) != size:
            known = ", ".join(self.sizes) or "none yet"
            raise ModelError(f"{what}: {size!r} is not a size of this model (sizes: {known}); "
                             f"declare it with Model.size()")

    def _quantity_of(self, base: object, where: str) -> Quantity:
        quantity = self._by_base.get(base) if isinstance(base, IndexedBase) else None
        if quantity is None:
            known = ", ".join(self.quantities) or "none"
            raise ModelError(f"{where}: {base} is not a quantity of model {self.name!r} "
                             f"(quantities: {known})")
        return quantity

    def _expected_ranges(self, quantity: Quantity) -> list[tuple[Expr, Expr]]:
        ranges = [(sympy.S.Zero, size - 1) for size in quantity.sizes]
        if quantity.time:
            assert self.time_index is not None
            ranges.append((self.time_index.lower, self.time_index.upper))
        return ranges

    def _check_lhs(self, lhs: Indexed, quantity: Quantity, where: str) -> None:
        indices = lhs.indices
        if len(indices) != quantity.rank:
            raise ModelError(f"{where}: {quantity.name!r} takes {quantity.rank} indices "
                             f"({self._shape_text(quantity)}), got {len(indices)}")
        for position, (index, (lo, hi)) in enumerate(zip(indices, self._expected_ranges(quantity),
                                                         strict=True)):
            if not isinstance(index, Idx) or self.indices.get(index.name) != index:
                raise ModelError(f"{where}: index {index} on the left side must be a plain index "
                                 f"of the model (e.g. {self._example_index(lo, hi)})")
            if (index.lower, index.upper) != (lo, hi):
                raise ModelError(f"{where}: index {index} runs over {index.lower}..{index.upper} "
                                 f"but axis {position} of {quantity.name!r} runs over {lo}..{hi}")
        if len(set(indices)) != len(indices):
            raise ModelError(f"{where}: an index appears twice on the left side")

    def _check_rhs(self, rhs: Expr, free: set[Idx], where: str, *, defining: Quantity | None,
                   scalar: bool = False) -> set[Idx]:
        """Walk ``rhs``: known quantities, bound indices in range, functions with rules."""
        used_free: set[Idx] = set()

        def walk(node: Expr, bound: frozenset[Idx]) -> None:
            if isinstance(node, sympy.Sum):
                inner = set(bound)
                for limit in node.limits:
                    index, lo, hi = limit
                    if not isinstance(index, Idx) or self.indices.get(index.name) != index:
                        raise ModelError(f"{where}: sum over {index}, which is not an index of "
                                         f"the model (indices: {', '.join(self.indices)})")
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
                self._check_reference(node, free | bound, where, used_free, scalar)
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
                if self.sizes.get(node.name) != node:
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

    def _check_reference(self, ref: Indexed, scope: set[Idx], where: str, used: set[Idx],
                         scalar: bool) -> None:
        unbound = ("the loss must be a scalar, so every index is summed over"
                   if scalar else "bind it on the left side or sum over it")
        quantity = self._quantity_of(ref.base, where)
        if quantity.role in (Role.LOSS, Role.STATE):
            raise ModelError(f"{where}: {quantity.name!r} ({quantity.role.value}) cannot be read "
                             f"by an equation"
                             + (f"; read {quantity.state_of}[..., t-1] instead"
                                if quantity.state_of else ""))
        if len(ref.indices) != quantity.rank:
            raise ModelError(f"{where}: {quantity.name!r} takes {quantity.rank} indices "
                             f"({self._shape_text(quantity)}), got {len(ref.indices)} in {ref}")
        ranges = self._expected_ranges(quantity)
        for position, (index, (lo, hi)) in enumerate(zip(ref.indices, ranges, strict=True)):
            is_time = quantity.time and position == len(ranges) - 1
            if is_time:
                t = self.time_index
                if index == t:
                    used.add(t)
                    if t not in scope:
                        raise ModelError(f"{where}: the time index {t} in {ref} is not bound; "
                                         f"{unbound}")
                    continue
                if index == t - 1:
                    if t not in scope:
                        raise ModelError(f"{where}: the time index {t} in {ref} is not bound; "
                                         f"{unbound}")
                    if quantity.role is not Role.INTERMEDIATE:
                        raise ModelError(f"{where}: {ref} reads the {quantity.role.value} "
                                         f"{quantity.name!r} at t-1; only intermediates with an "
                                         f"initial state may be read at t-1")
                    used.add(t)
                    continue
                raise ModelError(f"{where}: time index {index} in {ref}: expected {t} or {t}-1 "
                                 f"(a quantity may read the previous step, not others)")
            if not isinstance(index, Idx):
                raise ModelError(f"{where}: index {index} in {ref}: unit axes take a plain index, "
                                 f"no arithmetic")
            if self.indices.get(index.name) != index or index == self.time_index:
                raise ModelError(f"{where}: {index} in {ref} is not a unit index of the model")
            if index not in scope:
                raise ModelError(f"{where}: index {index} in {ref} is not bound; {unbound}")
            if (index.lower, index.upper) != (lo, hi):
                raise ModelError(f"{where}: index {index} ({index.lower}..{index.upper}) used for "
                                 f"axis {position} of {quantity.name!r}, which runs over "
                                 f"{lo}..{hi}")
            used.add(index)

    def _shape_text(self, quantity: Quantity) -> str:
        axes = [s.name for s in quantity.sizes] + (["T"] if quantity.time else [])
        return ", ".join(axes) if axes else "a scalar"

    def _example_index(self, lo: Expr, hi: Expr) -> str:
        for index in self.indices.values():
            if (index.lower, index.upper) == (lo, hi):
                return index.name
        return "an index declared with Model.index()"

    def __repr__(self) -> str:
        return f"Model({self.name!r}, {len(self.equations)} equations)"

