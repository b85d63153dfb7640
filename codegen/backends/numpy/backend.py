"""The NumPy backend: Plan → a standalone Python module (NumPy only).

Role in DESIGN.md's picture: ``plan → numpy → generated/<net>/<net>.py``. Each
statement is printed to Python lines here; the template
``templates/numpy/kernel.py.j2`` holds the module's layout (header, the kernel
contract's names, input validation, the functions). Contractions become
``@`` where they are a matrix product, ``numpy.tensordot`` where they contract
several axes at once (time and batch, for a gradient), and ``numpy.einsum``
otherwise. The loop over ``t`` is a Python ``for``; everything else works on
whole arrays. Inside the loop nothing is allocated per step: what a step binds
anew (a product, a subexpression shared by two statements) gets one buffer
before the loop, written in place, and a step's elementwise statement is a
chain of ufunc calls (``ufuncs.py``), where NumPy's cost is per operation.
"""

from __future__ import annotations

import ast
import functools
import string
from pathlib import Path
from types import ModuleType
from typing import Any

import sympy
from sympy import Expr

from chainrule.codegen import escape, kernel_checks, templating
from chainrule.codegen.backends.numpy.printer import KernelNumPyPrinter, Rows
from chainrule.codegen.backends.numpy.ufuncs import Scratch, UfuncChain
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
    Loop,
    OneHot,
    Plan,
    Ref,
    Softmax,
    Split,
    Statement,
    matrix_product,
    read,
    ref_name,
    walk,
    written,
)
from chainrule.codegen.plan.visitor import StatementVisitor
from chainrule.symbolic import Derivation

_INDENT = "    "


class NumPyBackend:
    """The NumPy backend in the registry (``codegen/registry.py``)."""

    name = "numpy"

    def render(self, derivation: Derivation, plan: Plan) -> dict[str, str]:
        return {f"{plan.name}.py": render_numpy(plan)}

    def load(self, directory: Path, **options: Any) -> ModuleType:
        for option, value in options.items():
            if option == "blas" and value is None:
                continue  # the default of every backend's blas=
            if option == "blas":
                raise ValueError(f"blas= applies only to backend='c', not backend={self.name!r}")
            raise ValueError(f"backend={self.name!r} takes no option {option}=")
        from chainrule.codegen.backends.numpy.loader import load_numpy

        return load_numpy(directory)

    def unavailable(self) -> str | None:
        return None  # NumPy is a dependency of chainrule itself


BACKEND = NumPyBackend()


def render_numpy(plan: Plan) -> str:
    """The text of ``generated/<net>/<net>.py`` for ``plan``."""
    printer = _StatementPrinter(plan)
    later = [*plan.loss_statements, *plan.backward, *plan.gradient_statements]
    context = {
        "name": plan.name,
        "title": escape.python_docstring(plan.title),
        "source": escape.python_docstring(plan.source),
        "kernel_set": SEAL_PLACEHOLDER,
        "contract": _literal(contract_of(plan).as_dict()),
        "checks": _kernel_checks(),
        "size_names": [str(s) for s in plan.sizes] + ([str(plan.time.upper)] if plan.time else []),
        "inputs": list(plan.inputs),
        "later_inputs": [name for name in plan.inputs if name in _read_names(later)],
        "input_names": ", ".join(plan.inputs),
        "real_targets": [name for name in plan.targets if name not in plan.labels
                         and name in _read_names(later)],
        "target_names": ", ".join(plan.targets) or "nothing",
        "target_count": len(plan.targets),
        "outputs": list(plan.outputs),
        "output_values": [_steps(plan.arrays[name]) for name in plan.outputs],
        "predict_doc": _predict_doc(plan),
        "loss_summed": "summed over the batch",
        "params": list(plan.parameters),
        "state_shapes": {name: _shape((sympy.Symbol("B"), *axes))
                         for name, axes in plan.states.items()},
        "forward": printer.lines(plan.forward),
        "forward_results": _results(plan, plan.forward, later),
        "loss_lines": printer.lines(plan.loss_statements),
        "loss": plan.loss,
        "backward": printer.lines(plan.backward + plan.gradient_statements),
        "gradients": {p: g for p, g in plan.gradients.items() if p in plan.parameters},
        "state_gradients": {s: g for s, g in plan.gradients.items() if s in plan.states},
    }
    return templating.render("numpy/kernel.py.j2", context)


