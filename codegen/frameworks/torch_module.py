"""A loaded kernel as a ``torch.nn.Module``: ``chainrule.load(dir).torch(sizes)``.

Role in DESIGN.md's picture: PyTorch over the kernel contract, for training a derived
cell with ``torch.optim``, a ``DataLoader`` or ``DistributedDataParallel``. The module's
``nn.Parameter``\\ s are named as the kernel's PARAMS; ``forward(inputs, targets,
state=None)`` returns the loss ``loss_and_grad`` computes, through a
``torch.autograd.Function`` (:class:`KernelLoss`) whose backward hands back the
gradients that same call computed: the kernel runs once per step, forward and backward
together, and nothing is recomputed. The tensors are shared with NumPy, not copied, on
the way in and on the way out.

What the kernel cannot give is refused, not approximated: tensors on a device other
than the CPU, inputs or targets that require a gradient (the kernels compute the
gradients of the parameters and the initial state only), and a second derivative
(backward with ``create_graph=True`` gives gradients whose own backward raises).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["SECOND_ORDER", "KernelLoss", "KernelModule", "kernel_module"]

#: numpy's dtype for each torch dtype the kernels compute in
_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}

SECOND_ORDER = ("a chainrule kernel is differentiable once: its backward hands back the "
                "generated gradients, which have no derivative of their own here (double "
                "backward, or a gradient of a gradient taken with create_graph=True, is not "
                "supported)")


def kernel_module(kernel: Any, sizes: Mapping[str, int] | None = None, *,
                  params: Mapping[str, Any] | None = None, rng: Any = None,
                  dtype: torch.dtype | None = None) -> KernelModule:
    """``kernel`` (a NumPy module or ``CKernel``) as a :class:`KernelModule`.

    The parameters are ``kernel.init_params(sizes, rng=rng)`` in ``dtype``, or copies of
    ``params`` (arrays or CPU tensors by PARAMS name; their shapes checked against
    ``sizes`` when both are given). ``dtype`` is ``torch.float32`` (None) or
    ``torch.float64``. ValueError for anything else.
    """
    dtype = torch.float32 if dtype is None else dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    np_dtype = _DTYPES[dtype]
    if params is None:
        if sizes is None:
            raise ValueError(f"give sizes (a dict of {', '.join(kernel.SIZES)} to ints) to "
                             f"draw the parameters, or params")
        arrays = kernel.init_params(sizes, rng=rng, dtype=np_dtype)
    else:
        if rng is not None:
            raise ValueError("rng draws the parameters: give rng or params, not both")
        arrays = _given_params(kernel, params, sizes, np_dtype)
    return KernelModule(kernel, arrays, dtype)


def _given_params(kernel: Any, params: Mapping[str, Any], sizes: Mapping[str, int] | None,
                  np_dtype: Any) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping of {', '.join(kernel.PARAMS)} to arrays, "
                         f"got {type(params).__name__}")
    missing = [name for name in kernel.PARAMS if name not in params]
    unknown = [str(name) for name in params if name not in kernel.PARAMS]
    if missing or unknown:
        raise ValueError(f"params must hold exactly the keys {', '.join(kernel.PARAMS)}; "
                         f"missing {', '.join(missing) or 'none'}, "
                         f"unknown {', '.join(unknown) or 'none'}")
    arrays = {}
    for name, axes in kernel.PARAMS.items():
        value = params[name]
        if isinstance(value, torch.Tensor):
            _on_cpu(f"params[{name!r}]", value)
            value = value.detach().numpy()
        array = np.array(value, dtype=np_dtype)  # a copy: the module owns its parameters
        if sizes is not None:
            expected = tuple(int(sizes[axis]) for axis in axes)
            if array.shape != expected:
                shape = ", ".join(axes)
                raise ValueError(f"params[{name!r}] must have shape ({shape}) = {expected} "
                                 f"for sizes {dict(sizes)}, got {array.shape}")
        arrays[name] = array
    return arrays


class KernelModule(torch.nn.Module):
    """A chainrule kernel with its parameters: ``loss = module(inputs, targets, state)``.

    ``inputs`` and ``targets`` are what the kernel's ``loss_and_grad`` takes, as tensors
    (or arrays): a dict by the model's names, or the tensor itself where the model has
    one input (one target); class labels as an integer tensor. ``state`` maps every
    STATE name to a ``(B, ...)`` tensor, or is None (zeros); its tensors that require a
    gradient get the kernel's. The loss is a 0-d tensor in the parameters' dtype, summed
    over the batch (and time) as the kernel sums it.
    """

    def __init__(self, kernel: Any, params: Mapping[str, np.ndarray], dtype: torch.dtype
                 ) -> None:
        super().__init__()
        # private names: the user's parameter names never start with an underscore
        self._kernel = kernel
        for name in kernel.PARAMS:
            if hasattr(self, name):
                raise ValueError(f"the parameter {name!r} has the name of an attribute of "
                                 f"torch.nn.Module; rename it in the model to use it here")
            self.register_parameter(name, torch.nn.Parameter(
                torch.tensor(np.asarray(params[name]), dtype=dtype)))

    def extra_repr(self) -> str:
        backend = getattr(self._kernel, "backend", "numpy")
        name = self._kernel.CONTRACT["name"]
        return f"kernel={name!r}, backend={backend!r}"

    def forward(self, inputs: Any, targets: Any, state: Mapping[str, Any] | None = None
                ) -> torch.Tensor:
        """The loss, differentiable with respect to the parameters (and the state)."""
        params = [getattr(self, name) for name in self._kernel.PARAMS]
        for name, param in zip(self._kernel.PARAMS, params, strict=True):
            _on_cpu(f"params[{name!r}]", param)
        state_names, state_tensors = self._state(state)
        call = _Call(self._kernel, tuple(self._kernel.PARAMS), state_names,
                     _arrays("inputs", inputs), _arrays("targets", targets))
        return KernelLoss.apply(call, *params, *state_tensors)

    @torch.no_grad()
    def predict(self, inputs: Any, state: Mapping[str, Any] | None = None
                ) -> torch.Tensor | dict[str, torch.Tensor]:
        """The kernel's ``predict`` (OUTPUTS) as tensors: one, or a dict by name."""
        params = {}
        for name in self._kernel.PARAMS:
            param = getattr(self, name)
            _on_cpu(f"params[{name!r}]", param)
            params[name] = param.detach().numpy()
        state_names, state_tensors = self._state(state)
        arrays = None if state is None else {
            n: t.detach().numpy() for n, t in zip(state_names, state_tensors, strict=True)}
        outputs = self._kernel.predict(params, _arrays("inputs", inputs), arrays)
        if isinstance(outputs, Mapping):
            return {name: torch.from_numpy(np.asarray(a)) for name, a in outputs.items()}
        return torch.from_numpy(np.asarray(outputs))

    def _state(self, state: Mapping[str, Any] | None) -> tuple[tuple[str, ...],
                                                               list[torch.Tensor]]:
        if state is None:
            return (), []
        names = tuple(self._kernel.STATE)
        keys = ", ".join(names) or "(none)"
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be None or a mapping with keys {keys}, "
                             f"got {type(state).__name__}")
        missing = [n for n in names if n not in state]
        unknown = [str(n) for n in state if n not in names]
        if missing or unknown:
            raise ValueError(f"state must hold exactly the keys {keys}; "
                             f"missing {', '.join(missing) or 'none'}, "
                             f"unknown {', '.join(unknown) or 'none'}")
        tensors = []
        for name in names:
            value = state[name]
            tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
            _on_cpu(f"state[{name!r}]", tensor)
            tensors.append(tensor)
        return names, tensors


