"""The C backend: Plan → ``<net>.c`` and ``<net>.h`` (C99, libc and libm only).

Role in DESIGN.md's picture: ``plan → c → generated/<net>/<net>.{c,h}``, a
second printer of the same plan as the NumPy backend, never a second
derivation. Every array of the plan gets a place: the caller's arrays (inputs,
parameters, gradients) or a region of the caller's workspace; a fused buffer's
views print through the buffer's strides (``c_printer.Layout``). Each
statement becomes a loop nest ordered for the cache (the innermost loop walks
contiguous memory where it can); a contraction that is a matrix product also
gets a CBLAS call, compiled in with ``-DCHAINRULE_CBLAS`` and used above a
size threshold. The loop over ``t`` and the work hoisted out of it are the
plan's, unchanged. The templates ``templates/c/kernel.{c,h}.j2`` hold the
layout of the files; every expression arrives printed.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import Expr, Idx, Indexed, Symbol

from chainrule.codegen import escape, templating
from chainrule.codegen.backends.c.printer import KernelCPrinter, Layout, c_identifier
from chainrule.codegen.kernel_set import SEAL_PLACEHOLDER
from chainrule.codegen.plan.types import (
    Allocate,
    Array,
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
    matrix_product,
    ref_indices,
    ref_name,
    walk,
)
from chainrule.symbolic.functions import logistic
from chainrule.symbolic.names import Names, c_functions

PRECISIONS = {"f64": "double", "f32": "float"}
_INDENT = "    "


def render_c(plan: Plan) -> dict[str, str]:
    """The texts of ``<net>.c`` and ``<net>.h`` for ``plan``."""
    kernel = _Kernel(plan)
    header = templating.render("c/kernel.h.j2", kernel.header_context())
    source = templating.render("c/kernel.c.j2", kernel.source_context())
    return {f"{plan.name}.c": source, f"{plan.name}.h": header}


@dataclass(frozen=True)
class _Region:
    name: str
    size: Expr


class _Kernel:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.size_names = [str(s) for s in plan.sizes] + (
            [str(plan.time.upper)] if plan.time is not None else []) + ["B"]
        self.params = list(plan.parameters)
        self.states = list(plan.states)
        self.regions: list[_Region] = []
        self.layouts: dict[str, Layout] = {}
        self.scalars: list[str] = []
        self.gradient_copies: list[tuple[str, str]] = []  # (array, destination pointer)
        self.assign_storage()
        # loop variables are named after their indices, free of every array, size and
        # reserved name (what the C code uses itself); the time index is named first
        self.names = Names([*self.size_names, *plan.arrays, *c_functions(plan.name)])
        self.variables: dict[Expr, Symbol] = {}
        indices = self.indices()
        if plan.time is not None:
            indices = [plan.time, *(i for i in indices if i != plan.time)]
        for index in indices:
            self.variables[index] = Symbol(c_identifier(index.name, self.names), integer=True)

    def fresh_index(self, extent: Expr) -> Idx:
        """A new loop index ``0..extent-1`` with a C name of its own (copies, concatenations)."""
        name = c_identifier(f"n{len(self.variables)}", self.names)
        index = Idx(name, (0, extent - 1))
        self.variables[index] = Symbol(name, integer=True)
        return index

    # --- storage ----------------------------------------------------------------------------

    def assign_storage(self) -> None:
        plan = self.plan
        gradient_of = {g: p for p, g in plan.gradients.items()}
        for array in plan.arrays.values():
            name = array.name
            if array.view:
                continue
            if not array.axes:
                self.scalars.append(name)
                continue
            if array.kind is Kind.INPUT:
                self.layouts[name] = _row_major("x", array)
            elif array.kind is Kind.PARAMETER:
                self.layouts[name] = _row_major(name, array)
            elif array.kind is Kind.STATE:
                continue
            elif array.kind is Kind.GRADIENT and gradient_of.get(name) in plan.parameters:
                self.layouts[name] = _row_major(name, array)
            else:
                self.regions.append(_Region(name, sympy.Mul(*array.axes)))
                self.layouts[name] = _row_major(name, array)
        for array in plan.arrays.values():
            if array.view:
                buffer = self.layouts[array.view.buffer]
                offset = buffer.offset + array.view.start * buffer.strides[array.view.axis]
                self.layouts[array.name] = Layout(buffer.pointer, offset, buffer.strides,
                                                  buffer.first_time)
        for parameter in self.params:
            gradient = plan.gradients[parameter]
            if plan.arrays[gradient].view:
                self.gradient_copies.append((gradient, f"grads[{self.params.index(parameter)}]"))

    def indices(self) -> list[Idx]:
        found: dict[Idx, None] = {}
        for statement in walk(self.plan.all_statements()):
            for expr in _expressions(statement):
                for index in sorted((s for s in expr.free_symbols if isinstance(s, Idx)),
                                    key=str):
                    found.setdefault(index)
        if self.plan.time is not None:
            found.setdefault(self.plan.time)
        return list(found)

    # --- contexts ---------------------------------------------------------------------------

    def header_context(self) -> dict[str, object]:
        plan = self.plan
        return {
            "name": plan.name, "title": escape.c_comment(plan.title),
            "source": escape.c_comment(plan.source), "kernel_set": SEAL_PLACEHOLDER,
            "guard": f"CHAINRULE_{plan.name.upper()}_H",
            "size_names": self.size_names,
            "recurrent": plan.time is not None,
            "params": [(n, _shape_text(axes)) for n, axes in plan.parameters.items()],
            "states": [(n, _shape_text(("B", *axes))) for n, axes in plan.states.items()],
            "x_shape": _shape_text(plan.arrays[plan.input].axes),
            "labels_shape": _shape_text(plan.arrays[plan.target].axes[:-1]),
            "y_shape": _shape_text(plan.arrays[plan.output].axes),
            "classes": str(plan.arrays[plan.target].axes[-1]),
        }

    def source_context(self) -> dict[str, object]:
        plan = self.plan
        bodies = {}
        for precision, ctype in PRECISIONS.items():
            printer = KernelCPrinter(precision, self.layouts, self.variables)
            emit = _Emitter(self, printer, ctype)
            bodies[precision] = {
                "ctype": ctype,
                "forward": emit.lines(plan.forward),
                "backward": emit.lines([*plan.loss_statements, *plan.backward,
                                        *plan.gradient_statements]),
                "gradient_copies": [line for array, pointer in self.gradient_copies
                                    for line in emit.copy_out(array, pointer)],
                "state_copies": [line for i, state in enumerate(self.states)
                                 for line in emit.copy_out(plan.gradients[state],
                                                           f"state_grads[{i}]")],
                "output_copy": emit.copy_out(plan.output, "y_out"),
            }
        size_printer = KernelCPrinter("f64", {}, {})
        target = plan.arrays[plan.target]
        labels_count = sympy.Mul(*target.axes[:-1])
        return {
            "name": plan.name, "title": escape.c_comment(plan.title),
            "source": escape.c_comment(plan.source), "kernel_set": SEAL_PLACEHOLDER,
            "size_names": self.size_names,
            "loss": plan.loss,
            "uses_logistic": any(e.has(logistic) for s in walk(plan.all_statements())
                                 for e in _expressions(s)),
            "uses_tanh": any(e.has(sympy.tanh) for s in walk(plan.all_statements())
                             for e in _expressions(s)),
            "params": self.params,
            "states": self.states,
            "gradient_pointers": [(plan.gradients[p], i) for i, p in enumerate(self.params)
                                  if not plan.arrays[plan.gradients[p]].view],
            "regions": [(r.name, size_printer.doprint(r.size)) for r in self.regions],
            **_workspace_context(self.regions),
            "scalars": self.scalars,
            "labels_count": size_printer.doprint(labels_count),
            "classes": str(target.axes[-1]),
            "precisions": bodies,
        }


def _workspace_context(regions: list[_Region]) -> dict[str, object]:
    """``<net>_workspace_bytes``'s regions, counted with the overflow-checked helpers."""
    counts = [(region.name, _checked_count(region.size)) for region in regions]
    return {"region_counts": counts,
            "uses_size_add": bool(counts),  # the mul helper only ever comes with the add
            "uses_size_mul": any(_SIZE_MUL in count for _, count in counts)}


