"""Output layers, losses, targets, masks and inputs beyond softmax at every step (issue 14).

Each example spec in ``examples/`` (regression, multi-label, soft labels, a sequence
classifier, padded sequences, layer normalisation, two inputs) is generated for both
kernel backends and checked three ways: against PyTorch's own modules and losses
(``nn.RNN``, ``nn.LSTM``, ``nn.LayerNorm``, ``MSELoss``, ``BCEWithLogitsLoss``,
``CrossEntropyLoss`` with probabilities, ``pack_padded_sequence``) in float64 within
1e-9 and float32 within 1e-4, against central finite differences (``check_model``),
and NumPy against C. The sizes include the edges: T = 1, B = 1, one hidden unit, two
classes, every length 1 and a length equal to T.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy

from chainrule import codegen
from chainrule.codegen.app.check import check_model
from chainrule.codegen.plan.lower import lower
from chainrule.symbolic import Model, derive
from chainrule.symbolic.spec import load_spec
from tests import torch_reference
from tests.kernel_files import write_kernels

torch = torch_reference.torch
functional_call = torch.func.functional_call if torch is not None else None
needs_torch = pytest.mark.skipif(torch is None, reason=torch_reference.SKIP_REASON)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPECS = ["rnn_regression", "mlp_multilabel", "mlp_soft_labels", "lstm_classifier",
         "rnn_masked", "rnn_layernorm", "mlp_two_inputs"]
BACKENDS = ["numpy", "c"]
#: (T, B, I, H, K): the edges first
SIZES = [(1, 1, 1, 1, 2), (2, 1, 3, 1, 2), (4, 3, 2, 3, 3)]
TOLERANCE = {np.float64: 1e-9, np.float32: 1e-4}


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    loaded = {}
    for name in SPECS:
        folder = write_kernels(load_spec(EXAMPLES / f"{name}.toml"),
                               tmp_path_factory.mktemp(name) / name)
        loaded[name] = {backend: codegen.load(folder, backend=backend) for backend in BACKENDS}
    return loaded


def draw(kernel: Any, sizes: tuple[int, ...], seed: int, dtype: type = np.float64
         ) -> tuple[dict, dict, dict, dict]:
    """params, inputs, targets, state for ``sizes`` = (T, B, I, H, K), per the contract."""
    T, B, I, H, K = sizes
    shown = {"T": T, "B": B, "I": I, "H": H, "K": K}
    rng = np.random.default_rng(seed)

    def shape(axes: Any) -> tuple[int, ...]:
        return tuple(shown[a] for a in axes)

    params = {n: (a + rng.normal(scale=0.3, size=a.shape)).astype(dtype) for n, a in
              kernel.init_params({s: shown[s] for s in kernel.SIZES}, rng=rng).items()}
    inputs = {n: rng.normal(size=shape(axes)).astype(dtype) for n, axes in kernel.INPUTS.items()}
    targets = {n: rng.integers(0, K, size=shape(axes)) for n, axes in kernel.LABELS.items()}
    targets |= {n: rng.uniform(0, 1, size=shape(axes)).astype(dtype)
                for n, axes in kernel.TARGETS.items()}
    state = {n: rng.normal(size=shape(("B", *axes))).astype(dtype)
             for n, axes in kernel.STATE.items()}
    return params, inputs, targets, state


def assert_close(got: tuple, expected: tuple, dtype: type) -> None:
    """Loss and every gradient within the dtype's tolerance, normwise per array."""
    tolerance = TOLERANCE[dtype]
    loss, grads = got
    want_loss, want_grads = expected
    assert abs(float(loss) - float(want_loss)) <= tolerance * max(1.0, abs(float(want_loss)))
    assert set(grads) == set(want_grads)
    for name, want in want_grads.items():
        scale = max(float(np.abs(want).max()), 1.0)
        error = float(np.abs(grads[name] - want).max()) / scale
        assert error <= tolerance, (name, error)


# --- PyTorch: the same networks from its own modules ---------------------------------------


