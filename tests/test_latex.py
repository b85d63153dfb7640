"""The LaTeX notes: the printer on single expressions, then whole documents.

The printer (``codegen/latex_printer.py``) is checked expression by expression
in Graves' notation; the backend (``codegen/latex_backend.py``) on the MLP and a
small recurrent model: the results it boxes are the derivation's own, every
recorded step is named, the boundary condition ``δ^{T+1} = 0`` is stated, the
output is deterministic and its template reads exactly the keys the backend
fills. Where ``pdflatex`` is installed, the documents must compile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy
from sympy import Idx, KroneckerDelta, Sum, exp, log, tanh

from chainrule.codegen.backends.latex import backend
from chainrule.codegen.backends.latex.backend import TRACE as TEMPLATE
from chainrule.codegen.backends.latex.backend import tex_escape
from chainrule.codegen.backends.latex.printer import (
    NotesLatexPrinter,
    Scripted,
    split_scripts,
    with_primes,
)
from chainrule.codegen.backends.latex.trace import _Notes
from chainrule.codegen.templating import template_variables
from chainrule.symbolic import InRange, Model, Partial, derive, logistic, relu, step
from chainrule.symbolic.networks import mlp


def render_tex(derivation, lang: str = "en") -> str:
    """The full trace (``--detail full``): these tests read every recorded step."""
    return backend.render_tex(derivation, lang, detail="full")


def tex_context(derivation, lang: str = "en"):
    return backend.tex_context(derivation, lang, detail="full")

TEX_PACKAGES = ("texlive-latex-base texlive-latex-recommended texlive-latex-extra "
                "texlive-pictures texlive-fonts-recommended lmodern")


def recurrent_model(title: str = "Tiny recurrent net", description: str = "") -> Model:
    """Graves' RNN (3.2) with a cell state read at t-1, written with the public model API."""
    m = Model("tiny_rnn", title=title, description=description)
    I, H, K = m.size("I"), m.size("H"), m.size("K")
    t = m.time()
    i, h = m.index("i", I), m.index("h", H)
    hp = m.index("h_", H, latex="h'")
    k, kp = m.index("k", K), m.index("k_", K)
    x = m.input("x", [I], time=True)
    z = m.target("z", [K], time=True)
    w_ih = m.parameter("W_xh", [I, H], latex="w")
    w_hh = m.parameter("W_hh", [H, H], latex="u")
    w_hk = m.parameter("W_hy", [H, K], latex="v")
    a = m.intermediate("a_h", [H], time=True, latex="a", adjoint=r"\delta")
    s = m.intermediate("s", [H], time=True, latex="s_c", adjoint=r"\epsilon_s")
    b = m.intermediate("b", [H], time=True, latex="b")
    a_k = m.intermediate("a_y", [K], time=True, latex=r"\hat{a}", adjoint=r"\delta")
    y = m.intermediate("y", [K], time=True, latex="y")
    m.state("h0", of=b, latex=r"b^{(0)}")
    m.state("s0", of=s, latex=r"s^{(0)}")
    m.define(a[h, t], Sum(w_ih[i, h] * x[i, t], i) + Sum(w_hh[hp, h] * b[hp, t - 1], hp))
    m.define(s[h, t], logistic(a[h, t]) * s[h, t - 1] + tanh(a[h, t]))
    m.define(b[h, t], tanh(s[h, t]))
    m.define(a_k[k, t], Sum(w_hk[h, k] * b[h, t], h))
    m.define(y[k, t], exp(a_k[k, t]) / Sum(exp(a_k[kp, t]), kp))
    m.loss(-Sum(z[k, t] * log(y[k, t]), k, t))
    return m


@pytest.fixture(scope="module")
def mlp_model() -> Model:
    return mlp.build()


@pytest.fixture(scope="module")
def rnn_model() -> Model:
    return recurrent_model()


@pytest.fixture(scope="module")
def mlp_derivation(mlp_model):
    return derive(mlp_model)


