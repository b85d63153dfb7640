"""PyTorch autograd of the same equations: an oracle independent of chainrule's derivation.

Each reference takes the kernel contract's arguments (NumPy arrays), runs the
forward pass as the equations in DESIGN.md / DERIVATION.md state it, and lets
torch.autograd produce the gradients.
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
