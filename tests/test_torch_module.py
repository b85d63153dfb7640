"""``kernel.torch(...)``: a generated kernel as a torch.nn.Module (frameworks/torch_module.py).

Its gradients are the kernel's own (equal to ``loss_and_grad``'s, bit for bit), pass
``torch.autograd.gradcheck`` in float64, train with ``torch.optim`` exactly as SGD by
hand does; what the kernel cannot give (a second derivative, an input's gradient, a
tensor off the CPU) is refused with a message that says so. Both backends, both dtypes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule import codegen, load_spec
from tests import torch_reference
from tests.cases import random_inputs

torch = torch_reference.torch
pytestmark = pytest.mark.skipif(torch is None, reason=torch_reference.SKIP_REASON)

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "generated"
HAS_CC = (shutil.which("cc") or shutil.which("gcc")) is not None
BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(
    not HAS_CC, reason="no C compiler (cc) on this machine"))]
SIZES = {"I": 3, "H": 4, "K": 3, "H1": 4, "H2": 3}
_KERNELS: dict[tuple[str, str], Any] = {}


def kernel(net: str, backend: str) -> Any:
    if (net, backend) not in _KERNELS:
        _KERNELS[net, backend] = codegen.load(GENERATED / net, backend=backend)
    return _KERNELS[net, backend]


def tensors(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: torch.from_numpy(a) for name, a in value.items()}
    return None if value is None else torch.from_numpy(value)


def case(k: Any, dtype: Any, seed: int = 0) -> tuple[Any, Any, Any, Any, Any]:
    """(module, inputs, targets, state as tensors requiring grad or None, the arrays)."""
    params, inputs, targets, state = random_inputs(k, seed, T=4, B=3, I=3, H=4, K=3,
                                                   dtype=dtype)
    module = k.torch(params=params, dtype=torch.float64 if dtype == np.float64 else None)
    state_t = None if state is None else {
        n: torch.from_numpy(a).requires_grad_() for n, a in state.items()}
    return module, tensors(inputs), tensors(targets), state_t, (params, inputs, targets, state)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("net", ["mlp", "rnn", "lstm", "lstm_no_peepholes"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_are_the_kernels(net: str, backend: str, dtype: Any) -> None:
    k = kernel(net, backend)
    module, inputs, targets, state, (params, x, z, s) = case(k, dtype)
    loss = module(inputs, targets, state)
    loss.backward()
    ref_loss, grads = k.loss_and_grad(params, x, z, s)
    assert loss.dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    assert loss.item() == ref_loss
    assert [name for name, _ in module.named_parameters()] == list(k.PARAMS)
    for name, param in module.named_parameters():
        assert param.grad.dtype == loss.dtype
        np.testing.assert_array_equal(param.grad.numpy(), grads[name], err_msg=name)
    for name, tensor in (state or {}).items():
        np.testing.assert_array_equal(tensor.grad.numpy(), grads[name], err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("net", ["mlp", "lstm"])
def test_gradcheck_in_float64(net: str, backend: str) -> None:
    k = kernel(net, backend)
    module, inputs, targets, state, _ = case(k, np.float64, seed=1)
    names = list(k.PARAMS)
    state_names = list(state or {})

    def loss(*tensors: Any) -> Any:
        params = dict(zip(names, tensors[:len(names)], strict=True))
        given = dict(zip(state_names, tensors[len(names):], strict=True)) or None
        return torch.func.functional_call(module, params, (inputs, targets, given))

    leaves = [p.detach().clone().requires_grad_() for p in module.parameters()]
    leaves += [t.detach().clone().requires_grad_() for t in (state or {}).values()]
    assert torch.autograd.gradcheck(loss, tuple(leaves), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_optimiser_step_is_sgd_by_hand(backend: str) -> None:
    k = kernel("rnn", backend)
    module, inputs, targets, _, (params, x, z, _) = case(k, np.float64, seed=2)
    optimiser = torch.optim.SGD(module.parameters(), lr=0.1)
    optimiser.zero_grad()
    module(inputs, targets).backward()
    optimiser.step()
    _, grads = k.loss_and_grad(params, x, z)
    for name, param in module.named_parameters():
        # to rounding: torch adds -lr * g in one fused step
        np.testing.assert_allclose(param.detach().numpy(), params[name] - 0.1 * grads[name],
                                   rtol=1e-15, atol=1e-16, err_msg=name)


def test_scaled_losses_and_a_sum_of_two_calls_add_up() -> None:
    k = kernel("rnn", "numpy")
    module, inputs, targets, _, (params, x, z, _) = case(k, np.float64, seed=3)
    (0.5 * module(inputs, targets) + module(inputs[:, :1], targets[:, :1])).backward()
    _, whole = k.loss_and_grad(params, x, z)
    _, first = k.loss_and_grad(params, x[:, :1], z[:, :1])
    for name, param in module.named_parameters():
        np.testing.assert_allclose(param.grad.numpy(), 0.5 * whole[name] + first[name],
                                   rtol=1e-12, atol=1e-14)


def test_inputs_and_targets_by_name(kernel_for: Any) -> None:
    """A spec with two inputs (dict of tensors) and one with real-valued targets."""
    for spec in ("mlp_two_inputs.toml", "rnn_regression.toml"):
        k = kernel_for(load_spec(ROOT / "examples" / spec))
        module, inputs, targets, _, (params, x, z, _) = case(k, np.float64, seed=4)
        loss = module(inputs, targets)
        loss.backward()
        ref_loss, grads = k.loss_and_grad(params, x, z)
        assert loss.item() == ref_loss
        for name, param in module.named_parameters():
            np.testing.assert_array_equal(param.grad.numpy(), grads[name], err_msg=name)


def test_init_params_predict_and_float64() -> None:
    k = kernel("lstm_no_peepholes", "numpy")
    sizes = {"I": 3, "H": 4, "K": 3}
    module = k.torch(sizes, rng=0, dtype=torch.float64)
    drawn = k.init_params(sizes, rng=0)
    for name, param in module.named_parameters():
        assert param.dtype == torch.float64
        np.testing.assert_array_equal(param.detach().numpy(), drawn[name])
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    y = module.predict(x)
    np.testing.assert_array_equal(y.numpy(), k.predict(drawn, x.numpy()))
    assert k.torch(sizes, rng=0).W_xi.dtype == torch.float32


def test_double_backward_raises() -> None:
    module, inputs, targets, _, _ = case(kernel("rnn", "numpy"), np.float64)
    grads = torch.autograd.grad(module(inputs, targets), list(module.parameters()),
                                create_graph=True)
    with pytest.raises(RuntimeError, match="differentiable once"):
        sum(g.sum() for g in grads).backward()
    with pytest.raises(RuntimeError, match="differentiable once"):
        torch.autograd.gradgradcheck(lambda w: torch.func.functional_call(
            module, {"W_hh": w}, (inputs, targets)), (module.W_hh.detach().requires_grad_(),))


def test_refused_inputs() -> None:
    k = kernel("rnn", "numpy")
    module, inputs, targets, _, _ = case(k, np.float64)
    with pytest.raises(ValueError, match=r"inputs is on meta.*CPU|CPU.*inputs is on meta"):
        module(torch.empty(inputs.shape, dtype=torch.float64, device="meta"), targets)
    with pytest.raises(ValueError, match=r"params\['W_xh'\] is on meta"):
        module.to("meta")(inputs, targets)
    module, inputs, targets, _, _ = case(k, np.float64)
    with pytest.raises(ValueError, match="inputs requires a gradient"):
        module(inputs.requires_grad_(), targets)
    with pytest.raises(ValueError, match="float"):  # the kernel's own dtype check
        module(inputs.detach().float(), targets)
    with pytest.raises(ValueError, match="state must hold exactly the keys h0"):
        module(inputs.detach(), targets, {"s0": torch.zeros(3, 4)})
    with pytest.raises(ValueError, match=r"dtype must be torch\.float32 or torch\.float64"):
        k.torch(SIZES, dtype=torch.float16)
    with pytest.raises(ValueError, match="give sizes"):
        k.torch()
    with pytest.raises(ValueError, match=r"params\['W_xh'\] must have shape"):
        k.torch({"I": 3, "H": 5, "K": 3}, params=k.init_params({"I": 3, "H": 4, "K": 3}))