def leaves(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return {n: torch.tensor(a, requires_grad=True) for n, a in arrays.items()}


def gradients(loss: Any, tensors: dict[str, Any]) -> tuple[float, dict[str, np.ndarray]]:
    grads = torch.autograd.grad(loss, list(tensors.values()))
    return loss.item(), {n: g.numpy() for n, g in zip(tensors, grads, strict=True)}


def rnn_outputs(p: dict, x: Any, h0: Any, lengths: Any = None) -> Any:
    """nn.RNN (tanh) with our W_xh, W_hh, b_h: the hidden outputs (T, B, H)."""
    I, H = p["W_xh"].shape
    rnn = torch.nn.RNN(I, H, dtype=x.dtype)
    weights = {"weight_ih_l0": p["W_xh"].T, "weight_hh_l0": p["W_hh"].T,
               "bias_ih_l0": p["b_h"], "bias_hh_l0": torch.zeros_like(p["b_h"])}
    if lengths is None:
        return functional_call(rnn, weights, (x, h0.unsqueeze(0)))[0]
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, _ = functional_call(rnn, weights, (packed, h0.unsqueeze(0)))
    return torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])[0]


def torch_rnn_regression(params, inputs, targets, state):
    p, h0 = leaves(params), leaves(state)
    h = rnn_outputs(p, torch.tensor(inputs["x"]), h0["h0"])
    y = torch.nn.functional.linear(h, p["W_hy"].T, p["b_y"])
    loss = torch.nn.MSELoss(reduction="sum")(y, torch.tensor(targets["z"]))
    return gradients(loss, {**p, **h0})


def torch_mlp(p: dict, x: Any) -> Any:
    layers = torch.nn.Sequential(torch.nn.Linear(*p["W_xh"].shape, dtype=x.dtype),
                                 torch.nn.Tanh(),
                                 torch.nn.Linear(*p["W_hy"].shape, dtype=x.dtype))
    weights = {"0.weight": p["W_xh"].T, "0.bias": p["b_h"], "2.weight": p["W_hy"].T,
               "2.bias": p["b_y"]}
    return functional_call(layers, weights, (x,))


def torch_mlp_multilabel(params, inputs, targets, state):
    p = leaves(params)
    logits = torch_mlp(p, torch.tensor(inputs["x"]))
    loss = torch.nn.BCEWithLogitsLoss(reduction="sum")(logits, torch.tensor(targets["z"]))
    return gradients(loss, p)


def torch_mlp_soft_labels(params, inputs, targets, state):
    p = leaves(params)
    logits = torch_mlp(p, torch.tensor(inputs["x"]))
    loss = torch.nn.CrossEntropyLoss(reduction="sum")(logits, torch.tensor(targets["z"]))
    return gradients(loss, p)


def torch_mlp_two_inputs(params, inputs, targets, state):
    p = leaves(params)
    x, u = torch.tensor(inputs["x"]), torch.tensor(inputs["u"])
    h = torch.tanh(u * (x @ p["W_xh"]) + p["b_h"])
    logits = h @ p["W_hy"] + p["b_y"]
    labels = torch.as_tensor(targets["z"], dtype=torch.int64)
    loss = torch.nn.CrossEntropyLoss(reduction="sum")(logits, labels)
    return gradients(loss, p)


def torch_lstm_classifier(params, inputs, targets, state):
    """nn.LSTM (gates i, f, g, o, no peepholes), a linear layer on its last output."""
    p, s = leaves(params), leaves(state)
    x = torch.tensor(inputs["x"])
    I, H = p["W_xi"].shape
    lstm = torch.nn.LSTM(I, H, dtype=x.dtype)
    weights = {"weight_ih_l0": torch.cat([p[f"W_x{g}"].T for g in "ifco"]),
               "weight_hh_l0": torch.cat([p[f"W_h{g}"].T for g in "ifco"]),
               "bias_ih_l0": torch.cat([p[f"b_{g}"] for g in "ifco"]),
               "bias_hh_l0": torch.zeros(4 * H, dtype=x.dtype)}
    out, _ = functional_call(lstm, weights, (x, (s["h0"].unsqueeze(0), s["s0"].unsqueeze(0))))
    logits = torch.nn.functional.linear(out[-1], p["W_hy"].T, p["b_y"])
    labels = torch.as_tensor(targets["z"], dtype=torch.int64)
    loss = torch.nn.CrossEntropyLoss(reduction="sum")(logits, labels)
    return gradients(loss, {**p, **s})


