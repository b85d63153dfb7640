"""Training frameworks over a loaded kernel: ``kernel.torch(...)`` and ``kernel.jax(...)``.

Role in DESIGN.md's picture: a layer above the loaded kernels (``codegen.load``), beside
the command line. A kernel, NumPy module or ``CKernel``, is wrapped as it is, through
its contract (PARAMS, STATE, INPUTS, LABELS, TARGETS, ``loss_and_grad``): nothing here
knows a backend. ``torch_module.py`` makes a ``torch.nn.Module`` whose backward hands
back the kernel's gradients; ``jax_function.py`` a ``jax.custom_vjp`` function over
``jax.pure_callback``. Neither framework is a dependency of chainrule: this package
imports them only when a wrapper is asked for.

The generated NumPy module imports NumPy alone and its text is not changed for this:
``codegen.load`` sets the attributes ``torch`` and ``jax`` on the module object it
returns (:func:`attach`), the functions :func:`torch_method` and :func:`jax_method`
make; ``CKernel`` has ``torch`` as a method of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["attach", "jax_method", "torch_method"]


def torch_method(kernel: Any) -> Callable[..., Any]:
    """``kernel.torch``: the function that wraps ``kernel`` as a ``torch.nn.Module``."""

    def torch(sizes: Mapping[str, int] | None = None, *, params: Mapping[str, Any] | None = None,
              rng: Any = None, dtype: Any = None) -> Any:
        """This kernel as a ``torch.nn.Module`` (see ``codegen.frameworks.torch_module``).

        ``sizes`` maps every SIZES name to an int (for ``init_params``), or is None when
        ``params`` are given; ``params`` are the starting parameters (arrays or tensors);
        ``rng`` the seed of ``init_params``; ``dtype`` ``torch.float32`` (None) or
        ``torch.float64``. Needs PyTorch (``pip install 'chainrule[torch]'``).
        """
        from chainrule.codegen.frameworks.torch_module import kernel_module

        return kernel_module(kernel, sizes, params=params, rng=rng, dtype=dtype)

    return torch


def jax_method(kernel: Any) -> Callable[..., Any]:
    """``kernel.jax``: the function that wraps ``kernel`` as a differentiable JAX function."""

    def jax() -> Callable[..., Any]:
        """This kernel's loss as a ``jax.custom_vjp`` function ``loss(params, inputs,
        targets, state=None)`` (see ``codegen.frameworks.jax_function``). Needs JAX
        (``pip install 'chainrule[jax]'``)."""
        from chainrule.codegen.frameworks.jax_function import loss_function

        return loss_function(kernel)

    return jax


def attach(kernel: Any) -> Any:
    """``kernel`` with ``torch`` and ``jax`` where it has none of its own; returns it."""
    if not callable(getattr(kernel, "torch", None)):
        kernel.torch = torch_method(kernel)
    if not callable(getattr(kernel, "jax", None)):
        kernel.jax = jax_method(kernel)
    return kernel
