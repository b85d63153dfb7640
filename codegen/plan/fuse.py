"""Fusion: contractions that share an operand become one product over concatenated arrays.

Role in DESIGN.md's picture: a pass of the plan stage, between lowering and
printing. It knows no network; it looks for two shapes of statement:

- **stacked outputs** (:meth:`Fuser.fuse_statements`): contractions
  ``out_g = Σ S·V_g`` with one shared operand ``S`` and operands ``V_g`` that
  differ along an axis ``u`` of the output. They become one product
  ``out = Σ S·V`` with ``V`` the ``V_g`` side by side along ``u``, and each
  ``out_g`` a view of ``out``: the four gates' input projections
  ``x·W_x*`` of all steps, their recurrent projections ``b^{t-1}·W_h*``, and the
  gradients ``Σ_t x^t δ_g^t`` of the weights.
- **summed terms** (:meth:`Fuser.fuse_sums`): ``Σ_g Σ_u P_g[u]·Y_g[u]`` with
  parameters ``P_g`` becomes ``Σ_u P[u]·Y[u]`` over the concatenated axis:
  the recurrent term ``Σ_g Σ_c' w_{cc'} δ_g^{t+1}`` of ``ε_c^t``.

Parameters are concatenated by a :class:`~codegen.plan.Concat` statement (a
copy, once per call). Any other array joins a buffer as a
:class:`~codegen.plan.View` of it, so that concatenating it costs nothing.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase

from chainrule.codegen.plan.types import (
    Array,
    Concat,
    Contract,
    Kind,
    Split,
    Statement,
    View,
    ref_indices,
    ref_name,
    written,
)
from chainrule.symbolic import Names, numbered

#: Stands for the fused axis in the signatures that group fusable terms.
_PLACEHOLDER = Idx("u#")


@dataclasses.dataclass(frozen=True)
class _Member:
    position: int
    statement: Contract
    shared: Indexed | None
    varying: Indexed
    axis_index: Idx


class Fuser:
    """Creates concatenations and buffers in ``arrays`` (the plan's table, shared), named
    through ``names`` (the lowering's allocator, shared)."""

    def __init__(self, arrays: dict[str, Array], names: Names) -> None:
        self.arrays = arrays
        self.names = names
        self.concats: list[Concat] = []
        self.new_concats: list[Concat] = []
        self.new_buffers: list[str] = []
        #: arrays an earlier phase writes: too late to make them views of a new buffer
        self.frozen: set[str] = set()

    def take_new(self) -> tuple[list[Concat], list[str]]:
        """The concatenations and allocated buffers created since the last call."""
        concats, buffers = self.new_concats, self.new_buffers
        self.new_concats, self.new_buffers = [], []
        return concats, buffers

    # --- concatenations and buffers ---------------------------------------------------------

    def concatenated_parameters(self, parts: list[str], axis: int) -> str:
        """A parameter array holding ``parts`` side by side along ``axis`` (in that order)."""
        for concat in self.concats:
            if list(concat.parts) == parts and concat.axis == axis:
                return concat.out
        name = self.fresh(parts)
        self.arrays[name] = Array(name, self._joined_axes(parts, axis), Kind.TEMPORARY)
        concat = Concat(name, tuple(parts), axis, f"{', '.join(parts)} side by side")
        self.concats.append(concat)
        self.new_concats.append(concat)
        return name

    def existing_order(self, parts: list[str], axis: int) -> list[str] | None:
        """The order of an existing concatenation or buffer of exactly ``parts``."""
        for concat in self.concats:
            if set(concat.parts) == set(parts) and concat.axis == axis:
                return list(concat.parts)
        views = [self.arrays[p].view for p in parts]
        if all(views) and len({v.buffer for v in views if v}) == 1:
            buffer = self.arrays[views[0].buffer]  # type: ignore[union-attr]
            if set(buffer.parts) == set(parts) and views[0].axis == axis:  # type: ignore[union-attr]
                return list(buffer.parts)
        return None

    def buffer(self, parts: list[str], axis: int, *, allocated: bool) -> str | None:
        """A buffer whose views along ``axis`` are ``parts`` (in that order), or None.

        Existing views of one buffer in the same order are reused. Otherwise the
        parts must be plain arrays of one shape, none of them an input or
        parameter; they become views of a new buffer. ``allocated`` buffers get
        storage at the start of their phase; the others are bound by the
        statement that computes them.
        """
        arrays = [self.arrays[p] for p in parts]
        views = [a.view for a in arrays]
        if all(views):
            buffer = self.arrays[views[0].buffer]  # type: ignore[union-attr]
            if list(buffer.parts) == parts and views[0].axis == axis:  # type: ignore[union-attr]
                return buffer.name
            return None
        first = arrays[0]
        if any(a.view or a.parts for a in arrays) or any(
                (a.axes[:axis] + a.axes[axis + 1:], a.time, a.first_time, a.kind)
                != (first.axes[:axis] + first.axes[axis + 1:], first.time, first.first_time,
                    first.kind) for a in arrays):
            return None
        if first.kind in (Kind.INPUT, Kind.TARGET, Kind.PARAMETER, Kind.STATE) \
                or self.frozen & set(parts):
            return None
        name = self.fresh(parts)
        self.arrays[name] = dataclasses.replace(
            first, name=name, axes=self._joined_axes(parts, axis), quantity=None,
            parts=tuple(parts))
        start: Expr = sympy.S.Zero
        for array in arrays:
            stop = start + array.axes[axis]
            self.arrays[array.name] = dataclasses.replace(array, view=View(name, axis, start, stop))
            start = stop
        if allocated:
            self.new_buffers.append(name)
        return name

    def fresh(self, parts: list[str]) -> str:
        """``W_hi, W_hf, W_hc, W_ho`` → ``W_hifco``: the common prefix, then each suffix."""
        prefix = os.path.commonprefix(parts)  # noqa: RUF071 (character-wise is meant)
        suffixes = [p[len(prefix):] for p in parts]
        name = prefix + "".join(suffixes) if prefix and all(suffixes) else "_".join(parts)
        return self.names.fresh(numbered(name))

    def _joined_axes(self, parts: list[str], axis: int) -> tuple[Expr, ...]:
        axes = list(self.arrays[parts[0]].axes)
        axes[axis] = sympy.Add(*(self.arrays[p].axes[axis] for p in parts))
        return tuple(axes)

    # --- summed terms -----------------------------------------------------------------------

    def fuse_sums(self, expr: Expr) -> Expr:
        """``Σ_g Σ_u P_g[u] Y_g[u]`` (``P_g`` parameters) → one sum over the joined axis."""
        if isinstance(expr, sympy.Add):
            terms = [self.fuse_sums(a) for a in expr.args]
            groups: dict[tuple, list[tuple[Expr, Indexed, Indexed, Idx]]] = {}
            for term in terms:
                signature = self._sum_signature(term)
                if signature is not None:
                    key, parameter, other, index = signature
                    groups.setdefault(key, []).append((term, parameter, other, index))
            for members in groups.values():
                fused = self._fuse_terms(members) if len(members) > 1 else None
                if fused is not None:
                    for term, *_ in members:
                        terms.remove(term)
                    terms.append(fused)
            return sympy.Add(*terms)
        if not expr.args or isinstance(expr, Indexed | Idx):
            return expr
        return expr.func(*(self.fuse_sums(a) for a in expr.args))

    def _sum_signature(self, term: Expr) -> tuple[tuple, Indexed, Indexed, Idx] | None:
        coefficient, inner = split_coefficient(term)
        if not isinstance(inner, sympy.Sum) or len(inner.limits) != 1:
            return None
        index = inner.limits[0][0]
        factors = sympy.Mul.make_args(inner.function)
        if len(factors) != 2 or not all(isinstance(f, Indexed) for f in factors):
            return None
        parameters = [f for f in factors if self.arrays[ref_name(f)].kind is Kind.PARAMETER]
        others = [f for f in factors if self.arrays[ref_name(f)].kind in (Kind.ADJOINT,
                                                                            Kind.FORWARD)]
        if len(parameters) != 1 or len(others) != 1:
            return None
        parameter, other = parameters[0], others[0]
        if list(parameter.indices).count(index) != 1 or list(other.indices).count(index) != 1:
            return None
        key = (coefficient, _pattern(parameter, index), _pattern(other, index),
               self.arrays[ref_name(parameter)].axes, _shape_key(self.arrays[ref_name(other)]))
        return key, parameter, other, index

    def _fuse_terms(self, members: list[tuple[Expr, Indexed, Indexed, Idx]]) -> Expr | None:
        _, parameter, other, index = members[0]
        pairs = {ref_name(o): ref_name(p) for _, p, o, _ in members}
        if len(pairs) != len(members) or len(set(pairs.values())) != len(members):
            return None
        p_axis = list(parameter.indices).index(index)
        o_axis = list(other.indices).index(index)
        by_parameter = {p: o for o, p in pairs.items()}
        wanted = self.existing_order(list(by_parameter), p_axis)
        order = [by_parameter[p] for p in wanted] if wanted else list(pairs)
        buffer = self.buffer(order, o_axis, allocated=True)
        if buffer is None:
            return None
        order = list(self.arrays[buffer].parts)
        joined = self.concatenated_parameters([pairs[o] for o in order], p_axis)
        total = self.arrays[buffer].axes[o_axis]
        fused = Idx(f"{index.name}#cat", (0, total - 1))
        coefficient, _ = split_coefficient(members[0][0])
        return coefficient * sympy.Sum(
            IndexedBase(joined)[_replace(parameter.indices, index, fused)]
            * IndexedBase(buffer)[_replace(other.indices, index, fused)],
            (fused, 0, total - 1))

    # --- stacked outputs --------------------------------------------------------------------

    def fuse_statements(self, statements: list[Statement], in_place: set[str], *,
                        concatenate: bool = True) -> list[Statement]:
        """Fuse every group of contractions that share an operand, within ``statements``.

        Without ``concatenate`` (the products over every step at once, outside the loops
        through time), a group whose operands ``V_g`` are parameters keeps its products
        and only stacks their outputs as views of an allocated buffer, and no other
        group is fused: each product is large already, where one per step (in a loop)
        is small and fusing four pays; a concatenated parameter would be a copy per call,
        and a stacked gradient a copy out to the caller's arrays."""
        groups: dict[tuple, list[_Member]] = {}
        for position, statement in enumerate(statements):
            for member in self._members(position, statement, in_place):
                groups.setdefault(self._member_key(member), []).append(member)
        taken: set[int] = set()
        replacement: dict[int, list[Statement]] = {}
        ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0].position))
        for members in ordered:
            members = [m for m in members if m.position not in taken]
            if len(members) < 2:
                continue
            if not concatenate:
                self._stack_outputs(members)
                continue
            fused = self._fuse_members(members, statements)
            if fused is None:
                continue
            taken |= {m.position for m in members}
            replacement[members[0].position] = fused
            for m in members[1:]:
                replacement[m.position] = []
        result: list[Statement] = []
        for position, statement in enumerate(statements):
            result += replacement.get(position, [statement])
        return result

    def _members(self, position: int, statement: Statement,
                 in_place: set[str]) -> Iterator[_Member]:
        if not isinstance(statement, Contract) or not isinstance(statement.out, Indexed):
            return
        out = self.arrays[ref_name(statement.out)]
        if out.kind not in (Kind.TEMPORARY, Kind.GRADIENT) or out.view or out.parts \
                or out.name in in_place:
            return
        operands = statement.operands
        splits = [(None, operands[0])] if len(operands) == 1 else (
            [(operands[0], operands[1]), (operands[1], operands[0])] if len(operands) == 2
            else [])
        for shared, varying in splits:
            kind = self.arrays[ref_name(varying)]
            if kind.kind is not Kind.PARAMETER and not kind.view:
                continue
            shared_indices = set(ref_indices(shared)) if shared is not None else set()
            axes = [i for i in varying.indices
                    if i in statement.out.indices and i not in shared_indices]
            if len(axes) == 1 and list(varying.indices).count(axes[0]) == 1:
                yield _Member(position, statement, shared, varying, axes[0])

    def _member_key(self, m: _Member) -> tuple:
        out = m.statement.out
        assert isinstance(out, Indexed)
        varying = self.arrays[ref_name(m.varying)]
        first_operand = m.statement.operands[0] == m.shared
        return (m.shared, first_operand, m.statement.coefficient, _pattern(m.varying, m.axis_index),
                _pattern(out, m.axis_index), _shape_key(varying),
                varying.view.buffer if varying.view else None,
                _shape_key(self.arrays[ref_name(out)]))

    def _stack_outputs(self, members: list[_Member]) -> None:
        """The outputs of ``members`` as views of one allocated buffer, in the order of
        an existing concatenation of their operands, where those are parameters."""
        varying = [ref_name(m.varying) for m in members]
        outs = [ref_name(m.statement.out) for m in members]  # type: ignore[arg-type]
        if len(set(varying)) != len(members) or len(set(outs)) != len(members) \
                or self.arrays[varying[0]].kind is not Kind.PARAMETER:
            return
        out_ref = members[0].statement.out
        assert isinstance(out_ref, Indexed)
        v_axis = list(members[0].varying.indices).index(members[0].axis_index)
        pair = dict(zip(varying, outs, strict=True))
        order = self.existing_order(varying, v_axis) or varying
        self.buffer([pair[v] for v in order], list(out_ref.indices).index(members[0].axis_index),
                    allocated=True)

    def _fuse_members(self, members: list[_Member],
                      statements: list[Statement]) -> list[Statement] | None:
        varying = [ref_name(m.varying) for m in members]
        outs = [ref_name(m.statement.out) for m in members]  # type: ignore[arg-type]
        if len(set(varying)) != len(members) or len(set(outs)) != len(members):
            return None
        first = members[0]
        v_axis = list(first.varying.indices).index(first.axis_index)
        out_ref = first.statement.out
        assert isinstance(out_ref, Indexed)
        o_axis = list(out_ref.indices).index(first.axis_index)
        between = statements[first.position:members[-1].position]
        if set().union(*(written(s) for s in between)) & set(varying):
            return None
        pair = dict(zip(varying, members, strict=True))
        if self.arrays[varying[0]].kind is Kind.PARAMETER:
            order = self.existing_order(varying, v_axis) or varying
            joined = self.concatenated_parameters(order, v_axis)
        else:
            joined_buffer = self.arrays[self.arrays[varying[0]].view.buffer]  # type: ignore[union-attr]
            if set(joined_buffer.parts) != set(varying):
                return None
            order, joined = list(joined_buffer.parts), joined_buffer.name
        ordered_outs = [ref_name(pair[v].statement.out) for v in order]  # type: ignore[arg-type]
        buffer = self.buffer(ordered_outs, o_axis, allocated=False)
        if buffer is None:
            return None
        total = self.arrays[buffer].axes[o_axis]
        fused = Idx(f"{first.axis_index.name}#cat", (0, total - 1))
        varying_ref = IndexedBase(joined)[_replace(first.varying.indices, first.axis_index, fused)]
        operands = tuple(varying_ref if op == first.varying else op
                         for op in first.statement.operands)
        out = IndexedBase(buffer)[_replace(out_ref.indices, first.axis_index, fused)]
        comment = f"{', '.join(ordered_outs)} in one product"
        return [Contract(out, operands, first.statement.coefficient, comment), Split(buffer)]


def split_coefficient(expr: Expr) -> tuple[Expr, Expr]:
    """``(c, rest)`` with ``c`` free of every free index (numbers, sizes)."""
    if isinstance(expr, sympy.Mul):
        constant = [f for f in expr.args if not _free_indices(f)]
        rest = [f for f in expr.args if _free_indices(f)]
        return sympy.Mul(*constant), sympy.Mul(*rest)
    return sympy.S.One, expr


def _free_indices(expr: Expr) -> set[Idx]:
    return {s for s in expr.free_symbols if isinstance(s, Idx)}


def _pattern(ref: Indexed, index: Idx) -> tuple[Expr, ...]:
    return tuple(i.xreplace({index: _PLACEHOLDER}) for i in ref.indices)


def _replace(indices: tuple[Expr, ...], index: Idx, by: Idx) -> tuple[Expr, ...]:
    return tuple(i.xreplace({index: by}) for i in indices)


def _shape_key(array: Array) -> tuple:
    return (array.axes, array.time, array.first_time, array.kind)
