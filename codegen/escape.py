"""Escaping user text into generated code: one function per target language.

A model's title, the name of the spec file it came from and anything else a user
wrote reach the headers of ``<net>.py``, ``<net>.c`` and ``<net>.h``. Each
backend passes such a field through the function here for its language, in the
context it fills (templates hold layout only), so that no text can close the
docstring or comment it sits in and run as code:

- :func:`python_docstring` for the body of a ``\"\"\"...\"\"\"`` docstring, and
  :func:`python_string` for a complete string literal: the parsed value is
  exactly the text;
- :func:`c_comment` for text inside a ``/* ... */`` block comment: readable,
  on one line, and warning-free under ``-Wall -Wextra -Werror -pedantic``;
  :func:`c_string` for a complete C string literal (a ``#line`` file name), and
  :func:`c_bytes` for text too long for one (a ``unsigned char`` array's initializer).

TeX has its own, :func:`codegen.latex_backend.tex_escape`.
"""

from __future__ import annotations

import re

__all__ = ["c_bytes", "c_comment", "c_string", "python_docstring", "python_string"]

_PYTHON_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _python_char(char: str) -> str:
    if char in _PYTHON_ESCAPES:
        return _PYTHON_ESCAPES[char]
    if char == " " or char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _python_body(text: str) -> str:
    # Non-printable characters (controls, line and paragraph separators, bidi
    # overrides, lone surrogates) become escapes: the source stays one line of
    # visible characters, and a NUL or a CR cannot reach the tokenizer.
    return "".join(_python_char(char) for char in text)


def python_docstring(text: str) -> str:
    """``text`` as the inside of a triple-double-quoted (not raw) docstring whose value is
    ``text``.

    Backslashes and non-printable characters are escaped, and so is every ``"``
    that is followed by another or ends the text, so no run of three quotes, and
    no quote beside the closing ones, can end the string early.
    """
    return re.sub(r'"(?="|\Z)', r'\\"', _python_body(text))


def python_string(text: str) -> str:
    """``text`` as a complete double-quoted Python string literal whose value is ``text``."""
    return '"' + _python_body(text).replace('"', '\\"') + '"'


# Whitespace that would break the one-line layout: shown as a space.
_C_SPACES = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
# Trigraphs are on under -std=c99: "??/" is a backslash, and "??/" before a line
# break splices lines (-Wtrigraphs warns even in comments). A backslash between the
# question marks, as in C strings, breaks every one.
_TRIGRAPH = re.compile(r"\?(?=\?[=(/)'<!>-])")
# "/*" inside a comment is a -Wcomment warning, "*/" ends it: keep '/' and '*' apart.
_COMMENT_DELIMITER = re.compile(r"(?<=/)(?=\*)|(?<=\*)(?=/)")


def _c_char(char: str) -> str:
    if char in _C_SPACES:
        return " "
    if char == " " or char.isprintable():
        return char
    return f"<U+{ord(char):04X}>"


def c_comment(text: str) -> str:
    """``text`` made safe inside a C block comment: one line, readable, unable to end it.

    Line breaks and other whitespace controls become spaces; other non-printable
    characters (NUL, bidi overrides, lone surrogates) are shown as ``<U+XXXX>``;
    ``/`` and ``*`` never touch (``*/`` → ``* /``); trigraphs are broken
    (``??/`` → ``?\\?/``). A leading ``/`` and a trailing ``*`` or ``\\`` get a
    space, so the result is safe whatever the template puts around it.
    """
    flat = "".join(_c_char(char) for char in text)
    flat = _COMMENT_DELIMITER.sub(" ", _TRIGRAPH.sub("?\\\\", flat))
    if flat.startswith("/"):
        flat = " " + flat
    if flat.endswith(("*", "\\")):
        flat += " "
    return flat


def c_string(text: str) -> str:
    """``text`` as a complete C string literal of its UTF-8 bytes.

    Printable ASCII stays as it is, except ``"``, ``\\`` and ``?`` (escaped: no
    trigraph can form); every other byte is an octal escape.
    """
    pieces = []
    for byte in text.encode("utf-8", errors="surrogateescape"):
        char = chr(byte)
        if char in '"\\?':
            pieces.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            pieces.append(char)
        else:
            pieces.append(f"\\{byte:03o}")
    return '"' + "".join(pieces) + '"'


def c_bytes(text: str) -> str:
    """``text`` as the initializer of a C ``unsigned char`` array: its UTF-8 bytes as numbers,
    then 0, twenty to a line (for text longer than the 4095 characters C99 promises a string
    literal)."""
    values = [str(byte) for byte in text.encode("utf-8", errors="surrogateescape")] + ["0"]
    lines = [", ".join(values[n:n + 20]) for n in range(0, len(values), 20)]
    return ",\n        ".join(lines)
