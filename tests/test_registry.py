"""One backend interface, one registry, one kernel contract (issue 12, items 2 and 4).

``artifacts.render``, ``codegen.load`` and ``chainrule check`` iterate the registry;
every backend satisfies the Protocol; the NumPy module and the C library describe the
same contract, lowered from the plan, and check calls with the same code.
"""

from __future__ import annotations

import ast
import ctypes
import inspect
import json
from pathlib import Path

import pytest

from chainrule import codegen
from chainrule.codegen import kernel_checks
from chainrule.codegen.app import check
from chainrule.codegen.artifacts import render
from chainrule.codegen.plan.contract import KernelContract, contract_of
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.registry import (
    BACKENDS,
    Backend,
    KernelBackend,
    backend_named,
    kernel_backends,
)
from chainrule.codegen.writer import write_atomically
from chainrule.symbolic import derive
from chainrule.symbolic.networks import BUILTINS


def test_every_backend_is_a_backend() -> None:
    names = [backend.name for backend in BACKENDS]
    assert len(set(names)) == len(names)
    assert all(isinstance(backend, Backend) for backend in BACKENDS)
    assert [b.name for b in kernel_backends()] == ["numpy", "c"]
    assert all(isinstance(b, KernelBackend) for b in kernel_backends())


def test_check_and_load_iterate_the_registry() -> None:
    assert check.BACKENDS == tuple(b.name for b in kernel_backends())
    with pytest.raises(ValueError, match="backend must be one of numpy, c, got 'latex'"):
        backend_named("latex")
    with pytest.raises(ValueError, match="takes no option fast="):
        codegen.load(Path("."), backend="numpy", fast=True)


def test_render_is_every_backend_in_turn() -> None:
    model = BUILTINS["rnn"]()
    derivation = derive(model)
    plan = lower(derivation)
    expected = set()
    for backend in BACKENDS:
        expected |= set(backend.render(derivation, plan))
    assert set(render(model)) == expected == {"rnn.py", "rnn.c", "rnn.h", "rnn.tex"}


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_the_numpy_module_holds_the_plans_contract(name: str, tmp_path: Path) -> None:
    model = BUILTINS[name]()
    contract = contract_of(lower(derive(model)))
    write_atomically(tmp_path / name, render(model))
    module = codegen.load(tmp_path / name)
    assert module.CONTRACT == json.loads(contract.to_json()) == contract.as_dict()
    assert KernelContract.from_data(module.CONTRACT) == contract
    assert module.SIZES == contract.sizes and module.STATE == contract.state
    assert module.PARAMS == contract.params


def test_the_checks_are_copied_as_they_are(tmp_path: Path) -> None:
    """The generated module runs kernel_checks' own definitions, not a second version."""
    write_atomically(tmp_path / "mlp", render(BUILTINS["mlp"]()))
    text = (tmp_path / "mlp" / "mlp.py").read_text(encoding="utf-8")
    module = codegen.load(tmp_path / "mlp")
    source = inspect.getsource(kernel_checks)
    defined = [node for node in ast.parse(source).body
               if isinstance(node, ast.FunctionDef | ast.Assign)]
    assert len(defined) >= 5
    for node in defined:
        segment = ast.get_source_segment(source, node)
        assert segment is not None and segment in text
        if isinstance(node, ast.FunctionDef):
            assert inspect.getsource(getattr(module, node.name)) == segment + "\n"


def test_the_c_library_describes_the_same_contract(tmp_path: Path) -> None:
    pytest.importorskip("chainrule.codegen.backends.c.loader")
    from chainrule.codegen.backends.c.loader import CompilerError

    model = BUILTINS["lstm"]()
    contract = contract_of(lower(derive(model)))
    write_atomically(tmp_path / "lstm", render(model))
    (tmp_path / "lstm" / "lstm.py").unlink()  # the C kernel needs nothing of it
    (tmp_path / "lstm" / "lstm.tex").unlink()
    try:
        kernel = codegen.load(tmp_path / "lstm", backend="c", blas=False)
    except CompilerError as error:
        pytest.skip(f"no C compiler: {error}")
    raw = kernel.function("contract")()
    assert KernelContract.from_json(raw.decode()) == contract
    assert kernel.CONTRACT == contract.as_dict()
    assert kernel.SIZES_ORDER == contract.call_sizes == ("I", "H", "K", "T", "B")
    assert isinstance(kernel.lib, ctypes.CDLL)


def test_a_malformed_contract_is_named() -> None:
    good = contract_of(lower(derive(BUILTINS["mlp"]()))).as_dict()
    with pytest.raises(ValueError, match="lacks the field 'params'"):
        KernelContract.from_data({k: v for k, v in good.items() if k != "params"})
    with pytest.raises(ValueError, match=r"call_sizes .* is not sizes, time and B in order"):
        KernelContract.from_data({**good, "call_sizes": ["B"]})
    with pytest.raises(ValueError, match="is not valid JSON"):
        KernelContract.from_json("{")