@pytest.fixture(scope="module")
def rnn_derivation(rnn_model):
    return derive(rnn_model)


@pytest.fixture(scope="module")
def mlp_tex(mlp_derivation) -> str:
    return render_tex(mlp_derivation)


@pytest.fixture(scope="module")
def rnn_tex(rnn_derivation) -> str:
    return render_tex(rnn_derivation)


def q(model: Model, name: str):
    return model.quantity(name).base


def d(name: str) -> sympy.IndexedBase:
    """The adjoint array of quantity ``name``, as derive() names it."""
    return sympy.IndexedBase(f"d_{name}")


# --- scripts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("tex", "expected"), [
    ("x", Scripted("x")),
    ("a^{(1)}", Scripted("a", (), ("(1)",))),
    (r"\epsilon_s", Scripted(r"\epsilon", ("s",))),
    (r"\beta^{(y)}_{o}", Scripted(r"\beta", ("o",), ("(y)",))),
    (r"\hat{a}", Scripted(r"\hat{a}")),
    ("w_{x}^{\\prime}", Scripted("w", ("x",), (r"\prime",))),
])
def test_split_scripts(tex, expected) -> None:
    assert split_scripts(tex) == expected


@pytest.mark.parametrize("tex", ["W_xh", "a_1_2", "a^{1}^{2}", "_x", "{a"])
def test_split_scripts_refuses_what_takes_no_more_scripts(tex) -> None:
    assert split_scripts(tex) is None


def test_primes_compose_with_scripts() -> None:
    assert with_primes("h", 2) == "h''"
    assert with_primes("h_{1}", 1) == "h'_{1}"
    assert with_primes("h^{(1)}", 1) == r"h^{\prime (1)}"
    assert with_primes("k'", 0) == "k'"


# --- the printer on single expressions ---------------------------------------------------------


def test_indexed_subscripts_units_and_superscripts_time(rnn_model) -> None:
    p = NotesLatexPrinter(rnn_model)
    i, h, t = (rnn_model.indices[n] for n in ("i", "h", "t"))
    assert p.doprint(q(rnn_model, "x")[i, t]) == "x_{i}^{t}"
    assert p.doprint(q(rnn_model, "b")[h, t - 1]) == "b_{h}^{t - 1}"
    assert p.doprint(q(rnn_model, "W_xh")[i, h]) == "w_{i h}"


def test_symbol_scripts_merge_with_indices(mlp_model, rnn_model) -> None:
    p = NotesLatexPrinter(mlp_model)
    i, h1 = mlp_model.indices["i"], mlp_model.indices["h1"]
    # the layer label (1) is dropped: the index h_1 already names the layer (Graves' a_h)
    assert p.doprint(q(mlp_model, "a1")[h1]) == "a_{h_{1}}"
    assert p.doprint(q(mlp_model, "W_xh1")[i, h1]) == r"w_{i\,h_{1}}"
    r = NotesLatexPrinter(rnn_model)
    h, t = rnn_model.indices["h"], rnn_model.indices["t"]
    assert r.doprint(q(rnn_model, "s")[h, t]) == "s_{c,h}^{t}"
    assert r.doprint(q(rnn_model, "a_y")[rnn_model.indices["k"], t]) == r"\hat{a}_{k}^{t}"


def test_adjoints_print_as_their_symbols(mlp_model, rnn_model) -> None:
    p = NotesLatexPrinter(mlp_model)
    k, h1 = mlp_model.indices["k"], mlp_model.indices["h1"]
    assert p.doprint(d("a_y")[k]) == r"\delta_{k}"
    assert p.doprint(d("a1")[h1]) == r"\delta_{h_{1}}"
    r = NotesLatexPrinter(rnn_model)
    h, t = rnn_model.indices["h"], rnn_model.indices["t"]
    assert r.doprint(d("a_h")[h, t + 1]) == r"\delta_{h}^{t + 1}"
    assert r.doprint(d("s")[h, t]) == r"\epsilon_{s,h}^{t}"


