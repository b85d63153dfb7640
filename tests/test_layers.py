"""The boundary between the two halves: codegen uses chainrule.symbolic's exports, nothing else.

Read from the source with ``ast`` (no module is imported to look at its imports):
every import under ``codegen/`` of a module of ``chainrule.symbolic`` must be of the
package itself, or of the user-facing ``networks`` and ``spec``; the names codegen
takes from symbolic are all in its ``__all__``; nothing reads a model's private
attributes; and the modules of ``symbolic/`` import each other without a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import chainrule.symbolic

ROOT = Path(__file__).resolve().parent.parent
#: source folder → the package it installs as (pyproject's package-dir)
PACKAGES = {"symbolic": "chainrule.symbolic", "codegen": "chainrule.codegen"}
SYMBOLIC = "chainrule.symbolic"
#: the submodules of chainrule.symbolic that codegen may import (the command line reads them)
USER_FACING = {f"{SYMBOLIC}.networks", f"{SYMBOLIC}.spec"}


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    """``codegen/plan/lower.py`` → ``chainrule.codegen.plan.lower``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGES[parts[0]], *parts[1:]])


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, names) for every import in ``path``, relative ones resolved."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield node.lineno, target, [alias.name for alias in node.names]


def is_submodule(name: str) -> bool:
    """Whether ``from chainrule.symbolic import name`` takes a module (``derive`` is also the
    name of a module, but the package exports the function)."""
    return name not in chainrule.symbolic.__all__ and (
        (ROOT / "symbolic" / f"{name}.py").exists() or (ROOT / "symbolic" / name).is_dir())


def private_symbolic_imports() -> list[str]:
    """Every import under codegen/ of a symbolic module other than the package and the two."""
    found = []
    for path in sources("codegen"):
        for line, target, names in imports(path):
            if not target.startswith(SYMBOLIC + "."):
                if target == SYMBOLIC:  # `from chainrule.symbolic import spec` takes a module
                    target_modules = {f"{SYMBOLIC}.{n}" for n in names if is_submodule(n)}
                    found += [f"{path.relative_to(ROOT)}:{line}: {m}"
                              for m in sorted(target_modules - USER_FACING)]
                continue
            if not any(target == m or target.startswith(m + ".") for m in USER_FACING):
                found.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    return found


def test_codegen_imports_only_the_public_face_of_symbolic() -> None:
    """Strict: codegen/backends/c/{backend,printer}.py still import symbolic's modules and fail
    this test until their imports become ``from chainrule.symbolic import ...``."""
    assert private_symbolic_imports() == []


def test_what_codegen_takes_from_symbolic_is_exported() -> None:
    """Every name codegen imports from a module of symbolic is in ``chainrule.symbolic``, the
    same object, so that switching an import to the package changes nothing."""
    exported = set(chainrule.symbolic.__all__)
    missing = []
    for path in sources("codegen"):
        for line, target, names in imports(path):
            if not target.startswith(SYMBOLIC + ".") or any(
                    target == m or target.startswith(m + ".") for m in USER_FACING):
                continue
            module = __import__(target, fromlist=names)
            for name in names:
                if name not in exported or getattr(chainrule.symbolic, name) is not getattr(
                        module, name):
                    missing.append(f"{path.relative_to(ROOT)}:{line}: {target}.{name}")
    assert missing == []


def test_symbolic_exports_what_it_lists() -> None:
    assert len(set(chainrule.symbolic.__all__)) == len(chainrule.symbolic.__all__)
    for name in chainrule.symbolic.__all__:
        assert hasattr(chainrule.symbolic, name), name


def test_no_private_attribute_of_a_model_is_read_outside_its_class() -> None:
    """``model._by_base`` and the like: a module that needs it asks Model a public query."""
    found = []
    for path in [*sources("symbolic"), *sources("codegen")]:
        if path == ROOT / "symbolic" / "model.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                owner = node.value
                owner_name = owner.id if isinstance(owner, ast.Name) else (
                    owner.attr if isinstance(owner, ast.Attribute) else "")
                if owner_name == "model":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: model.{node.attr}")
    assert found == []


def test_the_modules_of_symbolic_import_each_other_without_a_cycle() -> None:
    """Any import counts, at the top, in a function or under TYPE_CHECKING. The package's
    ``__init__`` is left out: it imports every module it exports from."""
    graph: dict[str, set[str]] = {}
    for path in sources("symbolic"):
        if path.name == "__init__.py" and path.parent.name == "symbolic":
            continue
        edges = set()
        for _, target, names in imports(path):
            if not target.startswith(SYMBOLIC):
                continue
            folder = ROOT / "symbolic" / Path(*target.split(".")[2:])
            submodules = [n for n in names if (folder / f"{n}.py").exists()]
            edges |= {f"{target}.{n}" for n in submodules} if submodules else {target}
        graph[module_name(path)] = edges - {SYMBOLIC}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for successor in graph.get(node, ()):
                if successor == start:
                    return [*path, start]
                if successor not in path:
                    stack.append((successor, [*path, successor]))
        return None

    cycles = [cycle for module in graph if (cycle := cycle_from(module))]
    assert cycles == []
