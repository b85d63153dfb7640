"""The generated NumPy MLP: gradients against finite differences, the kernel contract, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule import codegen
from chainrule.symbolic.networks import mlp
from tests.gradcheck import finite_difference_errors

GENERATED = Path(__file__).resolve().parents[1] / "generated" / "mlp"

# (seed, B, I, H1, H2, K): random sizes plus the edges B=1, one hidden unit, two classes
CASES = [
    (0, 1, 1, 1, 1, 2),
    (1, 1, 3, 4, 2, 2),
    (2, 4, 2, 1, 3, 5),
    (3, 3, 5, 3, 1, 2),
] + [(seed, *np.random.default_rng(seed).integers(1, 6, size=4), int(
    np.random.default_rng(seed + 99).integers(2, 6))) for seed in range(10, 14)]


@pytest.fixture(scope="module")
def kernel():
    return codegen.load(GENERATED)


def inputs(kernel, seed, B, I, H1, H2, K, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = kernel.init_params({"I": I, "H1": H1, "H2": H2, "K": K}, rng=rng, dtype=dtype)
    params = {n: (a + rng.normal(scale=0.3, size=a.shape)).astype(dtype)
              for n, a in params.items()}
    x = rng.normal(size=(B, I)).astype(dtype)
    labels = rng.integers(0, K, size=B)
    return params, x, labels


@pytest.mark.parametrize("case", CASES, ids=lambda c: "seed{}-B{}-I{}-H{}x{}-K{}".format(*c))
def test_gradients_match_finite_differences(kernel, case) -> None:
    params, x, labels = inputs(kernel, *case)
    errors = finite_difference_errors(kernel, params, x, labels)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("activation", ["logistic", "relu"])
@pytest.mark.parametrize("layers", [1, 3])
def test_other_activations_and_depths(kernel_for, activation, layers) -> None:
    model = mlp.build(hidden_layers=layers, activation=activation,
                      name=f"mlp_{activation}_{layers}")
    k = kernel_for(model)
    rng = np.random.default_rng(layers)
    sizes = {s: int(rng.integers(2, 5)) for s in k.SIZES}
    params = k.init_params(sizes, rng=rng)
    x = rng.normal(size=(3, sizes["I"]))
    labels = rng.integers(0, sizes["K"], size=3)
    errors = finite_difference_errors(k, params, x, labels)
    assert max(errors.values()) < 1e-6, errors


def test_contract_names(kernel) -> None:
    assert kernel.SIZES == ("I", "H1", "H2", "K")
    assert kernel.PARAMS == {"W_xh1": ("I", "H1"), "b_h1": ("H1",), "W_h1h2": ("H1", "H2"),
                             "b_h2": ("H2",), "W_h2y": ("H2", "K"), "b_y": ("K",)}
    assert kernel.STATE == {}


def test_loss_is_the_summed_cross_entropy(kernel) -> None:
    params, x, labels = inputs(kernel, 5, 6, 3, 4, 3, 4)
    loss, grads = kernel.loss_and_grad(params, x, labels)
    y = kernel.predict(params, x)
    assert y.shape == (6, 4)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-12)
    assert loss == pytest.approx(-np.log(y[np.arange(6), labels]).sum(), rel=1e-12)
    assert set(grads) == set(kernel.PARAMS)
    for name, g in grads.items():
        assert g.shape == params[name].shape


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_labels_of_any_integer_dtype(kernel, label_dtype) -> None:
    params, x, labels = inputs(kernel, 6, 3, 2, 2, 2, 3)
    reference = kernel.loss_and_grad(params, x, labels)[0]
    assert kernel.loss_and_grad(params, x, labels.astype(label_dtype))[0] == reference


def test_float32_computes_in_float32(kernel) -> None:
    params64, x64, labels = inputs(kernel, 7, 4, 3, 5, 4, 3)
    params32 = {n: a.astype(np.float32) for n, a in params64.items()}
    loss32, grads32 = kernel.loss_and_grad(params32, x64.astype(np.float32), labels)
    loss64, grads64 = kernel.loss_and_grad(params64, x64, labels)
    assert isinstance(loss32, np.float32)
    assert isinstance(loss64, np.float64)
    assert kernel.predict(params32, x64.astype(np.float32)).dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for name in grads64:
        assert grads32[name].dtype == np.float32
        np.testing.assert_allclose(grads32[name], grads64[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_huge_logits_stay_finite(kernel, scale) -> None:
    params, x, labels = inputs(kernel, 8, 5, 3, 3, 3, 4)
    params["b_y"] = np.array([scale, 0.0, -scale, 0.5 * scale])
    loss, grads = kernel.loss_and_grad(params, x, labels)
    assert np.isfinite(loss)
    assert all(np.isfinite(g).all() for g in grads.values())
    assert np.isfinite(kernel.predict(params, x)).all()


def test_init_params(kernel) -> None:
    sizes = {"I": 3, "H1": 4, "H2": 5, "K": 2}
    a = kernel.init_params(sizes, rng=3)
    b = kernel.init_params(sizes, rng=np.random.default_rng(3))
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert a["W_xh1"].shape == (3, 4) and a["W_xh1"].dtype == np.float64
    assert np.abs(a["W_xh1"]).max() <= 1 / np.sqrt(3)
    assert kernel.init_params(sizes, dtype="float32")["b_y"].dtype == np.float32


@pytest.mark.parametrize("sizes, message", [
    ({"I": 3, "H1": 4, "H2": 5}, "sizes is missing K; expected every one of I, H1, H2, K"),
    ({"I": 3, "H1": 0, "H2": 5, "K": 2}, r"sizes\['H1'\] must be a positive int, got 0"),
    ({"I": 3, "H1": 2.5, "H2": 5, "K": 2}, r"sizes\['H1'\] must be a positive int, got 2.5"),
    ([3, 4, 5, 2], "sizes must be a mapping of I, H1, H2, K to ints, got list"),
])
def test_init_params_errors(kernel, sizes, message) -> None:
    with pytest.raises(ValueError, match=message):
        kernel.init_params(sizes)


def test_init_params_bad_dtype(kernel) -> None:
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got int64"):
        kernel.init_params({"I": 1, "H1": 1, "H2": 1, "K": 2}, dtype=np.int64)


def bad_calls(kernel):
    params, x, labels = inputs(kernel, 9, 2, 3, 4, 2, 3)
    missing = {n: a for n, a in params.items() if n != "b_h2"}
    wrong_shape = {**params, "W_h1h2": np.zeros((4, 3))}
    float32 = {**params, "b_y": params["b_y"].astype(np.float32)}
    return [
        ((missing, x, labels), r"params is missing b_h2; expected W_xh1, b_h1, W_h1h2, b_h2"),
        (({**params, "extra": x}, x, labels), r"params has unknown keys extra"),
        ((wrong_shape, x, labels), r"params\['b_h2'\] must have shape \(H2,\) = \(3,\), got "
                                   r"\(2,\): H2 = 3 from the shape of params\['W_h1h2'\]"),
        (({**params, "W_xh1": np.zeros((2, 4))}, x, labels),
         r"params\['W_xh1'\] must have shape \(I, H1\) = \(3, H1\), got \(2, 4\): I = 3 from "
         r"the shape of x"),
        ((float32, x, labels), r"params\['b_y'\] has dtype float32 but x has float64; mixing "
                               r"float dtypes is not supported"),
        ((params, x[0], labels), r"x must have shape \(B, I\), got \(3,\)"),
        ((params, x.astype(np.int64), labels), "x must have dtype float32 or float64, got int64"),
        ((params, x.tolist(), labels), r"x must be a numpy.ndarray of shape \(B, I\), got list"),
        ((params, x[:0], labels[:0]), r"x must not be empty"),
        ((params, x, labels[:1]), r"labels must have shape \(B,\) = \(2,\), got \(1,\)"),
        ((params, x, labels.astype(float)), r"labels must be an integer numpy.ndarray of shape "
                                            r"\(B,\), got float64"),
        ((params, x, np.array([0, 3])), r"labels must lie in 0..2 \(K = 3 classes\), got 3"),
        ((params, x, np.array([-1, 0])), r"labels must lie in 0..2 \(K = 3 classes\), got -1"),
        ((params, x, labels, {"h0": x}), r"state must hold exactly the keys \(none\); missing "
                                         r"none, unknown h0"),
    ]


def test_bad_input_raises_value_errors_naming_it(kernel) -> None:
    for args, message in bad_calls(kernel):
        with pytest.raises(ValueError, match=message):
            kernel.loss_and_grad(*args)


def test_predict_validates_too(kernel) -> None:
    _, x, _ = inputs(kernel, 9, 2, 3, 4, 2, 3)
    with pytest.raises(ValueError, match=r"params is missing W_xh1"):
        kernel.predict({}, x)


def test_load_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="backend must be one of numpy, c, got 'fortran'"):
        codegen.load(GENERATED, backend="fortran")
    with pytest.raises(ValueError, match="is not a directory of generated kernels"):
        codegen.load(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"must hold exactly one generated \.py kernel"):
        codegen.load(tmp_path)
