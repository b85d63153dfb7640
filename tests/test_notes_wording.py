"""The wording of the notes (issue 13's leftovers), on the ``.tex`` alone (no TeX run):
Graves' f, g, h for the squashing functions, the Chinese of the full trace, the boundary
prose of a layer that runs backwards in time, and the worked example handed to the
renderer as data (computed once per derivation, outside the LaTeX backend)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chainrule.codegen.backends.latex.backend import render_book, render_tex
from chainrule.codegen.backends.latex.example import Example, matrix, number
from chainrule.symbolic import derive
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CJK = r"[\u4e00-\u9fff]"
HALF_WIDTH = re.compile(rf"{CJK}[:(),;]|[:(),;]{CJK}")


@pytest.fixture(scope="module")
def derivations():
    models = {name: BUILTINS[name]() for name in ("mlp", "rnn", "lstm", "lstm_no_peepholes")}
    models["brnn"] = load_spec(EXAMPLES / "brnn.toml")
    models["gru"] = load_spec(EXAMPLES / "gru.toml")
    return {name: derive(model) for name, model in models.items()}


def _prose(tex: str) -> str:
    """What a reader reads as text: the body without figures, labels, references and
    mathematics, before the appendix."""
    body = tex.split(r"\begin{document}", 1)[-1]
    body = re.sub(r"\\begin\{tikzpicture\}.*?\\end\{tikzpicture\}", "", body, flags=re.S)
    body = re.sub(r"\\(label|ref)\{[^}]*\}", "", body)
    body = re.sub(r"\\begin\{(align\*|equation\*?|split)\}.*?\\end\{\1\}", "", body,
                  flags=re.S)
    body = re.sub(r"\$[^$]*\$", "", body)
    return body.split(r"\appendix", 1)[0]


# --- Chinese ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lstm", "brnn"])
def test_the_chinese_full_trace_has_no_literal_translations(derivations, name) -> None:
    tex = render_tex(derivations[name], "zh", "full")
    for word in ("消费者", "Kronecker delta", "内核", "引理", "伴随量"):
        assert word not in tex, (name, word)
    assert "克罗内克" in tex and "用到" in tex


@pytest.mark.parametrize("detail", ["short", "full"])
@pytest.mark.parametrize("name", ["lstm", "brnn", "gru"])
def test_no_half_width_colon_or_parenthesis_beside_chinese(derivations, name, detail) -> None:
    text = _prose(render_tex(derivations[name], "zh", detail))
    assert not HALF_WIDTH.findall(text), (name, detail, HALF_WIDTH.findall(text)[:5])


def test_no_full_stop_after_a_chinese_run_in_head(derivations) -> None:
    tex = render_tex(derivations["lstm"], "zh", "full")
    heads = re.findall(r"\\(?:paragraph|textbf)\{([^{}]*)\}", tex)
    assert heads and not [h for h in heads if h.endswith(("。", "."))], heads


# --- a layer that runs backwards in time ------------------------------------------------------

def test_a_backward_layer_starts_at_t_plus_one_and_ends_at_zero(derivations) -> None:
    for lang in ("en", "zh"):
        tex = render_tex(derivations["brnn"], lang)
        assert r"b_{h}^{(g)\,T + 1}" in tex  # its initial state stands for step T+1 ...
        assert r"$b_{h}^{(g)\,T + 1}$ at $t = T$" in tex or (
            r"$b_{h}^{(g)\,T + 1}$ 在 $t = T$" in tex)  # ... and is read at t = T
        assert r"\delta_{h}^{(f)\,T + 1} = 0" in tex  # the forward layer's boundary
        assert r"\delta_{h}^{(g)\,0} = 0" in tex  # the backward layer's
        assert "only at $t = 1$:" not in tex
    en = render_tex(derivations["brnn"], "en")
    # the body derives both loops; the summary prints the layer that reads t-1 and its
    # loop, and says the other runs the other way
    assert r"from $t = 1$ up to $t = T$" in en, en
    assert r"\noindent for $t = T, \dots, 1$:" in en
    assert "it runs the other way in time, its adjoints zero at $t = 0$" in en


def test_a_forward_recurrence_keeps_one_loop_down_from_t(derivations) -> None:
    tex = render_tex(derivations["lstm"], "en")
    assert r"\epsilon_{s,c}^{T + 1} = 0" in tex and r"\delta_{c}^{0}" not in tex
    assert tex.count(r"\noindent for $t = ") == 1 and r"for $t = T, \dots, 1$:" in tex
    assert r"at $t = 1$" in tex  # where the initial states are read


# --- Graves' squashing functions --------------------------------------------------------------

@pytest.mark.parametrize("name", ["lstm", "lstm_no_peepholes"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_lstm_writes_graves_f_g_h(derivations, name, lang) -> None:
    tex = render_tex(derivations[name], lang)
    assert r"1 - \tanh^{2}{\left(" not in tex  # no derivative of an unnamed argument
    assert r"\tanh{\left(" not in tex.split(r"\begin{document}", 1)[1]
    assert r"g'{\left(a_{c}^{t}\right)}" in tex and r"h'{\left(s_{c}^{t}\right)}" in tex
    assert r"b_{\iota,c}^{t} = \sigma{\left(a_{\iota,c}^{t}\right)}" in tex  # f = σ, said once
    assert r"$f = \sigma$" in tex and r"$f'(a) = b(1 - b)$" in tex
    assert tex.count(r"$g'(x) = h'(x) = 1 - \tanh^{2}(x)$") == 1  # introduced once


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_full_trace_introduces_the_letters_it_prints(derivations, lang) -> None:
    tex = render_tex(derivations["lstm"], lang, "full")
    assert r"1 - \tanh^{2}{\left(" not in tex and r"h'{\left(s_{c}^{t}\right)}" in tex
    assert tex.count(r"$g'(x) = h'(x) = 1 - \tanh^{2}(x)$") == 1


@pytest.mark.parametrize("name", ["mlp", "rnn", "gru"])
def test_named_outputs_keep_their_functions_and_graves_derivatives(derivations, name) -> None:
    tex = render_tex(derivations[name], "en")
    assert r"1 - \tanh^{2}{\left(" not in tex
    assert r"\tanh'(a) = 1 - b^{2}$ (Graves' $\theta'(a)$)" in tex
    assert "g'{" not in tex and "h'{" not in tex


# --- the worked example, as data --------------------------------------------------------------

def test_the_latex_backend_computes_no_example() -> None:
    source = (Path(__file__).resolve().parents[1] / "codegen" / "backends" / "latex"
              / "example.py").read_text(encoding="utf-8")
    assert "importlib" not in source and "registry" not in source.split('"""', 2)[2]
    assert "backends.numpy" not in source


