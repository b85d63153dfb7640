"""The verified cache of compiled C kernels: ``compile_kernel(source)`` → a library path.

Role in DESIGN.md's picture: part of the C side of the kernel contract, between the
compiler (``compiler.py``) and the loader (``loader.py``, which loads only what this
module returns). A library is compiled once per content key into ``cache_dir()`` and
checked every time before it is handed out (the design: the comment below). A cache
folder that cannot be used is a ``CacheError`` (a ``CompilerError``) that names it
and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shlex
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

# through the module, not its names: a test's patch of compiler._run_compiler (or of
# find_compiler) is then seen by the cache too
from chainrule.codegen.backends.c import compiler as toolchain
from chainrule.codegen.backends.c.blas import Blas, BlasChoice, resolve_blas
from chainrule.codegen.escape import c_string
from chainrule.codegen.writer import folder_lock

__all__ = ["CacheError", "cache_dir", "compile_kernel"]

_LIBRARY_SUFFIX = ".dll" if os.name == "nt" else ".so"

# --- the design ------------------------------------------------------------------------
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


class CacheError(toolchain.CompilerError):
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
            done = toolchain._run_compiler(command)
        if done.returncode != 0:
            raise toolchain.CompilerError(
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
                    blas: Blas | BlasChoice, flags: Sequence[str] | None) -> Path:
    compiler = toolchain.find_compiler()
    library_blas = blas if isinstance(blas, Blas) else resolve_blas(blas, compiler)
    compile_flags = [*toolchain.optimization_flags(compiler), *toolchain.BASE_FLAGS,
                     *library_blas.compile_flags, *(flags or ())]
    link_flags = [*library_blas.link_flags, *toolchain.LIBS, *toolchain.NO_UNDEFINED]
    digest = hashlib.sha256()
    for part in (source, header if header is not None else b"",
                 "\0".join([*compile_flags, "|", *link_flags]).encode(),
                 "\0".join(compiler).encode(), toolchain._compiler_version(compiler).encode(),
                 platform.machine().encode(), toolchain._cpu_model().encode()):
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


def compile_kernel(source: str | Path, *, blas: Blas | BlasChoice = None,
                   flags: Sequence[str] | None = None) -> Path:
    """The shared library built from ``source`` (a ``.c`` with its ``.h`` beside it).

    Compiled with ``$CC`` (or ``cc``), ``compiler.optimization_flags`` (``-O2
    -ftree-vectorize -fvect-cost-model=dynamic`` for GCC) and ``compiler.BASE_FLAGS``
    (``-march=native -ffast-math -std=c99 -fPIC -shared``), then ``flags`` (extra
    compiler flags, after the defaults, so ``-O0`` wins), linking ``-lm``; with the
    CBLAS that ``blas`` names (``blas.resolve_blas``: by default the bundled OpenBLAS,
    else the system's, else none) its flags too. The library is cached under
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

