"""Printable notes: the LaTeX notes of the networks, built into PDFs with latexmk.

Role in DESIGN.md's picture: after the ``latex`` branch, ``.tex`` → ``.pdf``. For
each network it writes ``<out>/<net>.tex`` (the standalone notes of
:func:`~codegen.backends.latex.backend.render_tex`, the notes or with ``detail="full"``
the full trace) and, for several of them together (all, or the ones ``book``
names), ``<out>/notes.tex`` (:func:`~codegen.latex_backend.render_book`: a table of
contents, one part per network); then latexmk builds every PDF, with pdflatex
for English and xelatex (ctex, Noto CJK fonts) for Chinese, several at once.

TeX is a real dependency: :func:`missing_tex` says which Debian packages are
missing for a language (by the programs and TeX files they provide), and
:func:`build` writes the ``.tex`` files even then, building nothing.

TeX runs sandboxed, because a model's ``latex`` texts are TeX (checked against a
whitelist by ``symbolic.latex_text``; this is the second wall): latexmk reads
no rc file (``-norc``: a ``latexmkrc`` in the output folder is Perl code), the
engine gets ``-no-shell-escape`` and kpathsea's ``shell_escape=f`` (no
``\\write18``), and ``openin_any=p`` / ``openout_any=p`` ("paranoid") so that
``\\input``, ``\\openin`` and ``\\openout`` open no dot file, nothing in a parent
folder and no absolute path: TeX reads its own installed files and what lies in
the build folder (its working directory), and writes only there.
``TEXMFOUTPUT``, under which paranoid mode would allow absolute paths, is
removed from TeX's environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from chainrule.codegen.backends.latex.backend import render_book, render_tex
from chainrule.codegen.backends.latex.example import Example
from chainrule.codegen.backends.latex.words import LANGUAGES
from chainrule.codegen.writer import write_atomically
from chainrule.symbolic import Derivation

#: The engine latexmk runs per language.
ENGINES = {"en": "pdflatex", "zh": "xelatex"}
#: Name of the combined document (``notes.tex``, ``notes.pdf``).
BOOK_NAME = "notes"
#: Seconds one latexmk run may take.
TIMEOUT = 300
#: kpathsea's settings for every TeX run (see the module): no shell, files of the build
#: folder and of the TeX installation only.
SANDBOX = {"openin_any": "p", "openout_any": "p", "shell_escape": "f"}

#: What each Debian package provides that the notes need: programs, TeX files, fonts.
_PROVIDES: dict[str, dict[str, tuple[str, ...]]] = {
    "latexmk": {"programs": ("latexmk",)},
    "texlive-latex-base": {"programs": ("pdflatex",), "files": ("article.cls", "amsmath.sty")},
    "texlive-latex-recommended": {"files": ("fancyvrb.sty",)},
    "texlive-latex-extra": {"files": ("tocbibind.sty",)},
    "texlive-pictures": {"files": ("tikz.sty",)},
    "texlive-fonts-recommended": {"files": ("ptmr8t.tfm",)},
    "lmodern": {"files": ("lmodern.sty",)},
    "texlive-xetex": {"programs": ("xelatex",)},
    "texlive-lang-chinese": {"files": ("ctexart.cls",)},
    "fonts-noto-cjk": {"fonts": ("Noto Serif CJK SC",)},
}
#: The packages each language needs.
PACKAGES = {
    "en": ("texlive-latex-base", "texlive-latex-recommended", "texlive-latex-extra",
           "texlive-pictures", "texlive-fonts-recommended", "lmodern", "latexmk"),
    "zh": ("texlive-latex-base", "texlive-latex-recommended", "texlive-latex-extra",
           "texlive-pictures", "texlive-fonts-recommended", "lmodern", "latexmk",
           "texlive-xetex", "texlive-lang-chinese", "fonts-noto-cjk"),
}


def _has_file(name: str) -> bool:
    kpsewhich = shutil.which("kpsewhich")
    if kpsewhich is None:
        return False
    run = subprocess.run([kpsewhich, name], capture_output=True, text=True, check=False)
    return run.returncode == 0 and bool(run.stdout.strip())


def _has_font(family: str) -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    run = subprocess.run([fc_list, family], capture_output=True, text=True, check=False)
    return bool(run.stdout.strip())


def missing_tex(lang: str) -> list[str]:
    """The Debian packages the notes in ``lang`` need and that are not installed."""
    missing = []
    for package in PACKAGES[lang]:
        provides = _PROVIDES[package]
        if (not all(shutil.which(p) for p in provides.get("programs", ()))
                or not all(_has_file(f) for f in provides.get("files", ()))
                or not all(_has_font(f) for f in provides.get("fonts", ()))):
            missing.append(package)
    return missing


def install_hint(packages: Sequence[str]) -> str:
    """The command that installs ``packages`` on Debian."""
    return "apt-get install -y --no-install-recommends " + " ".join(packages)


@dataclass
class Document:
    """One notes document: its source, and after a build its PDF and what the log says."""

    tex: Path
    pdf: Path | None = None
    ok: bool = False
    overfull: list[str] = field(default_factory=list)
    error: str = ""


def book_of(derivations: Sequence[Derivation],
            book: bool | Collection[str] = True) -> list[Derivation]:
    """The derivations the combined book holds: all of them (``book=True``), none
    (``False``), or those whose model is named in ``book``, in the order given; the book is
    written only when it holds more than one."""
    if book is True:
        chosen = list(derivations)
    elif book is False:
        chosen = []
    else:
        if isinstance(book, str):
            raise TypeError("book: give a collection of network names, not one string")
        chosen = [d for d in derivations if d.model.name in book]
    return chosen if len(chosen) > 1 else []


def write_sources(derivations: Sequence[Derivation], lang: str, out: Path,
                  *, book: bool | Collection[str] = True, detail: str = "short",
                  examples: Mapping[str, Example | None] | None = None) -> list[Document]:
    """Write ``<net>.tex`` for each derivation and the combined ``notes.tex`` of those
    :func:`book_of` chooses by ``book`` into ``out``; ``detail`` is ``"short"`` (the notes)
    or ``"full"`` (every recorded step); ``examples`` holds each network's worked example
    by name (``codegen.worked_example.run_examples``), none printed where absent."""
    examples = examples or {}
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    out.mkdir(parents=True, exist_ok=True)
    texts = {f"{d.model.name}.tex": render_tex(d, lang, detail,
                                               example=examples.get(d.model.name))
             for d in derivations}
    chapters = book_of(derivations, book)
    if chapters:
        texts[f"{BOOK_NAME}.tex"] = render_book(chapters, lang, detail, examples=examples)
    # only what changed is rewritten (latexmk rebuilds by content), all of it at once
    changed = {name: text for name, text in texts.items()
               if not (out / name).is_file()
               or (out / name).read_text(encoding="utf-8") != text}
    if changed:
        write_atomically(out, changed)
    return [Document(out / name) for name in texts]


def compile_document(document: Document, lang: str) -> Document:
    """Build ``document``'s PDF with latexmk; record errors and overfull boxes from the log."""
    engine = ENGINES[lang]
    tex = document.tex
    command = ["latexmk", "-norc", f"-{'pdf' if engine == 'pdflatex' else 'xelatex'}",
               "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
               "-file-line-error", "-silent", tex.name]
    run = subprocess.run(command, cwd=tex.parent, capture_output=True, text=True,
                         timeout=TIMEOUT, check=False, env=tex_environment())
    log = tex.with_suffix(".log")
    log_text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    document.overfull = overfull_boxes(log_text)
    pdf = tex.with_suffix(".pdf")
    document.ok = run.returncode == 0 and pdf.exists()
    document.pdf = pdf if pdf.exists() else None
    if not document.ok:
        errors = [line for line in log_text.splitlines() if line.startswith(("!", "./"))]
        document.error = "\n".join(errors[:10]) or (run.stdout + run.stderr)[-2000:]
    return document


