"""Hostile spec files (issue 11): the parser is bounded, and no constant overflows a double.

SymPy evaluates while it builds, and its assumption queries cost time exponential
in how deeply functions, powers and divisions nest (``tanh`` nested 8 deep took
seconds to parse, 12 deep more than a minute). The parser checks documented
limits on the syntax tree before it builds anything; within them an equation
parses quickly, and derive() and the code generators work on what it builds.
Every number it builds, folded by SymPy or not, must be a finite double.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from chainrule.codegen.app.cli import main
from chainrule.codegen.artifacts import render
from chainrule.symbolic import derive, spec, spec_parser
from chainrule.symbolic.spec import SpecError, load_spec, loads_spec
from chainrule.symbolic.spec_parser import (
    MAX_NESTING,
    MAX_NODES,
    MAX_NONLINEAR_DEPTH,
    parse_expression,
)
from tests.test_spec import TINY

LINEAR = "sum(W[i, h] * x[i], i)"
SLOT = '"a[h] = sum(W[i, h] * x[i], i)"'


def with_a(rhs: str) -> str:
    """TINY with ``a[h] = rhs``."""
    assert TINY.count(SLOT) == 1
    return TINY.replace(SLOT, f'"a[h] = {rhs}"')


def nested(function: str, depth: int, inner: str = LINEAR) -> str:
    for _ in range(depth):
        inner = f"{function}({inner})"
    return inner


def refused(text: str, *needles: str) -> str:
    with pytest.raises(SpecError) as error:
        loads_spec(text, filename="hostile.toml")
    message = str(error.value)
    assert message.startswith("hostile.toml: "), message
    for needle in needles:
        assert needle in message, message
    return message


# --- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rhs", "shown"), [
    (f"{LINEAR} * 1e300 * 1e300", "1.0000E+600"),      # the issue's b_h1[h1] * 1e300 * 1e300
    (f"1e300 * {LINEAR} * 1e300", "1.0000E+600"),
    (f"{LINEAR} / (1e-300 * 1e-300)", "1.0000E+600"),
    (f"{LINEAR} + 2 ** 2000", "1.1481E+602"),
    (f"{LINEAR} + 10 ** 400", "1.0000E+400"),
    (f"{LINEAR} + 1{'0' * 400}", "1.0000E+400"),
    (f"{LINEAR} * (1e200 * 1e200 - 1e400)", "1.0000E+400"),  # folds to 0, but 1e400 was built
    (f"{LINEAR} + exp(1000)", "exp(1000)"),
    (f"{LINEAR} + exp(exp(exp(10)))", "exp(exp(10))"),  # never SymPy's evalf: it would hang
    (f"{LINEAR} * 1e308 * 10", "1.0000E+309"),
])
def test_a_constant_that_overflows_a_double_is_refused(rhs: str, shown: str) -> None:
    message = refused(with_a(rhs), "is not a finite double", shown)
    assert "float64 holds at most" in message


def test_the_issue_example_is_refused_by_the_command_line(capsys, tmp_path: Path) -> None:
    mlp = (Path(__file__).resolve().parents[1] / "examples" / "mlp.toml").read_text()
    old = '"a1[h1] = sum(W_xh1[i, h1] * x[i], i) + b_h1[h1]"'
    assert mlp.count(old) == 1
    path = tmp_path / "overflow.toml"
    path.write_text(mlp.replace(old, old[:-1] + ' * 1e300 * 1e300"'))
    assert main(["check", "--model", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "1.0000E+600, which is not a finite double" in captured.err


@pytest.mark.parametrize("rhs", [f"{LINEAR} * 1e300", f"{LINEAR} * 1e-300 * 1e-300",
                                 f"{LINEAR} + exp(700)", f"{LINEAR} * 2 ** 1000",
                                 f"{LINEAR} * 1.7e308"])
def test_large_constants_that_a_double_holds_are_accepted(rhs: str) -> None:
    loads_spec(with_a(rhs))


# --- limits -----------------------------------------------------------------------------------


def test_functions_nested_up_to_the_limit_parse_and_derive() -> None:
    model = loads_spec(with_a(nested("tanh", MAX_NONLINEAR_DEPTH)))
    derivation = derive(model)
    assert set(derivation.gradients) == {"W", "V"}


@pytest.mark.parametrize("depth", [MAX_NONLINEAR_DEPTH + 1, 8, 12, 30])
def test_deeper_nesting_is_refused_before_sympy_builds_anything(depth: int, monkeypatch) -> None:
    def no_building(self, node):
        raise AssertionError("the limits are checked before SymPy builds anything")

    monkeypatch.setattr(spec_parser._Builder, "build", no_building)
    refused(with_a(nested("tanh", depth)), f"at most {MAX_NONLINEAR_DEPTH} may nest",
            "intermediate quantity")


@pytest.mark.parametrize("rhs", [
    nested("exp", MAX_NONLINEAR_DEPTH + 1),
    nested("logistic", 2, nested("log", MAX_NONLINEAR_DEPTH - 1)),
    # tanh, division, power, then the rest in tanh
    f"tanh(1 / (1 + {nested('tanh', MAX_NONLINEAR_DEPTH - 2)} ** 2))",
    # tanh, tanh, power, then the rest in tanh
    f"tanh(tanh({nested('tanh', MAX_NONLINEAR_DEPTH - 2)} ** 2))",
])
def test_powers_and_divisions_count_as_nesting(rhs: str) -> None:
    refused(with_a(rhs), f"at most {MAX_NONLINEAR_DEPTH} may nest")


@pytest.mark.parametrize("rhs", [
    f"{LINEAR} / 2 + {LINEAR} / H + {LINEAR} ** 2 / 2",  # a number or a size: no nesting
    f"log(exp({LINEAR}) / (1 + exp({LINEAR})))",          # log, division, exp: three
    f"tanh({LINEAR}) ** 2 + 2 ** 3 * tanh({LINEAR})",
])
def test_what_real_networks_write_is_within_the_limits(rhs: str) -> None:
    loads_spec(with_a(rhs))


def test_a_long_sum_is_one_level_of_nesting_not_one_per_term() -> None:
    terms = " + ".join(f"{LINEAR} * {n}" for n in range(1, 30))
    nodes = sum(isinstance(node, ast.expr) for node in ast.walk(ast.parse(terms)))
    assert 2 * MAX_NESTING < nodes <= MAX_NODES
    assert loads_spec(with_a(terms)).quantities["a"]


def test_too_many_nodes_are_refused() -> None:
    refused(with_a(" + ".join(["x[i] * W[i, h]"] * (MAX_NODES // 6))),  # sums are not the point
            f"more than {MAX_NODES} expression nodes", "split it into several equations")


def test_too_deep_nesting_is_refused() -> None:
    deep = LINEAR
    for n in range(MAX_NESTING):
        deep = f"({deep} + 1) * {n + 2}"
    refused(with_a(deep), f"nests more than {MAX_NESTING} levels deep")


def test_the_worst_equation_within_the_limits_parses_quickly() -> None:
    """Products of tanh inside tanh inside tanh, as wide as the node limit lets them be.

    Measured at about 0.4 s; the bound is generous so that a slow machine passes, and far
    below the minutes nested functions took before the limits.
    """
    inner = " * ".join("tanh(" + " * ".join(f"tanh({LINEAR} + {p + 5 * m})" for p in range(4))
                       + ")" for m in range(4))
    rhs = f"tanh({inner})"
    start = time.perf_counter()
    model = loads_spec(with_a(rhs))
    assert time.perf_counter() - start < 20
    assert render(model)  # derive() and every backend work on what the parser built


def test_the_whole_spec_has_a_node_budget(monkeypatch) -> None:
    monkeypatch.setattr(spec, "MAX_SPEC_NODES", 30)
    refused(TINY, "the spec's equations and loss have more than 30 expression nodes in all")


@pytest.mark.parametrize(("limit", "section"), [
    ("MAX_SIZES", "sizes has 3 sizes; at most 2 are accepted"),
    ("MAX_INDICES", "[indices] has 4 indices; at most 2 are accepted"),
    ("MAX_QUANTITIES", "[quantities] has 8 quantities; at most 2 are accepted"),
    ("MAX_EQUATIONS", "equations.forward has 4 equations; at most 2 are accepted"),
])
def test_every_section_has_a_limit(limit: str, section: str, monkeypatch) -> None:
    monkeypatch.setattr(spec, limit, 2)
    refused(TINY, section)


def test_a_spec_file_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text(TINY + "#" * spec.MAX_BYTES)
    with pytest.raises(SpecError, match=f"larger than {spec.MAX_BYTES} bytes"):
        load_spec(big)
    with pytest.raises(SpecError, match=f"longer than {spec.MAX_BYTES} characters"):
        loads_spec(big.read_text())


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_an_endless_file_is_read_only_up_to_the_limit() -> None:
    with pytest.raises(SpecError, match="larger than"):
        load_spec("/dev/zero")


def test_parse_errors_stay_spec_errors_for_expressions_too() -> None:
    model = loads_spec(TINY)
    with pytest.raises(SpecError, match="may nest"):
        parse_expression(nested("exp", MAX_NONLINEAR_DEPTH + 1, "a[h]"), model)
