"""The recurrent network (Graves 3.2), written with the public model API only.

``a_h^t = Σ_i w_ih x_i^t + Σ_h' w_h'h b_h'^{t-1} + b_h``, ``b_h^t = θ(a_h^t)``,
a softmax output ``y_k^t`` and cross-entropy at every step, ``b_h^0`` the
initial state ``h0``.
"""

from __future__ import annotations

from sympy import Sum, exp, log

from ..functions import activation as activation_function
from ..model import Model


def build(activation: str = "tanh", name: str = "rnn") -> Model:
    """An Elman RNN with ``activation`` hidden units and a softmax output at every step."""
    theta = activation_function(activation)
    model = Model(name, title="Recurrent neural network",
                  description=f"RNN, {activation} hidden layer, softmax output and "
                              f"cross-entropy at every step")
    I, H, K = model.size("I"), model.size("H"), model.size("K")
    t = model.time()
    i = model.index("i", I)
    j = model.index("j", H, latex="h")
    j_ = model.index("j_", H, latex="h'")
    k = model.index("k", K)
    k_ = model.index("k_", K, latex="k'")

    x = model.input("x", [I], time=True, latex="x")
    z = model.target("z", [K], time=True, latex="z")
    W_xh = model.parameter("W_xh", [I, H], latex="w^{(xh)}")
    W_hh = model.parameter("W_hh", [H, H], latex="w^{(hh)}")
    b_h = model.parameter("b_h", [H], latex=r"\beta^{(h)}")
    W_hy = model.parameter("W_hy", [H, K], latex="w^{(hy)}")
    b_y = model.parameter("b_y", [K], latex=r"\beta^{(y)}")
    a_h = model.intermediate("a_h", [H], time=True, latex="a", adjoint=r"\delta")
    h = model.intermediate("h", [H], time=True, latex="b")
    a_y = model.intermediate("a_y", [K], time=True, latex="a^{(y)}", adjoint=r"\delta^{(y)}")
    y = model.intermediate("y", [K], time=True, latex="y")
    model.state("h0", of=h, latex="b^{0}")

    model.define(a_h[j, t], Sum(W_xh[i, j] * x[i, t], i) + Sum(W_hh[j_, j] * h[j_, t - 1], j_)
                 + b_h[j])
    model.define(h[j, t], theta(a_h[j, t]))
    model.define(a_y[k, t], Sum(W_hy[j, k] * h[j, t], j) + b_y[k])
    model.define(y[k, t], exp(a_y[k, t]) / Sum(exp(a_y[k_, t]), k_))
    model.loss(-Sum(z[k, t] * log(y[k, t]), k, t))
    return model