def test_adjoints_without_a_symbol_print_as_partials(mlp_model, rnn_model) -> None:
    p = NotesLatexPrinter(mlp_model)
    i, h1 = mlp_model.indices["i"], mlp_model.indices["h1"]
    assert p.doprint(d("W_xh1")[i, h1]) == r"\frac{\partial L}{\partial w_{i\,h_{1}}}"
    r = NotesLatexPrinter(rnn_model)
    assert r.doprint(d("h0")[rnn_model.indices["h"]]) == r"\frac{\partial L}{\partial b_{h}^{(0)}}"


def test_partial(mlp_model) -> None:
    p = NotesLatexPrinter(mlp_model)
    k, kp = mlp_model.indices["k"], Idx("k'", (0, mlp_model.sizes["K"] - 1))
    loss = sympy.Symbol("L")
    assert p.doprint(Partial(loss, q(mlp_model, "y")[k])) == r"\frac{\partial L}{\partial y_{k}}"
    assert (p.doprint(Partial(q(mlp_model, "y")[kp], q(mlp_model, "a_y")[k]))
            == r"\frac{\partial y_{k'}}{\partial a_{k}}")


def test_kronecker_delta(rnn_model) -> None:
    p = NotesLatexPrinter(rnn_model)
    k, t = rnn_model.indices["k"], rnn_model.indices["t"]
    kp = Idx("k'", (k.lower, k.upper))
    tp = Idx("t'", (t.lower, t.upper))
    assert p.doprint(KroneckerDelta(k, kp)) == r"\delta_{k k'}"
    assert p.doprint(KroneckerDelta(tp - 1, t)) == r"\delta_{t' - 1, t}"


def test_sums_show_their_indices_only(rnn_model) -> None:
    p = NotesLatexPrinter(rnn_model)
    k, t = rnn_model.indices["k"], rnn_model.indices["t"]
    z = q(rnn_model, "z")
    assert p.doprint(Sum(z[k, t], (k, k.lower, k.upper))) == r"\sum_{k} z_{k}^{t}"
    assert p.doprint(Sum(z[k, t], (k, k.lower, k.upper), (t, t.lower, t.upper))) == (
        r"\sum_{k}\sum_{t} z_{k}^{t}")
    nested = Sum(Sum(z[k, t], (k, k.lower, k.upper)), (t, t.lower, t.upper))
    assert p.doprint(nested).replace(" ", "") in (r"\sum_{k}\sum_{t}z_{k}^{t}",
                                                  r"\sum_{t}\sum_{k}z_{k}^{t}")


def test_range_conditions_are_hidden_in_products(rnn_model) -> None:
    h, t = rnn_model.indices["h"], rnn_model.indices["t"]
    T = rnn_model.sizes["T"]
    term = InRange(t, 1, T - 1) * d("a_h")[h, t + 1]
    assert NotesLatexPrinter(rnn_model).doprint(term) == r"\delta_{h}^{t + 1}"
    assert NotesLatexPrinter(rnn_model).doprint(-term) == r"- \delta_{h}^{t + 1}"
    shown = NotesLatexPrinter(rnn_model, {"show_ranges": True}).doprint(term)
    assert r"\left[t \le T - 1\right]" in shown
    assert NotesLatexPrinter(rnn_model).doprint(InRange(t, 2, T)) == r"\left[t \ge 2\right]"


def test_index_names(mlp_model, rnn_model) -> None:
    p = NotesLatexPrinter(mlp_model)
    H1 = mlp_model.sizes["H1"]
    assert p.doprint(Idx("h1'", (0, H1 - 1))) == "h'_{1}"
    assert p.doprint(Idx("h1#7", (0, H1 - 1))) == "h_{1}"
    assert p.doprint(Idx("k_", (0, mlp_model.sizes["K"] - 1))) == "k'"
    r = NotesLatexPrinter(rnn_model)
    K = rnn_model.sizes["K"]
    assert r.doprint(Idx("k_", (0, K - 1))) == "k'"  # declared without latex=
    assert r.doprint(Idx("k''", (0, K - 1))) == "k''"
    assert r.doprint(Idx("k'#3", (0, K - 1))) == "k'"


