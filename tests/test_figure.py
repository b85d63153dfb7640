"""The figures' geometry: for every built-in network and every example spec, no edge passes
through a node other than its ends, and no edge label covers a node or another label.

The boxes and segments are the ones ``layout.py`` computes and ``figure.py`` prints at
exactly those sizes, so this checks the picture in the PDF.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.codegen.backends.latex.figure import drawing, fit_scale, tikz_graph
from chainrule.codegen.backends.latex.layout import Box, collisions, segment_hits
from chainrule.codegen.backends.latex.printer import NotesLatexPrinter
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import load_spec

SPECS = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


def _models():
    yield from ((name, build()) for name, build in BUILTINS.items())
    yield from ((path.stem, load_spec(path)) for path in SPECS)


@pytest.mark.parametrize("name,model", list(_models()), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_no_edge_passes_through_a_node(name, model) -> None:
    picture = drawing(model, NotesLatexPrinter(model))
    assert picture.layout.paths, name
    assert collisions(picture.layout) == [], name


def test_the_check_sees_an_edge_through_a_box() -> None:
    box = Box(0.0, 0.0, 1.0, 0.5)
    assert segment_hits((-2.0, 0.0), (2.0, 0.1), box)
    assert not segment_hits((-2.0, 1.0), (2.0, 1.0), box)
    assert not segment_hits((0.6, -1.0), (0.6, 1.0), box)


def test_the_mlp_is_one_row_and_the_rnn_three_steps() -> None:
    mlp = drawing(BUILTINS["mlp"](), NotesLatexPrinter(BUILTINS["mlp"]()))
    heights = [b.y for b in mlp.layout.boxes.values()]
    assert max(heights) - min(heights) < 1.0  # layer by layer, left to right: one row
    rnn = BUILTINS["rnn"]()
    steps = drawing(rnn, NotesLatexPrinter(rnn))
    assert {"x@-1", "x@0", "x@1"} <= set(steps.layout.boxes)
    assert any(p.style == "back" for p in steps.layout.paths)  # δ^{t+1} flows back



def test_the_brnn_is_unrolled_with_its_backward_layer_above_the_forward_one() -> None:
    """Graves' Fig. 3.4: the forward layer's recurrence runs from t-1 to t, the backward
    layer's, in the rows above, from t+1 to t; the adjoints flow the other way."""
    model = BUILTINS["brnn"]()
    picture = drawing(model, NotesLatexPrinter(model))
    boxes = picture.layout.boxes
    assert {f"{q}@{s}" for q in ("f", "g", "a_f", "a_g") for s in (-1, 0, 1)} <= set(boxes)
    assert picture.text["f@-1"].endswith("t - 1}") and picture.text["g@1"].endswith("t + 1}")
    assert max(boxes[f"{q}@0"].y for q in ("a_f", "f")) < min(
        boxes[f"{q}@0"].y for q in ("a_g", "g"))
    steps = {(p.source, p.target) for p in picture.layout.paths if p.style != "back"}
    back = {(p.source, p.target) for p in picture.layout.paths if p.style == "back"}
    assert {("f@-1", "a_f@0"), ("f@0", "a_f@1"), ("g@1", "a_g@0"), ("g@0", "a_g@-1")} <= steps
    assert not {("f@1", "a_f@0"), ("g@-1", "a_g@0")} & steps  # each layer one way in time
    assert {("a_f@0", "f@-1"), ("a_g@0", "g@1")} <= back
    for u, v in (("f@-1", "a_f@0"), ("g@1", "a_g@0")):
        assert (boxes[u].x < boxes[v].x) == u.startswith("f")  # left to right, right to left


def test_the_blstm_shows_both_layers_and_their_directions() -> None:
    """One step: the forward layer reads t-1 and t+1 reads it, the reverse one the other
    way round, the two layers on either side of the input."""
    model = BUILTINS["blstm"]()
    picture = drawing(model, NotesLatexPrinter(model))
    text, boxes = picture.text, picture.layout.boxes
    forward, backward = {"h", "s"}, {"h_r", "s_r"}
    assert {n for n in boxes if n.startswith("prev:")} == {
        *(f"prev:{q}:-1" for q in forward), *(f"prev:{q}:1" for q in backward)}
    for q in forward:
        assert text[f"prev:{q}:-1"].endswith("t - 1}"), text[f"prev:{q}:-1"]
    for q in backward:
        assert text[f"prev:{q}:1"].endswith("t + 1}"), text[f"prev:{q}:1"]
    ahead = {n.split(":")[1]: text[n] for n in boxes if n.startswith("next:")}
    assert set(ahead) == forward | backward and all(
        step == ("t + 1" if q in forward else "t - 1") for q, step in ahead.items()), ahead
    x, f, b = boxes["x"], boxes["prev:h:-1"], boxes["prev:h_r:1"]
    assert (f.x - x.x) * (b.x - x.x) < 0 or (f.y - x.y) * (b.y - x.y) < 0


@pytest.mark.parametrize("name,points", [("lstm", 4.9), ("lstm_no_peepholes", 7.0),
                                         ("blstm", 4.0)])
def test_the_lstm_figures_print_their_labels_legibly(name: str, points: float) -> None:
    """A label is in \\scriptsize (7pt) in a picture scaled down to fit the page; a tall one
    is drawn from left to right where that prints it larger."""
    model = BUILTINS[name]()
    picture = drawing(model, NotesLatexPrinter(model))
    assert 7 * fit_scale(picture.layout) >= points, name
    plain = BUILTINS["lstm_no_peepholes"]()
    assert r"\scalebox" not in tikz_graph(plain, NotesLatexPrinter(plain))
