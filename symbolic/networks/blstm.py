"""The bidirectional LSTM without peepholes (Graves 3.2.4 and ch. 4), written with the
public model API only: ``torch.nn.LSTM(bidirectional=True)`` with a softmax output.

A forward layer of one-cell memory blocks reads ``t-1``; a reverse layer, the same
equations with names ending in ``_r``, reads ``t+1``; both feed the softmax output
and cross-entropy at every step. ``h0``, ``s0`` are the forward layer's cell output
and state at ``t = 0``; ``h0_r``, ``s0_r`` the reverse layer's at ``t = T+1``. The same
network as ``examples/blstm.toml``: the names and their order are the spec's, so both
generate the same kernels; the notes write Graves' symbols (as the built-in ``lstm``
does: gates ι, φ, ω, cell input ``a_c``) where the spec leaves the default ones, the
reverse layer's marked ``(r)``.
"""

from __future__ import annotations

from sympy import Idx, IndexedBase, Sum, exp, log, tanh

from ..functions import logistic
from ..model import Model
from .lstm import GATES as GREEK

#: The gates and the cell input, in the order their equations are written, with their
#: symbols (Graves': input ι, forget φ, output ω).
GATES = {"i": GREEK["i"], "f": GREEK["f"], "c": "c", "o": GREEK["o"]}


def _layer(model: Model, suffix: str, reverse: bool, x: IndexedBase, step: int,
           indices: tuple[Idx, Idx, Idx, Idx]) -> IndexedBase:
    """One direction's memory blocks (names ending in ``suffix``, symbols marked ``(r)``
    when ``reverse``), reading ``t + step``; ``indices`` are ``t, i, c, c'``. Returns its
    cell output."""
    t, i, c, c_ = indices
    I, H = model.sizes["I"], model.sizes["H"]
    mark, comma = ("^{(r)}", ",r") if reverse else ("", "")
    h = model.intermediate(f"h{suffix}", [H], time=True, latex=f"b{mark}_c",
                           adjoint=rf"\epsilon{mark}_c")
    s = model.intermediate(f"s{suffix}", [H], time=True, latex=f"s{mark}",
                           adjoint=rf"\epsilon{mark}_s")
    start = "(r)T+1" if reverse else "0"  # where the recurrence starts
    model.state(f"h0{suffix}", of=h, latex=f"b^{{{start}}}")
    model.state(f"s0{suffix}", of=s, latex=f"s^{{{start}}}")
    net, squashed = {}, {}
    for gate, greek in GATES.items():
        W_x = model.parameter(f"W_x{gate}{suffix}", [I, H], latex=f"w^{{(x{greek}{comma})}}")
        W_h = model.parameter(f"W_h{gate}{suffix}", [H, H], latex=f"w^{{(h{greek}{comma})}}")
        b = model.parameter(f"b_{gate}{suffix}", [H], latex=rf"\beta^{{({greek}{comma})}}")
        a = model.intermediate(f"a_{gate}{suffix}", [H], time=True,
                               latex=f"a{mark}_{{{greek}}}", adjoint=rf"\delta{mark}_{{{greek}}}")
        net[gate] = (a, W_x, W_h, b)
        if gate != "c":
            squashed[gate] = model.intermediate(f"g_{gate}{suffix}", [H], time=True,
                                                latex=f"b{mark}_{{{greek}}}")
    for gate in GATES:
        a, W_x, W_h, b = net[gate]
        model.define(a[c, t], Sum(W_x[i, c] * x[i, t], i) + Sum(W_h[c_, c] * h[c_, t + step], c_)
                     + b[c])
        if gate != "c":
            model.define(squashed[gate][c, t], logistic(a[c, t]))
    model.define(s[c, t], squashed["f"][c, t] * s[c, t + step]
                 + squashed["i"][c, t] * tanh(net["c"][0][c, t]))
    model.define(h[c, t], squashed["o"][c, t] * tanh(s[c, t]))
    return h


def build(name: str = "blstm") -> Model:
    """A bidirectional LSTM layer of H one-cell memory blocks a way, no peepholes, with a
    softmax output."""
    model = Model(name, title="Bidirectional LSTM",
                  description="BLSTM without peepholes, softmax output and cross-entropy at "
                              "every step")
    I, H, K = model.size("I"), model.size("H"), model.size("K")
    t = model.time()
    i = model.index("i", I)
    c = model.index("c", H)
    c_ = model.index("c_", H, latex="c'")
    k = model.index("k", K)
    k_ = model.index("k_", K, latex="k'")

    x = model.input("x", [I], time=True)
    z = model.target("z", [K], time=True)
    h = _layer(model, "", False, x, -1, (t, i, c, c_))
    h_r = _layer(model, "_r", True, x, +1, (t, i, c, c_))

    W_hy = model.parameter("W_hy", [H, K], latex="w^{(y)}")
    W_hy_r = model.parameter("W_hy_r", [H, K], latex="w^{(y,r)}")
    b_y = model.parameter("b_y", [K], latex=r"\beta^{(y)}")
    a_y = model.intermediate("a_y", [K], time=True, latex="a_k", adjoint=r"\delta_k")
    y = model.intermediate("y", [K], time=True, latex="y")
    model.define(a_y[k, t], Sum(W_hy[c, k] * h[c, t], c) + Sum(W_hy_r[c, k] * h_r[c, t], c)
                 + b_y[k])
    model.define(y[k, t], exp(a_y[k, t]) / Sum(exp(a_y[k_, t]), k_))
    model.loss(-Sum(z[k, t] * log(y[k, t]), k, t))
    return model