def test_functions(rnn_model) -> None:
    p = NotesLatexPrinter(rnn_model)
    h, t = rnn_model.indices["h"], rnn_model.indices["t"]
    a = q(rnn_model, "a_h")[h, t]
    assert p.doprint(logistic(a)) == r"\sigma{\left(a_{h}^{t}\right)}"
    assert p.doprint(relu(a)) == r"\operatorname{relu}{\left(a_{h}^{t}\right)}"
    assert p.doprint(step(a)) == r"\left[a_{h}^{t} > 0\right]"
    assert p.doprint(log(a)) == r"\ln a_{h}^{t}"
    assert p.doprint(log(a + 1)) == r"\ln{\left(a_{h}^{t} + 1\right)}"


def test_a_logarithm_in_a_product_comes_last_or_in_brackets(rnn_model) -> None:
    p = NotesLatexPrinter(rnn_model)
    k, t = rnn_model.indices["k"], rnn_model.indices["t"]
    y, z = q(rnn_model, "y")[k, t], q(rnn_model, "z")[k, t]
    assert p.doprint(-z * log(y)) == r"- z_{k}^{t} \ln y_{k}^{t}"
    assert p.doprint(log(z) * log(y)) in (r"\ln{\left(z_{k}^{t}\right)} \ln y_{k}^{t}",
                                          r"\ln{\left(y_{k}^{t}\right)} \ln z_{k}^{t}")
    assert p.doprint(log(y) * z / y) == r"\frac{z_{k}^{t}}{y_{k}^{t}} \ln y_{k}^{t}"


def test_powers_of_scripted_symbols(mlp_model, rnn_model) -> None:
    p = NotesLatexPrinter(mlp_model)
    i, h1 = mlp_model.indices["i"], mlp_model.indices["h1"]
    assert p.doprint(q(mlp_model, "x")[i] ** 2) == "x_{i}^{2}"
    assert p.doprint(q(mlp_model, "act1")[h1] ** 2) == r"b_{h_{1}}^{2}"
    assert p.doprint(1 / q(mlp_model, "x")[i]) == r"\frac{1}{x_{i}}"
    r = NotesLatexPrinter(rnn_model)
    b = q(rnn_model, "b")[rnn_model.indices["h"], rnn_model.indices["t"]]
    assert r.doprint(1 - b**2) == r"1 - \left(b_{h}^{t}\right)^{2}"


def test_sizes_print_as_themselves(mlp_model) -> None:
    p = NotesLatexPrinter(mlp_model)
    assert p.doprint(mlp_model.sizes["K"] - 1) == "K - 1"
    assert p.doprint(sympy.Symbol("L")) == "L"


# --- TeX escaping ---------------------------------------------------------------------------


def test_tex_escape_specials() -> None:
    assert tex_escape(r"50% of a_b & #1 {x} $5 ~ ^ \ ") == (
        r"50\% of a\_b \& \#1 \{x\} \$5 \textasciitilde{} \textasciicircum{} "
        r"\textbackslash{} ")
    assert tex_escape("plain text, é") == "plain text, é"


def test_tex_escape_mathematical_characters_and_subscripts() -> None:
    assert tex_escape("Σ_k z_k = 1") == r"\ensuremath{\Sigma}\_k z\_k = 1"
    assert tex_escape("Σ_k z_k = 1", subscripts=True) == (
        r"\ensuremath{\Sigma}\textsubscript{k} z\textsubscript{k} = 1")
    assert tex_escape("W_xh", subscripts=True) == r"W\_xh"


def test_user_text_is_escaped_in_the_document() -> None:
    model = recurrent_model(title="RNN: 100% & #1_{x}", description="costs $5 ~ more")
    tex = render_tex(derive(model))
    assert r"\title{RNN: 100\% \& \#1\_\{x\}}" in tex
    assert r"costs \$5 \textasciitilde{} more" in tex


