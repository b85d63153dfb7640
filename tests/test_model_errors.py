"""Every malformed model gets a ModelError naming the equation and what is wrong."""

from __future__ import annotations

import pytest
import sympy
from sympy import Sum, exp, log, tanh

from chainrule.symbolic import Model, ModelError, derive


def small() -> tuple[Model, dict]:
    m = Model("net")
    I, H, K = m.size("I"), m.size("H"), m.size("K")
    i, h, k, kp = m.index("i", I), m.index("h", H), m.index("k", K), m.index("kp", K)
    x = m.input("x", [I])
    z = m.target("z", [K])
    W = m.parameter("W", [I, H])
    V = m.parameter("V", [H, K])
    a = m.intermediate("a", [H])
    y = m.intermediate("y", [K])
    return m, dict(I=I, H=H, K=K, i=i, h=h, k=k, kp=kp, x=x, z=z, W=W, V=V, a=a, y=y)


def test_a_valid_model_derives() -> None:
    m, s = small()
    m.define(s["a"][s["h"]], tanh(Sum(s["W"][s["i"], s["h"]] * s["x"][s["i"]], s["i"])))
    m.define(s["y"][s["k"]], Sum(s["V"][s["h"], s["k"]] * s["a"][s["h"]], s["h"]))
    m.loss(-Sum(s["z"][s["k"]] * log(s["y"][s["k"]]), s["k"]))
    assert derive(m).adjoint("V").expr is not None


def test_quantity_never_defined() -> None:
    m, s = small()
    m.define(s["y"][s["k"]], Sum(s["V"][s["h"], s["k"]] * s["a"][s["h"]], s["h"]))
    m.loss(-Sum(s["z"][s["k"]] * log(s["y"][s["k"]]), s["k"]))
    with pytest.raises(ModelError, match=r"intermediate 'a' is declared but used in: y\[k\] = "
                                         r".*and never defined"):
        m.validate()


def test_quantity_defined_twice() -> None:
    m, s = small()
    m.define(s["a"][s["h"]], Sum(s["W"][s["i"], s["h"]] * s["x"][s["i"]], s["i"]))
    with pytest.raises(ModelError, match=r"'a' is defined twice \(first: a\[h\] = "):
        m.define(s["a"][s["h"]], s["W"][s["i"], s["h"]])


def test_unknown_quantity() -> None:
    m, s = small()
    stranger = sympy.IndexedBase("u")
    with pytest.raises(ModelError, match=r"equation a\[h\] = .*u is not a quantity of model "
                                         r"'net' \(quantities: x, z, W, V, a, y\)"):
        m.define(s["a"][s["h"]], stranger[s["h"]])


def test_unbound_index() -> None:
    m, s = small()
    with pytest.raises(ModelError, match=r"equation a\[h\] = W\[i, h\]\*x\[i\]: index i in "
                                         r"x\[i\] is not bound; bind it on the left side or "
                                         r"sum over it"):
        m.define(s["a"][s["h"]], s["W"][s["i"], s["h"]] * s["x"][s["i"]])


def test_index_with_the_wrong_range() -> None:
    m, s = small()
    with pytest.raises(ModelError, match=r"index k \(0..K - 1\) used for axis 1 of 'W', which "
                                         r"runs over 0..H - 1"):
        m.define(s["a"][s["h"]], Sum(s["W"][s["i"], s["k"]] * s["x"][s["i"]], s["i"], s["k"]))


def test_left_side_index_with_the_wrong_range() -> None:
    m, s = small()
    with pytest.raises(ModelError, match=r"index k runs over 0..K - 1 but axis 0 of 'a' runs "
                                         r"over 0..H - 1"):
        m.define(s["a"][s["k"]], s["x"][s["i"]])


def test_wrong_number_of_indices() -> None:
    m, s = small()
    with pytest.raises(ModelError, match=r"'W' takes 2 indices \(I, H\), got 1"):
        m.define(s["a"][s["h"]], Sum(s["W"][s["i"]], s["i"]))


def test_cycle() -> None:
    m, s = small()
    m.define(s["a"][s["h"]], Sum(s["V"][s["h"], s["k"]] * s["y"][s["k"]], s["k"]))
    m.define(s["y"][s["k"]], Sum(s["V"][s["h"], s["k"]] * s["a"][s["h"]], s["h"]))
    m.loss(-Sum(s["z"][s["k"]] * log(s["y"][s["k"]]), s["k"]))
    with pytest.raises(ModelError, match=r"the equations form a cycle a -> y -> a .*"
                                         r"may depend on itself only through t-1"):
        m.validate()


def test_function_without_a_derivative_rule() -> None:
    m, s = small()
    with pytest.raises(ModelError, match=r"equation a\[h\] = .*no derivative rule for function "
                                         r"'sinh'; functions with rules: Abs, cos, erf, exp, "
                                         r"log, logistic, relu, sin, softplus, tanh"):
        m.define(s["a"][s["h"]], sympy.sinh(Sum(s["W"][s["i"], s["h"]] * s["x"][s["i"]],
                                                 s["i"])))


