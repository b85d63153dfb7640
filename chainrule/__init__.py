"""chainrule: symbolic backpropagation in index notation.

Write a network's forward pass and loss as equations (:class:`Model`, or a TOML
spec read by :func:`load_spec`); :func:`derive` runs reverse accumulation and
records every step; ``chainrule.codegen`` prints the one derivation as LaTeX
notes, NumPy and C kernels, and :func:`load` loads a generated kernel.

The two halves are subpackages: ``chainrule.symbolic`` (models and derive(), the
folder ``symbolic/`` of the source tree) and ``chainrule.codegen`` (plan,
backends, writer, loaders: ``codegen/``).
"""

from __future__ import annotations

import importlib
from typing import Any

# Names load on first use, so that `chainrule --help` (which imports this package
# on its way to the command line) does not import SymPy.
_PUBLIC = {
    "Adjoint": "chainrule.symbolic",
    "Derivation": "chainrule.symbolic",
    "Model": "chainrule.symbolic",
    "ModelError": "chainrule.symbolic",
    "Role": "chainrule.symbolic",
    "Step": "chainrule.symbolic",
    "derivative_rule": "chainrule.symbolic",
    "derive": "chainrule.symbolic",
    "load": "chainrule.codegen",
    "SpecError": "chainrule.symbolic.spec",
    "load_spec": "chainrule.symbolic.spec",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
