"""Common subexpressions: a function application the statements of one step read twice is
computed once, into a temporary.

Role in DESIGN.md's picture: the last pass of the plan stage, after scheduling
(``schedule.py``) and fusion (``fuse.py``), so that every backend prints the result
unchanged. After scheduling, because only then is "one step" known: before it, a
temporary shared by a statement of the loop and one outside it would need storage
over time, and would change what scheduling hoists. After fusion, because the pass
then sees the views and buffers the backends print, and fusion (of contractions)
never sees the elementwise temporaries. It works on one phase as it will be printed,
scope by scope:

- the phase's top level (every step at once): a temporary over time where the
  subexpression runs over ``t``;
- the body of the loop over ``t`` (one step): a temporary without the time axis,
  like every temporary that lives within one step;
- the body of a :class:`~codegen.plan.Guarded` statement: a temporary written under
  the guard, for a subexpression only that body reads.

A candidate is a function application (``tanh``, ``logistic``, ``exp``, ``log``, ...)
or a power with a non-integer exponent, reading at least one array. Two occurrences
are the same value when they are equal as expressions (the same arrays at the same
indices) and no statement between them writes what they read, a view's buffer and a
buffer's views included. The temporary is computed just before the first occurrence.
An occurrence under a guard shares an unguarded one's temporary (the unguarded
statement reads the same elements at every step, so nothing reads past the last
step); occurrences only under guards share one when the guards are equal, computed
under that guard. Nothing moves between phases or between the loop and the work
outside it, and no stored array changes: only temporaries are added.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import sympy
from sympy import Expr, Idx, Indexed

from chainrule.codegen.plan.types import (
    Array,
    Assign,
    Guarded,
    Loop,
    Ref,
    Statement,
    ref_indices,
    ref_name,
    walk,
    written,
)

__all__ = ["common_subexpressions"]

#: makes a fresh temporary over the given indices (the lowering's ``temporary``)
Temporary = Callable[[tuple[Idx, ...]], Ref]


def common_subexpressions(statements: list[Statement], arrays: dict[str, Array],
                          temporary: Temporary, time: Idx | None = None) -> list[Statement]:
    """``statements`` (one phase) with each repeated function application computed once.

    ``arrays`` is the plan's table; ``temporary`` adds a fresh temporary to it;
    ``time`` is the model's time index, dropped from the axes of temporaries within
    the loop over it.
    """
    return _Pass(arrays, temporary, time).scope(list(statements), step=False)


@dataclasses.dataclass(frozen=True)
class _Occurrence:
    position: int  # of the statement in its scope
    out: Ref  # what the Assign holding it writes
    guard: Guarded | None  # the Guarded statement at ``position``, when it is under one


class _Pass:
    def __init__(self, arrays: dict[str, Array], temporary: Temporary,
                 time: Idx | None) -> None:
        self.arrays = arrays
        self.temporary = temporary
        self.time = time

    def scope(self, statements: list[Statement], step: bool) -> list[Statement]:
        """One scope (``step``: within one step of the loop), then the scopes inside it."""
        while self.share_one(statements, step):
            pass
        result: list[Statement] = []
        for statement in statements:
            if isinstance(statement, Loop):
                statement = dataclasses.replace(
                    statement, body=tuple(self.scope(list(statement.body), step=True)))
            elif isinstance(statement, Guarded):
                statement = dataclasses.replace(
                    statement, body=tuple(self.scope(list(statement.body), step)))
            result.append(statement)
        return result

    def share_one(self, statements: list[Statement], step: bool) -> bool:
        """Give the largest repeated candidate of the scope a temporary; False if none."""
        found: dict[Expr, list[_Occurrence]] = {}
        for position, statement in enumerate(statements):
            if isinstance(statement, Assign):
                for node in self.candidates(statement, step):
                    found.setdefault(node, []).append(_Occurrence(position, statement.out, None))
            elif isinstance(statement, Guarded):
                for inner in walk(statement.body):
                    if not isinstance(inner, Assign):
                        continue
                    for node in self.candidates(inner, step):
                        # its value is the one before the guard only if the guard writes
                        # nothing it reads
                        if not self.storage(written(statement)) & self.reads(node):
                            found.setdefault(node, []).append(
                                _Occurrence(position, inner.out, statement))
        best: tuple[tuple[int, int, str], Expr, list[_Occurrence]] | None = None
        for node, occurrences in found.items():
            for run in self.runs(node, occurrences, statements):
                if not _shareable(run):
                    continue
                key = (-_size(node), run[0].position, str(node))
                if best is None or key < best[0]:
                    best = (key, node, run)
        if best is None:
            return False
        _, node, run = best
        self.share(node, run, statements, step)
        return True

    def candidates(self, statement: Assign, step: bool) -> list[Expr]:
        """The candidate subexpressions of ``statement``'s value, each as often as it occurs."""
        out = {s for i in ref_indices(statement.out) for s in i.free_symbols
               if isinstance(s, Idx)}
        found: list[Expr] = []

        def visit(node: Expr) -> None:
            if isinstance(node, Indexed | sympy.Sum):
                return
            if _is_candidate(node) and self.reads(node) and \
                    self.indices(node, step) <= out:
                found.append(node)
            for arg in node.args:
                visit(arg)

        visit(statement.value)
        return found

    def indices(self, node: Expr, step: bool) -> set[Idx]:
        """The axes a temporary holding ``node`` needs: its indices, less ``t`` within a step."""
        indices = {s for s in node.free_symbols if isinstance(s, Idx)}
        return indices - {self.time} if step else indices

    def reads(self, node: Expr) -> set[str]:
        """The storage ``node`` reads: its arrays, with their buffers and views."""
        names = {str(r.base.label) for r in node.atoms(Indexed)}
        names |= {s.name for s in node.free_symbols
                  if type(s) is sympy.Symbol and s.name in self.arrays}
        return self.storage(names)

    def storage(self, names: set[str]) -> set[str]:
        """``names`` and what shares memory with them: a buffer's parts, a view's buffer."""
        found = set()
        for name in names:
            array = self.arrays.get(name)
            if array is None:
                continue
            found |= {name, *array.parts}
            if array.view:
                found |= {array.view.buffer, *self.arrays[array.view.buffer].parts}
        return found

    def runs(self, node: Expr, occurrences: list[_Occurrence],
             statements: list[Statement]) -> list[list[_Occurrence]]:
        """``occurrences`` split where a statement between two of them writes what ``node``
        reads: each run holds one value."""
        reads = self.reads(node)
        runs: list[list[_Occurrence]] = []
        for occurrence in occurrences:
            if runs and not any(
                    self.storage(written(s)) & reads
                    for s in statements[runs[-1][-1].position:occurrence.position]):
                runs[-1].append(occurrence)
            else:
                runs.append([occurrence])
        return runs

    def share(self, node: Expr, run: list[_Occurrence], statements: list[Statement],
              step: bool) -> None:
        """Compute ``node`` once into a temporary before ``run``'s first occurrence, and
        read it there at every occurrence of ``run``."""
        first = run[0]
        context = ref_indices(first.out)
        indices = self.indices(node, step)
        ordered = (*(i for i in context if i in indices),
                   *sorted(indices - set(context), key=lambda i: i.name))
        target = self.temporary(ordered)
        positions = sorted({o.position for o in run})
        readers = [ref_name(s.out) for s in (statements[p] for p in positions)
                   if isinstance(s, Assign | Guarded)]
        comment = f"computed once for {', '.join(dict.fromkeys(readers))}"
        definition: Statement = Assign(target, node, comment)
        if first.guard is not None and all(o.guard is not None for o in run):
            definition = Guarded(first.guard.lo, first.guard.hi, (Assign(target, node),),
                                 target, comment, first.guard.value)
        for position in positions:
            statements[position] = _replace(statements[position], node, target)
        statements.insert(first.position, definition)


def _is_candidate(node: Expr) -> bool:
    """A function call: an applied function, or a power that is not a whole one."""
    if isinstance(node, sympy.Function):
        return True
    return isinstance(node, sympy.Pow) and not node.exp.is_integer


def _shareable(run: list[_Occurrence]) -> bool:
    """Two or more occurrences, computed where each of them is: at least one unguarded, or
    under two or more equal guards (one guard alone is that guard body's own scope)."""
    if len(run) < 2:
        return False
    if any(o.guard is None for o in run):
        return True
    ranges = {(o.guard.lo, o.guard.hi) for o in run if o.guard is not None}
    return len({o.position for o in run}) > 1 and len(ranges) == 1


def _size(node: Expr) -> int:
    return sum(1 for _ in sympy.preorder_traversal(node))


def _replace(statement: Statement, node: Expr, target: Ref) -> Statement:
    """``statement`` reading ``target`` wherever its elementwise values hold ``node``."""
    if isinstance(statement, Assign):
        return dataclasses.replace(statement, value=statement.value.xreplace({node: target}))
    if isinstance(statement, Guarded):
        return dataclasses.replace(
            statement, body=tuple(_replace(s, node, target) for s in statement.body))
    return statement
