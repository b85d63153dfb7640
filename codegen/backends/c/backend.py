"""The C backend: Plan → ``<net>.c`` and ``<net>.h`` (C99, libc and libm only).

Role in DESIGN.md's picture: ``plan → c → generated/<net>/<net>.{c,h}``, a
second printer of the same plan as the NumPy backend, never a second
derivation. This module is the backend's face: ``render_c``, the registry's
``BACKEND``, and the contexts of the templates ``templates/kernel.{c,h}.j2``, which
hold the layout of the files; every expression arrives printed. The stages it
calls: ``storage.py`` gives every array of the plan its place (the caller's arrays
or a region of the caller's workspace; a fused buffer's views through the buffer's
strides), ``variables.py`` names the loop counters, and ``statements.py`` prints
each statement as a loop nest (a matrix product also as a CBLAS call, ``gemm.py``).

The kernels come in every precision of ``codegen/precision.py`` from one body:
the statements are printed once (``printer.py``) in names each precision binds
with ``#define`` (``chainrule_real`` → ``double``, ``chainrule_exp`` → ``expf``,
``CHAINRULE_LIT(0.5, 0.5F)``): each run function holds the same text, between the
``#define``s of its precision and their ``#undef``s. (One body expanded from a macro
would be shorter, and unreadable: one logical line, which debuggers and compiler
messages point at as a whole.) Each function declares only what its body names.
"""

from __future__ import annotations

import sympy

from chainrule.codegen import escape, templating
from chainrule.codegen.backends.c.printer import BOUND_PREFIX, LITERAL, REAL, KernelCPrinter
from chainrule.codegen.backends.c.statements import Emitter as _Emitter
from chainrule.codegen.backends.c.storage import (
    Region,
    assign_storage,
    region_starts,
    share_places,
    workspace_context,
)
from chainrule.codegen.backends.c.variables import LoopVariables
from chainrule.codegen.kernel_set import SEAL_PLACEHOLDER
from chainrule.codegen.plan.accumulate import accumulate_into_products
from chainrule.codegen.plan.contract import contract_of
from chainrule.codegen.plan.lifetimes import spans
from chainrule.codegen.plan.transpose import transpose_concatenations
from chainrule.codegen.plan.types import Plan
from chainrule.codegen.precision import F32, PRECISIONS, Precision
from chainrule.symbolic import logistic, softplus

__all__ = ["STATUS_MACROS", "TANH_HELPER", "render_c"]

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


