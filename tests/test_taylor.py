"""Taylor tests of every generated kernel: the gradient's remainder falls as O(h²).

For a loss L with gradient g and a direction v, the Taylor remainders

    r1(h) = |L(θ + h v) − L(θ)|                  fall as O(h)   for any g,
    r2(h) = |L(θ + h v) − L(θ) − h g·v|          fall as O(h²)  only if g·v = ∇L·v,

because a wrong gradient leaves h (∇L − g)·v, of first order. This is how Devito
and dolfin-adjoint verify their adjoints. The order is the least-squares slope of
log r against log h over ``STEPS`` (h = 2⁻⁶ · 2⁻ᵏ, k = 0..7, v of unit norm). There
r2 is at least 4e4 times the round-off ε·|L| for these models (it shows some six
halvings further down), and a correct kernel fits 2 within 0.02; the test asks
for ``SECOND_ORDER`` = 1.9, and r1 must fit 1 within 0.1, which shows that the
same steps tell the two orders apart.

Every built-in network and every example spec, on both kernel backends (C is
skipped, with the reason, where it cannot run), in float64, on the edge sizes of
``tests.cases`` (T=1, B=1, one hidden unit, two classes) and one larger case; v
runs over all parameters at once and, separately, over the initial states of a
recurrent model.

A control keeps the test from passing vacuously: the kernel's gradient of one
parameter (or state) scaled by 1.01 fits order ≈ 1 over the same steps (at most
1.15 here, the test asks for below 1.5) and 1 within 0.01 further down.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule import codegen
from chainrule.codegen.registry import backend_named
from chainrule.symbolic import Model, Role
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import load_spec, source_of
from tests.cases import EDGE_CASES, case_id, random_inputs
from tests.kernel_files import write_kernels

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: example specs whose loss is not smooth enough at these sizes and steps: layer
#: normalisation over H = 1 unit makes the cell's output the bias alone (the loss does
#: not depend on the state: no slope to fit), over H = 2 a sign function smoothed by
#: ε = 1e-5, whose remainder is not yet second order at h ≥ 1e-4. Its gradients are
#: checked against nn.LayerNorm and finite differences in tests/test_losses_targets.py.
NOT_SMOOTH_HERE = {"rnn_layernorm"}

#: every model: the built-ins by name, the example specs by file (the same names clash)
MODELS: dict[str, Callable[[], Model]] = {
    **{f"builtin-{name}": build for name, build in BUILTINS.items()},
    **{f"spec-{path.stem}": (lambda path=path: load_spec(path))
       for path in sorted(EXAMPLES.glob("*.toml")) if path.stem not in NOT_SMOOTH_HERE},
}
SOURCES = {f"spec-{path.stem}": source_of(path) for path in EXAMPLES.glob("*.toml")
           if path.stem not in NOT_SMOOTH_HERE}
STATEFUL = {model_id for model_id, build in MODELS.items() if build().of_role(Role.STATE)}
BACKENDS = ["numpy", "c"]
#: (seed, T, B, I, H, K): the edges of ``tests.cases``, then one larger case
CASES = [*EDGE_CASES, (4, 5, 3, 4, 5, 3)]

STEPS = 2.0 ** -6 * 2.0 ** -np.arange(8)
#: where the remainder of a wrong gradient is all first order (well above round-off,
#: since that remainder is h·(∇L − g)·v, not h²)
FINE_STEPS = STEPS[-1] * 2.0 ** -np.arange(1, 5)
SECOND_ORDER = 1.9
#: the first-order remainder must fit 1 within this
FIRST_ORDER_TOLERANCE = 0.1
WRONG_SCALE = 1.01
#: a gradient off by 1% must fit well below SECOND_ORDER over STEPS, not just below it
WRONG_ORDER_BELOW = 1.5

DIRECTIONS = [(model_id, "params") for model_id in MODELS] + \
    [(model_id, "state") for model_id in MODELS if model_id in STATEFUL]


def fitted_order(steps: np.ndarray, remainders: np.ndarray) -> float:
    """The least-squares slope of log r against log h."""
    return float(np.polyfit(np.log(steps), np.log(remainders), 1)[0])


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Any]:
    """``kernel(model_id, backend)``: the model's kernels generated once into a temporary
    folder, loaded per backend; C skipped visibly where it cannot run."""
    folders: dict[str, Path] = {}
    loaded: dict[tuple[str, str], Any] = {}

    def make(model_id: str, backend: str) -> Any:
        why = backend_named(backend).unavailable()
        if why is not None:
            pytest.skip(f"the {backend} backend cannot run here: {why}")
        if model_id not in folders:
            model = MODELS[model_id]()
            folders[model_id] = write_kernels(model, tmp_path_factory.mktemp(model_id)
                                              / model.name, SOURCES.get(model_id))
        if (model_id, backend) not in loaded:
            loaded[model_id, backend] = codegen.load(folders[model_id], backend=backend)
        return loaded[model_id, backend]

    return make


def unit(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` scaled to norm 1 over all of them (zero stays zero)."""
    norm = np.sqrt(sum(float((a * a).sum()) for a in arrays.values()))
    return {name: a / norm if norm > 0 else a for name, a in arrays.items()}


