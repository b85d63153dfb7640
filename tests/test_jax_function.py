"""``kernel.jax()``: a generated kernel's loss as a jax.custom_vjp function over
jax.pure_callback (codegen/frameworks/jax_function.py), checked by jax.test_util.check_grads
in reverse mode, against loss_and_grad, under jit, for both backends and dtypes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule import codegen
from tests.cases import random_inputs

try:
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads
except ImportError:  # skipped below, with the reason
    jax = None

pytestmark = pytest.mark.skipif(jax is None, reason=(
    "JAX is not installed; install the optional extra: pip install -e '.[jax]'"))

GENERATED = Path(__file__).resolve().parents[1] / "generated"
HAS_CC = (shutil.which("cc") or shutil.which("gcc")) is not None
BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(
    not HAS_CC, reason="no C compiler (cc) on this machine"))]


@pytest.fixture
def x64() -> Iterator[None]:
    """float64 in JAX for this test only (it is off by default)."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def arguments(kernel: Any, dtype: Any, seed: int = 0) -> tuple[Any, ...]:
    params, inputs, targets, state = random_inputs(kernel, seed, T=3, B=2, I=3, H=3, K=3,
                                                   dtype=dtype)
    return params, inputs, targets, state


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("net", ["mlp", "lstm"])
def test_check_grads_in_reverse_mode(net: str, backend: str, x64: None) -> None:
    kernel = codegen.load(GENERATED / net, backend=backend)
    params, inputs, targets, state = arguments(kernel, np.float64)
    loss = kernel.jax()
    tree = ({n: jnp.asarray(a) for n, a in params.items()},
            None if state is None else {n: jnp.asarray(a) for n, a in state.items()})
    check_grads(lambda p, s: loss(p, inputs, targets, s), tree, order=1, modes=["rev"],
                eps=1e-6, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_are_the_kernels_under_jit(backend: str, dtype: Any, x64: None) -> None:
    kernel = codegen.load(GENERATED / "rnn", backend=backend)
    params, inputs, targets, state = arguments(kernel, dtype, seed=1)
    loss = kernel.jax()
    value, (grads, state_grads) = jax.jit(jax.value_and_grad(
        lambda p, s: loss(p, inputs, targets, s), argnums=(0, 1)))(params, state)
    ref_loss, ref = kernel.loss_and_grad(params, inputs, targets, state)
    assert value.dtype == dtype and value == ref_loss
    for name in kernel.PARAMS:
        assert grads[name].dtype == dtype
        np.testing.assert_array_equal(np.asarray(grads[name]), ref[name], err_msg=name)
    np.testing.assert_array_equal(np.asarray(state_grads["h0"]), ref["h0"])