def torch_rnn_masked(params, inputs, targets, state, lengths):
    """pack_padded_sequence through nn.RNN: the padding is never read."""
    p, h0 = leaves(params), leaves(state)
    h = rnn_outputs(p, torch.tensor(inputs["x"]), h0["h0"], lengths=lengths)
    logits = torch.nn.functional.linear(h, p["W_hy"].T, p["b_y"])
    labels = torch.as_tensor(targets["z"], dtype=torch.int64)
    valid = torch.arange(h.shape[0]).unsqueeze(1) < torch.as_tensor(lengths).unsqueeze(0)
    loss = torch.nn.CrossEntropyLoss(reduction="sum")(logits[valid], labels[valid])
    return gradients(loss, {**p, **h0})


def torch_rnn_layernorm(params, inputs, targets, state):
    p, h0 = leaves(params), leaves(state)
    x = torch.tensor(inputs["x"])
    H = p["W_hh"].shape[0]
    norm = torch.nn.LayerNorm(H, eps=1e-5, dtype=x.dtype)
    weights = {"weight": p["g_h"], "bias": p["b_h"]}
    h, loss = h0["h0"], 0
    labels = torch.as_tensor(targets["z"], dtype=torch.int64)
    for t in range(x.shape[0]):
        h = torch.tanh(functional_call(norm, weights, (x[t] @ p["W_xh"] + h @ p["W_hh"],)))
        logits = h @ p["W_hy"] + p["b_y"]
        loss = loss + torch.nn.CrossEntropyLoss(reduction="sum")(logits, labels[t])
    return gradients(loss, {**p, **h0})


