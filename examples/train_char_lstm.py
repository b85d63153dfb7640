"""Train a generated LSTM as a character-level language model in PyTorch.

A worked example of ``kernel.torch(...)`` (README, "Training in PyTorch and JAX"): the
built-in LSTM without peepholes (``generated/lstm_no_peepholes``, NumPy or C kernel)
becomes a ``torch.nn.Module``, and ``torch.optim.Adam`` trains it to predict the next
character of chainrule's own README. Each step takes random windows of the text: the
inputs are one-hot characters ``x (T, B, K)``, the labels the characters one step
later, and the loss the kernel's cross-entropy summed over time and batch (divided
here by T·B, so the curve reads in nats per character and the step size does not
depend on the batch). The loss curve goes to a PNG when matplotlib is installed
(``pip install -e '.[examples]'``).

    python examples/train_char_lstm.py                    # 300 steps, NumPy kernel
    python examples/train_char_lstm.py --backend c --steps 500 --out build/loss.png
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

import chainrule

ROOT = Path(__file__).resolve().parents[1]


def read_text(path: Path = ROOT / "README.md") -> tuple[np.ndarray, list[str]]:
    """The text as character ids, and the characters in id order."""
    text = path.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    return np.array([index[c] for c in text], dtype=np.int64), chars


def batch(ids: np.ndarray, classes: int, T: int, B: int, rng: np.random.Generator
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """``B`` random windows of ``T + 1`` characters: one-hot inputs (T, B, K), next-char labels."""
    starts = rng.integers(0, len(ids) - T - 1, size=B)
    windows = np.stack([ids[s:s + T + 1] for s in starts], axis=1)  # (T + 1, B)
    x = np.eye(classes, dtype=np.float32)[windows[:-1]]
    return torch.from_numpy(x), torch.from_numpy(windows[1:])


def train(steps: int = 300, *, hidden: int = 64, T: int = 32, B: int = 16, lr: float = 1e-2,
          backend: str = "numpy", seed: int = 0) -> tuple[list[float], torch.nn.Module,
                                                         list[str]]:
    """(the loss per character at every step, the trained module, the characters)."""
    ids, chars = read_text()
    K = len(chars)
    kernel = chainrule.load(ROOT / "generated" / "lstm_no_peepholes", backend=backend)
    model = kernel.torch({"I": K, "H": hidden, "K": K}, rng=seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        x, labels = batch(ids, K, T, B, rng)
        optimiser.zero_grad()
        loss = model(x, labels) / (T * B)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        losses.append(loss.item())
    return losses, model, chars


def sample(model: torch.nn.Module, chars: list[str], start: str = "The ", length: int = 120,
           *, window: int = 48, seed: int = 0) -> str:
    """Text drawn from the model one character at a time (``predict`` over the last
    ``window`` characters: the kernel returns the outputs, not its final state)."""
    index = {c: i for i, c in enumerate(chars)}
    ids = [index[c] for c in start if c in index] or [0]
    rng = np.random.default_rng(seed)
    eye = np.eye(len(chars), dtype=np.float32)
    for _ in range(length):
        x = torch.from_numpy(eye[ids[-window:]][:, None, :])  # (T, 1, K)
        y = model.predict(x)[-1, 0].numpy().astype(np.float64)
        ids.append(int(rng.choice(len(chars), p=y / y.sum())))
    return "".join(chars[i] for i in ids)


def plot(losses: list[float], out: Path) -> Path | None:
    """The loss curve as a PNG at ``out``; None (and nothing written) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot(losses, linewidth=1)
    axes.set_xlabel("Adam step")
    axes.set_ylabel("loss per character (nats)")
    axes.set_title("generated LSTM (no peepholes) on chainrule's README")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--backend", choices=["numpy", "c"], default="numpy")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "char_lstm_loss.png")
    args = parser.parse_args()
    losses, model, chars = train(args.steps, hidden=args.hidden, backend=args.backend)
    print(f"loss per character: {losses[0]:.3f} at step 1, {np.mean(losses[-20:]):.3f} "
          f"over the last 20 steps (uniform guess: {math.log(len(chars)):.3f})")
    print("sample:", repr(sample(model, chars)))
    written = plot(losses, args.out)
    print(f"loss curve: {written}" if written else "matplotlib is not installed: no plot")


if __name__ == "__main__":
    main()