_SIZE_MUL, _SIZE_ADD = "chainrule_size_mul", "chainrule_size_add"


def _checked_count(size: Expr) -> str:
    """A region's element count (sizes, positive integers, + * and whole powers) in C, each
    product and sum through the saturating ``chainrule_size_mul`` / ``_add`` of the template,
    so that an overflow shows as SIZE_MAX instead of wrapping around."""
    if isinstance(size, sympy.Integer) and 0 < size < 2**31:
        return str(size)
    if isinstance(size, Symbol):
        return str(size)
    if isinstance(size, sympy.Pow) and isinstance(size.exp, sympy.Integer) and size.exp > 0:
        return _fold(_SIZE_MUL, [_checked_count(size.base)] * int(size.exp))
    if isinstance(size, sympy.Mul):
        return _fold(_SIZE_MUL, [_checked_count(arg) for arg in size.args])
    if isinstance(size, sympy.Add):
        return _fold(_SIZE_ADD, [_checked_count(arg) for arg in size.args])
    raise ValueError(f"the workspace region size {size} is not a sum of products of sizes and "
                     f"positive integers; its overflow check cannot be printed")


def _fold(helper: str, operands: list[str]) -> str:
    text = operands[0]
    for operand in operands[1:]:
        text = f"{helper}({text}, {operand})"
    return text


