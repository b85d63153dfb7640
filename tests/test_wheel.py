"""The wheel on its own: built from this tree, installed in a fresh venv beside nothing
else, it provides ``chainrule`` (the namespace, the templates, the command).

PyPI already holds unrelated distributions named ``symbolic`` and ``codegen``, so the
folders symbolic/ and codegen/ install as ``chainrule.symbolic`` and
``chainrule.codegen``; this test is what keeps that true. It builds without isolation
(setuptools from the test environment) and installs the run-time dependencies from the
package index, so it needs the index, as ``make test`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("build", reason="the wheel test needs the 'build' package (test extra)")


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this tree."""
    work = tmp_path_factory.mktemp("dist")
    # from a copy of the tree: setuptools builds in the tree's build/ folder, and two
    # pytest workers building at once in the same one delete each other's files
    tree = tmp_path_factory.mktemp("tree") / "chainrule"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        ".hypothesis", ".cache"))
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work),
          str(tree)], cwd=work)
    (built,) = work.glob("chainrule-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel (and its dependencies) installed: its python."""
    work = tmp_path_factory.mktemp("wheel")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.split("/")[0] in ("symbolic", "codegen")], \
        "the wheel must not install top-level symbolic/ or codegen/"
    _run([sys.executable, "-m", "venv", str(work / "venv")], cwd=work)
    python = work / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=work)
    return python


def test_the_wheel_holds_the_namespace_and_the_templates(installed: Path) -> None:
    script = (
        "import chainrule, pathlib\n"
        "from chainrule import Model, derive, load, load_spec\n"
        "from chainrule.symbolic.networks import BUILTINS\n"
        "from chainrule.codegen.artifacts import render\n"
        "files = render(BUILTINS['mlp']())\n"
        "assert sorted(files) == ['mlp.c', 'mlp.h', 'mlp.py', 'mlp.tex'], sorted(files)\n"
        "print(pathlib.Path(chainrule.__file__).parent)\n"
    )
    result = _run([str(installed), "-c", script], cwd=installed.parents[2])
    package = Path(result.stdout.strip())
    assert "site-packages" in package.parts, package
    assert ROOT not in package.parents


def test_chainrule_check_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    command = installed.parent / "chainrule"
    result = _run([str(command), "check", "lstm"], cwd=tmp_path)
    assert "ok: every gradient" in result.stdout, result.stdout
    assert not (tmp_path / "symbolic").exists() and not (tmp_path / "codegen").exists()


def test_the_layers_hold(wheel: Path, tmp_path: Path) -> None:
    """import-linter's contracts in pyproject.toml, on the package as installed: symbolic
    never imports codegen, the plan no backend, backends not each other. (Run on the
    unpacked wheel because import-linter finds subpackages by folder, and in the source
    tree chainrule.symbolic is the folder symbolic/.)"""
    pytest.importorskip("importlinter", reason="needs import-linter (test extra)")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    lint = Path(sys.executable).parent / "lint-imports"
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")],
                            cwd=tmp_path, env=environment, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and result.stdout.count("KEPT") == 4, result.stdout
