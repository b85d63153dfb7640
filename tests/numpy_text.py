"""Reading the generated NumPy module's text back: its statements by scope, and its ufunc
chains (codegen/backends/numpy/ufuncs.py) as calls with their outputs and as expressions."""

from __future__ import annotations

import ast
import re

import numpy as np


def raw_numpy_scopes(text: str) -> dict[str, list[str]]:
    """The statement lines of ``_forward`` (the forward phase) and ``loss_and_grad`` (the
    later ones), each split into its loops over ``t`` and the rest, as printed."""
    scopes: dict[str, list[str]] = {}
    lines = text.splitlines()
    for function in ("_forward", "loss_and_grad"):
        start = next(n for n, line in enumerate(lines) if line.startswith(f"def {function}("))
        loop_indent: int | None = None
        for line in lines[start + 1:]:
            if line and not line[0].isspace():
                break
            indent = len(line) - len(line.lstrip())
            if loop_indent is not None and line.strip() and indent <= loop_indent:
                loop_indent = None
            if re.match(r"\s*for \w+ in range\(", line):
                loop_indent = indent
                continue
            scope = f"{function}, loop" if loop_indent is not None else function
            scopes.setdefault(scope, []).append(line)
    return scopes


def numpy_scopes(text: str) -> dict[str, list[str]]:
    """:func:`raw_numpy_scopes` with the loops' ufunc chains read back as expressions
    (:func:`unchained`)."""
    return {scope: unchained(lines) for scope, lines in raw_numpy_scopes(text).items()}


def ufunc_call(line: str) -> tuple[ast.Call, ast.expr] | None:
    """``line`` as a call of a NumPy ufunc with its output (``out=`` or the last positional
    argument), and that output; None for any other line."""
    try:
        body = ast.parse(line.strip()).body
    except SyntaxError:
        return None
    if len(body) != 1 or not isinstance(body[0], ast.Expr):
        return None
    call = body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and ast.unparse(call.func.value) == "numpy"):
        return None
    ufunc = getattr(np, call.func.attr, None)
    if not isinstance(ufunc, np.ufunc):
        return None
    outs = [keyword.value for keyword in call.keywords if keyword.arg == "out"]
    if outs:
        return call, outs[0]
    return (call, call.args[-1]) if len(call.args) == ufunc.nin + 1 else None


def unchained(lines: list[str]) -> list[str]:
    """A loop's ufunc chains (``numpy.tanh(_s0, _s0)``) read back as the expressions they
    compute: a call into a scratch buffer ``_s<N>`` is substituted where that buffer is
    read next; a call into an array ``a`` becomes ``a = numpy.f(...)``. Every other line
    is kept as it is."""
    held: dict[str, ast.expr] = {}

    class Substitute(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.expr:
            return held.get(node.id, node)

    found = []
    for line in lines:
        parsed = ufunc_call(line)
        if parsed is None:
            found.append(line)
            continue
        call, out = parsed
        call.args = [arg for arg in call.args if arg is not out]
        call.keywords = [keyword for keyword in call.keywords if keyword.value is not out]
        tree = Substitute().visit(call)
        target = ast.unparse(out)
        if re.fullmatch(r"_s\d+", target):
            held[target] = tree
        else:
            indent = line[:len(line) - len(line.lstrip())]
            found.append(f"{indent}{target} = {ast.unparse(tree)}")
    return found
