"""Loading generated kernels: ``codegen.load(dir, backend=...)``.

Role in DESIGN.md's picture: the way tests, benchmarks and users call what
``generated/<net>/`` holds. The NumPy backend is a plain module; every backend
returns an object with the same kernel contract (SIZES, PARAMS, STATE,
init_params, loss_and_grad, predict).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

BACKENDS = ("numpy",)


def load(directory: str | Path, backend: str = "numpy") -> ModuleType:
    """The kernel in ``directory`` (e.g. ``generated/mlp``) for ``backend``."""
    directory = Path(directory)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory of generated kernels")
    sources = sorted(directory.glob("*.py"))
    if len(sources) != 1:
        raise ValueError(f"{directory} must hold exactly one generated .py kernel, found "
                         f"{[s.name for s in sources] or 'none'}")
    source = sources[0]
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"chainrule_kernel_{source.stem}_{digest}",
                                                  source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
