"""LSTM loss_and_grad: chainrule's generated NumPy kernels against PyTorch CPU autograd.

For each network (``lstm``, with peepholes, and ``lstm_no_peepholes``), each size
(T, B, I, H, K) and each float dtype, this script times one full
``loss_and_grad`` (forward, backward, every gradient) on the same inputs, in
the same process:

- ours: ``generated/<net>/<net>.py``'s ``loss_and_grad(params, x, labels)``;
- autograd: the same equations written in torch (``tests/torch_reference.py``),
  forward + ``torch.autograd.grad``, on tensors built before timing starts;
- nn.LSTM (``lstm_no_peepholes`` only): PyTorch's fused ``torch.nn.LSTM`` layer
  with the same weights (built once), plus the same output layer and loss.

Each time is the median of ``--repeat`` runs of ``time.perf_counter`` after
warm-up runs. Once per configuration the losses are compared (relative
tolerance 1e-4 in float32, 1e-9 in float64); a mismatch prints a warning row.
The output is a Markdown table, with the thread and BLAS setup in the header.

    python benchmarks/lstm_vs_torch.py                        # every size and dtype
    python benchmarks/lstm_vs_torch.py --torch-only           # torch timings only
    python benchmarks/lstm_vs_torch.py --sizes 20,16,64,64,10 --dtype float32 --repeat 5

PyTorch is the optional extra: ``pip install -e '.[torch]'`` (torch==2.13.0, CPU
build). Our kernels come from ``chainrule generate`` (``make generate``);
``--torch-only`` runs without them.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "generated"
NETS = ("lstm", "lstm_no_peepholes")
DEFAULT_SIZES = ((50, 32, 128, 128, 10), (50, 32, 512, 512, 10))
SIZE_NAMES = ("T", "B", "I", "H", "K")
TOLERANCE = {"float32": 1e-4, "float64": 1e-9}
WARMUP = 2
SEED = 0
COLUMNS = ("net", "T", "B", "I", "H", "K", "dtype", "ours ms", "autograd ms", "ours/autograd",
           "nn.LSTM ms", "ours/nn.LSTM")


def load_reference() -> ModuleType:
    """``tests/torch_reference.py``, or exit naming the install command if torch is missing."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    reference = importlib.import_module("tests.torch_reference")
    if reference.torch is None:
        sys.exit(f"benchmarks/lstm_vs_torch.py: {reference.SKIP_REASON}")
    return reference


def load_kernels(reference: ModuleType) -> dict[str, Any]:
    """Our generated kernels, or exit saying how to make them."""
    from chainrule import codegen
    missing = [f"generated/{net}/{net}.py" for net in NETS
               if not (GENERATED / net / f"{net}.py").is_file()]
    if missing:
        sys.exit(f"{', '.join(missing)} not found: generate the LSTM kernels first "
                 f"(`make generate` or `chainrule generate {' '.join(NETS)}`), "
                 f"or pass --torch-only to time PyTorch alone")
    kernels = {net: codegen.load(GENERATED / net) for net in NETS}
    for net, kernel in kernels.items():
        expected = reference.lstm_params(peepholes=net == "lstm")
        if set(kernel.PARAMS) != set(expected):
            sys.exit(f"generated/{net} has parameters {', '.join(kernel.PARAMS)}; "
                     f"this benchmark expects {', '.join(expected)}")
    return kernels


def parse_sizes(text: str) -> tuple[int, int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 5 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"sizes must be five positive ints T,B,I,H,K (e.g. 50,32,128,128,10), got {text!r}")
    return values  # type: ignore[return-value]


def blas_summary() -> str:
    """NumPy's BLAS in one line, from ``numpy.show_config``."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # older NumPy: no dict mode
        return "unknown"
    text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    detail = blas.get("openblas configuration")
    return f"{text} ({detail.strip()})" if detail else text


def init_params(reference: ModuleType, sizes: dict[str, int], peepholes: bool,
                dtype: np.dtype) -> dict[str, np.ndarray]:
    """The kernels' initialization (uniform ±1/sqrt(first axis)), for when they are absent."""
    I, H, K = sizes["I"], sizes["H"], sizes["K"]
    rng = np.random.default_rng(SEED)
    params = {}
    for name in reference.lstm_params(peepholes):
        if name == "W_hy":
            shape: tuple[int, ...] = (H, K)
        elif name == "b_y":
            shape = (K,)
        elif name.startswith("W_x"):
            shape = (I, H)
        elif name.startswith("W_h"):
            shape = (H, H)
        else:
            shape = (H,)
        bound = 1.0 / np.sqrt(shape[0])
        params[name] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params


def median_ms(step: Callable[[], Any], repeat: int) -> float:
    for _ in range(WARMUP):
        step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def autograd_step(reference: ModuleType, params: dict[str, np.ndarray], x: np.ndarray,
                  labels: np.ndarray, peepholes: bool) -> Callable[[], Any]:
    """Forward + backward of the written-out equations, on tensors built here, once."""
    torch = reference.torch
    p = {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}
    leaves = list(p.values())
    x_t = torch.tensor(x)
    labels_t = torch.as_tensor(labels, dtype=torch.int64)

    def step() -> Any:
        loss = reference.lstm_loss(p, x_t, labels_t, peepholes=peepholes)
        torch.autograd.grad(loss, leaves)
        return loss

    return step


