"""The generated RNN, LSTM and LSTM without peepholes: gradients, the kernel contract, errors.

Finite differences check every parameter and both initial states over random
sizes, with the edges T=1, B=1, one hidden unit and two classes. The plan's
shape (one loop per phase, the hoisted and fused products) is checked on the
Plan itself, so a change that silently un-hoists work fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sympy import Indexed

from chainrule import codegen
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.plan.types import (
    Assign,
    Concat,
    Contract,
    Guarded,
    Loop,
    Plan,
    ref_name,
    walk,
)
from chainrule.symbolic import derive
from chainrule.symbolic.networks import BUILTINS, rnn
from tests.cases import EDGE_CASES, case_id, random_inputs
from tests.gradcheck import finite_difference_errors

GENERATED = Path(__file__).resolve().parents[1] / "generated"
NETWORKS = ["rnn", "lstm", "lstm_no_peepholes"]

# (seed, T, B, I, H, K): the edges first, then random sizes
CASES = EDGE_CASES + [(seed, *(int(n) for n in np.random.default_rng(seed).integers(1, 5, size=4)),
      int(np.random.default_rng(seed + 99).integers(2, 5))) for seed in range(10, 13)]


@pytest.fixture(scope="module", params=NETWORKS)
def kernel(request):
    return codegen.load(GENERATED / request.param)


def inputs(kernel, seed, T, B, I, H, K, *, dtype=np.float64, with_state=True):
    return random_inputs(kernel, seed, T, B, I, H, K, dtype=dtype, with_state=with_state)


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "no-state"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradients_match_finite_differences(kernel, case, with_state) -> None:
    params, x, labels, state = inputs(kernel, *case, with_state=with_state)
    errors = finite_difference_errors(kernel, params, x, labels, state)
    assert set(errors) == set(kernel.PARAMS) | (set(kernel.STATE) if with_state else set())
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("activation", ["logistic", "relu"])
def test_rnn_other_activations(kernel_for, activation) -> None:
    k = kernel_for(rnn.build(activation=activation, name=f"rnn_{activation}"))
    params, x, labels, state = inputs(k, 5, 3, 2, 2, 3, 3)
    errors = finite_difference_errors(k, params, x, labels, state)
    assert max(errors.values()) < 1e-6, errors


def test_contract_names(kernel) -> None:
    assert kernel.SIZES == ("I", "H", "K")
    assert kernel.STATE == ({"h0": ("H",)} if kernel.__name__.find("rnn") >= 0
                            else {"h0": ("H",), "s0": ("H",)})
    for name, axes in kernel.PARAMS.items():
        if name.startswith("W_x"):
            assert axes == ("I", "H")
        elif name.startswith("W_h") and name != "W_hy":
            assert axes == ("H", "H")


def test_no_state_means_zeros_and_no_state_gradients(kernel) -> None:
    params, x, labels, state = inputs(kernel, 7, 3, 2, 2, 3, 3)
    zeros = {n: np.zeros_like(a) for n, a in state.items()}
    loss_none, grads_none = kernel.loss_and_grad(params, x, labels)
    loss_zero, grads_zero = kernel.loss_and_grad(params, x, labels, zeros)
    assert loss_none == loss_zero
    assert set(grads_none) == set(kernel.PARAMS)
    assert set(grads_zero) == set(kernel.PARAMS) | set(kernel.STATE)
    for name in kernel.PARAMS:
        np.testing.assert_array_equal(grads_none[name], grads_zero[name])
    for name in kernel.STATE:
        assert grads_zero[name].shape == state[name].shape


def test_loss_is_summed_over_time_and_batch(kernel) -> None:
    params, x, labels, state = inputs(kernel, 8, 4, 3, 2, 3, 3)
    y = kernel.predict(params, x, state)
    assert y.shape == (4, 3, 3)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)
    picked = np.take_along_axis(y, labels[..., None], axis=-1)[..., 0]
    loss, _ = kernel.loss_and_grad(params, x, labels, state)
    assert loss == pytest.approx(-np.log(picked).sum(), rel=1e-12)


def test_steps_do_not_see_the_future(kernel) -> None:
    """Changing x at the last step leaves every earlier output alone."""
    params, x, _, state = inputs(kernel, 9, 4, 2, 2, 3, 3)
    changed = x.copy()
    changed[-1] += 1.0
    before, after = kernel.predict(params, x, state), kernel.predict(params, changed, state)
    np.testing.assert_array_equal(before[:-1], after[:-1])
    assert not np.allclose(before[-1], after[-1])


def test_float32_computes_in_float32(kernel) -> None:
    params, x, labels, state = inputs(kernel, 11, 3, 2, 2, 3, 3, dtype=np.float32)
    loss, grads = kernel.loss_and_grad(params, x, labels, state)
    assert isinstance(loss, np.float32)
    assert all(g.dtype == np.float32 for g in grads.values())
    params64 = {n: a.astype(np.float64) for n, a in params.items()}
    state64 = {n: a.astype(np.float64) for n, a in state.items()}
    loss64, grads64 = kernel.loss_and_grad(params64, x.astype(np.float64), labels, state64)
    assert loss == pytest.approx(loss64, rel=1e-5)
    for name, g in grads.items():
        np.testing.assert_allclose(g, grads64[name], rtol=1e-3, atol=1e-4)


def bad_calls(kernel):
    params, x, labels, state = inputs(kernel, 12, 3, 2, 2, 3, 3)
    first = next(iter(kernel.STATE))
    return [
        ((params, x[0], labels, state), r"x must have shape \(T, B, I\)"),
        ((params, x[:0], labels[:0], state), r"x must not be empty"),
        ((params, x, labels[0], state), r"labels must have shape \(T, B\) = \(3, 2\)"),
        ((params, x, labels + 3, state), r"labels must lie in 0\.\.2"),
        ((params, x, labels, {}), r"state must hold exactly the keys .*missing h0"),
        ((params, x, labels, {**state, "c0": state[first]}), r"unknown c0"),
        ((params, x, labels, {**state, first: state[first][:1]}),
         rf"state\['{first}'\] must have shape \(B, H\) = \(2, 3\)"),
        ((params, x, labels, {**state, first: state[first].astype(np.float32)}),
         rf"state\['{first}'\] has dtype float32 but x has float64"),
    ]


def test_bad_input_raises_value_errors_naming_it(kernel) -> None:
    for args, message in bad_calls(kernel):
        with pytest.raises(ValueError, match=message):
            kernel.loss_and_grad(*args)


# --- the plan: what is hoisted out of the loop, what is fused ---------------------------------


@pytest.fixture(scope="module")
def lstm_plan() -> Plan:
    return lower(derive(BUILTINS["lstm"]()))


def loops(statements) -> list[Loop]:
    return [s for s in statements if isinstance(s, Loop)]


def test_one_loop_per_phase(lstm_plan) -> None:
    (forward,) = loops(lstm_plan.forward)
    (backward,) = loops(lstm_plan.backward)
    assert forward.step == 1 and backward.step == -1
    assert not loops(lstm_plan.loss_statements) and not loops(lstm_plan.gradient_statements)


def contractions(statements) -> list[Contract]:
    return [s for s in walk(statements) if isinstance(s, Contract)]


def concat_of(plan: Plan, name: str) -> tuple[str, ...]:
    concats = [s for s in walk(plan.all_statements()) if isinstance(s, Concat) and s.out == name]
    return concats[0].parts if concats else ()


def test_input_projections_of_all_steps_fill_one_buffer_before_the_loop(lstm_plan) -> None:
    # one product per gate over every step, each written into its view of one buffer
    # (which the backward pass's δ's then reuse): no copy of the weights side by side
    position = next(i for i, s in enumerate(lstm_plan.forward) if isinstance(s, Loop))
    before = [c for c in contractions(lstm_plan.forward[:position])
              if "x" in {ref_name(o) for o in c.operands}]
    weights = [next(ref_name(o) for o in c.operands if ref_name(o) != "x") for c in before]
    assert weights == ["W_xi", "W_xf", "W_xc", "W_xo"]
    buffers = {lstm_plan.arrays[ref_name(c.out)].view.buffer for c in before}
    assert len(buffers) == 1
    assert len(lstm_plan.arrays[buffers.pop()].parts) == 4
    assert not any(isinstance(s, Concat) and "W_xi" in s.parts
                   for s in walk(lstm_plan.all_statements()))
    # the bias is added in place to the product, not into a second array over time
    (biased,) = [s for s in lstm_plan.forward[:position] if isinstance(s, Assign)
                 and "b_i" in {str(r.base.label) for r in s.value.atoms(Indexed)}]
    assert biased.out == before[0].out


def test_the_forward_loop_has_one_fused_recurrent_product(lstm_plan) -> None:
    (loop,) = loops(lstm_plan.forward)
    (product,) = contractions(loop.body)
    names = {ref_name(o) for o in product.operands}
    assert "h" in names
    (weights,) = names - {"h"}
    assert concat_of(lstm_plan, weights) == ("W_hi", "W_hf", "W_hc", "W_ho")


def test_the_backward_loop_has_one_fused_product_under_the_boundary_guard(lstm_plan) -> None:
    (loop,) = loops(lstm_plan.backward)
    (product,) = contractions(loop.body)
    guards = [s for s in loop.body if isinstance(s, Guarded)]
    assert any(product in walk(g.body) for g in guards)
    buffer = lstm_plan.arrays[next(ref_name(o) for o in product.operands
                                   if lstm_plan.arrays[ref_name(o)].parts)]
    assert buffer.parts == ("d_a_i", "d_a_f", "d_a_c", "d_a_o")
    # the output layer's Σ_k δ_k w_hk of every step is hoisted before the loop
    position = lstm_plan.backward.index(loop)
    assert any("W_hy" in {ref_name(o) for o in c.operands}
               for c in contractions(lstm_plan.backward[:position]))


def test_weight_gradients_are_written_straight_into_their_arrays(lstm_plan) -> None:
    # one contraction over time and batch per gradient, each reading its view of the δ's
    # buffer: nothing stacked to copy out
    gradients = contractions(lstm_plan.gradient_statements)
    outs = {ref_name(c.out) for c in gradients}
    assert {"d_W_xi", "d_W_hi", "d_b_i", "d_W_xo", "d_W_ho", "d_b_o"} <= outs
    assert not any(lstm_plan.arrays[name].parts or lstm_plan.arrays[name].view
                   for name in outs)
