"""Checks shared by the tests of the plan passes a backend runs on its copy of the plan
(``plan/accumulate.py``, ``plan/transpose.py``): the kind of statement a pass makes is the
plan's, so the NumPy printer prints it too, and its kernel must compute what the kernel of
the plan before the pass computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule.codegen.backends.numpy.backend import render_numpy
from chainrule.codegen.backends.numpy.loader import module_from_source
from chainrule.codegen.plan.types import Plan


def assert_same_numpy_kernel(before: Plan, after: Plan, folder: Path) -> None:
    """The NumPy kernels printed from ``before`` and ``after`` give the same loss and
    gradients (1e-12) on random parameters and inputs, every size 3, B = 2, T = 4."""
    kernels = [module_from_source(folder / f"{before.name}_{n}.py", render_numpy(p).encode())
               for n, p in enumerate((before, after))]
    sizes = {str(s): 3 for s in before.sizes}
    params = kernels[0].init_params(sizes, rng=0)
    rng = np.random.default_rng(1)
    B, T = 2, 4
    x = rng.normal(size=(B, sizes["I"]) if before.time is None else (T, B, sizes["I"]))
    labels = rng.integers(0, sizes["K"], size=x.shape[:-1])
    (loss, grads), (loss_after, grads_after) = (
        k.loss_and_grad(params, {"x": x}, {"z": labels}) for k in kernels)
    assert loss_after == pytest.approx(loss, rel=1e-12)
    for key in grads:
        np.testing.assert_allclose(grads_after[key], grads[key], rtol=1e-12, atol=1e-14)
