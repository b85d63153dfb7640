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
plan's, unchanged.

The kernels come in every precision of ``codegen/precision.py`` from one body:
the statements are printed once (``printer.py``) in names each precision binds
with ``#define`` (``chainrule_real`` → ``double``, ``chainrule_exp`` → ``expf``,
``CHAINRULE_LIT(0.5, 0.5F)``): each run function holds the same text, between the
``#define``s of its precision and their ``#undef``s. (One body expanded from a macro
would be shorter, and unreadable: one logical line, which debuggers and compiler
messages point at as a whole.) Each function declares only what its body names.
The templates ``templates/kernel.{c,h}.j2`` hold the layout of the files; every
expression arrives printed.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import Expr, Idx, Indexed, Symbol

from chainrule.codegen import escape, templating
from chainrule.codegen.backends.c.printer import (
    BOUND_PREFIX,
    LITERAL,
    REAL,
    KernelCPrinter,
    Layout,
    c_identifier,
)
from chainrule.codegen.kernel_set import SEAL_PLACEHOLDER
from chainrule.codegen.plan.contract import contract_of
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
    read,
    ref_indices,
    ref_name,
    walk,
)
from chainrule.codegen.plan.visitor import StatementVisitor
from chainrule.codegen.precision import F32, PRECISIONS, Precision
from chainrule.symbolic import Names, c_functions, logistic

_INDENT = "    "

#: the C names of the contract's status codes (``plan/contract.py``'s STATUS)
STATUS_MACROS = {0: "CHAINRULE_OK", 1: "CHAINRULE_BAD_SIZE", 2: "CHAINRULE_BAD_LABEL"}

#: the precision whose tanh is the kernel's own helper, ``chainrule_tanh_<name>``: expf
#: vectorizes where tanhf does not (see the helper's comment in ``kernel.c.j2``)
TANH_HELPER = F32

