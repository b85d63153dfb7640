"""The C kernels' workspace: one row for what lives one step, shared places for what
does not live at the same time (``codegen/plan/lifetimes.py``, ``backends/c/storage.py``).

The values themselves are checked everywhere else (C against NumPy, finite
differences, Taylor tests, on the same kernels); this holds the layout to its claims.
"""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import sympy

from chainrule import codegen
from chainrule.codegen.backends.c.backend import _Kernel, render_c
from chainrule.codegen.backends.c.storage import Region, _at_least, share_places
from chainrule.codegen.plan.lifetimes import spans, step_local
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.plan.types import Loop, read, ref_name, walk, written
from chainrule.symbolic import derive
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import loads_spec

B, H, T = sympy.symbols("B H T", positive=True, integer=True)
GENERATED = Path(__file__).resolve().parents[1] / "generated"
needs_cc = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                              reason="no C compiler (cc) on this machine")


def plan_of(name: str):
    return lower(derive(BUILTINS[name]()))


def test_what_lives_one_step_gets_one_row() -> None:
    """The gate pre-activations a_i, a_f, a_o are read only by their own step's squashing
    function (the backward pass reads the gates' outputs), and δ_h only by its own step's
    gate adjoints: one row each. a_c is read by the backward pass (θ'(a_c)), the gates'
    outputs and the state by the backward pass: a row per step. ε_s^t reads ε_s^{t+1}
    before it is written over it, and ∂L/∂s^0 reads ε_s^1, the last step computed: one
    row too. The RNN's δ_h is read at every step by the weights' gradients: a row per
    step."""
    local = step_local(plan_of("lstm_no_peepholes"))
    assert {"a_i", "a_f", "a_o", "d_h", "d_s"} <= set(local)
    assert not {"a_c", "g_i", "g_f", "g_o", "s", "h", "y"} & set(local)
    assert set(step_local(plan_of("rnn"))) == {"a_h"}
    assert "d_s" in step_local(plan_of("lstm"))
    assert step_local(plan_of("mlp")) == {}
    c = render_c(plan_of("lstm_no_peepholes"))["lstm_no_peepholes.c"]
    assert "chainrule_size_mul(B, H)); /* t11 */" in c  # ∂L/∂h^t from the step above


def test_what_only_its_step_pass_reads_is_a_local_of_the_loop_body() -> None:
    """Issue 16, item 3: a_i, a_f, a_o are written and read at one element of the fused
    forward pass, δ_h at one of the backward pass: each is a local of the loop body (one
    per precision), never stored, and takes no place in the workspace. ε_s is read at an
    element (ε_s^{t+1}) before the pass writes it: stored. The gates' outputs are read by
    the backward pass: stored. The RNN's a_h is what its recurrent product adds into:
    stored."""
    c = re.sub(r"/\*.*?\*/", "", render_c(plan_of("lstm_no_peepholes"))["lstm_no_peepholes.c"],
               flags=re.S)  # code, not the equations in the comments
    regions = {r.name for r in _Kernel(plan_of("lstm_no_peepholes")).regions}
    for name in ("a_i", "a_f", "a_o", "d_h"):
        assert c.count(f"const chainrule_real {name}_e = ") == 2, name
        assert f"{name}[" not in c and f"*{name} =" not in c, name
        assert name not in regions, name
    for name in ("d_s", "g_i", "g_f", "g_o"):
        assert f"{name}[b*H + c] = " in c or f"{name}[((t - 1)*B + b)*H + c] = " in c, name
        assert f"const chainrule_real {name}_e" not in c, name
    rnn = render_c(plan_of("rnn"))["rnn.c"]
    assert "a_h[b*H + j] = " in rnn and "_e = " not in rnn


def test_places_are_shared_only_between_arrays_not_in_use_together() -> None:
    kernel = _Kernel(plan_of("lstm"))
    used = spans(kernel.plan)  # the plan the C kernel prints, after its own passes
    pairs = [(r.name, r.shares) for r in kernel.regions if r.shares]
    assert pairs, "the LSTM shares no place"
    heads = {}
    for array, head in pairs:
        heads.setdefault(head, []).append(array)
    for head, arrays in heads.items():
        occupants = sorted([head, *arrays], key=lambda a: used[a])
        for before, after in itertools.pairwise(occupants):
            assert used[before][1] < used[after][0], (before, after, used[before], used[after])


