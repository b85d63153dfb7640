"""The GRU written as a spec (``examples/gru.toml``): gradients, the contract, torch.nn.GRU.

The spec's kernels are generated into a temporary folder, then checked against
central finite differences (NumPy and C, float64; random sizes with the edges
T=1, B=1, H=1, K=2; with and without an initial state) and against PyTorch's
fused ``torch.nn.GRU`` layer in float64 and float32: an oracle that shares
nothing with chainrule but the equations of its documentation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule import codegen
from chainrule.codegen.artifacts import render
from chainrule.codegen.writer import write_atomically
from chainrule.symbolic.spec import load_spec, source_of
from tests import torch_reference
from tests.cases import relative_error
from tests.gradcheck import finite_difference_errors

SPEC = Path(__file__).resolve().parents[1] / "examples" / "gru.toml"
PARAMS = {
    "W_xr": ("I", "H"), "W_hr": ("H", "H"), "b_r": ("H",),
    "W_xz": ("I", "H"), "W_hz": ("H", "H"), "b_z": ("H",),
    "W_xn": ("I", "H"), "W_hn": ("H", "H"), "b_xn": ("H",), "b_hn": ("H",),
    "W_hy": ("H", "K"), "b_y": ("K",),
}

# (seed, T, B, I, H, K): the edges first, then random sizes
CASES = [
    (0, 1, 1, 1, 1, 2),
    (1, 1, 3, 2, 3, 2),
    (2, 4, 1, 3, 1, 2),
    (3, 3, 2, 1, 2, 4),
] + [(seed, *(int(n) for n in np.random.default_rng(seed).integers(1, 5, size=4)),
      int(np.random.default_rng(seed + 99).integers(2, 5))) for seed in range(10, 13)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gru_spec")
    write_atomically(out, render(load_spec(SPEC), source=source_of(SPEC)))
    return out


def c_or_skip(folder: Path):
    """The C kernel; the test is skipped (with the reason) where there is no C compiler."""
    from chainrule.codegen.backends.c.loader import CompilerError, find_compiler

    try:
        find_compiler()
    except CompilerError as error:
        pytest.skip(f"no C compiler: {error}")
    return codegen.load(folder, backend="c")


@pytest.fixture(scope="module", params=["numpy", "c"])
def kernel(request: pytest.FixtureRequest, folder: Path):
    return c_or_skip(folder) if request.param == "c" else codegen.load(folder)


def inputs(kernel, seed, T, B, I, H, K, *, dtype=np.float64, with_state=True):
    rng = np.random.default_rng(seed)
    params = kernel.init_params({"I": I, "H": H, "K": K}, rng=rng, dtype=dtype)
    # parameters of order one, so that every gate matters to the loss
    params = {n: (a + rng.normal(scale=0.5, size=a.shape)).astype(dtype)
              for n, a in params.items()}
    x = rng.normal(size=(T, B, I)).astype(dtype)
    labels = rng.integers(0, K, size=(T, B))
    state = {"h0": rng.normal(size=(B, H)).astype(dtype)} if with_state else None
    return params, x, labels, state


def test_contract(kernel) -> None:
    assert kernel.SIZES == ("I", "H", "K")
    assert kernel.PARAMS == PARAMS
    assert list(kernel.PARAMS) == list(PARAMS)
    assert kernel.STATE == {"h0": ("H",)}


def test_files_name_the_spec(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["gru.c", "gru.h", "gru.py", "gru.tex"]
    for name in ("gru.py", "gru.c", "gru.h"):
        assert "from the spec file 'gru.toml'" in (folder / name).read_text()


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "no-state"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "seed{}-T{}-B{}-I{}-H{}-K{}".format(*c))
def test_gradients_match_finite_differences(kernel, case, with_state) -> None:
    params, x, labels, state = inputs(kernel, *case, with_state=with_state)
    errors = finite_difference_errors(kernel, params, x, labels, state)
    assert set(errors) == set(PARAMS) | ({"h0"} if with_state else set())
    assert max(errors.values()) < 1e-6, errors


def test_backends_agree(folder: Path) -> None:
    numpy_kernel = codegen.load(folder)
    c_kernel = c_or_skip(folder)
    params, x, labels, state = inputs(numpy_kernel, 7, 5, 3, 4, 6, 3)
    loss, grads = numpy_kernel.loss_and_grad(params, x, labels, state)
    c_loss, c_grads = c_kernel.loss_and_grad(params, x, labels, state)
    assert c_loss == pytest.approx(loss, rel=1e-12)
    for name, grad in grads.items():
        np.testing.assert_allclose(c_grads[name], grad, rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(c_kernel.predict(params, x, state),
                               numpy_kernel.predict(params, x, state), rtol=1e-12)


# --- torch.nn.GRU ------------------------------------------------------------------------------


def torch_gru(params: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray,
              state: dict[str, np.ndarray] | None):
    """Loss, gradients (in our names) and softmax outputs through ``torch.nn.GRU``.

    PyTorch stacks the gates [r; z; n] along the rows of ``weight_ih_l0`` (3H, I)
    and ``weight_hh_l0`` (3H, H); the r and z gates add ``bias_ih`` and ``bias_hh``,
    so ``b_r`` and ``b_z`` sit in ``bias_ih_l0`` with zeros in ``bias_hh_l0``;
    ``b_xn`` is ``bias_ih_l0[2H:]`` and ``b_hn`` (multiplied by r) ``bias_hh_l0[2H:]``.
    """
    torch = torch_reference.torch
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    I, H = params["W_xr"].shape
    module = torch.nn.GRU(I, H, num_layers=1).to(dtype)
    zeros = np.zeros(H, x.dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(
            np.concatenate([params["W_xr"], params["W_xz"], params["W_xn"]], axis=1).T))
        module.weight_hh_l0.copy_(torch.tensor(
            np.concatenate([params["W_hr"], params["W_hz"], params["W_hn"]], axis=1).T))
        module.bias_ih_l0.copy_(torch.tensor(
            np.concatenate([params["b_r"], params["b_z"], params["b_xn"]])))
        module.bias_hh_l0.copy_(torch.tensor(np.concatenate([zeros, zeros, params["b_hn"]])))
    W_hy = torch.tensor(params["W_hy"], requires_grad=True)
    b_y = torch.tensor(params["b_y"], requires_grad=True)
    h0 = (torch.tensor(state["h0"], requires_grad=True) if state is not None
          else torch.zeros(x.shape[1], H, dtype=dtype))
    hidden, _ = module(torch.tensor(x), h0.unsqueeze(0))          # (T, B, H)
    logits = hidden @ W_hy + b_y
    log_y = torch.log_softmax(logits, dim=-1)
    index = torch.as_tensor(labels, dtype=torch.int64).unsqueeze(-1)
    loss = -log_y.gather(-1, index).sum()
    leaves = [module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0,
              W_hy, b_y] + ([h0] if state is not None else [])
    g = [t.detach().numpy() for t in torch.autograd.grad(loss, leaves)]
    ih, hh, bih, bhh = g[0].T, g[1].T, g[2], g[3]
    grads = {"W_xr": ih[:, :H], "W_xz": ih[:, H:2 * H], "W_xn": ih[:, 2 * H:],
             "W_hr": hh[:, :H], "W_hz": hh[:, H:2 * H], "W_hn": hh[:, 2 * H:],
             "b_r": bih[:H], "b_z": bih[H:2 * H], "b_xn": bih[2 * H:], "b_hn": bhh[2 * H:],
             "W_hy": g[4], "b_y": g[5]}
    if state is not None:
        grads["h0"] = g[6]
    # b_r and b_z reach r and z through both biases alike
    np.testing.assert_allclose(bhh[:2 * H], bih[:2 * H], rtol=1e-5, atol=1e-6)
    return loss.item(), grads, torch.softmax(logits, dim=-1).detach().numpy()


@pytest.mark.skipif(torch_reference.torch is None, reason=torch_reference.SKIP_REASON)
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-9), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("with_state", [True, False], ids=["state", "no-state"])
@pytest.mark.parametrize("seed", range(4))
def test_matches_torch_nn_gru(kernel, seed, with_state, dtype, tolerance) -> None:
    rng = np.random.default_rng(100 + seed)
    T, B, I, H = (int(n) for n in rng.integers(1, 7, size=4))
    K = int(rng.integers(2, 6))
    params, x, labels, state = inputs(kernel, seed, T, B, I, H, K, dtype=dtype,
                                      with_state=with_state)
    loss, grads = kernel.loss_and_grad(params, x, labels, state)
    ref_loss, ref_grads, ref_y = torch_gru(params, x, labels, state)
    assert loss.dtype == dtype
    assert float(loss) == pytest.approx(ref_loss, rel=tolerance)
    assert set(grads) == set(ref_grads)
    for name, grad in grads.items():
        assert grad.dtype == dtype, name
        assert relative_error(grad, ref_grads[name]) < tolerance, name
    y = kernel.predict(params, x, state)
    assert relative_error(y, ref_y) < tolerance