#: the longest string literal C99 promises to compile (``-pedantic`` warns beyond it)
_C99_STRING_LIMIT = 4095


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
        self.printer = KernelCPrinter(self.layouts, self.variables)
        self.body = self.print_body()

    def copy_indices(self, extents: list[Expr], time_first: bool, bound: set[Idx]) -> list[Idx]:
        """Loop indices over ``extents`` for a copy, none in ``bound`` (the enclosing loops)
        nor twice: the kernel's own index over each range where it has one (so the copy of
        ``W_xi[i, c]`` loops over ``i`` and ``c``), else a new one named after the size. With
        ``time_first`` the first runs over the steps ``1..extent`` (the time index)."""
        chosen: list[Idx] = []
        for position, extent in enumerate(extents):
            lower = 1 if time_first and position == 0 else 0
            upper = extent if lower else extent - 1
            index = next((i for i in self.variables
                          if isinstance(i, Idx) and i not in chosen and i not in bound
                          and i.lower == lower and i.upper == upper), None)
            if index is None:
                base = str(extent).lower() if isinstance(extent, Symbol) else "n"
                name = c_identifier(base, self.names)
                index = Idx(name, (lower, upper))
                self.variables[index] = Symbol(name, integer=True)
            chosen.append(index)
        return chosen

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

    # --- the body -----------------------------------------------------------------------------

    def print_body(self) -> dict[str, object]:
        """Every statement printed once, then what the body names: the sizes, parameters,
        regions and scalars it declares, in the plan's order."""
        plan, printer = self.plan, self.printer
        emit = _Emitter(self, printer)
        target = plan.arrays[plan.target]
        body: dict[str, object] = {
            "forward": emit.lines(plan.forward),
            "backward": emit.lines([*plan.loss_statements, *plan.backward,
                                    *plan.gradient_statements]),
            "gradient_copies": [line for array, pointer in self.gradient_copies
                                for line in emit.copy_out(array, pointer)],
            "state_copies": [line for i, state in enumerate(self.states)
                             for line in emit.copy_out(plan.gradients[state],
                                                       f"state_grads[{i}]")],
            "output_copy": emit.copy_out(plan.output, "y_out"),
            "labels_count": printer.doprint(sympy.Mul(*target.axes[:-1])),
            "classes": printer.doprint(target.axes[-1]),
        }
        used = printer.names
        # a region the body never names gets no place (nor bytes in <net>_workspace_bytes)
        self.regions = [region for region in self.regions if region.name in used]
        regions, start = [], f"({REAL} *)workspace"
        for region in self.regions:  # one after another in the workspace
            regions.append((region.name, start))
            start = f"{region.name} + {printer.doprint(region.size)}"
        body["regions"] = regions
        body["sizes"] = [(size, slot) for slot, size in enumerate(self.size_names)
                         if size in used]
        body["params"] = [(param, slot) for slot, param in enumerate(self.params)
                          if param in used]
        body["scalars"] = [scalar for scalar in self.scalars if scalar in used]
        body["gradient_pointers"] = [(plan.gradients[p], slot)
                                     for slot, p in enumerate(self.params)
                                     if not plan.arrays[plan.gradients[p]].view
                                     and plan.gradients[p] in used]
        return body

    # --- contexts ---------------------------------------------------------------------------

    def status(self) -> list[tuple[str, int, str, str]]:
        """The status codes of the contract: (C macro, code, the macro and the code as the
        header's table shows them, padded to one width, meaning)."""
        status = contract_of(self.plan).status
        unnamed = sorted(set(status) - set(STATUS_MACROS))
        if unnamed:
            raise ValueError(f"the C backend has no macro for the status codes {unnamed}")
        names = {code: f"{STATUS_MACROS[code]} ({code})" for code in status}
        width = max(len(name) for name in names.values())
        return [(STATUS_MACROS[code], code, names[code].ljust(width),
                 escape.c_comment(meaning)) for code, meaning in status.items()]

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
            "status": self.status(),
            "precisions": PRECISIONS,
            "widest": _widest().c_type,
        }

    def source_context(self) -> dict[str, object]:
        plan = self.plan
        functions = list(self.printer.functions)
        uses_tanh = sympy.tanh.__name__ in functions
        uses_logistic = logistic.__name__ in functions
        return {
            "name": plan.name, "title": escape.c_comment(plan.title),
            "source": escape.c_comment(plan.source), "kernel_set": SEAL_PLACEHOLDER,
            "size_names": self.size_names,
            "loss": plan.loss,
            "tanh_helper": TANH_HELPER if uses_tanh or uses_logistic else None,
            "logistic_helpers": [(p, _bound(p, sympy.tanh.__name__)) for p in PRECISIONS]
            if uses_logistic else [],
            "uses_gemm": "gemm" in functions,
            "precisions": [(p, _bindings(p, functions)) for p in PRECISIONS],
            "real": REAL,
            "states": bool(self.states),
            **self.body,
            **_workspace_context(self.regions, self.size_names),
            "widest": _widest().c_type,
            **_contract_context(plan),
        }


def _bound(precision: Precision, function: str) -> str:
    """What ``chainrule_<function>`` of the body stands for in ``precision``."""
    if function == "gemm":
        return precision.gemm
    if function == logistic.__name__:
        return f"chainrule_logistic_{precision.name}"
    if function == sympy.tanh.__name__ and precision == TANH_HELPER:
        return f"chainrule_tanh_{precision.name}"
    return precision.c_math(function)


def _bindings(precision: Precision, functions: list[str]) -> list[tuple[str, str, str]]:
    """The ``#define``s that bind the body's names to ``precision``: (name, parameters,
    value); the literal macro picks its argument of this precision."""
    bindings = [(REAL, "", precision.c_type)]
    for function in sorted(functions, key=lambda f: (f != LITERAL, f)):
        if function == LITERAL:
            parameters = ", ".join(f"chainrule_{p.name}" for p in PRECISIONS)
            bindings.append((LITERAL, f"({parameters})", f"chainrule_{precision.name}"))
        else:
            bindings.append((BOUND_PREFIX + function, "", _bound(precision, function)))
    return bindings


def _widest() -> Precision:
    """The precision with the widest elements: the workspace is counted in them."""
    return max(PRECISIONS, key=lambda p: p.numpy_dtype.itemsize)


