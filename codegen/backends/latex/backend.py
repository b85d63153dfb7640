"""The LaTeX backend: a Derivation → the notes ``generated/<net>/<net>.tex``.

Role in DESIGN.md's picture: the ``latex`` branch, Derivation → text. Two documents
come from one derivation: the notes a student reads (``detail="short"``, the default:
``teaching.py`` fills ``templates/notes.tex.j2``) and the full mechanical trace of every
recorded step (``detail="full"``: ``trace.py`` fills ``templates/trace.tex.j2``). Both
print with :class:`~codegen.backends.latex.printer.NotesLatexPrinter` in one notation
(``notation.py``); :func:`render_book` puts several networks into one document.
"""

from __future__ import annotations

from collections.abc import Iterable

from chainrule.codegen.backends.latex.prose import prose
from chainrule.codegen.backends.latex.teaching import teaching_context
from chainrule.codegen.backends.latex.trace import (
    LINE_WIDTH,
    PREAMBLE,
    TRACE,
    preamble,
    tex_escape,
    trace_context,
)
from chainrule.codegen.backends.latex.words import strings
from chainrule.codegen.templating import render
from chainrule.symbolic import Derivation

TEMPLATE = "latex/notes.tex.j2"
BOOK = "latex/book.tex.j2"
#: The documents ``detail`` chooses between: template and the function that fills it.
DETAILS = {"short": (TEMPLATE, teaching_context), "full": (TRACE, trace_context)}


def _details(detail: str):
    if detail not in DETAILS:
        raise ValueError(f"unknown detail {detail!r}; choose one of {', '.join(DETAILS)}")
    return DETAILS[detail]


def render_tex(derivation: Derivation, lang: str = "en", detail: str = "short") -> str:
    """The complete, standalone LaTeX notes of ``derivation`` (deterministic: no dates).

    ``lang`` is ``"en"`` (for pdflatex) or ``"zh"`` (for xelatex with ctex); ``detail``
    is ``"short"`` (the notes) or ``"full"`` (every recorded step).
    """
    template, fill = _details(detail)
    return render(template, fill(derivation, lang))


def tex_context(derivation: Derivation, lang: str = "en", *, standalone: bool = True,
                detail: str = "short") -> dict[str, object]:
    """What ``render_tex`` fills its template with: every expression already printed.

    With ``standalone=False`` the notes are one part of :func:`render_book`: no
    preamble, and every label prefixed with the model's name so parts do not clash.
    """
    return _details(detail)[1](derivation, lang, standalone=standalone)


def render_book(derivations: Iterable[Derivation], lang: str = "en",
                detail: str = "short") -> str:
    """The notes of several derivations as one document: a title, a table of contents and
    one part per network."""
    derivations = list(derivations)
    template, fill = _details(detail)
    s = strings(lang)
    return render(BOOK, {
        "model_names": ", ".join(d.model.name for d in derivations),
        "preamble": preamble(lang),
        "title": s["book_title"],
        "author": s["author"],
        "intro": prose(lang)["book_intro"],
        "parts": [render(template, fill(d, lang, standalone=False)).strip("\n")
                  for d in derivations],
    })


__all__ = ["BOOK", "DETAILS", "LINE_WIDTH", "PREAMBLE", "TEMPLATE", "TRACE", "preamble",
           "render_book", "render_tex", "tex_context", "tex_escape"]


class NotesBackend:
    """The notes in the registry (``codegen/registry.py``): ``<net>.tex`` from the
    derivation itself; nothing to load."""

    name = "latex"

    def render(self, derivation: Derivation, plan: object) -> dict[str, str]:
        return {f"{derivation.model.name}.tex": render_tex(derivation)}


BACKEND = NotesBackend()