def _literal(data: object, indent: str = "") -> str:
    """``data`` (str, int, None, lists and dicts of them) as a Python literal, a dict with
    one key per line. Strings print through ``repr``: Python's own escaping."""
    if isinstance(data, dict):
        inner = indent + _INDENT
        items = "".join(f"{inner}{_literal(key)}: {_literal(value, inner)},\n"
                        for key, value in data.items())
        return f"{{\n{items}{indent}}}" if data else "{}"
    if isinstance(data, list):
        return "[" + ", ".join(_literal(item, indent) for item in data) + "]"
    if data is None or isinstance(data, str | int):
        return repr(data)
    raise TypeError(f"no Python literal for {type(data).__name__} in a contract")


@functools.cache
def _kernel_checks() -> str:
    """The definitions of ``codegen/kernel_checks.py`` as its source has them (no docstring,
    no imports): the generated module runs them itself, with NumPy alone."""
    source = Path(kernel_checks.__file__).read_text(encoding="utf-8")
    parts = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if names not in (["numpy"], ["Mapping"]):
                raise ValueError(f"kernel_checks.py imports {names}: the generated module "
                                 f"has only numpy and Mapping")
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module's docstring
        segment = ast.get_source_segment(source, node)
        assert segment is not None
        parts.append(segment)
    return "\n\n\n".join(parts)


def _shape(axes: tuple[Expr, ...]) -> str:
    """A shape as Python code: ``(T + 1, B, 4*H)``."""
    return f"({', '.join(str(a) for a in axes)},)" if len(axes) == 1 else (
        f"({', '.join(str(a) for a in axes)})")


def _read_names(statements: list[Statement]) -> set[str]:
    return {ref_name(r) for s in walk(statements) for r in read(s)}


def _steps(array: Array) -> str:
    """The array as ``predict`` returns it: of an array over time, the steps 1..T only."""
    if array.initial_at is None:
        return array.name
    return f"{array.name}[1:]" if array.first_time == 0 else f"{array.name}[:-1]"


def _predict_doc(plan: Plan) -> str:
    """predict's docstring: what it returns."""
    if len(plan.outputs) == 1:
        return f"The output {plan.outputs[0]} for the given inputs."
    return f"The outputs {', '.join(plan.outputs)} for the given inputs, as a dict by name."


def _results(plan: Plan, forward: list[Statement], later: list[Statement]) -> list[str]:
    """What ``_forward`` hands on: every array it binds that a later phase (or predict) reads."""
    needed = set(plan.outputs) | _read_names(later)
    needed |= {p for s in walk(later) if isinstance(s, Concat) for p in s.parts}
    bound: list[str] = []
    for statement in walk(forward):
        names = sorted(written(statement))
        if isinstance(statement, Split):
            names = [a.name for a in plan.views_of(statement.buffer)]
        bound += [n for n in names if n not in bound]
    return [n for n in bound if n in needed]


