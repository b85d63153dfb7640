"""Hostile spec files (issue 11): a ``latex`` field cannot make TeX read or write files.

Two walls. A spec's ``latex`` and ``adjoint`` texts may hold only the TeX of a
math symbol (``symbolic.latex_text``): ``latex = 'w\\protect\\input{/some/file}'``
printed the file into the PDF, ``\\immediate\\openout`` wrote one into ``--out``.
And TeX itself runs sandboxed (``codegen.notes``): with the whitelist bypassed, a
crafted ``.tex`` built the way the notes are built reads no file outside its
folder, writes none outside it and runs no shell command.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

from chainrule.codegen.app import cli
from chainrule.codegen.backends.latex import build as notes
from chainrule.codegen.backends.latex.build import Document, compile_document
from chainrule.symbolic import Model, ModelError, derive
from chainrule.symbolic.latex_text import MATH_COMMANDS, MAX_LENGTH, LatexTextError, check_latex
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import SpecError, load_spec, loads_spec
from tests.test_spec import TINY

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SECRET = "TOPSECRETCONTENTS"
#: the file to steal: TeX that, once read, puts the secret into the log and the page
SECRET_TEX = f"\\typeout{{{SECRET}}}{SECRET}\n"

needs_tex = pytest.mark.skipif(bool(notes.missing_tex("en")), reason="TeX is not installed")


# --- the whitelist ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "w^{(xh)}", r"\beta^{(y)}", r"\delta_k", r"\epsilon_s", "h'", "b^{0}", r"a_{\iota}",
    r"w^{(c\omega)}", r"\hat{a}", r"\tilde{x}_{t}", r"\mathrm{W}_{\mathbf{1}}", r"x^{\prime}",
    r"\bar{h}\,", r"\mathcal{L}", r"\vec{v}^{\top}", r"\{a\}", r"y_{k'}^{(2)}",
])
def test_the_tex_of_symbols_passes(text: str) -> None:
    assert check_latex(text) == text


def test_every_built_in_network_and_example_passes() -> None:
    models = [make() for make in BUILTINS.values()]
    models += [load_spec(path) for path in sorted(EXAMPLES.glob("*.toml"))]
    for model in models:
        for quantity in model.quantities.values():
            check_latex(quantity.latex)
            if quantity.adjoint_latex:
                check_latex(quantity.adjoint_latex)
        for latex in model.index_latex.values():
            check_latex(latex)


@pytest.mark.parametrize(("text", "why"), [
    (r"w\protect\input{/etc/passwd}", r"\protect is not allowed"),  # the attack
    (r"w\input{/etc/passwd}", r"\input is not allowed"),
    (r"\immediate\openout5=x.tex", r"\immediate is not allowed"),  # the other attack
    (r"\write18{touch pwned}", r"\write is not allowed"),
    (r"\csname input\endcsname{x}", r"\csname is not allowed"),
    (r"\catcode`\^^M=13", "^^ notation"),
    ("w^^5cinput{/etc/passwd}", "^^ notation"),  # ^^5c is a backslash
    (r"\text{\input{x}}", r"\text is not allowed"),
    (r"\def\x{y}", r"\def is not allowed"),
    (r"\newcommand{\x}{y}", r"\newcommand is not allowed"),
    (r"\openin1=x", r"\openin is not allowed"),
    (r"\alphax", r"\alphax is not allowed"),
    (r"\@input{x}", r"control symbol \@"),
    ("x\\", "a backslash at the end"),
    (r"\\", r"control symbol \\"),
    ("w % comment", "a comment in TeX"),
    ("#1", "a macro parameter"),
    ("$x$", "a switch of math mode"),
    ("a & b", "an alignment tab"),
    ("a~b", "an active character"),
    ("w}", "closes a brace that was never opened"),
    ("}{", "closes a brace that was never opened"),
    ("w^{(xh)", "never closed"),
    ("α", "the character 'α' is not allowed"),
    ("a\nb", "U+000A"),
    ("a\x00b", "U+0000"),
    ("", "is empty"),
    ("x" * (MAX_LENGTH + 1), f"at most {MAX_LENGTH}"),
])
def test_anything_else_is_refused(text: str, why: str) -> None:
    with pytest.raises(LatexTextError) as error:
        check_latex(text, "quantities.W.latex")
    assert str(error.value).startswith("quantities.W.latex"), error.value
    assert why in str(error.value), error.value


def test_the_whitelist_is_of_control_sequences_that_read_and_write_nothing() -> None:
    for dangerous in ("input", "include", "openin", "openout", "write", "read", "immediate",
                      "special", "csname", "catcode", "def", "let", "expandafter", "protect",
                      "text", "verb", "url", "href", "jobname", "endinput", "usepackage"):
        assert dangerous not in MATH_COMMANDS


@pytest.mark.parametrize(("field", "entry"), [
    ("quantities.W.latex",
     r"""W = { role = "parameter", shape = ["I", "H"], latex = 'w\protect\input{/etc/passwd}' }"""),
    ("quantities.a.adjoint",
     r"""a = { role = "intermediate", shape = ["H"], adjoint = '\immediate\openout5=x.tex' }"""),
    ("indices.k_.latex", r"""k_ = { size = "K", latex = "k'\\input{/etc/passwd}" }"""),
])
def test_a_spec_with_hostile_tex_is_refused(field: str, entry: str) -> None:
    name = entry.split(" = ", 1)[0]
    lines = [entry if line.startswith(f"{name} = ") else line for line in TINY.splitlines()]
    assert entry in lines
    with pytest.raises(SpecError) as error:
        loads_spec("\n".join(lines) + "\n", filename="hostile.toml")
    assert str(error.value).startswith(f"hostile.toml: {field} "), error.value
    assert "is not allowed" in str(error.value)


# --- the sandbox ------------------------------------------------------------------------------


def build(folder: Path, body: str, name: str = "attack") -> Document:
    """``folder/<name>.tex`` (an article with ``body``) built the way the notes are."""
    folder.mkdir(parents=True, exist_ok=True)
    tex = folder / f"{name}.tex"
    tex.write_text("\\documentclass{article}\n\\begin{document}\n" + body
                   + "\nvisible\n\\end{document}\n")
    return compile_document(Document(tex), "en")


def read_everything(folder: Path) -> str:
    """Every file TeX left in ``folder``, as text (the log, the PDF, the aux files)."""
    return "".join(path.read_bytes().decode("latin-1") for path in folder.iterdir()
                   if path.is_file())


@needs_tex
@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_tex_reads_no_file_outside_its_folder(tmp_path: Path, where: str) -> None:
    secret = tmp_path / "secret.tex"
    secret.write_text(SECRET_TEX)
    build_dir = tmp_path / "build"
    name = str(secret) if where == "absolute" else "../secret.tex"
    for body in (f"\\input{{{name}}}", f"\\openin3={name} \\read3 to \\x \\typeout{{\\x}}"):
        document = build(build_dir, body)
        assert SECRET not in read_everything(build_dir), body
        assert not document.ok


@needs_tex
def test_the_read_attack_works_without_the_sandbox(tmp_path: Path, monkeypatch) -> None:
    """The control: the same \\input does read the file when TeX may open any file."""
    secret = tmp_path / "secret.tex"
    secret.write_text(SECRET_TEX)
    monkeypatch.setattr(notes, "SANDBOX", {"openin_any": "a", "openout_any": "p",
                                           "shell_escape": "f"})
    document = build(tmp_path / "build", f"\\input{{{secret}}}")
    assert document.ok
    assert SECRET in (tmp_path / "build" / "attack.log").read_text(errors="replace")


@needs_tex
@pytest.mark.parametrize("where", ["absolute", "parent", "dot file"])
def test_tex_writes_no_file_outside_its_folder(tmp_path: Path, where: str) -> None:
    build_dir = tmp_path / "build"
    target = {"absolute": str(tmp_path / "escaped.tex"), "parent": "../escaped.tex",
              "dot file": ".escaped"}[where]
    build(build_dir, f"\\immediate\\openout5={target}\n\\immediate\\write5{{{SECRET}}}\n"
                     f"\\immediate\\closeout5")
    assert not (tmp_path / "escaped.tex").exists()
    assert not (build_dir / ".escaped").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["build"]


@needs_tex
def test_tex_runs_no_shell_command(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    build(tmp_path / "build", f"\\immediate\\write18{{touch {marker}}}")
    assert not marker.exists()


@needs_tex
def test_latexmk_reads_no_rc_file_in_the_output_folder(tmp_path: Path) -> None:
    """A latexmkrc is Perl code; the notes' latexmk reads none (-norc)."""
    marker = tmp_path / "pwned"
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    (build_dir / "latexmkrc").write_text(f'system("touch {marker}");\n')
    document = build(build_dir, "")
    assert document.ok, document.error
    assert not marker.exists()


