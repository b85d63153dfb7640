"""PyTorch autograd of the same equations: an oracle independent of chainrule's derivation.

Each ``*_loss_and_grad`` takes the kernel contract's arguments (NumPy arrays;
float32 stays float32), runs the forward pass as the equations in DESIGN.md /
DERIVATION.md state it, and lets torch.autograd produce the gradients. The
``*_loss`` functions underneath take tensors and return the loss tensor, so a
benchmark can time forward + backward alone. ``lstm_nn_loss_and_grad`` runs the
no-peephole LSTM through PyTorch's fused ``torch.nn.LSTM`` instead: a second
oracle, independent of how the equations are written out here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

try:
    import torch
except ImportError:  # the tests that use it skip with the reason
    torch = None

SKIP_REASON = ("PyTorch is not installed; install the optional extra: "
               "pip install -e '.[torch]' (torch==2.13.0, CPU build)")

ACTIVATIONS: dict[str, Callable[[Any], Any]] = {}
if torch is not None:
    ACTIVATIONS = {"tanh": torch.tanh, "logistic": torch.sigmoid, "relu": torch.relu}


def _tensors(params: dict[str, np.ndarray]) -> dict[str, Any]:
    return {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}


def _cross_entropy(logits: Any, labels: np.ndarray) -> Any:
    """Σ -ln softmax(logits)[label], summed over every leading axis."""
    log_y = torch.log_softmax(logits, dim=-1)
    index = torch.as_tensor(labels, dtype=torch.int64).unsqueeze(-1)
    return -log_y.gather(-1, index).sum()


def mlp_loss_and_grad(params: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray,
                      layers: int, activation: str = "tanh") -> tuple[float, dict[str, np.ndarray]]:
    p = _tensors(params)
    theta = ACTIVATIONS[activation]
    b = torch.tensor(x)
    below = "x"
    for n in range(1, layers + 1):
        b = theta(b @ p[f"W_{below}h{n}"] + p[f"b_h{n}"])
        below = f"h{n}"
    loss = _cross_entropy(b @ p[f"W_{below}y"] + p["b_y"], labels)
    loss.backward()
    return loss.item(), {n: t.grad.numpy() for n, t in p.items()}


def _gradients(loss: Any, leaves: dict[str, Any]) -> dict[str, np.ndarray]:
    """∂loss/∂leaf for every leaf, as NumPy arrays in the leaves' dtype."""
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {n: g.detach().numpy() for n, g in zip(leaves, grads, strict=True)}


def _check_names(what: str, given: dict[str, np.ndarray], expected: list[str]) -> None:
    if set(given) != set(expected):
        missing = sorted(set(expected) - set(given))
        extra = sorted(set(given) - set(expected))
        raise ValueError(f"{what} must hold exactly {', '.join(expected)}; "
                         f"missing {missing or 'none'}, unexpected {extra or 'none'}")


def _zeros_like_state(x: Any, hidden: Any) -> Any:
    """A (B, H) zero state in x's dtype, H from a (·, H) tensor."""
    return torch.zeros(x.shape[1], hidden.shape[-1], dtype=x.dtype)


# --- the RNN -------------------------------------------------------------------------------

RNN_PARAMS = ["W_xh", "W_hh", "b_h", "W_hy", "b_y"]


def rnn_loss(p: dict[str, Any], x: Any, labels: Any, h0: Any = None,
             activation: str = "tanh") -> Any:
    """The RNN's summed loss as a torch scalar; tensors in (x (T, B, I), labels (T, B))."""
    theta = ACTIVATIONS[activation]
    h = _zeros_like_state(x, p["W_hh"]) if h0 is None else h0
    hs = []
    for x_t in x:
        h = theta(x_t @ p["W_xh"] + h @ p["W_hh"] + p["b_h"])
        hs.append(h)
    return _cross_entropy(torch.stack(hs) @ p["W_hy"] + p["b_y"], labels)