def _contract_context(plan: Plan) -> dict[str, object]:
    """``<net>_contract()``'s JSON as C: string literals of a line each, or, beyond what C99
    promises a string literal, the bytes of a char array."""
    text = contract_of(plan).to_json()
    if len(text.encode("utf-8")) > _C99_STRING_LIMIT:
        return {"contract": [], "contract_bytes": escape.c_bytes(text)}
    return {"contract": [escape.c_string(piece) for piece in _pieces(text, 72)],
            "contract_bytes": ""}


def _pieces(text: str, width: int) -> list[str]:
    """``text`` cut into pieces of at most ``width`` characters, each after a comma where
    one is near enough."""
    pieces = []
    while len(text) > width:
        cut = text.rfind(",", width // 2, width) + 1 or width
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text]


def _workspace_context(regions: list[_Region], size_names: list[str]) -> dict[str, object]:
    """``<net>_workspace_bytes``'s regions, counted with the overflow-checked helpers, and the
    sizes (with their places in ``sizes``) that the counts read."""
    counts = [(region.name, _checked_count(region.size)) for region in regions]
    read = {str(s) for region in regions for s in region.size.free_symbols}
    return {"region_counts": counts,
            "counted_sizes": [(size, slot) for slot, size in enumerate(size_names)
                              if size in read],
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
    return _contiguous(pointer, array.axes,
                       array.first_time if array.time is not None else None)


def _contiguous(pointer: str, axes: tuple[Expr, ...] | list[Expr],
                first_time: int | None) -> Layout:
    strides = [sympy.S.One] * len(axes)
    for position in range(len(axes) - 2, -1, -1):
        strides[position] = strides[position + 1] * axes[position + 1]
    return Layout(pointer, sympy.S.Zero, tuple(strides), first_time)


def _shape_text(axes: tuple[object, ...]) -> str:
    return "(" + ", ".join(str(a) for a in axes) + ")"


def _expressions(statement: Statement) -> list[Expr]:
    """The references ``statement`` itself writes and reads, and an assignment's value (a
    loop's or guard's body statements are statements of their own)."""
    out = getattr(statement, "out", None)
    written = [out] if isinstance(out, Indexed | Symbol) else []
    if isinstance(statement, Loop | Guarded):
        return written
    value = [statement.value] if isinstance(statement, Assign) else []
    return [*written, *read(statement), *value]


class _Emitter(StatementVisitor):
    """Statements → C lines, once for every precision (see ``printer.py``); each method
    prints one kind at ``indent``."""

    def __init__(self, kernel: _Kernel, printer: KernelCPrinter) -> None:
        self.kernel = kernel
        self.plan = kernel.plan
        self.printer = printer
        self.fixed: set[Idx] = set()  # indices bound by an enclosing loop (t inside Loop)

    def var(self, index: Idx) -> str:
        return self.kernel.variables[index].name

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
        for statement in statements:
            if statement.comment:
                lines.append(f"{indent}/* {escape.c_comment(statement.comment)} */")
            lines += self.visit(statement, indent)
        return lines

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

    def assign(self, statement: Assign, indent: str) -> list[str]:
        value = self.printer.doprint(statement.value)
        target = self.printer.element(statement.out)
        return self.loops(self.free(statement.out), [f"{target} = {value};"], indent)

    def one_hot(self, statement: OneHot, indent: str) -> list[str]:
        out = statement.out
        assert isinstance(out, Indexed)
        label = self.label_index(out, statement.axis)
        body = [f"{self.printer.element(out)} = labels[{label}] == "
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
        labels = _contiguous("labels", array.axes[:-1],
                             array.first_time if array.time is not None else None)
        return self.printer.flat_index(labels, [i for i in out.indices if i != axis])

    def contract(self, statement: Contract, indent: str) -> list[str]:
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
            body = [f"{REAL} acc = 0;",
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
        work, arguments = gemm
        # CHAINRULE_GEMM (kernel.c.j2) is 1 where CBLAS did the product, 0 where the loops must
        return [f"{indent}if (!CHAINRULE_GEMM({work},",
                f"{indent}{_INDENT * 2}{arguments})) {{",
                *[_INDENT + line for line in loops], f"{indent}}}"]

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
        """``(m·n·k, the arguments of cblas_?gemm)`` when the contraction is a product of
        two matrices."""
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
        extents = [self.size(p_free), self.size(q_free), self.size(p_shared)]
        m, n, k = (self.bound(e) for e in extents)
        alpha = self.printer.doprint(statement.coefficient)
        transpose = {False: "CblasNoTrans", True: "CblasTrans"}
        arguments = (f"CblasRowMajor, {transpose[p_trans]}, {transpose[q_trans]}, "
                     f"{m}, {n}, {k}, {alpha}, {p_ptr}, {self.bound(lda)}, {q_ptr}, "
                     f"{self.bound(ldb)}, 0, {c_ptr}, {self.bound(ldc)}")
        self.printer.function("gemm")
        work = " * ".join(f"({self.bound(e)})" if isinstance(e, sympy.Mul | sympy.Add)
                          else self.bound(e) for e in extents)
        # m·n·k in double whatever the precision: a count compared with CHAINRULE_BLAS_MIN_WORK,
        # which a long could overflow
        return f"(double){work}", arguments

    def size(self, axes: list[tuple[Idx, Expr, Expr]]) -> Expr:
        return sympy.Mul(*(extent for _, extent, _ in axes))

    def matrix_view(self, ref: Ref) -> tuple[str, list[tuple[Idx, Expr, Expr]]] | None:
        """``(&first element, [(index, extent, stride)])`` of ``ref`` over its loop indices."""
        if not isinstance(ref, Indexed):
            return None
        layout = self.kernel.layouts[ref_name(ref)]
        first: list[Expr] = []  # the indices of the first element
        axes: list[tuple[Idx, Expr, Expr]] = []
        for index, stride in zip(ref.indices, layout.strides, strict=True):
            loops = [s for s in index.free_symbols if isinstance(s, Idx) and s not in self.fixed]
            if not loops:
                first.append(index)
                continue
            if len(loops) != 1 or any(loops[0] == a[0] for a in axes):
                return None
            (loop,) = loops
            shift = sympy.expand(index - loop)
            if shift.has(Idx):
                return None
            first.append(loop.lower + shift)
            axes.append((loop, sympy.simplify(loop.upper - loop.lower + 1), stride))
        offset = self.printer.flat_index(layout, first)
        pointer = self.printer.pointer(layout)
        return (f"{pointer} + {offset}" if offset != "0" else pointer), axes

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
            indices = self.kernel.copy_indices(list(array.axes), False, self.fixed)
            shifted: list[Expr] = list(indices)
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
        pointer = self.printer.pointer(layout)
        destination = f"{pointer} + {row}" if row != "0" else pointer
        return [f"{indent}if (state) memcpy({destination}, state[{slot}], "
                f"sizeof({REAL}) * (size_t)({count}));",
                f"{indent}else memset({destination}, 0, sizeof({REAL}) * (size_t)({count}));"]

    def copy_out(self, name: str, pointer: str) -> list[str]:
        """Copy array ``name`` (any layout) into the caller's contiguous array ``pointer``;
        of an array over time, the steps 1..T (not an initial state's row)."""
        array = self.plan.arrays[name]
        over_time = array.time is not None
        extents = list(array.axes)
        if over_time and array.first_time == 0:
            extents[0] = extents[0] - 1
        indices = self.kernel.copy_indices(extents, over_time, self.fixed)
        destination = _contiguous(pointer, extents, 1 if over_time else None)
        element = self.printer.element(sympy.IndexedBase(name)[tuple(indices)])
        body = [f"{pointer}[{self.printer.flat_index(destination, indices)}] = {element};"]
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


__all__ = ["STATUS_MACROS", "TANH_HELPER", "render_c"]


class CBackend:
    """The C backend in the registry (``codegen/registry.py``)."""

    name = "c"

    def render(self, derivation: object, plan: Plan) -> dict[str, str]:
        return render_c(plan)

    def load(self, directory: object, *, blas: bool | None = None) -> object:
        from chainrule.codegen.backends.c.loader import load_c

        return load_c(directory, blas=blas)  # type: ignore[arg-type]

    def unavailable(self) -> str | None:
        """Why C kernels cannot be built here (no C compiler), or None."""
        from chainrule.codegen.backends.c.loader import CompilerError, find_compiler

        try:
            find_compiler()
        except CompilerError as error:
            return str(error)
        return None


BACKEND = CBackend()
