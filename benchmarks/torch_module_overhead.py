"""The overhead of ``kernel.torch(...)``: one training step through the nn.Module against a
direct ``loss_and_grad`` call, for the LSTM without peepholes (``generated/lstm_no_peepholes``).

At I = H = 128 (``--hidden``), K = 10, T = 50, B = 32, in float32 and float64, for the
NumPy and the C kernel, it times (median of ``--repeat`` runs after two warm-up calls):

- direct: ``kernel.loss_and_grad(params, x, labels)`` on NumPy arrays;
- module: ``module.zero_grad(); module(x, labels).backward()`` on tensors (the same
  kernel call, plus the autograd Function, the tensor/array hand-over and ``.grad``
  accumulation).

and prints both in ms, their difference and the ratio. Run it on an idle machine:

    .venv/bin/python benchmarks/torch_module_overhead.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import chainrule

GENERATED = Path(__file__).resolve().parents[1] / "generated"


def median_ms(run: Callable[[], object], repeat: int) -> float:
    for _ in range(2):
        run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="T")
    parser.add_argument("--batch", type=int, default=32, help="B")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    H, T, B, K = args.hidden, args.steps, args.batch, 10
    sizes = {"I": H, "H": H, "K": K}
    torch.set_num_threads(1)  # the kernels' own threads only; torch does no arithmetic here
    print(f"lstm_no_peepholes, I = H = {H}, K = {K}, T = {T}, B = {B}; median of "
          f"{args.repeat} runs")
    print(f"{'backend':8} {'dtype':8} {'direct ms':>10} {'module ms':>10} {'overhead ms':>12} "
          f"{'ratio':>6}")
    for backend in ("numpy", "c"):
        kernel = chainrule.load(GENERATED / "lstm_no_peepholes", backend=backend)
        for dtype, torch_dtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
            rng = np.random.default_rng(0)
            params = kernel.init_params(sizes, rng=rng, dtype=dtype)
            x = rng.normal(size=(T, B, H)).astype(dtype)
            labels = rng.integers(0, K, size=(T, B))
            module = kernel.torch(params=params, dtype=torch_dtype)
            x_t, labels_t = torch.from_numpy(x), torch.from_numpy(labels)

            def through_module(module: torch.nn.Module = module, x_t: torch.Tensor = x_t,
                               labels_t: torch.Tensor = labels_t) -> None:
                module.zero_grad()
                module(x_t, labels_t).backward()

            def direct(kernel: object = kernel, params: dict = params, x: np.ndarray = x,
                       labels: np.ndarray = labels) -> None:
                kernel.loss_and_grad(params, x, labels)  # type: ignore[attr-defined]

            # interleaved, so that a drift of the machine's speed hits both alike
            direct_ms = median_ms(direct, args.repeat)
            module_ms = median_ms(through_module, args.repeat)
            direct_ms = min(direct_ms, median_ms(direct, args.repeat))
            print(f"{backend:8} {np.dtype(dtype).name:8} {direct_ms:10.2f} {module_ms:10.2f} "
                  f"{module_ms - direct_ms:12.2f} {module_ms / direct_ms:6.2f}")


if __name__ == "__main__":
    main()
