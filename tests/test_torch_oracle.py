"""Every network's loss and gradients against PyTorch autograd of the same equations (float64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import codegen
from symbolic.networks import mlp
from tests import torch_reference

pytestmark = pytest.mark.skipif(torch_reference.torch is None, reason=torch_reference.SKIP_REASON)

GENERATED = Path(__file__).resolve().parents[1] / "generated"


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-300))


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
