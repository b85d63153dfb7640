"""The multilayer perceptron (Graves 3.1), written with the public model API only.

``a^{(1)}_{h_1} = Σ_i w_{i h_1} x_i + b_{h_1}``, ``b^{(1)} = θ(a^{(1)})``, ... for each
hidden layer; ``a_k = Σ_h w_{hk} b_h + b_k``; softmax ``y_k``; loss ``-Σ_k z_k ln y_k``.
"""

from __future__ import annotations

from sympy import Sum, exp, log

from ..functions import activation as activation_function
from ..model import Model


def build(hidden_layers: int = 2, activation: str = "tanh", name: str = "mlp") -> Model:
    """An MLP with ``hidden_layers`` hidden layers of ``activation`` and a softmax output."""
    if not isinstance(hidden_layers, int) or hidden_layers < 1:
        raise ValueError(f"hidden_layers must be an integer >= 1, got {hidden_layers!r}")
    theta = activation_function(activation)
    model = Model(name, title="Multilayer perceptron",
                  description=f"MLP, {hidden_layers} {activation} hidden layer"
                              f"{'s' if hidden_layers > 1 else ''}, softmax output, "
                              f"cross-entropy loss")
    I = model.size("I")
    layer_sizes = [model.size(f"H{n}") for n in range(1, hidden_layers + 1)]
    K = model.size("K")
    i = model.index("i", I)
    layer_indices = [model.index(f"h{n}", H, latex=f"h_{{{n}}}")
                     for n, H in enumerate(layer_sizes, start=1)]
    k = model.index("k", K)
    kp = model.index("k_", K, latex="k'")

    x = model.input("x", [I], latex="x")
    z = model.target("z", [K], latex="z")

    below, below_index, below_name, below_size = x, i, "x", I
    for n, (H, h) in enumerate(zip(layer_sizes, layer_indices, strict=True), start=1):
        W = model.parameter(f"W_{below_name}h{n}", [below_size, H], latex=rf"w^{{({n})}}")
        b = model.parameter(f"b_h{n}", [H], latex=rf"\beta^{{({n})}}")
        a = model.intermediate(f"a{n}", [H], latex=rf"a^{{({n})}}",
                               adjoint=rf"\delta^{{({n})}}")
        act = model.intermediate(f"act{n}", [H], latex=rf"b^{{({n})}}")
        model.define(a[h], Sum(W[below_index, h] * below[below_index], below_index) + b[h])
        model.define(act[h], theta(a[h]))
        below, below_index, below_name, below_size = act, h, f"h{n}", H

    W = model.parameter(f"W_{below_name}y", [below_size, K], latex="w^{(y)}")
    b = model.parameter("b_y", [K], latex=r"\beta^{(y)}")
    a = model.intermediate("a_y", [K], latex="a", adjoint=r"\delta")
    y = model.intermediate("y", [K], latex="y")
    model.define(a[k], Sum(W[below_index, k] * below[below_index], below_index) + b[k])
    model.define(y[k], exp(a[k]) / Sum(exp(a[kp]), kp))
    model.loss(-Sum(z[k] * log(y[k]), k))
    return model