def tex_environment() -> dict[str, str]:
    """The environment of a TeX run: this process's, sandboxed (see the module), reproducible."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("TEXMFOUTPUT", *SANDBOX)}
    return {**env, **SANDBOX, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}


def overfull_boxes(log_text: str, tolerance_pt: float = 1.0) -> list[str]:
    """The log's ``Overfull \\hbox`` warnings wider than ``tolerance_pt``."""
    return [match.group(0) for match in re.finditer(
        r"Overfull \\[hv]box \((\d+(?:\.\d+)?)pt too \w+\)[^\n]*", log_text)
        if float(match.group(1)) > tolerance_pt]


def build(derivations: Sequence[Derivation], lang: str, out: Path,
          *, jobs: int | None = None, detail: str = "short",
          book: bool | Collection[str] = True,
          examples: Mapping[str, Example | None] | None = None) -> list[Document]:
    """Write the sources (``book`` and ``examples`` as in :func:`write_sources`) and build
    every PDF (several at once); TeX must be installed."""
    documents = write_sources(derivations, lang, out, book=book, detail=detail,
                              examples=examples)
    workers = jobs or min(len(documents), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda d: compile_document(d, lang), documents))


__all__ = ["BOOK_NAME", "ENGINES", "PACKAGES", "SANDBOX", "Document", "book_of", "build",
           "compile_document", "install_hint", "missing_tex", "overfull_boxes",
           "tex_environment", "write_sources"]
