"""The RNN's and the LSTM's derivations through time, asserted on the symbolic results.

Graves 3.2 and ch. 4: the shifted terms come out of the contraction pass with
their range condition ``[t ≤ T-1]`` (``δ^{T+1} = 0``), derived, not written in.
"""

from __future__ import annotations

import pytest
import sympy
from sympy import Idx, IndexedBase, Sum

from chainrule.symbolic import InRange, derive
from chainrule.symbolic.networks import lstm, rnn


def q(model, name):
    return model.quantity(name).base


def d(name):
    return IndexedBase(f"d_{name}")


@pytest.fixture(scope="module")
def rnn_net():
    model = rnn.build()
    return model, derive(model)


@pytest.fixture(scope="module")
def lstm_net():
    model = lstm.build()
    return model, derive(model)


def test_rnn_hidden_delta(rnn_net) -> None:
    model, derivation = rnn_net
    j, k, t = model.indices["j"], model.indices["k"], model.time_index
    H, K, T = model.sizes["H"], model.sizes["K"], model.sizes["T"]
    j1 = Idx("j'", (0, H - 1))
    h = q(model, "h")
    expected = (1 - h[j, t] ** 2) * (
        Sum(d("a_y")[k, t] * q(model, "W_hy")[j, k], (k, 0, K - 1))
        + InRange(t, 1, T - 1) * Sum(d("a_h")[j1, t + 1] * q(model, "W_hh")[j, j1],
                                     (j1, 0, H - 1)))
    assert derivation.adjoint("a_h").expr == expected
    assert derivation.adjoint("a_y").expr == q(model, "y")[k, t] - q(model, "z")[k, t]


def test_rnn_gradients_sum_over_time(rnn_net) -> None:
    model, derivation = rnn_net
    i, j, t = model.indices["i"], model.indices["j"], model.time_index
    T, H = model.sizes["T"], model.sizes["H"]
    j1 = Idx("j'", (0, H - 1))
    assert derivation.adjoint("W_xh").expr == Sum(d("a_h")[j, t] * q(model, "x")[i, t], (t, 1, T))
    assert derivation.adjoint("W_hh").expr == Sum(
        d("a_h")[j1, t] * q(model, "h")[j, t - 1], (t, 1, T))
    # the initial state receives only what step 1 reads at t-1
    assert derivation.adjoint("h0").expr == Sum(
        q(model, "W_hh")[j, j1] * d("a_h")[j1, 1], (j1, 0, H - 1))


def test_rnn_boundary_is_a_recorded_kronecker_step(rnn_net) -> None:
    _, derivation = rnn_net
    steps = {s.rule: s for s in derivation.adjoint("h").steps}
    assert steps["Kronecker delta"].after.has(InRange)
    assert not steps["Kronecker delta"].before.has(InRange)


def lstm_symbols(model):
    c, k, t = model.indices["c"], model.indices["k"], model.time_index
    H, K, T = model.sizes["H"], model.sizes["K"], model.sizes["T"]
    return c, k, t, Idx("c'", (0, H - 1)), H, K, T


def test_lstm_cell_output_epsilon(lstm_net) -> None:
    model, derivation = lstm_net
    c, k, t, c1, H, K, T = lstm_symbols(model)
    expected = InRange(t, 1, T) * Sum(q(model, "W_hy")[c, k] * d("a_y")[k, t], (k, 0, K - 1))
    for gate in "ifco":
        expected += InRange(t, 0, T - 1) * Sum(q(model, f"W_h{gate}")[c, c1]
                                               * d(f"a_{gate}")[c1, t + 1], (c1, 0, H - 1))
    assert derivation.adjoint("h").expr == expected
    assert derivation.adjoint("h").time_range == (0, T)


def test_lstm_state_epsilon_has_graves_five_terms(lstm_net) -> None:
    model, derivation = lstm_net
    c, _, t, _, _, _, T = lstm_symbols(model)
    g_o, g_f, s = q(model, "g_o"), q(model, "g_f"), q(model, "s")
    expected = (InRange(t, 1, T) * g_o[c, t] * (1 - sympy.tanh(s[c, t]) ** 2) * d("h")[c, t]
                + InRange(t, 0, T - 1) * g_f[c, t + 1] * d("s")[c, t + 1]
                + InRange(t, 0, T - 1) * q(model, "p_i")[c] * d("a_i")[c, t + 1]
                + InRange(t, 0, T - 1) * q(model, "p_f")[c] * d("a_f")[c, t + 1]
                + InRange(t, 1, T) * q(model, "p_o")[c] * d("a_o")[c, t])
    assert derivation.adjoint("s").expr == expected


def test_lstm_gate_deltas(lstm_net) -> None:
    model, derivation = lstm_net
    c, _, t, _, _, _, _ = lstm_symbols(model)
    g_i, g_f, g_o, s, a_c = (q(model, n) for n in ("g_i", "g_f", "g_o", "s", "a_c"))
    eps_s, eps_c = d("s")[c, t], d("h")[c, t]
    expected = {
        "a_o": g_o[c, t] * (1 - g_o[c, t]) * sympy.tanh(s[c, t]) * eps_c,
        "a_c": g_i[c, t] * (1 - sympy.tanh(a_c[c, t]) ** 2) * eps_s,
        "a_f": g_f[c, t] * (1 - g_f[c, t]) * s[c, t - 1] * eps_s,
        "a_i": g_i[c, t] * (1 - g_i[c, t]) * sympy.tanh(a_c[c, t]) * eps_s,
    }
    for name, value in expected.items():
        assert derivation.adjoint(name).expr == value, name


def test_lstm_backward_order_and_states(lstm_net) -> None:
    model, derivation = lstm_net
    c, _, _, _, _, _, _ = lstm_symbols(model)
    assert derivation.backward_order == ["a_y", "h", "a_o", "s", "a_c", "a_f", "a_i"]
    assert derivation.adjoint("s0").expr == (d("a_f")[c, 1] * q(model, "p_f")[c]
                                             + d("a_i")[c, 1] * q(model, "p_i")[c]
                                             + d("s")[c, 1] * q(model, "g_f")[c, 1])
    assert set(derivation.gradients) >= {"h0", "s0", "p_i", "p_f", "p_o"}


def test_lstm_without_peepholes() -> None:
    model = lstm.build(peepholes=False)
    derivation = derive(model)
    assert not any(name.startswith("p_") for name in model.quantities)
    c, _, t, _, _, _, T = lstm_symbols(model)
    expected = (InRange(t, 1, T) * q(model, "g_o")[c, t]
                * (1 - sympy.tanh(q(model, "s")[c, t]) ** 2) * d("h")[c, t]
                + InRange(t, 0, T - 1) * q(model, "g_f")[c, t + 1] * d("s")[c, t + 1])
    assert derivation.adjoint("s").expr == expected
