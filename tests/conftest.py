"""Shared fixtures: kernels generated from any Model into a temporary folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chainrule import codegen
from chainrule.codegen.backends.numpy.backend import render_numpy
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.writer import write_atomically
from chainrule.symbolic import Model, derive

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs ``-n auto``) each worker compiles into a C
    cache of its own: compiles into one cache take turns (a lock on the folder), so two
    workers would wait for each other's compiles instead of running both at once."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and "CHAINRULE_CACHE" not in os.environ:
        from chainrule.codegen.backends.c.cache import cache_dir

        os.environ["CHAINRULE_CACHE"] = str(cache_dir() / f"pytest-{worker}")


@pytest.fixture(scope="session")
def kernel_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Model], Any]:
    """Generate ``model``'s NumPy kernel into a temporary folder and load it (cached by name)."""
    cache: dict[str, Any] = {}

    def make(model: Model) -> Any:
        if model.name not in cache:
            out = tmp_path_factory.mktemp(model.name)
            write_atomically(out, {f"{model.name}.py": render_numpy(lower(derive(model)))})
            cache[model.name] = codegen.load(out, backend="numpy")
        return cache[model.name]

    return make


@pytest.fixture
def compilations(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every C compiler command run from now on (the CBLAS probe included)."""
    from chainrule.codegen.backends.c import compiler as c_compiler

    seen: list[list[str]] = []
    run = c_compiler._run_compiler

    def counting(command: list[str]) -> object:
        seen.append(list(command))
        return run(command)

    monkeypatch.setattr(c_compiler, "_run_compiler", counting)
    return seen
