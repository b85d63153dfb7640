"""The C backend's statement printer: each statement of the plan as a C loop nest.

Role in DESIGN.md's picture: part of ``plan → c``; ``backend.py`` hands it the plan's
phases and puts the lines it prints into the run functions. A subclass of
``plan/visitor.StatementVisitor``, one method per statement kind; expressions go
through ``printer.py`` (arrays through their layouts from ``storage.py``, loop
counters named by ``variables.py``), printed once for every precision. Each
statement becomes a loop nest ordered for the cache: the innermost loop walks
contiguous memory where it can; a contraction that is a matrix product also gets a
CBLAS call (``gemm.py``), the loops its fallback. Consecutive contractions that do not
read each other and run over the same loops (the four gates' input projections, their
weight gradients, the biases' gradients) share one loop nest, each a line of its body,
and matrix products of one shape one test of the work. Inside the loop over time, the
consecutive elementwise statements of a step (the gates, the state and the output; the
backward pass's δ's) share one loop nest too, where no statement touches an element
another writes but at that element; an array that only such a nest names, each element
written once and then read at that element alone (a gate's pre-activation ``a_i``, the
``tanh(s^t)`` computed once for two δ's), is a local of the loop body there, never
stored. The loop over ``t`` and the work hoisted out of it are the plan's, unchanged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sympy
from sympy import Expr, Idx, Indexed, Symbol

from chainrule.codegen import escape
from chainrule.codegen.backends.c.gemm import gemm_call
from chainrule.codegen.backends.c.printer import REAL, KernelCPrinter, Layout
from chainrule.codegen.backends.c.storage import contiguous
from chainrule.codegen.backends.c.variables import LoopVariables
from chainrule.codegen.plan.lifetimes import references
from chainrule.codegen.plan.types import (
    Allocate,
    Assign,
    Concat,
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
    ref_name,
    walk,
)
from chainrule.codegen.plan.visitor import StatementVisitor

__all__ = ["Emitter"]

_INDENT = "    "


@dataclass(frozen=True)
class _Product:
    """A contraction whose loops zero the output, then accumulate into it, with the
    CBLAS call that may do it instead (None where it is no matrix product): the pieces a
    group of such contractions shares or stacks."""

    statement: Contract
    fill: tuple[Idx, ...]  # the loops zeroing the output
    zero: str
    order: tuple[Idx, ...]  # the loops accumulating the product
    accumulate: str
    work: str | None
    arguments: str | None

    @property
    def shape(self) -> tuple[object, ...]:
        """What products must share to run in one loop nest: the work, the loops, and
        whether they add into their outputs."""
        return self.work, self.fill, self.order, self.statement.accumulate


class Emitter(StatementVisitor):
    """Statements → C lines, once for every precision (see ``printer.py``); each method
    prints one kind at ``indent``."""

    def __init__(self, plan: Plan, layouts: dict[str, Layout], variables: LoopVariables,
                 printer: KernelCPrinter, workspace: frozenset[str] = frozenset()) -> None:
        self.plan = plan
        self.layouts = layouts
        self.variables = variables
        self.printer = printer
        self.fixed: set[Idx] = set()  # indices bound by an enclosing loop (t inside Loop)
        #: the pointers of the workspace's regions: arrays that may share a place
        self.workspace = workspace
        #: whether a loop printed so far is marked free of dependences between iterations
        self.independent = False
        #: how many of the plan's statements name each array (see ``element_locals``)
        self.naming = _naming(plan.all_statements())

    def var(self, index: Idx) -> str:
        return self.variables.name(index)

    def bound(self, expr: Expr) -> str:
        return self.printer.doprint(expr)

    def head(self, index: Idx) -> str:
        """``for (...) {`` over ``index``'s range: ``v < n`` for ``0..n-1``, else ``v <= hi``."""
        v = self.var(index)
        if index.lower == 0:
            return f"for (long {v} = 0; {v} < {self.bound(index.upper + 1)}; ++{v})"
        return (f"for (long {v} = {self.bound(index.lower)}; {v} <= {self.bound(index.upper)}; "
                f"++{v})")

    def loops(self, indices: list[Idx], body: list[str], indent: str) -> list[str]:
        """``body`` inside one ``for`` per index, outermost first."""
        lines: list[str] = []
        depth = indent
        for index in indices:
            lines.append(f"{depth}{self.head(index)} {{")
            depth += _INDENT
        lines += [depth + line for line in body]
        for level in range(len(indices) - 1, -1, -1):
            lines.append(indent + _INDENT * level + "}")
        return lines

    def free(self, ref: Ref) -> list[Idx]:
        """The loop indices of ``ref`` (its plain Idx indices not bound by an enclosing loop)."""
        out: list[Idx] = []
        for index in ref_indices(ref):
            for symbol in sorted(index.free_symbols, key=str):
                if isinstance(symbol, Idx) and symbol not in self.fixed and symbol not in out:
                    out.append(symbol)
        return out

    def lines(self, statements: list[Statement] | tuple[Statement, ...],
              indent: str = "") -> list[str]:
        lines: list[str] = []
        statements = list(statements)
        n = 0
        while n < len(statements):
            run = self.independent_products(statements, n)
            if len(run) > 1:
                for group in _by_shape(run):
                    lines += self.products(group, indent)
                n += len(run)
                continue
            step = self.elementwise_run(statements, n)
            if len(step) > 1:
                lines += self.fused(step, indent)
                n += len(step)
                continue
            statement = statements[n]
            if statement.comment:
                lines.append(f"{indent}/* {escape.c_comment(statement.comment)} */")
            lines += self.visit(statement, indent)
            n += 1
        return lines

    def elementwise_run(self, statements: list[Statement], start: int
                        ) -> list[Assign | Guarded]:
        """The elementwise statements of one step from ``statements[start]`` on,
        consecutive, over the same loops, where no statement touches an element another
        writes but at that same element: one loop nest runs them, each element's
        statements in their order (issue 16, item 3: a step's gates, state and output in
        one pass over ``B·H``, the backward pass's δ's in another).

        Only inside the loop over time: there every array the loop names is in use for
        the whole loop (``lifetimes.spans`` counts a loop as one statement), so no two of
        them share a workspace place, and distinct arrays are distinct memory but for the
        views of one buffer, which are disjoint slices of it."""
        if self.plan.time is None or self.plan.time not in self.fixed:
            return []
        run: list[Assign | Guarded] = []
        loops: list[Idx] | None = None
        seen: list[_Touch] = []
        for statement in statements[start:]:
            assign = _elementwise(statement)
            if assign is None:
                break
            these = self.free(assign.out)
            if not these or (loops is not None and these != loops):
                break
            touches = self.touches(assign)
            if any(self.free(ref) and not set(self.free(ref)) <= set(these)
                   for ref in assign.value.atoms(Indexed)):
                break  # reads along an axis the loops do not run
            if any(self.clash(a, b) for a in touches for b in seen):
                break
            loops = these
            run.append(statement)
            seen += touches
        return run

    def touches(self, assign: Assign) -> list[_Touch]:
        """The elements ``assign`` writes and reads, as printed at the loops' variables."""
        refs = sorted(assign.value.atoms(Indexed), key=str)
        with self.printer.unrecorded():  # compared, not printed
            return [_Touch(ref_name(assign.out), self.printer.element(assign.out), True),
                    *(_Touch(ref_name(ref), self.printer.element(ref), False) for ref in refs)]

    def clash(self, a: _Touch, b: _Touch) -> bool:
        """Whether ``a`` and ``b``, one a write, may touch one element of memory from
        different iterations of a shared loop nest."""
        if not (a.writes or b.writes):
            return False
        if a.array == b.array:
            return a.element != b.element
        first, second = self.plan.arrays[a.array], self.plan.arrays[b.array]
        storage = [x.view.buffer if x.view else x.name for x in (first, second)]
        # distinct views of one buffer are disjoint; a view and its buffer are not
        return storage[0] == storage[1] and not (first.view and second.view)

    def fused(self, run: list[Assign | Guarded], indent: str) -> list[str]:
        """The statements of :meth:`elementwise_run` as one loop nest, a line each (a
        guarded one zero where its condition fails), its comment above it."""
        body: list[str] = []
        local = self.element_locals(run)
        for statement in run:
            assign = _elementwise(statement)
            assert assign is not None
            for comment in (statement.comment, assign.comment if assign is not statement
                            else ""):
                if comment:
                    body.append(f"/* {escape.c_comment(comment)} */")
            value = self.printer.doprint(assign.value.replace(
                lambda e: isinstance(e, Indexed) and ref_name(e) in local,
                lambda e: local[ref_name(e)]))
            if isinstance(statement, Guarded):
                value = f"({' && '.join(self.conditions(statement)) or '1'}) ? {value} : 0"
            name = ref_name(assign.out)
            body.append(f"const {REAL} {local[name]} = {value};" if name in local
                        else f"{self.printer.element(assign.out)} = {value};")
        *outer, inner = self.free(_elementwise(run[0]).out)  # type: ignore[union-attr]
        self.independent = True
        # CHAINRULE_INDEPENDENT (kernel.c.j2): the compiler need not test at run time
        # whether the arrays overlap, which with a dozen arrays it gives up on (GCC tests at
        # most 10 pairs) and leaves the loop scalar; elementwise_run has shown they do not
        nest = ["CHAINRULE_INDEPENDENT", f"{self.head(inner)} {{",
                *(_INDENT + line for line in body), "}"]
        return self.loops(outer, nest, indent)

    def element_locals(self, run: list[Assign | Guarded]) -> dict[str, Symbol]:
        """The arrays of a fused step that can be locals of its loop body, each with its
        local's C name: a temporary the run alone names (no other statement of the plan,
        no copy to the caller), written by one statement and read only after it, at the
        element it wrote. Nothing reads its memory, so it needs none (no region in the
        workspace either: the body never names it)."""
        in_run = _naming(run)
        elements: dict[str, set[str]] = {}
        first: dict[str, bool] = {}  # whether the array's first reference is its write
        writes: Counter[str] = Counter()
        for statement in run:
            assign = _elementwise(statement)
            assert assign is not None
            for touch in self.touches(assign)[1:]:
                elements.setdefault(touch.array, set()).add(touch.element)
                first.setdefault(touch.array, False)
            written_at = self.touches(assign)[0]
            out = written_at.array
            elements.setdefault(out, set()).add(written_at.element)
            first.setdefault(out, True)
            writes[out] += 1
        kept = {*self.plan.outputs, *self.plan.gradients.values()}
        local: dict[str, Symbol] = {}
        for name, count in writes.items():
            array = self.plan.arrays[name]
            if (count == 1 and first[name] and len(elements[name]) == 1
                    and in_run[name] == self.naming[name] and name not in kept
                    and array.kind in (Kind.FORWARD, Kind.ADJOINT, Kind.TEMPORARY)
                    and not (array.view or array.parts or array.initial_at is not None
                             or array.padding)):
                local[name] = Symbol(self.variables.local(name))
        return local

    def independent_products(self, statements: list[Statement], start: int) -> list[_Product]:
        """The contractions from ``statements[start]`` on, consecutive, none reading what
        another writes: they may run in any order, or interleaved in one loop nest."""
        run: list[_Product] = []
        for statement in statements[start:]:
            product = self.product(statement) if isinstance(statement, Contract) else None
            if product is None or not all(self.apart(product, other) for other in run):
                break
            run.append(product)
        return run

    def apart(self, a: _Product, b: _Product) -> bool:
        """Whether neither product reads the other's output, nor may its output share a
        workspace place with what the other reads (places are shared between arrays whose
        uses do not overlap in the plan's order, which interleaving would break)."""
        for x, y in ((a, b), (b, a)):
            out = self.pointer(x.statement.out)
            for operand in y.statement.operands:
                read = self.pointer(operand)
                if read == out or (out in self.workspace and read in self.workspace):
                    return False
        return ref_name(a.statement.out) != ref_name(b.statement.out)

    def pointer(self, ref: Ref) -> str:
        layout = self.layouts.get(ref_name(ref))
        return layout.pointer if layout is not None else ref_name(ref)

    def products(self, group: list[_Product], indent: str) -> list[str]:
        """Contractions of one shape: one loop nest that zeroes, then accumulates, every
        output; for matrix products, the fallback of one test of the work and a CBLAS
        call each."""
        if len(group) == 1:
            statement = group[0].statement
            comment = [f"{indent}/* {escape.c_comment(statement.comment)} */"] \
                if statement.comment else []
            return [*comment, *self.visit(statement, indent)]
        first = group[0]
        comments = [f"{indent}/* {escape.c_comment(p.statement.comment)} */"
                    for p in group if p.statement.comment]
        if first.work is None:
            return [*comments,
                    *self.zeros(first, group, indent),
                    *self.loops(list(first.order), [p.accumulate for p in group], indent)]
        inner = indent + _INDENT
        calls = [f"{inner}CHAINRULE_GEMM_CALL({p.arguments});" for p in group]
        fallback = [*self.zeros(first, group, inner),
                    *self.loops(list(first.order), [p.accumulate for p in group], inner)]
        # CHAINRULE_BLAS_RUNS (kernel.c.j2): whether CBLAS does products of this work
        return [*comments, f"{indent}if (CHAINRULE_BLAS_RUNS({first.work})) {{", *calls,
                f"{indent}}} else {{", *fallback, f"{indent}}}"]

    def zeros(self, first: _Product, group: list[_Product], indent: str) -> list[str]:
        """The loop nest zeroing the outputs of ``group`` (none where they accumulate)."""
        return self.loops(list(first.fill), [p.zero for p in group], indent) \
            if not first.statement.accumulate else []

    # --- one method per statement kind (plan/visitor.py) ---------------------------------

    def loop(self, statement: Loop, indent: str) -> list[str]:
        time = self.plan.time
        assert time is not None
        self.fixed.add(time)
        lo, hi, t = self.bound(time.lower), self.bound(time.upper), self.var(time)
        if statement.step > 0:
            head = f"for (long {t} = {lo}; {t} <= {hi}; ++{t}) {{"
        else:
            head = f"for (long {t} = {hi}; {t} >= {lo}; --{t}) {{"
        body = self.lines(statement.body, indent + _INDENT)
        self.fixed.discard(time)
        return [indent + head, *body, indent + "}"]

    def guarded(self, statement: Guarded, indent: str) -> list[str]:
        conditions = self.conditions(statement)
        body = self.lines(statement.body, indent + _INDENT)
        return [f"{indent}if ({' && '.join(conditions) or '1'}) {{", *body,
                f"{indent}}} else {{", *self.fill(statement.out, "0", indent + _INDENT),
                f"{indent}}}"]

    def conditions(self, statement: Guarded) -> list[str]:
        """The C tests of ``statement``'s condition, to be joined by ``&&``."""
        time = self.plan.time
        assert time is not None
        conditions = []
        if statement.value is not None:  # a condition on the sizes alone
            value = self.bound(statement.value)
            conditions += [f"{value} >= {self.bound(statement.lo)}",
                           f"{value} <= {self.bound(statement.hi)}"]
        if statement.value is None and sympy.simplify(statement.lo - time.lower) != 0:
            conditions.append(f"{self.var(time)} >= {self.bound(statement.lo)}")
        if statement.value is None and sympy.simplify(statement.hi - time.upper) != 0:
            conditions.append(f"{self.var(time)} <= {self.bound(statement.hi)}")
        return conditions

    def assign(self, statement: Assign, indent: str) -> list[str]:
        value = self.printer.doprint(statement.value)
        target = self.printer.element(statement.out)
        return self.loops(self.free(statement.out), [f"{target} = {value};"], indent)

    def one_hot(self, statement: OneHot, indent: str) -> list[str]:
        out = statement.out
        assert isinstance(out, Indexed)
        label = self.label_index(out, statement.axis)
        slot = self.plan.labels.index(ref_name(out))
        body = [f"{self.printer.element(out)} = labels[{slot}][{label}] == "
                f"{self.var(statement.axis)} ? 1 : 0;"]
        return self.loops(self.free(out), body, indent)

    def allocate(self, statement: Allocate, indent: str) -> list[str]:
        return []  # every array already has its place in the workspace

    def split(self, statement: Split, indent: str) -> list[str]:
        return []  # a view prints through its buffer's layout

    def fill(self, out: Ref, value: str, indent: str) -> list[str]:
        return self.loops(self.free(out), [f"{self.printer.element(out)} = {value};"], indent)

    def label_index(self, out: Indexed, axis: Idx) -> str:
        """The flat index into ``labels`` of the one-hot row ``out[..., axis]``."""
        array = self.plan.array(out)
        labels = contiguous("labels", array.axes[:-1],
                             array.first_time if array.time is not None else None)
        return self.printer.flat_index(labels, [i for i in out.indices if i != axis])

    def contract(self, statement: Contract, indent: str) -> list[str]:
        out_loops, summed = self.contract_loops(statement)
        product = " * ".join(self.printer.element(o) for o in statement.operands)
        target = self.printer.element(statement.out)
        scale = self.scale(statement)
        innermost = self.innermost(statement, out_loops, summed)
        if innermost in summed:
            # a dot product per output element: contiguous reads, one store
            order = [*[i for i in summed if i != innermost], innermost]
            body = [f"{REAL} acc = 0;",
                    *self.loops(order, [f"acc += {product};"], ""),
                    f"{target} {'+=' if statement.accumulate else '='} {scale}acc;"]
            loops = self.loops(out_loops, body, indent)
        else:
            fill = [] if statement.accumulate else self.fill(statement.out, "0", indent)
            loops = [*fill,
                     *self.loops(self.accumulation_order(statement, out_loops, summed,
                                                         innermost),
                                 [f"{target} += {scale}{product};"], indent)]
        gemm = gemm_call(statement, out_loops, summed, self.printer, self.layouts, self.fixed)
        if gemm is None:
            return loops
        work, arguments = gemm
        # CHAINRULE_GEMM (kernel.c.j2) is 1 where CBLAS did the product, 0 where the loops must
        return [f"{indent}if (!CHAINRULE_GEMM({work},",
                f"{indent}{_INDENT * 2}{arguments})) {{",
                *[_INDENT + line for line in loops], f"{indent}}}"]

    def contract_loops(self, statement: Contract) -> tuple[list[Idx], list[Idx]]:
        """The output's loops and the summed ones, in the order the operands name them."""
        out_loops = self.free(statement.out)
        summed: list[Idx] = []
        for operand in statement.operands:
            for index in self.free(operand):
                if index not in out_loops and index not in summed:
                    summed.append(index)
        return out_loops, summed

    def scale(self, statement: Contract) -> str:
        coefficient = statement.coefficient
        return "" if coefficient == 1 else f"{self.printer.doprint(coefficient)} * "

    @staticmethod
    def accumulation_order(statement: Contract, out_loops: list[Idx], summed: list[Idx],
                           innermost: Idx | None) -> list[Idx]:
        outer = [i for i in out_loops if i != innermost]
        return [*outer, *summed, *([innermost] if innermost is not None else [])]

    def product(self, statement: Contract) -> _Product | None:
        """``statement`` as zero-then-accumulate loops, with its CBLAS call where it is a
        matrix product; None where its loops are dot products."""
        out_loops, summed = self.contract_loops(statement)
        innermost = self.innermost(statement, out_loops, summed)
        if innermost in summed:
            return None
        gemm = gemm_call(statement, out_loops, summed, self.printer, self.layouts, self.fixed)
        target = self.printer.element(statement.out)
        operands = " * ".join(self.printer.element(o) for o in statement.operands)
        order = self.accumulation_order(statement, out_loops, summed, innermost)
        fill = () if statement.accumulate else tuple(self.free(statement.out))
        return _Product(statement, fill, f"{target} = 0;",
                        tuple(order), f"{target} += {self.scale(statement)}{operands};",
                        *(gemm or (None, None)))

    def innermost(self, statement: Contract, out_loops: list[Idx],
                  summed: list[Idx]) -> Idx | None:
        """The index whose loop walks memory with stride 1 in the most arrays."""
        refs = [statement.out, *statement.operands]

        def strided(index: Idx) -> int:
            count = 0
            for ref in refs:
                loops = self.free(ref)
                if index in loops and loops[-1] != index:
                    count += 1
            return count

        candidates = [*out_loops[::-1], *summed[::-1]]
        if not candidates:
            return None
        return min(candidates, key=lambda i: (strided(i), candidates.index(i)))

    def softmax(self, statement: Softmax, indent: str) -> list[str]:
        out, logits, axis = statement.out, statement.logits, statement.axis
        outer = [i for i in self.free(out) if i != axis]
        exp, log = self.printer.function("exp"), self.printer.function("log")
        u = self.printer.element(logits)
        o = self.printer.element(out)
        first = self.printer.element(logits.xreplace({axis: axis.lower}))
        each = self.head(axis)
        body = [f"{REAL} top = {first};",
                f"{each} top = {u} > top ? {u} : top;",
                f"{REAL} total = 0;",
                f"{each} total += {exp}({u} - top);"]
        if statement.log:
            body += [f"{REAL} shift = top + {log}(total);",
                     f"{each} {o} = {u} - shift;"]
        else:
            body += [f"{each} {o} = {exp}({u} - top) / total;"]
        return self.loops(outer, body, indent)

    def concat(self, statement: Concat, indent: str) -> list[str]:
        joined = self.plan.arrays[statement.out]
        lines: list[str] = []
        start: Expr = sympy.S.Zero
        for part in statement.parts:
            array = self.plan.arrays[part]
            axes = list(array.axes)[::-1] if statement.transposed else list(array.axes)
            # the loops run over the destination's axes in its order: its writes are contiguous
            indices = self.variables.copy_indices(axes, False, self.fixed)
            shifted: list[Expr] = list(indices)
            shifted[statement.axis] = indices[statement.axis] + start
            read = indices[::-1] if statement.transposed else indices
            source = self.printer.element(sympy.IndexedBase(part)[tuple(read)])
            destination = self.printer.element(sympy.IndexedBase(joined.name)[tuple(shifted)])
            lines += self.loops(indices, [f"{destination} = {source};"], indent)
            start += axes[statement.axis]
        return lines

    def initial(self, statement: Initial, indent: str) -> list[str]:
        array = self.plan.arrays[statement.array]
        layout = self.layouts[array.name]
        count = self.bound(sympy.Mul(*array.axes[1:]))
        row = self.bound(sympy.expand(layout.offset + (statement.step - array.first_time)
                                      * layout.strides[0]))
        slot = list(self.plan.states).index(statement.state)
        pointer = self.printer.pointer(layout)
        destination = f"{pointer} + {row}" if row != "0" else pointer
        lines = [f"{indent}if (state) memcpy({destination}, state[{slot}], "
                 f"sizeof({REAL}) * (size_t)({count}));",
                 f"{indent}else memset({destination}, 0, sizeof({REAL}) * (size_t)({count}));"]
        if array.padding:  # the steps beyond the state's: zeros
            rows = sympy.Integer(array.padding)
            if array.first_time <= 0:
                offset = sympy.expand(layout.offset)
                start = pointer if offset == 0 else f"{pointer} + {self.bound(offset)}"
            else:
                start = f"{destination} + {count}"
            lines.append(f"{indent}memset({start}, 0, sizeof({REAL}) * (size_t)("
                         f"{self.bound(rows * sympy.Mul(*array.axes[1:]))}));")
        return lines

    def copy_out(self, name: str, pointer: str) -> list[str]:
        """Copy array ``name`` (any layout) into the caller's contiguous array ``pointer``;
        of an array over time, the steps 1..T (not an initial state's row)."""
        array = self.plan.arrays[name]
        over_time = array.time is not None
        extents = list(array.axes)
        if over_time and array.initial_at is not None:
            extents[0] = extents[0] - 1
        indices = self.variables.copy_indices(extents, over_time, self.fixed)
        destination = contiguous(pointer, extents, 1 if over_time else None)
        element = self.printer.element(sympy.IndexedBase(name)[tuple(indices)])
        body = [f"{pointer}[{self.printer.flat_index(destination, indices)}] = {element};"]
        return self.loops(indices, body, "")


@dataclass(frozen=True)
class _Touch:
    """One element a statement writes or reads: its array and its C index expression."""

    array: str
    element: str
    writes: bool


def _naming(statements: list[Statement] | tuple[Statement, ...]) -> Counter[str]:
    """For each array, how many of ``statements`` (those inside loops and guards
    included) name it."""
    return Counter(name for statement in walk(statements)
                   for name in {name for name, _ in references(statement)})


def _elementwise(statement: Statement) -> Assign | None:
    """The assignment ``statement`` makes elementwise: itself, or the one assignment a
    guard on the time index holds (zero elsewhere); None for anything else."""
    if isinstance(statement, Assign):
        return statement
    if (isinstance(statement, Guarded) and statement.value is None
            and len(statement.body) == 1 and isinstance(statement.body[0], Assign)
            and statement.body[0].out == statement.out):
        return statement.body[0]
    return None


def _by_shape(run: list[_Product]) -> list[list[_Product]]:
    """``run`` in groups of one shape, each where its first product stood."""
    groups: dict[tuple[object, ...], list[_Product]] = {}
    for product in run:
        groups.setdefault(product.shape, []).append(product)
    return list(groups.values())
