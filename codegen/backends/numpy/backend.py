"""The NumPy backend: Plan → a standalone Python module (NumPy only).

Role in DESIGN.md's picture: ``plan → numpy → generated/<net>/<net>.py``. Each
statement is printed to Python lines here; the template
``templates/numpy/kernel.py.j2`` holds the module's layout (header, the kernel
contract's names, input validation, the functions). Contractions become
``@`` where they are a matrix product, ``numpy.tensordot`` where they contract
several axes at once (time and batch, for a gradient), and ``numpy.einsum``
otherwise. The loop over ``t`` is a Python ``for``; everything else works on
whole arrays.
"""

from __future__ import annotations

import string

import sympy
from sympy import Expr

from chainrule.codegen import escape, templating
from chainrule.codegen.backends.numpy.printer import KernelNumPyPrinter, Rows
from chainrule.codegen.kernel_set import SEAL_PLACEHOLDER
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

_INDENT = "    "


def render_numpy(plan: Plan) -> str:
    """The text of ``generated/<net>/<net>.py`` for ``plan``."""
    printer = _StatementPrinter(plan)
    later = [*plan.loss_statements, *plan.backward, *plan.gradient_statements]
    context = {
        "name": plan.name,
        "title": escape.python_docstring(plan.title),
        "source": escape.python_docstring(plan.source),
        "kernel_set": SEAL_PLACEHOLDER,
        "sizes": _tuple(plan.sizes),
        "size_names": [str(s) for s in plan.sizes] + ([str(plan.time.upper)] if plan.time else []),
        "input": plan.input,  # the statements read it by its name; the argument is x
        "input_axes": _tuple(plan.arrays[plan.input].axes),
        "output": plan.output,
        "params": {name: _tuple(axes) for name, axes in plan.parameters.items()},
        "states": {name: _tuple(axes) for name, axes in plan.states.items()},
        "state_shapes": {name: _shape((sympy.Symbol("B"), *axes))
                         for name, axes in plan.states.items()},
        "forward": printer.lines(plan.forward),
        "forward_results": _results(plan, plan.forward, later),
        "loss_lines": printer.lines(plan.loss_statements),
        "loss": plan.loss,
        "backward": printer.lines(plan.backward + plan.gradient_statements),
        "gradients": {p: g for p, g in plan.gradients.items() if p in plan.parameters},
        "state_gradients": {s: g for s, g in plan.gradients.items() if s in plan.states},
        "labels_axes": _tuple(plan.arrays[plan.target].axes[:-1]),
        "classes": str(plan.arrays[plan.target].axes[-1]),
    }
    return templating.render("numpy/kernel.py.j2", context)


def _tuple(axes: tuple[Expr, ...]) -> str:
    """A Python tuple literal of size names: ``("I", "H")``."""
    return repr(tuple(str(a) for a in axes))


def _shape(axes: tuple[Expr, ...]) -> str:
    """A shape as Python code: ``(T + 1, B, 4*H)``."""
    return f"({', '.join(str(a) for a in axes)},)" if len(axes) == 1 else (
        f"({', '.join(str(a) for a in axes)})")


def _results(plan: Plan, forward: list[Statement], later: list[Statement]) -> list[str]:
    """What ``_forward`` hands on: every array it binds that a later phase (or predict) reads."""
    needed = {plan.output} | {ref_name(r) for s in walk(later) for r in read(s)}
    needed |= {p for s in walk(later) if isinstance(s, Concat) for p in s.parts}
    bound: list[str] = []
    for statement in walk(forward):
        names = sorted(written(statement))
        if isinstance(statement, Split):
            names = [a.name for a in plan.views_of(statement.buffer)]
        bound += [n for n in names if n not in bound]
    return [n for n in bound if n in needed]