def test_the_tex_environment_is_sandboxed(monkeypatch) -> None:
    monkeypatch.setenv("openin_any", "a")
    monkeypatch.setenv("shell_escape", "t")
    monkeypatch.setenv("TEXMFOUTPUT", "/")
    env = notes.tex_environment()
    assert env["openin_any"] == env["openout_any"] == "p"
    assert env["shell_escape"] == "f"
    assert "TEXMFOUTPUT" not in env


@needs_tex
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_notes_still_build_in_the_sandbox(lang: str, tmp_path: Path) -> None:
    if notes.missing_tex(lang):
        pytest.skip(f"TeX for {lang} is not installed")
    [document] = notes.build([derive(BUILTINS["mlp"]())], lang, tmp_path)
    assert document.ok, document.error
    assert document.pdf is not None and document.pdf.stat().st_size > 10_000


# --- the sources ------------------------------------------------------------------------------


def test_write_sources_writes_all_at_once_through_the_atomic_writer(tmp_path: Path,
                                                                    monkeypatch) -> None:
    """Every changed source goes to ``write_atomically`` in one call: a failure leaves none."""
    derivations = [derive(BUILTINS["mlp"]()), derive(BUILTINS["rnn"]())]
    calls: list[tuple[Path, list[str]]] = []

    def failing(out: Path, files: dict[str, str]) -> list[Path]:
        calls.append((out, sorted(files)))
        raise OSError("disk full")

    monkeypatch.setattr(notes, "write_atomically", failing)
    with pytest.raises(OSError):
        notes.write_sources(derivations, "en", tmp_path)
    assert calls == [(tmp_path, ["mlp.tex", "notes.tex", "rnn.tex"])]
    assert list(tmp_path.iterdir()) == []


