"""Which CBLAS a C kernel links: the bundled OpenBLAS, the system's, or none.

Role in DESIGN.md's picture: part of the C side of the kernel contract, beside
``compiler.py`` (which runs the compiler) and below the library cache (``cache.py``),
which asks :func:`resolve_blas` for the flags of the library a kernel is built with.
The choice is one of :data:`CHOICES`:

- ``"bundled"``: OpenBLAS from the ``scipy-openblas32`` wheel, a run-time dependency of
  chainrule (built with ``DYNAMIC_ARCH``: it picks its kernels for the CPU it runs on,
  whatever the distribution ships). Its symbols carry the prefix ``scipy_``
  (``scipy_cblas_dgemm``); the kernel source maps its calls through
  ``-DCHAINRULE_CBLAS_PREFIX=scipy_``. Headers and library are found through the
  package's own ``get_include_dir()`` and ``get_lib_dir()``; the library's folder is
  the kernel's run path, so nothing depends on ``LD_LIBRARY_PATH``.
- ``"system"``: ``<cblas.h>`` and the link flags in ``$CHAINRULE_SYSTEM_CBLAS``
  (shell words, default ``-lopenblas``): the distribution's OpenBLAS, or any CBLAS
  (``-lcblas -lblas``, BLIS's ``-lblis``...).
- ``"none"``: the kernels' own loops.

``blas=None`` (the default) takes the bundled library where the wheel is installed,
else the system one where it compiles and links, else none; ``True`` requires one of
the two; ``False`` is ``"none"``. Each library is probed once per compiler (a program
calling ``cblas_dgemm`` through the same macros as the kernels must compile, link and
run); every failure is a ``CompilerError`` that names the library and the fix.

A C user outside Python makes the same choice with the same macros: compile the
kernel with ``-DCHAINRULE_CBLAS`` (and ``-DCHAINRULE_CBLAS_PREFIX=scipy_`` for the
wheel's library) and link the library.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from chainrule.codegen.backends.c import compiler as toolchain

__all__ = ["CHOICES", "Blas", "BlasChoice", "blas_info", "resolve_blas", "set_blas_threads"]

#: the libraries a kernel can be built with, by name
CHOICES = ("bundled", "system", "none")
#: what ``blas=`` takes: a name of :data:`CHOICES`, True (bundled or system), False
#: (none) or None (the first of bundled, system, none that works)
BlasChoice = str | bool | None

_DEFAULT_SYSTEM_LIBS = "-lopenblas"
_BUNDLED_PACKAGE = "scipy_openblas32"
_BUNDLED_PREFIX = "scipy_"
#: kernel families OpenBLAS falls back to when it does not know the CPU (SSE3 era)
FALLBACK_CORES = ("prescott", "core2", "katmai", "coppermine", "northwood", "banias")

_PROBE = """\
#include <cblas.h>
#ifndef CHAINRULE_CBLAS_PREFIX
#define CHAINRULE_CBLAS_PREFIX
#endif
#define CHAINRULE_CAT_(a, b) a##b
#define CHAINRULE_CAT(a, b) CHAINRULE_CAT_(a, b)
#define CHAINRULE_CBLAS_NAME(name) CHAINRULE_CAT(CHAINRULE_CBLAS_PREFIX, name)
int main(void) {
    double a = 2.0, b = 3.0, c = 0.0;
    CHAINRULE_CBLAS_NAME(cblas_dgemm)(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1,
                                      1.0, &a, 1, &b, 1, 0.0, &c, 1);
    return c == 6.0 ? 0 : 1;
}
"""


@dataclass(frozen=True)
class Blas:
    """A CBLAS as the compiler sees it: its name (one of :data:`CHOICES`), the flags that
    compile a kernel against it and link it, and the prefix of its symbols."""

    name: str
    compile_flags: tuple[str, ...] = ()
    link_flags: tuple[str, ...] = ()
    prefix: str = ""
    #: where the library comes from, in words (for messages and the benchmark)
    origin: str = "no CBLAS: the kernels' own loops"

    def __bool__(self) -> bool:
        return self.name != "none"


NONE = Blas("none")


def _bundled() -> Blas | str:
    """The wheel's OpenBLAS, or why it cannot be used."""
    try:
        import scipy_openblas32 as wheel  # type: ignore[import-not-found]
    except ImportError:
        return (f"the Python package scipy-openblas32 (module {_BUNDLED_PACKAGE}) is not "
                "installed: `pip install scipy-openblas32` (a dependency of chainrule)")
    include, lib = wheel.get_include_dir(), wheel.get_lib_dir()
    name = wheel.get_library()  # "scipy_openblas": libscipy_openblas.so
    version = getattr(wheel, "__version__", "?")
    return Blas("bundled",
                ("-DCHAINRULE_CBLAS", f"-DCHAINRULE_CBLAS_PREFIX={_BUNDLED_PREFIX}",
                 f"-I{include}"),
                (f"-L{lib}", f"-Wl,-rpath,{lib}", f"-l{name}"),
                _BUNDLED_PREFIX, f"OpenBLAS from the scipy-openblas32 wheel {version} ({lib})")


def _system() -> Blas:
    words = os.environ.get("CHAINRULE_SYSTEM_CBLAS", "").strip() or _DEFAULT_SYSTEM_LIBS
    return Blas("system", ("-DCHAINRULE_CBLAS",), tuple(shlex.split(words)), "",
                f"the system's CBLAS ({words}, from $CHAINRULE_SYSTEM_CBLAS or the default)")