class Taylor:
    """L along ``θ + h v`` for the parameters (``which="params"``) or initial states."""

    def __init__(self, kernel: Any, case: tuple[int, ...], which: str) -> None:
        self.kernel = kernel
        self.which = which
        self.params, self.x, self.labels, self.state = random_inputs(kernel, *case)
        loss, grads = kernel.loss_and_grad(self.params, self.x, self.labels, self.state)
        assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
        self.loss = float(loss)
        base = self.moved_arrays()
        self.grads = {name: np.asarray(grads[name], dtype=np.float64) for name in base}
        # a random unit vector (its sign turned towards the gradient) plus the unit
        # gradient, so that ∇L·v is not small by chance: then L(θ+hv) − L(θ) would look
        # second order itself over these steps
        rng = np.random.default_rng(1000 + case[0])
        random = unit({name: rng.normal(size=array.shape) for name, array in base.items()})
        along = unit(self.grads)
        sign = 1.0 if sum(float((random[n] * along[n]).sum()) for n in base) >= 0 else -1.0
        self.v = unit({name: sign * random[name] + along[name] for name in base})

    def moved_arrays(self) -> dict[str, np.ndarray]:
        return self.params if self.which == "params" else self.state

    def loss_at(self, h: float) -> float:
        moved = {name: array + h * self.v[name] for name, array in self.moved_arrays().items()}
        params, state = (moved, self.state) if self.which == "params" else (self.params, moved)
        loss, _ = self.kernel.loss_and_grad(params, self.x.copy(), self.labels.copy(), state)
        return float(loss)

    def slope(self, grads: dict[str, np.ndarray]) -> float:
        """g·v."""
        return sum(float((grads[name] * self.v[name]).sum()) for name in self.v)

    def remainders(self, steps: np.ndarray, grads: dict[str, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(r1, r2) at each step, r2 with ``grads`` (the kernel's by default)."""
        slope = self.slope(self.grads if grads is None else grads)
        changes = np.array([self.loss_at(h) - self.loss for h in steps])
        return np.abs(changes), np.abs(changes - steps * slope)


def describe(steps: np.ndarray, r1: np.ndarray, r2: np.ndarray) -> str:
    return "\n".join(f"  h={h:.3e}  r1={a:.3e}  r2={b:.3e}" for h, a, b in zip(steps, r1, r2,
                                                                             strict=True))


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model_id, which", DIRECTIONS, ids=[f"{m}-{w}" for m, w in DIRECTIONS])
def test_taylor_remainder_is_second_order(kernel, model_id, which, backend, case) -> None:
    taylor = Taylor(kernel(model_id, backend), case, which)
    r1, r2 = taylor.remainders(STEPS)
    first, second = fitted_order(STEPS, r1), fitted_order(STEPS, r2)
    table = describe(STEPS, r1, r2)
    # far from round-off, or the fit would measure the rounding, not the gradient
    assert r2.min() > 1e3 * np.finfo(np.float64).eps * max(abs(taylor.loss), 1.0), (
        f"{model_id} ({backend}, {which}): the smallest steps reach round-off\n{table}")
    assert second >= SECOND_ORDER, (
        f"{model_id} ({backend}, {which}): the remainder L(θ+hv) − L(θ) − h∇L·v falls as "
        f"h^{second:.3f}, not h²: the gradient is wrong\n{table}")
    assert abs(first - 1) < FIRST_ORDER_TOLERANCE, (
        f"{model_id} ({backend}, {which}): L(θ+hv) − L(θ) falls as h^{first:.3f}, not h\n{table}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("model_id, which", DIRECTIONS, ids=[f"{m}-{w}" for m, w in DIRECTIONS])
def test_a_wrong_gradient_fails_the_taylor_test(kernel, model_id, which, case) -> None:
    """The gradient of one array (the one that moves g·v most) scaled by 1.01: over the
    same steps its remainder fits well below 2, and further down it is plainly O(h)."""
    taylor = Taylor(kernel(model_id, "numpy"), case, which)
    name = max(taylor.v, key=lambda n: abs(float((taylor.grads[n] * taylor.v[n]).sum())))
    wrong = {**taylor.grads, name: WRONG_SCALE * taylor.grads[name]}
    r1, r2 = taylor.remainders(STEPS, wrong)
    order = fitted_order(STEPS, r2)
    assert order < WRONG_ORDER_BELOW, (
        f"{model_id} ({which}): a gradient of {name} off by 1% still fits order {order:.3f}\n"
        f"{describe(STEPS, r1, r2)}")
    _, r2_fine = taylor.remainders(FINE_STEPS, wrong)
    asymptotic = fitted_order(FINE_STEPS, r2_fine)
    assert abs(asymptotic - 1) < FIRST_ORDER_TOLERANCE, (
        f"{model_id} ({which}): a gradient of {name} off by 1% leaves a remainder of order "
        f"{asymptotic:.3f}, not 1")