def test_write_sources_rewrites_only_what_changed(tmp_path: Path, monkeypatch) -> None:
    derivations = [derive(BUILTINS["mlp"]())]
    [document] = notes.write_sources(derivations, "en", tmp_path)
    assert document.tex == tmp_path / "mlp.tex" and document.tex.is_file()
    monkeypatch.setattr(notes, "write_atomically", lambda *a: pytest.fail("rewritten"))
    notes.write_sources(derivations, "en", tmp_path)


def test_the_command_refuses_a_hostile_spec(tmp_path: Path, capsys) -> None:
    hostile = TINY.replace('latex = "w"', "latex = 'w\\protect\\input{/etc/passwd}'")
    assert hostile != TINY
    spec = tmp_path / "hostile.toml"
    spec.write_text(hostile)
    status = cli.main(["notes", "--model", str(spec), "--out", str(tmp_path / "out")])
    assert status == 2
    assert r"\protect is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("declare", ["index", "parameter", "adjoint", "loss"])
def test_the_python_api_refuses_hostile_tex_too(declare: str) -> None:
    attack = r"w\protect\input{/etc/passwd}"
    model = Model("m")
    size = model.size("N")
    with pytest.raises(ModelError, match=r"\\input"):
        if declare == "index":
            model.index("n", size, latex=attack)
        elif declare == "parameter":
            model.parameter("w", [size], latex=attack)
        elif declare == "adjoint":
            model.intermediate("a", [size], adjoint=attack)
        else:
            model.loss(sympy.Integer(0), latex=attack)
