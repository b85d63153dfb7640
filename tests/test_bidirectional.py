"""Bidirectional networks and wider time shifts (issue 15): a layer reading t+1 runs
backward in time; a layer may read t-2.

``examples/brnn.toml`` (Graves 3.2.4) and ``examples/blstm.toml`` (no peepholes), the
built-in networks ``brnn`` and ``blstm`` written as specs (the built-ins derive the same), are
generated for both kernel backends and checked against PyTorch's own bidirectional
modules, ``nn.RNN(bidirectional=True)`` and ``nn.LSTM(bidirectional=True)`` with a
linear layer on their concatenated outputs, in float64 within 1e-9 and float32 within
1e-4, with and without initial states, at T = 1, T = 2 and longer; and against
central finite differences. The derivation's boundaries are checked as data:
δ^{T+1} = 0 for the forward layer, δ^{0} = 0 for the reverse one, and the reverse
layer's initial state at t = T+1. ``examples/rnn_skip.toml`` reads t-1 and t-2 (the
step t = -1 is zero) and is checked against PyTorch autograd of the same equations at
T = 1 and T = 2, where t-2 reads only the initial values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule.codegen.app.check import check_model
from chainrule.symbolic import ModelError, derive
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import load_spec, loads_spec
from tests import torch_reference
from tests.test_losses_targets import assert_close, draw, gradients, leaves, write_kernels

torch = torch_reference.torch
functional_call = torch.func.functional_call if torch is not None else None
needs_torch = pytest.mark.skipif(torch is None, reason=torch_reference.SKIP_REASON)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPECS = ["brnn", "blstm", "rnn_skip"]
BACKENDS = ["numpy", "c"]
#: (T, B, I, H, K)
SIZES = [(1, 1, 1, 1, 2), (2, 2, 2, 1, 2), (5, 3, 2, 3, 3)]


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    from chainrule import codegen

    loaded = {}
    for name in SPECS:
        folder = write_kernels(load_spec(EXAMPLES / f"{name}.toml"),
                               tmp_path_factory.mktemp(name) / name)
        loaded[name] = {backend: codegen.load(folder, backend=backend) for backend in BACKENDS}
    return loaded


def torch_brnn(params, inputs, targets, state):
    p = leaves(params)
    s = leaves(state) if state else {}
    x = torch.tensor(inputs["x"])
    I, H = p["W_xf"].shape
    rnn = torch.nn.RNN(I, H, bidirectional=True, dtype=x.dtype)
    zeros = torch.zeros(H, dtype=x.dtype)
    weights = {"weight_ih_l0": p["W_xf"].T, "weight_hh_l0": p["W_ff"].T,
               "bias_ih_l0": p["b_f"], "bias_hh_l0": zeros,
               "weight_ih_l0_reverse": p["W_xg"].T, "weight_hh_l0_reverse": p["W_gg"].T,
               "bias_ih_l0_reverse": p["b_g"], "bias_hh_l0_reverse": zeros}
    h0 = torch.stack([s["f0"], s["g0"]]) if s else None
    out, _ = functional_call(rnn, weights, (x, h0))
    logits = out @ torch.cat([p["W_fy"], p["W_gy"]]) + p["b_y"]
    labels = torch.as_tensor(targets["z"], dtype=torch.int64)
    loss = torch.nn.CrossEntropyLoss(reduction="sum")(logits.reshape(-1, logits.shape[-1]),
                                                      labels.reshape(-1))
    return gradients(loss, {**p, **s})


def torch_blstm(params, inputs, targets, state):
    p = leaves(params)
    s = leaves(state) if state else {}
    x = torch.tensor(inputs["x"])
    I, H = p["W_xi"].shape
    lstm = torch.nn.LSTM(I, H, bidirectional=True, dtype=x.dtype)
    zeros = torch.zeros(4 * H, dtype=x.dtype)
    weights = {}
    for suffix, torch_suffix in (("", ""), ("_r", "_reverse")):
        weights[f"weight_ih_l0{torch_suffix}"] = torch.cat([p[f"W_x{g}{suffix}"].T
                                                            for g in "ifco"])
        weights[f"weight_hh_l0{torch_suffix}"] = torch.cat([p[f"W_h{g}{suffix}"].T
                                                            for g in "ifco"])
        weights[f"bias_ih_l0{torch_suffix}"] = torch.cat([p[f"b_{g}{suffix}"] for g in "ifco"])
        weights[f"bias_hh_l0{torch_suffix}"] = zeros
    initial = ((torch.stack([s["h0"], s["h0_r"]]), torch.stack([s["s0"], s["s0_r"]]))
               if s else None)
    out, _ = functional_call(lstm, weights, (x, initial))
    logits = out @ torch.cat([p["W_hy"], p["W_hy_r"]]) + p["b_y"]
    labels = torch.as_tensor(targets["z"], dtype=torch.int64)
    loss = torch.nn.CrossEntropyLoss(reduction="sum")(logits.reshape(-1, logits.shape[-1]),
                                                      labels.reshape(-1))
    return gradients(loss, {**p, **s})


def torch_rnn_skip(params, inputs, targets, state):
    """h^t = tanh(W_xh x^t + W_hh h^{t-1} + W_hh2 h^{t-2} + b_h), h^0 = h0, h^{-1} = 0."""
    p = leaves(params)
    s = leaves(state) if state else {}
    x = torch.tensor(inputs["x"])
    B, H = x.shape[1], p["W_hh"].shape[0]
    previous = [torch.zeros(B, H, dtype=x.dtype), s["h0"] if s else
                torch.zeros(B, H, dtype=x.dtype)]
    labels = torch.as_tensor(targets["z"], dtype=torch.int64)
    loss = 0
    for t in range(x.shape[0]):
        h = torch.tanh(x[t] @ p["W_xh"] + previous[-1] @ p["W_hh"] + previous[-2] @ p["W_hh2"]
                       + p["b_h"])
        previous.append(h)
        logits = h @ p["W_hy"] + p["b_y"]
        loss = loss + torch.nn.CrossEntropyLoss(reduction="sum")(logits, labels[t])
    return gradients(loss, {**p, **s})


ORACLES = {"brnn": torch_brnn, "blstm": torch_blstm, "rnn_skip": torch_rnn_skip}


@needs_torch
@pytest.mark.parametrize("with_state", [True, False], ids=["state", "zeros"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "T{}-B{}-I{}-H{}-K{}".format(*s))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SPECS)
def test_against_pytorch_bidirectional_modules(kernels, name: str, backend: str, sizes: tuple,
                                               dtype: type, with_state: bool) -> None:
    kernel = kernels[name][backend]
    params, inputs, targets, state = draw(kernel, sizes, seed=sum(sizes), dtype=dtype)
    state = state if with_state else None
    expected = ORACLES[name](params, inputs, targets, state)
    got = kernel.loss_and_grad(params, inputs, targets, state)
    assert_close(got, expected, dtype)


@pytest.mark.parametrize("name", SPECS)
def test_finite_differences(name: str) -> None:
    report = check_model(load_spec(EXAMPLES / f"{name}.toml"), cases=2)
    assert report.ok, report.table()


@pytest.mark.parametrize("name", ["brnn", "blstm"])
def test_the_builtins_derive_as_the_example_specs(name: str) -> None:
    """``BUILTINS["brnn"]``, ``BUILTINS["blstm"]`` are these specs through the model API,
    notation included."""
    builtin, spec = BUILTINS[name](), load_spec(EXAMPLES / f"{name}.toml")
    assert list(builtin.quantities.values()) == list(spec.quantities.values())
    assert (builtin.title, builtin.description) == (spec.title, spec.description)
    ours, theirs = derive(builtin), derive(spec)
    assert ours.describe() == theirs.describe()
    assert {n: a.expr for n, a in ours.adjoints.items()} == {
        n: a.expr for n, a in theirs.adjoints.items()}


def test_two_steps_back_is_a_condition_on_the_sizes() -> None:
    """h0 feeds step 2 through W_hh2 only when there is a step 2: [2 ≤ T]."""
    derivation = derive(load_spec(EXAMPLES / "rnn_skip.toml"))
    assert "InRange(t, 0, T - 2)" in str(derivation.adjoints["h"].expr)  # δ^{T+2} = 0
    assert "InRange(0, 0, T - 2)" in str(derivation.adjoints["h0"].expr)


def test_the_boundaries_are_derived_as_data() -> None:
    derivation = derive(load_spec(EXAMPLES / "brnn.toml"))
    forward = str(derivation.adjoints["f"].expr)
    reverse = str(derivation.adjoints["g"].expr)
    assert "InRange(t, 0, T - 1)*Sum(W_ff[j, j']*d_a_f[j', t + 1]" in forward  # δ^{T+1} = 0
    assert "InRange(t, 2, T + 1)*Sum(W_gg[j, j']*d_a_g[j', t - 1]" in reverse  # δ^{0} = 0
    # the reverse layer's initial state is its value at T + 1
    assert str(derivation.adjoints["g0"].expr) == "Sum(W_gg[j, j']*d_a_g[j', T], (j', 0, H - 1))"


def test_the_forward_pass_runs_one_loop_up_and_one_down(kernels) -> None:
    source = Path(kernels["brnn"]["numpy"].__file__).read_text()
    forward = source[source.index("def _forward"):source.index("def loss_and_grad")]
    assert forward.count("for t in range(1, T + 1):") == 1
    assert forward.count("for t in range(T, 0, -1):") == 1
    assert "g[T] = g0" in forward  # the reverse state in the last row


SPEC = """
name = "both"
sizes = ["H"]
time = {{ index = "t", size = "T" }}
[indices]
j = "H"
[quantities]
x = {{ role = "input", shape = ["H"], time = true }}
z = {{ role = "target", shape = ["H"], time = true, one_hot = false }}
h = {{ role = "intermediate", shape = ["H"], time = true }}
h0 = {{ role = "state", of = "h" }}
[equations]
forward = ["h[j, t] = tanh(x[j, t] + {reads})"]
loss = "sum((h[j, t] - z[j, t])**2, j, t)"
"""


def test_a_quantity_read_at_both_neighbours_is_refused() -> None:
    with pytest.raises(ModelError, match=r"'h' is read at t-1 and at t\+1 \(steps t-1, "
                                         r"t\+1\): a quantity runs forward or backward in "
                                         r"time, not both"):
        derive(loads_spec(SPEC.format(reads="h[j, t - 1] + h[j, t + 1]")))


def test_a_read_at_t_plus_one_needs_a_state() -> None:
    text = SPEC.format(reads="h[j, t + 1]").replace('h0 = { role = "state", of = "h" }\n', "")
    with pytest.raises(ModelError, match=r"'h' is read at t\+1 but has no initial state "
                                         r"\(its value at t = T\+1\)"):
        derive(loads_spec(text))
