"""Central finite differences of a kernel's loss, in float64: the oracle every test shares."""

from __future__ import annotations

from typing import Any

import numpy as np


def finite_difference_errors(kernel: Any, params: dict[str, np.ndarray], x: np.ndarray,
                             labels: np.ndarray, state: dict[str, np.ndarray] | None = None,
                             eps: float = 1e-3) -> dict[str, float]:
    """Normwise relative error of every gradient against central differences.

    The fourth-order central stencil ``(-f(+2h) + 8f(+h) - 8f(-h) + f(-2h)) / 12h``
    keeps both truncation (``h⁴``) and round-off (``ε·|L|/h``) near 1e-12, so a
    1e-6 tolerance tests the gradient, not the difference formula. The error is
    ``max_i |fd_i - g_i| / max(max_i |g_i|, max_i |fd_i|, 1e-3·max(|L|, 1))`` per
    parameter (and state): an elementwise ratio would be dominated by round-off
    near zero. The floor keeps a gradient that is exactly zero (``W_hh`` when
    ``T = 1`` and the initial state is zero) from comparing round-off with
    round-off; the stencil's round-off is about 1e-13·|L|, far below it.
    """
    loss, grads = kernel.loss_and_grad(params, x, labels, state)
    floor = 1e-3 * max(abs(float(loss)), 1.0)
    arrays = {**params, **(state or {})}
    errors = {}
    for name, array in arrays.items():
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            old = array[index]
            values = []
            for step in (2, 1, -1, -2):
                array[index] = old + step * eps
                values.append(kernel.loss_and_grad(params, x, labels, state)[0])
            array[index] = old
            numeric[index] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * eps)
        scale = max(np.abs(grads[name]).max(), np.abs(numeric).max(), floor)
        errors[name] = float(np.abs(numeric - grads[name]).max() / scale)
    return errors
