"""The backends: one interface (:class:`Backend`) and one registry (:data:`BACKENDS`).

Role in DESIGN.md's picture: the list of ``plan → text`` stages. ``artifacts.render``
(what ``chainrule generate`` writes), ``codegen.load`` (the ``backend=`` choices) and
``chainrule check`` (the kernels it compares) all iterate :data:`BACKENDS`; adding a
backend is its own package under ``codegen/backends/`` plus one line here (see
``codegen/backends/README.md``). A backend that prints kernels also loads them
(:class:`KernelBackend`); the notes only render.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from chainrule.codegen.backends.c.backend import BACKEND as C
from chainrule.codegen.backends.latex.backend import BACKEND as LATEX
from chainrule.codegen.backends.numpy.backend import BACKEND as NUMPY
from chainrule.codegen.plan.types import Plan
from chainrule.symbolic import Derivation

__all__ = ["BACKENDS", "Backend", "Kernel", "KernelBackend", "backend_named",
           "kernel_backends"]


@runtime_checkable
class Kernel(Protocol):
    """A loaded kernel: the contract of DESIGN.md, the same for every backend."""

    CONTRACT: Mapping[str, Any]
    SIZES: tuple[str, ...]
    PARAMS: Mapping[str, tuple[str, ...]]
    STATE: Mapping[str, tuple[str, ...]]

    def init_params(self, sizes: Mapping[str, int], *, rng: Any = None,
                    dtype: Any = np.float64) -> dict[str, np.ndarray]: ...

    def loss_and_grad(self, params: Mapping[str, np.ndarray], x: np.ndarray,
                      labels: np.ndarray, state: Mapping[str, np.ndarray] | None = None
                      ) -> tuple[np.floating, dict[str, np.ndarray]]: ...

    def predict(self, params: Mapping[str, np.ndarray], x: np.ndarray,
                state: Mapping[str, np.ndarray] | None = None) -> np.ndarray: ...


@runtime_checkable
class Backend(Protocol):
    """A ``plan → text`` stage: the files it writes into ``generated/<net>/``."""

    #: what users call it (``chainrule.load(dir, backend=name)``)
    name: str

    def render(self, derivation: Derivation, plan: Plan) -> dict[str, str]:
        """File name → text, for the folder of ``plan.name``."""
        ...


@runtime_checkable
class KernelBackend(Backend, Protocol):
    """A backend whose files are a kernel that can be loaded and called."""

    def load(self, directory: Path, **options: Any) -> Kernel:
        """The kernel in ``directory``; ``options`` are this backend's own (ValueError
        naming any it does not take)."""
        ...

    def unavailable(self) -> str | None:
        """Why this backend's kernels cannot be loaded on this machine, or None."""
        ...


#: every backend, in the order their files are rendered and their kernels checked
BACKENDS: tuple[Backend, ...] = (NUMPY, C, LATEX)


def kernel_backends() -> tuple[KernelBackend, ...]:
    """The backends that load kernels, in registry order."""
    return tuple(b for b in BACKENDS if isinstance(b, KernelBackend))


def backend_named(name: str) -> KernelBackend:
    """The kernel backend called ``name`` (ValueError listing the names there are)."""
    for backend in kernel_backends():
        if backend.name == name:
            return backend
    names = ", ".join(b.name for b in kernel_backends())
    raise ValueError(f"backend must be one of {names}, got {name!r}")
