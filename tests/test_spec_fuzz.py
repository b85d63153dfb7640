"""Random malformed equations never raise anything but the spec parser's own error.

Two kinds of text go into the second equation of a small spec (``TINY`` of
``test_spec.py``), and through the whole of ``loads_spec`` (parser, Model
checks, validation): arbitrary Unicode, and a soup of the tokens equations are
made of, which is mostly almost-valid and so reaches the deeper checks.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule.symbolic import Model
from chainrule.symbolic.spec import SpecError, loads_spec
from chainrule.symbolic.spec_parser import parse_expression
from tests.test_spec import TINY

SLOT = '"b[h] = tanh(a[h])"'

TOKENS = [
    "a", "b", "h", "i", "k", "k_", "x", "z", "W", "V", "u", "y", "t", "I", "H", "K", "q",
    "a[h]", "x[i]", "W[i, h]", "b[h]", "y[k]", "a[h - 1]", "x[i, t]", "b[k]",
    "sum", "tanh", "exp", "log", "logistic", "relu", "sin", "__import__", "eval",
    "(", ")", "[", "]", ",", ":", ".", "=", "+", "-", "*", "/", "**", "%", "@", "==",
    " ", "0", "1", "2", "0.5", "1e309", "10", "-1", "'s'", "lambda", "for", "in", "if",
    "not", "and", "True", "None", "...", "\\", "\t", "#", ";", "{", "}", "__class__",
]


def spec_with(equation: str) -> str:
    assert TINY.count(SLOT) == 1
    return TINY.replace(SLOT, json.dumps(equation, ensure_ascii=False))


def only_spec_errors(equation: str) -> None:
    try:
        model = loads_spec(spec_with(equation), filename="fuzz.toml")
    except SpecError as error:
        assert str(error).startswith("fuzz.toml: "), error
    else:
        assert isinstance(model, Model)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_arbitrary_text(text: str) -> None:
    only_spec_errors(text)
    only_spec_errors("b[h] = " + text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join))
def test_token_soup(text: str) -> None:
    only_spec_errors(text)
    only_spec_errors("b[h] = " + text)


@settings(max_examples=300, deadline=None)
@given(st.recursive(
    st.sampled_from(["a[h]", "x[i]", "1", "2", "0", "-1", "0.5", "h", "H", "b[h]", "t"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner)
        .map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        st.tuples(st.sampled_from(["tanh", "exp", "log", "relu", "sum", "logistic"]), inner)
        .map(lambda p: f"{p[0]}({p[1]})"),
        inner.map(lambda e: f"sum({e}, i)"),
    ),
    max_leaves=12,
))
def test_nested_expressions(text: str) -> None:
    only_spec_errors("b[h] = " + text)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    model = loads_spec(TINY)
    for text in ("(" * 5000 + "1" + ")" * 5000, "-" * 100_000 + "1", "+".join(["1"] * 5000),
                 "x" * 30_000):
        try:
            parse_expression(text, model)
        except SpecError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_whole_spec_mutations(data: st.DataObject) -> None:
    """A line of the spec replaced by random TOML-ish text: only SpecError, or a Model."""
    lines = TINY.splitlines()
    position = data.draw(st.integers(0, len(lines) - 1))
    line = data.draw(st.one_of(
        st.text(max_size=40),
        st.sampled_from(['sizes = ["I", "I"]', "sizes = []", 'time = { index = "t" }',
                         'time = { size = "I" }', "time = true", 'q = { role = "state" }',
                         'q = { role = "state", of = "x" }', "forward = []", 'loss = "1"',
                         'x = "I"', "[quantities]", "[equations]", "[indices]", 'h = "K"',
                         'a = { role = "intermediate", shape = [] }', 'name = "1abc"',
                         'name = "class"', "k = 3", 'k = { size = 3 }', "title = 1"]),
    ))
    lines[position] = line
    try:
        loads_spec("\n".join(lines) + "\n", filename="fuzz.toml")
    except SpecError as error:
        assert str(error).startswith("fuzz.toml: "), error