ORACLES = {
    "rnn_regression": torch_rnn_regression,
    "mlp_multilabel": torch_mlp_multilabel,
    "mlp_soft_labels": torch_mlp_soft_labels,
    "lstm_classifier": torch_lstm_classifier,
    "rnn_layernorm": torch_rnn_layernorm,
    "mlp_two_inputs": torch_mlp_two_inputs,
}


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "T{}-B{}-I{}-H{}-K{}".format(*s))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(ORACLES))
def test_against_pytorch(kernels, name: str, backend: str, sizes: tuple, dtype: type) -> None:
    kernel = kernels[name][backend]
    params, inputs, targets, state = draw(kernel, sizes, seed=sum(sizes), dtype=dtype)
    expected = ORACLES[name](params, inputs, targets, state)
    got = kernel.loss_and_grad(params, inputs, targets, state or None)
    assert_close(got, expected, dtype)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("lengths", ["mixed", "all-one", "all-T"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_padded_batch_against_pack_padded_sequence(kernels, backend: str, lengths: str,
                                                   dtype: type) -> None:
    kernel = kernels["rnn_masked"][backend]
    T, B = 5, 4
    params, inputs, targets, state = draw(kernel, (T, B, 3, 2, 3), seed=7, dtype=dtype)
    steps = {"mixed": np.array([T, 1, 3, 2]), "all-one": np.ones(B, int),
             "all-T": np.full(B, T)}[lengths]
    inputs["m"] = (np.arange(T)[:, None] < steps[None, :]).astype(dtype)
    inputs["x"] = inputs["x"] * inputs["m"][..., None]  # the padding, as a data loader pads
    expected = torch_rnn_masked(params, inputs, targets, state, steps)
    assert_close(kernel.loss_and_grad(params, inputs, targets, state), expected, dtype)
    # what lies in the padding changes nothing
    shifted = dict(inputs, x=inputs["x"] + 5 * (1 - inputs["m"][..., None]))
    changed = dict(targets, z=np.where(inputs["m"] > 0, targets["z"], 0))
    assert_close(kernel.loss_and_grad(params, shifted, changed, state), expected, dtype)


# --- finite differences, NumPy against C -----------------------------------------------------


@pytest.mark.parametrize("name", SPECS)
def test_finite_differences_on_both_backends(name: str) -> None:
    report = check_model(load_spec(EXAMPLES / f"{name}.toml"), cases=2)
    assert report.ok, report.table()
    assert set(report.errors) == set(BACKENDS) or "c" in report.skipped


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "T{}-B{}-I{}-H{}-K{}".format(*s))
@pytest.mark.parametrize("name", SPECS)
def test_numpy_and_c_agree(kernels, name: str, sizes: tuple) -> None:
    numpy_kernel, c_kernel = kernels[name]["numpy"], kernels[name]["c"]
    params, inputs, targets, state = draw(numpy_kernel, sizes, seed=3)
    assert_close(c_kernel.loss_and_grad(params, inputs, targets, state or None),
                 numpy_kernel.loss_and_grad(params, inputs, targets, state or None), np.float64)
    predicted = [k.predict(params, inputs, state or None) for k in (numpy_kernel, c_kernel)]
    np.testing.assert_allclose(predicted[1], predicted[0], rtol=1e-12, atol=1e-14)


# --- the derivation's results ------------------------------------------------------------------


def adjoint_of(name: str, quantity: str) -> sympy.Expr:
    derivation = derive(load_spec(EXAMPLES / f"{name}.toml"))
    return derivation.adjoints[quantity].expr


def test_binary_cross_entropy_gives_y_minus_z() -> None:
    """σ'(a) = y(1 - y) cancels against -z/y + (1 - z)/(1 - y), a recorded step."""
    derivation = derive(load_spec(EXAMPLES / "mlp_multilabel.toml"))
    adjoint = derivation.adjoints["a_y"]
    assert str(adjoint.expr) == "y[k] - z[k]"
    assert "factors_cancel" in [step.rule_key for step in adjoint.steps]


def test_sum_of_squares_gives_twice_y_minus_z() -> None:
    assert str(adjoint_of("rnn_regression", "y")) == "2*y[k, t] - 2*z[k, t]"


def test_soft_labels_keep_the_sum_of_the_targets() -> None:
    """Σz = 1 is an identity of one-hot targets only; for any z the result holds as is."""
    assert str(adjoint_of("mlp_soft_labels", "a_y")) == "y[k]*Sum(z[k'], (k', 0, K - 1)) - z[k]"


def test_the_last_step_is_a_boundary_condition() -> None:
    """A read at T gives [t = T] on the output's term of ∂L/∂h, as data."""
    text = str(adjoint_of("lstm_classifier", "h"))
    assert "InRange(t, T, T)*Sum(W_hy[c, k]*d_a_y[k], (k, 0, K - 1))" in text


def test_log_of_a_logistic_output_is_a_softplus_in_the_kernels(kernels) -> None:
    """Logits of ±1000: σ rounds to 0 and 1, ln σ would be -inf; softplus keeps it finite."""
    for backend in BACKENDS:
        kernel = kernels["mlp_multilabel"][backend]
        params, inputs, targets, _ = draw(kernel, (1, 2, 2, 2, 3), seed=1)
        params["b_y"] = np.array([1000.0, -1000.0, 0.0])
        targets["z"] = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]])
        loss, grads = kernel.loss_and_grad(params, inputs, targets)
        assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
        # two outputs saturated the wrong way cost 1000 each, the right way nothing
        assert loss == pytest.approx(2000, rel=1e-2)
        np.testing.assert_allclose(grads["b_y"][:2], [1.0, -1.0], atol=1e-12)  # Σ_b (y - z)


# --- the contract ------------------------------------------------------------------------------


