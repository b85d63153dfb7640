"""Loading generated kernels: ``codegen.load(dir, backend=...)`` (``chainrule.load``).

Role in DESIGN.md's picture: the way tests, benchmarks and users call what
``generated/<net>/`` holds. The backend is looked up in the one registry
(``registry.BACKENDS``); each loads its own files (the NumPy backend runs the
module, the C backend compiles ``<net>.c``) and returns an object with the same
kernel contract (CONTRACT, SIZES, PARAMS, STATE, init_params, loss_and_grad,
predict). Files whose seals say they do not belong together are refused
(``kernel_set.py``). What it returns also offers ``torch(...)`` and ``jax()``, the
wrappers of ``codegen/frameworks/`` (set on the object here: the generated module's
text imports NumPy alone and stays as it is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainrule.codegen.frameworks import attach
from chainrule.codegen.registry import Kernel, backend_named

__all__ = ["load"]


def load(directory: str | Path, backend: str = "numpy", **options: Any) -> Kernel:
    """The kernel in ``directory`` (e.g. ``generated/mlp``) for ``backend``.

    ``backend`` is the name of a kernel backend (``numpy``, ``c``); ``options`` are that
    backend's own: ``blas=`` for C (``"bundled"``, the OpenBLAS of the scipy-openblas32
    wheel; ``"system"``, the system's CBLAS; ``"none"``; True for either CBLAS, False
    for none, None, the default, for the first that works). ValueError for an unknown backend or
    option, and for files whose seals say they do not belong together. The kernel has
    ``torch(sizes, *, params, rng, dtype)`` (a ``torch.nn.Module``) and ``jax()`` (a
    ``jax.custom_vjp`` loss), which import their framework when called.
    """
    return attach(backend_named(backend).load(Path(directory), **options))