def rnn_loss_and_grad(params: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray,
                      state: dict[str, np.ndarray] | None = None, activation: str = "tanh"
                      ) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients of the tanh (or ``activation``) RNN; ``grads["h0"]`` when state given."""
    _check_names("params", params, RNN_PARAMS)
    p = _tensors(params)
    s = {}
    if state is not None:
        _check_names("state", state, ["h0"])
        s = _tensors(state)
    loss = rnn_loss(p, torch.tensor(x), labels, s.get("h0"), activation)
    return loss.item(), _gradients(loss, {**p, **s})


# --- the LSTM (Graves), written out gate by gate -----------------------------------------------

LSTM_PARAMS = ["W_xi", "W_hi", "p_i", "b_i", "W_xf", "W_hf", "p_f", "b_f", "W_xc", "W_hc", "b_c",
               "W_xo", "W_ho", "p_o", "b_o", "W_hy", "b_y"]
LSTM_NO_PEEPHOLE_PARAMS = [n for n in LSTM_PARAMS if not n.startswith("p_")]


def lstm_params(peepholes: bool = True) -> list[str]:
    """The LSTM's parameter names, in DESIGN.md's order."""
    return list(LSTM_PARAMS if peepholes else LSTM_NO_PEEPHOLE_PARAMS)


def lstm_loss(p: dict[str, Any], x: Any, labels: Any, h0: Any = None, s0: Any = None,
              peepholes: bool = True) -> Any:
    """The LSTM's summed loss as a torch scalar; tensors in (x (T, B, I), labels (T, B)).

    Input and forget gates' peepholes read s_{t-1}, the output gate's reads s_t.
    """
    h = _zeros_like_state(x, p["W_hi"]) if h0 is None else h0
    s = _zeros_like_state(x, p["W_hi"]) if s0 is None else s0
    hs = []
    for x_t in x:
        a_i = x_t @ p["W_xi"] + h @ p["W_hi"] + p["b_i"]
        a_f = x_t @ p["W_xf"] + h @ p["W_hf"] + p["b_f"]
        if peepholes:
            a_i = a_i + p["p_i"] * s
            a_f = a_f + p["p_f"] * s
        a_c = x_t @ p["W_xc"] + h @ p["W_hc"] + p["b_c"]
        s = torch.sigmoid(a_f) * s + torch.sigmoid(a_i) * torch.tanh(a_c)
        a_o = x_t @ p["W_xo"] + h @ p["W_ho"] + p["b_o"]
        if peepholes:
            a_o = a_o + p["p_o"] * s
        h = torch.sigmoid(a_o) * torch.tanh(s)
        hs.append(h)
    return _cross_entropy(torch.stack(hs) @ p["W_hy"] + p["b_y"], labels)


def _lstm_state(state: dict[str, np.ndarray] | None) -> dict[str, Any]:
    if state is None:
        return {}
    _check_names("state", state, ["h0", "s0"])
    return _tensors(state)


def lstm_loss_and_grad(params: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray,
                       state: dict[str, np.ndarray] | None = None, peepholes: bool = True
                       ) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients of Graves' LSTM; ``grads["h0"]``, ``grads["s0"]`` when state given."""
    _check_names("params", params, lstm_params(peepholes))
    p = _tensors(params)
    s = _lstm_state(state)
    loss = lstm_loss(p, torch.tensor(x), labels, s.get("h0"), s.get("s0"), peepholes)
    return loss.item(), _gradients(loss, {**p, **s})


# --- the same no-peephole LSTM through torch.nn.LSTM ---------------------------------------------

GATES = ("i", "f", "c", "o")  # PyTorch's (i, f, g, o)


def nn_lstm(params: dict[str, np.ndarray]) -> Any:
    """A one-layer, time-major ``torch.nn.LSTM`` holding the no-peephole ``params``.

    ``weight_ih_l0`` is ``[W_xi | W_xf | W_xc | W_xo]ᵀ``, ``weight_hh_l0`` likewise,
    ``bias_ih_l0`` the four biases, ``bias_hh_l0`` zeros and not trainable. The
    module's dtype is the parameters'.
    """
    inputs, hidden = params["W_xi"].shape
    dtype = torch.from_numpy(np.asarray(params["W_xi"])).dtype
    module = torch.nn.LSTM(inputs, hidden, num_layers=1).to(dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(
            np.concatenate([params[f"W_x{g}"] for g in GATES], axis=1).T))
        module.weight_hh_l0.copy_(torch.tensor(
            np.concatenate([params[f"W_h{g}"] for g in GATES], axis=1).T))
        module.bias_ih_l0.copy_(torch.tensor(np.concatenate([params[f"b_{g}"] for g in GATES])))
        module.bias_hh_l0.zero_()
    module.bias_hh_l0.requires_grad_(False)
    return module


def nn_lstm_leaves(module: Any) -> dict[str, Any]:
    """The module's trainable tensors, by name (``bias_hh_l0`` is not one)."""
    return {"weight_ih_l0": module.weight_ih_l0, "weight_hh_l0": module.weight_hh_l0,
            "bias_ih_l0": module.bias_ih_l0}


def nn_lstm_loss(module: Any, W_hy: Any, b_y: Any, x: Any, labels: Any, h0: Any = None,
                 s0: Any = None) -> Any:
    """The summed loss of ``module`` plus the softmax output layer, as a torch scalar."""
    if h0 is None:
        out, _ = module(x)
    else:
        out, _ = module(x, (h0.unsqueeze(0), s0.unsqueeze(0)))
    return _cross_entropy(out @ W_hy + b_y, labels)


def _split_gates(grad: np.ndarray) -> dict[str, np.ndarray]:
    """A (4H, ·) gradient of PyTorch's stacked gates as our four (·, H) (or (H,)) arrays."""
    return {g: np.ascontiguousarray(part.T) for g, part in zip(GATES, np.split(grad, 4),
                                                                 strict=True)}


def lstm_nn_loss_and_grad(params: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray,
                          state: dict[str, np.ndarray] | None = None
                          ) -> tuple[float, dict[str, np.ndarray]]:
    """The no-peephole LSTM's loss and gradients through ``torch.nn.LSTM``, in our names."""
    _check_names("params", params, LSTM_NO_PEEPHOLE_PARAMS)
    module = nn_lstm(params)
    out_layer = _tensors({n: params[n] for n in ("W_hy", "b_y")})
    s = _lstm_state(state)
    loss = nn_lstm_loss(module, out_layer["W_hy"], out_layer["b_y"], torch.tensor(x), labels,
                        s.get("h0"), s.get("s0"))
    raw = _gradients(loss, {**nn_lstm_leaves(module), **out_layer, **s})
    grads: dict[str, np.ndarray] = {}
    for torch_name, ours in (("weight_ih_l0", "W_x{}"), ("weight_hh_l0", "W_h{}"),
                             ("bias_ih_l0", "b_{}")):
        for gate, grad in _split_gates(raw.pop(torch_name)).items():
            grads[ours.format(gate)] = grad
    grads.update(raw)
    return loss.item(), {n: grads[n] for n in [*LSTM_NO_PEEPHOLE_PARAMS, *s]}