# --- documents ---------------------------------------------------------------------------------


def test_template_reads_exactly_what_the_backend_fills(mlp_derivation, rnn_derivation) -> None:
    for derivation in (mlp_derivation, rnn_derivation):
        assert set(tex_context(derivation)) == template_variables(TEMPLATE)


def test_document_is_standalone_and_says_it_is_generated(mlp_tex) -> None:
    first_lines = mlp_tex.splitlines()[:3]
    assert first_lines[0].startswith("% Generated by chainrule from the model \"mlp\"")
    assert any("Do not edit by hand" in line for line in first_lines)
    assert r"\documentclass" in mlp_tex and mlp_tex.rstrip().endswith(r"\end{document}")
    for package in (r"\usepackage[T1]{fontenc}", r"\usepackage{lmodern}",
                    r"\usepackage{amsmath}", r"\usepackage{amssymb}", "{hyperref}"):
        assert package in mlp_tex
    assert "breqn" not in mlp_tex
    assert r"\date{}" in mlp_tex and r"\today" not in mlp_tex


def test_render_is_deterministic(mlp_model, rnn_model) -> None:
    for model in (mlp_model, rnn_model):
        assert render_tex(derive(model)) == render_tex(derive(model))


def test_mlp_output_adjoint_is_boxed_as_derived(mlp_derivation, mlp_tex) -> None:
    p = NotesLatexPrinter(mlp_derivation.model)
    adjoint = mlp_derivation.adjoint("a_y")
    result = p.doprint(adjoint.expr)
    assert result == "y_{k} - z_{k}"
    assert rf"\boxed{{{p.doprint(adjoint.lhs)} = {result}}}" in mlp_tex
    assert r"\delta_{k} := \frac{\partial L}{\partial a_{k}}" in mlp_tex


def test_forward_equations_and_loss_are_numbered(mlp_model, mlp_tex) -> None:
    p = NotesLatexPrinter(mlp_model)
    for name in mlp_model.evaluation_order():
        equation = mlp_model.equations[name]
        assert rf"\label{{eq:fwd:{name}}}" in mlp_tex
        assert f"{p.doprint(equation.lhs)} = {p.doprint(equation.rhs)}" in mlp_tex
    assert r"\label{eq:loss}" in mlp_tex
    assert r"L = - \sum_{k} z_{k} \ln y_{k}" in mlp_tex


@pytest.mark.parametrize("which", ["mlp", "rnn"])
def test_every_adjoint_and_every_step_is_shown(which, request) -> None:
    derivation = request.getfixturevalue(f"{which}_derivation")
    tex = request.getfixturevalue(f"{which}_tex")
    p = NotesLatexPrinter(derivation.model)
    for name, adjoint in derivation.adjoints.items():
        assert rf"\label{{sec:adj:{name}}}" in tex
        assert rf"\label{{eq:adj:{name}}}" in tex
        for recorded in adjoint.steps:
            assert tex_escape(recorded.rule, subscripts=True) in tex
        for local in adjoint.local_partials:
            assert p.doprint(local.partial) in tex
            for rule in local.rules:
                assert tex_escape(rule, subscripts=True) in tex


def test_lemmas_come_before_the_adjoint_that_uses_them(mlp_derivation, mlp_tex) -> None:
    lemma = mlp_tex.index(r"\label{sec:adj:y}")
    user = mlp_tex.index(r"\label{sec:adj:a_y}")
    assert lemma < user
    assert r"Lemma: $\partial L/\partial y_{k}$" in mlp_tex
    order = [mlp_tex.index(rf"\label{{sec:adj:{name}}}") for name in mlp_derivation.adjoints]
    assert order == sorted(order)
    gradients = mlp_tex.index(r"\section{Parameter gradients}")
    assert all(mlp_tex.index(rf"\label{{sec:adj:{name}}}") > gradients
               for name in mlp_derivation.gradients)


