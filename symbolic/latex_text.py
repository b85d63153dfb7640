"""The ``latex`` of a quantity or an index: raw TeX, but only the TeX of a math symbol.

Role in DESIGN.md's picture: models carry how the notes write each name
(``latex = "w^{(xh)}"``, ``adjoint = "\\delta_k"``), and the notes print that
text into the ``.tex`` as it is. TeX is a programming language that reads and
writes files (``\\input``, ``\\openin``, ``\\openout``, ``\\write18``), so a
spec file could otherwise make ``chainrule notes`` print a file of the machine
into the PDF or write one. :func:`check_latex` lets through what a symbol's
name needs and nothing else:

- letters, digits, spaces and the punctuation of math,
  ``^ _ { } ( ) [ ] ' , . ; : + - * / | < > = ! ? @ "``, with balanced braces;
- the control sequences of :data:`MATH_COMMANDS`: Greek letters, accents
  (``\\hat``, ``\\tilde``, ``\\bar`` ...), math fonts (``\\mathrm``, ``\\mathbf``
  ...), a few symbols (``\\prime``, ``\\ell``, ``\\star`` ...) and thin spaces.

Refused are every other control sequence (``\\input``, ``\\protect``, ``\\csname``,
``\\catcode``, ``\\def``, ``\\text``: text mode has no use in a symbol and is a
door to other catcodes), the characters TeX gives a meaning of their own
(``%`` comments out the rest of the line, ``#``, ``$``, ``&``, ``~``, and ``\\``
alone), TeX's ``^^`` notation (``^^5c`` is a backslash, ``^^5cinput`` is
``\\input``), control characters, non-ASCII text and anything longer than
:data:`MAX_LENGTH`. The check is lexical: TeX tokenizes the text the way it
is scanned here, so a sequence that is not on the list can never be formed.
"""

from __future__ import annotations

import re

__all__ = ["MATH_COMMANDS", "MAX_LENGTH", "LatexTextError", "check_latex"]

#: Longer ``latex`` texts are refused: a symbol's name is short.
MAX_LENGTH = 200

_GREEK = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa varkappa "
    "lambda mu nu xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega "
    "varGamma varDelta varTheta varLambda varXi varPi varSigma varUpsilon varPhi varPsi "
    "varOmega"
)
_ACCENTS = ("hat widehat tilde widetilde bar overline underline vec dot ddot breve check acute "
            "grave mathring")
# fonts of LaTeX, amsmath (\boldsymbol, \operatorname) and amssymb (\mathbb, \mathfrak),
# which the notes' preamble loads
_FONTS = "mathrm mathit mathbf mathsf mathtt mathcal mathbb mathfrak boldsymbol operatorname"
_SYMBOLS = ("prime ell imath jmath hbar partial nabla infty star ast circ bullet dagger ddagger "
            "cdot times pm mp odot otimes oplus top bot langle rangle lvert rvert lVert rVert")

#: The control sequences a ``latex`` text may use (without the backslash).
MATH_COMMANDS: frozenset[str] = frozenset(" ".join((_GREEK, _ACCENTS, _FONTS, _SYMBOLS)).split())
#: ``\`` followed by one of these is a control symbol a symbol's name may use:
#: thin, medium, thick and negative spaces, braces and a double bar.
_CONTROL_SYMBOLS = frozenset(",:;!{}|")
#: The characters allowed outside control sequences.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                   " ^_{}()[]',.;:+-*/|<>=!?@\"")
_SPECIAL = {"%": "a comment", "#": "a macro parameter", "$": "a switch of math mode",
            "&": "an alignment tab", "~": "an active character"}
_COMMAND = re.compile(r"\\([A-Za-z]+|.?)", re.DOTALL)


class LatexTextError(ValueError):
    """A ``latex`` text holds TeX that is not the name of a math symbol; the message says what."""


def check_latex(text: object, what: str = "latex") -> str:
    """``text`` when it is a safe math symbol's TeX (see the module); else :class:`LatexTextError`.

    ``what`` names the field in the message, e.g. ``"quantities.W.latex"``.
    """
    if not isinstance(text, str):
        raise LatexTextError(f"{what} must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise LatexTextError(f"{what} is {len(text)} characters long; at most {MAX_LENGTH} "
                             f"are accepted for a symbol's TeX")
    if not text.strip():
        raise LatexTextError(f"{what} is empty; expected the TeX of a symbol such as "
                             f"'w^{{(xh)}}' or '\\delta_k'")
    if "^^" in text:
        raise LatexTextError(f"{what} {text!r} uses TeX's ^^ notation (^^5c is a backslash); "
                             f"write a superscript as ^{{...}}")
    position = 0
    depth = 0
    while position < len(text):
        char = text[position]
        if char == "\\":
            match = _COMMAND.match(text, position)
            assert match is not None  # the pattern matches a lone backslash too
            _check_command(match.group(1), text, what)
            position = match.end()
            continue
        if char in _SPECIAL:
            raise LatexTextError(f"{what} {text!r}: {char!r} is {_SPECIAL[char]} in TeX and is "
                                 f"not allowed in a symbol's TeX")
        if char not in _PLAIN:
            shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
            raise LatexTextError(f"{what} {text!r}: the character {shown} is not allowed; "
                                 f"write letters, digits and math punctuation, and Greek "
                                 f"letters as \\alpha, \\beta, ...")
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise LatexTextError(f"{what} {text!r}: a '}}' closes a brace that was never "
                                     f"opened")
        position += 1
    if depth:
        raise LatexTextError(f"{what} {text!r}: {depth} brace{'s' if depth > 1 else ''} "
                             f"'{{' never closed")
    return text


def _check_command(name: str, text: str, what: str) -> None:
    if len(name) > 1 or name.isalpha():
        if name in MATH_COMMANDS:
            return
        raise LatexTextError(
            f"{what} {text!r}: the control sequence \\{name} is not allowed; a symbol's TeX "
            f"may use Greek letters, accents (\\hat, \\tilde, \\bar, ...), math fonts "
            f"(\\mathrm, \\mathbf, ...) and a few symbols (\\prime, \\ell, \\star, ...)")
    if name in _CONTROL_SYMBOLS:
        return
    shown = "a backslash at the end" if not name else f"the control symbol \\{name!s}"
    raise LatexTextError(f"{what} {text!r}: {shown} is not allowed; allowed are "
                         f"{' '.join(chr(92) + s for s in sorted(_CONTROL_SYMBOLS))}")
