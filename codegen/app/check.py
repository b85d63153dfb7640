"""``chainrule check``: a model's generated kernels against central finite differences.

Role in DESIGN.md's picture: the numbers, for any model (a built-in or a spec),
from the command line. ``check_model(Model) → Report`` renders every artifact
into a temporary folder (``artifacts.render``, ``writer.write_atomically``),
loads each backend's kernel (``codegen.load``), and on random small sizes
compares every gradient (parameters and initial states) with the fourth-order
central difference of the loss, in float64. ``Report.table()`` prints the
worst relative error per parameter and backend; ``Report.ok`` is whether all
of them are within the tolerance.

The error of one gradient ``g`` against its difference quotient ``d`` is
``max|d - g| / max(max|g|, max|d|, 1e-3·max(|L|, 1))``: normwise, so round-off
near zero does not dominate, with a floor for a gradient that is exactly zero.

A NaN or infinite loss or gradient fails the check, named per backend in
``Report.not_finite``: NaN compares false with everything, so without this a
``max`` over errors would silently drop it and a NaN kernel would pass.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.codegen import load
from chainrule.codegen.artifacts import render
from chainrule.codegen.plan.lower import LoweringError
from chainrule.codegen.registry import backend_named, kernel_backends
from chainrule.codegen.writer import write_atomically
from chainrule.symbolic import Model, ModelError

__all__ = ["BACKENDS", "GENERATE", "TOLERANCE", "Report", "check_model",
           "finite_difference_errors", "not_finite"]

#: the backends ``check_model`` compares by default: every kernel backend of the registry
BACKENDS = tuple(backend.name for backend in kernel_backends())
TOLERANCE = 1e-6
#: sizes and B are drawn from 1..MAX_SIZE (at least 2 classes), T from 2..MAX_SIZE+1
MAX_SIZE = 3
CASES = 2
#: The key of ``Report.failed`` when the kernels could not be generated at all.
GENERATE = "generate"


@dataclass
class Report:
    """Worst relative error per (quantity, backend) over the cases; skipped backends."""

    name: str
    tolerance: float
    cases: list[dict[str, int]] = field(default_factory=list)
    errors: dict[str, dict[str, float]] = field(default_factory=dict)  # backend → name → error
    skipped: dict[str, str] = field(default_factory=dict)  # backend → why
    failed: dict[str, str] = field(default_factory=dict)  # backend → the error its kernel raised
    # backend → what was NaN or infinite: "the loss (nan)", "the gradient of W (inf)"
    not_finite: dict[str, list[str]] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return _worst(e for errors in self.errors.values() for e in errors.values())

    @property
    def ok(self) -> bool:
        checked = [e for errors in self.errors.values() for e in errors.values()]
        return (bool(checked) and not self.failed and not self.not_finite
                and all(e <= self.tolerance for e in checked))

    def table(self) -> str:
        """The report as text: the cases, one row per quantity, a column per backend."""
        cases = "; ".join(" ".join(f"{k}={v}" for k, v in case.items()) for case in self.cases)
        lines = [f"{self.name}: gradients against central finite differences, float64, "
                 f"{len(self.cases)} random case{'s' if len(self.cases) != 1 else ''}"
                 + (f" ({cases})" if cases else "")]
        backends = list(self.errors)
        names: list[str] = []
        for errors in self.errors.values():
            names += [n for n in errors if n not in names]
        width = max([len("worst"), len("gradient"), *map(len, names)])
        if backends:
            lines.append("  ".join([f"{'gradient':<{width}}", *(f"{b:>9}" for b in backends)]))
        for name in [*names, "worst"] if backends else []:
            cells = []
            for backend in backends:
                errors = self.errors[backend]
                value = _worst(errors.values()) if name == "worst" else errors.get(name)
                cells.append(f"{value:>9.1e}" if value is not None else f"{'-':>9}")
            lines.append("  ".join([f"{name:<{width}}", *cells]))
        for backend, why in self.skipped.items():
            lines.append(f"{backend}: skipped ({why})")
        for backend, error in self.failed.items():
            what = "generating the kernels" if backend == GENERATE else "the kernel"
            lines.append(f"{backend}: FAILED, {what} raised {error}")
        for backend, what in self.not_finite.items():
            lines.append(f"{backend}: FAILED, not finite: {', '.join(what)}")
        if not self.errors and not self.failed and not self.not_finite:
            lines.append("FAILED: no backend could be checked")
        elif GENERATE in self.failed:
            lines.append("FAILED: the kernels could not be generated")
        elif self.not_finite:
            lines.append(f"FAILED: NaN or infinite loss or gradients from the "
                         f"{' and the '.join(self.not_finite)} kernel"
                         f"{'s' if len(self.not_finite) > 1 else ''}")
        elif self.failed and all(e <= self.tolerance for errors in self.errors.values()
                                 for e in errors.values()):
            lines.append(f"FAILED: could not run the {' and the '.join(self.failed)} "
                         f"kernel{'s' if len(self.failed) > 1 else ''}")
        elif self.ok:
            lines.append(f"ok: every gradient within {self.tolerance:g} of the differences")
        else:
            bad = sorted({f"{n} ({b})" for b, errors in self.errors.items()
                          for n, e in errors.items() if not e <= self.tolerance})
            lines.append(f"FAILED: above the tolerance {self.tolerance:g}: {', '.join(bad)}")
        return "\n".join(lines) + "\n"


def check_model(model: Model, *, source: str | None = None, seed: int = 0, cases: int = CASES,
                tolerance: float = TOLERANCE, backends: tuple[str, ...] = BACKENDS) -> Report:
    """Generate ``model``'s kernels into a temporary folder and check each backend.

    A backend is skipped (with the reason) where it cannot run here (C without a C
    compiler: ``KernelBackend.unavailable``). A model the engine or the kernels refuse
    raises its ``ModelError`` or ``LoweringError``, as ``generate`` does. Anything else that
    goes wrong (the engine fails on the model, a kernel does not compile or raises) is
    recorded in ``Report.failed``: finding it is what the check is for.
    """
    report = Report(model.name, tolerance)
    try:
        files = render(model, source=source)
    except (ModelError, LoweringError):
        raise  # a model the engine or the kernels refuse, by design: the caller's to report
    except Exception as error:
        report.failed[GENERATE] = _error_text(error)
        return report
    with tempfile.TemporaryDirectory(prefix="chainrule-check-") as tmp:
        folder = Path(tmp) / model.name
        write_atomically(folder, files)
        kernels: dict[str, Any] = {}
        for backend in backends:
            why = backend_named(backend).unavailable()
            if why is not None:
                report.skipped[backend] = why
                continue
            try:
                kernels[backend] = load(folder, backend=backend)
            except Exception as error:
                report.failed[backend] = _error_text(error)
        rng = np.random.default_rng(seed)
        for number in range(cases if kernels else 0):
            first = next(iter(kernels.values()))
            inputs = _random_inputs(model, first, rng, with_state=number % 2 == 0)
            report.cases.append(inputs.pop("sizes"))
            for backend, kernel in kernels.items():
                if backend in report.failed:
                    continue
                try:
                    # overflow is reported below as what it makes, not as NumPy's warnings
                    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                        loss, grads = kernel.loss_and_grad(**_copy(inputs))
                        bad = not_finite(loss, grads)
                        if bad:
                            found = report.not_finite.setdefault(backend, [])
                            found += [what for what in bad if what not in found]
                            continue
                        errors = finite_difference_errors(kernel, **_copy(inputs))
                except Exception as error:
                    report.failed[backend] = _error_text(error)
                    report.errors.pop(backend, None)
                    continue
                worst = report.errors.setdefault(backend, {})
                for name, error in errors.items():
                    worst[name] = _worse(worst.get(name, 0.0), error)
    return report


def not_finite(loss: Any, grads: dict[str, Any]) -> list[str]:
    """What of a kernel's loss and gradients is NaN or infinite, e.g. ``the loss (nan)``."""
    found = []
    for what, value in [("the loss", loss),
                        *((f"the gradient of {name}", grad) for name, grad in grads.items())]:
        array = np.asarray(value, dtype=np.float64)
        if not np.isfinite(array).all():
            kinds = [kind for kind, test in (("nan", np.isnan), ("inf", np.isinf))
                     if test(array).any()]
            found.append(f"{what} ({', '.join(kinds)})")
    return found


