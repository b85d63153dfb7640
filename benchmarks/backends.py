"""C, NumPy and PyTorch CPU side by side: one ``loss_and_grad`` of every built-in network.

For the MLP, the LSTM (with peepholes) and ``lstm_no_peepholes``, at sizes
I = H = 32, 128 and 512 (``--sizes``), K = 10, in float32 and float64, this
script times one full ``loss_and_grad`` (forward, backward, every gradient) on
the same inputs, in one process:

- C: ``codegen.load("generated/<net>", backend="c")`` (the bundled OpenBLAS of the
  scipy-openblas32 wheel; ``--blas system`` for the system's), and the plain-loop
  build (``blas=False``) at sizes up to
  ``--plain-c-max`` (default 128: the loops are slow at 512);
- NumPy: the generated module ``generated/<net>/<net>.py``;
- autograd: the same equations written in torch (``tests/torch_reference.py``;
  the MLP's two tanh layers are written out here), forward + ``torch.autograd.grad``
  on tensors built before timing starts;
- nn.LSTM (``lstm_no_peepholes`` only): PyTorch's fused ``torch.nn.LSTM`` with the
  same weights (module built once), plus the same output layer and loss.

The LSTMs run at (T, B) = (50, 32); the MLP has no time axis and runs B = T·B =
1600 examples with I = H1 = H2 = the size, so both see the same number of rows.
Each time is the median of ``--repeat`` timed runs (by default as many as fit in
about a second, between 5 and 30), spread over ``--rounds`` rounds (default 3) that
time a row's backends in turn, so that a machine whose speed drifts slows both sides
of a ratio alike; each block of runs follows a warm-up of its own (at least two calls
and 0.4 s). Beside the times: the ratios C/NumPy, C/autograd and C/nn.LSTM; the FLOPs
of the matrix products of one ``loss_and_grad`` (counted analytically: ``mlp_flops``,
``lstm_flops``); the GFLOP/s that C and nn.LSTM achieve; the machine's GEMM rate (a
1024×1024 NumPy matmul, timed at the start and at the end of the run; torch's too,
in the header). The goals column says pass/FAIL for the goals of issue 16 (see
``goal_verdicts``): C faster than NumPy everywhere; the LSTM without peepholes within
1.0× of nn.LSTM at H ≥ 128 and 1.2× below; Graves' peephole LSTM within 0.5× of
autograd; the MLP within 1.0× of the same layers in autograd; any other network
faster than autograd. Once per configuration the C and
NumPy losses are compared (relative 1e-4 in float32, 1e-9 in float64; torch's
losses too, when present); a mismatch prints a warning row.

The output is a Markdown table, with the torch, BLAS and compiler setup in the
header. Other processes on the machine skew the times (a 2-thread BLAS call that
waits for a CPU another process holds runs several times slower), so the header
gives the load before the run and each row the share of the CPUs that other
processes used while it was timed; ``--wait-idle SECONDS`` waits for quiet first.
The whole run takes about three minutes.

    python benchmarks/backends.py                        # everything, ~3 minutes
    python benchmarks/backends.py --quick                # H = 32, 128, few repeats
    python benchmarks/backends.py --nets lstm_no_peepholes --sizes 128 --dtype float32

PyTorch is optional (``pip install -e '.[torch]'``); without it the script times C
against NumPy alone. The C kernels need a C compiler (``cc`` or ``$CC``). The header
names the C kernels' OpenBLAS (version, the kernel family it picked for this CPU,
threads) and warns when that family is a fallback (Prescott, Core2).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the colleague's LSTM benchmark: torch closures and table helpers, shared not copied
lstm_bench = importlib.import_module("benchmarks.lstm_vs_torch")
reference = importlib.import_module("tests.torch_reference")
codegen = importlib.import_module("chainrule.codegen")

GENERATED = ROOT / "generated"
NETS = ("mlp", "lstm", "lstm_no_peepholes")
DEFAULT_SIZES = (32, 128, 512)
QUICK_SIZES = (32, 128)
T, B, K = 50, 32, 10
TOLERANCE = lstm_bench.TOLERANCE  # relative loss agreement: 1e-4 float32, 1e-9 float64
SEED = lstm_bench.SEED
WARMUP_S = 0.4  # warm-up: at least two calls and at least this long
TIME_BUDGET_S = 1.0  # default: timed runs per measurement fill about this long ...
MIN_REPEAT, MAX_REPEAT = 5, 30  # ... but no fewer / more runs than these
ROUNDS = 3  # a row's steps are timed in turn in this many rounds (``interleaved_ms``)
QUICK_REPEAT = 3
NN_LSTM_GOAL = 1.0  # the LSTM without peepholes in C within this factor of nn.LSTM ...
NN_LSTM_GOAL_FROM = 128  # ... at H ≥ this,
NN_LSTM_GOAL_SMALL = 1.2  # and within this one below
AUTOGRAD_GOAL = {"lstm": 0.5, "mlp": 1.0}  # C within this factor of autograd; others: < 1
GEMM_N = 1024
BUSY_SHARE = 0.1  # others' share of the CPUs above which the machine counts as busy

COLUMNS = ("net", "rows", "size", "dtype", "GFLOP", "C ms", "C no-BLAS ms", "NumPy ms",
           "autograd ms", "nn.LSTM ms", "C/NumPy", "C/autograd", "C/nn.LSTM", "C GFLOP/s",
           "nn.LSTM GFLOP/s", "GEMM GFLOP/s", "others' CPU", "goals")
ALIGN = ("---",) * 4 + ("---:",) * 13 + ("---",)

row = lstm_bench.row
ms = lstm_bench.ms
ratio = lstm_bench.ratio


# --- FLOP counts ---------------------------------------------------------------------------
# Only the matrix products count, 2 FLOPs per multiply-add: a (m×k)·(k×n) product is 2·m·k·n.
# Elementwise work (activations, gates, peepholes, softmax) and bias sums are left out; they
# are O(N·H), the products O(N·H²). No kernel computes a gradient for x, so none is counted.


def mlp_flops(n: int, inputs: int, hidden: tuple[int, ...], classes: int) -> int:
    """Matrix-product FLOPs of one MLP ``loss_and_grad`` on ``n`` examples.

    With layer widths d_0 = I, d_1..d_L = hidden, d_{L+1} = K and n rows:

    - forward, one product per layer:            Σ_{l=0..L}   2·n·d_l·d_{l+1}
    - backward, δ_{l+1}·W_lᵀ into every hidden
      layer (not into x):                         Σ_{l=1..L}   2·n·d_{l+1}·d_l
    - weight gradients b_lᵀ·δ_{l+1}:              Σ_{l=0..L}   2·n·d_l·d_{l+1}

    For two hidden layers, I = H1 = H2 = H: 2·n·(2·I·H + 3·H² + 3·H·K).
    """
    widths = (inputs, *hidden, classes)
    layers = [widths[l] * widths[l + 1] for l in range(len(widths) - 1)]
    return 2 * n * (2 * sum(layers) + sum(layers[1:]))


def lstm_flops(steps: int, batch: int, inputs: int, hidden: int, classes: int) -> int:
    """Matrix-product FLOPs of one LSTM ``loss_and_grad``: N = T·B rows, four gate blocks.

    Peepholes are diagonal (elementwise), so both LSTM variants count the same:

    - forward input projections   x·[W_xi W_xf W_xc W_xo]           2·N·I·4H
    - forward recurrent products  h^{t-1}·[W_hi W_hf W_hc W_ho]     2·N·H·4H
    - output layer, forward       h·W_hy                            2·N·H·K
    - output layer, backward      δ_y·W_hyᵀ (into ε_h)               2·N·K·H
    - backward recurrent product  δ_gates^{t+1}·[W_h·]ᵀ (into ε_h)   2·N·4H·H
    - weight gradients            W_x·, W_h·, W_hy                  2·N·(4H·I + 4H·H + H·K)

    total = 2·N·(8·I·H + 12·H² + 3·H·K). Every time step is counted for the recurrent
    products, also t = 1 (h0) and t = T (δ^{T+1} = 0), as a kernel that takes a state does.
    """
    n = steps * batch
    return 2 * n * (8 * inputs * hidden + 12 * hidden * hidden + 3 * hidden * classes)


def flops(net: str, size: int) -> int:
    """The matrix-product FLOPs of ``net`` at I = H (= H1 = H2) = ``size``, K = 10."""
    if net == "mlp":
        return mlp_flops(T * B, size, (size, size), K)
    return lstm_flops(T, B, size, size, K)


# --- the machine ---------------------------------------------------------------------------


def _warm_up(step: Callable[[], Any], warmup_s: float) -> float:
    """Run ``step`` at least twice and for at least ``warmup_s``; the last call's seconds.

    In one process the thread pools of NumPy's OpenBLAS, the C kernel's OpenBLAS and
    torch each spin for a while after their last use, and on few CPUs the next backend's
    first calls run slow (1.5× here) until they go quiet.
    """
    warm = time.perf_counter()
    calls, last = 0, 0.0
    while calls < 2 or time.perf_counter() - warm < warmup_s:
        start = time.perf_counter()
        step()
        last = time.perf_counter() - start
        calls += 1
    return last


def _timed_s(step: Callable[[], Any], calls: int) -> list[float]:
    """The seconds of each of ``calls`` calls of ``step``."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def _default_repeat(call_s: float) -> int:
    """As many timed runs as fit ``TIME_BUDGET_S``, between ``MIN_REPEAT`` and ``MAX_REPEAT``."""
    return min(MAX_REPEAT, max(MIN_REPEAT, round(TIME_BUDGET_S / max(call_s, 1e-6))))