def _row_major(pointer: str, array: Array) -> Layout:
    strides = [sympy.S.One] * len(array.axes)
    for position in range(len(array.axes) - 2, -1, -1):
        strides[position] = strides[position + 1] * array.axes[position + 1]
    first = array.first_time if array.time is not None else None
    return Layout(pointer, sympy.S.Zero, tuple(strides), first)


def _shape_text(axes: tuple[object, ...]) -> str:
    return "(" + ", ".join(str(a) for a in axes) + ")"


def _expressions(statement: Statement) -> list[Expr]:
    if isinstance(statement, Contract):
        return [statement.out, *statement.operands]
    if isinstance(statement, Assign):
        return [statement.out, statement.value]
    if isinstance(statement, Softmax):
        return [statement.out, statement.logits]
    if isinstance(statement, OneHot | Guarded):
        return [statement.out]
    return []


class _Emitter:
    """Statements → C lines for one precision."""

    def __init__(self, kernel: _Kernel, printer: KernelCPrinter, ctype: str) -> None:
        self.kernel = kernel
        self.plan = kernel.plan
        self.printer = printer
        self.ctype = ctype
        self.fixed: set[Idx] = set()  # indices bound by an enclosing loop (t inside Loop)

    def var(self, index: Idx) -> str:
        return self.kernel.variables[index].name

    def bound(self, expr: Expr) -> str:
        return self.printer.doprint(expr)

    def loops(self, indices: list[Idx], body: list[str], indent: str) -> list[str]:
        """``body`` inside one ``for`` per index, outermost first."""
        lines: list[str] = []
        depth = indent
        for index in indices:
            v = self.var(index)
            lines.append(f"{depth}for (long {v} = {self.bound(index.lower)}; "
                         f"{v} <= {self.bound(index.upper)}; ++{v}) {{")
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
        for statement in statements:
            if statement.comment:
                lines.append(f"{indent}/* {escape.c_comment(statement.comment)} */")
            lines += self.statement(statement, indent)
        return lines

    def statement(self, statement: Statement, indent: str) -> list[str]:
        if isinstance(statement, Loop):
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
        if isinstance(statement, Guarded):
            time = self.plan.time
            assert time is not None
            conditions = []
            if sympy.simplify(statement.lo - time.lower) != 0:
                conditions.append(f"{self.var(time)} >= {self.bound(statement.lo)}")
            if sympy.simplify(statement.hi - time.upper) != 0:
                conditions.append(f"{self.var(time)} <= {self.bound(statement.hi)}")
            body = self.lines(statement.body, indent + _INDENT)
            return [f"{indent}if ({' && '.join(conditions) or '1'}) {{", *body,
                    f"{indent}}} else {{", *self.fill(statement.out, "0", indent + _INDENT),
                    f"{indent}}}"]
        if isinstance(statement, Assign):
            value = self.printer.doprint(statement.value)
            target = self.printer.element(statement.out)
            return self.loops(self.free(statement.out), [f"{target} = {value};"], indent)
        if isinstance(statement, Contract):
            return self.contraction(statement, indent)
        if isinstance(statement, Softmax):
            return self.softmax(statement, indent)
        if isinstance(statement, OneHot):
            out = statement.out
            assert isinstance(out, Indexed)
            label = self.label_index(out, statement.axis)
            body = [f"{self.printer.element(out)} = labels[{label}] == "
                    f"{self.var(statement.axis)} ? 1 : 0;"]
            return self.loops(self.free(out), body, indent)
        if isinstance(statement, Concat):
            return self.concat(statement, indent)
        if isinstance(statement, Initial):
            return self.initial(statement, indent)
        if isinstance(statement, Allocate | Split):
            return []  # every array already has its place in the workspace
        raise TypeError(f"no C form for {type(statement).__name__}")

    def fill(self, out: Ref, value: str, indent: str) -> list[str]:
        return self.loops(self.free(out), [f"{self.printer.element(out)} = {value};"], indent)

    def label_index(self, out: Indexed, axis: Idx) -> str:
        """The flat index into ``labels`` of the one-hot row ``out[..., axis]``."""
        array = self.plan.array(out)
        rest = [i for i in out.indices if i != axis]
        axes = array.axes[:-1]
        flat: Expr = sympy.S.Zero
        for position, index in enumerate(rest):
            base = array.first_time if position == 0 and array.time is not None else 0
            flat = flat * axes[position] + (index - base)
        return self.printer.doprint(sympy.expand(flat.xreplace(self.kernel.variables)))

    def contraction(self, statement: Contract, indent: str) -> list[str]:
        out = statement.out
        out_loops = self.free(out)
        summed: list[Idx] = []
        for operand in statement.operands:
            for index in self.free(operand):
                if index not in out_loops and index not in summed:
                    summed.append(index)
        product = " * ".join(self.printer.element(o) for o in statement.operands)
        coefficient = statement.coefficient
        scale = "" if coefficient == 1 else f"{self.printer.doprint(coefficient)} * "
        target = self.printer.element(out)
        innermost = self.innermost(statement, out_loops, summed)
        if innermost in summed:
            # a dot product per output element: contiguous reads, one store
            order = [*[i for i in summed if i != innermost], innermost]
            body = [f"{self.ctype} acc = 0;",
                    *self.loops(order, [f"acc += {product};"], ""),
                    f"{target} = {scale}acc;"]
            loops = self.loops(out_loops, body, indent)
        else:
            outer = [i for i in out_loops if i != innermost]
            order = [*outer, *summed, *([innermost] if innermost is not None else [])]
            loops = [*self.fill(out, "0", indent),
                     *self.loops(order, [f"{target} += {scale}{product};"], indent)]
        gemm = self.gemm(statement, out_loops, summed)
        if gemm is None:
            return loops
        call, work = gemm
        return ["#ifdef CHAINRULE_CBLAS",
                f"{indent}if ({work} >= CHAINRULE_BLAS_MIN_WORK) {{",
                f"{indent}{_INDENT}{call}",
                f"{indent}}} else",
                "#endif",
                f"{indent}{{", *[_INDENT + line for line in loops], f"{indent}}}"]

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

    def gemm(self, statement: Contract, out_loops: list[Idx],
             summed: list[Idx]) -> tuple[str, str] | None:
        """A ``cblas_?gemm`` call when the contraction is a product of two matrices."""
        if len(statement.operands) != 2 or not out_loops or not summed:
            return None
        views = [self.matrix_view(r) for r in (*statement.operands, statement.out)]
        if any(v is None for v in views):
            return None
        (a_ptr, a_axes), (b_ptr, b_axes), (c_ptr, c_axes) = views  # type: ignore[misc]
        names = [[axis[0] for axis in axes] for axes in (a_axes, b_axes, c_axes)]
        product = matrix_product(*names)
        if product is None or set(product[1]) != set(summed):
            return None
        swapped, shared = product
        (p_ptr, p_axes), (q_ptr, q_axes) = ((b_ptr, b_axes), (a_ptr, a_axes)) if swapped \
            else ((a_ptr, a_axes), (b_ptr, b_axes))
        p_free = [a for a in p_axes if a[0] not in shared]
        q_free = [a for a in q_axes if a[0] not in shared]
        if not p_free or not q_free:  # a matrix times a vector: the loops do it
            return None
        p_shared = [a for a in p_axes if a[0] in shared]
        q_shared = [a for a in q_axes if a[0] in shared]
        # the summed axes must lie in the same order in both matrices to flatten into one
        if [a[0] for a in p_shared] != [a[0] for a in q_shared]:
            return None
        p_layout = _matrix(p_free, p_shared, p_axes)
        q_layout = _matrix(q_shared, q_free, q_axes)
        c_layout = _matrix(p_free, q_free, c_axes)
        if p_layout is None or q_layout is None or c_layout is None or c_layout[0]:
            return None
        (p_trans, lda), (q_trans, ldb), (_, ldc) = p_layout, q_layout, c_layout
        m = self.size(p_free)
        n = self.size(q_free)
        k = self.size(p_shared)
        alpha = self.printer.doprint(statement.coefficient)
        routine = "cblas_sgemm" if self.ctype == "float" else "cblas_dgemm"
        transpose = {False: "CblasNoTrans", True: "CblasTrans"}
        call = (f"{routine}(CblasRowMajor, {transpose[p_trans]}, {transpose[q_trans]}, "
                f"{m}, {n}, {k}, {alpha}, {p_ptr}, {self.bound(lda)}, {q_ptr}, "
                f"{self.bound(ldb)}, 0, {c_ptr}, {self.bound(ldc)});")
        return call, f"(double)({m}) * ({n}) * ({k})"

    def size(self, axes: list[tuple[Idx, Expr, Expr]]) -> str:
        return self.bound(sympy.Mul(*(extent for _, extent, _ in axes)))

    def matrix_view(self, ref: Ref) -> tuple[str, list[tuple[Idx, Expr, Expr]]] | None:
        """``(&first element, [(index, extent, stride)])`` of ``ref`` over its loop indices."""
        if not isinstance(ref, Indexed):
            return None
        layout = self.kernel.layouts[ref_name(ref)]
        offset = layout.offset
        axes: list[tuple[Idx, Expr, Expr]] = []
        for position, (index, stride) in enumerate(zip(ref.indices, layout.strides,
                                                       strict=True)):
            base = layout.first_time if position == 0 and layout.first_time is not None else 0
            loops = [s for s in index.free_symbols if isinstance(s, Idx) and s not in self.fixed]
            if not loops:
                offset += (index.xreplace(self.kernel.variables) - base) * stride
                continue
            if len(loops) != 1 or any(loops[0] == a[0] for a in axes):
                return None
            (loop,) = loops
            shift = sympy.expand(index - loop)
            if shift.has(Idx):
                return None
            offset += (loop.lower + shift - base) * stride
            axes.append((loop, sympy.simplify(loop.upper - loop.lower + 1), stride))
        pointer = f"{layout.pointer} + {self.printer.doprint(sympy.expand(offset))}" \
            if sympy.expand(offset) != 0 else layout.pointer
        return pointer, axes

    def softmax(self, statement: Softmax, indent: str) -> list[str]:
        out, logits, axis = statement.out, statement.logits, statement.axis
        outer = [i for i in self.free(out) if i != axis]
        v = self.var(axis)
        lo, hi = self.bound(axis.lower), self.bound(axis.upper)
        exp = "expf" if self.ctype == "float" else "exp"
        log = "logf" if self.ctype == "float" else "log"
        u = self.printer.element(logits)
        o = self.printer.element(out)
        first = self.printer.element(logits.xreplace({axis: axis.lower}))
        body = [f"{self.ctype} top = {first};",
                f"for (long {v} = {lo}; {v} <= {hi}; ++{v}) top = {u} > top ? {u} : top;",
                f"{self.ctype} total = 0;",
                f"for (long {v} = {lo}; {v} <= {hi}; ++{v}) total += {exp}({u} - top);"]
        if statement.log:
            body += [f"{self.ctype} shift = top + {log}(total);",
                     f"for (long {v} = {lo}; {v} <= {hi}; ++{v}) {o} = {u} - shift;"]
        else:
            body += [f"for (long {v} = {lo}; {v} <= {hi}; ++{v}) {o} = {exp}({u} - top) / total;"]
        return self.loops(outer, body, indent)

    def concat(self, statement: Concat, indent: str) -> list[str]:
        joined = self.plan.arrays[statement.out]
        lines: list[str] = []
        start: Expr = sympy.S.Zero
        for part in statement.parts:
            array = self.plan.arrays[part]
            indices = [self.kernel.fresh_index(extent) for extent in array.axes]
            shifted = list(indices)
            shifted[statement.axis] = indices[statement.axis] + start
            source = self.printer.element(sympy.IndexedBase(part)[tuple(indices)])
            destination = self.printer.element(sympy.IndexedBase(joined.name)[tuple(shifted)])
            lines += self.loops(indices, [f"{destination} = {source};"], indent)
            start += array.axes[statement.axis]
        return lines

    def initial(self, statement: Initial, indent: str) -> list[str]:
        array = self.plan.arrays[statement.array]
        layout = self.kernel.layouts[array.name]
        count = self.bound(sympy.Mul(*array.axes[1:]))
        row = self.bound(sympy.expand(layout.offset))
        slot = self.kernel.states.index(statement.state)
        destination = f"{layout.pointer} + {row}" if row != "0" else layout.pointer
        return [f"{indent}if (state) memcpy({destination}, state[{slot}], "
                f"sizeof({self.ctype}) * (size_t)({count}));",
                f"{indent}else memset({destination}, 0, sizeof({self.ctype}) * (size_t)({count}));"]

    def copy_out(self, name: str, pointer: str) -> list[str]:
        """Copy array ``name`` (any layout) into the caller's contiguous array ``pointer``;
        of an array over time, the steps 1..T (not an initial state's row)."""
        array = self.plan.arrays[name]
        over_time = array.time is not None
        extents = list(array.axes)
        if over_time and array.first_time == 0:
            extents[0] = extents[0] - 1
        indices = [self.kernel.fresh_index(extent) for extent in extents]
        # the element printer takes the step t at the time position; rows hold steps 1..T
        source = [i + 1 if n == 0 and over_time else i for n, i in enumerate(indices)]
        flat: Expr = sympy.S.Zero
        for index, extent in zip(indices, extents, strict=True):
            flat = flat * extent + self.kernel.variables[index]
        element = self.printer.element(sympy.IndexedBase(name)[tuple(source)])
        body = [f"{pointer}[{self.printer.doprint(sympy.expand(flat))}] = {element};"]
        return self.loops(indices, body, "")


