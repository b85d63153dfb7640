"""The functions a model may use, each with its derivative rule registered beside it.

Role in DESIGN.md's picture: the rule table of ``derive()``. The driver in
``symbolic/partials.py`` does the chain rule; a rule here returns only the
local factor ``f'(x)``, written in terms of the function's *output* ``y = f(x)``
where that is how Graves writes it (``tanh' = 1 - y²``, ``σ' = y(1 - y)``), so
that fold-back can later name ``y`` (``1 - b_h²``).

A function without a rule is a :class:`MissingDerivativeRule` error naming the
function; model validation calls :func:`rule_for` on every function it finds. A
function with a rule that a backend cannot print (one a user registered without
that backend's print method) is a :class:`MissingPrinter` when the kernels are
rendered; the printers raise it through :func:`missing_printer`.
Each rule has a key (``rules.py``): the built-ins' are :class:`~symbolic.rules.Rule`
members, and the description beside it is the engine's name of the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import sympy
from sympy import Expr

from .model_types import ModelError
from .rules import Rule, register_rule_text

#: A rule maps (argument x, output y = f(x)) to the local partial dy/dx.
DerivativeRule = Callable[[Expr, Expr], Expr]


class RegisteredRule(NamedTuple):
    """A function's derivative rule and the key the derivation records it by."""

    key: str
    rule: DerivativeRule


_RULES: dict[type, RegisteredRule] = {}


class MissingDerivativeRule(ValueError):
    """A function has no registered derivative rule."""


class MissingPrinter(ModelError):
    """A backend has no form of a function: one a user registered a rule for, without
    that backend's print method (the README, "Functions and their derivative rules")."""


def missing_printer(function: type, backend: str, method: str) -> MissingPrinter:
    """The error of a printer of ``backend`` (e.g. "C") that cannot print ``function``: it
    names the function and the method (``_ccode``) the class needs to reach that backend."""
    name = function.__name__
    return MissingPrinter(
        f"the {backend} backend cannot print the function {name!r}: it has a derivative rule "
        f"but no {backend} form; give the class {name} a method `{method}(self, printer)` "
        f"that returns its {backend} text, e.g. `return printer._print(...)` of {name}(x) "
        f"written with functions the kernels print (see the README, \"Functions and their "
        f"derivative rules\")")


def derivative_rule(function: type, description: str, *,
                    key: str | None = None) -> Callable[[DerivativeRule], DerivativeRule]:
    """Register ``rule`` as the derivative of the one-argument SymPy function class ``function``.

    ``description`` names the rule in recorded steps, e.g. "derivative of tanh";
    ``key`` identifies it (``derivative_<function>`` unless given).
    """
    rule_key = key if key is not None else f"derivative_{function.__name__}"

    def register(rule: DerivativeRule) -> DerivativeRule:
        if function in _RULES:
            raise ValueError(f"a derivative rule for {function.__name__} is already registered")
        register_rule_text(rule_key, description)
        _RULES[function] = RegisteredRule(rule_key, rule)
        return rule

    return register


def rule_for(function: type) -> RegisteredRule:
    """The (key, rule) registered for ``function``; a clear error if there is none."""
    try:
        return _RULES[function]
    except KeyError:
        known = ", ".join(sorted(f.__name__ for f in _RULES))
        raise MissingDerivativeRule(
            f"no derivative rule for function '{function.__name__}'; "
            f"functions with rules: {known}"
        ) from None


def functions_with_rules() -> tuple[type, ...]:
    """Every function class that has a derivative rule, sorted by name."""
    return tuple(sorted(_RULES, key=lambda f: f.__name__))


#: how the equation language spells a function whose class is named otherwise
_SPELLINGS: dict[type, str] = {sympy.Abs: "abs"}


def function_names() -> dict[str, Callable[[Expr], Expr]]:
    """The functions an equation may call, by the name it calls them: every function with a
    rule (``abs`` for SymPy's ``Abs``), and ``sqrt``, which SymPy writes as the power
    ``x**(1/2)``: the power rule differentiates it, ``1/(2 sqrt(x))``, and fold-back names
    ``sqrt(x)`` as its quantity ``y``: ``1/(2y)``."""
    names: dict[str, Callable[[Expr], Expr]] = {
        _SPELLINGS.get(f, f.__name__): f for f in functions_with_rules()}
    names["sqrt"] = sympy.sqrt
    return dict(sorted(names.items()))


# --- SymPy's own elementary functions --------------------------------------------------------


