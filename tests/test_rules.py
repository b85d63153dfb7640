"""Each derivative rule on its own, against a numerical derivative (a table, as JAX does)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from chainrule.symbolic.functions import (
    MissingDerivativeRule,
    functions_with_rules,
    logistic,
    relu,
    rule_for,
    step,
)

X = sympy.Symbol("x", real=True)

# function, sample points respecting its domain (relu's kink at 0 left out)
TABLE = [
    (sympy.exp, [-3.0, -0.5, 0.0, 0.7, 2.0]),
    (sympy.log, [0.1, 0.5, 1.0, 3.0]),
    (sympy.tanh, [-3.0, -0.5, 0.0, 0.7, 2.0]),
    (logistic, [-6.0, -0.5, 0.0, 0.7, 4.0]),
    (relu, [-2.0, -0.1, 0.1, 1.5]),
]


def numeric(function: type, value: float) -> float:
    f = sympy.lambdify(X, function(X).rewrite(sympy.exp) if function is logistic else function(X),
                       modules=[{"relu": lambda v: np.maximum(v, 0)}, "numpy"])
    h = 1e-6
    return (f(value + h) - f(value - h)) / (2 * h)


def test_every_rule_is_in_the_table() -> None:
    assert set(functions_with_rules()) == {f for f, _ in TABLE}


@pytest.mark.parametrize("function, points", TABLE, ids=[f.__name__ for f, _ in TABLE])
def test_rule_matches_a_numerical_derivative(function: type, points: list[float]) -> None:
    _, rule = rule_for(function)
    local = rule(X, function(X))
    for value in points:
        exact = float(local.subs(X, value).rewrite(sympy.exp).evalf())
        assert exact == pytest.approx(numeric(function, value), rel=1e-7, abs=1e-9)


def test_rules_are_written_in_terms_of_the_output() -> None:
    y = sympy.Symbol("y")
    assert rule_for(sympy.tanh)[1](X, y) == 1 - y**2
    assert rule_for(logistic)[1](X, y) == y * (1 - y)
    assert rule_for(sympy.exp)[1](X, y) == y
    assert rule_for(relu)[1](X, y) == step(X)


def test_a_function_without_a_rule_is_named() -> None:
    with pytest.raises(MissingDerivativeRule, match="no derivative rule for function 'sinh'"):
        rule_for(sympy.sinh)


def test_step_is_zero_at_zero() -> None:
    assert step(0) == 0 and step(2) == 1 and step(-1) == 0


# --- the functions of issue 14, part 6 (tests/test_functions_more.py checks them end to end)

from chainrule.symbolic.functions import softplus  # noqa: E402

MORE = [
    (softplus, [-30.0, -2.0, 0.0, 0.7, 30.0]),
    (sympy.sin, [-3.0, -0.5, 0.0, 0.7, 2.0]),
    (sympy.cos, [-3.0, -0.5, 0.0, 0.7, 2.0]),
    (sympy.erf, [-3.0, -0.5, 0.0, 0.7, 2.0]),
    (sympy.Abs, [-2.0, -0.1, 0.1, 1.5]),  # the kink at 0 left out, as relu's
]
TABLE = [*TABLE, *MORE]  # a new list: the parametrized test above keeps its own


@pytest.mark.parametrize("function, points", MORE, ids=[f.__name__ for f, _ in MORE])
def test_more_rules_match_a_numerical_derivative(function: type, points: list[float]) -> None:
    _, rule = rule_for(function)
    local = rule(X, function(X))
    f = sympy.lambdify(X, function(X).rewrite(sympy.log) if function is softplus
                       else function(X), modules="math")
    h = 1e-6
    for value in points:
        exact = float(local.subs(X, value).rewrite(sympy.exp).evalf())
        assert exact == pytest.approx((f(value + h) - f(value - h)) / (2 * h), rel=1e-7,
                                      abs=1e-9)


def test_abs_at_zero_is_zero_as_relu() -> None:
    _, rule = rule_for(sympy.Abs)
    assert rule(X, sympy.Abs(X)).subs(X, 0) == 0 == step(0)
