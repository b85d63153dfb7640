"""Saturated units in C: finite wherever the NumPy kernel is, in float32 as in float64.

The C kernels are compiled with -ffast-math, under which the vectorised ``expf`` need not
overflow to infinity: ``1 - 2/(e^{2v} + 1)`` gave NaN once a tanh pre-activation passed
about 44 (an MLP on raw pixel values 0..255 in float32 returned NaN loss, gradients and
predictions). Here pre-activations and logits reach ±1e4 and beyond on every network, at
sizes where the compiler's vector loops run (a short loop is scalar, and scalar expf
overflows to infinity as it should).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule import codegen
from tests.cases import random_inputs

GENERATED = Path(__file__).resolve().parents[1] / "generated"
NETWORKS = ("mlp", "rnn", "lstm", "lstm_no_peepholes")
# (x scale, parameter scale): raw pixels; pre-activations and logits about ±1e4; far past it
SCALES = [(255.0, 1.0), (1.0, 1e4), (255.0, 1e4)]


@pytest.fixture(scope="module", params=NETWORKS)
def kernels(request: pytest.FixtureRequest) -> tuple:
    directory = GENERATED / request.param
    return codegen.load(directory, backend="numpy"), codegen.load(directory, backend="c")


def _finite(loss: np.floating, grads: dict[str, np.ndarray]) -> bool:
    return bool(np.isfinite(loss)) and all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("scales", SCALES, ids=["pixels", "1e4", "beyond"])
@pytest.mark.parametrize("seed", [0, 1])
def test_saturated_units_stay_finite_and_agree(kernels: tuple, dtype: type, scales: tuple,
                                               seed: int) -> None:
    numpy_kernel, c_kernel = kernels
    x_scale, param_scale = scales
    params, x, labels, state = random_inputs(numpy_kernel, seed, 3, 16, 4, 32, 3, dtype=dtype)
    params = {n: (p * param_scale).astype(dtype) for n, p in params.items()}
    x = np.abs(x * x_scale).astype(dtype)
    with np.errstate(over="ignore", under="ignore"):
        loss_np, grads_np = numpy_kernel.loss_and_grad(params, x, labels, state)
    assert _finite(loss_np, grads_np), "the NumPy kernel itself overflowed: a bad test case"
    loss_c, grads_c = c_kernel.loss_and_grad(params, x, labels, state)
    assert _finite(loss_c, grads_c), {n: int(np.isnan(g).sum()) for n, g in grads_c.items()}
    assert np.isfinite(c_kernel.predict(params, x, state)).all()

    # Against the float64 result of the same (rounded) inputs. Through a saturated unit a
    # float32 gradient is known only to a few ulps of the largest gradient, and the NumPy
    # kernel is no better there: C in float32 must be as close as NumPy in float32 is.
    wide = {n: p.astype(np.float64) for n, p in params.items()}
    wide_state = None if state is None else {n: s.astype(np.float64) for n, s in state.items()}
    loss_64, grads_64 = numpy_kernel.loss_and_grad(wide, x.astype(np.float64), labels,
                                                   wide_state)
    scale = max(float(np.abs(g).max()) for g in grads_64.values())
    # float64: C reassociates its sums (-ffast-math, the vector width of -march=native), so
    # it agrees with NumPy to rounding of the sums' terms, which through a saturated unit are
    # far larger than the gradient: 2.7e-11 of the largest gradient measured on an AVX-512
    # Xeon (rnn, seed 0, scale 1e4, the gradient of h0), 1e-12 on AVX2 machines.
    tolerance, floor = (1e-4, 1e-5) if dtype is np.float32 else (1e-10, 1e-10)
    assert abs(float(loss_c) - loss_64) <= tolerance * abs(loss_64)
    for name, gradient in grads_64.items():
        ours = float(np.abs(grads_c[name].astype(np.float64) - gradient).max())
        numpy_error = float(np.abs(grads_np[name].astype(np.float64) - gradient).max())
        assert ours <= 4 * numpy_error + floor * scale, (name, ours, numpy_error, scale)
