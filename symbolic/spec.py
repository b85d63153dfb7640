"""Spec files: a network written in TOML, built into the same :class:`Model` as the Python API.

Role in DESIGN.md's picture: "user models ... a TOML spec (spec.py) ─> Model".
:func:`load_spec` reads a file with the standard library's :mod:`tomllib`,
checks every key and type, and makes the very calls a built-in network makes
(``Model.size``, ``time``, ``index``, ``input`` ..., ``define``, ``loss``) in the
order the file gives them, so nothing downstream can tell where a model came
from. Equations are parsed by :mod:`symbolic.spec_parser` (``ast`` and a
whitelist; never ``eval``). Every problem is a :class:`SpecError` whose message
starts with the file's name and names the key or the equation at fault.

The format (``examples/rnn.toml`` is the RNN of ``symbolic/networks/rnn.py``)::

    name = "rnn"                                  # an identifier; the files' names
    title = "Recurrent neural network"           # optional
    description = "RNN, tanh hidden layer, ..."  # optional
    sizes = ["I", "H", "K"]
    time = { index = "t", size = "T" }           # optional: t ∈ 1..T, equations read t - 1

    [indices]                                    # unit indices, 0..size-1, in this order
    i = "I"
    j = { size = "H", latex = "h" }

    [quantities]                                 # in declaration order
    x    = { role = "input", shape = ["I"], time = true }
    z    = { role = "target", shape = ["K"], time = true }      # one-hot unless one_hot = false
    W_xh = { role = "parameter", shape = ["I", "H"], latex = "w^{(xh)}" }
    a_h  = { role = "intermediate", shape = ["H"], time = true, latex = "a", adjoint = "\\delta" }
    h0   = { role = "state", of = "h", latex = "b^{0}" }       # the value of h at t = 0

    [equations]
    forward = [
        "a_h[j, t] = sum(W_xh[i, j] * x[i, t], i) + sum(W_hh[j_, j] * h[j_, t - 1], j_) + b_h[j]",
        "h[j, t] = tanh(a_h[j, t])",
    ]
    loss = "-sum(z[k, t] * log(y[k, t]), k, t)"

Limits, so that a hostile file cannot make loading take unbounded time or memory
(each is a :class:`SpecError` naming it): at most :data:`MAX_BYTES` bytes of
file, :data:`MAX_SIZES` sizes, :data:`MAX_INDICES` indices,
:data:`MAX_QUANTITIES` quantities, :data:`MAX_EQUATIONS` forward equations and
:data:`MAX_SPEC_NODES` expression nodes in all the equations and the loss
together; each equation within the parser's own limits (``spec_parser``:
``MAX_LENGTH``, ``MAX_NODES``, ``MAX_NESTING``, ``MAX_NONLINEAR_DEPTH``). The
largest example, ``examples/lstm.toml``, is 4 kB with 32 quantities, 12
equations and 344 nodes. ``latex`` and ``adjoint`` texts are the TeX of a math
symbol only (:func:`symbolic.latex_text.check_latex`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import sympy
from sympy import Expr, Idx, Indexed

from .latex_text import LatexTextError, check_latex
from .model import Model, ModelError
from .spec_parser import (
    SUM,
    NodeBudget,
    SpecError,
    functions,
    parse_equation,
    parse_expression,
)

__all__ = ["MAX_BYTES", "MAX_EQUATIONS", "MAX_INDICES", "MAX_QUANTITIES", "MAX_SIZES",
           "MAX_SPEC_NODES", "ROLES", "SpecError", "load_spec", "loads_spec", "source_of"]

#: The limits of the module's docstring.
MAX_BYTES = 256 * 1024
MAX_SIZES = 32
MAX_INDICES = 64
MAX_QUANTITIES = 256
MAX_EQUATIONS = 128
MAX_SPEC_NODES = 4000

#: role in a spec (the name of the Model method that declares it) → the keys it may have
ROLES: dict[str, tuple[str, ...]] = {
    "input": ("shape", "time", "latex"),
    "target": ("shape", "time", "latex", "one_hot"),
    "parameter": ("shape", "latex"),
    "intermediate": ("shape", "time", "latex", "adjoint"),
    "state": ("of", "latex"),
}
TOP_KEYS = ("name", "title", "description", "sizes", "time", "indices", "quantities", "equations")
REQUIRED = ("name", "sizes", "quantities", "equations")


def load_spec(path: str | Path) -> Model:
    """The validated Model a spec file describes; a :class:`SpecError` naming the file if not."""
    path = Path(path)
    try:
        with path.open("rb") as file:  # never more than the limit, even from /dev/zero
            data = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise SpecError(f"{path}: cannot read the spec file: {error.strerror or error}") from None
    if len(data) > MAX_BYTES:
        raise SpecError(f"{path}: the spec file is larger than {MAX_BYTES} bytes; at most "
                        f"{MAX_BYTES} are accepted")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(f"{path}: the spec file is not UTF-8 text ({error.reason} at byte "
                        f"{error.start})") from None
    return loads_spec(text, filename=str(path))


def loads_spec(text: str, *, filename: str = "<spec>") -> Model:
    """The Model of spec ``text``; ``filename`` starts every error message."""
    if isinstance(text, str) and len(text) > MAX_BYTES:
        raise SpecError(f"{filename}: the spec is longer than {MAX_BYTES} characters; at most "
                        f"{MAX_BYTES} are accepted")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{filename}: not valid TOML: {error}") from None
    return _Reader(filename, table).build()


def source_of(path: str | Path) -> str:
    """How generated files name a spec in their header line (stable wherever it is run from)."""
    return f"the spec file '{Path(path).name}'"


class _Reader:
    """Checks a parsed TOML table and drives the Model API with it."""

    def __init__(self, filename: str, table: dict[str, Any]) -> None:
        self.filename = filename
        self.table = table
        self.model: Model | None = None
        self.budget = NodeBudget(MAX_SPEC_NODES, "the spec's equations and loss")

    def fail(self, message: str) -> SpecError:
        return SpecError(f"{self.filename}: {message}")

    def build(self) -> Model:
        table = self.table
        self.keys(table, "the spec", TOP_KEYS, REQUIRED)
        name = self.string(table, "name", "name")
        model = self.model_call(lambda: Model(
            name, title=self.string(table, "title", "title", optional=True),
            description=self.string(table, "description", "description", optional=True) or ""))
        self.model = model
        self.at_most(table.get("sizes", []), MAX_SIZES, "sizes", "sizes")
        for size in self.strings(table, "sizes", "sizes"):
            self.model_call(lambda size=size: model.size(size), "sizes")
        if "time" in table:
            self.time(table["time"])
        self.indices(table.get("indices", {}))
        self.quantities(table["quantities"])
        self.equations(table["equations"])
        self.model_call(model.validate)
        return model

    # --- sections ----------------------------------------------------------------------------

    def time(self, value: object) -> None:
        where = "time"
        self.expect(value, dict, where, 'a table such as { index = "t", size = "T" }')
        self.keys(value, where, ("index", "size"), ())
        index = self.string(value, "index", f"{where}.index", optional=True) or "t"
        size = self.string(value, "size", f"{where}.size", optional=True) or "T"
        self.reserved(index, f"{where}.index")
        self.model_call(lambda: self.model.time(index, size), where)

    def indices(self, value: object) -> None:
        self.expect(value, dict, "[indices]", 'a table of indices such as i = "I"')
        self.at_most(value, MAX_INDICES, "[indices]", "indices")
        model = self.model
        for name, entry in value.items():
            where = f"indices.{name}"
            self.reserved(name, where)
            latex = None
            if isinstance(entry, dict):
                self.keys(entry, where, ("size", "latex"), ("size",))
                size = self.string(entry, "size", f"{where}.size")
                latex = self.latex(entry, "latex", f"{where}.latex", optional=True)
            else:
                self.expect(entry, str, where,
                            'a size name such as "H", or a table { size = "H", latex = "h" }')
                size = entry
            symbol = self.size(size, f"{where}")
            self.model_call(lambda n=name, s=symbol, x=latex: model.index(n, s, latex=x), where)

    def quantities(self, value: object) -> None:
        self.expect(value, dict, "[quantities]",
                    'a table of quantities such as x = { role = "input", shape = ["I"] }')
        self.at_most(value, MAX_QUANTITIES, "[quantities]", "quantities")
        model = self.model
        for name, entry in value.items():
            where = f"quantities.{name}"
            self.reserved(name, where)
            self.expect(entry, dict, where, '{ role = "...", shape = [...] } (an inline table)')
            role = self.string(entry, "role", f"{where}.role")
            if role not in ROLES:
                raise self.fail(f"{where}.role is {role!r}; expected one of "
                                f"{', '.join(ROLES)}")
            allowed = ROLES[role]
            self.keys(entry, f"{where} (a {role})", ("role", *allowed),
                      ("of",) if role == "state" else ("shape",))
            kwargs: dict[str, Any] = {}
            if "latex" in entry:
                kwargs["latex"] = self.latex(entry, "latex", f"{where}.latex")
            if "adjoint" in entry:
                kwargs["adjoint"] = self.latex(entry, "adjoint", f"{where}.adjoint")
            for flag in ("time", "one_hot"):
                if flag in entry:
                    kwargs[flag] = self.boolean(entry, flag, f"{where}.{flag}")
            if role == "state":
                owner = self.string(entry, "of", f"{where}.of")
                known = model.quantities.get(owner)
                if known is None:
                    raise self.fail(f"{where}.of names {owner!r}, which is not a quantity "
                                    f"declared above it; declare the intermediate first")
                self.model_call(lambda n=name, b=known.base, k=kwargs: model.state(n, of=b, **k),
                                where)
                continue
            shape = [self.size(s, f"{where}.shape")
                     for s in self.strings(entry, "shape", f"{where}.shape")]
            if not shape and not kwargs.get("time"):
                raise self.fail(f"{where}.shape is empty; a quantity needs at least one axis "
                                f"(a size, or time = true)")
            self.model_call(lambda n=name, m=role, s=shape, k=kwargs:
                            getattr(model, m)(n, s, **k), where)

    def equations(self, value: object) -> None:
        self.expect(value, dict, "[equations]",
                    'a table with forward = ["a[h] = ...", ...] and loss = "..."')
        self.keys(value, "[equations]", ("forward", "loss"), ())
        if "loss" not in value:
            raise self.fail('no loss: add loss = "..." to [equations], e.g. '
                            'loss = "-sum(z[k, t] * log(y[k, t]), k, t)"; every index summed')
        forward = value.get("forward", [])
        self.expect(forward, list, "equations.forward", "an array of equation strings")
        self.at_most(forward, MAX_EQUATIONS, "equations.forward", "equations")
        for number, text in enumerate(forward, start=1):
            where = f"equation {number} of [equations].forward"
            self.expect(text, str, where, 'a string such as "a[h] = tanh(b[h])"')
            where = f"equation {number} `{' '.join(text.split())}`"
            lhs, rhs = self.parse(
                lambda t=text: parse_equation(t, self.model, budget=self.budget), where)
            self.shapes(lhs, rhs, where)
            self.define(lambda lhs=lhs, rhs=rhs: self.model.define(lhs, rhs), where,
                        f"equation {sympy.sstr(lhs)} = {sympy.sstr(rhs)}: ")
        text = value["loss"]
        self.expect(text, str, "equations.loss",
                    'a string such as "-sum(z[k] * log(y[k]), k)"')
        where = f"the loss `{' '.join(text.split())}`"
        rhs = self.parse(lambda: parse_expression(text, self.model, budget=self.budget), where)
        self.define(lambda: self.model.loss(rhs), where, f"loss L = {sympy.sstr(rhs)}: ")

    # --- the checks behind every section ------------------------------------------------------

    def parse(self, parse: Callable[[], Any], where: str) -> Any:
        try:
            return parse()
        except SpecError as error:
            raise self.fail(f"{where}: {error}") from None

    def define(self, call: Callable[[], object], where: str, prefix: str) -> None:
        """Run a Model call for an equation; its ModelError names the file and equation."""
        try:
            call()
        except ModelError as error:
            message = _in_spec_terms(str(error)).removeprefix(prefix)
            raise self.fail(f"{where}: {message}") from None

    def shapes(self, lhs: Indexed, rhs: Expr, where: str) -> None:
        """The right side's free indices must all appear on the left side."""
        left = [i for i in lhs.indices if isinstance(i, Idx)]
        extra = [i for i in _free_indices(rhs) if i not in left]
        if not extra:
            return
        names = ", ".join(i.name for i in extra)
        latex_sizes = ", ".join(self.size_name(i) for i in extra)
        raise self.fail(
            f"{where}: shape mismatch between the two sides: the left side {sympy.sstr(lhs)} "
            f"has the indices ({', '.join(i.name for i in left)}), the right side also has the "
            f"free index {names} (over {latex_sizes}); sum over it with {SUM}(..., {extra[0]}) "
            f"or put it on the left side")

    def size_name(self, index: Idx) -> str:
        model = self.model
        if index == model.time_index:
            return str(index.upper)
        return str(index.upper + 1)

    def model_call(self, call: Callable[[], Any], where: str | None = None) -> Any:
        try:
            return call()
        except ModelError as error:
            message = _in_spec_terms(str(error))
            raise self.fail(f"{where}: {message}" if where else message) from None

    def size(self, name: str, where: str) -> sympy.Symbol:
        symbol = self.model.sizes.get(name)
        if symbol is None or (self.model.time_index is not None
                              and symbol == self.model.time_index.upper):
            sizes = [s for s in self.model.sizes
                     if self.model.time_index is None or s != str(self.model.time_index.upper)]
            raise self.fail(f"{where}: {name!r} is not a size of this spec (sizes: "
                            f"{', '.join(sizes) or 'none'}); add it to sizes = [...]"
                            + ("; time is an axis of its own: time = true"
                               if symbol is not None else ""))
        return symbol

    def reserved(self, name: str, where: str) -> None:
        """A function of the equations' language cannot name an index or a quantity.

        Every other rule for names (identifiers, Python and C keywords, what the
        generated code uses itself) is the Model's, whose error names the field.
        """
        if name in functions() or name == SUM:
            raise self.fail(f"{where}: {name!r} is reserved (a function name in equations); "
                            f"choose another name")

    def at_most(self, items: object, limit: int, where: str, what: str) -> None:
        """A section may hold at most ``limit`` entries (the module's limits)."""
        if isinstance(items, list | dict) and len(items) > limit:
            raise self.fail(f"{where} has {len(items)} {what}; at most {limit} are accepted")

    def keys(self, table: Mapping[str, Any], where: str, allowed: tuple[str, ...],
             required: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"{where}: unknown key {key!r}; expected "
                                f"{', '.join(allowed)}")
        for key in required:
            if key not in table:
                raise self.fail(f"{where}: the key {key!r} is missing (required: "
                                f"{', '.join(required)})")

    def expect(self, value: object, kind: type, where: str, expected: str) -> None:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"{where} must be {expected}, got {_toml_type(value)}")

    def string(self, table: Mapping[str, Any], key: str, where: str, *,
               optional: bool = False) -> str | None:
        if key not in table:
            if optional:
                return None
            raise self.fail(f"{where}: the key is missing")
        self.expect(table[key], str, where, "a string")
        return table[key]

    def latex(self, table: Mapping[str, Any], key: str, where: str, *,
              optional: bool = False) -> str | None:
        """A ``latex`` or ``adjoint`` field: a string holding only a math symbol's TeX."""
        text = self.string(table, key, where, optional=optional)
        if text is None:
            return None
        try:
            return check_latex(text, where)
        except LatexTextError as error:
            raise self.fail(str(error)) from None

    def strings(self, table: Mapping[str, Any], key: str, where: str) -> list[str]:
        value = table.get(key, [])
        self.expect(value, list, where, 'an array of names such as ["I", "H"]')
        for item in value:
            self.expect(item, str, where, 'an array of names such as ["I", "H"]')
        return value

    def boolean(self, table: Mapping[str, Any], key: str, where: str) -> bool:
        self.expect(table[key], bool, where, "true or false")
        return table[key]