class _Kernel:
    """One plan on its way to C: the places of its arrays, its loop variables, its body
    printed once, and the templates' contexts."""

    def __init__(self, plan: Plan) -> None:
        # CBLAS's beta = 1 (plan/accumulate.py); its per-call packing of a transposed
        # operand (plan/transpose.py)
        plan = self.plan = transpose_concatenations(accumulate_into_products(plan))
        self.size_names = [str(s) for s in plan.sizes] + (
            [str(plan.time.upper)] if plan.time is not None else []) + ["B"]
        self.params = list(plan.parameters)
        self.states = list(plan.states)
        self.storage = assign_storage(plan)
        self.variables = LoopVariables(plan, self.size_names)
        self.printer = KernelCPrinter(self.storage.layouts, self.variables.symbols)
        self.regions: list[Region] = []  # the workspace's regions the body names
        self.body = self.print_body()

    # --- the body -----------------------------------------------------------------------------

    def print_body(self) -> dict[str, object]:
        """Every statement printed once, then what the body names: the sizes, parameters,
        regions and scalars it declares, in the plan's order."""
        plan, printer = self.plan, self.printer
        emit = _Emitter(plan, self.storage.layouts, self.variables, printer,
                        frozenset(region.name for region in self.storage.regions))
        body: dict[str, object] = {
            "forward": emit.lines(plan.forward),
            "backward": emit.lines([*plan.loss_statements, *plan.backward,
                                    *plan.gradient_statements]),
            "gradient_copies": [line for array, pointer in self.storage.gradient_copies
                                for line in emit.copy_out(array, pointer)],
            "state_copies": [line for i, state in enumerate(self.states)
                             for line in emit.copy_out(plan.gradients[state],
                                                       f"state_grads[{i}]")],
            "output_copy": [line for slot, output in enumerate(plan.outputs)
                            for line in emit.copy_out(output, f"outputs[{slot}]")],
            "label_checks": [(slot, printer.doprint(sympy.Mul(*plan.arrays[name].axes[:-1])),
                              printer.doprint(plan.arrays[name].axes[-1]))
                             for slot, name in enumerate(plan.labels)],
        }
        body["uses_independent"] = emit.independent
        used = printer.names  # the live set: it takes in the sizes region_starts prints
        # a region the body never names gets no place (nor bytes in <net>_workspace_bytes)
        copied = [array for array, _ in self.storage.gradient_copies] + list(plan.outputs) + [
            plan.gradients[state] for state in self.states]  # after the last statement
        kept = {plan.arrays[name].view.buffer if plan.arrays[name].view else name  # type: ignore[union-attr]
                for name in copied}
        self.regions = share_places(
            [region for region in self.storage.regions if region.name in used],
            spans(plan), kept)
        body["regions"] = region_starts(self.regions, printer)
        body["sizes"] = [(size, slot) for slot, size in enumerate(self.size_names)
                         if size in used]
        body["params"] = [(param, slot) for slot, param in enumerate(self.params)
                          if param in used]
        body["inputs"] = [(name, slot) for slot, name in enumerate(plan.inputs) if name in used]
        real_targets = [name for name in plan.targets if name not in plan.labels]
        body["real_targets"] = [(name, slot) for slot, name in enumerate(real_targets)
                                if name in used]
        body["scalars"] = [scalar for scalar in self.storage.scalars if scalar in used]
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

    def run_arguments(self) -> dict[str, object]:
        """What the API's functions pass on to the run function of labels and targets (only
        what the network takes), and the API's arguments the network does not use."""
        labels = bool(self.body["label_checks"])
        targets = bool(self.body["real_targets"])
        unused = [name for name, used in (("labels", labels), ("targets", targets))
                  if not used]
        if not self.states:
            unused += ["state", "state_grads"]
        parameters = ["const long *sizes", "const T_ *const *params", "const T_ *const *inputs",
                      *(["const int64_t *const *labels"] if labels else []),
                      *(["const T_ *const *targets"] if targets else []),
                      *(["const T_ *const *state"] if self.states else []),
                      "T_ *loss", "T_ *const *grads",
                      *(["T_ *const *state_grads"] if self.states else []),
                      "T_ *const *outputs", "void *workspace"]
        return {
            # T_ stands for each precision's type (the template replaces it)
            "run_parameters": _wrapped(parameters, "    ", width=60),
            "run_targets": "".join(f" {name}," for name, used in
                                   (("labels", labels), ("targets", targets)) if used),
            "run_no_targets": " NULL," * (labels + targets),
            "unused_arguments": " ".join(f"(void){name};" for name in unused),
        }

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
            "inputs": [(n, _shape_text(plan.arrays[n].axes)) for n in plan.inputs],
            "labels": [(n, _shape_text(plan.arrays[n].axes[:-1]), str(plan.arrays[n].axes[-1]))
                       for n in plan.labels],
            "real_targets": [(n, _shape_text(plan.arrays[n].axes)) for n in plan.targets
                             if n not in plan.labels],
            "outputs": [(n, _shape_text(plan.arrays[n].axes)) for n in plan.outputs],
            "loss_text": escape.c_comment(f"the loss {plan.loss}, summed over the batch"),
            "status": self.status(),
            "precisions": PRECISIONS,
            "precision_names": [p.name for p in PRECISIONS],
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
            "softplus_helpers": list(PRECISIONS) if softplus.__name__ in functions else [],
            "sign_helpers": list(PRECISIONS) if sympy.sign.__name__ in functions else [],
            "uses_gemm": "gemm" in functions,
            "precisions": [(p, _bindings(p, functions)) for p in PRECISIONS],
            "precisions_only": PRECISIONS,
            "real": REAL,
            "states": bool(self.states),
            **self.run_arguments(),
            **self.body,
            **workspace_context(self.regions, self.size_names),
            "widest": _widest().c_type,
            **_contract_context(plan),
        }


def _wrapped(items: list[str], indent: str, width: int = 72) -> str:
    """``items`` joined by commas, a line break (and ``indent``) before one that would pass
    ``width``."""
    lines = [""]
    for item in items:
        piece = f"{item}, "
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append(indent)
        lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines).rstrip(",")


def _bound(precision: Precision, function: str) -> str:
    """What ``chainrule_<function>`` of the body stands for in ``precision``."""
    if function == "gemm":  # the symbol's prefix is the library's (kernel.c.j2)
        return f"CHAINRULE_CBLAS_NAME({precision.gemm})"
    if function in (logistic.__name__, softplus.__name__, sympy.sign.__name__):
        return f"chainrule_{function}_{precision.name}"
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


def _shape_text(axes: tuple[object, ...]) -> str:
    return "(" + ", ".join(str(a) for a in axes) + ")"


class CBackend:
    """The C backend in the registry (``codegen/registry.py``)."""

    name = "c"

    def render(self, derivation: object, plan: Plan) -> dict[str, str]:
        return render_c(plan)

    def load(self, directory: object, *, blas: str | bool | None = None) -> object:
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