@derivative_rule(sympy.exp, "derivative of exp", key=Rule.DERIVATIVE_EXP)
def _exp_rule(x: Expr, y: Expr) -> Expr:
    return y


@derivative_rule(sympy.log, "derivative of ln", key=Rule.DERIVATIVE_LN)
def _log_rule(x: Expr, y: Expr) -> Expr:
    return 1 / x


@derivative_rule(sympy.tanh, "derivative of tanh", key=Rule.DERIVATIVE_TANH)
def _tanh_rule(x: Expr, y: Expr) -> Expr:
    return 1 - y**2


@derivative_rule(sympy.sin, "derivative of sin", key=Rule.DERIVATIVE_SIN)
def _sin_rule(x: Expr, y: Expr) -> Expr:
    return sympy.cos(x)


@derivative_rule(sympy.cos, "derivative of cos", key=Rule.DERIVATIVE_COS)
def _cos_rule(x: Expr, y: Expr) -> Expr:
    return -sympy.sin(x)


@derivative_rule(sympy.erf, "derivative of erf", key=Rule.DERIVATIVE_ERF)
def _erf_rule(x: Expr, y: Expr) -> Expr:
    # erf(x) = 2/√π ∫_0^x e^{-s²} ds
    return 2 * sympy.exp(-x**2) / sympy.sqrt(sympy.pi)


@derivative_rule(sympy.Abs, "derivative of abs", key=Rule.DERIVATIVE_ABS)
def _abs_rule(x: Expr, y: Expr) -> Expr:
    # sign(0) = 0: |x|'(0) = 0, as relu'(0) = 0 (a subgradient; PyTorch's choice too)
    return sympy.sign(x)


# --- functions of our own ---------------------------------------------------------------------


class logistic(sympy.Function):
    """The logistic sigmoid σ(x) = 1 / (1 + e^{-x})."""

    nargs = 1

    @classmethod
    def eval(cls, x: Expr) -> Expr | None:
        if x.is_zero:
            return sympy.Rational(1, 2)
        return None

    def _eval_rewrite_as_exp(self, x: Expr, **kwargs: object) -> Expr:
        return 1 / (1 + sympy.exp(-x))

    def fdiff(self, argindex: int = 1) -> Expr:
        y = self
        return y * (1 - y)


@derivative_rule(logistic, "derivative of the logistic function", key=Rule.DERIVATIVE_LOGISTIC)
def _logistic_rule(x: Expr, y: Expr) -> Expr:
    return y * (1 - y)


class step(sympy.Function):
    """The Iverson bracket [x > 0]: 1 for positive x, else 0 (so relu'(0) = 0)."""

    nargs = 1

    @classmethod
    def eval(cls, x: Expr) -> Expr | None:
        if x.is_positive:
            return sympy.S.One
        if x.is_nonpositive:
            return sympy.S.Zero
        return None


class relu(sympy.Function):
    """The rectifier max(0, x)."""

    nargs = 1

    @classmethod
    def eval(cls, x: Expr) -> Expr | None:
        if x.is_nonnegative:
            return x
        if x.is_nonpositive:
            return sympy.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> Expr:
        return step(self.args[0])


@derivative_rule(relu, "derivative of ReLU", key=Rule.DERIVATIVE_RELU)
def _relu_rule(x: Expr, y: Expr) -> Expr:
    return step(x)


class softplus(sympy.Function):
    """softplus(x) = ln(1 + e^x), a smooth relu; the kernels compute it as
    max(x, 0) + ln(1 + e^{-|x|}), which overflows for no x."""

    nargs = 1

    @classmethod
    def eval(cls, x: Expr) -> Expr | None:
        if x.is_zero:
            return sympy.log(2)
        return None

    def _eval_rewrite_as_log(self, x: Expr, **kwargs: object) -> Expr:
        return sympy.log(1 + sympy.exp(x))

    def fdiff(self, argindex: int = 1) -> Expr:
        return logistic(self.args[0])


@derivative_rule(softplus, "derivative of softplus", key=Rule.DERIVATIVE_SOFTPLUS)
def _softplus_rule(x: Expr, y: Expr) -> Expr:
    return logistic(x)


#: Hidden-layer activations by the names the built-in networks accept.
ACTIVATIONS: dict[str, type] = {"tanh": sympy.tanh, "logistic": logistic, "relu": relu}


def activation(name: str) -> type:
    """The activation function called ``name`` (tanh, logistic, relu); a clear error otherwise."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {name!r}") from None
