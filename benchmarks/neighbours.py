"""Whether a C call's speed depends on what ran before it in the process.

Issue 16: the C kernels' speed must not depend on what else is loaded. In one process
NumPy's OpenBLAS, the C kernels' own OpenBLAS (the scipy-openblas32 wheel) and torch
each keep a pool of threads that spins for a while after its last call. This script
times blocks of ``--calls`` calls of the C ``loss_and_grad`` of the LSTM without
peepholes (T = 50, B = 32, K = 10, I = H = size):

- **alone**: after more C calls;
- **after NumPy**: right after a block of the NumPy kernel (NumPy's pool just used);
- **after nn.LSTM**: right after a block of ``torch.nn.LSTM`` forward and backward
  (torch's pool just used; needs PyTorch, else the column is absent),

the three interleaved round by round (``--rounds``). Each cell is the median over the
rounds of a block's median call, and beside it the range of the rounds' block medians:
a neighbour that slows C shows in the first calls after it (the ``first`` columns,
the median over the rounds of each block's first call) or in the whole block; a
machine whose speed drifts shows as a wide range in every condition alike.

    python benchmarks/neighbours.py                          # H = 128, 512, float32
    python benchmarks/neighbours.py --sizes 128 --dtype float64 --rounds 9
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

backends = importlib.import_module("benchmarks.backends")
lstm_bench = backends.lstm_bench
reference = backends.reference

NET = "lstm_no_peepholes"
ROUNDS = 5
CALLS = 20


def block_ms(step: Callable[[], Any], calls: int) -> list[float]:
    """The milliseconds of each of ``calls`` calls of ``step``, one after the other."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - start))
    return times


def measure(kernels: dict[str, Any], size: int, dtype_name: str, rounds: int,
            calls: int) -> dict[str, tuple[list[float], list[float]]]:
    """{condition: (each round's block median, each round's first call)} in ms."""
    c_kernel, numpy_kernel = kernels["c"][NET], kernels["numpy"][NET]
    dtype = np.dtype(dtype_name)
    params = c_kernel.init_params(backends.kernel_sizes(c_kernel, size), rng=backends.SEED,
                                  dtype=dtype)
    x, labels = backends.inputs(NET, size, dtype)

    def c_call() -> Any:
        return c_kernel.loss_and_grad(params, x, labels)

    before: dict[str, Callable[[], Any] | None] = {
        "alone": None, "after NumPy": lambda: numpy_kernel.loss_and_grad(params, x, labels)}
    if reference.torch is not None:
        before["after nn.LSTM"] = lstm_bench.nn_lstm_step(reference, params, x, labels)
    for step in (c_call, *(s for s in before.values() if s is not None)):
        block_ms(step, 2)  # the first calls of each allocate and fault in its buffers
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in before}
    for _ in range(rounds):
        for name, neighbour in before.items():
            block_ms(neighbour or c_call, calls)
            times = block_ms(c_call, calls)
            samples[name][0].append(statistics.median(times))
            samples[name][1].append(times[0])
    return samples


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=backends.parse_sizes, default=(128, 512),
                        metavar="128,512")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="float32")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--calls", type=int, default=CALLS,
                        help=f"calls per block (default {CALLS})")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        parser.error("--rounds and --calls must be at least 1")
    kernels = backends.load_kernels((NET,))
    c_kernel = kernels["c"][NET]
    print(f"# {NET}: one C loss_and_grad, alone and right after its neighbours in the process\n")
    print(f"- T={backends.T} B={backends.B} K={backends.K}, I = H; C: "
          f"{backends.c_blas_line(c_kernel)}; NumPy's BLAS: {lstm_bench.blas_summary()}")
    print("- " + ("torch: not installed, no nn.LSTM neighbour" if reference.torch is None else
                  f"torch {reference.torch.__version__}, {reference.torch.get_num_threads()} "
                  f"threads, {backends.onednn_line(reference.torch)}"))
    print(f"- {args.rounds} rounds of blocks of {args.calls} calls; ms: the rounds' median of "
          "a block's median call (the rounds' range); first: the rounds' median of a "
          f"block's first call; {backends.load_text()}\n")
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    header = None
    for size in args.sizes:
        for dtype_name in dtypes:
            samples = measure(kernels, size, dtype_name, args.rounds, args.calls)
            if header is None:
                header = ["H", "dtype", *(f"{name} ms" for name in samples),
                          *(f"{name} first" for name in samples)]
                print(lstm_bench.row(header))
                print(lstm_bench.row(["---"] * 2 + ["---:"] * (len(header) - 2)))
            print(lstm_bench.row([str(size), dtype_name,
                                  *(cell(blocks) for blocks, _ in samples.values()),
                                  *(f"{statistics.median(first):.2f}"
                                    for _, first in samples.values())]), flush=True)


if __name__ == "__main__":
    main()
