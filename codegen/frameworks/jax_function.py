"""A loaded kernel's loss as a differentiable JAX function: ``chainrule.load(dir).jax()``.

Role in DESIGN.md's picture: JAX over the kernel contract. ``loss(params, inputs,
targets, state=None)`` is a ``jax.custom_vjp`` function: its forward calls the kernel's
``loss_and_grad`` on the host through ``jax.pure_callback`` (so it works under
``jax.jit`` and ``jax.grad``; under ``jax.vmap`` the kernel runs once per mapped
element), and keeps the gradients that call computed as the residuals its backward
scales; nothing is recomputed. ``params`` and ``state`` are dicts by PARAMS and STATE
name, ``inputs`` and ``targets`` as the kernel takes them (a dict by name, or the one
array). The kernels compute the gradients of the parameters and the initial state only:
the cotangents of inputs and targets are zero, and JAX cannot be asked for more (say so
where you differentiate with respect to an input). Forward-mode (``jax.jvp``) is not
defined: a ``custom_vjp`` function is reverse-mode only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

__all__ = ["loss_function"]


def loss_function(kernel: Any) -> Callable[..., Any]:
    """``loss(params, inputs, targets, state=None)`` over ``kernel``, differentiable in
    reverse mode with respect to ``params`` and ``state``; the loss is a 0-d array in
    the parameters' dtype (float32, or float64 with ``jax_enable_x64``)."""
    param_names = tuple(kernel.PARAMS)
    state_names = tuple(kernel.STATE)

    def call(params: Mapping[str, Any], inputs: Any, targets: Any,
             state: Mapping[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        dtype = np.dtype(params[param_names[0]].dtype)
        wanted = param_names + (state_names if state is not None else ())
        shapes = {**params, **(state or {})}
        result = (jax.ShapeDtypeStruct((), dtype),
                  {n: jax.ShapeDtypeStruct(tuple(shapes[n].shape), dtype) for n in wanted})

        def host(params: Any, inputs: Any, targets: Any, state: Any) -> Any:
            as_numpy = jax.tree_util.tree_map(np.asarray, (params, inputs, targets, state))
            loss, grads = kernel.loss_and_grad(*as_numpy)
            return np.asarray(loss, dtype), {n: np.asarray(grads[n], dtype) for n in wanted}

        return jax.pure_callback(host, result, params, inputs, targets, state,
                                 vmap_method="sequential")

    @jax.custom_vjp
    def loss(params: Any, inputs: Any, targets: Any, state: Any) -> Any:
        return call(params, inputs, targets, state)[0]

    def forward(params: Any, inputs: Any, targets: Any, state: Any) -> Any:
        value, grads = call(params, inputs, targets, state)
        return value, (grads, inputs, targets)

    def backward(residuals: Any, cotangent: Any) -> Any:
        grads, inputs, targets = residuals
        scaled = {n: cotangent * g for n, g in grads.items()}
        none = jax.tree_util.tree_map(lambda _: None, (inputs, targets))
        given = bool(state_names) and state_names[0] in grads
        state = {n: scaled[n] for n in state_names} if given else None
        return ({n: scaled[n] for n in param_names}, *none, state)

    loss.defvjp(forward, backward)

    def kernel_loss(params: Mapping[str, Any], inputs: Any, targets: Any,
                    state: Mapping[str, Any] | None = None) -> Any:
        """The kernel's loss (``loss_and_grad``'s first value), differentiable in reverse
        mode with respect to ``params`` and ``state``."""
        return loss(dict(params), inputs, targets, None if state is None else dict(state))

    return kernel_loss
