"""Where the time of one ``loss_and_grad`` goes: the forward pass and the rest, C beside nn.LSTM.

Issue 16 asks, for a goal that is missed, where the time goes. This script splits one
training call of the LSTM without peepholes (T = 50, B = 32, K = 10, I = H) into

- **forward**: C's ``predict`` (the same forward loop ``loss_and_grad`` runs, with its
  hoisted input product), and for PyTorch the forward through ``torch.nn.LSTM`` and the
  output layer with autograd recording (what a training step's forward costs);
- **backward**: the whole call less the forward: the backward loop and every gradient
  product for C, ``torch.autograd.grad`` for PyTorch;

for each size and dtype, with the ratio C/nn.LSTM per phase. Times are medians of
``--repeat`` runs spread over ``--rounds`` rounds that take the four steps in turn, each
block after a warm-up of its own (``backends.interleaved_ms``), in one process, with the
bundled OpenBLAS of the C kernels named in the header.

    python benchmarks/phases.py                      # H = 128, 512; float32, float64
    python benchmarks/phases.py --sizes 32 --dtype float32 --repeat 5
    python benchmarks/phases.py --onednn off         # nn.LSTM without oneDNN

In float32 PyTorch's CPU build runs ``nn.LSTM`` through oneDNN's fused LSTM (all steps
in one primitive, its weights packed once per call); ``--onednn off`` times it with
``torch.backends.mkldnn`` disabled, PyTorch's own loop of per-step products, the same
kind of loop as the C kernels' (float64 runs that loop either way).

PyTorch is needed (``pip install -e '.[torch]'``); without it the script says so and
exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
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


def run(kernel: Any, size: int, dtype_name: str, repeat: int,
        rounds: int = backends.ROUNDS) -> str:
    """One table row: forward and backward of C and nn.LSTM, and their ratios."""
    dtype = np.dtype(dtype_name)
    params = kernel.init_params(backends.kernel_sizes(kernel, size), rng=backends.SEED,
                                dtype=dtype)
    x, labels = backends.inputs(NET, size, dtype)
    steps = {
        "C forward": lambda: kernel.predict(params, x),
        "C whole": lambda: kernel.loss_and_grad(params, x, labels),
        "nn forward": lstm_bench.nn_lstm_step(reference, params, x, labels, backward=False),
        "nn whole": lstm_bench.nn_lstm_step(reference, params, x, labels),
    }
    times = backends.interleaved_ms(steps, repeat, rounds)
    c_back = times["C whole"] - times["C forward"]
    nn_back = times["nn whole"] - times["nn forward"]
    cells = [str(size), dtype_name,
             f"{times['C forward']:.2f}", f"{c_back:.2f}", f"{times['C whole']:.2f}",
             f"{times['nn forward']:.2f}", f"{nn_back:.2f}", f"{times['nn whole']:.2f}",
             f"{times['C forward'] / times['nn forward']:.2f}", f"{c_back / nn_back:.2f}",
             f"{times['C whole'] / times['nn whole']:.2f}"]
    return lstm_bench.row(cells)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=backends.parse_sizes, default=(128, 512),
                        metavar="128,512")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=backends.ROUNDS,
                        help=f"rounds that time the four steps in turn, the runs spread over "
                             f"them (default {backends.ROUNDS})")
    parser.add_argument("--onednn", choices=("on", "off"), default="on",
                        help="off: nn.LSTM with torch.backends.mkldnn disabled")
    args = parser.parse_args(argv)
    if reference.torch is None:
        print("benchmarks/phases.py needs PyTorch: pip install -e '.[torch]'", file=sys.stderr)
        sys.exit(2)
    kernel = backends.load_kernels((NET,))["c"][NET]
    print(f"{NET}, T={backends.T} B={backends.B} K={backends.K}, I = H; "
          f"C: {backends.c_blas_line(kernel)}; torch {reference.torch.__version__}, "
          f"{reference.torch.get_num_threads()} threads, {backends.onednn_line(reference.torch)}"
          + (" (here disabled: --onednn off)" if args.onednn == "off" else "")
          + f"; {backends.load_text()}")
    print()
    print(lstm_bench.row(["H", "dtype", "C fwd ms", "C bwd ms", "C ms", "nn fwd ms",
                          "nn bwd ms", "nn ms", "fwd C/nn", "bwd C/nn", "C/nn"]))
    print(lstm_bench.row(["---"] * 2 + ["---:"] * 9))
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    # setting the flags warns that TF32 on oneDNN is for Intel GPUs: nothing to do here
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
    with reference.torch.backends.mkldnn.flags(enabled=args.onednn == "on"):
        for size in args.sizes:
            for dtype_name in dtypes:
                print(run(kernel, size, dtype_name, args.repeat, args.rounds), flush=True)


if __name__ == "__main__":
    main()