def test_a_region_takes_a_place_only_as_large_for_every_size() -> None:
    assert _at_least(B * H * T, B * H) and _at_least(4 * B * H * T, B * H * (T + 1))
    assert not _at_least(B * H, B * H * T) and not _at_least(B * H * T, H * H)
    assert _at_least(B * H * (T + 1), B * H * T) and not _at_least(B * H * T, B * H * (T + 1))
    regions = [Region("a", B * H * T), Region("b", B * H), Region("c", B * H * T)]
    spans_ = {"a": (0, 1), "b": (2, 3), "c": (2, 4)}
    shared = share_places(regions, spans_, kept=set())
    assert [r.shares for r in shared] == [None, "a", None]  # c and b overlap; a fits b
    kept = share_places(regions, {"a": (0, 1), "b": (2, 3), "c": (4, 5)}, kept={"a"})
    assert all(r.shares is None for r in kept)  # a is copied out at the end: kept


def test_the_lstm_workspace_at_the_issue_sizes() -> None:
    """LSTM without peepholes, T = 50, B = 32, H = I = 512, K = 10: the backward pass must
    keep 66 MB in doubles (six forward arrays and four δ's of T·B·H). The workspace was
    193 MB before the lifetimes were used, 118 MB with them; with the bias added in place,
    ε_s in one row and no weights or gradients copied side by side outside the loops,
    82 MB: within 1.3× of what must be kept."""
    kernel = _Kernel(plan_of("lstm_no_peepholes"))
    sizes = {"B": 32, "H": 512, "I": 512, "K": 10, "T": 50}
    words = sum(int(region.size.xreplace({s: sizes[s.name] for s in region.size.free_symbols}))
                for region in kernel.regions if region.shares is None)
    needed = 10 * 50 * 32 * 512
    assert words <= 1.3 * needed, (words * 8 / 1e6, needed * 8 / 1e6)


@needs_cc
def test_each_precision_asks_for_its_own_elements() -> None:
    kernel = codegen.load(GENERATED / "lstm_no_peepholes", backend="c")
    sizes = {"B": 3, "H": 5, "I": 4, "K": 2, "T": 6}
    doubles = kernel.workspace_bytes(sizes, np.float64)
    assert doubles > 0 and doubles % 8 == 0
    assert kernel.workspace_bytes(sizes, np.float32) * 2 == doubles
    assert kernel.workspace_bytes(sizes) == doubles  # serves every precision
    assert kernel.workspace_bytes({**sizes, "B": 0}, np.float32) == 0


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPECS = sorted(EXAMPLES.glob("*.toml"))


@pytest.mark.parametrize("source", [*BUILTINS, *(p.name for p in SPECS)])
def test_no_two_arrays_of_a_loop_share_a_place(source: str) -> None:
    """What the C step's one loop nest relies on (``statements.Emitter.elementwise_run``):
    inside a loop over time, distinct arrays are distinct memory, but for views of one
    buffer. Places are shared only between arrays not in use together, and a loop counts as
    one statement in the spans."""
    model = BUILTINS[source]() if source in BUILTINS else loads_spec(
        (EXAMPLES / source).read_text(), filename=source)
    kernel = _Kernel(lower(derive(model)))
    plan = kernel.plan
    place = {r.name: r.shares or r.name for r in kernel.regions}
    loops = [s for s in walk(plan.all_statements()) if isinstance(s, Loop)]
    assert loops or plan.time is None
    for loop in loops:
        names = {ref_name(ref) for s in walk(list(loop.body)) for ref in read(s)}
        names |= {name for s in loop.body for name in written(s)}
        storage = {plan.arrays[n].view.buffer if plan.arrays[n].view else n
                   for n in names if n in plan.arrays}
        places: dict[str, str] = {}
        for name in sorted(storage):
            if name in place:
                other = places.setdefault(place[name], name)
                assert other == name, f"{other} and {name} share a place inside a loop"
