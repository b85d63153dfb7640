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
                  ) -> tuple[dict[str, np.ndarray], Any, Any, dict[str, np.ndarray] | None]:
    """``(params, inputs, targets, state)`` for ``kernel``, by its contract; T is ignored by
    a kernel without time. ``inputs`` (``targets``) is the array itself when the kernel
    takes one, else a dict by name: normal inputs, labels in 0..K-1, real-valued targets
    in 0..1.

    Parameters are ``init_params`` plus normal noise of ``scale``, so that every gate and
    peephole matters to the loss. The MLP's hidden sizes are H and max(H-1, 1).
    """
    rng = np.random.default_rng(seed)
    values = {"I": I, "H": H, "K": K, "H1": H, "H2": max(H - 1, 1), "T": T, "B": B}
    params = kernel.init_params({name: values[name] for name in kernel.SIZES}, rng=rng,
                                dtype=dtype)
    params = {name: (array + rng.normal(scale=scale, size=array.shape)).astype(dtype)
              for name, array in params.items()}

    def shape(axes: Any) -> tuple[int, ...]:
        return tuple(values[axis] for axis in axes)

    inputs = {name: rng.normal(size=shape(axes)).astype(dtype)
              for name, axes in kernel.INPUTS.items()}
    targets: dict[str, np.ndarray] = {
        name: rng.integers(0, values[kernel.CONTRACT["classes"][name]], size=shape(axes))
        for name, axes in kernel.LABELS.items()}
    targets |= {name: rng.uniform(0, 1, size=shape(axes)).astype(dtype)
                for name, axes in kernel.TARGETS.items()}
    state = {name: rng.normal(size=shape(("B", *axes))).astype(dtype)
             for name, axes in kernel.STATE.items()} if with_state and kernel.STATE else None
    return (params, _one_or_all(inputs), _one_or_all(targets), state)


def _one_or_all(arrays: dict[str, np.ndarray]) -> Any:
    return next(iter(arrays.values())) if len(arrays) == 1 else arrays


def relative_error(ours: Any, theirs: Any) -> float:
    """Normwise relative difference ``max|ours - theirs| / max|theirs|``, in float64 (a
    float32 floor of 1e-300 would round to 0)."""
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    return float(np.abs(ours - theirs).max() / max(float(np.abs(theirs).max()), 1e-300))