def test_the_notes_print_the_example_they_are_handed(derivations) -> None:
    import numpy

    example = Example(sizes={"K": 3, "T": 2}, seed=0, step=1e-5, loss=1.2345678,
                      parameter="W_hy", kernel=numpy.array([[0.5, -0.25]]),
                      differences=numpy.array([[0.5, -0.25]]), entries=12, worst=1e-9,
                      bound_exponent=-6)
    rnn = derivations["rnn"]
    assert "A worked example" not in render_tex(rnn, "en")  # none unless one is passed
    for lang in ("en", "zh"):
        tex = render_tex(rnn, lang, example=example)
        assert f"$L = {number(example.loss)}$" in tex and matrix(example.kernel) in tex
        assert "$10^{-5}$" in tex and "$10^{-6}$" in tex
    book = render_book([derivations["mlp"], rnn], "en", examples={"rnn": example})
    assert book.count(f"$L = {number(example.loss)}$") == 1


def test_the_worked_example_is_computed_once_per_derivation(derivations) -> None:
    from chainrule.codegen.worked_example import run_example, run_examples

    mlp = derivations["mlp"]
    example = run_example(mlp)
    assert example is not None and example.passed and example.sizes["K"] == 3
    assert run_example(mlp) is example and run_examples([mlp]) == {"mlp": example}
    tex = render_tex(mlp, "zh", example=example)
    assert matrix(example.kernel) in tex and matrix(example.differences) in tex
