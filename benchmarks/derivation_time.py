"""How long derive() takes, per built-in network and per MLP depth.

The derivation is symbolic in the sizes (I, H, K are SymPy symbols and never
get a value), so its cost cannot depend on them; what it does depend on is the
number of equations. This script times derive() (median of --repeat runs, each
on a freshly built model) and, to show the sizes play no part, times the whole
pipeline (derive → plan → NumPy text) once and then runs the one generated
kernel at small and large sizes without deriving again.

    python benchmarks/derivation_time.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from chainrule import codegen
from chainrule.codegen.backends.numpy.backend import render_numpy
from chainrule.codegen.plan.lower import lower
from chainrule.symbolic import derive
from chainrule.symbolic.networks import BUILTINS, mlp


def median_seconds(build, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        model = build()
        start = time.perf_counter()
        derive(model)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(f"{'model':<24} {'equations':>9} {'derive() median':>16}")
    for name, build in BUILTINS.items():
        model = build()
        seconds = median_seconds(build, args.repeat)
        print(f"{name:<24} {len(model.equations) + 1:>9} {seconds * 1e3:>13.1f} ms")
    for layers in (1, 2, 4, 8):
        model = mlp.build(hidden_layers=layers)
        seconds = median_seconds(lambda layers=layers: mlp.build(hidden_layers=layers),
                                 args.repeat)
        print(f"{'mlp, ' + str(layers) + ' hidden layers':<24} {len(model.equations) + 1:>9} "
              f"{seconds * 1e3:>13.1f} ms")

    start = time.perf_counter()
    text = render_numpy(lower(derive(mlp.build())))
    pipeline = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "mlp.py").write_text(text)
        kernel = codegen.load(folder)
        print(f"\nderive → plan → NumPy text, once: {pipeline * 1e3:.1f} ms; "
              f"the same kernel then serves every size:")
        for n in (4, 64, 1024):
            sizes = {"I": n, "H1": n, "H2": n, "K": 10}
            rng = np.random.default_rng(0)
            params = kernel.init_params(sizes, rng=rng)
            x = rng.normal(size=(32, n))
            labels = rng.integers(0, 10, size=32)
            start = time.perf_counter()
            kernel.loss_and_grad(params, x, labels)
            print(f"  I = H1 = H2 = {n:<5} loss_and_grad {1e3 * (time.perf_counter() - start):8.2f}"
                  f" ms, no derivation")


if __name__ == "__main__":
    main()
