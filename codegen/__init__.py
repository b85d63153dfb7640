"""chainrule's code generation: Derivation → plan → text (NumPy, LaTeX), and loading kernels.

The stages, each with its input and output:

- ``lower.lower(Derivation) → plan.Plan``: arrays, statements, loops;
- ``numpy_backend.render_numpy(Plan) → str``: ``<net>.py``;
- ``latex_backend.render_tex(Derivation) → str``: ``<net>.tex``;
- ``artifacts.render(Model) → {file: text}``: all of the above for one model;
- ``writer.write_atomically``: files on disk, all or nothing;
- ``load(dir, backend)``: a generated kernel, ready to call (``c_loader`` compiles C).

Importing this package is cheap: the engine loads on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(directory: str | Path, backend: str = "numpy", *, blas: bool | None = None) -> Any:
    """The generated kernel in ``directory`` for ``backend`` (see ``codegen.loader``).

    ``backend`` is ``"numpy"`` or ``"c"``; ``blas`` (C only) asks for or refuses CBLAS.
    """
    from chainrule.codegen.loader import load as _load

    return _load(directory, backend, blas=blas)


__all__ = ["load"]