def _worse(a: float, b: float) -> float:
    """The larger error, NaN counting as the worst (``max(0.0, nan)`` is 0.0)."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return max(a, b)


def _worst(errors: Iterable[float]) -> float:
    worst = 0.0
    for error in errors:
        worst = _worse(worst, error)
    return worst


def _error_text(error: Exception) -> str:
    lines = f"{type(error).__name__}: {error}".strip().splitlines()
    return lines[0] + (f" (... {len(lines) - 1} more lines)" if len(lines) > 1 else "")


def finite_difference_errors(kernel: Any, params: dict[str, np.ndarray], inputs: Any,
                             targets: Any, state: dict[str, np.ndarray] | None = None,
                             eps: float = 1e-3) -> dict[str, float]:
    """Normwise relative error of every gradient against central differences.

    The fourth-order central stencil ``(-f(+2h) + 8f(+h) - 8f(-h) + f(-2h)) / 12h``
    keeps both truncation (``h⁴``) and round-off (``ε·|L|/h``) near 1e-12, so a
    1e-6 tolerance tests the gradient, not the difference formula. The error is
    ``max_i |fd_i - g_i| / max(max_i |g_i|, max_i |fd_i|, 1e-3·max(|L|, 1))`` per
    parameter (and state): an elementwise ratio would be dominated by round-off
    near zero, and the floor keeps a gradient that is exactly zero (``W_hh`` when
    ``T = 1`` and the initial state is zero) from comparing round-off with round-off.
    """
    loss, grads = kernel.loss_and_grad(params, inputs, targets, state)
    floor = 1e-3 * max(abs(float(loss)), 1.0)
    errors = {}
    for name, array in {**params, **(state or {})}.items():
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            old = array[index]
            values = []
            for step in (2, 1, -1, -2):
                array[index] = old + step * eps
                values.append(float(kernel.loss_and_grad(params, inputs, targets, state)[0]))
            array[index] = old
            numeric[index] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * eps)
        scale = max(float(np.abs(grads[name]).max()), float(np.abs(numeric).max()), floor)
        errors[name] = float(np.abs(numeric - grads[name]).max() / scale)
    return errors


def _random_inputs(model: Model, kernel: Any, rng: np.random.Generator,
                   with_state: bool) -> dict[str, Any]:
    """Sizes, order-one parameters, inputs, targets and (maybe) a state, per the contract:
    normal inputs, labels in range (at least two classes), real-valued targets in
    0.1..0.9 (valid for a regression, a binary cross-entropy and soft labels alike)."""
    sizes = {name: int(rng.integers(1, MAX_SIZE + 1)) for name in kernel.SIZES}
    for classes in kernel.CONTRACT["classes"].values():
        sizes[classes] = max(sizes[classes], 2)
    shown = dict(sizes)
    time = kernel.CONTRACT["time"]
    if time is not None:
        shown[time] = int(rng.integers(2, MAX_SIZE + 2))  # at least one step through time
    shown["B"] = int(rng.integers(1, MAX_SIZE + 1))

    def shape(axes: Iterable[str]) -> tuple[int, ...]:
        return tuple(shown[axis] for axis in axes)

    params = kernel.init_params(sizes, rng=rng)
    # parameters of order one, so that every gate matters to the loss
    params = {n: a + rng.normal(scale=0.5, size=a.shape) for n, a in params.items()}
    inputs = {n: rng.normal(size=shape(axes)) for n, axes in kernel.CONTRACT["inputs"].items()}
    targets = {n: rng.integers(0, shown[kernel.CONTRACT["classes"][n]], size=shape(axes))
               for n, axes in kernel.CONTRACT["labels"].items()}
    targets |= {n: rng.uniform(0.1, 0.9, size=shape(axes))
                for n, axes in kernel.CONTRACT["targets"].items()}
    state = None
    if with_state and kernel.STATE:
        state = {n: rng.normal(size=shape(("B", *axes))) for n, axes in kernel.STATE.items()}
    return {"sizes": shown, "params": params, "inputs": inputs, "targets": targets,
            "state": state}


def _copy(inputs: dict[str, Any]) -> dict[str, Any]:
    """Fresh arrays per backend: the differences perturb them in place."""
    def copied(arrays: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
        return None if arrays is None else {n: a.copy() for n, a in arrays.items()}

    return {"params": copied(inputs["params"]), "inputs": copied(inputs["inputs"]),
            "targets": copied(inputs["targets"]), "state": copied(inputs["state"])}
