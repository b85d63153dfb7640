"""Printable notes: the words table, the computation graph, the combined document, the
``chainrule notes`` command, and, where TeX is installed, the PDFs themselves.

The PDFs are built once per language for every built-in network (pdflatex for
English, xelatex for Chinese, through latexmk) and read back with ``pdftotext``:
they must compile without errors and without overfull boxes wider than 1pt,
carry the key results with their Greek letters as real characters (the MLP's
``δk = yk − zk``, the LSTM's ``ε_s^t`` recursion), their figures and their
bookmarks. Without TeX those tests are skipped with the packages to install,
except under CI (``CI=true``), where they fail: CI installs TeX.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chainrule.codegen.app import cli
from chainrule.codegen.backends.latex import build as notes
from chainrule.codegen.backends.latex.backend import (
    BOOK,
    PREAMBLE,
    TEMPLATE,
    TRACE,
    preamble,
    render_book,
    render_tex,
    tex_context,
)
from chainrule.codegen.backends.latex.figure import layers, tikz_graph
from chainrule.codegen.backends.latex.printer import NotesLatexPrinter
from chainrule.codegen.backends.latex.words import (
    LANGUAGES,
    RULES,
    TEXT,
    model_text,
    rule_name,
    strings,
)
from chainrule.codegen.templating import template_variables
from chainrule.codegen.worked_example import run_example, run_examples
from chainrule.symbolic import Role, Rule, derive
from chainrule.symbolic.networks import BOOK as IN_BOOK
from chainrule.symbolic.networks import BUILTINS

NETS = list(BUILTINS)


@pytest.fixture(scope="module")
def derivations():
    return {name: derive(build()) for name, build in BUILTINS.items()}


# --- the words ----------------------------------------------------------------------------------


def test_every_piece_of_text_is_in_every_language() -> None:
    for key, column in TEXT.items():
        assert set(column) == set(LANGUAGES), key
        fields = {lang: set(re.findall(r"(?<!\{)\{(\w+)\}(?!\})", text))
                  for lang, text in column.items()}
        # both fill the same blanks, but for grammar one language has and another lacks
        assert fields["zh"] <= fields["en"] and fields["en"] - fields["zh"] <= {"verb"}, key


def test_rule_names_translate_and_unknown_rules_stay_as_named(derivations) -> None:
    for derivation in derivations.values():
        for adjoint in derivation.adjoints.values():
            for step in adjoint.steps:
                assert step.rule_key in RULES, step.rule_key
    assert rule_name(Rule.CHAIN_RULE, "zh") == "链式法则"
    assert rule_name(Rule.CHAIN_RULE, "en") == "chain rule"
    assert rule_name("a rule of my own", "zh") == "a rule of my own"
    with pytest.raises(ValueError, match="unknown language"):
        strings("fr")


def test_templates_read_exactly_what_the_backend_fills(derivations) -> None:
    for lang in LANGUAGES:
        assert set(tex_context(derivations["lstm"], lang)) == template_variables(TEMPLATE)
        assert set(tex_context(derivations["lstm"], lang, detail="full")) == template_variables(
            TRACE)
    assert template_variables(PREAMBLE) == {"lang"}
    assert template_variables(BOOK) == {"model_names", "preamble", "title", "author", "intro",
                                        "parts"}


def test_chinese_notes_have_chinese_headings_and_the_same_mathematics(derivations) -> None:
    en, zh = render_tex(derivations["lstm"], "en"), render_tex(derivations["lstm"], "zh")
    for heading in ("前向传播", "反向传播", "参数梯度", "小结", "链式法则"):
        assert heading in zh
    assert r"\documentclass[fontset=none,zihao=-4]{ctexart}" in zh
    assert "Noto Serif CJK SC" in zh and "glyphtounicode" not in zh
    assert "glyphtounicode" in en and "ctexart" not in en
    equations = re.compile(r"\\begin\{equation\}.*?\\end\{equation\}", re.S)
    assert equations.findall(en) == equations.findall(zh)


def test_notes_are_the_same_bytes_on_every_run(derivations) -> None:
    for lang in LANGUAGES:
        assert render_tex(derivations["rnn"], lang) == render_tex(derive(BUILTINS["rnn"]()), lang)
        assert render_book(list(derivations.values()), lang) == render_book(
            list(derivations.values()), lang)


def test_the_preamble_makes_greek_searchable() -> None:
    en = preamble("en")
    assert r"\pdfgentounicode=1" in en and r"\input{glyphtounicode}" in en
    assert r"\pdfglyphtounicode{summationdisplay}{2211}" in en
    assert r"\renewcommand{\epsilon}{\varepsilon}" in en


# --- the figure ---------------------------------------------------------------------------------


def test_the_figure_has_every_quantity_but_the_parameters(derivations) -> None:
    for name, derivation in derivations.items():
        model = derivation.model
        picture = tikz_graph(model, NotesLatexPrinter(model))
        assert r"\begin{tikzpicture}" in picture and r"\end{tikzpicture}" in picture
        shown = set(layers(model))
        for q in model.quantities.values():
            expected = q.role in (Role.INPUT, Role.TARGET, Role.INTERMEDIATE, Role.LOSS)
            assert (q.name in shown) == expected, (name, q.name)


def test_recurrent_figures_show_the_steps_before_and_after(derivations) -> None:
    mlp = derivations["mlp"].model
    assert "rec]" not in tikz_graph(mlp, NotesLatexPrinter(mlp))
    rnn = derivations["rnn"].model
    picture = tikz_graph(rnn, NotesLatexPrinter(rnn))
    assert r"{$\delta_{h}^{t + 1}$}" in picture and r"{$W^{(hh)}$}" in picture  # unrolled
    assert r"{$x_{i}^{t - 1}$}" in picture and r"{$x_{i}^{t + 1}$}" in picture
    model = derivations["lstm"].model
    picture = tikz_graph(model, NotesLatexPrinter(model))
    # the peepholes: the input and forget gates read s^{t-1}, the output gate reads s^t
    assert r"{$s_{c}^{t - 1}$}" in picture and "{$t + 1$}" in picture
    assert picture.count(r"{$\times$}") == 3  # the multiplicative units
    assert r"b_{\phi,c}^{t} = \sigma" in picture  # a gate: its net input inside
    plain = derivations["lstm_no_peepholes"].model
    assert r"w^{(c\omega)}" in picture and r"w^{(c\omega)}" not in tikz_graph(
        plain, NotesLatexPrinter(plain))


def test_the_layers_go_from_the_inputs_to_the_loss(derivations) -> None:
    model = derivations["lstm"].model
    level = layers(model)
    assert level["x"] == 0 and level["L"] == max(level.values())
    assert level["a_i"] < level["g_i"] < level["s"] < level["a_o"] < level["g_o"] < level["h"]


# --- the combined document ----------------------------------------------------------------------


def test_the_book_has_a_table_of_contents_and_one_part_per_network(derivations) -> None:
    book = render_book(list(derivations.values()), "en")
    assert r"\tableofcontents" in book
    assert book.count(r"\part{") == len(derivations)
    assert book.count(r"\documentclass") == 1 and book.count(r"\end{document}") == 1
    labels = re.findall(r"\\label\{([^}]*)\}", book)
    assert len(labels) == len(set(labels))  # parts do not clash
    for ref in re.findall(r"\\ref\{([^}]*)\}", book):
        assert ref in labels, ref


def test_user_text_is_escaped(derivations) -> None:
    from tests.test_latex import recurrent_model

    model = recurrent_model(title="50% & $x_1$ #2")
    for lang in LANGUAGES:
        tex = render_tex(derive(model), lang)
        assert r"\title{50\% \& \$x\_1\$ \#2}" in tex
        assert r"\texttt{tiny\_rnn}" in render_tex(derive(model), lang, detail="full")


# --- the command without TeX --------------------------------------------------------------------


def test_without_tex_the_command_writes_the_tex_and_names_the_packages(
        tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(notes, "missing_tex", lambda lang: ["latexmk", "texlive-xetex"])
    status = cli.main(["notes", "mlp", "--lang", "zh", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 1
    derivation = derive(BUILTINS["mlp"]())
    assert (tmp_path / "mlp.tex").read_text(encoding="utf-8") == render_tex(
        derivation, "zh", example=run_example(derivation))
    assert "apt-get install -y --no-install-recommends latexmk texlive-xetex" in captured.err
    assert not list(tmp_path.glob("*.pdf"))


def test_the_book_holds_the_networks_it_is_given(derivations) -> None:
    chosen = list(derivations.values())
    assert notes.book_of(chosen) == chosen and notes.book_of(chosen, False) == []
    assert [d.model.name for d in notes.book_of(chosen, ("blstm", "mlp"))] == ["mlp", "blstm"]
    assert notes.book_of(chosen, ["rnn"]) == []  # one network is its own notes, not a book
    with pytest.raises(TypeError, match="not one string"):
        notes.book_of(chosen, "rnn")


def test_the_command_puts_graves_chapters_in_the_book_unless_networks_are_named(
        derivations, tmp_path: Path, monkeypatch, capsys) -> None:
    """``chainrule notes`` writes every built-in's notes and a book of ``BOOK`` only; named
    networks make the book of those (rendering stubbed: this checks the selection)."""
    from chainrule import symbolic

    assert set(IN_BOOK) < set(BUILTINS) and {"brnn", "blstm"}.isdisjoint(IN_BOOK)
    monkeypatch.setattr(notes, "missing_tex", lambda lang: ["latexmk"])
    monkeypatch.setattr(symbolic, "derive", lambda model: derivations[model.name])
    from chainrule.codegen import worked_example

    monkeypatch.setattr(worked_example, "run_examples", lambda ds: {})
    monkeypatch.setattr(notes, "render_tex",
                        lambda d, lang, detail="short", example=None: d.model.name)
    monkeypatch.setattr(notes, "render_book", lambda ds, lang, detail="short", examples=None:
                        " ".join(d.model.name for d in ds))
    for argv, book in (((), " ".join(IN_BOOK)), (("blstm", "brnn"), "blstm brnn"),
                       (("brnn",), None)):
        out = tmp_path / "-".join(argv or ("all",))
        assert cli.main(["notes", *argv, "--out", str(out)]) == 1
        written = {p.stem: p.read_text(encoding="utf-8") for p in out.glob("*.tex")}
        assert {n: t for n, t in written.items() if n != notes.BOOK_NAME} == {
            n: n for n in (argv or NETS)}
        assert written.get(notes.BOOK_NAME) == book, argv
    capsys.readouterr()


def test_the_command_refuses_an_unknown_network_or_language(tmp_path: Path, capsys) -> None:
    assert cli.main(["notes", "nope", "--out", str(tmp_path)]) == 2
    assert "known networks" in capsys.readouterr().err
    assert cli.main(["notes", "--lang", "fr", "--out", str(tmp_path)]) == 2


def test_missing_tex_names_the_debian_packages(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no latexmk, no kpsewhich, no fc-list
    assert notes.missing_tex("en") == list(notes.PACKAGES["en"])
    assert notes.missing_tex("zh") == list(notes.PACKAGES["zh"])
    assert {"texlive-xetex", "texlive-lang-chinese", "fonts-noto-cjk"} <= set(notes.PACKAGES["zh"])


def test_built_in_networks_are_named_in_both_languages(derivations) -> None:
    en, zh = render_tex(derivations["lstm"], "en"), render_tex(derivations["lstm"], "zh")
    assert r"\title{Long short-term memory}" in en and "长短期记忆网络" in zh
    for heading in ("遗忘门", "输出门", "输入门", "输出层", "细胞状态"):
        assert heading in zh
    assert "(forget gate" in en
    assert "隐层" in render_tex(derivations["rnn"], "zh")


def test_overfull_boxes_are_read_from_the_log() -> None:
    log = ("Overfull \\hbox (0.5pt too wide) in paragraph at lines 1--2\n"
           "Overfull \\hbox (12.25pt too wide) detected at line 40\n")
    assert notes.overfull_boxes(log) == ["Overfull \\hbox (12.25pt too wide) detected at line 40"]


# --- the PDFs -----------------------------------------------------------------------------------


def _need_tex(lang: str) -> None:
    missing = notes.missing_tex(lang)
    if shutil.which("pdftotext") is None:
        missing.append("poppler-utils")
    if missing:
        reason = (f"TeX for the {lang!r} notes is missing: {notes.install_hint(missing)}")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI installs TeX, so these tests must not be skipped there)")
        pytest.skip(reason)


@pytest.fixture(scope="module", params=LANGUAGES)
def built(request, derivations, tmp_path_factory):
    lang = request.param
    _need_tex(lang)
    out = tmp_path_factory.mktemp(f"notes-{lang}")
    documents = notes.build(list(derivations.values()), lang, out, book=IN_BOOK,
                            examples=run_examples(list(derivations.values())))
    return lang, {d.tex.stem: d for d in documents}


def _text(pdf: Path) -> str:
    run = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                         text=True, check=True)
    return run.stdout


def test_every_document_compiles_without_overfull_boxes(built) -> None:
    lang, documents = built
    assert set(documents) == {*NETS, notes.BOOK_NAME}
    for name, document in documents.items():
        assert document.ok, f"{name} ({lang}): {document.error}"
        assert document.overfull == [], f"{name} ({lang}): {document.overfull}"


def test_the_pdfs_carry_the_key_results_as_real_characters(built, derivations) -> None:
    lang, documents = built
    mlp = _text(documents["mlp"].pdf)
    assert "δk = yk − zk" in mlp  # softmax and cross-entropy, in the summary
    assert "∂L" in mlp and "∑" in mlp
    assert ("quotient rule" if lang == "en" else "商的求导法则") in mlp  # the softmax Jacobian
    assert "softmax" in mlp and "⊙" in mlp  # the matrix forms
    lstm = _text(documents["lstm"].pdf)
    assert "εts,c =" in lstm  # the heading and summary of ε_s^t, searchable
    assert "εt+1" in lstm  # the recursion reads ε_s^{t+1}
    book = _text(documents[notes.BOOK_NAME].pdf)
    for name, derivation in derivations.items():  # Graves' chapters, not the bidirectional
        title = model_text(derivation.model.title, lang).split("（")[0]
        assert (title in book) == (name in IN_BOOK), name
    headings = ("前向传播", "反向传播") if lang == "zh" else ("Forward pass", "Backward pass")
    for text in (mlp, lstm):
        for heading in headings:
            assert heading in text


def _bookmark_title(line: str) -> str:
    """A bookmark's title from hyperref's .out file: octal-escaped UTF-16 after a BOM."""
    raw = re.search(r"\\BOOKMARK \[\d+\]\[[^]]*\]\{[^}]*\}\{(.*)\}\{[^}]*\}", line)
    assert raw is not None, line
    text = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), raw.group(1))
    return text.encode("latin-1").decode("utf-16-be").lstrip("\ufeff")


def test_the_pdfs_have_their_figures_and_bookmarks(built) -> None:
    lang, documents = built
    caption = "图 1" if lang == "zh" else "Figure 1:"
    for name in NETS:
        text = _text(documents[name].pdf)
        assert caption in text, name
        outline = documents[name].tex.with_suffix(".out").read_text(encoding="latin-1")
        assert outline.count(r"\BOOKMARK") > 5, name
        titles = [_bookmark_title(line) for line in outline.splitlines() if "BOOKMARK" in line]
        # bookmarks are the headings: Graves' symbols, never a kernel's name
        assert any(title.startswith("2.1 δ") for title in titles), titles
        assert not any("_" in title for title in titles), titles
    assert (documents[notes.BOOK_NAME].tex.with_suffix(".toc")).exists()


def test_the_command_builds_one_network_without_a_book(tmp_path: Path, capsys) -> None:
    _need_tex("en")
    assert cli.main(["notes", "mlp", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "mlp.pdf").exists() and not (tmp_path / "notes.tex").exists()
    assert "mlp.pdf" in captured.out and "built 1 PDF in" in captured.err


def test_the_command_takes_a_spec_file(tmp_path: Path, capsys) -> None:
    _need_tex("en")
    spec = Path(__file__).resolve().parents[1] / "examples" / "gru.toml"
    assert cli.main(["notes", "--model", str(spec), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "gru.pdf").exists()
    assert cli.main(["notes", "mlp", "--model", str(spec), "--out", str(tmp_path)]) == 2
    assert "not both" in capsys.readouterr().err


# --- the notes a student reads ------------------------------------------------------------------

#: The page budgets of issue 13 (English, A4): the notes, not the full trace.
#: pages (English, A4); the bidirectional networks derive two recurrent layers each, in
#: full, with the worked example: the RNN's and the LSTM's pages, and a little less
BUDGETS = {"mlp": 4, "rnn": 4, "lstm": 7, "lstm_no_peepholes": 6, "brnn": 6, "blstm": 10,
           notes.BOOK_NAME: 24}


def test_the_worked_example_prints_the_kernels_numbers(derivations) -> None:
    from chainrule.codegen.backends.latex.example import matrix, number
    from chainrule.codegen.worked_example import run_example

    example = run_example(derivations["rnn"])
    assert example is not None and example.passed and example.sizes["K"] == 3
    assert example.sizes["T"] == 2
    tex = render_tex(derivations["rnn"], "en", example=example)
    assert f"$L = {number(example.loss)}$" in tex
    assert matrix(example.kernel) in tex and matrix(example.differences) in tex
    assert "less than $10^{-6}$" in tex


def _pages(pdf: Path) -> int:
    run = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", run.stdout, re.M).group(1))


def test_the_notes_keep_their_page_budgets(built) -> None:
    lang, documents = built
    if lang != "en":
        pytest.skip("the budgets are for the English notes")
    pages = {name: _pages(documents[name].pdf) for name in BUDGETS}
    assert all(pages[name] <= budget for name, budget in BUDGETS.items()), pages


def _summary_pages(pdf: Path, lang: str) -> tuple[int, int]:
    """The pages where the summary's heading and the backward loop's last line are."""
    heading = {"en": "Summary", "zh": "小结"}[lang]
    last = {"en": ("then sum the parameter gradients", "then the parameter gradients"),
            "zh": ("然后对", "然后计算参数梯度")}[lang]
    start = end = 0
    for page in range(1, _pages(pdf) + 1):
        run = subprocess.run(["pdftotext", "-enc", "UTF-8", "-f", str(page), "-l", str(page),
                              str(pdf), "-"], capture_output=True, text=True, check=True)
        lines = [line.strip() for line in run.stdout.splitlines()]
        if not start and heading in lines:
            start = page
        if any(line.startswith(last) for line in lines):
            end = page
    return start, end


def test_each_summary_is_one_page(built) -> None:
    lang, documents = built
    for name in NETS:
        start, end = _summary_pages(documents[name].pdf, lang)
        assert start and end, (name, lang)
        # the bidirectional LSTM's too: its layer that reads t+1 is said to mirror the
        # other (codegen/backends/latex/mirror.py), not printed again
        assert end == start, (name, lang, start, end)


def test_a_spec_network_keeps_its_page_budget(tmp_path: Path) -> None:
    _need_tex("en")
    from chainrule.symbolic.spec import load_spec

    spec = Path(__file__).resolve().parents[1] / "examples" / "gru.toml"
    derivation = derive(load_spec(spec))
    (document,) = notes.build([derivation], "en", tmp_path,
                              examples=run_examples([derivation]))
    assert document.ok and document.overfull == [], document.error or document.overfull
    assert _pages(document.pdf) <= 7
    start, end = _summary_pages(document.pdf, "en")
    assert start and start == end


def _prose(tex: str) -> str:
    """The notes without the appendix table, the comments and the preamble."""
    body = tex.split(r"\begin{document}", 1)[-1]
    body = re.sub(r"\\begin\{tikzpicture\}.*?\\end\{tikzpicture\}", "", body, flags=re.S)
    body = re.sub(r"\\(label|ref)\{[^}]*\}", "", body)  # labels are not shown
    return body.split(r"\appendix", 1)[0]


def test_no_kernel_name_outside_the_appendix(derivations) -> None:
    for name, derivation in derivations.items():
        for lang in LANGUAGES:
            prose = _prose(render_tex(derivation, lang))
            assert r"\texttt" not in prose.replace(r"\texttt{chainrule verify}", ""), name
            for q in derivation.model.quantities:
                if "_" in q or len(q) > 2:
                    assert q not in prose and q.replace("_", r"\_") not in prose, (name, q)
            assert "内核" not in prose and "消费者" not in prose and "Kronecker delta" not in (
                prose if lang == "zh" else ""), name


def test_no_displayed_equation_says_a_equals_a(derivations) -> None:
    row = re.compile(r"^(.*?)\s*&= (.*?)(?: && .*)?(?: \\notag)?(?: \\\\)?$")
    for name, derivation in derivations.items():
        tex = render_tex(derivation, "en")
        for line in tex.splitlines():
            match = row.match(line.strip())
            if match and match.group(1):
                assert match.group(1).strip() != match.group(2).strip(), (name, line)
        for lhs, rhs in re.findall(r"^(\S[^&\n]*?) = (.*)$", tex, re.M):
            assert lhs.strip() != rhs.strip(), (name, lhs)


def test_chinese_punctuation_is_full_width_beside_chinese(derivations) -> None:
    cjk = r"[\u4e00-\u9fff]"
    half = re.compile(rf"{cjk}[:(),;]|[:(),;]{cjk}")
    for name, derivation in derivations.items():
        prose = _prose(render_tex(derivation, "zh"))
        text = re.sub(r"\$[^$]*\$", "", prose)  # mathematics has its own punctuation
        assert not half.findall(text), (name, half.findall(text)[:5])


def test_the_summary_has_index_and_matrix_forms(derivations) -> None:
    rnn = render_tex(derivations["rnn"], "en")
    summary = rnn.split(r"\section{Summary}", 1)[1]
    assert r"\sum_{k} w_{h k} \delta_{k}^{t}" in summary  # index form
    assert r"W^{(hy)} \delta^{(y)\,t}" in summary  # the same sum as a matrix product
    assert r"\sum_{t} x^{t} (\delta^{t})^{\top}" in summary  # ∂L/∂W = Σ_t x (δ)ᵀ
    assert r"t = T, \dots, 1" in summary and r"\delta_{h}^{T + 1} = 0" in summary


def test_the_full_trace_is_still_there(derivations, tmp_path: Path) -> None:
    full = render_tex(derivations["rnn"], "en", detail="full")
    assert "Kronecker delta" in full and full != render_tex(derivations["rnn"], "en")
    with pytest.raises(ValueError, match="unknown detail"):
        render_tex(derivations["rnn"], "en", detail="some")
