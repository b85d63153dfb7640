"""The PyTorch oracles checked against each other and against plain NumPy forward passes.

``lstm_loss_and_grad`` writes Graves' equations out gate by gate; PyTorch's fused
``torch.nn.LSTM`` computes the no-peephole LSTM its own way. Their agreement
(float64, 1e-10) tests both, and the NumPy forwards below pin the equations the
oracles implement, so a kernel that matches an oracle matches DESIGN.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import torch_reference as ref
from tests.cases import relative_error

pytestmark = pytest.mark.skipif(ref.torch is None, reason=ref.SKIP_REASON)

# (T, B, I, H, K): the smallest sizes every axis allows, then random ones below
SMALLEST = (1, 1, 1, 1, 2)


def random_sizes(seed: int) -> tuple[int, int, int, int, int]:
    if seed == 0:
        return SMALLEST
    rng = np.random.default_rng(seed)
    T, B, I, H = (int(n) for n in rng.integers(1, 6, size=4))
    return T, B, I, H, int(rng.integers(2, 6))


def shapes(names: list[str], I: int, H: int, K: int) -> dict[str, tuple[int, ...]]:
    def shape(name: str) -> tuple[int, ...]:
        if name == "W_hy":
            return (H, K)
        if name == "b_y":
            return (K,)
        if name.startswith("W_x"):
            return (I, H)
        if name.startswith("W_h"):
            return (H, H)
        return (H,)

    return {n: shape(n) for n in names}


def problem(names: list[str], sizes: tuple[int, int, int, int, int], seed: int,
            state_names: tuple[str, ...] = (), dtype: type = np.float64
            ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, np.ndarray] | None]:
    T, B, I, H, K = sizes
    rng = np.random.default_rng(1000 + seed)
    params = {n: (0.7 * rng.normal(size=s)).astype(dtype)
              for n, s in shapes(names, I, H, K).items()}
    x = rng.normal(size=(T, B, I)).astype(dtype)
    labels = rng.integers(0, K, size=(T, B))
    state = {n: rng.normal(size=(B, H)).astype(dtype) for n in state_names} or None
    return params, x, labels, state


# --- plain NumPy forwards -------------------------------------------------------------------

def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def summed_cross_entropy(a_y: np.ndarray, labels: np.ndarray) -> float:
    """Σ_b -ln softmax(a_y)[label] for one step, (B, K) logits."""
    total = 0.0
    for logits, label in zip(a_y, labels, strict=True):
        y = np.exp(logits - logits.max())
        y /= y.sum()
        total -= np.log(y[label])
    return total


NUMPY_ACTIVATIONS = {"tanh": np.tanh, "logistic": sigmoid, "relu": lambda a: np.maximum(a, 0.0)}


def numpy_rnn_loss(p: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray,
                   h0: np.ndarray | None, activation: str) -> float:
    theta = NUMPY_ACTIVATIONS[activation]
    h = np.zeros((x.shape[1], p["W_hh"].shape[0])) if h0 is None else h0
    loss = 0.0
    for t in range(x.shape[0]):
        h = theta(x[t] @ p["W_xh"] + h @ p["W_hh"] + p["b_h"])
        loss += summed_cross_entropy(h @ p["W_hy"] + p["b_y"], labels[t])
    return loss


def numpy_lstm_loss(p: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray,
                    state: dict[str, np.ndarray] | None) -> float:
    """Graves' LSTM with peepholes, one unit of one example at a time (no matrix products)."""
    T, B, I = x.shape
    H = p["W_hi"].shape[0]
    loss = 0.0
    for b in range(B):
        h = np.zeros(H) if state is None else state["h0"][b].copy()
        s = np.zeros(H) if state is None else state["s0"][b].copy()
        for t in range(T):
            h_new, s_new = np.empty(H), np.empty(H)
            for c in range(H):
                net = {g: sum(x[t, b, i] * p[f"W_x{g}"][i, c] for i in range(I))
                       + sum(h[j] * p[f"W_h{g}"][j, c] for j in range(H)) + p[f"b_{g}"][c]
                       for g in "ifco"}
                g_i = sigmoid(net["i"] + p["p_i"][c] * s[c])
                g_f = sigmoid(net["f"] + p["p_f"][c] * s[c])
                s_new[c] = g_f * s[c] + g_i * np.tanh(net["c"])
                g_o = sigmoid(net["o"] + p["p_o"][c] * s_new[c])
                h_new[c] = g_o * np.tanh(s_new[c])
            h, s = h_new, s_new
            loss += summed_cross_entropy((h @ p["W_hy"] + p["b_y"])[None], labels[t, b:b + 1])
    return loss


