"""The LSTM's recurrent products, laid out each way the C kernels could call them.

Issue 16, item 4: per step the forward pass multiplies the previous output ``b^{t-1}``
(``B × H``) by the four gates' recurrent weights at once (``W_hifco``, ``H × 4H``
row-major: one GEMM), and the backward pass multiplies the four gates' adjoints
(``B × 4H``) by their transpose. This script times, with the bundled OpenBLAS (the
scipy-openblas32 wheel, which the kernels link by default) called through ctypes on
the kernels' own shapes, ``T`` steps of both products in each layout:

- ``fused``: what the kernels do: ``b W`` (NoTrans, NoTrans) forward, ``δ Wᵀ``
  (NoTrans, Trans) backward;
- ``transposed copy``: ``Wᵀ`` copied once per call (``?omatcopy``, timed with it), then
  ``b (Wᵀ)ᵀ`` (NoTrans, Trans) forward and ``δ Wᵀ`` as a plain NoTrans product;
- ``copy for backward``: ``b W`` forward as now, and the backward product ``δ Wᵀ`` as
  a NoTrans product with the copy;
- ``per gate``: four GEMMs of ``B × H × H`` per step (the gates' blocks of ``W``, its
  leading dimension ``4H``) instead of one of ``B × H × 4H``.

OpenBLAS offers no packed-weights API (``?gemm_pack``/``?gemm_compute`` are MKL's; the
wheel's library exports neither, which the header line checks), so packing is left
to the library's own per-call packing. Rounds interleave the layouts, so that other
load skews all alike; the median is reported, with its ratio to ``fused``.

    python benchmarks/recurrent_product.py                          # ~1 minute
    python benchmarks/recurrent_product.py --sizes 128 --dtype float32 --threads 1 --rounds 21

Timing needs a quiet machine: run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
ROUNDS = 9


def library() -> tuple[ctypes.CDLL, str]:
    import scipy_openblas32 as wheel  # type: ignore[import-not-found]

    path = Path(wheel.get_lib_dir()) / f"lib{wheel.get_library()}.so"
    return ctypes.CDLL(str(path)), "scipy_"


class Products:
    """The recurrent products of one LSTM layer at ``T × B × H`` in one precision."""

    def __init__(self, lib: ctypes.CDLL, prefix: str, dtype: np.dtype, T: int, B: int,
                 H: int, rng: np.random.Generator) -> None:
        letter = "s" if dtype == np.float32 else "d"
        real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
        self.gemm = getattr(lib, f"{prefix}cblas_{letter}gemm")
        self.gemm.restype = None
        self.gemm.argtypes = [ctypes.c_int] * 6 + [real, ctypes.c_void_p, ctypes.c_int,
                                                   ctypes.c_void_p, ctypes.c_int, real,
                                                   ctypes.c_void_p, ctypes.c_int]
        self.omatcopy = getattr(lib, f"{prefix}cblas_{letter}omatcopy")
        self.omatcopy.restype = None
        self.omatcopy.argtypes = [ctypes.c_int] * 4 + [real, ctypes.c_void_p, ctypes.c_int,
                                                       ctypes.c_void_p, ctypes.c_int]
        self.T, self.B, self.H = T, B, H
        self.W = rng.normal(size=(H, 4 * H)).astype(dtype)
        self.Wt = np.empty((4 * H, H), dtype)
        self.b = rng.normal(size=(T, B, H)).astype(dtype)
        self.delta = rng.normal(size=(T, B, 4 * H)).astype(dtype)
        self.a = np.empty((T, B, 4 * H), dtype)
        self.d_b = np.empty((T, B, H), dtype)

    def _call(self, ta: int, tb: int, m: int, n: int, k: int, a: np.ndarray, lda: int,
              b: np.ndarray | int, ldb: int, c: np.ndarray | int, ldc: int) -> None:
        self.gemm(ROW_MAJOR, ta, tb, m, n, k, 1.0, _address(a), lda, _address(b), ldb, 0.0,
                  _address(c), ldc)

    def _forward(self, copy: bool) -> None:
        """``a^t = b^{t-1} W`` at every step: with W itself, or with its copy ``Wᵀ``."""
        B, H = self.B, self.H
        for t in range(self.T):
            if copy:
                self._call(NO_TRANS, TRANS, B, 4 * H, H, self.b[t], H, self.Wt, H,
                           self.a[t], 4 * H)
            else:
                self._call(NO_TRANS, NO_TRANS, B, 4 * H, H, self.b[t], H, self.W, 4 * H,
                           self.a[t], 4 * H)

    def _backward(self, copy: bool) -> None:
        """``δ_b^t = δ^t Wᵀ`` at every step: transposing W, or a plain product with ``Wᵀ``."""
        B, H = self.B, self.H
        for t in range(self.T):
            if copy:
                self._call(NO_TRANS, NO_TRANS, B, H, 4 * H, self.delta[t], 4 * H, self.Wt, H,
                           self.d_b[t], H)
            else:
                self._call(NO_TRANS, TRANS, B, H, 4 * H, self.delta[t], 4 * H, self.W, 4 * H,
                           self.d_b[t], H)

    def _copy(self) -> None:
        H = self.H
        self.omatcopy(ROW_MAJOR, TRANS, H, 4 * H, 1.0, self.W.ctypes.data, 4 * H,
                      self.Wt.ctypes.data, H)

    def fused(self) -> None:
        self._forward(copy=False)
        self._backward(copy=False)

    def transposed_copy(self) -> None:
        self._copy()
        self._forward(copy=True)
        self._backward(copy=True)

    def backward_copy(self) -> None:
        self._copy()
        self._forward(copy=False)
        self._backward(copy=True)

    def per_gate(self) -> None:
        B, H = self.B, self.H
        size = self.W.itemsize
        w, a, delta = self.W.ctypes.data, self.a.ctypes.data, self.delta.ctypes.data
        for t in range(self.T):
            for g in range(4):
                self._call(NO_TRANS, NO_TRANS, B, H, H, self.b[t], H, w + g * H * size,
                           4 * H, a + (t * B * 4 * H + g * H) * size, 4 * H)
        d_b = self.d_b.ctypes.data
        for t in range(self.T):
            # four adjoint blocks each times its block of Wᵀ, summed: the first writes,
            # the others add (beta 1)
            for g in range(4):
                self.gemm(ROW_MAJOR, NO_TRANS, TRANS, B, H, H, 1.0,
                          delta + (t * B * 4 * H + g * H) * size, 4 * H, w + g * H * size,
                          4 * H, 0.0 if g == 0 else 1.0, d_b + t * B * H * size, H)

    def results(self) -> tuple[np.ndarray, np.ndarray]:
        return self.a.copy(), self.d_b.copy()


def _address(x: np.ndarray | int) -> int:
    return x if isinstance(x, int) else x.ctypes.data


LAYOUTS: dict[str, Callable[[Products], None]] = {
    "fused": Products.fused,
    "transposed copy": Products.transposed_copy,
    "copy for backward": Products.backward_copy,
    "per gate": Products.per_gate,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,128,512", help="hidden sizes H")
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--threads", default="1,2", help="OpenBLAS thread counts")
    parser.add_argument("--T", type=int, default=50)
    parser.add_argument("--B", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    lib, prefix = library()
    set_threads = getattr(lib, f"{prefix}openblas_set_num_threads")
    set_threads.argtypes = [ctypes.c_int]
    core = getattr(lib, f"{prefix}openblas_get_corename")
    core.restype = ctypes.c_char_p
    config = getattr(lib, f"{prefix}openblas_get_config")
    config.restype = ctypes.c_char_p
    packs = [s for s in ("sgemm_pack", "cblas_sgemm_pack") if hasattr(lib, prefix + s)]
    print(f"# {config().decode()} · {core().decode()} kernels · {os.cpu_count()} CPUs · "
          f"load {os.getloadavg()[0]:.2f} · packed-GEMM API: {packs or 'none'}")
    print(f"# T = {args.T}, B = {args.B}: T forward and T backward recurrent products, "
          f"median of {args.rounds} rounds")
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    print(f"{'dtype':8} {'H':>5} {'threads':>7} " + " ".join(
        f"{name:>22}" for name in LAYOUTS))
    rng = np.random.default_rng(0)
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name)
        for H in (int(s) for s in args.sizes.split(",")):
            products = Products(lib, prefix, dtype, args.T, args.B, H, rng)
            reference = None
            for layout in LAYOUTS.values():  # same numbers, each layout
                layout(products)
                got = products.results()
                if reference is None:
                    reference = got
                tolerance = 1e-3 if dtype == np.float32 else 1e-10
                for ours, theirs in zip(got, reference, strict=True):
                    assert np.allclose(ours, theirs, rtol=tolerance, atol=tolerance * H)
            for threads in (int(s) for s in args.threads.split(",")):
                set_threads(threads)
                times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
                for _ in range(args.rounds):
                    for name, layout in LAYOUTS.items():
                        start = time.perf_counter()
                        layout(products)
                        times[name].append(time.perf_counter() - start)
                medians = {name: statistics.median(v) * 1e3 for name, v in times.items()}
                cells = [f"{medians[name]:8.3f} ms ({medians[name] / medians['fused']:.2f}x)"
                         for name in LAYOUTS]
                print(f"{dtype_name:8} {H:5} {threads:7} " + " ".join(
                    f"{cell:>22}" for cell in cells))


if __name__ == "__main__":
    main()
