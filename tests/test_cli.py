"""The ``chainrule`` command line, run in-process through ``codegen.cli.main``.

A fixture installs small fake networks in place of the built-ins, so these
tests pin the command line's behaviour whatever state the engine is in. It
patches the engine's real entry points (``symbolic.networks.BUILTINS``,
``symbolic.derive``, ``codegen.artifacts.render``) when they exist, and stands
in stub modules for them when they do not yet.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from chainrule.codegen.app.cli import main

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ToyModel:
    name: str
    description: str


@dataclass
class ToyDerivation:
    model: ToyModel

    def describe(self) -> str:
        return f"derivation of {self.model.name}\n  δ_k = y_k - z_k\n"


def _module(monkeypatch: pytest.MonkeyPatch, name: str, *attrs: str) -> types.ModuleType:
    """The real module when it imports and has ``attrs``, else a stub in sys.modules."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        module = None
    if module is None or not all(hasattr(module, attr) for attr in attrs):
        module = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, module)
    return module


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Fake built-ins "toy" and "toy2" (two files each) and "broken" (rejected by the engine)."""
    symbolic = _module(monkeypatch, "chainrule.symbolic", "derive", "ModelError")
    networks = _module(monkeypatch, "chainrule.symbolic.networks", "BUILTINS")
    artifacts = _module(monkeypatch, "chainrule.codegen.artifacts", "render")
    model_error = getattr(symbolic, "ModelError", None)
    if model_error is None:
        model_error = type("ModelError", (ValueError,), {})
        monkeypatch.setattr(symbolic, "ModelError", model_error, raising=False)
    real_derive = getattr(symbolic, "derive", None)
    real_render = getattr(artifacts, "render", None)

    def broken() -> ToyModel:
        raise model_error("quantity 'a' is defined twice")

    builtins = {
        "toy": lambda: ToyModel("toy", "A toy network.\nSecond line not shown by list."),
        "toy2": lambda: ToyModel("toy2", "Another toy network."),
        "broken": broken,
    }

    def derive(model: object) -> object:
        if isinstance(model, ToyModel):
            return ToyDerivation(model)
        return real_derive(model)

    def render(model: object) -> dict[str, str]:
        if isinstance(model, ToyModel):
            body = "".join(f"line {i} of {model.name}\n" for i in range(60))
            return {f"{model.name}.py": body, f"{model.name}.tex": f"% {model.name}\n"}
        return real_render(model)

    monkeypatch.setattr(networks, "BUILTINS", builtins, raising=False)
    monkeypatch.setattr(symbolic, "derive", derive, raising=False)
    monkeypatch.setattr(artifacts, "render", render, raising=False)
    return types.SimpleNamespace(builtins=builtins, render=render, ModelError=model_error)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "generated"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_names_each_network_with_its_description(engine, capsys) -> None:
    del engine.builtins["broken"]
    code, stdout, _ = run(capsys, "list")
    assert code == 0
    assert stdout.splitlines() == ["toy   A toy network.", "toy2  Another toy network."]


def test_derive_prints_the_description_of_the_derivation(engine, capsys) -> None:
    code, stdout, _ = run(capsys, "derive", "toy")
    assert code == 0
    assert stdout == "derivation of toy\n  δ_k = y_k - z_k\n"


def test_generate_writes_then_check_passes(engine, capsys, out: Path) -> None:
    code, stdout, _ = run(capsys, "generate", "toy", "toy2", "--out", str(out))
    assert code == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "toy/toy.py",
        "toy/toy.tex",
        "toy2/toy2.py",
        "toy2/toy2.tex",
    ]
    assert (out / "toy/toy.tex").read_text() == "% toy\n"
    assert len(stdout.splitlines()) == 4
    assert all(line.endswith((".py", ".tex")) for line in stdout.splitlines())

    code, stdout, _ = run(capsys, "generate", "toy", "toy2", "--out", str(out), "--check")
    assert code == 0
    assert stdout.strip().endswith("is up to date (4 files)")


def test_generate_defaults_to_every_builtin_and_to_cwd_generated(
    engine, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    del engine.builtins["broken"]
    monkeypatch.chdir(tmp_path)

    code, stdout, _ = run(capsys, "generate")

    assert code == 0
    assert stdout.splitlines() == [
        "generated/toy/toy.py",
        "generated/toy/toy.tex",
        "generated/toy2/toy2.py",
        "generated/toy2/toy2.tex",
    ]
    code, stdout, _ = run(capsys, "generate", "--check")
    assert (code, stdout) == (0, "generated/ is up to date (4 files)\n")


def test_check_names_a_modified_file_with_a_short_diff(engine, capsys, out: Path) -> None:
    run(capsys, "generate", "toy", "--out", str(out))
    target = out / "toy/toy.py"
    # Every other line changed: one long hunk of alternating - and + lines.
    target.write_text(
        "".join(f"changed line {i}\n" if i % 2 == 0 else f"line {i} of toy\n" for i in range(60))
    )

    code, stdout, _ = run(capsys, "generate", "toy", "--out", str(out), "--check")

    assert code == 1
    assert f"{target}: differs" in stdout or "toy/toy.py: differs" in stdout
    assert "-changed line 0\n+line 0 of toy\n line 1 of toy\n" in stdout
    assert "more diff lines)" in stdout, "long diffs are cut short"
    assert len(stdout.splitlines()) < 50
    assert "out of date" in stdout.splitlines()[-1]


def test_check_names_a_missing_file(engine, capsys, out: Path) -> None:
    run(capsys, "generate", "toy", "--out", str(out))
    (out / "toy/toy.tex").unlink()

    code, stdout, _ = run(capsys, "generate", "toy", "--out", str(out), "--check")

    assert code == 1
    assert "toy/toy.tex: missing" in stdout


def test_check_names_stray_files_and_leftover_network_folders(engine, capsys, out: Path) -> None:
    del engine.builtins["broken"]
    run(capsys, "generate", "--out", str(out))
    (out / "toy/notes.txt").write_text("hand-made\n")
    (out / "gone").mkdir()
    (out / "gone/gone.py").write_text("from a network that no longer exists\n")

    code, stdout, _ = run(capsys, "generate", "--out", str(out), "--check")
    assert code == 1
    assert "toy/notes.txt: not generated" in stdout
    assert "gone/gone.py: not generated" in stdout

    # Checking named networks only looks in their folders.
    code, stdout, _ = run(capsys, "generate", "toy2", "--out", str(out), "--check")
    assert code == 0


def test_check_writes_nothing(engine, capsys, out: Path) -> None:
    code, stdout, _ = run(capsys, "generate", "toy", "--out", str(out), "--check")
    assert code == 1
    assert "toy/toy.py: missing" in stdout and "toy/toy.tex: missing" in stdout
    assert not out.exists()


def test_generate_warns_about_stray_files(engine, capsys, out: Path) -> None:
    (out / "toy").mkdir(parents=True)
    (out / "toy/old.c").write_text("stale\n")
    code, _, stderr = run(capsys, "generate", "toy", "--out", str(out))
    assert code == 0
    assert "toy/old.c is not generated" in stderr
    assert (out / "toy/old.c").exists(), "generate never deletes files"


@pytest.mark.parametrize(
    "argv",
    [["derive", "nosuchnet"], ["generate", "toy", "nosuchnet"], ["generate", "--check", "nope"]],
)
def test_unknown_network_lists_the_known_ones(engine, capsys, argv: list[str]) -> None:
    code, stdout, stderr = run(capsys, *argv)
    assert code == 2
    assert stdout == ""
    assert "unknown network" in stderr and argv[-1] in stderr
    assert "toy, toy2" in stderr


def test_no_command_is_an_error_naming_the_commands(capsys) -> None:
    code, _, stderr = run(capsys)
    assert code == 2
    assert "list, derive, generate" in stderr


def test_unknown_command_is_an_error_naming_the_commands(capsys) -> None:
    code, _, stderr = run(capsys, "frobnicate")
    assert code == 2
    assert "frobnicate" in stderr and "'generate'" in stderr


def test_derive_needs_a_network(capsys) -> None:
    code, _, stderr = run(capsys, "derive")
    assert code == 2
    assert "NET" in stderr


def test_model_errors_are_reported_without_a_traceback(engine, capsys, out: Path) -> None:
    for argv in (["derive", "broken"], ["generate", "broken", "--out", str(out)], ["list"]):
        code, _, stderr = run(capsys, *argv)
        assert code == 2, argv
        assert stderr == "chainrule: error: quantity 'a' is defined twice\n"
    assert not out.exists()


def test_a_failed_write_changes_nothing(engine, capsys, out: Path) -> None:
    (out / "toy2/toy2.tex").mkdir(parents=True)  # a folder where a file must go
    code, stdout, stderr = run(capsys, "generate", "toy", "toy2", "--out", str(out))
    assert code == 1
    assert stdout == ""
    assert stderr.startswith("chainrule: error: could not write")
    assert not (out / "toy").exists()


def test_help_is_fast_because_it_imports_no_engine() -> None:
    script = (
        "import sys\n"
        "from chainrule.codegen.app.cli import main\n"
        "assert main(['--help']) == 0\n"
        "heavy = sorted(m for m in ('sympy', 'symbolic', 'jinja2') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: chainrule" in result.stdout
    assert "generate" in result.stdout


def test_real_builtins_are_listed(capsys) -> None:
    try:
        from chainrule.symbolic.networks import BUILTINS
    except ImportError as exc:
        pytest.skip(f"the engine's built-in networks are not importable yet: {exc}")
    code, stdout, _ = run(capsys, "list")
    assert code == 0
    assert [line.split()[0] for line in stdout.splitlines()] == list(BUILTINS)


@pytest.mark.parametrize("command", ["generate", "check"])
def test_a_model_the_kernels_cannot_take_is_an_error_not_a_traceback(
        command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """No input: nothing tells the kernels the batch size. ``generate`` and ``check`` refuse
    it alike, with exit status 2 and the reason."""
    spec = tmp_path / "noinput.toml"
    spec.write_text("\n".join([
        'name = "noinput"', 'sizes = ["K"]',
        "[indices]", 'k = "K"', 'k_ = "K"',
        "[quantities]",
        'z = { role = "target", shape = ["K"] }', 'b = { role = "parameter", shape = ["K"] }',
        'y = { role = "intermediate", shape = ["K"] }',
        "[equations]",
        'forward = ["y[k] = exp(b[k]) / sum(exp(b[k_]), k_)"]',
        'loss = "-sum(z[k] * log(y[k]), k)"']))
    out = tmp_path / "out"
    extra = ["--out", str(out)] if command == "generate" else []
    code = main([command, "--model", str(spec), *extra])
    assert code == 2
    captured = capsys.readouterr()
    assert "model 'noinput': the kernels need at least one input" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists()