def test_recurrent_notes_state_the_boundary_condition(rnn_tex) -> None:
    assert "Graves' boundary condition" in rnn_tex
    assert r"\delta_{h'}^{T + 1} = 0" in rnn_tex
    assert r"\epsilon_{s,h}^{T + 1} = 0" in rnn_tex
    assert r"t \le T - 1" in rnn_tex
    assert "InRange" not in rnn_tex and r"\left[" not in rnn_tex.split(r"\section{Backward")[0]
    assert r"b_{h}^{0} = {b^{(0)}}_{h}" in rnn_tex or r"b_{h}^{0} = b_{h}^{(0)}" in rnn_tex


def test_long_sums_break_over_lines(rnn_derivation) -> None:
    notes = _Notes(rnn_derivation)
    model = rnn_derivation.model
    h, t = model.indices["h"], model.indices["t"]
    long = sum((q(model, "b")[h, t] ** n for n in range(1, 25)), sympy.S.Zero)
    rows = notes.rows("X", "=", long)
    assert len(rows) > 1
    assert rows[0]["left"] == "X" and rows[0]["right"].startswith("= ")
    assert all(row["right"].startswith(r"\quad + ") for row in rows[1:])
    assert len(notes.rows("X", "=", q(model, "b")[h, t])) == 1


# --- compiling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["mlp", "rnn"])
def test_document_compiles(which, request, tmp_path: Path) -> None:
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        reason = (f"pdflatex is not on PATH; to compile the notes install the Debian "
                  f"packages {TEX_PACKAGES} (apt-get install --no-install-recommends "
                  f"{TEX_PACKAGES})")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI installs TeX, so this test must not be skipped there")
        pytest.skip(reason)
    tex = request.getfixturevalue(f"{which}_tex")
    (tmp_path / "notes.tex").write_text(tex, encoding="utf-8")
    for _ in range(2):  # the second run resolves the references
        run = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error",
                              "notes.tex"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120, check=False)
        assert run.returncode == 0, run.stdout[-3000:]
    log_text = (tmp_path / "notes.log").read_text(encoding="utf-8", errors="replace")
    assert "undefined references" not in log_text
    assert "Token not allowed in a PDF string" not in log_text  # bookmarks are plain text
    assert (tmp_path / "notes.pdf").stat().st_size > 0
    assert "Overfull" not in log_text


def test_one_convention_of_symbols_in_every_network() -> None:
    """Graves' letters: the output adjoint is δ_k^t everywhere, a label that only repeats the
    unit index is not printed beside it (no a_{c,c}), a label that tells apart weights of the
    same sizes stays (the LSTM's gates)."""
    from chainrule.symbolic.networks import BUILTINS

    for name in ("mlp", "rnn", "lstm", "lstm_no_peepholes"):
        derivation = derive(BUILTINS[name]())
        p = NotesLatexPrinter(derivation.model)
        output = derivation.adjoint("a_y")
        assert p.doprint(output.lhs) in (r"\delta_{k}", r"\delta_{k}^{t}"), name
        assert p.doprint(output.expr) in ("y_{k} - z_{k}", "y_{k}^{t} - z_{k}^{t}"), name
    lstm = derive(BUILTINS["lstm"]())
    p = NotesLatexPrinter(lstm.model)
    c, t = lstm.model.indices["c"], lstm.model.time_index
    assert p.doprint(q(lstm.model, "h")[c, t - 1]) == "b_{c}^{t - 1}"
    assert p.doprint(q(lstm.model, "a_c")[c, t]) == "a_{c}^{t}"
    assert p.doprint(q(lstm.model, "W_hy")[c, lstm.model.indices["k"]]) == "w_{c k}"
    assert p.doprint(q(lstm.model, "W_xi")[lstm.model.indices["i"], c]) == r"w_{i c}^{(x\iota)}"
    # the logistic derivative stays together: b(1 - b)
    assert r"b_{\omega,c}^{t} \left(1 - b_{\omega,c}^{t}\right)" in p.doprint(
        lstm.adjoint("a_o").expr)
