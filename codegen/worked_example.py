"""The worked example of the notes: the generated NumPy kernel run at tiny sizes and checked
by finite differences, computed once per derivation for whoever renders the notes.

Role in DESIGN.md's picture: a layer above the backends (beside ``artifacts.py``), the one
place where the numbers of one backend (``numpy``, rendered from the plan of the same
derivation and loaded) are handed to another (``latex``) as data: the caller passes
:func:`run_example`'s :class:`~codegen.backends.latex.example.Example` to
``render_tex(..., example=...)``; the LaTeX backend never imports the NumPy one. Every
parameter gradient the kernel returns is compared with central differences of its loss.

The numbers are reproducible byte for byte: fixed seeds, every size 2 but the classes' (3)
and ``T = 2``, one example. The result is cached per derivation (the same object), so the
notes in both languages, and the book beside the networks' own notes, pay once.

A model whose targets are not class labels (a regression, soft labels) gets no example:
its targets have a meaning this module cannot choose values for.
"""

from __future__ import annotations

import tempfile
import weakref
from pathlib import Path

import numpy

from chainrule.codegen.backends.latex.example import Example
from chainrule.codegen.backends.numpy.backend import BACKEND as NUMPY
from chainrule.codegen.plan.lower import lower
from chainrule.symbolic import Derivation

#: The sizes of the example: the classes', the steps' and every other.
CLASSES, STEPS, OTHER = 3, 2, 2
SEED = 0
#: The finite-difference step and the bound the check must meet (printed as a power of ten).
STEP = 1e-5
BOUND_EXPONENT = -6

#: id(derivation) → (a weak reference to it, its example); a Derivation is not hashable.
_CACHE: dict[int, tuple[weakref.ref, Example | None]] = {}


def _module(derivation: Derivation):
    files = NUMPY.render(derivation, lower(derivation))
    with tempfile.TemporaryDirectory() as folder:
        for name, text in files.items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        return NUMPY.load(Path(folder))


def compute_example(derivation: Derivation) -> Example | None:
    """The worked example of ``derivation``, computed now, or None for a model it does not
    fit."""
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
    time = {contract["time"]: STEPS} if contract.get("time") else {}
    return Example(sizes={**sizes, **time}, seed=SEED, step=STEP, loss=float(loss),
                   parameter=shown, kernel=grads[shown], differences=differences[shown],
                   entries=entries, worst=worst, bound_exponent=BOUND_EXPONENT)


def run_example(derivation: Derivation) -> Example | None:
    """The worked example of ``derivation`` (None for a model it does not fit), computed
    the first time it is asked for and remembered while the derivation lives."""
    key = id(derivation)
    cached = _CACHE.get(key)
    if cached is not None and cached[0]() is derivation:
        return cached[1]
    example = compute_example(derivation)

    def forget(ref: weakref.ref, key: int = key) -> None:
        if _CACHE.get(key, (None,))[0] is ref:
            del _CACHE[key]

    _CACHE[key] = (weakref.ref(derivation, forget), example)
    return example


def run_examples(derivations) -> dict[str, Example | None]:
    """The worked examples of several derivations, by model name (what ``render_book`` and
    ``build.write_sources`` take)."""
    return {d.model.name: run_example(d) for d in derivations}


__all__ = ["BOUND_EXPONENT", "CLASSES", "OTHER", "SEED", "STEP", "STEPS", "compute_example",
           "run_example", "run_examples"]
