"""Memory of one ``loss_and_grad``: the C kernels' workspace and the NumPy kernels' peak.

For each built-in LSTM and the MLP, at T = 50, B = 32 (the MLP: 1600 rows),
I = H = size, K = 10, in float32 and float64:

- C: ``<net>_workspace_bytes_<precision>`` for those sizes (``CKernel.workspace_bytes``),
  the scratch memory the caller hands the kernel;
- NumPy: the peak of memory NumPy allocates during one call (``tracemalloc``: NumPy
  reports its array buffers to it), less what was allocated before the call;
- for the LSTMs, "keep": what the backward pass must keep over all steps, the ten
  arrays of T·B·H (six forward: the three gates, the cell input, the state and its
  squashed value; four δ's of the gates), and the workspace as a multiple of it.

    python benchmarks/memory.py                  # sizes 128 and 512
    python benchmarks/memory.py --sizes 512 --nets lstm_no_peepholes

No timing: the figures are the same on every machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

backends = importlib.import_module("benchmarks.backends")
codegen = importlib.import_module("chainrule.codegen")

NETS = ("lstm_no_peepholes", "lstm", "mlp")
KEPT_ARRAYS = 10  # six forward arrays and four δ's of T·B·H


def numpy_peak_bytes(kernel: object, params: dict[str, np.ndarray], x: np.ndarray,
                     labels: np.ndarray) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kernel.loss_and_grad(params, x, labels)  # type: ignore[attr-defined]
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,512", type=backends.parse_sizes)
    parser.add_argument("--nets", default=",".join(NETS),
                        type=lambda text: backends.parse_list(text, NETS))
    args = parser.parse_args(argv)
    print("# Memory of one loss_and_grad (MB = 10^6 bytes)\n")
    print(f"T = {backends.T}, B = {backends.B} (the MLP: {backends.T * backends.B} rows), "
          f"I = H = size, K = {backends.K}\n")
    print("| net | size | dtype | C workspace MB | NumPy peak MB | keep MB | C / keep |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for net in args.nets:
        c_kernel = codegen.load(backends.GENERATED / net, backend="c")
        numpy_kernel = codegen.load(backends.GENERATED / net)
        for size in args.sizes:
            for dtype_name in ("float32", "float64"):
                dtype = np.dtype(dtype_name)
                sizes = backends.kernel_sizes(numpy_kernel, size)
                params = numpy_kernel.init_params(sizes, rng=backends.SEED, dtype=dtype)
                x, labels = backends.inputs(net, size, dtype)
                call = {**sizes, "B": x.shape[0]} if net == "mlp" else \
                    {**sizes, "T": x.shape[0], "B": x.shape[1]}
                workspace = c_kernel.workspace_bytes(call, dtype)
                peak = numpy_peak_bytes(numpy_kernel, params, x, labels)
                keep = "—"
                ratio = "—"
                if net != "mlp":
                    kept = KEPT_ARRAYS * backends.T * backends.B * size * dtype.itemsize
                    keep, ratio = f"{kept / 1e6:.1f}", f"{workspace / kept:.2f}"
                print(f"| {net} | {size} | {dtype_name} | {workspace / 1e6:.1f} | "
                      f"{peak / 1e6:.1f} | {keep} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
