"""The public queries that other modules use instead of a Model's private state, and the one
place adjoints are named."""

from __future__ import annotations

import pytest
from sympy import IndexedBase

from chainrule.symbolic import Model, ModelError, Role, adjoint_name, derive, quantity_of_adjoint
from chainrule.symbolic.networks import rnn


def test_find_quantity_and_kind_of() -> None:
    model = rnn.build()
    h = model.quantity("h")
    assert model.find_quantity("h") is h
    assert model.find_quantity(IndexedBase("h")) is h
    assert model.find_quantity("nobody") is None
    assert model.find_quantity(IndexedBase("nobody")) is None
    assert model.kind_of("H") == "size"
    assert model.kind_of("t") == "index"
    assert model.kind_of("W_hh") == "parameter"
    assert model.kind_of("h0") == "state"
    assert model.kind_of("L") == "loss"
    assert model.kind_of("nobody") is None


def test_adjoint_names_come_from_one_place() -> None:
    assert quantity_of_adjoint(adjoint_name("a_y")) == "a_y"
    assert quantity_of_adjoint("a_y") is None
    assert quantity_of_adjoint(adjoint_name("")) is None
    derivation = derive(rnn.build())
    for name, adjoint in derivation.adjoints.items():
        assert adjoint.name == adjoint_name(name)
        assert quantity_of_adjoint(adjoint.name) == name


def test_the_checks_still_run_through_the_model() -> None:
    model = Model("tiny")
    n = model.size("N")
    model.index("n", n)
    model.parameter("W", [n])
    with pytest.raises(ModelError, match="is reserved: the generated code stores ∂L/∂W"):
        model.input(adjoint_name("W"), [n])
    assert [q.name for q in model.of_role(Role.PARAMETER)] == ["W"]
