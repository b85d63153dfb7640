"""The system C compiler, for the C kernels: which one, how it is run, and with what.

Role in DESIGN.md's picture: part of the C side of the kernel contract, the layer
below the library cache (``cache.py``) and the loader (``loader.py``). It finds the
compiler (``find_compiler``: ``$CC`` or ``cc``), names what a library built by it
depends on beyond its source (the compiler's version, the CPU model, for the cache
key), runs it (``_run_compiler``, the single place that compiles), holds the flags
every kernel is built with (``BASE_FLAGS``, ``LIBS``, and ``CBLAS_FLAGS``,
``CBLAS_LIBS`` with CBLAS) and probes once per compiler whether CBLAS (OpenBLAS)
compiles and links (``cblas_available``). Every failure is a ``CompilerError``.
"""

from __future__ import annotations

import functools
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "BASE_FLAGS",
    "CBLAS_FLAGS",
    "CBLAS_LIBS",
    "LIBS",
    "CompilerError",
    "cblas_available",
    "find_compiler",
]

# -ffast-math lets the compiler vectorize exp and tanh through glibc's libmvec (the
# kernels' loops are otherwise bound by scalar libm calls, 3-5× slower at H = 128) and
# reassociate the dot-product loops. The kernels never rely on inf or NaN inputs, and
# the tests hold them to NumPy within 1e-12 in float64 with these flags.
BASE_FLAGS = ("-O3", "-march=native", "-ffast-math", "-std=c99", "-fPIC", "-shared")
LIBS = ("-lm",)
CBLAS_FLAGS = ("-DCHAINRULE_CBLAS",)
CBLAS_LIBS = ("-lopenblas",)

_CBLAS_PROBE = """\
#include <cblas.h>
int main(void) {
    double a = 2.0, b = 3.0, c = 0.0;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0, &a, 1, &b, 1, 0.0, &c, 1);
    return c == 6.0 ? 0 : 1;
}
"""


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


@functools.cache
def _probe_cblas(compiler: tuple[str, ...]) -> bool:
    with tempfile.TemporaryDirectory(prefix="chainrule-cblas-") as scratch:
        source = Path(scratch) / "probe.c"
        source.write_text(_CBLAS_PROBE, encoding="utf-8")
        done = _run_compiler([*compiler, "-o", str(Path(scratch) / "probe"), str(source),
                              *CBLAS_LIBS, *LIBS])
    return done.returncode == 0


def cblas_available(compiler: Sequence[str] | None = None) -> bool:
    """Whether ``<cblas.h>`` and ``cblas_dgemm`` from ``-lopenblas`` compile and link.

    The answer is cached per compiler for the life of the process.
    """
    return _probe_cblas(tuple(compiler) if compiler is not None else find_compiler())


def _resolve_blas(blas: bool | None, compiler: tuple[str, ...]) -> bool:
    if blas is None:
        return cblas_available(compiler)
    if blas and not cblas_available(compiler):
        raise CompilerError(
            f"blas=True but CBLAS is not available to {shlex.join(compiler)}: compiling "
            "`#include <cblas.h>` with cblas_dgemm and linking -lopenblas failed. Install "
            "OpenBLAS's headers and library (Debian/Ubuntu: `apt-get install libopenblas-dev`) "
            "or pass blas=False.")
    return bool(blas)
