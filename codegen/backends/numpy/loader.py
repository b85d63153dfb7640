"""Loading a generated NumPy module: ``codegen.load(dir, backend="numpy")``.

Role in DESIGN.md's picture: the NumPy side of the kernel contract. The module
``<net>.py`` is the kernel itself (CONTRACT, SIZES, PARAMS, STATE, init_params,
loss_and_grad, predict); loading it means reading the kernel set once
(``kernel_set.read_checked``) and running exactly the bytes whose seal was checked.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

from chainrule.codegen.kernel_set import read_checked

__all__ = ["load_numpy", "module_from_source"]


def load_numpy(directory: str | Path) -> ModuleType:
    """The NumPy kernel in ``directory``: its ``<net>.py`` as a fresh module."""
    files = read_checked(directory, ".py")
    python = files.get(".py")
    assert python is not None
    return module_from_source(files.path(".py"), python)


def module_from_source(path: Path, source: bytes) -> ModuleType:
    """Run the generated NumPy module ``source`` (read from ``path``) as a fresh module.

    The module's name is unique to its content, so two kernels of the same name
    (an old and a new one, or two folders) never share a module.
    """
    digest = hashlib.sha256(source).hexdigest()[:12]
    name = f"chainrule_kernel_{path.stem}_{digest}"
    spec = importlib.machinery.ModuleSpec(name, None, origin=str(path))
    spec.has_location = True
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    # compiled from the bytes that were checked, not from the path read again
    code = compile(source, str(path), "exec", dont_inherit=True)
    exec(code, module.__dict__)
    return module
