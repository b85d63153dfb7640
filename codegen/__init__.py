"""chainrule's code generation: Derivation → plan → text (NumPy, C, LaTeX), and loading kernels.

The stages, each with its input and output:

- ``plan.lower.lower(Derivation) → plan.types.Plan``: arrays, statements, loops;
- ``backends/<name>/``: each backend of ``registry.BACKENDS`` renders
  ``(Derivation, Plan) → {file: text}`` (``<net>.py``; ``<net>.c``, ``<net>.h``;
  ``<net>.tex``);
- ``artifacts.render(Model) → {file: text}``: every backend's files for one model, the
  kernel files sealed as one set (``kernel_set.py``);
- ``writer.write_atomically``: files on disk, all or nothing;
- ``load(dir, backend)``: a generated kernel, ready to call (the C backend compiles it).

Importing this package is cheap: the engine loads on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(directory: str | Path, backend: str = "numpy", **options: Any) -> Any:
    """The generated kernel in ``directory`` for ``backend`` (see ``codegen.loader``).

    ``backend`` names a kernel backend of ``codegen.registry`` (``"numpy"``, ``"c"``);
    ``options`` are its own: ``blas=`` (C only) asks for or refuses CBLAS.
    """
    from chainrule.codegen.loader import load as _load

    return _load(directory, backend, **options)


__all__ = ["load"]
