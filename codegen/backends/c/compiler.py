"""The system C compiler, for the C kernels: which one, how it is run, and with what.

Role in DESIGN.md's picture: part of the C side of the kernel contract, the layer
below the library cache (``cache.py``) and the loader (``loader.py``). It finds the
compiler (``find_compiler``: ``$CC`` or ``cc``), names what a library built by it
depends on beyond its source (the compiler's version, the CPU model, for the cache
key), runs it (``_run_compiler``, the single place that compiles), holds the flags
every kernel is built with (``BASE_FLAGS``, ``LIBS``, and ``optimization_flags`` per
compiler family); which CBLAS a kernel links is ``blas.py``'s. Every failure is a
``CompilerError``.
"""

from __future__ import annotations

import functools
import os
import platform
import shlex
import shutil
import subprocess
from collections.abc import Sequence

__all__ = [
    "BASE_FLAGS",
    "GCC_OPTIMIZATION",
    "LIBS",
    "NO_UNDEFINED",
    "OTHER_OPTIMIZATION",
    "CompilerError",
    "find_compiler",
    "optimization_flags",
]

# -ffast-math lets the compiler vectorize exp and tanh through glibc's libmvec (the
# kernels' loops are otherwise bound by scalar libm calls, 3-5× slower at H = 128) and
# reassociate the dot-product loops. The kernels never rely on inf or NaN inputs, and
# the tests hold them to NumPy within 1e-12 in float64 with these flags.
BASE_FLAGS = ("-march=native", "-ffast-math", "-std=c99", "-fPIC", "-shared")
# GCC: -O2 with the vectorizer's full cost model runs the kernels as fast as -O3 (LSTM
# without peepholes, H = 128: 36.2 against 36.1 ms in float64) and compiles a kernel
# of many loops three times faster (the two-layer BLSTM: 34 s against 98 s); -O3's
# loop transformations grow the one large function past what its later passes handle
# quickly. Plain -O2 (GCC 12's "very cheap" cost model) leaves the loops with a
# remainder scalar: 56 ms. Other compilers (clang) get -O3.
GCC_OPTIMIZATION = ("-O2", "-ftree-vectorize", "-fvect-cost-model=dynamic")
OTHER_OPTIMIZATION = ("-O3",)
LIBS = ("-lm",)
# GNU ld links a shared library with undefined symbols without a word; the kernel then
# fails only when loaded. With this a missing CBLAS symbol is a compile error.
NO_UNDEFINED = ("-Wl,--no-undefined",) if platform.system() == "Linux" else ()


class CompilerError(RuntimeError):
    """No C compiler, or the compiler rejected a kernel (the message holds its stderr), or
    the library cache cannot be used (:class:`CacheError`)."""


def find_compiler() -> tuple[str, ...]:
    """The C compiler command: ``$CC`` (split like a shell would) if set, else ``cc``."""
    requested = os.environ.get("CC", "").strip()
    command = tuple(shlex.split(requested)) if requested else ("cc",)
    if shutil.which(command[0]) is None:
        looked_for = f"$CC = {requested!r}" if requested else "'cc' (from $CC, unset)"
        raise CompilerError(
            f"no C compiler was found: looked for {looked_for} on PATH. Install one "
            "(e.g. `apt-get install gcc` on Debian/Ubuntu) or point $CC at a C compiler.")
    return command


@functools.cache
def _compiler_version(compiler: tuple[str, ...]) -> str:
    """The first line the compiler prints for ``--version`` (part of the cache key)."""
    try:
        done = subprocess.run([*compiler, "--version"], capture_output=True, text=True,
                              check=False)
    except OSError as error:
        raise CompilerError(f"cannot run the C compiler {shlex.join(compiler)}: {error}") from None
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        if line.strip():
            return line.strip()
    return ""


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    """The CPU's model name where the OS says it (``-march=native`` code is CPU-specific)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor()


def _run_compiler(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run one compiler command, capturing its output (the single place that compiles)."""
    try:
        return subprocess.run(list(command), capture_output=True, text=True, check=False)
    except OSError as error:
        raise CompilerError(f"cannot run the C compiler: {shlex.join(command)}: {error}") from None


def optimization_flags(compiler: Sequence[str]) -> tuple[str, ...]:
    """The optimisation flags for ``compiler``: :data:`GCC_OPTIMIZATION` for GCC, else
    :data:`OTHER_OPTIMIZATION`."""
    return GCC_OPTIMIZATION if _is_gcc(tuple(compiler)) else OTHER_OPTIMIZATION


@functools.cache
def _is_gcc(compiler: tuple[str, ...]) -> bool:
    """Whether ``compiler`` is GCC: it defines ``__GNUC__`` and not ``__clang__`` (clang and
    others define ``__GNUC__`` too; ``cc --version`` need not say "gcc")."""
    try:
        done = subprocess.run([*compiler, "-dM", "-E", "-x", "c", os.devnull],
                              capture_output=True, text=True, check=False)
    except OSError:
        return False
    macros = {line.split()[1] for line in done.stdout.splitlines() if len(line.split()) > 1}
    return done.returncode == 0 and "__GNUC__" in macros and not (
        {"__clang__", "__INTEL_COMPILER", "__INTEL_LLVM_COMPILER"} & macros)