class _StatementPrinter:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.in_place = plan.in_place()
        self.rows = {loop: Rows(plan.arrays, plan.time, loop) for loop in (False, True)}

    def lines(self, statements: list[Statement] | tuple[Statement, ...], loop: bool = False,
              indent: str = "") -> list[str]:
        lines: list[str] = []
        for statement in statements:
            if statement.comment:
                lines.append(f"{indent}# {statement.comment}")
            if isinstance(statement, Loop):
                lines.append(indent + self.loop_header(statement))
                lines += self.lines(statement.body, True, indent + _INDENT)
            elif isinstance(statement, Guarded):
                lines.append(f"{indent}if {self.condition(statement)}:")
                lines += self.lines(statement.body, loop, indent + _INDENT)
                lines.append(f"{indent}else:")
                lines.append(indent + _INDENT + self.zero(statement.out, loop))
            else:
                lines += [indent + line for line in self.statement(statement, loop)]
        return lines

    def loop_header(self, loop: Loop) -> str:
        time = self.plan.time
        assert time is not None
        if loop.step > 0:
            return f"for {time} in range({time.lower}, {time.upper + 1}):"
        return f"for {time} in range({time.upper}, {time.lower - 1}, -1):"

    def condition(self, guarded: Guarded) -> str:
        time = self.plan.time
        assert time is not None
        parts = []
        if sympy.simplify(guarded.lo - time.lower) != 0:
            parts.append(f"{time} >= {guarded.lo}")
        if sympy.simplify(guarded.hi - time.upper) != 0:
            parts.append(f"{time} <= {guarded.hi}")
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
        if name in self.in_place:
            return (f"{name}[...]" if text == name else text), axes, True
        if text != name:
            raise ValueError(f"{out}: only an allocated array can be written one step at a time")
        return name, axes, False

    def statement(self, statement: Statement, loop: bool) -> list[str]:
        rows = self.rows[loop]
        if isinstance(statement, Assign):
            target, axes, in_place = self.target(statement.out, loop)
            value = KernelNumPyPrinter(axes, rows).doprint(statement.value)
            value_axes = {a for r in statement.value.atoms(sympy.Indexed)
                          for a in rows.view(r)[1]}
            if not in_place and value_axes != set(axes):
                shape = _shape(self.plan.array(statement.out).axes)
                value = f"numpy.broadcast_to({value}, {shape}).astype(dtype)"
            return [f"{target} = {value}"]
        if isinstance(statement, Contract):
            target, axes, _ = self.target(statement.out, loop)
            operands = [rows.view(r) for r in statement.operands]
            return [f"{target} = {_contraction(operands, axes, statement.coefficient)}"]
        if isinstance(statement, Softmax):
            target, _, _ = self.target(statement.out, loop)
            logits, axes = rows.view(statement.logits)
            function = "_log_softmax" if statement.log else "_softmax"
            return [f"{target} = {function}({logits}, axis={list(axes).index(statement.axis)})"]
        if isinstance(statement, OneHot):
            target, _, _ = self.target(statement.out, loop)
            size = self.plan.array(statement.out).axes[-1]
            return [f"{target} = (labels[..., numpy.newaxis] == "
                    f"numpy.arange({size})).astype(dtype)"]
        if isinstance(statement, Concat):
            return [f"{statement.out} = numpy.concatenate(({', '.join(statement.parts)}), "
                    f"axis={statement.axis})"]
        if isinstance(statement, Allocate):
            shape = _shape(self.plan.array(statement.name).axes)
            return [f"{statement.name} = numpy.empty({shape}, dtype)"]
        if isinstance(statement, Initial):
            return [f"{statement.array}[0] = {statement.state}"]
        if isinstance(statement, Split):
            return [f"{view.name} = {statement.buffer}[{_slice(view)}]"
                    for view in self.plan.views_of(statement.buffer)]
        raise TypeError(f"no NumPy form for {type(statement).__name__}")


def _slice(view: Array) -> str:
    assert view.view is not None
    slots = [":"] * view.view.axis + [f"{view.view.start}:{view.view.stop}"]
    return ", ".join(slots)


View = tuple[str, tuple[Expr, ...]]


def _contraction(operands: list[View], out: tuple[Expr, ...], coefficient: Expr) -> str:
    """``@`` for a matrix product, ``tensordot`` for several axes, else ``numpy.einsum``."""
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


def _matmul(operands: list[View], out: tuple[Expr, ...]) -> str | None:
    """``A @ B`` (with ``.T`` where needed): B is a matrix, one axis contracted, out = A's rest
    then B's rest (A may have leading axes: steps and examples)."""
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
    return f"{left} @ {right}"


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