def test_loss_that_is_not_a_scalar() -> None:
    m, s = small()
    with pytest.raises(ModelError, match=r"loss L = .*: index k in z\[k\] is not bound; the "
                                         r"loss must be a scalar"):
        m.loss(-s["z"][s["k"]] * log(s["y"][s["k"]]))


def test_missing_loss() -> None:
    m, s = small()
    m.define(s["a"][s["h"]], Sum(s["W"][s["i"], s["h"]] * s["x"][s["i"]], s["i"]))
    m.define(s["y"][s["k"]], exp(Sum(s["V"][s["h"], s["k"]] * s["a"][s["h"]], s["h"])))
    with pytest.raises(ModelError, match="model 'net' has no loss"):
        derive(m)


def test_sum_reusing_a_free_index() -> None:
    m, s = small()
    with pytest.raises(ModelError, match=r"the sum over h reuses an index that is already in "
                                         r"scope"):
        m.define(s["a"][s["h"]], Sum(s["W"][s["i"], s["h"]], s["i"], s["h"]))


def test_names_must_be_identifiers_and_unique() -> None:
    m = Model("net")
    m.size("H")
    with pytest.raises(ModelError, match="size name 'H' is already used by a size"):
        m.size("H")
    with pytest.raises(ModelError, match=r"input name 'a b' must be an identifier"):
        m.input("a b", [])


def test_size_not_of_the_model() -> None:
    m = Model("net")
    with pytest.raises(ModelError, match=r"input 'x': N is not a size of this model"):
        m.input("x", [sympy.Symbol("N", integer=True, positive=True)])


def test_time_errors() -> None:
    m = Model("rec")
    H = m.size("H")
    h = m.index("h", H)
    with pytest.raises(ModelError, match="indexed by time, but the model has no time index"):
        m.intermediate("a", [H], time=True)
    t = m.time()
    a = m.intermediate("a", [H], time=True)
    x = m.input("x", [H], time=True)
    with pytest.raises(ModelError, match=r"time index 2\*t in a\[h, 2\*t\]: expected t, t-1, "
                                         r"t\+1, or the last step T"):
        m.define(a[h, t], a[h, 2 * t])
    with pytest.raises(ModelError, match=r"reads the input 'x' at t-1"):
        m.define(a[h, t], x[h, t - 1])


def test_read_at_t_minus_one_needs_an_initial_state() -> None:
    m = Model("rec")
    H, K = m.size("H"), m.size("K")
    h, k = m.index("h", H), m.index("k", K)
    t = m.time()
    x = m.input("x", [H], time=True)
    z = m.target("z", [K], time=True)
    V = m.parameter("V", [H, K])
    a = m.intermediate("a", [H], time=True)
    m.define(a[h, t], tanh(x[h, t] + a[h, t - 1]))
    m.loss(-Sum(z[k, t] * Sum(V[h, k] * a[h, t], h), k, t))
    with pytest.raises(ModelError, match=r"'a' is read at t-1 but has no initial state "
                                         r"\(its value at t = 0\); declare one with Model.state"):
        m.validate()


def test_an_equal_size_symbol_is_the_size() -> None:
    """SymPy may return an equal Symbol that is another object (after its cache is cleared)."""
    import sympy
    from sympy import tanh

    from chainrule.symbolic import Model

    other = Model("other").size("H")
    sympy.core.cache.clear_cache()
    model = Model("m")
    H = model.size("H")
    h = model.index("h", H)
    a, b = model.intermediate("a", [H]), model.intermediate("b", [H])
    assert other == H and other is not H
    model.define(b[h], tanh(a[h]) / other)  # accepted: `other` is the size H


def test_a_recurrence_through_both_directions_is_refused() -> None:
    """a^t reads b^{t-1} and b^t reads a^{t+1}: each reads one direction, but together no
    order of the steps computes them; derive() recursed without end on it."""
    m = Model("zigzag")
    H = m.size("H")
    t = m.time()
    j = m.index("j", H)
    x = m.input("x", [H], time=True)
    a, b = m.intermediate("a", [H], time=True), m.intermediate("b", [H], time=True)
    m.state("a0", of=a)
    m.state("b0", of=b)
    m.define(a[j, t], tanh(x[j, t] + b[j, t - 1]))
    m.define(b[j, t], tanh(a[j, t + 1]))
    m.loss(Sum(a[j, t] * b[j, t], j, t))
    with pytest.raises(ModelError, match=r"the recurrence through a, b reads both earlier and "
                                         r"later steps \(t-1, t\+1\)"):
        m.validate()
    with pytest.raises(ModelError, match="reads both earlier and later steps"):
        derive(m)