class _StatementPrinter(StatementVisitor):
    """Statements → Python lines: ``visit(statement, loop, indent)``, one method per kind;
    ``loop`` says whether the statement runs inside the loop over ``t`` (one step)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.in_place = plan.in_place()
        self.rows = {loop: Rows(plan.arrays, plan.time, loop) for loop in (False, True)}
        #: what the loop being printed writes into buffers allocated before it: the
        #: arrays of one step, which outside a loop would be bound anew by each statement
        self.step_buffers: set[str] = set()
        self.scratch = Scratch()

    def lines(self, statements: list[Statement] | tuple[Statement, ...], loop: bool = False,
              indent: str = "") -> list[str]:
        lines: list[str] = []
        for statement in statements:
            if statement.comment and not isinstance(statement, Loop):  # a loop's: loop()
                lines.append(f"{indent}# {statement.comment}")
            lines += self.visit(statement, loop, indent)
        return lines

    def loop(self, statement: Loop, loop: bool, indent: str) -> list[str]:
        time = self.plan.time
        assert time is not None
        if statement.step > 0:
            head = f"for {time} in range({time.lower}, {time.upper + 1}):"
        else:
            head = f"for {time} in range({time.upper}, {time.lower - 1}, -1):"
        body = walk(statement.body)
        self.step_buffers = {name for s in body for name in written(s)
                             if name not in self.in_place and self.plan.array(name).axes}
        self.scratch = Scratch()
        lines = self.lines(statement.body, True, indent + _INDENT)
        before = [f"{indent}{name} = numpy.empty({_shape(self.plan.array(name).axes)}, dtype)"
                  for name in sorted(self.step_buffers)]
        before += [line for s in body if isinstance(s, Split) and s.buffer in self.step_buffers
                   for line in self.split(s, False, indent)]
        before += self.scratch.allocations(indent)
        self.step_buffers = set()
        if before:
            before.insert(0, f"{indent}# one step's arrays, written in place at every step")
        comment = [f"{indent}# {statement.comment}"] if statement.comment else []
        return [*before, *comment, indent + head, *lines]

    def guarded(self, statement: Guarded, loop: bool, indent: str) -> list[str]:
        return [f"{indent}if {self.condition(statement)}:",
                *self.lines(statement.body, loop, indent + _INDENT),
                f"{indent}else:",
                indent + _INDENT + self.zero(statement.out, loop)]

    def condition(self, guarded: Guarded) -> str:
        time = self.plan.time
        assert time is not None
        value = time if guarded.value is None else guarded.value
        low, high = (time.lower, time.upper) if guarded.value is None else (None, None)
        parts = []
        if low is None or sympy.simplify(guarded.lo - low) != 0:
            parts.append(f"{value} >= {guarded.lo}")
        if high is None or sympy.simplify(guarded.hi - high) != 0:
            parts.append(f"{value} <= {guarded.hi}")
        return " and ".join(parts) or "True"

    def zero(self, out: Ref, loop: bool) -> str:
        target, _, in_place = self.target(out, loop)
        if in_place:
            return f"{target} = 0"
        return f"{target} = numpy.zeros({_shape(self.plan.array(out).axes)}, dtype)"

    def target(self, out: Ref, loop: bool) -> tuple[str, tuple[Expr, ...], bool]:
        """How ``out`` is written: its text, its axes, and whether it is written in place."""
        name = ref_name(out)
        text, axes = self.rows[loop].view(out)
        if name in self.in_place or name in self.step_buffers:
            return (f"{name}[...]" if text == name else text), axes, True
        if text != name:
            raise ValueError(f"{out}: only an allocated array can be written one step at a time")
        return name, axes, False

    def assign(self, statement: Assign, loop: bool, indent: str) -> list[str]:
        rows = self.rows[loop]
        target, axes, in_place = self.target(statement.out, loop)
        if loop and in_place and axes:
            shape = _shape(tuple(_extent(a) for a in axes))
            chain = UfuncChain(KernelNumPyPrinter(axes, rows), self.scratch, shape)
            calls = chain.lines(target.removesuffix("[...]"), statement.value)
            if calls is not None:
                return [indent + call for call in calls]
        terms = sympy.Add.make_args(statement.value)
        if in_place and statement.out in terms and len(terms) > 1:  # out = out + rest
            rest = sympy.Add(*(term for term in terms if term != statement.out))
            return [f"{indent}{target} += {KernelNumPyPrinter(axes, rows).doprint(rest)}"]
        value = KernelNumPyPrinter(axes, rows).doprint(statement.value)
        value_axes = {a for r in statement.value.atoms(sympy.Indexed) for a in rows.view(r)[1]}
        if not in_place and value_axes != set(axes):
            shape = _shape(self.plan.array(statement.out).axes)
            value = f"numpy.broadcast_to({value}, {shape}).astype(dtype)"
        return [f"{indent}{target} = {value}"]

    def contract(self, statement: Contract, loop: bool, indent: str) -> list[str]:
        rows = self.rows[loop]
        target, axes, in_place = self.target(statement.out, loop)
        operands = [rows.view(r) for r in statement.operands]
        factors = _matmul_factors(operands, axes)
        if statement.accumulate:
            return [f"{indent}{target} += {_contraction(operands, axes, statement.coefficient)}"]
        if in_place and statement.coefficient == 1 and factors is not None:
            # into the buffer's view itself: no product array to copy from
            return [f"{indent}numpy.matmul({factors[0]}, {factors[1]}, "
                    f"out={target.removesuffix('[...]')})"]
        return [f"{indent}{target} = {_contraction(operands, axes, statement.coefficient)}"]

    def softmax(self, statement: Softmax, loop: bool, indent: str) -> list[str]:
        target, _, _ = self.target(statement.out, loop)
        logits, axes = self.rows[loop].view(statement.logits)
        function = "_log_softmax" if statement.log else "_softmax"
        return [f"{indent}{target} = {function}({logits}, "
                f"axis={list(axes).index(statement.axis)})"]

    def one_hot(self, statement: OneHot, loop: bool, indent: str) -> list[str]:
        target, _, _ = self.target(statement.out, loop)
        size = self.plan.array(statement.out).axes[-1]
        labels = f'targets["{ref_name(statement.out)}"]'
        return [f"{indent}{target} = ({labels}[..., numpy.newaxis] == "
                f"numpy.arange({size})).astype(dtype)"]

    def concat(self, statement: Concat, loop: bool, indent: str) -> list[str]:
        parts = [f"{part}.T" if statement.transposed else part for part in statement.parts]
        return [f"{indent}{statement.out} = numpy.concatenate(({', '.join(parts)}), "
                f"axis={statement.axis})"]

    def allocate(self, statement: Allocate, loop: bool, indent: str) -> list[str]:
        shape = _shape(self.plan.array(statement.name).axes)
        return [f"{indent}{statement.name} = numpy.empty({shape}, dtype)"]

    def initial(self, statement: Initial, loop: bool, indent: str) -> list[str]:
        array = self.plan.arrays[statement.array]
        row = sympy.expand(statement.step - array.first_time)
        lines = [f"{indent}{statement.array}[{row}] = {statement.state}"]
        if array.padding:
            rows = f":{row}" if array.first_time <= 0 else f"{row} + 1:"
            lines.append(f"{indent}{statement.array}[{rows}] = 0  # the steps beyond it")
        return lines

    def split(self, statement: Split, loop: bool, indent: str) -> list[str]:
        if loop and statement.buffer in self.step_buffers:
            return []  # bound once, before the loop (``loop``)
        return [f"{indent}{view.name} = {statement.buffer}[{_slice(view)}]"
                for view in self.plan.views_of(statement.buffer)]


def _slice(view: Array) -> str:
    assert view.view is not None
    slots = [":"] * view.view.axis + [f"{view.view.start}:{view.view.stop}"]
    return ", ".join(slots)


View = tuple[str, tuple[Expr, ...]]


def _contraction(operands: list[View], out: tuple[Expr, ...], coefficient: Expr) -> str:
    """``@`` for a matrix product, ``tensordot`` for several axes, else ``numpy.einsum``; an
    axis of ``out`` that no operand has (a sum broadcast back, ``s_h = Σ_h' a_h'``) is
    added by ``numpy.broadcast_to``."""
    present = {axis for _, axes in operands for axis in axes}
    missing = [position for position, axis in enumerate(out) if axis not in present]
    if missing:
        reduced = _contraction(operands, tuple(a for a in out if a in present), coefficient)
        shape = _shape(tuple(_extent(a) for a in out))
        return (f"numpy.broadcast_to(numpy.expand_dims({reduced}, {tuple(missing)}), "
                f"{shape})")
    product = _matmul(operands, out) or _tensordot(operands, out)
    if product is None:
        letters: dict[Expr, str] = {}
        for _, axes in (*operands, ("", out)):
            for axis in axes:
                letters.setdefault(axis, string.ascii_letters[len(letters)])
        inputs = ",".join("".join(letters[a] for a in axes) for _, axes in operands)
        args = ", ".join(text for text, _ in operands)
        optimize = ", optimize=True" if len(operands) > 2 else ""
        product = (f'numpy.einsum("{inputs}->{"".join(letters[a] for a in out)}", '
                   f'{args}{optimize})')
    if coefficient == 1:
        return product
    if coefficient == -1:
        return f"-{product}"
    return f"{KernelNumPyPrinter().doprint(coefficient)}*{product}"


def _extent(axis: Expr) -> Expr:
    """The number of values of an axis of a view: an index's range, or the time index's."""
    if isinstance(axis, sympy.Idx):
        return sympy.expand(axis.upper - axis.lower + 1)
    return axis


def _matmul(operands: list[View], out: tuple[Expr, ...]) -> str | None:
    """``A @ B`` (with ``.T`` where needed): B is a matrix, one axis contracted, out = A's rest
    then B's rest (A may have leading axes: steps and examples)."""
    factors = _matmul_factors(operands, out)
    return None if factors is None else f"{factors[0]} @ {factors[1]}"