def median_ms(step: Callable[[], Any], repeat: int | None, warmup_s: float = WARMUP_S) -> float:
    """Median ms of ``step`` after warm-up (``_warm_up``); ``repeat=None``: as many runs as
    fit the budget."""
    first = _warm_up(step, warmup_s)
    return 1e3 * statistics.median(_timed_s(step, repeat or _default_repeat(first)))


def interleaved_ms(steps: dict[str, Callable[[], Any]], repeat: int | None,
                   rounds: int = ROUNDS) -> dict[str, float]:
    """Median ms of each step, its ``repeat`` timed runs spread over ``rounds`` rounds that
    take the steps in turn, each block after a warm-up of its own (``_warm_up``).

    The project's machines are shared VMs whose speed drifts over seconds to minutes (the
    same call 130 ms and 170 ms within an hour): with each step's runs in one block, the
    next step's after it, the drift goes into their ratio. Interleaved, both sides of a
    ratio sample the same stretches of the machine. Blocks, not single calls alternated:
    the previous backend's spinning threads would slow the first calls of each.
    """
    samples: dict[str, list[float]] = {name: [] for name in steps}
    block: dict[str, int] = {}
    for _ in range(rounds):
        for name, step in steps.items():
            last = _warm_up(step, WARMUP_S)
            if name not in block:  # the first round's warm-up sizes every block of the step
                block[name] = -(-(repeat or _default_repeat(last)) // rounds)
            samples[name].extend(_timed_s(step, block[name]))
    return {name: 1e3 * statistics.median(times) for name, times in samples.items()}


def gemm_gflops(dtype_name: str, library: str = "numpy", repeat: int = 20) -> float:
    """GFLOP/s of a ``GEMM_N``² matmul (2·n³ FLOPs) in NumPy or torch, median of ``repeat``."""
    rng = np.random.default_rng(SEED)
    a = rng.normal(size=(GEMM_N, GEMM_N)).astype(dtype_name)
    b = rng.normal(size=(GEMM_N, GEMM_N)).astype(dtype_name)
    if library == "torch":
        a, b = reference.torch.from_numpy(a), reference.torch.from_numpy(b)
    return 2 * GEMM_N**3 / (1e6 * median_ms(lambda: a @ b, repeat, warmup_s=0.2))


def gemm_rates(library: str = "numpy") -> dict[str, float]:
    """``gemm_gflops`` for float32 and float64."""
    return {name: gemm_gflops(name, library) for name in ("float32", "float64")}


def gemm_text(rates: dict[str, float]) -> str:
    return f"{rates['float32']:.0f} GFLOP/s float32, {rates['float64']:.0f} GFLOP/s float64"


def load_text() -> str:
    """The 1-minute load average against the CPU count: other processes skew timings."""
    try:
        return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    except OSError:
        return f"{os.cpu_count()} CPUs"


def onednn_line(torch: Any) -> str:
    """Whether ``torch.nn.LSTM`` runs oneDNN's fused LSTM, as PyTorch's CPU build does for
    float32 where oneDNN is there and enabled: one primitive for all T steps, its weights
    packed once per call, against which the C kernels call CBLAS once per step."""
    mkldnn = torch.backends.mkldnn
    if mkldnn.is_available() and mkldnn.enabled:
        return ("nn.LSTM in float32 runs oneDNN's fused LSTM (weights packed once per call); "
                "in float64 PyTorch's own loop of per-step products")
    return "oneDNN off: nn.LSTM runs PyTorch's own loop of per-step products"


def compiler_line() -> str:
    """The first line of ``$CC --version`` (``cc`` when $CC is unset)."""
    compiler = os.environ.get("CC", "").strip() or "cc"
    try:
        done = subprocess.run([*compiler.split(), "--version"], capture_output=True, text=True,
                              check=False)
    except OSError as error:
        return f"{compiler}: not runnable ({error})"
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return lines[0].strip() if lines else compiler


def c_blas_line(kernel: Any) -> str:
    """Which CBLAS the C kernel calls: the library, its version, the kernel family it
    picked for this CPU and its threads; a warning where that family is a fallback."""
    if not kernel.blas:
        return "no (plain C loops)"
    info = kernel.blas_info()
    if info is None:  # a CBLAS that is not OpenBLAS
        return f"yes, {kernel.blas.origin}"
    line = (f"yes, {kernel.blas.name}: {info.config}, running {info.core} kernels on "
            f"{info.threads} thread{'s' if info.threads != 1 else ''}")
    if info.fallback:
        line += (f" -- WARNING: {info.core} is OpenBLAS's fallback for a CPU it does not "
                 "know; its products run at a fraction of the machine's speed")
    return line


class OtherLoad:
    """The share of the machine's CPU time that other processes took since ``start()``.

    From ``/proc/stat`` (all CPUs' busy time) less this process's own CPU time
    (``os.times``, every thread): on a shared machine, the rows where others were busy
    are the ones whose times are skewed. ``None`` where ``/proc/stat`` is missing.
    """

    def __init__(self) -> None:
        self.start()

    @staticmethod
    def _busy_s() -> float | None:
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                fields = [int(v) for v in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own_s() -> float:
        own = os.times()
        return own.user + own.system

    def start(self) -> None:
        self.wall, self.busy, self.own = time.perf_counter(), self._busy_s(), self._own_s()

    def share(self) -> float | None:
        """Others' CPU seconds since ``start()`` over (wall seconds × CPUs), 0..1."""
        busy = self._busy_s()
        if busy is None or self.busy is None:
            return None
        wall = (time.perf_counter() - self.wall) * (os.cpu_count() or 1)
        others = (busy - self.busy) - (self._own_s() - self.own)
        return min(1.0, max(0.0, others / max(wall, 1e-9)))


def share_text(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.0f}%"


def others_share(seconds: float = 1.0) -> float | None:
    """Others' share of the CPUs (``OtherLoad``) while this process sleeps ``seconds``."""
    load = OtherLoad()
    time.sleep(seconds)
    return load.share()


def wait_idle(limit_s: float) -> float | None:
    """Sleep in 1 s windows until others take < ``BUSY_SHARE`` of the CPUs, ``limit_s`` at most.

    Returns the last window's share (``None``: unknown, no ``/proc/stat``).
    """
    deadline = time.perf_counter() + limit_s
    share = others_share()
    while share is not None and share >= BUSY_SHARE and time.perf_counter() < deadline:
        share = others_share()
    return share


# --- the steps being timed -----------------------------------------------------------------


def mlp_autograd_step(params: dict[str, np.ndarray], x: np.ndarray,
                      labels: np.ndarray) -> Callable[[], Any]:
    """Forward + backward of the tanh MLP in torch, on tensors built here, once.

    The same equations as ``reference.mlp_loss_and_grad`` (which builds its tensors per
    call, so cannot be timed alone): b_l = tanh(b_{l-1}·W + b), softmax cross-entropy.
    """
    torch = reference.torch
    p = {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}
    leaves = list(p.values())
    layers = sum(1 for name in params if name.startswith("b_h"))
    x_t = torch.tensor(x)
    index = torch.as_tensor(labels, dtype=torch.int64).unsqueeze(-1)

    def step() -> Any:
        b, below = x_t, "x"
        for n in range(1, layers + 1):
            b = torch.tanh(b @ p[f"W_{below}h{n}"] + p[f"b_h{n}"])
            below = f"h{n}"
        loss = -torch.log_softmax(b @ p[f"W_{below}y"] + p["b_y"], dim=-1).gather(-1, index).sum()
        torch.autograd.grad(loss, leaves)
        return loss

    return step


def inputs(net: str, size: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """x and labels: (1600, I) and (1600,) for the MLP, (50, 32, I) and (50, 32) otherwise."""
    rng = np.random.default_rng(SEED + 1)
    shape = (T * B,) if net == "mlp" else (T, B)
    return rng.normal(size=(*shape, size)).astype(dtype), rng.integers(0, K, size=shape)


def kernel_sizes(kernel: Any, size: int) -> dict[str, int]:
    """Every SIZES name: K = 10, every other (I, H, H1, H2) = ``size``."""
    return {name: K if name == "K" else size for name in kernel.SIZES}


# --- one configuration ---------------------------------------------------------------------


def goal_verdicts(net: str, size: int, c_ms: float, numpy_ms: float | None,
                  auto_ms: float | None, nn_ms: float | None) -> list[str]:
    """``name pass|FAIL`` for each of issue 16's goals that applies to this row: C faster
    than NumPy; C against nn.LSTM (the LSTM without peepholes); C against autograd of the
    same equations (a factor per network in AUTOGRAD_GOAL, else simply faster)."""
    def verdict(name: str, met: bool) -> str:
        return f"{name} {'pass' if met else 'FAIL'}"

    goals = []
    if numpy_ms is not None:
        goals.append(verdict("C<NumPy", c_ms < numpy_ms))
    if nn_ms is not None:
        factor = NN_LSTM_GOAL if size >= NN_LSTM_GOAL_FROM else NN_LSTM_GOAL_SMALL
        goals.append(verdict(f"C≤{factor}×nn.LSTM", c_ms <= factor * nn_ms))
    if auto_ms is not None:
        factor = AUTOGRAD_GOAL.get(net)
        goals.append(verdict("C<autograd", c_ms < auto_ms) if factor is None
                     else verdict(f"C≤{factor}×autograd", c_ms <= factor * auto_ms))
    return goals


def run(net: str, kernels: dict[str, dict[str, Any]], size: int, dtype_name: str,
        repeat: int | None, plain_max: int, gemm: dict[str, float],
        idle_wait_s: float = 0.0, rounds: int = ROUNDS) -> list[str]:
    """The table row(s) of one configuration: timings, and a warning row per loss mismatch."""
    dtype = np.dtype(dtype_name)
    numpy_kernel, c_kernel = kernels["numpy"][net], kernels["c"][net]
    plain_kernel = kernels["c-plain"].get(net) if size <= plain_max else None
    params = numpy_kernel.init_params(kernel_sizes(numpy_kernel, size), rng=SEED, dtype=dtype)
    x, labels = inputs(net, size, dtype)

    steps: dict[str, Callable[[], Any]] = {}
    losses: dict[str, float] = {}
    for name, kernel in (("C", c_kernel), ("C no-BLAS", plain_kernel), ("NumPy", numpy_kernel)):
        if kernel is not None:
            steps[name] = (lambda k=kernel: k.loss_and_grad(params, x, labels))
            losses[name] = float(steps[name]()[0])
    if reference.torch is not None:
        if net == "mlp":
            steps["autograd"] = mlp_autograd_step(params, x, labels)
        else:
            steps["autograd"] = lstm_bench.autograd_step(reference, params, x, labels,
                                                         peepholes=net == "lstm")
        if net == "lstm_no_peepholes":
            steps["nn.LSTM"] = lstm_bench.nn_lstm_step(reference, params, x, labels)
        for name in ("autograd", "nn.LSTM"):
            if name in steps:
                losses[name] = float(steps[name]().item())
    times: dict[str, float | None] = dict.fromkeys(("C no-BLAS", "autograd", "nn.LSTM"))
    if idle_wait_s > 0:
        wait_idle(idle_wait_s)
    load = OtherLoad()
    times.update(interleaved_ms(steps, repeat, rounds))
    others = load.share()

    work = flops(net, size)
    c_ms, nn_ms, auto_ms = times["C"], times["nn.LSTM"], times["autograd"]
    goals = goal_verdicts(net, size, c_ms, times["NumPy"], auto_ms, nn_ms)
    head = [net, "B=1600" if net == "mlp" else f"T={T} B={B}", str(size), dtype_name]
    rows = [row([*head, f"{work / 1e9:.2f}", ms(c_ms), ms(times["C no-BLAS"]), ms(times["NumPy"]),
                 ms(auto_ms), ms(nn_ms), ratio(c_ms, times["NumPy"]), ratio(c_ms, auto_ms),
                 ratio(c_ms, nn_ms), gflops(work, c_ms), gflops(work, nn_ms),
                 f"{gemm[dtype_name]:.0f}", share_text(others), "; ".join(goals) or "—"])]
    for name, loss in losses.items():
        if name == "NumPy":
            continue
        error = lstm_bench.relative(loss, losses["NumPy"])
        if not error <= TOLERANCE[dtype_name]:
            message = (f"**WARNING: loss {name} {loss:.9g} vs NumPy {losses['NumPy']:.9g}, "
                       f"relative {error:.1e} > {TOLERANCE[dtype_name]:g}**")
            rows.append(row([*head, message, *([""] * (len(COLUMNS) - 5))]))
    return rows


def gflops(work: int, milliseconds: float | None) -> str:
    return "—" if milliseconds is None else f"{work / (1e6 * milliseconds):.1f}"


# --- the command line ----------------------------------------------------------------------


def parse_list(text: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    if allowed is not None and not set(items) <= set(allowed):
        raise argparse.ArgumentTypeError(
            f"unknown {', '.join(sorted(set(items) - set(allowed)))}; choose from "
            f"{','.join(allowed)}")
    return items


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in parse_list(text))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"sizes must be positive ints I = H, comma-separated (e.g. 32,128,512), got {text!r}")
    return sizes


def load_kernels(nets: tuple[str, ...], blas: str | None = None) -> dict[str, dict[str, Any]]:
    """{"numpy"|"c"|"c-plain": {net: kernel}}; "c-plain" empty when "c" has no CBLAS anyway."""
    missing = [f"generated/{net}/{net}.{ext}" for net in nets for ext in ("py", "c")
               if not (GENERATED / net / f"{net}.{ext}").is_file()]
    if missing:
        sys.exit(f"{', '.join(missing)} not found: generate the kernels first "
                 f"(`make generate` or `chainrule generate {' '.join(nets)}`)")
    try:
        c = {net: codegen.load(GENERATED / net, backend="c", blas=blas) for net in nets}
        plain = {net: codegen.load(GENERATED / net, backend="c", blas=False)
                 for net in nets if c[net].blas}
    except RuntimeError as error:  # codegen.c_loader.CompilerError: no compiler, or it failed
        sys.exit(f"benchmarks/backends.py: cannot build the C kernels: {error}")
    return {"numpy": {net: codegen.load(GENERATED / net) for net in nets}, "c": c,
            "c-plain": plain}


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, print the header and one table row per configuration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=None, metavar="32,128,512",
                        help="I = H (= H1 = H2 for the MLP) values (default 32,128,512)")
    parser.add_argument("--repeat", type=int, default=None,
                        help=f"timed runs per measurement, the median reported (default: as "
                             f"many as fit {TIME_BUDGET_S} s, {MIN_REPEAT} to {MAX_REPEAT})")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"rounds that time a row's backends in turn, the runs spread over "
                             f"them (default {ROUNDS})")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    parser.add_argument("--blas", choices=("bundled", "system", "none"), default=None,
                        help="the CBLAS of the C kernels (default: bundled, the "
                             "scipy-openblas32 wheel's OpenBLAS, else the system's)")
    parser.add_argument("--nets", type=lambda text: parse_list(text, NETS), default=NETS,
                        metavar="mlp,lstm,lstm_no_peepholes", help="networks (default: all)")
    parser.add_argument("--plain-c-max", type=int, default=128, metavar="SIZE",
                        help="time the C build without BLAS at sizes up to this (default 128)")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="on a shared machine: before the run and before each configuration, "
                             "wait up to this long for other processes to go quiet (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: sizes {','.join(map(str, QUICK_SIZES))} and "
                             f"{QUICK_REPEAT} repeats (unless --sizes / --repeat say otherwise)")
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    repeat = args.repeat or (QUICK_REPEAT if args.quick else None)
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)

    started = time.perf_counter()
    kernels = load_kernels(args.nets, args.blas)
    torch = reference.torch
    idle = wait_idle(args.wait_idle) if args.wait_idle > 0 else others_share()
    gemm = gemm_rates()
    any_c = next(iter(kernels["c"].values()))

    print("# loss_and_grad: chainrule's C and NumPy kernels vs PyTorch CPU\n")
    if torch is None:
        print("- torch: not installed, so the autograd and nn.LSTM columns are absent; "
              "install it with `pip install -e '.[torch]'` (torch==2.13.0, CPU build)")
    else:
        print(f"- torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}; "
              f"{onednn_line(torch)}")
    print(f"- numpy {np.__version__}, BLAS: {lstm_bench.blas_summary()}; "
          f"{GEMM_N}×{GEMM_N} matmul (median of 20): {gemm_text(gemm)}"
          + ("" if torch is None else f"; torch's: {gemm_text(gemm_rates('torch'))}"))
    print(f"- C compiler: {compiler_line()}; C kernel uses CBLAS: {c_blas_line(any_c)}")
    print(f"- at start: {load_text()}; others' CPU share in a 1 s pause: {share_text(idle)}"
          + (" — BUSY: the times below are skewed (a 2-thread BLAS call waits for a CPU that "
             "another process holds); see the others' CPU column, or pass --wait-idle 60"
             if idle is not None and idle >= BUSY_SHARE else ""))
    print(f"- LSTMs at T={T}, B={B}, I = H = size, K={K}; the MLP at B = T·B = {T * B} examples "
          f"(no time axis), I = H1 = H2 = size, K={K}: the same number of rows")
    print("- ms: median of " + (f"{-(-repeat // args.rounds) * args.rounds} runs" if repeat else
                                f"{MIN_REPEAT}–{MAX_REPEAT} runs (~{TIME_BUDGET_S} s)")
          + f" of one loss_and_grad, in {args.rounds} rounds that time a row's backends in "
          f"turn, each block after ≥ 2 warm-up calls and ≥ {WARMUP_S} s; "
          + ("C no-BLAS at sizes ≤ " + str(args.plain_c_max) if kernels["c-plain"]
             else "C no-BLAS: the C column is already the plain build"))
    print("- GFLOP: matrix products only (forward input/recurrent projections, output layer, "
          "backward recurrent product, weight gradients; see lstm_flops / mlp_flops)")
    print("- others' CPU: the share of all CPUs that other processes used while the row was "
          "timed (from /proc/stat); rows above 10% are skewed")
    print(f"- goals (issue 16): C < NumPy; lstm_no_peepholes C ≤ {NN_LSTM_GOAL}× nn.LSTM at "
          f"H ≥ {NN_LSTM_GOAL_FROM}, ≤ {NN_LSTM_GOAL_SMALL}× below; "
          + "; ".join(f"{net} C ≤ {factor}× autograd" for net, factor in AUTOGRAD_GOAL.items())
          + "; other networks C < autograd")
    print()
    print(row(list(COLUMNS)))
    print(row(list(ALIGN)))
    whole_run = OtherLoad()
    failures = []
    for net in args.nets:
        for size in sizes:
            for dtype_name in dtypes:
                for line in run(net, kernels, size, dtype_name, repeat, args.plain_c_max, gemm,
                                args.wait_idle, args.rounds):
                    print(line, flush=True)
                    if "FAIL" in line or "WARNING" in line:
                        failures.append(line.split(" | ")[:4])
    print()
    if torch is None:
        print("Goals not checked: they need torch (`pip install -e '.[torch]'`).")
    elif failures:
        print("Missed goals or warnings in: " + ", ".join(
            f"{cells[0].lstrip('| ')} {cells[2]} {cells[3]}" for cells in failures))
    else:
        print("Every goal met.")
    print(f"At the end: NumPy {GEMM_N}×{GEMM_N} matmul {gemm_text(gemm_rates())}; "
          f"{load_text()}; others' CPU share over the run {share_text(whole_run.share())}; "
          f"total run time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
