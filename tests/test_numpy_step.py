"""The NumPy backend's loop over t: one step's statements as ufunc calls writing in place.

The chains (codegen/backends/numpy/ufuncs.py) must compute what the printer's one
expression computes, bit for bit where the operations are the same ones in the same
order, and to rounding otherwise; an expression that reads its own target must read it
before it changes. The generated modules' loops must allocate nothing per step.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy
from sympy import Idx, IndexedBase

from chainrule.codegen.backends.numpy.printer import KernelNumPyPrinter
from chainrule.codegen.backends.numpy.ufuncs import Scratch, UfuncChain
from chainrule.symbolic.functions import logistic, relu, softplus, step
from tests.numpy_text import raw_numpy_scopes, ufunc_call

GENERATED = Path(__file__).resolve().parents[1] / "generated"
RECURRENT = sorted(p.parent.name for p in GENERATED.glob("*/*.py")
                   if "for t in range(" in p.read_text(encoding="utf-8"))

b, c = Idx("b", 4), Idx("c", 3)
X, Y, Z = IndexedBase("x"), IndexedBase("y"), IndexedBase("z")
x, y, z = X[b, c], Y[b, c], Z[c]  # z broadcasts over the batch

EXPRESSIONS = {
    "logistic": logistic(x),
    "relu": relu(x - y),
    "step": step(x),
    "softplus": softplus(2 * x),
    "one minus": 1 - logistic(x),
    "three terms": sympy.tanh(x) * y - 2 * x + z,
    "all negative": -x - sympy.exp(y),
    "quotient": 3 * x / (y * z),
    "reciprocal": 1 / y,
    "powers": x**2 - y**3 + sympy.sqrt(sympy.Abs(y)),
    "inverse square": x / y**2,
    "negated product": -x * y,
    "lstm delta": (1 - sympy.tanh(x)**2) * y * logistic(z),
    "log and sin": sympy.log(sympy.Abs(y) + 1) * sympy.sin(x) + sympy.cos(z),
    "irrational": sympy.sqrt(2) * x + sympy.pi,
    "erf inside": sympy.erf(x) * y + 1,
    "reads its target": x * 2 + x * y + x,
}


def test_constants_are_arrays_of_the_dtype() -> None:
    """A Python float would be converted at every call; a 0-d array is made once."""
    scratch = Scratch()
    calls = UfuncChain(KernelNumPyPrinter((b, c)), scratch, "(4, 3)").lines("out", logistic(x))
    assert calls is not None and not any(re.search(r"[(,] ?\d", call) for call in calls), calls
    assert [line for line in scratch.allocations("") if "numpy.array(" in line] == [
        "_c0 = numpy.array(0.5, dtype)", "_c1 = numpy.array(1, dtype)"]


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {"x": rng.standard_normal((4, 3)), "y": rng.standard_normal((4, 3)) + 3,
            "z": rng.standard_normal(3)}


def _erf(values: np.ndarray) -> np.ndarray:  # the module's helper stands in: math.erf per value
    import math
    return np.vectorize(math.erf)(values)


@pytest.mark.filterwarnings("error")  # a deprecated call form too
@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_chain_computes_the_printed_expression(name: str) -> None:
    expr = EXPRESSIONS[name]
    printer = KernelNumPyPrinter((b, c))
    scratch = Scratch()
    target = "x" if name == "reads its target" else "out"
    calls = UfuncChain(printer, scratch, "(4, 3)").lines(target, expr)
    assert calls, "an expression with operations prints as calls"
    assert all(ufunc_call(call) is not None for call in calls), calls
    arrays = _arrays()
    namespace = {"numpy": np, "_erf": _erf, "dtype": np.float64, **arrays}
    expected = eval(printer.doprint(expr), dict(namespace))  # our printer's text, not a user's
    exec("\n".join(scratch.allocations("")), namespace)
    namespace["out"] = np.full((4, 3), np.nan)
    exec("\n".join(calls), namespace)
    np.testing.assert_allclose(namespace[target], expected, rtol=1e-14, atol=1e-15)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("function", [logistic, relu, step, softplus, sympy.tanh])
def test_our_functions_are_bitwise_the_printers_forms(function: type) -> None:
    printer = KernelNumPyPrinter((b, c))
    scratch = Scratch()
    calls = UfuncChain(printer, scratch, "(4, 3)").lines("out", function(x))
    values = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32) * 30
    namespace = {"numpy": np, "dtype": np.float32, "x": values}
    expected = eval(printer.doprint(function(x)), dict(namespace))
    exec("\n".join(scratch.allocations("")), namespace)
    namespace["out"] = np.empty((4, 3), np.float32)
    exec("\n".join(calls), namespace)
    assert namespace["out"].dtype == np.float32
    assert np.array_equal(namespace["out"], expected)


def test_a_chain_holds_few_buffers() -> None:
    """A buffer an operation's operand holds is written again; a freed one is taken again."""
    scratch = Scratch()
    printer = KernelNumPyPrinter((b, c))
    for expr in EXPRESSIONS.values():
        UfuncChain(printer, scratch, "(4, 3)").lines("out", expr)
    assert 1 <= len(scratch.shapes) <= 3, scratch.shapes


def test_no_operation_of_ours_is_left_to_the_printer() -> None:
    chain = UfuncChain(KernelNumPyPrinter((b, c)), Scratch(), "(4, 3)")
    assert chain.lines("out", x) is None
    assert chain.lines("out", sympy.erf(x)) is None
    assert chain.lines("out", sympy.sqrt(2)) is None


@pytest.mark.parametrize("name", RECURRENT)
def test_the_loop_allocates_nothing_per_step(name: str) -> None:
    """Inside the loop over t every statement writes into storage made before it: a ufunc
    call with out=, or a guard's zeros written in place."""
    scopes = raw_numpy_scopes((GENERATED / name / f"{name}.py").read_text(encoding="utf-8"))
    statements = [line.strip() for scope, lines in scopes.items() if scope.endswith(", loop")
                  for line in lines]
    assert statements, "no loop over t found"
    for statement in statements:
        if not statement or statement.startswith(("#", "if ")) or statement == "else:":
            continue
        assert ufunc_call(statement) is not None or re.fullmatch(r"\w+\[\.\.\.\] = 0", statement), \
            statement
