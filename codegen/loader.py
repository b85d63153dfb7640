"""Loading generated kernels: ``codegen.load(dir, backend=...)``.

Role in DESIGN.md's picture: the way tests, benchmarks and users call what
``generated/<net>/`` holds. The NumPy backend is a plain module; the C backend
(``codegen.c_loader``) compiles ``<net>.c`` and wraps it. Every backend returns an
object with the same kernel contract (SIZES, PARAMS, STATE, init_params,
loss_and_grad, predict).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .c_loader import CKernel

BACKENDS = ("numpy", "c")


def load(directory: str | Path, backend: str = "numpy", *,
         blas: bool | None = None) -> ModuleType | CKernel:
    """The kernel in ``directory`` (e.g. ``generated/mlp``) for ``backend``.

    ``blas`` applies to ``backend="c"`` only: True requires CBLAS, False never uses
    it, None (the default) uses it when the compiler finds it.
    """
    directory = Path(directory)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if blas is not None and backend != "c":
        raise ValueError(f"blas= applies only to backend='c', not backend={backend!r}")
    if backend == "c":
        from .c_loader import load_c

        return load_c(directory, blas=blas)
    return load_module(kernel_source(directory, ".py"))


def kernel_source(directory: Path, suffix: str) -> Path:
    """The one generated kernel file ending in ``suffix`` in ``directory``."""
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory of generated kernels")
    sources = sorted(directory.glob(f"*{suffix}"))
    if len(sources) != 1:
        raise ValueError(f"{directory} must hold exactly one generated {suffix} kernel, found "
                         f"{[s.name for s in sources] or 'none'}")
    return sources[0]


def load_module(source: Path) -> ModuleType:
    """Import the generated NumPy module ``source`` under a name unique to its content."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"chainrule_kernel_{source.stem}_{digest}",
                                                  source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
