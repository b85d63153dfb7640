"""Random inputs for any generated kernel, shared by the tests of every backend."""

from __future__ import annotations

from typing import Any

import numpy as np

# (seed, T, B, I, H, K): the edges T=1, B=1, one hidden unit and two classes first
EDGE_CASES = [(0, 1, 1, 1, 1, 2), (1, 1, 3, 2, 3, 2), (2, 4, 1, 3, 1, 2), (3, 3, 2, 1, 2, 4)]


def case_id(case: tuple[int, ...]) -> str:
    return "seed{}-T{}-B{}-I{}-H{}-K{}".format(*case)


def random_inputs(kernel: Any, seed: int, T: int, B: int, I: int, H: int, K: int, *,
                  dtype: Any = np.float64, with_state: bool = True, scale: float = 0.5
                  ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray,
                             dict[str, np.ndarray] | None]:
    """``(params, x, labels, state)`` for ``kernel``; T is ignored by a kernel without time.

    Parameters are ``init_params`` plus normal noise of ``scale``, so that every gate and
    peephole matters to the loss. The MLP's hidden sizes are H and max(H-1, 1).
    """
    rng = np.random.default_rng(seed)
    values = {"I": I, "H": H, "K": K, "H1": H, "H2": max(H - 1, 1)}
    params = kernel.init_params({name: values[name] for name in kernel.SIZES}, rng=rng,
                                dtype=dtype)
    params = {name: (array + rng.normal(scale=scale, size=array.shape)).astype(dtype)
              for name, array in params.items()}
    recurrent = bool(kernel.STATE)
    x = rng.normal(size=(T, B, I) if recurrent else (B, I)).astype(dtype)
    labels = rng.integers(0, K, size=x.shape[:-1])
    state = {name: rng.normal(size=(B, H)).astype(dtype) for name in kernel.STATE} \
        if with_state and recurrent else None
    return params, x, labels, state


def relative_error(ours: Any, theirs: Any) -> float:
    """Normwise relative difference ``max|ours - theirs| / max|theirs|``, in float64 (a
    float32 floor of 1e-300 would round to 0)."""
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    return float(np.abs(ours - theirs).max() / max(float(np.abs(theirs).max()), 1e-300))
