"""Every network's loss and gradients against PyTorch: autograd of the same equations, and
PyTorch's own nn.LSTM layer for the LSTM without peepholes (float64 to 1e-9, float32 to 1e-4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule import codegen
from chainrule.symbolic.networks import mlp, rnn
from tests import torch_reference
from tests.cases import case_id, random_inputs, relative_error

pytestmark = pytest.mark.skipif(torch_reference.torch is None, reason=torch_reference.SKIP_REASON)

GENERATED = Path(__file__).resolve().parents[1] / "generated"


@pytest.mark.parametrize("seed", range(6))
def test_mlp_matches_autograd(seed: int) -> None:
    kernel = codegen.load(GENERATED / "mlp")
    rng = np.random.default_rng(seed)
    sizes = {s: int(rng.integers(1, 9)) for s in kernel.SIZES}
    sizes["K"] = max(sizes["K"], 2)
    B = int(rng.integers(1, 9))
    params = kernel.init_params(sizes, rng=rng)
    x = rng.normal(size=(B, sizes["I"]))
    labels = rng.integers(0, sizes["K"], size=B)
    loss, grads = kernel.loss_and_grad(params, x, labels)
    ref_loss, ref_grads = torch_reference.mlp_loss_and_grad(params, x, labels, layers=2)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name in kernel.PARAMS:
        assert relative_error(grads[name], ref_grads[name]) < 1e-9, name


@pytest.mark.parametrize("activation", ["tanh", "logistic", "relu"])
@pytest.mark.parametrize("layers", [1, 3])
def test_mlp_variants_match_autograd(kernel_for, activation: str, layers: int) -> None:
    kernel = kernel_for(mlp.build(hidden_layers=layers, activation=activation,
                                  name=f"mlp_{activation}_{layers}"))
    rng = np.random.default_rng(layers)
    sizes = {s: int(rng.integers(2, 7)) for s in kernel.SIZES}
    params = kernel.init_params(sizes, rng=rng)
    x = rng.normal(size=(5, sizes["I"]))
    labels = rng.integers(0, sizes["K"], size=5)
    loss, grads = kernel.loss_and_grad(params, x, labels)
    ref_loss, ref_grads = torch_reference.mlp_loss_and_grad(params, x, labels, layers, activation)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name in kernel.PARAMS:
        assert relative_error(grads[name], ref_grads[name]) < 1e-9, name


# --- the recurrent networks: time-major inputs, with and without an initial state --------------

RECURRENT_REFERENCES = {
    "rnn": [torch_reference.rnn_loss_and_grad],
    "lstm": [torch_reference.lstm_loss_and_grad],
    "lstm_no_peepholes": [
        lambda p, x, labels, state: torch_reference.lstm_loss_and_grad(
            p, x, labels, state, peepholes=False),
        torch_reference.lstm_nn_loss_and_grad,  # PyTorch's own fused LSTM layer
    ],
}

# (seed, T, B, I, H, K): the edges T=1, B=1, one hidden unit, two classes, then random sizes
RECURRENT_CASES = [(0, 1, 1, 1, 1, 2), (1, 5, 1, 2, 1, 3), (2, 1, 4, 3, 5, 2)] + [
    (seed, *(int(n) for n in np.random.default_rng(seed).integers(1, 9, size=4)),
     int(np.random.default_rng(seed).integers(2, 9))) for seed in range(20, 24)]


def recurrent_inputs(kernel, seed, T, B, I, H, K, dtype, with_state):
    return random_inputs(kernel, seed, T, B, I, H, K, dtype=dtype, with_state=with_state)


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "no-state"])
@pytest.mark.parametrize("case", RECURRENT_CASES,
                         ids=case_id)
@pytest.mark.parametrize("net", list(RECURRENT_REFERENCES))
def test_recurrent_matches_autograd_float64(net: str, case, with_state: bool) -> None:
    kernel = codegen.load(GENERATED / net)
    params, x, labels, state = recurrent_inputs(kernel, *case, np.float64, with_state)
    loss, grads = kernel.loss_and_grad(params, x, labels, state)
    for reference in RECURRENT_REFERENCES[net]:
        ref_loss, ref_grads = reference(params, x, labels, state)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        assert set(grads) == set(ref_grads)
        for name in grads:
            assert relative_error(grads[name], ref_grads[name]) < 1e-9, name


@pytest.mark.parametrize("net", list(RECURRENT_REFERENCES))
def test_recurrent_matches_autograd_float32(net: str) -> None:
    kernel = codegen.load(GENERATED / net)
    params, x, labels, state = recurrent_inputs(kernel, 3, 6, 4, 5, 7, 3, np.float32, True)
    loss, grads = kernel.loss_and_grad(params, x, labels, state)
    for reference in RECURRENT_REFERENCES[net]:
        ref_loss, ref_grads = reference(params, x, labels, state)
        assert loss == pytest.approx(ref_loss, rel=1e-5)
        for name in grads:
            assert grads[name].dtype == np.float32
            assert relative_error(grads[name], ref_grads[name]) < 1e-4, name


def test_rnn_activations_match_autograd(kernel_for) -> None:
    for activation in ("logistic", "relu"):
        kernel = kernel_for(rnn.build(activation=activation, name=f"rnn_{activation}"))
        params, x, labels, state = recurrent_inputs(kernel, 4, 4, 3, 2, 5, 3, np.float64, True)
        loss, grads = kernel.loss_and_grad(params, x, labels, state)
        ref_loss, ref_grads = torch_reference.rnn_loss_and_grad(params, x, labels, state,
                                                                activation)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for name in grads:
            assert relative_error(grads[name], ref_grads[name]) < 1e-9, (activation, name)
