"""The figures' geometry: for every built-in network and every example spec, no edge passes
through a node other than its ends, and no edge label covers a node or another label.

The boxes and segments are the ones ``layout.py`` computes and ``figure.py`` prints at
exactly those sizes, so this checks the picture in the PDF.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.codegen.backends.latex.figure import drawing
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
