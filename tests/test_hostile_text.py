"""Hostile user text (issue 11): a spec's title, description and file name reach the
headers of the generated ``.py``, ``.c`` and ``.h`` (and the ``.tex``) escaped, so that
nothing in them runs and the text is still there to read.

The attacks try to close each language's docstring or comment and run a command that
creates a marker file ``pwned`` in the working directory; every test runs in a
temporary one and checks the marker is never made. The escaping functions themselves
(``codegen/escape.py``) are checked against many nasty strings at once: Python's own
parser must give back the text, and one C file holding them all must compile with
``-Wall -Wextra -Werror -pedantic``.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from chainrule import codegen
from chainrule.codegen import escape
from chainrule.codegen.app.cli import main
from chainrule.codegen.artifacts import render
from chainrule.codegen.backends.latex.backend import tex_escape
from chainrule.codegen.writer import write_atomically
from chainrule.symbolic.spec import load_spec, source_of
from tests.test_spec import TINY

MARKER = "pwned"
PYTHON_ATTACK = '"""; __import__("os").system("touch pwned"); """'
C_ATTACK = ('*/ __attribute__((constructor)) static void pwn(void) { '
            'extern int system(const char *); system("touch pwned"); } /*')
TEX_ATTACK = "}\\immediate\\write18{touch pwned}\\iffalse{"
ATTACKS = {"python": PYTHON_ATTACK, "c": C_ATTACK, "tex": TEX_ATTACK}
# a file name holds no '/' (so no "*/" and no "??/"), but line breaks, backslashes, '*'
FILE_NAME_ATTACKS = {
    "python": 'x"""; __import__("os").system("touch pwned"); """x.toml',
    "c": "x*\\\n__attribute__((constructor)) void pwn(void);\n*??=\\.toml",
    "tex": "x}\\immediate\\write18{touch pwned}\\iffalse{.toml",
}
# more ways out of a docstring or comment, and characters no source file should hold
NASTY = [
    "", '"', '""', '"""', '""""""', 'a"', '\\', 'a\\', '\\"""', '\\\\"""', "'''", "x'",
    "\\N{BULLET}", "\\x41 \\u0041", "\\\n", "line\nbreak", "cr\rlf\r\n", "tab\there", "nul\0",
    "\x0c\x0b\x1b[31m", "\u2028\u2029\x85", "bidi \u202eevil\u202c \u2066x\u2069", "\ud800",
    "*/", "/*", "/*/", "*/*", "**//", "/", "*", "??/", "???/", "??=??(??)??'??<??!??>??-",
    "*??/\n/", "//", "#include <stdio.h>", "é∂Σ中文 🙂", PYTHON_ATTACK, C_ATTACK, TEX_ATTACK,
    *FILE_NAME_ATTACKS.values(),
]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a fresh folder with a private C cache; the marker must never appear."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    yield tmp_path
    assert not (tmp_path / MARKER).exists(), "the attack ran"


def compiler() -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    return cc


def strict_compile(cc: str, source: Path) -> None:
    done = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
                           "-fsyntax-only", source.name], cwd=source.parent,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- the escaping functions ------------------------------------------------------------


@pytest.mark.parametrize("text", NASTY)
def test_python_docstring_gives_back_the_text(text: str) -> None:
    body = escape.python_docstring(text)
    assert "\n" not in body and "\r" not in body and "\0" not in body
    for before, after in (("", ""), ("Title: ", " (net): more")):
        module = f'"""{before}{body}{after}\n\nGenerated."""\nX = 1\n'
        tree = ast.parse(module)
        assert ast.get_docstring(tree, clean=False) == f"{before}{text}{after}\n\nGenerated."
        assert [type(node).__name__ for node in tree.body] == ["Expr", "Assign"]


@pytest.mark.parametrize("text", NASTY)
def test_python_string_gives_back_the_text(text: str) -> None:
    literal = escape.python_string(text)
    assert ast.literal_eval(literal) == text
    assert len(ast.parse(f"x = {literal}\n").body) == 1


def test_c_comments_and_strings_compile_strictly(tmp_path: Path) -> None:
    cc = compiler()
    lines = []
    for n, text in enumerate(NASTY):
        comment = escape.c_comment(text)
        assert "\n" not in comment and "*/" not in comment and "/*" not in comment
        lines += [f"/* {comment} */", f"/*{comment}*/", f"int x{n}; /* ({comment}): */"]
    strings = [text for text in NASTY if "\ud800" not in text]
    lines.append("#include <stdio.h>")
    lines.append("static const char *const texts[] = {"
                 + ", ".join(escape.c_string(t) for t in strings) + "};")
    lines.append("int main(void) { for (unsigned i = 0; i < sizeof texts / sizeof *texts; i++)"
                 " { fputs(texts[i], stdout); putchar(0); } return 0; }")
    source = tmp_path / "comments.c"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    strict_compile(cc, source)
    done = subprocess.run([cc, "-std=c99", "-o", str(tmp_path / "comments"), str(source)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    printed = subprocess.run([str(tmp_path / "comments")], capture_output=True,
                             check=True).stdout
    # C strings stop at a NUL: compare what comes before one
    assert printed.split(b"\0")[:-1] == [t.encode().split(b"\0")[0] for t in strings]


def test_c_comment_stays_readable() -> None:
    assert escape.c_comment("Long short-term memory (no peepholes)") == \
        "Long short-term memory (no peepholes)"
    assert escape.c_comment("a */ b /* c") == "a * / b / * c"
    assert escape.c_comment("two\nlines") == "two lines"
    assert escape.c_comment("what??/") == "what?\\?/"
    assert escape.c_comment("nul\0") == "nul<U+0000>"


# --- every field into every backend ----------------------------------------------------


def spec_text(title: str = "Tiny", description: str = "") -> str:
    # JSON strings are TOML basic strings: every character escaped the same way
    head = f"title = {json.dumps(title)}\ndescription = {json.dumps(description)}\n"
    return TINY.replace('name = "tiny"\n', f'name = "tiny"\n{head}')


def generate(tmp_path: Path, text: str, file_name: str = "tiny.toml") -> tuple[Path, Path]:
    spec = tmp_path / "specs" / file_name
    spec.parent.mkdir(exist_ok=True)
    spec.write_text(text, encoding="utf-8")
    folder = tmp_path / "out"
    write_atomically(folder, render(load_spec(spec), source=source_of(spec)))
    return spec, folder


def check_files(folder: Path, title: str, source: str, description: str, cc: str | None
                ) -> None:
    python = (folder / "tiny.py").read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(python), clean=False)
    assert docstring is not None
    assert docstring.startswith(f"{title} (tiny): loss, gradients and predictions")
    assert f"Generated by chainrule from {source}; do not edit by hand." in docstring
    for name in ("tiny.c", "tiny.h"):
        text = (folder / name).read_text(encoding="utf-8")
        assert text.startswith(f"/* {escape.c_comment(title)} (tiny):")
        assert f"Generated by chainrule from {escape.c_comment(source)};" in text
    tex = (folder / "tiny.tex").read_text(encoding="utf-8")
    assert tex_escape(title) in tex
    if description:
        assert tex_escape(description) in tex
    assert "\\write18" not in tex and "\\immediate" not in tex
    if cc is not None:
        strict_compile(cc, folder / "tiny.c")
    module = codegen.load(folder)
    assert module.SIZES == ("I", "H", "K")


@pytest.mark.parametrize("language", ATTACKS)
@pytest.mark.parametrize("field", ["title", "description", "file name"])
def test_attack_in_every_field(tmp_path: Path, field: str, language: str) -> None:
    cc = shutil.which("cc")
    title, description, file_name = "Tiny", "", "tiny.toml"
    if field == "title":
        title = ATTACKS[language]
    elif field == "description":
        description = ATTACKS[language]
    else:
        file_name = FILE_NAME_ATTACKS[language]
    spec, folder = generate(tmp_path, spec_text(title, description), file_name)
    check_files(folder, title, source_of(spec), description, cc)


def test_check_command_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``chainrule check`` loads both kernels at once: the NumPy module is executed and the
    C library is loaded (where a constructor would run), with every attack at once."""
    compiler()
    title = " ".join(ATTACKS.values()) + " ??/\nnext line"
    spec = tmp_path / FILE_NAME_ATTACKS["python"]
    spec.write_text(spec_text(title, C_ATTACK + PYTHON_ATTACK), encoding="utf-8")
    assert main(["check", "--model", str(spec)]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "ok: every gradient" in out and "c" in out.split("\n")[1]