# --- the tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_lstm_equations_match_torch_nn_lstm(seed: int, with_state: bool) -> None:
    sizes = random_sizes(seed)
    params, x, labels, state = problem(ref.lstm_params(peepholes=False), sizes, seed,
                                       ("h0", "s0") if with_state else ())
    loss, grads = ref.lstm_loss_and_grad(params, x, labels, state, peepholes=False)
    nn_loss, nn_grads = ref.lstm_nn_loss_and_grad(params, x, labels, state)
    expected = set(params) | ({"h0", "s0"} if with_state else set())
    assert set(grads) == set(nn_grads) == expected
    assert relative_error(loss, nn_loss) < 1e-10
    for name in expected:
        assert grads[name].shape == nn_grads[name].shape, name
        assert relative_error(grads[name], nn_grads[name]) < 1e-10, name


@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_matches_numpy_forward(with_state: bool) -> None:
    params, x, labels, state = problem(ref.lstm_params(), (3, 2, 3, 2, 3), 7,
                                       ("h0", "s0") if with_state else ())
    loss, _ = ref.lstm_loss_and_grad(params, x, labels, state)
    assert relative_error(loss, numpy_lstm_loss(params, x, labels, state)) < 1e-12


@pytest.mark.parametrize("peephole", ["p_i", "p_f", "p_o"])
def test_every_peephole_is_used(peephole: str) -> None:
    params, x, labels, state = problem(ref.lstm_params(), (4, 3, 2, 3, 3), 3, ("h0", "s0"))
    plain = {n: a for n, a in params.items() if not n.startswith("p_")}
    base_loss, _ = ref.lstm_loss_and_grad(plain, x, labels, state, peepholes=False)
    only = {n: (a if n == peephole or not n.startswith("p_") else np.zeros_like(a))
            for n, a in params.items()}
    loss, grads = ref.lstm_loss_and_grad(only, x, labels, state)
    assert relative_error(loss, base_loss) > 1e-6
    zero = {n: (np.zeros_like(a) if n.startswith("p_") else a) for n, a in params.items()}
    zero_loss, zero_grads = ref.lstm_loss_and_grad(zero, x, labels, state)
    assert relative_error(zero_loss, base_loss) < 1e-14
    for name in ("p_i", "p_f", "p_o"):
        assert np.abs(grads[name]).max() > 0 and np.abs(zero_grads[name]).max() > 0, name


@pytest.mark.parametrize("activation", ["tanh", "logistic", "relu"])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_rnn_matches_numpy_forward(seed: int, with_state: bool, activation: str) -> None:
    params, x, labels, state = problem(ref.RNN_PARAMS, random_sizes(seed), seed,
                                       ("h0",) if with_state else ())
    loss, grads = ref.rnn_loss_and_grad(params, x, labels, state, activation)
    h0 = None if state is None else state["h0"]
    assert relative_error(loss, numpy_rnn_loss(params, x, labels, h0, activation)) < 1e-12
    assert set(grads) == set(params) | ({"h0"} if with_state else set())
    for name, grad in grads.items():
        assert grad.shape == (params | (state or {}))[name].shape, name


def test_float32_stays_float32() -> None:
    for names, oracle, state_names in (
            (ref.RNN_PARAMS, ref.rnn_loss_and_grad, ("h0",)),
            (ref.lstm_params(), ref.lstm_loss_and_grad, ("h0", "s0")),
            (ref.lstm_params(peepholes=False), ref.lstm_nn_loss_and_grad, ("h0", "s0"))):
        params, x, labels, state = problem(names, (2, 3, 2, 3, 2), 0, state_names, np.float32)
        loss, grads = oracle(params, x, labels.astype(np.int32), state)
        assert np.isfinite(loss)
        assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}, oracle.__name__


def test_wrong_parameter_names_are_refused() -> None:
    params, x, labels, _ = problem(ref.lstm_params(), (1, 1, 1, 1, 2), 0)
    with pytest.raises(ValueError, match="p_i"):
        ref.lstm_loss_and_grad(params, x, labels, peepholes=False)
    with pytest.raises(ValueError, match="s0"):
        ref.lstm_loss_and_grad(params, x, labels, {"h0": np.zeros((1, 1))})