def _matrix(rows: list[tuple[Idx, Expr, Expr]], cols: list[tuple[Idx, Expr, Expr]],
            axes: list[tuple[Idx, Expr, Expr]]) -> tuple[bool, Expr] | None:
    """``(transposed, leading dimension)`` if ``axes`` is the matrix rows × cols (or cols ×
    rows, transposed) in row-major memory; None if the blocks cannot be flattened."""
    names = [a[0] for a in axes]
    row_names, col_names = [a[0] for a in rows], [a[0] for a in cols]
    if names == row_names + col_names:
        transposed = False
    elif names == col_names + row_names:
        transposed = True
    else:
        return None
    # the blocks as this array lays them out (its own strides)
    outer, inner = axes[:len(axes) - len(cols if not transposed else rows)], \
        axes[len(axes) - len(cols if not transposed else rows):]
    if not _flat(inner) or not _flat(outer) or inner[-1][2] != 1:
        return None
    return transposed, outer[-1][2]


def _flat(block: list[tuple[Idx, Expr, Expr]]) -> bool:
    """Whether consecutive axes of ``block`` are contiguous with each other."""
    return all(sympy.simplify(block[n][2] - block[n + 1][1] * block[n + 1][2]) == 0
               for n in range(len(block) - 1))


__all__ = ["PRECISIONS", "render_c"]