def test_the_contract_names_every_input_and_target() -> None:
    contract = lower(derive(load_spec(EXAMPLES / "rnn_masked.toml")))
    assert contract.inputs == ("x", "m") and contract.labels == ("z",)
    module = codegen.load(write_kernels(load_spec(EXAMPLES / "mlp_multilabel.toml"),
                                        Path(__import__("tempfile").mkdtemp()) / "ml"))
    assert module.INPUTS == {"x": ("B", "I")}
    assert module.LABELS == {} and module.TARGETS == {"z": ("B", "K")}
    assert module.OUTPUTS == {"y": ("B", "K")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs_and_targets_are_named(kernels, backend: str) -> None:
    kernel = kernels["rnn_masked"][backend]
    params, inputs, targets, _ = draw(kernel, (3, 2, 2, 2, 2), seed=0)
    with pytest.raises(ValueError, match=r"inputs must be a mapping of x, m to arrays \(this "
                                         r"network takes 2 inputs\), got ndarray"):
        kernel.loss_and_grad(params, inputs["x"], targets)
    with pytest.raises(ValueError, match=r"inputs must hold exactly the keys x, m; missing m, "
                                         r"unknown mask"):
        kernel.loss_and_grad(params, {"x": inputs["x"], "mask": inputs["m"]}, targets)
    with pytest.raises(ValueError, match=r"inputs\['m'\] must have shape \(T, B\) = \(3, 2\), "
                                         r"got \(3, 2, 1\)"):
        kernel.loss_and_grad(params, dict(inputs, m=inputs["m"][..., None]), targets)
    with pytest.raises(ValueError, match=r"labels must be an integer numpy.ndarray"):
        kernel.loss_and_grad(params, inputs, targets["z"].astype(float))
    multilabel = kernels["mlp_multilabel"][backend]
    params, inputs, targets, _ = draw(multilabel, (1, 2, 2, 2, 3), seed=0)
    with pytest.raises(ValueError, match=r"^z must have dtype float64 like inputs\['x'\], "
                                         r"got int64"):
        multilabel.loss_and_grad(params, inputs, targets["z"].astype(np.int64))


# --- the Python API ---------------------------------------------------------------------------


def classifier_from_python() -> Model:
    """The sequence classifier of ``examples/lstm_classifier.toml``'s shape, as an RNN through
    the model API: the last step is ``T``, the size, as an index."""
    m = Model("rnn_classifier")
    I, H, K = m.size("I"), m.size("H"), m.size("K")
    i, j, j_, k = m.index("i", I), m.index("j", H), m.index("j_", H), m.index("k", K)
    k_ = m.index("k_", K)
    t = m.time("t", "T")
    T = m.sizes["T"]
    x, z = m.input("x", [I], time=True), m.target("z", [K])
    W_xh, W_hh = m.parameter("W_xh", [I, H]), m.parameter("W_hh", [H, H])
    W_hy, b_y = m.parameter("W_hy", [H, K]), m.parameter("b_y", [K])
    a, h = m.intermediate("a", [H], time=True), m.intermediate("h", [H], time=True)
    a_y, y = m.intermediate("a_y", [K]), m.intermediate("y", [K])
    m.state("h0", of=h)
    m.define(a[j, t], sympy.Sum(W_xh[i, j] * x[i, t], (i, 0, I - 1))
             + sympy.Sum(W_hh[j_, j] * h[j_, t - 1], (j_, 0, H - 1)))
    m.define(h[j, t], sympy.tanh(a[j, t]))
    m.define(a_y[k], sympy.Sum(W_hy[j, k] * h[j, T], (j, 0, H - 1)) + b_y[k])
    m.define(y[k], sympy.exp(a_y[k]) / sympy.Sum(sympy.exp(a_y[k_]), (k_, 0, K - 1)))
    m.loss(-sympy.Sum(z[k] * sympy.log(y[k]), (k, 0, K - 1)))
    return m


def test_a_last_step_loss_from_the_python_api() -> None:
    report = check_model(classifier_from_python(), cases=2)
    assert report.ok, report.table()


def test_the_last_step_inside_an_equation_over_t_is_refused() -> None:
    m = Model("bad")
    H = m.size("H")
    j = m.index("j", H)
    t = m.time("t", "T")
    x = m.input("x", [H], time=True)
    a = m.intermediate("a", [H], time=True)
    with pytest.raises(Exception, match=r"reads the last step T inside an equation over t"):
        m.define(a[j, t], x[j, m.sizes["T"]])
