"""How many threads the C kernels' OpenBLAS should run: one ``loss_and_grad`` per setting.

The C kernels call the bundled OpenBLAS (the scipy-openblas32 wheel), a library of
its own beside NumPy's: its pool of threads is the kernel's alone. This script times
the LSTMs (T = 50, B = 32, I = H = size, K = 10) and the MLP (1600 rows) with that
pool set to each thread count in turn (``scipy_openblas_set_num_threads``, which the
library exports), in one process, the settings interleaved round by round so that a
burst of other load skews all of them alike. The median of the rounds is reported,
and beside it the ratio to the library's default (as many threads as CPUs).

    python benchmarks/blas_threads.py                       # 1 and 2 threads, ~1 minute
    python benchmarks/blas_threads.py --threads 1,2,4 --sizes 128 --dtype float32

Timing needs a quiet machine: run nothing else meanwhile (the header gives the load).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

backends = importlib.import_module("benchmarks.backends")
codegen = importlib.import_module("chainrule.codegen")

NETS = ("lstm_no_peepholes", "lstm", "mlp")
ROUNDS = 9


def thread_control(kernel: Any) -> tuple[Any, Any]:
    """(set, get) of the number of threads of the OpenBLAS ``kernel`` calls."""
    prefix = kernel.blas.prefix
    try:
        setter = getattr(kernel.lib, f"{prefix}openblas_set_num_threads")
        getter = getattr(kernel.lib, f"{prefix}openblas_get_num_threads")
    except AttributeError:
        sys.exit("benchmarks/blas_threads.py: the C kernel's CBLAS is not OpenBLAS "
                 f"({kernel.blas.name}): it has no thread count to set")
    setter.argtypes, setter.restype = [ctypes.c_int], None
    getter.restype = ctypes.c_int
    return setter, getter


def one_call_ms(kernel: Any, params: dict[str, np.ndarray], x: np.ndarray,
                labels: np.ndarray, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        kernel.loss_and_grad(params, x, labels)
    return 1e3 * (time.perf_counter() - start) / calls


def measure(net: str, size: int, dtype_name: str, threads: list[int]) -> dict[int, float]:
    """{threads: median ms of one loss_and_grad} for ``net`` at ``size``."""
    kernel = codegen.load(backends.GENERATED / net, backend="c")
    set_threads, _ = thread_control(kernel)
    dtype = np.dtype(dtype_name)
    params = kernel.init_params(backends.kernel_sizes(kernel, size), rng=backends.SEED,
                                dtype=dtype)
    x, labels = backends.inputs(net, size, dtype)
    for count in threads:  # warm every pool size up
        set_threads(count)
        backends.median_ms(lambda: kernel.loss_and_grad(params, x, labels), 3, 0.2)
    first = backends.median_ms(lambda: kernel.loss_and_grad(params, x, labels), 3, 0.0)
    calls = max(1, round(100.0 / max(first, 1e-3)))  # about 0.1 s per measurement
    samples: dict[int, list[float]] = {count: [] for count in threads}
    for _ in range(ROUNDS):
        for count in threads:
            set_threads(count)
            samples[count].append(one_call_ms(kernel, params, x, labels, calls))
    set_threads(os.cpu_count() or 1)
    return {count: statistics.median(values) for count, values in samples.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--sizes", default="32,128,512", type=backends.parse_sizes)
    parser.add_argument("--dtype", default="both", choices=("float32", "float64", "both"))
    parser.add_argument("--nets", default=",".join(NETS),
                        type=lambda text: backends.parse_list(text, NETS))
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    probe = codegen.load(backends.GENERATED / "mlp", backend="c")
    print("# The C kernels' OpenBLAS threads: one loss_and_grad\n")
    print(f"- {backends.c_blas_line(probe)}")
    print(f"- {os.cpu_count()} CPUs; {backends.load_text()}")
    print(f"- median of {ROUNDS} rounds, the thread counts interleaved in each\n")
    default = os.cpu_count() or 1
    columns = ["net", "size", "dtype", *[f"{t} thread{'s' * (t > 1)} ms" for t in threads],
               *[f"{t}/{default}" for t in threads if t != default]]
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" if n < 3 else "---:" for n in range(len(columns))) + " |")
    for net in args.nets:
        for size in args.sizes:
            for dtype_name in dtypes:
                times = measure(net, size, dtype_name, threads)
                cells = [f"{times[t]:.2f}" for t in threads]
                if default in times:
                    cells += [f"{times[t] / times[default]:.2f}" for t in threads
                              if t != default]
                print("| " + " | ".join([net, str(size), dtype_name, *cells]) + " |",
                      flush=True)


if __name__ == "__main__":
    main()
