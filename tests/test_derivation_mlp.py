"""The MLP's derivation, asserted on the symbolic results themselves (Graves 3.1)."""

from __future__ import annotations

import pytest
import sympy
from sympy import Idx, IndexedBase, KroneckerDelta, Sum

from chainrule.symbolic import Partial, derive, logistic, step
from chainrule.symbolic.networks import mlp


@pytest.fixture(scope="module")
def net():
    model = mlp.build()
    return model, derive(model)


def base(model, name: str) -> IndexedBase:
    return model.quantity(name).base


def test_output_adjoint_is_y_minus_z(net) -> None:
    model, derivation = net
    k = model.indices["k"]
    y, z = base(model, "y"), base(model, "z")
    assert derivation.adjoint("a_y").expr == y[k] - z[k]


def test_loss_by_softmax_output_is_minus_z_over_y(net) -> None:
    model, derivation = net
    k = model.indices["k"]
    adjoint = derivation.adjoint("y")
    assert adjoint.inlined
    assert adjoint.expr == -base(model, "z")[k] / base(model, "y")[k]


def test_softmax_local_partial_is_graves_form(net) -> None:
    model, derivation = net
    k = model.indices["k"]
    k1 = Idx("k'", (0, model.sizes["K"] - 1))
    y = base(model, "y")
    (partial,) = derivation.adjoint("a_y").local_partials
    assert partial.partial == Partial(y[k1], base(model, "a_y")[k])
    assert partial.value == y[k1] * KroneckerDelta(k, k1) - y[k1] * y[k]
    assert "derivative of exp" in partial.rules


def test_output_delta_steps_name_the_one_hot_identity(net) -> None:
    model, derivation = net
    k = model.indices["k"]
    k1 = Idx("k'", (0, model.sizes["K"] - 1))
    y, z = base(model, "y"), base(model, "z")
    steps = {step.rule: step for step in derivation.adjoint("a_y").steps}
    assert list(steps) == ["chain rule", "local partials",
                           "substitute the adjoints of the consumers", "Kronecker delta",
                           "one-hot targets: Σ_k z_k = 1"]
    # δ_k = -z_k + y_k Σ_k' z_k' before the identity, y_k - z_k after it
    delta = steps["Kronecker delta"].after
    assert delta == -z[k] + y[k] * Sum(z[k1], (k1, 0, model.sizes["K"] - 1))
    assert steps["one-hot targets: Σ_k z_k = 1"].after == y[k] - z[k]


def test_hidden_delta_is_theta_prime_times_backpropagated_sum(net) -> None:
    model, derivation = net
    h2, k = model.indices["h2"], model.indices["k"]
    act2 = base(model, "act2")
    expected = (1 - act2[h2] ** 2) * Sum(IndexedBase("d_a_y")[k] * base(model, "W_h2y")[h2, k],
                                         (k, 0, model.sizes["K"] - 1))
    assert derivation.adjoint("a2").expr == expected
    assert not derivation.adjoint("a2").inlined
    assert derivation.adjoint("act2").inlined


def test_weight_gradient_is_input_times_delta(net) -> None:
    model, derivation = net
    h1, h2, i, k = (model.indices[n] for n in ("h1", "h2", "i", "k"))
    assert derivation.adjoint("W_h1h2").expr == base(model, "act1")[h1] * IndexedBase("d_a2")[h2]
    assert derivation.adjoint("W_xh1").expr == base(model, "x")[i] * IndexedBase("d_a1")[h1]
    assert derivation.adjoint("b_y").expr == IndexedBase("d_a_y")[k]


def test_backward_order_and_gradients(net) -> None:
    _, derivation = net
    assert derivation.backward_order == ["a_y", "a2", "a1"]
    assert list(derivation.gradients) == ["W_xh1", "b_h1", "W_h1h2", "b_h2", "W_h2y", "b_y"]


@pytest.mark.parametrize("activation, derivative", [
    ("logistic", lambda b, a: b * (1 - b)),
    ("relu", lambda b, a: step(a)),
])
def test_other_activations_write_theta_prime_through_b(activation, derivative) -> None:
    model = mlp.build(hidden_layers=1, activation=activation)
    derivation = derive(model)
    h1, k = model.indices["h1"], model.indices["k"]
    b, a = base(model, "act1"), base(model, "a1")
    expected = derivative(b[h1], a[h1]) * Sum(IndexedBase("d_a_y")[k] * base(model, "W_h1y")[h1, k],
                                                (k, 0, model.sizes["K"] - 1))
    assert sympy.expand(derivation.adjoint("a1").expr - expected) == 0
    assert not derivation.adjoint("a1").expr.has(logistic)


@pytest.mark.parametrize("layers", [1, 2, 3, 4])
def test_any_number_of_layers(layers: int) -> None:
    model = mlp.build(hidden_layers=layers)
    derivation = derive(model)
    assert len(derivation.backward_order) == layers + 1
    assert list(model.sizes) == ["I", *(f"H{n}" for n in range(1, layers + 1)), "K"]


def test_derivation_is_symbolic_in_the_sizes(net) -> None:
    model, derivation = net
    for adjoint in derivation.adjoints.values():
        numbers = {n for n in adjoint.expr.atoms(sympy.Number) if abs(n) > 2}
        assert not numbers, f"{adjoint.name} holds a number {numbers}"
        labels = {b.label for b in adjoint.expr.atoms(IndexedBase)}
        plain = {s for s in adjoint.expr.free_symbols if type(s) is sympy.Symbol} - labels
        assert plain <= set(model.sizes.values()), f"{adjoint.name} reads {plain}"


def test_bad_arguments_to_the_builder() -> None:
    with pytest.raises(ValueError, match="hidden_layers must be an integer >= 1, got 0"):
        mlp.build(hidden_layers=0)
    with pytest.raises(ValueError, match="activation must be one of tanh, logistic, relu"):
        mlp.build(activation="gelu")


def test_describe_prints_every_adjoint(net) -> None:
    _, derivation = net
    text = derivation.describe()
    assert "d_a_y[k] = ∂L/∂a_y[k]" in text
    assert "one-hot targets" in text
