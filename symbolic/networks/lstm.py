"""The LSTM (Graves ch. 4), written with the public model API only.

Memory blocks of one cell ``c``: input gate ι, forget gate φ, output gate ω
(logistic ``f``), cell input ``g`` and output ``h`` squashing (tanh), peepholes
from the cell state (ι and φ read ``s_c^{t-1}``, ω reads ``s_c^t``; diagonal,
one weight per cell), a softmax output and cross-entropy at every step. The
initial cell output and state are ``h0`` and ``s0``. ``peepholes=False`` gives
the equations most frameworks implement.
"""

from __future__ import annotations

from sympy import Sum, exp, log, tanh

from ..functions import logistic
from ..model import Model

GATES = {"i": r"\iota", "f": r"\phi", "o": r"\omega"}


def build(peepholes: bool = True, name: str | None = None) -> Model:
    """An LSTM layer of H one-cell memory blocks with a softmax output."""
    name = name or ("lstm" if peepholes else "lstm_no_peepholes")
    model = Model(name, title="Long short-term memory" + ("" if peepholes else
                                                         ", without peepholes"),
                  description="LSTM (Graves), " + ("peepholes from the cell state"
                                                   if peepholes else "no peepholes")
                              + ", softmax output and cross-entropy at every step")
    I, H, K = model.size("I"), model.size("H"), model.size("K")
    t = model.time()
    i = model.index("i", I)
    c = model.index("c", H)
    c_ = model.index("c_", H, latex="c'")
    k = model.index("k", K)
    k_ = model.index("k_", K, latex="k'")

    x = model.input("x", [I], time=True)
    z = model.target("z", [K], time=True)
    h = model.intermediate("h", [H], time=True, latex="b_c", adjoint=r"\epsilon_c")
    s = model.intermediate("s", [H], time=True, latex="s", adjoint=r"\epsilon_s")
    model.state("h0", of=h, latex="b^{0}")
    model.state("s0", of=s, latex="s^{0}")

    def net_input(gate: str, latex: str, peephole_time: object | None) -> object:
        W_x = model.parameter(f"W_x{gate}", [I, H], latex=f"w^{{(x{latex})}}")
        W_h = model.parameter(f"W_h{gate}", [H, H], latex=f"w^{{(h{latex})}}")
        terms = Sum(W_x[i, c] * x[i, t], i) + Sum(W_h[c_, c] * h[c_, t - 1], c_)
        if peepholes and peephole_time is not None:
            p = model.parameter(f"p_{gate}", [H], latex=f"w^{{(c{latex})}}")
            terms += p[c] * s[c, peephole_time]
        b = model.parameter(f"b_{gate}", [H], latex=rf"\beta^{{({latex})}}")
        a = model.intermediate(f"a_{gate}", [H], time=True, latex=f"a_{{{latex}}}",
                               adjoint=rf"\delta_{{{latex}}}")
        model.define(a[c, t], terms + b[c])
        return a

    a_i = net_input("i", GATES["i"], t - 1)
    g_i = model.intermediate("g_i", [H], time=True, latex=rf"b_{{{GATES['i']}}}")
    model.define(g_i[c, t], logistic(a_i[c, t]))
    a_f = net_input("f", GATES["f"], t - 1)
    g_f = model.intermediate("g_f", [H], time=True, latex=rf"b_{{{GATES['f']}}}")
    model.define(g_f[c, t], logistic(a_f[c, t]))
    a_c = net_input("c", "c", None)
    model.define(s[c, t], g_f[c, t] * s[c, t - 1] + g_i[c, t] * tanh(a_c[c, t]))
    a_o = net_input("o", GATES["o"], t)
    g_o = model.intermediate("g_o", [H], time=True, latex=rf"b_{{{GATES['o']}}}")
    model.define(g_o[c, t], logistic(a_o[c, t]))
    model.define(h[c, t], g_o[c, t] * tanh(s[c, t]))

    W_hy = model.parameter("W_hy", [H, K], latex="w^{(y)}")
    b_y = model.parameter("b_y", [K], latex=r"\beta^{(y)}")
    a_y = model.intermediate("a_y", [K], time=True, latex="a_k", adjoint=r"\delta_k")
    y = model.intermediate("y", [K], time=True, latex="y")
    model.define(a_y[k, t], Sum(W_hy[c, k] * h[c, t], c) + b_y[k])
    model.define(y[k, t], exp(a_y[k, t]) / Sum(exp(a_y[k_, t]), k_))
    model.loss(-Sum(z[k, t] * log(y[k, t]), k, t))
    return model