def _matmul_factors(operands: list[View], out: tuple[Expr, ...]) -> tuple[str, str] | None:
    """The left and right factors of :func:`_matmul`'s product, or None."""
    if len(operands) != 2:
        return None
    product = matrix_product(operands[0][1], operands[1][1], out)
    if product is None or len(product[1]) != 1:
        return None
    swapped, (inner,) = product
    (a, a_axes), (b, b_axes) = operands[::-1] if swapped else operands
    if len(b_axes) != 2:
        return None
    if a_axes[-1] == inner:
        left = a
    elif len(a_axes) == 2:
        left = f"{a}.T"
    else:
        return None
    right = b if b_axes[0] == inner else f"{b}.T"
    return left, right


def _tensordot(operands: list[View], out: tuple[Expr, ...]) -> str | None:
    """``numpy.tensordot`` for any other product of two matrices (several axes summed)."""
    if len(operands) != 2:
        return None
    product = matrix_product(operands[0][1], operands[1][1], out)
    if product is None:
        return None
    swapped, shared = product
    (p, p_axes), (q, q_axes) = operands[::-1] if swapped else operands
    left = [p_axes.index(x) for x in shared]
    right = [q_axes.index(x) for x in shared]
    return f"numpy.tensordot({p}, {q}, axes=({left}, {right}))"
