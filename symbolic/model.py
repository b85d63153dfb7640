"""The model API: sizes, indices, named quantities with roles, equations in index notation.

Role in DESIGN.md's picture: the first stage. A :class:`Model` holds what a user
writes down about one example of a network (the batch is implicit) and is the
only input of ``derive()``. The built-in networks and TOML specs both build
Models through this public API.

This module holds the declarations and answers queries about them; the checks
are in ``model_checks.py`` and the pieces (:class:`Role`, :class:`Quantity`,
:class:`Equation`, :class:`ModelError`) in ``model_types.py``. Every name is
checked once, when it is declared, every equation when it is added, and the
whole model when :meth:`Model.validate` runs (``derive()`` calls it); each
problem raises :class:`ModelError` naming the name or the equation and what was
expected.

Conventions: unit indices run ``0..N-1`` for a size ``N``; the one optional time
index runs ``1..T``; an equation may read a quantity at ``t-1`` (or at ``t+1``, a
recurrence backward in time), and the value of a recurrent quantity at ``t = 0``
(``t = T+1``) is a STATE quantity declared with :meth:`Model.state`; an equation
without ``t`` (and the loss) may read a quantity at the last step, ``y[k, T]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase, Symbol

from . import model_checks as checks
from .model_types import Equation, ModelError, Quantity, Role


class Model:
    """A network written in index notation, per example. See the module docstring."""

    def __init__(self, name: str, *, description: str = "", title: str | None = None) -> None:
        checks.check_model_name(name)
        self.name = name
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
        checks.check_new_name(self, name, "size")
        symbol = Symbol(name, integer=True, positive=True)
        self.sizes[name] = symbol
        self._kinds[name] = "size"
        return symbol

    def index(self, name: str, size: Symbol, *, latex: str | None = None) -> Idx:
        """Declare a unit index ``name ∈ 0..size-1``."""
        checks.check_new_name(self, name, "index")
        checks.check_size(self, size, f"index {name!r}")
        index = Idx(name, (0, size - 1))
        self.indices[name] = index
        self._kinds[name] = "index"
        self.index_latex[name] = checks.checked_latex(latex, f"index {name!r}: latex") or name
        return index

    def time(self, name: str = "t", size: str = "T") -> Idx:
        """Declare the model's one time index ``name ∈ 1..size``; equations may read ``t-1``."""
        checks.check_time(self)
        T = self.size(size)
        checks.check_new_name(self, name, "index")
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
        """Declare the initial value of the recurrent intermediate ``of``, e.g. ``h0``: at
        t = 0 for a quantity read at t-1, at t = T+1 for one read at t+1."""
        owner = checks.quantity_of(self, of, f"state {name!r}")
        checks.check_state(self, name, owner)
        return self._declare(name, Role.STATE, owner.sizes, False, latex, state_of=owner.name)

    def define(self, lhs: Indexed, rhs: Expr) -> Equation:
        """Add the equation defining an intermediate, e.g. ``a[h] = Σ_i W[i,h] x[i] + b[h]``."""
        rhs = sympy.sympify(rhs)
        quantity = checks.check_definition(self, lhs, rhs)
        equation = Equation(quantity, lhs, rhs)
        self.equations[quantity.name] = equation
        return equation

    def loss(self, rhs: Expr, *, name: str = "L", latex: str = "L") -> Symbol:
        """Set the per-example loss, a scalar: every index must be summed over."""
        rhs = sympy.sympify(rhs)
        checks.check_loss(self, name, rhs)
        base = IndexedBase(name)
        latex = checks.checked_latex(latex, f"loss {name!r}: latex") or name
        quantity = Quantity(name, Role.LOSS, (), False, latex, base)
        self.quantities[name] = quantity
        self._kinds[name] = "loss"
        symbol = Symbol(name)
        self.loss_equation = Equation(quantity, symbol, rhs)
        return symbol

    def _declare(self, name: str, role: Role, sizes: Sequence[Symbol], time: bool,
                 latex: str | None, **extra: object) -> IndexedBase:
        sizes = checks.check_declaration(self, name, role, sizes, time)
        latex = checks.checked_latex(latex, f"{role.value} {name!r}: latex")
        if extra.get("adjoint_latex") is not None:
            extra["adjoint_latex"] = checks.checked_latex(extra["adjoint_latex"],
                                                          f"{role.value} {name!r}: adjoint")
        base = IndexedBase(name)
        quantity = Quantity(name, role, sizes, time, latex or name, base, **extra)  # type: ignore[arg-type]
        self.quantities[name] = quantity
        self._kinds[name] = role.value
        self._by_base[base] = quantity
        return base

    # --- queries ----------------------------------------------------------------------------

    def user_names(self) -> frozenset[str]:
        """Every name declared: sizes, indices, quantities and the loss."""
        return frozenset(self._kinds)

    def kind_of(self, name: str) -> str | None:
        """What ``name`` was declared as ("size", "index", "parameter", ...), or None."""
        return self._kinds.get(name)

    def quantity(self, name_or_base: str | IndexedBase) -> Quantity:
        """The quantity called ``name_or_base`` (or written with that base); KeyError if none."""
        if isinstance(name_or_base, IndexedBase):
            return self._by_base[name_or_base]
        return self.quantities[name_or_base]

    def find_quantity(self, name_or_base: str | IndexedBase) -> Quantity | None:
        """The quantity called ``name_or_base`` (or written with that base), or None."""
        if isinstance(name_or_base, IndexedBase):
            return self._by_base.get(name_or_base)
        return self.quantities.get(name_or_base)

    def of_role(self, role: Role) -> list[Quantity]:
        return [q for q in self.quantities.values() if q.role is role]

    def state_for(self, quantity: Quantity) -> Quantity | None:
        """The STATE quantity holding ``quantity`` at t = 0, if any."""
        for q in self.quantities.values():
            if q.state_of == quantity.name:
                return q
        return None

    def time_shift(self, ref: Indexed) -> int | None:
        """``c`` for a read of a quantity over time at ``t + c`` (0 at ``t``); None for a
        read at the last step ``T`` or of a quantity without time."""
        quantity = self.find_quantity(ref.base)
        t = self.time_index
        if quantity is None or not quantity.time or t is None:
            return None
        offset = sympy.expand(ref.indices[-1] - t)
        return int(offset) if offset.is_Integer else None

    def shifts(self, quantity: Quantity) -> set[int]:
        """The steps other than ``t`` at which the equations and the loss read ``quantity``:
        ``{-1}`` for a recurrence through t-1, ``{1}`` through t+1, ``{-2, -1}``, ..."""
        found: set[int] = set()
        for equation in [*self.equations.values(), self.loss_equation]:
            if equation is None:
                continue
            for ref in self.references(equation.rhs):
                if ref.base == quantity.base:
                    shift = self.time_shift(ref)
                    if shift:
                        found.add(shift)
        return found

    def initial_step(self, quantity: Quantity) -> Expr | None:
        """The step a quantity's initial state stands for: 0 when it is read at earlier
        steps (a recurrence forward in time), T + 1 when it is read at later steps
        (backward in time), None without a state. Steps beyond it (t ≤ -1 for a read at
        t-2, t ≥ T+2 for one at t+2) hold zeros."""
        if self.state_for(quantity) is None or self.time_index is None:
            return None
        t = self.time_index
        ahead = any(shift > 0 for shift in self.shifts(quantity))
        return t.upper + 1 if ahead else t.lower - 1

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
        """(quantity, read at another step) pairs read by the definition of intermediate
        ``name``: ``shifted`` for a read at t-1, t+1, t-2, ...; a read at the last step ``T``
        counts as unshifted: it orders the equations as a read at ``t`` does."""
        equation = self.loss_equation if name == self.loss_name else self.equations[name]
        seen: dict[tuple[str, bool], Quantity] = {}
        for ref in self.references(equation.rhs):
            q = self.quantity(ref.base)
            shifted = bool(self.time_shift(ref))
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
        checks.validate(self)
        return self

    def __repr__(self) -> str:
        return f"Model({self.name!r}, {len(self.equations)} equations)"


__all__ = ["Equation", "Model", "ModelError", "Quantity", "Role"]
