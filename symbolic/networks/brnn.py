"""The bidirectional RNN (Graves 3.2.4), written with the public model API only.

A forward hidden layer ``f`` reads its previous step (``t-1``) and a backward hidden
layer ``g`` reads its next step (``t+1``); both feed a softmax output ``y_k^t`` with
cross-entropy at every step. ``f0`` is the forward layer's value at ``t = 0``, ``g0``
the backward layer's at ``t = T+1``. The same network as ``examples/brnn.toml``: the
names, the order and the notation are the spec's, so both generate the same kernels.
"""

from __future__ import annotations

from sympy import Sum, exp, log

from ..functions import activation as activation_function
from ..model import Model


def build(activation: str = "tanh", name: str = "brnn") -> Model:
    """A bidirectional RNN with ``activation`` hidden layers and a softmax output."""
    theta = activation_function(activation)
    model = Model(name, title="Bidirectional RNN",
                  description=f"BRNN, {activation} forward and backward hidden layers, "
                              f"softmax output and cross-entropy at every step")
    I, H, K = model.size("I"), model.size("H"), model.size("K")
    t = model.time()
    i = model.index("i", I)
    j = model.index("j", H, latex="h")
    j_ = model.index("j_", H, latex="h'")
    k = model.index("k", K)
    k_ = model.index("k_", K, latex="k'")

    x = model.input("x", [I], time=True)
    z = model.target("z", [K], time=True)
    W_xf = model.parameter("W_xf", [I, H], latex="w^{(xf)}")
    W_ff = model.parameter("W_ff", [H, H], latex="w^{(ff)}")
    b_f = model.parameter("b_f", [H], latex=r"\beta^{(f)}")
    W_xg = model.parameter("W_xg", [I, H], latex="w^{(xg)}")
    W_gg = model.parameter("W_gg", [H, H], latex="w^{(gg)}")
    b_g = model.parameter("b_g", [H], latex=r"\beta^{(g)}")
    W_fy = model.parameter("W_fy", [H, K], latex="w^{(fy)}")
    W_gy = model.parameter("W_gy", [H, K], latex="w^{(gy)}")
    b_y = model.parameter("b_y", [K], latex=r"\beta^{(y)}")
    a_f = model.intermediate("a_f", [H], time=True, latex="a^{(f)}", adjoint=r"\delta^{(f)}")
    f = model.intermediate("f", [H], time=True, latex="b^{(f)}")
    a_g = model.intermediate("a_g", [H], time=True, latex="a^{(g)}", adjoint=r"\delta^{(g)}")
    g = model.intermediate("g", [H], time=True, latex="b^{(g)}")
    a_y = model.intermediate("a_y", [K], time=True, latex="a^{(y)}", adjoint=r"\delta^{(y)}")
    y = model.intermediate("y", [K], time=True, latex="y")
    model.state("f0", of=f, latex="b^{(f)0}")
    model.state("g0", of=g, latex="b^{(g)T+1}")

    model.define(a_f[j, t], Sum(W_xf[i, j] * x[i, t], i) + Sum(W_ff[j_, j] * f[j_, t - 1], j_)
                 + b_f[j])
    model.define(f[j, t], theta(a_f[j, t]))
    model.define(a_g[j, t], Sum(W_xg[i, j] * x[i, t], i) + Sum(W_gg[j_, j] * g[j_, t + 1], j_)
                 + b_g[j])
    model.define(g[j, t], theta(a_g[j, t]))
    model.define(a_y[k, t], Sum(W_fy[j, k] * f[j, t], j) + Sum(W_gy[j, k] * g[j, t], j)
                 + b_y[k])
    model.define(y[k, t], exp(a_y[k, t]) / Sum(exp(a_y[k_, t]), k_))
    model.loss(-Sum(z[k, t] * log(y[k, t]), k, t))
    return model
