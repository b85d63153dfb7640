"""The layer of a bidirectional network that mirrors another in time
(codegen/backends/latex/mirror.py): found from the equations, whatever the names, and
only where every equation agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.codegen.backends.latex.mirror import mirror
from chainrule.codegen.backends.latex.teaching import teaching_context
from chainrule.symbolic import derive
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import load_spec, loads_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_bidirectional_rnn_pairs_each_forward_quantity_with_its_mirror() -> None:
    assert mirror(BUILTINS["brnn"]()) == {
        "W_xf": "W_xg", "W_ff": "W_gg", "b_f": "b_g", "W_fy": "W_gy", "a_f": "a_g",
        "f": "g", "f0": "g0"}


def test_the_bidirectional_lstms_pair_every_quantity_of_the_layer_that_reads_t_minus_1(
        ) -> None:
    pairs = mirror(BUILTINS["blstm"]())
    assert pairs is not None and len(pairs) == 24, pairs
    assert pairs["h"] == "h_r" and pairs["W_xi"] == "W_xi_r" and pairs["h0"] == "h0_r"
    assert pairs["W_hy"] == "W_hy_r"  # the output layer's weights of each direction
    assert not {"x", "a_y", "y", "b_y"} & (pairs.keys() | set(pairs.values()))


def test_the_pairing_ignores_the_names() -> None:
    # blstm_peepholes names its reverse output weights W_h_ry and states h_r0, s_r0
    pairs = mirror(load_spec(EXAMPLES / "blstm_peepholes.toml"))
    assert pairs is not None and pairs["W_hy"] == "W_h_ry" and pairs["h0"] == "h_r0"
    assert pairs["p_i"] == "p_i_r" and len(pairs) == 27


@pytest.mark.parametrize("name", ["mlp", "rnn", "lstm", "lstm_no_peepholes"])
def test_a_network_reading_one_direction_has_no_mirror(name: str) -> None:
    assert mirror(BUILTINS[name]()) is None


def test_layers_that_differ_are_no_mirror_images() -> None:
    text = (EXAMPLES / "brnn.toml").read_text(encoding="utf-8")
    assert mirror(loads_spec(text)) is not None
    # the backward layer squashed by the logistic function, the forward one by tanh
    squashed = text.replace('"g[j, t] = tanh(a_g[j, t])"', '"g[j, t] = logistic(a_g[j, t])"')
    # the backward layer without its bias
    unbiased = text.replace("sum(W_gg[j_, j] * g[j_, t + 1], j_) + b_g[j]",
                            "sum(W_gg[j_, j] * g[j_, t + 1], j_)")
    for changed in (squashed, unbiased):
        assert changed != text and mirror(loads_spec(changed)) is None


def test_the_summary_prints_one_layer_and_names_the_mirror() -> None:
    context = teaching_context(derive(BUILTINS["blstm"]()))
    summary = context["summary"]
    assert r"b_{c} \mapsto b_{c}^{(r)}" in summary["mirror"], summary["mirror"]
    printed = " ".join(row["index"] for row in summary["forward"] + summary["backward"])
    # the reverse layer appears only where the output reads it: w^{(y,r)}_{ck} b^{(r)t}_c
    assert printed.count("(r)") == 1 and printed.count("(y,r)") == 1, printed
    # every gradient of the layer that reads t-1 and of the output layer, none of the other
    derivation = derive(BUILTINS["blstm"]())
    hidden = set(mirror(derivation.model).values())
    shown = [g for g in derivation.gradients if g not in hidden]
    rows = [pair for row in summary["gradients"] for pair in row] + summary["wide_gradients"]
    assert len(rows) == len(shown) == len(derivation.gradients) - 15, (len(rows), shown)
    # one backward loop: the other runs the same way reversed
    assert len(summary["loop"]["loops"]) == 1


def test_a_stacked_bidirectional_network_mirrors_both_layers() -> None:
    pairs = mirror(load_spec(EXAMPLES / "blstm_stacked.toml"))
    assert pairs is not None and len(pairs) == 51, pairs
    assert pairs["h1"] == "h1_r" and pairs["h2"] == "h2_r"
    # the second forward layer's weights on the first layer's two directions map
    # crosswise: what multiplies b_1 maps to what multiplies b_1^{(r)} in the image
    assert pairs["W_h1i2"] == "W_h1_ri2_r" and pairs["W_h1_ri2"] == "W_h1i2_r"
