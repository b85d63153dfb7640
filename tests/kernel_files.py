"""A model's kernel files (NumPy, C), without the notes, for tests that load kernels.

``artifacts.render`` renders every backend, the LaTeX notes too; a test of the
kernels needs only the kernel backends' files, sealed as one set the same way
(``kernel_set.seal``), so that ``codegen.load`` takes them.
"""

from __future__ import annotations

from pathlib import Path

from chainrule.codegen.kernel_set import seal
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.registry import kernel_backends
from chainrule.codegen.writer import write_atomically
from chainrule.symbolic import Model, derive


def kernel_files(model: Model, source: str | None = None) -> dict[str, str]:
    """The files of every kernel backend for ``model``, by name, sealed as one set."""
    derivation = derive(model)
    plan = lower(derivation, source=source)
    files: dict[str, str] = {}
    for backend in kernel_backends():
        files.update(backend.render(derivation, plan))
    return seal(files)


def write_kernels(model: Model, folder: Path, source: str | None = None) -> Path:
    """``model``'s kernel files written into ``folder`` (created or replaced whole)."""
    write_atomically(folder, kernel_files(model, source))
    return folder
