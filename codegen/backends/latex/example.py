"""The notes' worked example, as the notes print it: numbers handed in, never computed here.

Role in DESIGN.md's picture: part of the ``latex`` branch, which only prints. The numbers
(the generated NumPy kernel run at tiny sizes and checked by finite differences) come from
``codegen/worked_example.py``, a layer above the backends that may run the NumPy backend;
whoever renders the notes computes them there and passes the :class:`Example` to
``render_tex(..., example=...)``. Backends never import each other, so this module knows
only the shape of the data: the sizes, the loss, one parameter's gradient from the kernel
and from finite differences, and the check over every gradient entry. Four significant
digits are printed (a machine's BLAS differs in the last bits, never in the fourth digit);
the check is printed as a bound, a fixed power of ten.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy
import sympy


@dataclass
class Example:
    """What the notes print of a worked example: ``sizes`` (with the time size), the seed,
    the finite-difference ``step``, the ``loss``, the gradient of ``parameter`` from the
    ``kernel`` and from ``differences``, and the check over all ``entries`` gradient entries:
    the ``worst`` difference against ``10**bound_exponent``."""

    sizes: dict[str, int]
    seed: int
    step: float
    loss: float
    parameter: str
    kernel: numpy.ndarray
    differences: numpy.ndarray
    entries: int
    worst: float
    bound_exponent: int

    @property
    def passed(self) -> bool:
        return self.worst < 10.0 ** self.bound_exponent


def number(value: float, digits: int = 4) -> str:
    """``value`` in TeX to ``digits`` significant digits: ``-0.1235``, ``2.1\\times10^{-5}``."""
    if abs(value) < 5e-9:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if -4 <= exponent < 4:
        text = f"{value:.{max(0, digits - 1 - exponent)}f}"
        return "0" if float(text) == 0 else text
    mantissa = value / 10.0 ** exponent
    return rf"{mantissa:.{digits - 1}f} \times 10^{{{exponent}}}"


def matrix(values: numpy.ndarray) -> str:
    """A vector or matrix of numbers as a TeX ``pmatrix`` (a vector as a column)."""
    rows = values.reshape(values.shape[0], -1) if values.ndim else values.reshape(1, 1)
    body = r" \\ ".join(" & ".join(number(float(v)) for v in row) for row in rows)
    return rf"\begin{{pmatrix}} {body} \end{{pmatrix}}"


def example_context(example: Example | None, words: dict[str, str],
                    tex: Callable[[sympy.Expr], str], symbol: Callable[[str], str]
                    ) -> dict[str, str]:
    """What the notes print of ``example`` (``{}`` for none): ``words`` the notes' prose,
    ``tex`` their printer, ``symbol`` the vector symbol of a parameter by name."""
    if example is None:
        return {}
    sizes = ", ".join(f"${tex(sympy.Symbol(n))} = {v}$" for n, v in example.sizes.items())
    check = words["example_passed" if example.passed else "example_failed"].format(
        entries=example.entries, bound=example.bound_exponent, worst=number(example.worst, 2))
    step = round(math.log10(example.step))
    return {"text": words["example"].format(sizes=sizes, seed=example.seed,
                                            loss=number(example.loss), step=step),
            "lhs": rf"\frac{{\partial L}}{{\partial {symbol(example.parameter)}}}",
            "kernel": matrix(example.kernel), "differences": matrix(example.differences),
            "check": check}


__all__ = ["Example", "example_context", "matrix", "number"]
