"""Products that accumulate: the terms added to a matrix product become its initial value.

Role in DESIGN.md's picture: a pass of the plan stage that a backend runs on its copy of
the plan before printing it, when its products can add into their output (CBLAS's
``beta = 1``; the C backend). It knows no network; it looks for a contraction whose
output is next read by a sum of it and other terms, in two shapes:

- **in place**: ``P = Σ …`` then ``P = P + E`` (the bias added to the input projections
  hoisted out of the loop over time, ``t1 = b_i + t1``);
- **through a temporary**: ``P = Σ …`` then ``A = P + E``, ``P`` a temporary nothing
  else reads (``t0 = x·W``, ``a = b + t0``; in a step, ``a_h^t = h^{t-1} W + t1^t``).

Either becomes ``A = E`` before the product and the product adding into ``A``
(:attr:`~codegen.plan.Contract.accumulate`): the library starts from ``E`` instead of
zeroing ``P`` (for ``beta = 0`` OpenBLAS writes zeros over it first), and the pass over
``P`` that added ``E`` is gone, with ``P`` itself. ``E`` moves to before the product
only where nothing between reads or writes ``A`` or writes what ``E`` reads; it goes
ahead of the run of products its own product stands in, so that the products of one
shape still run together (``statements.py`` in the C backend).
"""

from __future__ import annotations

import dataclasses

import sympy
from sympy import Expr, Idx, Indexed

from chainrule.codegen.plan.types import (
    Assign,
    Contract,
    Kind,
    Loop,
    Plan,
    Ref,
    Statement,
    read,
    ref_indices,
    ref_name,
    walk,
    written,
)

__all__ = ["accumulate_into_products"]


def accumulate_into_products(plan: Plan) -> Plan:
    """``plan`` with every product that a sum reads next adding into the sum's output
    (see the module's docstring); the temporaries this leaves unread are dropped."""
    arrays = dict(plan.arrays)
    folded = dataclasses.replace(plan, arrays=arrays)
    for phase in ("forward", "loss_statements", "backward", "gradient_statements"):
        setattr(folded, phase, _Folder(folded).statements(getattr(plan, phase)))
    named = {ref_name(ref) for s in walk(folded.all_statements()) for ref in _refs(s)} | {
        name for s in walk(folded.all_statements()) for name in written(s)}
    for name, array in plan.arrays.items():
        if array.kind is Kind.TEMPORARY and not array.view and not array.parts \
                and name not in named:
            del arrays[name]
    return folded


class _Folder:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.time = plan.time
        #: how many statements of the whole plan name each array
        self.uses: dict[str, int] = {}
        for statement in walk(plan.all_statements()):
            if isinstance(statement, Loop):
                continue
            for name in {ref_name(ref) for ref in _refs(statement)} | written(statement):
                self.uses[name] = self.uses.get(name, 0) + 1

    def statements(self, statements: list[Statement]) -> list[Statement]:
        out = [dataclasses.replace(s, body=tuple(self.statements(list(s.body))))
               if isinstance(s, Loop) else s for s in statements]
        position = 0
        while position < len(out):
            fold = self.fold_at(out, position)
            if fold is None:
                position += 1
                continue
            start, initial, product, sum_at = fold
            del out[sum_at]
            out[position] = product
            out.insert(start, initial)
            position += 1
        return out

    def fold_at(self, statements: list[Statement], position: int
                ) -> tuple[int, Assign, Contract, int] | None:
        """Where the product at ``position`` may accumulate: the place for ``A = E``, that
        statement, the accumulating product, and the sum's position; None if it may not."""
        product = statements[position]
        if not isinstance(product, Contract) or product.accumulate \
                or not isinstance(product.out, Indexed):
            return None
        name = ref_name(product.out)
        array = self.plan.arrays[name]
        if array.parts or name in self.plan.outputs:
            return None
        later = next((n for n in range(position + 1, len(statements))
                      if self.touches(statements[n], name)), None)
        if later is None or not isinstance(statements[later], Assign):
            return None
        total = statements[later]
        assert isinstance(total, Assign)
        terms = sympy.Add.make_args(total.value)
        if terms.count(product.out) != 1 or len(terms) < 2:
            return None
        rest = sympy.Add(*(term for term in terms if term != product.out))
        target = total.out
        if target != product.out:  # through a temporary nothing else reads
            if (array.kind is not Kind.TEMPORARY or array.view
                    or not isinstance(target, Indexed)
                    or self.free(target) != self.free(product.out)
                    or self.uses.get(name, 0) != 2):  # the product and the sum alone
                return None
        target_name = ref_name(target)
        reads = {ref_name(ref) for ref in rest.atoms(Indexed)} | {
            s.name for s in rest.free_symbols if type(s) is sympy.Symbol}
        if {name, target_name} & reads or any(
                ref_name(operand) in (name, target_name) for operand in product.operands):
            return None
        between = statements[position + 1:later]
        if any(self.touches(s, target_name) or written(s) & reads for s in between):
            return None
        start = position
        while start > 0 and isinstance(statements[start - 1], Contract) \
                and not self.touches(statements[start - 1], target_name) \
                and not written(statements[start - 1]) & reads:
            start -= 1
        initial = Assign(target, rest, total.comment)
        folded = dataclasses.replace(product, out=target, accumulate=True)
        return start, initial, folded, later

    def free(self, ref: Indexed) -> set[Idx]:
        """The loop indices of ``ref`` (the time index of an enclosing loop left out)."""
        found = {s for index in ref_indices(ref) for s in index.free_symbols
                 if isinstance(s, Idx)}
        return found - ({self.time} if self.time is not None else set())

    def touches(self, statement: Statement, name: str) -> bool:
        """Whether ``statement`` reads or writes the memory of array ``name`` (another view
        of the same buffer is other memory)."""
        names = {ref_name(ref) for s in walk([statement]) for ref in _refs(s)} | written(statement)
        array = self.plan.arrays.get(name)
        storage = {name, array.view.buffer} if array is not None and array.view else {name}
        return bool(names & storage) or (array is not None and bool(array.parts)
                                         and bool(names & set(array.parts)))


def _refs(statement: Statement) -> list[Ref]:
    refs: list[Expr] = list(read(statement))
    out = getattr(statement, "out", None)
    if isinstance(out, Indexed | sympy.Symbol):
        refs.append(out)
    return refs  # type: ignore[return-value]
