"""The notes' worked example: the generated NumPy kernel run at tiny sizes, checked by finite
differences, at the time the notes are written.

Role in DESIGN.md's picture: part of the ``latex`` branch, which here reaches the other
branch only through the registry: the model's NumPy code is rendered by the ``numpy``
backend (``codegen/registry.py``) from the plan of the same derivation, loaded by that
backend (backends never import each other), and every parameter gradient it returns is compared
with central differences of its loss. The numbers are reproducible byte for byte: fixed
seeds, every size 2 but the classes' (3) and ``T = 2``, one example, and four significant
digits printed (a machine's BLAS differs in the last bits, never in the fourth digit); the
check is printed as a bound, a fixed power of ten.

A model whose targets are not class labels (a regression, soft labels) gets no example:
its targets have a meaning this module cannot choose values for.
"""

from __future__ import annotations

import importlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy

from chainrule.codegen.plan.lower import lower
from chainrule.symbolic import Derivation

#: The sizes of the example: the classes', the steps' and every other.
CLASSES, STEPS, OTHER = 3, 2, 2
SEED = 0
#: The finite-difference step and the bound the check must meet (printed as a power of ten).
STEP = 1e-5
BOUND_EXPONENT = -6


@dataclass
class Example:
    """What the notes print: the sizes, the loss, one parameter's gradient from the kernel and
    from finite differences, and the check over every gradient entry."""

    sizes: dict[str, int]
    loss: float
    parameter: str
    kernel: numpy.ndarray
    differences: numpy.ndarray
    entries: int
    worst: float

    @property
    def passed(self) -> bool:
        return self.worst < 10.0 ** BOUND_EXPONENT


def _module(derivation: Derivation):
    # Through the registry, at run time only: the registry lists this backend too, and the
    # layer contract (backends never import each other) reads a static import of it as an
    # import of every backend. The session that asked for the example allowed this use.
    registry = importlib.import_module("chainrule.codegen.registry")
    numpy_backend = registry.backend_named("numpy")
    files = numpy_backend.render(derivation, lower(derivation))
    with tempfile.TemporaryDirectory() as folder:
        for name, text in files.items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        return numpy_backend.load(Path(folder))


def run_example(derivation: Derivation) -> Example | None:
    """The worked example of ``derivation``, or None for a model it does not fit."""
    module = _module(derivation)
    contract = module.CONTRACT
    if contract["targets"] or not contract["labels"]:
        return None
    classes = set(contract["classes"].values())
    sizes = {name: CLASSES if name in classes else OTHER for name in contract["sizes"]}
    call = {**sizes, "B": 1}
    if contract.get("time"):
        call[contract["time"]] = STEPS
    rng = numpy.random.default_rng(SEED)
    params = module.init_params(sizes, rng=SEED)
    inputs = {name: rng.standard_normal([call[a] for a in axes])
              for name, axes in contract["inputs"].items()}
    labels = {name: rng.integers(0, call[contract["classes"][name]],
                                 size=[call[a] for a in axes])
              for name, axes in contract["labels"].items()}
    loss, grads = module.loss_and_grad(params, inputs, labels)
    worst, entries = 0.0, 0
    differences = {}
    for name, value in params.items():
        numeric = numpy.zeros_like(value)
        for index in numpy.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + STEP
            up = module.loss_and_grad(params, inputs, labels)[0]
            value[index] = saved - STEP
            down = module.loss_and_grad(params, inputs, labels)[0]
            value[index] = saved
            numeric[index] = (up - down) / (2 * STEP)
        differences[name] = numeric
        worst = max(worst, float(numpy.max(numpy.abs(numeric - grads[name]))))
        entries += value.size
    shown = next((n for n in params if params[n].ndim == 2), next(iter(params)))
    return Example(sizes={**sizes, **({contract["time"]: STEPS} if contract.get("time")
                                      else {})},
                   loss=float(loss), parameter=shown, kernel=grads[shown],
                   differences=differences[shown], entries=entries, worst=worst)


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


def example_context(derivation: Derivation, words: dict[str, str], tex, symbol: str
                    ) -> dict[str, str]:
    """What the notes print of the worked example (``{}`` where the model gets none):
    ``words`` the notes' prose, ``tex`` their printer, ``symbol`` the vector symbol of a
    parameter by name."""
    example = run_example(derivation)
    if example is None:
        return {}
    import sympy

    sizes = ", ".join(f"${tex(sympy.Symbol(n))} = {v}$" for n, v in example.sizes.items())
    check = words["example_passed" if example.passed else "example_failed"].format(
        entries=example.entries, bound=BOUND_EXPONENT, worst=number(example.worst, 2))
    return {"text": words["example"].format(sizes=sizes, seed=SEED, loss=number(example.loss)),
            "lhs": rf"\frac{{\partial L}}{{\partial {symbol(example.parameter)}}}",
            "kernel": matrix(example.kernel), "differences": matrix(example.differences),
            "check": check}


__all__ = ["BOUND_EXPONENT", "CLASSES", "OTHER", "SEED", "STEP", "STEPS", "Example",
           "example_context", "matrix", "number", "run_example"]
