"""The LaTeX backend: a Derivation → the notes ``generated/<net>/<net>.tex``.

Role in DESIGN.md's picture: the ``latex`` branch, Derivation → text. Two documents
come from one derivation: the notes a student reads (``detail="short"``, the default:
``teaching.py`` fills ``templates/notes.tex.j2``) and the full mechanical trace of every
recorded step (``detail="full"``: ``trace.py`` fills ``templates/trace.tex.j2``). Both
print with :class:`~codegen.backends.latex.printer.NotesLatexPrinter` in one notation
(``notation.py``); :func:`render_book` puts several networks into one document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chainrule.codegen.backends.latex.example import Example
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


def _fill(detail: str, derivation: Derivation, lang: str, example: Example | None,
          **options: object) -> dict[str, object]:
    """The context of ``detail``'s template; only the notes print a worked example."""
    fill = _details(detail)[1]
    if detail == "short":
        return fill(derivation, lang, example=example, **options)
    return fill(derivation, lang, **options)


def render_tex(derivation: Derivation, lang: str = "en", detail: str = "short", *,
               example: Example | None = None) -> str:
    """The complete, standalone LaTeX notes of ``derivation`` (deterministic: no dates).

    ``lang`` is ``"en"`` (for pdflatex) or ``"zh"`` (for xelatex with ctex); ``detail``
    is ``"short"`` (the notes) or ``"full"`` (every recorded step). ``example`` is the
    worked example the notes print (``codegen.worked_example.run_example``; computed by
    the caller, since this backend never runs another), none when it is None.
    """
    template, _ = _details(detail)
    return render(template, _fill(detail, derivation, lang, example))


def tex_context(derivation: Derivation, lang: str = "en", *, standalone: bool = True,
                detail: str = "short", example: Example | None = None) -> dict[str, object]:
    """What ``render_tex`` fills its template with: every expression already printed.

    With ``standalone=False`` the notes are one part of :func:`render_book`: no
    preamble, and every label prefixed with the model's name so parts do not clash.
    """
    return _fill(detail, derivation, lang, example, standalone=standalone)


def render_book(derivations: Iterable[Derivation], lang: str = "en",
                detail: str = "short", *,
                examples: Mapping[str, Example | None] | None = None) -> str:
    """The notes of several derivations as one document: a title, a table of contents and
    one part per network; ``examples`` the worked examples by model name (none for a
    network it does not name)."""
    derivations = list(derivations)
    template, _ = _details(detail)
    examples = examples or {}
    s = strings(lang)
    return render(BOOK, {
        "model_names": ", ".join(d.model.name for d in derivations),
        "preamble": preamble(lang),
        "title": s["book_title"],
        "author": s["author"],
        "intro": prose(lang)["book_intro"],
        "parts": [render(template, _fill(detail, d, lang, examples.get(d.model.name),
                                         standalone=False)).strip("\n")
                  for d in derivations],
    })


__all__ = ["BOOK", "DETAILS", "LINE_WIDTH", "PREAMBLE", "TEMPLATE", "TRACE", "Example",
           "preamble", "render_book", "render_tex", "tex_context", "tex_escape"]


class NotesBackend:
    """The notes in the registry (``codegen/registry.py``): ``<net>.tex`` from the
    derivation itself, with the worked example the caller passes; nothing to load."""

    name = "latex"

    def render(self, derivation: Derivation, plan: object, *,
               example: Example | None = None) -> dict[str, str]:
        return {f"{derivation.model.name}.tex": render_tex(derivation, example=example)}


BACKEND = NotesBackend()