def nn_lstm_step(reference: ModuleType, params: dict[str, np.ndarray], x: np.ndarray,
                 labels: np.ndarray, backward: bool = True) -> Callable[[], Any]:
    """Forward + backward through ``torch.nn.LSTM``; module and tensors built here, once.
    ``backward=False``: the forward alone, recording for autograd as a training step's
    forward does."""
    torch = reference.torch
    module = reference.nn_lstm(params)
    W_hy = torch.tensor(params["W_hy"], requires_grad=True)
    b_y = torch.tensor(params["b_y"], requires_grad=True)
    leaves = [*reference.nn_lstm_leaves(module).values(), W_hy, b_y]
    x_t = torch.tensor(x)
    labels_t = torch.as_tensor(labels, dtype=torch.int64)

    def step() -> Any:
        loss = reference.nn_lstm_loss(module, W_hy, b_y, x_t, labels_t)
        if backward:
            torch.autograd.grad(loss, leaves)
        return loss

    return step


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None else f"{a / b:.2f}"


def run(reference: ModuleType, kernels: dict[str, Any] | None, net: str,
        size: tuple[int, ...], dtype_name: str, repeat: int) -> list[str]:
    """The table row(s) of one configuration: timings, and a warning row per loss mismatch."""
    dtype = np.dtype(dtype_name)
    sizes = dict(zip(SIZE_NAMES, size, strict=True))
    T, B, I, K = sizes["T"], sizes["B"], sizes["I"], sizes["K"]
    peepholes = net == "lstm"
    kernel = None if kernels is None else kernels[net]
    if kernel is not None:
        params = kernel.init_params({s: sizes[s] for s in kernel.SIZES}, rng=SEED, dtype=dtype)
    else:
        params = init_params(reference, sizes, peepholes, dtype)
    rng = np.random.default_rng(SEED + 1)
    x = rng.normal(size=(T, B, I)).astype(dtype)
    labels = rng.integers(0, K, size=(T, B))

    autograd = autograd_step(reference, params, x, labels, peepholes)
    losses = {"autograd": float(autograd().item())}
    steps: dict[str, Callable[[], Any]] = {"autograd": autograd}
    if kernel is not None:
        def ours() -> Any:
            return kernel.loss_and_grad(params, x, labels)

        losses["ours"] = float(ours()[0])
        steps["ours"] = ours
    if not peepholes:
        nn = nn_lstm_step(reference, params, x, labels)
        losses["nn.LSTM"] = float(nn().item())
        steps["nn.LSTM"] = nn
    times: dict[str, float | None] = {"ours": None, "nn.LSTM": None}
    times.update({name: median_ms(step, repeat) for name, step in steps.items()})

    head = [net, *(str(n) for n in size), dtype_name]
    rows = [row([*head, ms(times["ours"]), ms(times["autograd"]),
                 ratio(times["ours"], times["autograd"]), ms(times["nn.LSTM"]),
                 ratio(times["ours"], times["nn.LSTM"])])]
    for name in ("ours", "nn.LSTM"):
        if name in losses:
            error = relative(losses[name], losses["autograd"])
            if not error <= TOLERANCE[dtype_name]:
                message = (f"**WARNING: loss {name} {losses[name]:.9g} vs autograd "
                           f"{losses['autograd']:.9g}, relative {error:.1e} > "
                           f"{TOLERANCE[dtype_name]:g}**")
                rows.append(row([*head, message, "", "", "", ""]))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, nargs="+", default=list(DEFAULT_SIZES),
                        metavar="T,B,I,H,K",
                        help="one or more sizes (default: 50,32,128,128,10 50,32,512,512,10)")
    parser.add_argument("--repeat", type=int, default=7,
                        help="timed runs per measurement; the median is reported (default 7)")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    parser.add_argument("--torch-only", action="store_true",
                        help="time PyTorch alone, without our generated kernels")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    reference = load_reference()
    kernels = None if args.torch_only else load_kernels(reference)
    torch = reference.torch
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)

    print("# LSTM loss_and_grad: chainrule's NumPy kernels vs PyTorch CPU\n")
    print(f"- torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}")
    print(f"- numpy {np.__version__}, BLAS: {blas_summary()}")
    print(f"- median of {args.repeat} runs after {WARMUP} warm-up runs; ms per loss_and_grad"
          + (" (--torch-only: our kernels not run)" if kernels is None else ""))
    print()
    print(row(list(COLUMNS)))
    print(row(["---"] * 7 + ["---:"] * 5))
    for net in NETS:
        for size in args.sizes:
            for dtype_name in dtypes:
                for line in run(reference, kernels, net, size, dtype_name, args.repeat):
                    print(line, flush=True)


if __name__ == "__main__":
    main()
