"""Transposed copies (``plan/transpose.py``, issue 16 item 4): a concatenated weight that a
loop's product reads transposed is read through a copy laid out the other way, made once
per call where the forward pass is done with the original, in the original's place.

The numbers are checked where every C kernel is (against NumPy, finite differences and
PyTorch: ``test_c_kernels.py``, ``test_recurrent_kernels.py``, ``test_bidirectional.py``);
here, which products change, which must not, where the copy goes and what it costs.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import pytest

from chainrule.codegen.backends.c.backend import _Kernel, render_c
from chainrule.codegen.backends.numpy.backend import render_numpy
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.plan.transpose import transpose_concatenations
from chainrule.codegen.plan.types import Concat, Contract, Loop, Plan, ref_indices, ref_name, walk
from chainrule.symbolic import derive
from chainrule.symbolic.networks import BUILTINS
from tests.plan_passes import assert_same_numpy_kernel


@cache
def plan_of(name: str) -> Plan:
    return lower(derive(BUILTINS[name]()))


def _reads(statements: list, name: str) -> list[tuple]:
    """The indices with which the products in ``statements`` read ``name``."""
    return [tuple(ref_indices(op)) for s in walk(statements) if isinstance(s, Contract)
            for op in s.operands if ref_name(op) == name]


def test_the_backward_recurrent_product_reads_the_transposed_copy() -> None:
    """``ε^t = Σ_c' W_hifco[c, c'] δ^{t+1}[b, c']`` becomes ``Σ W_hifco_T[c', c] δ…``, in
    the loop and in ``∂L/∂h^0`` after it; the forward pass still reads ``W_hifco``."""
    plan = plan_of("lstm_no_peepholes")
    out = transpose_concatenations(plan)
    assert "W_hifco_T" in out.arrays and "W_hifco_T" not in plan.arrays
    assert out.arrays["W_hifco_T"].axes == plan.arrays["W_hifco"].axes[::-1]
    backward = [*out.loss_statements, *out.backward, *out.gradient_statements]
    assert _reads(backward, "W_hifco") == []
    original = _reads([*plan.loss_statements, *plan.backward, *plan.gradient_statements],
                      "W_hifco")
    assert len(original) == 2  # the loop's product and ∂L/∂h0's
    assert _reads(backward, "W_hifco_T") == [indices[::-1] for indices in original]
    assert _reads(out.forward, "W_hifco") == _reads(plan.forward, "W_hifco") != []
    # the copy: the four parameters, each transposed, stacked along the rows
    (copy,) = [s for s in walk(out.all_statements()) if isinstance(s, Concat) and s.transposed]
    (made,) = [s for s in walk(plan.forward) if isinstance(s, Concat)]
    assert (copy.out, copy.parts, copy.axis) == ("W_hifco_T", made.parts, 1 - made.axis)


def test_the_copy_is_made_right_before_the_loop_that_reads_it() -> None:
    out = transpose_concatenations(plan_of("lstm_no_peepholes"))
    phase = out.backward if any(isinstance(s, Concat) for s in out.backward) \
        else out.loss_statements
    at = next(n for n, s in enumerate(phase) if isinstance(s, Concat) and s.transposed)
    assert isinstance(phase[at + 1], Loop) and _reads([phase[at + 1]], "W_hifco_T")
    assert not any(isinstance(s, Concat) and s.transposed for s in walk(out.forward))


@pytest.mark.parametrize("name", ["mlp", "rnn", "brnn"])
def test_products_outside_loops_and_single_parameters_are_left_alone(name: str) -> None:
    """The MLP's backward products read its weights transposed once each, outside any loop
    (one packing a call, nothing to gain); the RNN's recurrent weight is a parameter read
    in place, not a copy the kernel makes anyway: neither plan changes."""
    plan = plan_of(name)
    assert transpose_concatenations(plan) is plan


def test_the_copy_takes_the_place_of_the_forward_one() -> None:
    """Once the forward loop is done ``W_hifco`` is read no more: its copy shares its
    region, so the workspace is no larger."""
    for name in ("lstm_no_peepholes", "lstm", "blstm"):
        kernel = _Kernel(plan_of(name))
        regions = {region.name: region for region in kernel.regions}
        copies = [n for n in regions if n.endswith("_T")]
        assert copies, name
        for copy in copies:
            assert regions[copy].shares is not None, (name, copy)


def test_c_prints_a_plain_product_and_a_copy_with_contiguous_writes() -> None:
    c = render_c(plan_of("lstm_no_peepholes"))["lstm_no_peepholes.c"]
    assert "CblasNoTrans, CblasTrans, B, H, 4*H" not in c
    assert "CblasNoTrans, CblasNoTrans, B, H, 4*H, 1, d_a_ifco + t*B*(4*H), 4*H, " \
           "W_hifco_T, H, 0, t11, H)" in c
    assert "W_hifco_T[(H + c)*H + c_2] = W_hf[c_2*H + c];" in c


@pytest.mark.parametrize("name", ["lstm_no_peepholes", "blstm"])
def test_numpy_prints_the_transposed_copy_as_the_same_kernel(name: str,
                                                            tmp_path: Path) -> None:
    """The pass is the C backend's, the statement kind the plan's: the NumPy kernel printed
    from the plan after the pass gives the loss and gradients of the one before it."""
    plan = plan_of(name)
    after = transpose_concatenations(plan)
    assert ".T, " in render_numpy(after)
    assert_same_numpy_kernel(plan, after, tmp_path)

def test_the_copys_name_captures_no_other() -> None:
    """With ``W_hifco_T`` taken (here by an array of the plan; a user's parameter would take
    it the same way), the copy is named ``W_hifco_T_2``."""
    plan = plan_of("lstm_no_peepholes")
    taken = dataclasses.replace(plan, arrays={
        **plan.arrays, "W_hifco_T": dataclasses.replace(plan.arrays["W_hifco"],
                                                        name="W_hifco_T")})
    out = transpose_concatenations(taken)
    assert "W_hifco_T_2" in out.arrays
    assert _reads(out.backward, "W_hifco_T_2") or _reads(out.loss_statements, "W_hifco_T_2")
