"""The keys of the rules a derivation records, and the engine's own name for each.

Role in DESIGN.md's picture: every rewrite of ``derive()`` is recorded with the
rule that makes it (a :class:`~symbolic.derivation.Step`, and the function rules
of a :class:`~symbolic.derivation.LocalPartial`). A rule is identified by a
stable key, a :class:`Rule`; its display text is kept apart, here, so that a
printer looks its own words up by key (the notes' English and Chinese are in
``codegen/backends/latex/words.py``) and never matches display strings.

The step rules of ``derive.py`` have their text in this module; a derivative rule
(``functions.py``) and an identity (``identities.py``) register theirs where the
rule is written, with :func:`register_rule_text`. A derivative rule a user
registers has a key of its own (a plain string); :func:`rule_text` knows it too.
"""

from __future__ import annotations

import enum


class Rule(enum.StrEnum):
    """The key of every rule the built-in engine records."""

    # the steps of derive()
    CHAIN_RULE = "chain_rule"
    LOCAL_PARTIALS = "local_partials"
    SUBSTITUTE_ADJOINTS = "substitute_adjoints"
    KRONECKER_DELTA = "kronecker_delta"
    INITIAL_STATE = "initial_state"
    BOUNDARY_AT_ZERO = "boundary_at_zero"
    BOUNDARY_AFTER_END = "boundary_after_end"
    # identities (identities.py)
    ONE_HOT_TARGETS = "one_hot_targets"
    FACTORS_CANCEL = "factors_cancel"
    # derivative rules (functions.py)
    DERIVATIVE_EXP = "derivative_exp"
    DERIVATIVE_LN = "derivative_ln"
    DERIVATIVE_TANH = "derivative_tanh"
    DERIVATIVE_LOGISTIC = "derivative_logistic"
    DERIVATIVE_RELU = "derivative_relu"
    DERIVATIVE_SOFTPLUS = "derivative_softplus"
    DERIVATIVE_SIN = "derivative_sin"
    DERIVATIVE_COS = "derivative_cos"
    DERIVATIVE_ERF = "derivative_erf"
    DERIVATIVE_ABS = "derivative_abs"


_TEXT: dict[str, str] = {
    Rule.CHAIN_RULE: "chain rule",
    Rule.LOCAL_PARTIALS: "local partials",
    Rule.SUBSTITUTE_ADJOINTS: "substitute the adjoints of the consumers",
    Rule.KRONECKER_DELTA: "Kronecker delta",
    Rule.INITIAL_STATE: "initial state",
    Rule.BOUNDARY_AT_ZERO: "boundary: t = 0",
    Rule.BOUNDARY_AFTER_END: "boundary: the step after the last",
}


def register_rule_text(key: str, text: str) -> None:
    """Record ``text`` as the engine's name of the rule ``key``; a key names one rule only."""
    if key in _TEXT:
        raise ValueError(f"a rule with the key {key!r} is already registered "
                         f"({_TEXT[key]!r})")
    _TEXT[key] = text


def rule_text(key: str) -> str:
    """The engine's (English) name of rule ``key``, e.g. "chain rule"; the key if it has none."""
    return _TEXT.get(key, key)


def rule_keys() -> tuple[str, ...]:
    """Every rule key registered so far: the built-ins' and any a user added."""
    return tuple(_TEXT)


__all__ = ["Rule", "register_rule_text", "rule_keys", "rule_text"]
