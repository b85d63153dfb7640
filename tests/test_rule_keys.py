"""Rules are identified by a key (``symbolic.Rule``); the notes look their words up by it.

Every key the engine can record has an English and a Chinese name in
``codegen/backends/latex/words.py``, so a missing translation fails here and not
silently in the Chinese notes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.codegen.backends.latex.backend import render_tex, tex_escape
from chainrule.codegen.backends.latex.words import LANGUAGES, RULES, rule_name
from chainrule.symbolic import Rule, derive, rule_text
from chainrule.symbolic.functions import functions_with_rules, rule_for
from chainrule.symbolic.identities import IDENTITIES
from chainrule.symbolic.networks import BUILTINS, mlp, rnn
from chainrule.symbolic.rules import rule_keys
from chainrule.symbolic.spec import load_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def derivations():
    models = [build() for build in BUILTINS.values()]
    models += [mlp.build(activation="relu"), mlp.build(activation="logistic"),
               rnn.build(activation="relu")]
    models += [load_spec(path) for path in sorted(EXAMPLES.glob("*.toml"))]
    return [derive(model) for model in models]


def recorded_keys(derivation) -> set[str]:
    keys = set()
    for adjoint in derivation.adjoints.values():
        keys |= {step.rule_key for step in adjoint.steps}
        for local in adjoint.local_partials:
            keys |= set(local.rule_keys)
    return keys


def test_every_rule_key_has_its_words_in_every_language() -> None:
    for key in Rule:
        assert key in RULES, f"words.py has no names for rule {key!r}"
        assert set(RULES[key]) == set(LANGUAGES), key
        assert all(RULES[key][lang].strip() for lang in LANGUAGES), key
    assert set(RULES) <= set(Rule), "words.py names a rule the engine does not know"


def test_every_built_in_rule_is_registered_under_a_key_of_rule() -> None:
    assert {rule_for(function).key for function in functions_with_rules()} <= set(Rule)
    assert set(IDENTITIES) <= set(Rule)
    assert set(Rule) <= set(rule_keys()), "a Rule without the engine's name"


def test_every_recorded_rule_is_a_key_with_words(derivations) -> None:
    recorded = set().union(*(recorded_keys(d) for d in derivations))
    assert Rule.DERIVATIVE_RELU in recorded and Rule.BOUNDARY_AT_ZERO in recorded
    assert recorded <= set(Rule)
    for key in recorded:
        assert all(rule_name(key, lang) == RULES[key][lang] for lang in LANGUAGES)


def test_the_notes_english_is_the_engines_name_and_steps_show_it(derivations) -> None:
    for key in Rule:
        assert RULES[key]["en"] == rule_text(key)
    for derivation in derivations:
        for adjoint in derivation.adjoints.values():
            for step in adjoint.steps:
                assert step.rule == rule_text(step.rule_key)
            for local in adjoint.local_partials:
                assert local.rules == tuple(rule_text(k) for k in local.rule_keys)


def test_the_chinese_notes_of_a_relu_model_translate_its_rule() -> None:
    tex = render_tex(derive(mlp.build(activation="relu")), "zh")
    assert RULES[Rule.DERIVATIVE_RELU]["zh"] in tex
    assert "ReLU 的导数" in tex
    assert "derivative of" not in tex


def test_no_rule_is_left_in_english_in_the_chinese_notes(derivations) -> None:
    english = {tex_escape(RULES[key]["en"], subscripts=True) for key in Rule
               if RULES[key]["en"] != RULES[key]["zh"]}
    for derivation in derivations:
        tex = render_tex(derivation, "zh")
        assert [name for name in english if name in tex] == [], derivation.model.name


def test_a_rule_without_words_is_shown_by_the_engines_name() -> None:
    assert rule_name("derivative_swish", "zh") == "derivative_swish"
    assert rule_name(Rule.DERIVATIVE_RELU, "en") == "derivative of ReLU"


def test_a_backward_layers_initial_state_is_labelled_after_the_last_step() -> None:
    """The backward layer's state stands for step T + 1: its boundary step says so, and
    the forward layer's says t = 0."""
    derivation = derive(BUILTINS["brnn"]())
    labels = {}
    for adjoint in [*derivation.adjoints.values(), *derivation.gradients.values()]:
        for step in adjoint.steps:
            if step.rule_key in (Rule.BOUNDARY_AT_ZERO, Rule.BOUNDARY_AFTER_END):
                labels[adjoint.quantity.name] = step.rule_key
    assert labels == {"f0": Rule.BOUNDARY_AT_ZERO, "g0": Rule.BOUNDARY_AFTER_END}