@functools.cache
def _links(blas: Blas, compiler: tuple[str, ...]) -> str | None:
    """None if a program calling cblas_dgemm through ``blas`` compiles, links and runs,
    else the compiler's (or the program's) complaint."""
    with tempfile.TemporaryDirectory(prefix="chainrule-cblas-") as scratch:
        source, program = Path(scratch) / "probe.c", Path(scratch) / "probe"
        source.write_text(_PROBE, encoding="utf-8")
        done = toolchain._run_compiler([*compiler, *blas.compile_flags, "-o", str(program),
                                        str(source), *blas.link_flags, *toolchain.LIBS])
        if done.returncode != 0:
            lines = (done.stderr + done.stdout).strip().splitlines()
            errors = [line.strip() for line in lines if "error" in line]
            return (errors or lines or [f"exit status {done.returncode}"])[0]
        try:
            ran = subprocess.run([str(program)], capture_output=True, text=True, check=False,
                                 timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"the probe program did not run: {error}"
        return None if ran.returncode == 0 else "the probe program's product was wrong"


def _usable(blas: Blas | str, compiler: tuple[str, ...]) -> Blas | str:
    if isinstance(blas, str):
        return blas
    problem = _links(blas, compiler)
    if problem is None:
        return blas
    return (f"{blas.origin} does not compile and link with {shlex.join(compiler)} "
            f"({shlex.join([*blas.compile_flags, *blas.link_flags])}): {problem}")


_SYSTEM_FIX = ("install OpenBLAS's headers and library (Debian/Ubuntu: `apt-get install "
               "libopenblas-dev`), or name another CBLAS's link flags in "
               "$CHAINRULE_SYSTEM_CBLAS")


def resolve_blas(choice: BlasChoice, compiler: tuple[str, ...] | None = None) -> Blas:
    """The library ``blas=choice`` means for ``compiler`` (default ``find_compiler()``).

    Raises ``ValueError`` for a choice that is none of :data:`CHOICES`, True, False or
    None, and ``CompilerError`` when the library asked for cannot be used (the message
    says why and how to get it).
    """
    if choice is not None and not isinstance(choice, (bool, str)):
        raise ValueError(f"blas={choice!r}: expected one of {', '.join(map(repr, CHOICES))}, "
                         "True, False or None")
    if isinstance(choice, str) and choice not in CHOICES:
        raise ValueError(f"blas={choice!r}: expected one of {', '.join(map(repr, CHOICES))}, "
                         "True (bundled or system), False (none) or None (the default)")
    if choice is False or choice == "none":
        return NONE
    compiler = tuple(compiler) if compiler is not None else toolchain.find_compiler()
    if choice == "bundled":
        found = _usable(_bundled(), compiler)
        if isinstance(found, str):
            raise toolchain.CompilerError(f"blas='bundled' cannot be used: {found}")
        return found
    if choice == "system":
        found = _usable(_system(), compiler)
        if isinstance(found, str):
            raise toolchain.CompilerError(f"blas='system' cannot be used: {found}; "
                                          f"{_SYSTEM_FIX}")
        return found
    problems = []
    for candidate in (_bundled(), _system()):
        found = _usable(candidate, compiler)
        if not isinstance(found, str):
            return found
        problems.append(found)
    if choice is True:
        raise toolchain.CompilerError("blas=True but no CBLAS can be used: "
                                      + "; ".join(problems) + f". Fix one: {_SYSTEM_FIX}, "
                                      "or `pip install scipy-openblas32`; or pass blas=False")
    return NONE


@dataclass(frozen=True)
class BlasInfo:
    """What an OpenBLAS loaded in this process says of itself."""

    config: str
    core: str
    threads: int

    @property
    def fallback(self) -> bool:
        """Whether OpenBLAS runs a fallback kernel family (it did not know the CPU)."""
        return self.core.strip().lower() in FALLBACK_CORES


def blas_info(library: ctypes.CDLL, blas: Blas) -> BlasInfo | None:
    """The configuration, kernel family and thread count of the OpenBLAS that ``library``
    (a loaded kernel) calls, or None where that CBLAS is not OpenBLAS (or there is none)."""
    if not blas:
        return None
    try:
        config = getattr(library, f"{blas.prefix}openblas_get_config")
        core = getattr(library, f"{blas.prefix}openblas_get_corename")
        threads = getattr(library, f"{blas.prefix}openblas_get_num_threads")
    except AttributeError:
        return None
    config.restype = core.restype = ctypes.c_char_p
    threads.restype = ctypes.c_int
    return BlasInfo(config().decode(errors="replace").strip(),
                    core().decode(errors="replace").strip(), int(threads()))


def set_blas_threads(library: ctypes.CDLL, blas: Blas, count: int) -> None:
    """Set the thread count of the OpenBLAS that ``library`` (a loaded kernel) calls: a
    pool of that library alone, not NumPy's. ValueError where the kernel calls no
    OpenBLAS or ``count`` is no positive int."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"the BLAS thread count must be an int >= 1, got {count!r}")
    setter = getattr(library, f"{blas.prefix}openblas_set_num_threads", None) if blas else None
    if setter is None:
        raise ValueError(f"this kernel calls no OpenBLAS (blas={blas.name!r}): it has no "
                         "threads to set")
    setter.argtypes, setter.restype = [ctypes.c_int], None
    setter(count)
