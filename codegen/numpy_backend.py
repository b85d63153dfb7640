"""The NumPy backend: Plan → a standalone Python module (NumPy only).

Role in DESIGN.md's picture: ``plan → numpy → generated/<net>/<net>.py``. Each
statement is printed to one line of Python here; the template
``templates/numpy/kernel.py.j2`` holds the module's layout (header, the kernel
contract's names, input validation, the functions). Contractions become
``@`` where they are a plain matrix product and ``numpy.einsum`` otherwise.
"""

from __future__ import annotations

import string

import sympy
from sympy import Idx, Indexed

from . import templating
from .numpy_printer import KernelNumPyPrinter
from .plan import (
    Assign,
    Contract,
    Kind,
    OneHot,
    Plan,
    Ref,
    Softmax,
    Statement,
    ref_indices,
    ref_name,
)


def render_numpy(plan: Plan) -> str:
    """The text of ``generated/<net>/<net>.py`` for ``plan``."""
    forward_arrays = [a.name for a in plan.arrays.values() if a.kind is Kind.FORWARD
                      and a.name != plan.loss]
    context = {
        "name": plan.name,
        "title": plan.title,
        "source": plan.source,
        "sizes": _tuple(plan.sizes),
        "size_names": [str(s) for s in plan.sizes],
        "input_axes": _tuple(plan.arrays[plan.input].axes),
        "output": plan.output,
        "params": {name: _tuple(axes) for name, axes in plan.parameters.items()},
        "states": {name: _tuple(axes) for name, axes in plan.states.items()},
        "forward": _lines(plan, plan.forward),
        "forward_arrays": forward_arrays,
        "loss_lines": _lines(plan, plan.loss_statements),
        "loss": plan.loss,
        "backward": _lines(plan, plan.backward + plan.gradient_statements),
        "gradients": plan.gradients,
        "labels_axes": _tuple(plan.arrays[plan.target].axes[:-1]),
        "classes": str(plan.arrays[plan.target].axes[-1]),
    }
    return templating.render("numpy/kernel.py.j2", context)


def _tuple(axes: tuple[sympy.Symbol, ...]) -> str:
    """A Python tuple literal of size names: ``("I", "H")``."""
    return repr(tuple(str(a) for a in axes))


def _lines(plan: Plan, statements: list[Statement]) -> list[str]:
    lines: list[str] = []
    for statement in statements:
        if statement.comment:
            lines.append(f"# {statement.comment}")
        lines.append(_statement(plan, statement))
    return lines


def _name(ref: Ref) -> str:
    return ref_name(ref)


def _statement(plan: Plan, statement: Statement) -> str:
    if isinstance(statement, Assign):
        printer = KernelNumPyPrinter(ref_indices(statement.out))
        value = printer.doprint(statement.value)
        if set(_indices_of(statement.value)) != set(ref_indices(statement.out)):
            shape = ", ".join(str(s) for s in plan.array(statement.out).axes)
            value = f"numpy.broadcast_to({value}, ({shape},)).astype(dtype)"
        return f"{_name(statement.out)} = {value}"
    if isinstance(statement, Contract):
        return f"{_name(statement.out)} = {_contraction(statement)}"
    if isinstance(statement, Softmax):
        axis = list(statement.logits.indices).index(statement.axis)
        function = "_log_softmax" if statement.log else "_softmax"
        return f"{_name(statement.out)} = {function}({_name(statement.logits)}, axis={axis})"
    if isinstance(statement, OneHot):
        size = plan.array(statement.out).axes[-1]
        return (f"{_name(statement.out)} = (labels[..., numpy.newaxis] == "
                f"numpy.arange({size})).astype(dtype)")
    raise TypeError(f"no NumPy form for {type(statement).__name__}")


def _indices_of(expr: sympy.Expr) -> list[Idx]:
    return [s for s in expr.free_symbols if isinstance(s, Idx)]


def _contraction(statement: Contract) -> str:
    """``@`` for a matrix product (batch or not), else ``numpy.einsum``."""
    letters: dict[Idx, str] = {}
    for ref in (*statement.operands, statement.out):
        for index in ref_indices(ref):
            letters.setdefault(index, string.ascii_letters[len(letters)])

    def spec(ref: Ref) -> str:
        return "".join(letters[i] for i in ref_indices(ref))

    operands = statement.operands
    product = _matmul(statement)
    if product is None:
        inputs = ",".join(spec(r) for r in operands)
        args = ", ".join(_name(r) for r in operands)
        optimize = ", optimize=True" if len(operands) > 2 else ""
        product = f'numpy.einsum("{inputs}->{spec(statement.out)}", {args}{optimize})'
    coefficient = statement.coefficient
    if coefficient == 1:
        return product
    if coefficient == -1:
        return f"-{product}"
    return f"{KernelNumPyPrinter().doprint(coefficient)}*{product}"


def _matmul(statement: Contract) -> str | None:
    """``A @ B`` (with ``.T`` where needed) when the contraction is a 2-D matrix product."""
    if len(statement.operands) != 2:
        return None
    left, right = statement.operands
    out = ref_indices(statement.out)
    if not all(isinstance(r, Indexed) and len(r.indices) == 2 for r in (left, right)) \
            or len(out) != 2:
        return None
    shared = set(left.indices) & set(right.indices)
    if len(shared) != 1:
        return None
    (inner,) = shared
    row = [i for i in left.indices if i != inner]
    col = [i for i in right.indices if i != inner]
    if (row[0], col[0]) == out:
        first, second = left, right
    elif (col[0], row[0]) == out:
        first, second, row, col = right, left, col, row
    else:
        return None
    a = _name(first) + ("" if first.indices[1] == inner else ".T")
    b = _name(second) + ("" if second.indices[0] == inner else ".T")
    return f"{a} @ {b}"
