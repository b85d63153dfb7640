"""Compiling and loading generated C kernels: ``codegen.load(dir, backend="c")``.

Role in DESIGN.md's picture: the C side of the kernel contract. ``generated/<net>/``
holds ``<net>.c`` and ``<net>.h`` beside the NumPy module ``<net>.py``; this module
compiles the C source with the system compiler into a content-keyed cache
(``compile_kernel``; every cached library is checked before it is loaded, see "the
cache" below) and wraps the shared library in a ``CKernel`` with the same
API as the NumPy module (SIZES, PARAMS, STATE, init_params, loss_and_grad,
predict). The library describes its own contract (``NET_contract()``, the JSON of
``plan/contract.py``); validation is ``codegen.kernel_checks``, the implementation
the NumPy module holds a copy of, so both backends reject bad input with the same
messages; the C functions only see well-formed, C-contiguous arrays. The C kernel
needs nothing of the ``.py`` beside it.

The C API of a kernel named NET (the kernels return a status, 0 for success):

- ``const char *NET_contract(void)``: the kernel contract as JSON
- ``size_t NET_workspace_bytes(const long *sizes)``
- ``int NET_loss_and_grad_f64(sizes, params, x, labels, state, loss, grads,
  state_grads, workspace)``
- ``int NET_predict_f64(sizes, params, x, state, y, workspace)``
- the same with ``_f32`` and ``float``.

``sizes`` is the contract's ``call_sizes``: SIZES in order, then the time size
(recurrent networks), then B.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.codegen.escape import c_string
from chainrule.codegen.kernel_checks import check_call, draw_params
from chainrule.codegen.kernel_set import read_checked
from chainrule.codegen.plan.contract import STATUS as CONTRACT_STATUS
from chainrule.codegen.plan.contract import KernelContract
from chainrule.codegen.precision import PRECISIONS, precision_of
from chainrule.codegen.writer import folder_lock

__all__ = [
    "STATUS",
    "CKernel",
    "CacheError",
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

#: the status codes of the C kernels (the contract's, with the classes' size as ``K``)
STATUS = {code: meaning.format(classes="K") for code, meaning in CONTRACT_STATUS.items()}

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
    """No C compiler, or the compiler rejected a kernel (the message holds its stderr), or
    the library cache cannot be used (:class:`CacheError`)."""


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
#
# A library is named <stem>-<key>-<content>.so: <key> hashes everything it is built
# from (source, header, flags, compiler, machine), <content> hashes the library's own
# bytes. The content hash is the record of what was written, and it is written in the
# same rename that puts the library in place, so there is no moment at which a record
# vouches for a partial file. Before a library is loaded it is opened without following
# links, checked to be a regular file owned by this user, and hashed; anything else
# (truncated, empty, garbage, planted) is compiled again. New files are always written
# beside and renamed: a file another process has mapped is never changed. Compiles into
# one cache take turns (flock on the cache folder), so the first compiles and the others
# find its library; a temporary left by a killed compile is removed by the next one.

_TEMPORARY_SUFFIX = ".tmp"


class CacheError(CompilerError):
    """The C kernel cache (``cache_dir()``) cannot hold or give a library; the message says
    what is wrong with it and how to fix it."""


def cache_dir() -> Path:
    """Where compiled kernels live: ``$CHAINRULE_CACHE``, else the XDG cache's ``chainrule``."""
    explicit = os.environ.get("CHAINRULE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "chainrule"


def _cache_error(directory: Path, problem: str, fix: str = "") -> CacheError:
    if os.environ.get("CHAINRULE_CACHE"):
        origin = "$CHAINRULE_CACHE"
    else:
        origin = "the default; set $CHAINRULE_CACHE to use another folder"
    fix = fix or ("set $CHAINRULE_CACHE to a folder of your own that you can write (it is "
                  "created, mode 0700, if it does not exist)")
    return CacheError(f"the C kernel cache {directory} ({origin}) {problem}; {fix}")


def _os_problem(error: OSError) -> str:
    return error.strerror or str(error)


def _prepare_cache(directory: Path) -> None:
    """Make ``directory`` a folder of this user's, mode 0700 (CacheError if it cannot be)."""
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
    except FileExistsError:
        pass  # a file, or a link to one: reported below
    except OSError as error:
        raise _cache_error(directory, f"cannot be created: {_os_problem(error)}") from None
    try:
        info = directory.stat()
    except OSError as error:
        raise _cache_error(directory, f"cannot be used: {_os_problem(error)}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise _cache_error(directory, "is not a folder")
    if info.st_uid != os.geteuid():
        raise _cache_error(directory, f"belongs to another user (uid {info.st_uid}, you are "
                           f"uid {os.geteuid()}), who could plant libraries in it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        try:  # only ever take permissions away: a read-only cache stays read-only
            os.chmod(directory, stat.S_IMODE(info.st_mode) & 0o700)
        except OSError as error:
            raise _cache_error(directory, f"is open to other users and cannot be made private "
                               f"(mode 0700): {_os_problem(error)}") from None


@contextlib.contextmanager
def _cache_lock(directory: Path) -> Iterator[bool]:
    """Hold the cache's lock (``writer.folder_lock``); a folder that cannot be opened is a
    CacheError."""
    lock = folder_lock(directory)
    try:
        held = lock.__enter__()
    except OSError as error:
        raise _cache_error(directory, f"cannot be opened: {_os_problem(error)}") from None
    try:
        yield held
    finally:
        lock.__exit__(None, None, None)


def _owned_by_someone_else(info: os.stat_result) -> bool:
    return info.st_uid != os.geteuid()


def _content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _valid(library: Path, content: str) -> bool:
    """Whether ``library`` is a regular file of this user's whose bytes hash to ``content``."""
    try:
        # no links followed; O_NONBLOCK: a FIFO planted under the name cannot hang us
        descriptor = os.open(library, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False  # missing, a link, unreadable
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or _owned_by_someone_else(info):
            return False
        return _content_hash(handle.read()) == content


def _candidates(directory: Path, prefix: str) -> list[tuple[Path, str]]:
    """The cached libraries named ``<prefix><content hash>.so``, with their content hashes."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as error:
        raise _cache_error(directory, f"cannot be listed: {_os_problem(error)}") from None
    found = []
    for name in names:
        if name.startswith(prefix) and name.endswith(_LIBRARY_SUFFIX):
            content = name[len(prefix):-len(_LIBRARY_SUFFIX)]
            if len(content) == 32 and all(c in "0123456789abcdef" for c in content):
                found.append((directory / name, content))
    return found


def _cached(directory: Path, prefix: str) -> tuple[Path | None, list[Path]]:
    """The first valid library for ``prefix``, and the invalid ones met on the way."""
    invalid = []
    for library, content in _candidates(directory, prefix):
        if _valid(library, content):
            return library, invalid
        invalid.append(library)
    return None, invalid


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # never loaded anyway: only a verified library is


def _remove_stale_temporaries(directory: Path) -> None:
    """Temporaries of compiles killed before they finished (called with the lock held)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(".") and name.endswith(_LIBRARY_SUFFIX + _TEMPORARY_SUFFIX):
            _remove_quietly(directory / name)


def _c_line(path: Path) -> bytes:
    """A ``#line 1 "path"`` directive: the compiler's messages name the user's file."""
    return f"#line 1 {c_string(str(path))}\n".encode()


def _build(name: str, source: bytes, header: bytes | None, origin: Path,
           compiler: tuple[str, ...], compile_flags: list[str], link_flags: list[str],
           directory: Path) -> Path:
    """Compile ``source`` (with ``header`` as ``<stem>.h`` beside it) into a temporary in the
    cache; return the temporary's path. The compiler reads private copies of exactly the
    bytes that were hashed for the cache key, never the user's files again."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{Path(name).stem}-",
                                             suffix=_LIBRARY_SUFFIX + _TEMPORARY_SUFFIX,
                                             dir=directory)
    except OSError as error:
        raise _cache_error(directory, f"cannot be written: {_os_problem(error)}",
                           "make it writable (chmod u+w), or set $CHAINRULE_CACHE to a "
                           "folder of your own that you can write") from None
    os.close(handle)
    try:
        with tempfile.TemporaryDirectory(prefix="chainrule-build-") as scratch:
            copy = Path(scratch) / name
            copy.write_bytes(_c_line(origin) + source)
            if header is not None:
                header_origin = origin.with_suffix(".h")
                copy.with_suffix(".h").write_bytes(_c_line(header_origin) + header)
            # other files the source includes with "..." are found beside the original
            command = [*compiler, *compile_flags, "-iquote", str(origin.parent), "-o", temporary,
                       str(copy), *link_flags]
            done = _run_compiler(command)
        if done.returncode != 0:
            raise CompilerError(
                f"compiling {name} failed (exit status {done.returncode}):\n"
                f"$ {shlex.join(command)}\n{(done.stderr + done.stdout).rstrip()}")
    except BaseException:
        _remove_quietly(Path(temporary))
        raise
    return Path(temporary)


def _install(temporary: Path, prefix: str, directory: Path) -> Path:
    """Rename the compiled ``temporary`` to its content-hashed name; return that name."""
    try:
        library = directory / f"{prefix}{_content_hash(temporary.read_bytes())}{_LIBRARY_SUFFIX}"
        os.chmod(temporary, 0o755)  # mkstemp's 0600; the folder keeps others out anyway
        os.replace(temporary, library)
    except OSError as error:
        _remove_quietly(temporary)
        raise _cache_error(directory, f"cannot be written: {_os_problem(error)}",
                           "make it writable (chmod u+w), or set $CHAINRULE_CACHE to a "
                           "folder of your own that you can write") from None
    return library


def _compile_cached(name: str, source: bytes, header: bytes | None, origin: Path, *,
                    blas: bool | None, flags: Sequence[str] | None) -> Path:
    compiler = find_compiler()
    use_blas = _resolve_blas(blas, compiler)
    compile_flags = [*BASE_FLAGS, *(CBLAS_FLAGS if use_blas else ()), *(flags or ())]
    link_flags = [*(CBLAS_LIBS if use_blas else ()), *LIBS]
    digest = hashlib.sha256()
    for part in (source, header if header is not None else b"",
                 "\0".join([*compile_flags, "|", *link_flags]).encode(),
                 "\0".join(compiler).encode(), _compiler_version(compiler).encode(),
                 platform.machine().encode(), _cpu_model().encode()):
        digest.update(hashlib.sha256(part).digest())
    directory = cache_dir()
    _prepare_cache(directory)
    prefix = f"{Path(name).stem}-{digest.hexdigest()[:20]}-"
    library, _ = _cached(directory, prefix)
    if library is not None:
        return library
    with _cache_lock(directory) as locked:
        library, invalid = _cached(directory, prefix)  # another compile may have finished
        if library is not None:
            return library
        if locked:
            _remove_stale_temporaries(directory)
        temporary = _build(name, source, header, origin, compiler, compile_flags, link_flags,
                           directory)
        library = _install(temporary, prefix, directory)
        for stale in invalid:
            if stale != library:
                _remove_quietly(stale)
    return library


def compile_kernel(source: str | Path, *, blas: bool | None = None,
                   flags: Sequence[str] | None = None) -> Path:
    """The shared library built from ``source`` (a ``.c`` with its ``.h`` beside it).

    Compiled with ``$CC`` (or ``cc``) and :data:`BASE_FLAGS` (``-O3 -march=native
    -ffast-math -std=c99 -fPIC -shared``),
    then ``flags`` (extra compiler flags, after the defaults, so ``-O0`` wins over
    ``-O3``), linking ``-lm``. With ``blas=True``, or ``blas=None`` and CBLAS found,
    also ``-DCHAINRULE_CBLAS`` and ``-lopenblas``. The library is cached under
    ``cache_dir()`` by a hash of the source, its header, the flags, the compiler and
    the machine; a cached library is checked (a regular file of this user's whose
    bytes match the hash in its name) before it is reused, and compiled again if it
    fails; a new one is written atomically. Raises ``CompilerError`` when there is no
    compiler, when ``blas=True`` and CBLAS is missing, or when compiling fails, and
    ``CacheError`` (a ``CompilerError``) when the cache folder cannot be used.
    """
    source = Path(source).resolve()
    if not source.is_file():
        raise ValueError(f"{source} is not a C source file")
    header = source.with_suffix(".h")
    return _compile_cached(source.name, source.read_bytes(),
                           header.read_bytes() if header.is_file() else None, source,
                           blas=blas, flags=flags)


# --- the kernel ------------------------------------------------------------------------

_LABELS_P = ctypes.POINTER(ctypes.c_int64)


def _declare(lib: ctypes.CDLL, net: str) -> dict[str, Any]:
    """Look up the C functions of ``net`` and declare their argument and result types.

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
    contract = function(f"{net}_contract")
    contract.argtypes = []
    contract.restype = ctypes.c_char_p
    functions["contract"] = contract
    workspace_bytes = function(f"{net}_workspace_bytes")
    workspace_bytes.argtypes = [pointer]
    workspace_bytes.restype = ctypes.c_size_t
    functions["workspace_bytes"] = workspace_bytes
    for precision in PRECISIONS:
        loss_and_grad = function(f"{net}_loss_and_grad_{precision.name}")
        loss_and_grad.argtypes = [pointer] * 9
        loss_and_grad.restype = ctypes.c_int
        functions[f"loss_and_grad_{precision.name}"] = loss_and_grad
        predict = function(f"{net}_predict_{precision.name}")
        predict.argtypes = [pointer] * 6
        predict.restype = ctypes.c_int
        functions[f"predict_{precision.name}"] = predict
    return functions


def _real_pointer(dtype: np.dtype) -> Any:
    return ctypes.POINTER(precision_of(dtype).ctypes_type)


class CKernel:
    """A compiled C kernel with the kernel contract (see DESIGN.md), read from the library
    itself (``<net>_contract()``) and checked by ``codegen.kernel_checks``, as the NumPy
    module checks its calls: both backends refuse bad input with the same messages.

    ``lib`` is the ``ctypes.CDLL`` and ``function(name)`` one of its declared functions,
    for calling the C API directly; ``sizes_array``, ``pointers`` and ``workspace`` build
    their arguments.
    """

    backend = "c"

    def __init__(self, name: str, library: Path, blas: bool) -> None:
        self._scratch = threading.local()
        self.name = name
        self.library = library
        self.blas = blas
        self.lib = ctypes.CDLL(str(library))
        self._functions = _declare(self.lib, name)
        text = self._functions["contract"]()
        contract = KernelContract.from_json(
            (text or b"").decode("ascii", errors="replace"),
            origin=f"the contract {name}_contract() returns in {library}")
        if contract.name != name:
            raise ValueError(f"{library}: {name}_contract() describes the network "
                             f"{contract.name!r}, not {name!r}")
        #: the kernel contract as plain data (what the NumPy module holds as CONTRACT)
        self.CONTRACT: dict[str, Any] = contract.as_dict()
        self.SIZES: tuple[str, ...] = contract.sizes
        self.PARAMS: dict[str, tuple[str, ...]] = dict(contract.params)
        self.STATE: dict[str, tuple[str, ...]] = dict(contract.state)
        #: the order of the C ``sizes`` array: SIZES, then the time size (recurrent nets), then B
        self.SIZES_ORDER: tuple[str, ...] = contract.call_sizes
        self.STATUS: dict[int, str] = dict(contract.status)
        self._classes = contract.classes

    def __repr__(self) -> str:
        blas = ", CBLAS" if self.blas else ""
        return f"<CKernel {self.name} ({self.library}{blas})>"

    # --- the contract -------------------------------------------------------------

    def init_params(self, sizes: Mapping[str, int], *, rng: Any = None,
                    dtype: Any = np.float64) -> dict[str, np.ndarray]:
        """Parameters for ``sizes``, exactly as the NumPy module's ``init_params`` draws them."""
        return draw_params(self.CONTRACT, sizes, rng=rng, dtype=dtype)

    def loss_and_grad(self, params: Mapping[str, np.ndarray], x: np.ndarray, labels: np.ndarray,
                      state: Mapping[str, np.ndarray] | None = None
                      ) -> tuple[np.floating, dict[str, np.ndarray]]:
        """(loss, grads): the loss summed over the batch (and time), and its gradients.

        grads holds every PARAMS key, and every STATE key when ``state`` is given.
        """
        sizes, dtype = check_call(self.CONTRACT, params, x, labels, state, need_labels=True)
        suffix = precision_of(dtype).name
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
            loss.ctypes.data_as(_real_pointer(dtype)),
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
        sizes, dtype = check_call(self.CONTRACT, params, x, None, state, need_labels=False)
        suffix = precision_of(dtype).name
        keep: list[np.ndarray] = []
        y = np.empty((*x.shape[:-1], sizes[self._classes]), dtype)
        workspace = self.scratch(sizes)
        function = f"predict_{suffix}"
        status = self._functions[function](
            self.sizes_array(sizes),
            self.pointers([params[name] for name in self.PARAMS], dtype, keep),
            self._pointer(x, dtype, keep),
            self._state_pointers(state, dtype, keep),
            y.ctypes.data_as(_real_pointer(dtype)),
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
        needed = self._workspace_words(sizes)
        cached = getattr(self._scratch, "array", None)
        if cached is None or cached.size < needed:
            cached = self._scratch.array = np.empty(needed, np.float64)
        return cached

    def workspace(self, sizes: Mapping[str, int]) -> np.ndarray:
        """A fresh workspace for ``sizes``: float64 (8-byte aligned), at least one element."""
        return np.empty(self._workspace_words(sizes), np.float64)

    def _workspace_words(self, sizes: Mapping[str, int]) -> int:
        """The workspace in 8-byte words; ValueError where the C says the sizes are invalid
        (0 bytes: a size below 1, or a workspace whose size overflows)."""
        size_bytes = self.workspace_bytes(sizes)
        if size_bytes == 0:
            given = ", ".join(f"{n} = {int(sizes[n])}" for n in self.SIZES_ORDER)
            raise ValueError(f"{self.name}: sizes {given} need a workspace larger than this "
                             f"machine can address (or a size is below 1)")
        return -(-size_bytes // 8)

    @staticmethod
    def pointers(arrays: Sequence[np.ndarray], dtype: np.dtype,
                 keep: list[np.ndarray] | None = None) -> Any:
        """A C array of pointers to ``arrays``, each made C-contiguous in ``dtype``.

        Contiguous copies are appended to ``keep``: the caller holds them until the call
        returns. Arrays written by C (outputs) must already be C-contiguous in ``dtype``.
        """
        real = _real_pointer(np.dtype(dtype))
        keep = [] if keep is None else keep
        return (real * len(arrays))(*(CKernel._pointer(a, dtype, keep) for a in arrays))

    @staticmethod
    def _pointer(array: np.ndarray, dtype: np.dtype, keep: list[np.ndarray]) -> Any:
        contiguous = np.ascontiguousarray(array, dtype=dtype)
        keep.append(contiguous)
        return contiguous.ctypes.data_as(_real_pointer(np.dtype(dtype)))

    def _state_pointers(self, state: Mapping[str, np.ndarray] | None, dtype: np.dtype,
                        keep: list[np.ndarray]) -> Any:
        if state is None or not self.STATE:
            return None
        return self.pointers([state[name] for name in self.STATE], dtype, keep)

    def _raise_on(self, status: int, function: str) -> None:
        if status != 0:
            meaning = self.STATUS.get(status, "an unknown status")
            raise ValueError(f"C kernel {self.name}_{function} returned {status} ({meaning})")


def load_c(directory: str | Path, *, blas: bool | None = None) -> CKernel:
    """The C kernel in ``directory``: ``<net>.c`` compiled, with the contract it returns.

    ``blas``: True requires CBLAS (OpenBLAS), False never uses it, None uses it when
    found. See ``compile_kernel`` for the compiler, flags and cache. The ``.c`` and
    ``.h`` (and the ``.py``, when present) are read once, together, and refused
    (``ValueError``) when their seals say they do not belong together; what is
    compiled is exactly what was checked.
    """
    directory = Path(directory)
    files = read_checked(directory, ".c", uses=(".c", ".h"))
    source = files.get(".c")
    assert source is not None
    use_blas = _resolve_blas(blas, find_compiler())
    library = _compile_cached(f"{files.stem}.c", source, files.get(".h"),
                              files.path(".c").resolve(), blas=use_blas, flags=None)
    return CKernel(files.stem, library, use_blas)