#: The Model API's advice, said the way a spec file says it.
_SPEC_TERMS = [
    (re.compile(r"declare one with Model\.state\('\.\.\.', of=(\w+)\)"),
     r'declare one in [quantities], e.g. \g<1>0 = { role = "state", of = "\1" }'),
    (re.compile(r"add an equation with Model\.define\((\w+)\[\.\.\.\], \.\.\.\)"),
     r'add its equation "\1[...] = ..." to [equations].forward'),
    (re.compile(r"declare one with Model\.time\(\)"),
     'declare one with time = { index = "t", size = "T" }'),
    (re.compile(r"set one with Model\.loss\(\.\.\.\)"), 'add loss = "..." to [equations]'),
    (re.compile(r"declare it with Model\.size\(\)"), "add it to sizes = [...]"),
    (re.compile(r"an index declared with Model\.index\(\)"), "an index declared in [indices]"),
]


def _in_spec_terms(message: str) -> str:
    for pattern, replacement in _SPEC_TERMS:
        message = pattern.sub(replacement, message)
    return message


def _free_indices(expr: Expr) -> list[Idx]:
    """Indices of ``expr`` outside every sum over them, in order of appearance."""
    found: list[Idx] = []

    def walk(node: Expr, bound: frozenset[Idx]) -> None:
        if isinstance(node, sympy.Sum):
            walk(node.function, bound | {limit[0] for limit in node.limits})
            return
        if isinstance(node, Indexed):
            for index in node.indices:
                for idx in sorted(index.atoms(Idx), key=str):
                    if idx not in bound and idx not in found:
                        found.append(idx)
            return
        for arg in node.args:
            walk(arg, bound)

    walk(expr, frozenset())
    return found


def _toml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    kind = names.get(type(value), type(value).__name__)
    shown = repr(value)
    return f"{kind} {shown if len(shown) <= 40 else shown[:37] + '...'}"
