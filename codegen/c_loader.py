"""Compiling and loading generated C kernels: ``codegen.load(dir, backend="c")``.

Role in DESIGN.md's picture: the C side of the kernel contract. ``generated/<net>/``
holds ``<net>.c`` and ``<net>.h`` beside the NumPy module ``<net>.py``; this module
compiles the C source with the system compiler into a content-keyed cache
(``compile_kernel``) and wraps the shared library in a ``CKernel`` with the same
API as the NumPy module (SIZES, PARAMS, STATE, init_params, loss_and_grad,
predict). Validation is the NumPy module's own ``_check``, so both backends reject
bad input with the same messages; the C functions only see well-formed,
C-contiguous arrays.

The C API of a kernel named NET (every function returns a status, 0 for success):

- ``size_t NET_workspace_bytes(const long *sizes)``
- ``int NET_loss_and_grad_f64(sizes, params, x, labels, state, loss, grads,
  state_grads, workspace)``
- ``int NET_predict_f64(sizes, params, x, state, y, workspace)``
- the same with ``_f32`` and ``float``.

``sizes`` is the module's SIZES in order, then T (recurrent networks), then B.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .loader import kernel_source, load_module

__all__ = [
    "STATUS",
    "CKernel",
    "CompilerError",
    "cache_dir",
    "cblas_available",
    "compile_kernel",
    "find_compiler",
    "load_c",
]

# -ffast-math lets the compiler vectorize exp and tanh through glibc's libmvec (the
# kernels' loops are otherwise bound by scalar libm calls, 3-5× slower at H = 128) and
# reassociate the dot-product loops. The kernels never rely on inf or NaN inputs, and
# the tests hold them to NumPy within 1e-12 in float64 with these flags.
BASE_FLAGS = ("-O3", "-march=native", "-ffast-math", "-std=c99", "-fPIC", "-shared")
LIBS = ("-lm",)
CBLAS_FLAGS = ("-DCHAINRULE_CBLAS",)
CBLAS_LIBS = ("-lopenblas",)

STATUS = {
    0: "success",
    1: "a size < 1",
    2: "a label outside 0..K-1",
}

_CBLAS_PROBE = """\
#include <cblas.h>
int main(void) {
    double a = 2.0, b = 3.0, c = 0.0;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0, &a, 1, &b, 1, 0.0, &c, 1);
    return c == 6.0 ? 0 : 1;
}
"""

_LIBRARY_SUFFIX = ".dll" if os.name == "nt" else ".so"


class CompilerError(RuntimeError):
    """No C compiler, or the compiler rejected a kernel (the message holds its stderr)."""


# --- the compiler ----------------------------------------------------------------------


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


# --- the cache -------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where compiled kernels live: ``$CHAINRULE_CACHE``, else the XDG cache's ``chainrule``."""
    explicit = os.environ.get("CHAINRULE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "chainrule"


def compile_kernel(source: str | Path, *, blas: bool | None = None,
                   flags: Sequence[str] | None = None) -> Path:
    """The shared library built from ``source`` (a ``.c`` with its ``.h`` beside it).

    Compiled with ``$CC`` (or ``cc``) and :data:`BASE_FLAGS` (``-O3 -march=native
    -ffast-math -std=c99 -fPIC -shared``),
    then ``flags`` (extra compiler flags, after the defaults, so ``-O0`` wins over
    ``-O3``), linking ``-lm``. With ``blas=True``, or ``blas=None`` and CBLAS found,
    also ``-DCHAINRULE_CBLAS`` and ``-lopenblas``. The library is cached under
    ``cache_dir()`` by a hash of the source, its header, the flags, the compiler and
    the machine; a cached library is reused, a new one is written atomically.
    Raises ``CompilerError`` when there is no compiler, when ``blas=True`` and CBLAS
    is missing, or when compiling fails.
    """
    source = Path(source).resolve()
    if not source.is_file():
        raise ValueError(f"{source} is not a C source file")
    compiler = find_compiler()
    use_blas = _resolve_blas(blas, compiler)
    compile_flags = [*BASE_FLAGS, *(CBLAS_FLAGS if use_blas else ()), *(flags or ())]
    link_flags = [*(CBLAS_LIBS if use_blas else ()), *LIBS]
    header = source.with_suffix(".h")
    digest = hashlib.sha256()
    for part in (source.read_bytes(), header.read_bytes() if header.is_file() else b"",
                 "\0".join([*compile_flags, "|", *link_flags]).encode(),
                 "\0".join(compiler).encode(), _compiler_version(compiler).encode(),
                 platform.machine().encode(), _cpu_model().encode()):
        digest.update(hashlib.sha256(part).digest())
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    library = directory / f"{source.stem}-{digest.hexdigest()[:20]}{_LIBRARY_SUFFIX}"
    if library.is_file():
        return library
    handle, temporary = tempfile.mkstemp(prefix=f".{source.stem}-", suffix=_LIBRARY_SUFFIX,
                                         dir=directory)
    os.close(handle)
    command = [*compiler, *compile_flags, "-o", temporary, str(source), *link_flags]
    try:
        done = _run_compiler(command)
        if done.returncode != 0:
            raise CompilerError(
                f"compiling {source.name} failed (exit status {done.returncode}):\n"
                f"$ {shlex.join(command)}\n{(done.stderr + done.stdout).rstrip()}")
        os.replace(temporary, library)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return library


# --- the kernel ------------------------------------------------------------------------

_CTYPES = {np.dtype(np.float64): ("f64", ctypes.c_double),
           np.dtype(np.float32): ("f32", ctypes.c_float)}
_LABELS_P = ctypes.POINTER(ctypes.c_int64)


def _declare(lib: ctypes.CDLL, net: str) -> dict[str, Any]:
    """Look up the six C functions of ``net`` and declare their argument and result types.

    Every pointer is declared ``c_void_p``, so raw callers may pass ctypes pointers,
    ctypes arrays of pointers, ``None`` for NULL, or plain addresses (``a.ctypes.data``).
    """
    def function(name: str) -> Any:
        try:
            return getattr(lib, name)
        except AttributeError:
            raise ValueError(f"{lib._name} has no function {name}; is it a chainrule C kernel "
                             f"for the network {net!r}?") from None

    pointer = ctypes.c_void_p
    functions: dict[str, Any] = {}
    workspace_bytes = function(f"{net}_workspace_bytes")
    workspace_bytes.argtypes = [pointer]
    workspace_bytes.restype = ctypes.c_size_t
    functions["workspace_bytes"] = workspace_bytes
    for suffix, _ in _CTYPES.values():
        loss_and_grad = function(f"{net}_loss_and_grad_{suffix}")
        loss_and_grad.argtypes = [pointer] * 9
        loss_and_grad.restype = ctypes.c_int
        functions[f"loss_and_grad_{suffix}"] = loss_and_grad
        predict = function(f"{net}_predict_{suffix}")
        predict.argtypes = [pointer] * 6
        predict.restype = ctypes.c_int
        functions[f"predict_{suffix}"] = predict
    return functions


class CKernel:
    """A compiled C kernel with the kernel contract of its NumPy module (see DESIGN.md).

    ``lib`` is the ``ctypes.CDLL`` and ``function(name)`` one of its six declared functions,
    for calling the C API directly; ``sizes_array``, ``pointers`` and ``workspace`` build
    their arguments.
    """

    backend = "c"

    def __init__(self, name: str, module: ModuleType, library: Path, blas: bool) -> None:
        self._scratch = threading.local()
        self.name = name
        self.module = module
        self.library = library
        self.blas = blas
        self.SIZES: tuple[str, ...] = tuple(module.SIZES)
        self.PARAMS: dict[str, tuple[str, ...]] = dict(module.PARAMS)
        self.STATE: dict[str, tuple[str, ...]] = dict(module.STATE)
        axes = tuple(module._INPUT_AXES)
        #: the order of the C ``sizes`` array: SIZES, then T (recurrent nets), then B
        self.SIZES_ORDER: tuple[str, ...] = (*self.SIZES, *(("T",) if "T" in axes else ()), "B")
        self._classes: str = module._CLASSES
        self.lib = ctypes.CDLL(str(library))
        self._functions = _declare(self.lib, name)

    def __repr__(self) -> str:
        blas = ", CBLAS" if self.blas else ""
        return f"<CKernel {self.name} ({self.library}{blas})>"

    # --- the contract -------------------------------------------------------------

    def init_params(self, sizes: Mapping[str, int], *, rng: Any = None,
                    dtype: Any = np.float64) -> dict[str, np.ndarray]:
        """Parameters for ``sizes``, exactly as the NumPy module's ``init_params`` draws them."""
        return self.module.init_params(sizes, rng=rng, dtype=dtype)

    def loss_and_grad(self, params: Mapping[str, np.ndarray], x: np.ndarray, labels: np.ndarray,
                      state: Mapping[str, np.ndarray] | None = None
                      ) -> tuple[np.floating, dict[str, np.ndarray]]:
        """(loss, grads): the loss summed over the batch (and time), and its gradients.

        grads holds every PARAMS key, and every STATE key when ``state`` is given.
        """
        sizes, dtype = self.module._check(params, x, labels, state, need_labels=True)
        suffix, _ = _CTYPES[dtype]
        keep: list[np.ndarray] = []
        # the header promises the kernels overwrite every gradient: no need to clear them
        grads = {name: np.empty(params[name].shape, dtype) for name in self.PARAMS}
        loss = np.zeros(1, dtype)
        state_grads = None
        if state is not None and self.STATE:
            state_grads = {name: np.empty(state[name].shape, dtype) for name in self.STATE}
        labels64 = np.ascontiguousarray(labels, dtype=np.int64)
        workspace = self.scratch(sizes)
        function = f"loss_and_grad_{suffix}"
        status = self._functions[function](
            self.sizes_array(sizes),
            self.pointers([params[name] for name in self.PARAMS], dtype, keep),
            self._pointer(x, dtype, keep),
            labels64.ctypes.data_as(_LABELS_P),
            self._state_pointers(state, dtype, keep),
            loss.ctypes.data_as(ctypes.POINTER(_CTYPES[dtype][1])),
            self.pointers(list(grads.values()), dtype, keep),
            None if state_grads is None else self.pointers(list(state_grads.values()), dtype,
                                                           keep),
            workspace.ctypes.data_as(ctypes.c_void_p),
        )
        self._raise_on(status, function)
        if state is not None:
            grads.update(state_grads or {})
        return dtype.type(loss[0]), grads

    def predict(self, params: Mapping[str, np.ndarray], x: np.ndarray,
                state: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Softmax outputs, shape ``x.shape[:-1] + (K,)``, in the dtype of ``x``."""
        sizes, dtype = self.module._check(params, x, None, state, need_labels=False)
        suffix, _ = _CTYPES[dtype]
        keep: list[np.ndarray] = []
        y = np.empty((*x.shape[:-1], sizes[self._classes]), dtype)
        workspace = self.scratch(sizes)
        function = f"predict_{suffix}"
        status = self._functions[function](
            self.sizes_array(sizes),
            self.pointers([params[name] for name in self.PARAMS], dtype, keep),
            self._pointer(x, dtype, keep),
            self._state_pointers(state, dtype, keep),
            y.ctypes.data_as(ctypes.POINTER(_CTYPES[dtype][1])),
            workspace.ctypes.data_as(ctypes.c_void_p),
        )
        self._raise_on(status, function)
        return y

    # --- the raw C API --------------------------------------------------------------

    def function(self, name: str) -> Any:
        """The declared C function ``<net>_<name>``, e.g. ``function("loss_and_grad_f64")``.

        Use this (or ``lib.<net>_<name>``), not ``lib["..."]``: ctypes' item lookup makes a
        fresh function object without the declared argument types, which truncates pointers
        passed as Python ints.
        """
        try:
            return self._functions[name]
        except KeyError:
            raise ValueError(f"no C function {name!r}; expected one of "
                             f"{', '.join(self._functions)}") from None

    def sizes_array(self, sizes: Mapping[str, int]) -> ctypes.Array[ctypes.c_long]:
        """The C ``sizes`` argument: every name of ``SIZES_ORDER`` looked up in ``sizes``."""
        return (ctypes.c_long * len(self.SIZES_ORDER))(*(int(sizes[n]) for n in self.SIZES_ORDER))

    def workspace_bytes(self, sizes: Mapping[str, int]) -> int:
        """What ``NET_workspace_bytes`` asks for ``sizes``."""
        return int(self._functions["workspace_bytes"](self.sizes_array(sizes)))

    def scratch(self, sizes: Mapping[str, int]) -> np.ndarray:
        """This thread's workspace, reused while it is large enough: a fresh one per call
        would be faulted in page by page every time (measured: 4% of an LSTM call)."""
        needed = max(1, -(-self.workspace_bytes(sizes) // 8))
        cached = getattr(self._scratch, "array", None)
        if cached is None or cached.size < needed:
            cached = self._scratch.array = np.empty(needed, np.float64)
        return cached

    def workspace(self, sizes: Mapping[str, int]) -> np.ndarray:
        """A fresh workspace for ``sizes``: float64 (8-byte aligned), at least one element."""
        return np.empty(max(1, -(-self.workspace_bytes(sizes) // 8)), np.float64)

    @staticmethod
    def pointers(arrays: Sequence[np.ndarray], dtype: np.dtype,
                 keep: list[np.ndarray] | None = None) -> Any:
        """A C array of pointers to ``arrays``, each made C-contiguous in ``dtype``.

        Contiguous copies are appended to ``keep``: the caller holds them until the call
        returns. Arrays written by C (outputs) must already be C-contiguous in ``dtype``.
        """
        real = ctypes.POINTER(_CTYPES[np.dtype(dtype)][1])
        keep = [] if keep is None else keep
        return (real * len(arrays))(*(CKernel._pointer(a, dtype, keep) for a in arrays))

    @staticmethod
    def _pointer(array: np.ndarray, dtype: np.dtype, keep: list[np.ndarray]) -> Any:
        contiguous = np.ascontiguousarray(array, dtype=dtype)
        keep.append(contiguous)
        return contiguous.ctypes.data_as(ctypes.POINTER(_CTYPES[np.dtype(dtype)][1]))

    def _state_pointers(self, state: Mapping[str, np.ndarray] | None, dtype: np.dtype,
                        keep: list[np.ndarray]) -> Any:
        if state is None or not self.STATE:
            return None
        return self.pointers([state[name] for name in self.STATE], dtype, keep)

    def _raise_on(self, status: int, function: str) -> None:
        if status != 0:
            meaning = STATUS.get(status, "an unknown status")
            raise ValueError(f"C kernel {self.name}_{function} returned {status} ({meaning})")


def load_c(directory: str | Path, *, blas: bool | None = None) -> CKernel:
    """The C kernel in ``directory``: ``<net>.c`` compiled, with ``<net>.py``'s contract.

    ``blas``: True requires CBLAS (OpenBLAS), False never uses it, None uses it when
    found. See ``compile_kernel`` for the compiler, flags and cache.
    """
    directory = Path(directory)
    source = kernel_source(directory, ".c")
    python = source.with_suffix(".py")
    if not python.is_file():
        raise ValueError(f"{directory} holds {source.name} but not {python.name}: the C kernel "
                         f"takes its contract (SIZES, PARAMS, STATE, checks) from the NumPy "
                         f"module beside it")
    module = load_module(python)
    use_blas = _resolve_blas(blas, find_compiler())
    library = compile_kernel(source, blas=use_blas)
    return CKernel(source.stem, module, library, use_blas)