@dataclass(frozen=True)
class _Call:
    """One kernel call: what goes into ``loss_and_grad`` besides the tensors."""

    kernel: Any
    params: tuple[str, ...]
    state: tuple[str, ...]
    inputs: Any
    targets: Any


class KernelLoss(torch.autograd.Function):
    """The kernel's loss; its backward returns the gradients the same kernel call made.

    ``apply(call, *params, *state)``: the tensors in PARAMS order, then STATE order.
    """

    @staticmethod
    def forward(ctx: Any, call: _Call, *tensors: torch.Tensor) -> torch.Tensor:
        arrays = [t.detach().numpy() for t in tensors]
        n = len(call.params)
        params = dict(zip(call.params, arrays[:n], strict=True))
        state = dict(zip(call.state, arrays[n:], strict=True)) if call.state else None
        loss, grads = call.kernel.loss_and_grad(params, call.inputs, call.targets, state)
        ctx.grads = [torch.from_numpy(grads[name]) for name in (*call.params, *call.state)]
        ctx.save_for_backward(*tensors)
        return torch.from_numpy(np.asarray(loss))

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grads = ctx.grads
        if torch.is_grad_enabled():
            # create_graph=True: gradients whose own backward raises, never a silent zero
            scaled = _FirstOrderOnly.apply(grad_loss, len(grads), *grads, *ctx.saved_tensors)
            scaled = scaled if isinstance(scaled, tuple) else (scaled,)
            return (None, *scaled)
        if grad_loss.numel() == 1 and float(grad_loss) == 1.0:
            return (None, *grads)
        return (None, *(grad_loss * g for g in grads))


class _FirstOrderOnly(torch.autograd.Function):
    """``grad_loss * g`` for each gradient ``g``, depending on the parameters so that a
    derivative of it is asked of this function, which refuses."""

    @staticmethod
    def forward(ctx: Any, grad_loss: torch.Tensor, count: int, *tensors: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        return tuple(grad_loss * g for g in tensors[:count])

    @staticmethod
    def backward(ctx: Any, *grad_outputs: torch.Tensor) -> Any:
        raise RuntimeError(SECOND_ORDER)


def _on_cpu(what: str, tensor: torch.Tensor) -> None:
    if tensor.device.type != "cpu":
        raise ValueError(f"chainrule kernels run on the CPU: {what} is on {tensor.device}; "
                         f"move the module and its inputs there (module.cpu(), "
                         f"tensor.cpu())")


def _arrays(kind: str, value: Any) -> Any:
    """Tensors as NumPy arrays (shared, not copied), in a dict by name or alone; anything
    else as it is, for the kernel to check."""
    if isinstance(value, Mapping):
        return {name: _array(f"{kind}[{name!r}]", v) for name, v in value.items()}
    return _array(kind, value)


def _array(what: str, value: Any) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    _on_cpu(what, value)
    if value.requires_grad:
        raise ValueError(f"{what} requires a gradient, which the kernel does not compute "
                         f"(it gives the parameters' and the initial state's); pass "
                         f"{what}.detach()")
    return value.numpy()
