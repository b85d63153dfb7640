"""Products that accumulate (``plan/accumulate.py``, issue 16 item 3: the bias folded into
the product): the terms a sum adds to a product become the product's starting value, and
the C kernels call CBLAS with beta 1 on it, with no pass of zeros nor of additions.

The numbers are checked where every C kernel is (against NumPy, finite differences and
PyTorch: ``test_c_kernels.py``, ``test_recurrent_kernels.py``); here, which statements
fold, which must not, and what the C prints for them.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import pytest
import sympy

from chainrule.codegen.backends.c.backend import render_c
from chainrule.codegen.backends.numpy.backend import render_numpy
from chainrule.codegen.plan.accumulate import accumulate_into_products
from chainrule.codegen.plan.lifetimes import step_local
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.plan.types import Array, Assign, Contract, Kind, Loop, Plan, ref_name
from chainrule.symbolic import derive
from chainrule.symbolic.networks import BUILTINS
from tests.plan_passes import assert_same_numpy_kernel


@cache
def plan_of(name: str) -> Plan:
    return lower(derive(BUILTINS[name]()))


def _shape(statements: list) -> list[tuple[str, str, bool]]:
    return [(type(s).__name__, ref_name(s.out), getattr(s, "accumulate", False))
            for s in statements if isinstance(s, Assign | Contract)]


def test_a_layer_starts_from_its_bias() -> None:
    """``t0 = x·W; a1 = b + t0`` becomes ``a1 = b; a1 += x·W``: the temporary is gone."""
    plan = plan_of("mlp")
    folded = accumulate_into_products(plan)
    assert _shape(folded.forward)[:3] == [("Assign", "a1", False), ("Contract", "a1", True),
                                          ("Assign", "act1", False)]
    assert sum(1 for s in folded.forward if isinstance(s, Contract) and s.accumulate) == 3
    assert {"t0", "t1", "t2"} <= set(plan.arrays) and not {"t0", "t1", "t2"} & set(folded.arrays)
    assert folded.forward[0].value == sympy.Indexed("b_h1", *folded.forward[0].out.indices[1:])
    # the original plan is untouched: the NumPy backend prints it as it was
    assert _shape(plan.forward)[:2] == [("Contract", "t0", False), ("Assign", "a1", False)]


def test_the_hoisted_bias_is_the_input_products_start() -> None:
    """The LSTM's four input projections, each added its bias in place after the products,
    now start from the biases: the four fills come first, so that the four products still
    run together (one test of their work, four CBLAS calls with beta 1)."""
    folded = accumulate_into_products(plan_of("lstm_no_peepholes"))
    hoisted = _shape([s for s in folded.forward if not isinstance(s, Loop)])[:8]
    assert hoisted == [("Assign", name, False) for name in ("t1", "t3", "t5", "t7")] + [
        ("Contract", name, True) for name in ("t1", "t3", "t5", "t7")]
    c = render_c(plan_of("lstm_no_peepholes"))["lstm_no_peepholes.c"]
    assert "x, I, W_xi, H, 1, t1357, 4*H);" in c
    assert "t1357[((t - 1)*B + b)*(4*H) + c] = b_i[c];" in c
    assert "= b_i[c] + t1357" not in c


def test_a_step_adds_its_recurrent_product_into_the_pre_activation() -> None:
    """The RNN's ``a_h^t = h^{t-1} W_hh + t1^t`` copies the hoisted term and adds the
    product into it, and ``a_h`` still takes one row (the product's update is no second
    write)."""
    folded = accumulate_into_products(plan_of("rnn"))
    (loop,) = [s for s in folded.forward if isinstance(s, Loop)]
    assert _shape(list(loop.body))[:2] == [("Assign", "a_h", False), ("Contract", "a_h", True)]
    assert "a_h" in step_local(folded)


def _with_forward(plan: Plan, forward: list, **arrays: Array) -> Plan:
    return dataclasses.replace(plan, forward=forward, arrays={**plan.arrays, **arrays})


def test_a_product_read_twice_is_kept() -> None:
    """A temporary that another statement reads too stays, and its sum adds it."""
    plan = plan_of("mlp")
    product, total = plan.forward[0], plan.forward[1]
    other = Assign(sympy.IndexedBase("u")[total.out.indices], 2 * product.out)
    u = dataclasses.replace(plan.arrays["a1"], name="u", kind=Kind.TEMPORARY)
    changed = _with_forward(plan, [product, total, other, *plan.forward[2:]], u=u)
    folded = accumulate_into_products(changed)
    assert folded.forward[:3] == [product, total, other]
    assert "t0" in folded.arrays


def test_terms_written_between_are_not_moved_ahead() -> None:
    """``a1 = u + t0`` with ``u`` written after the product: ``u`` cannot be the
    product's start, which comes before it is written."""
    plan = plan_of("mlp")
    product, total = plan.forward[0], plan.forward[1]
    u_ref = sympy.IndexedBase("u")[total.out.indices]
    u = dataclasses.replace(plan.arrays["a1"], name="u", kind=Kind.TEMPORARY)
    write_u = Assign(u_ref, sympy.Integer(3))
    summed = Assign(total.out, u_ref + product.out)
    changed = _with_forward(plan, [product, write_u, summed, *plan.forward[2:]], u=u)
    folded = accumulate_into_products(changed)
    assert folded.forward[:3] == [product, write_u, summed]


def test_an_output_that_the_product_reads_is_not_accumulated_into() -> None:
    """``a1 = t0 + b`` where the product reads ``a1`` itself (at any element) stays as it
    is: adding into what the product reads would change its operand."""
    plan = plan_of("mlp")
    product, total = plan.forward[0], plan.forward[1]
    (x,) = [o for o in product.operands if ref_name(o) == "x"]
    reads_a1 = dataclasses.replace(product, operands=(
        *[o for o in product.operands if o is not x],
        sympy.IndexedBase("a1")[x.indices]))
    changed = _with_forward(plan, [reads_a1, total, *plan.forward[2:]])
    folded = accumulate_into_products(changed)
    assert folded.forward[:2] == [reads_a1, total]


@pytest.mark.parametrize("name", ["mlp", "rnn", "lstm_no_peepholes"])
def test_numpy_prints_an_accumulating_product_as_the_same_kernel(name: str,
                                                                 tmp_path: Path) -> None:
    """The pass is the C backend's, but the kind is the plan's: the NumPy printer adds an
    accumulating product into its output, and the kernel it prints from the folded plan
    gives the loss and gradients of the one from the plan as lowered."""
    plan = plan_of(name)
    assert any("+= " in line and "@" in line for line in
               render_numpy(accumulate_into_products(plan)).splitlines())
    assert_same_numpy_kernel(plan, accumulate_into_products(plan), tmp_path)
