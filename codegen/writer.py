"""Write rendered artifacts to disk atomically, and compare them with what is there.

This is the last stage of the one-way flow model → derivation → plan → text
(DESIGN.md, "codegen/"): the backends render text, and this module puts it in
``generated/<net>/`` without rendering anything itself.

Atomic folders. A kernel folder's files belong together (the ``.py`` checks the
inputs the ``.c`` computes on), so :func:`write_atomically` replaces a folder as a
whole: it builds the new folder beside the old one, as ``.<net>.new-XXXX``, with the
new files and a hard link to every file of the old folder that it does not produce,
then swaps the two in one ``renameat2(RENAME_EXCHANGE)`` and removes the old one.
Whoever looks at ``<net>/`` at any instant, a reader or the next run after a
``kill -9``, sees the old folder or the new one, whole; the only thing a kill can
leave is a ``.<net>.new-*`` sibling, which the next write into the same folder
removes. Writes into one output folder take turns (an ``flock`` on it), so that
clean-up never removes a folder another write is building. Where the exchange is
not available (not Linux, or a file system that refuses it) the old folder is
renamed aside first, and for a kill between the two renames ``<net>/`` is missing.

Files given at the top of ``out_dir`` (no folder in their name) are replaced one by
one, each atomically, with every file put back if one fails: there is no folder
to swap without taking ``out_dir``'s other contents with it.

:func:`diff_against` is the drift check behind ``chainrule generate --check``
and ``tests/test_generated.py``: checked-in artifacts must be byte-identical to
what the generator produces, and nothing that it does not produce may sit in a
network's folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import difflib
import errno
import fnmatch
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

try:
    import fcntl
except ImportError:  # not POSIX: concurrent writes are not serialized
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "IGNORED",
    "MISSING",
    "NOT_A_FILE",
    "NOT_GENERATED",
    "diff_against",
    "folder_lock",
    "staging_folders",
    "stray_files",
    "write_atomically",
]

MISSING = "missing"
NOT_GENERATED = "not generated"
NOT_A_FILE = "not a regular file"

# Names (fnmatch patterns, matched against each path component) that may live in
# an output folder without being generated: Python's bytecode caches appear as
# soon as a test imports a generated NumPy kernel. Keep in step with .gitignore.
IGNORED: tuple[str, ...] = ("__pycache__", "*.pyc", ".cache")

#: the folder under construction for files at the top of ``out_dir``
_TOP = "chainrule"


def _staging_prefix(folder: str) -> str:
    return f".{folder}.new-"


def staging_folders(out_dir: Path, folder: str) -> list[Path]:
    """Leftovers of writes into ``out_dir/folder`` that were killed: ``.<folder>.new-*``."""
    out_dir = Path(out_dir)
    prefix = _staging_prefix(folder)
    try:
        names = sorted(os.listdir(out_dir))
    except OSError:
        return []
    return [out_dir / name for name in names
            if name.startswith(prefix) and (out_dir / name).is_dir()
            and not (out_dir / name).is_symlink()]


def _check_relative(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if (
        not rel
        or path.is_absolute()
        or str(path) != rel
        or any(part in (".", "..") for part in path.parts)
        or "\\" in rel
    ):
        raise ValueError(
            f"output file name {rel!r} must be a normalized relative path such as 'mlp/mlp.py'"
        )
    return path


def _umask() -> int:
    # Python has no read-only umask query, so set and restore it.
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing ancestors; return those created, deepest first."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    directory.mkdir(parents=True, exist_ok=True)
    return missing


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the data is synced
    finally:
        os.close(fd)


def _write_file(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` (under a temporary name first), synced, with ``mode``."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "x", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def folder_lock(directory: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``directory`` itself (no lock file to leave behind);
    yields whether it is held (False where flock is refused, e.g. on a network file
    system). OSError when the folder cannot be opened. Writers of one output folder
    and compiles into one C cache take turns through it."""
    descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        held = False
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                held = True
            except OSError:
                pass
        yield held
    finally:
        os.close(descriptor)  # releases the lock


# --- swapping two folders ------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _renameat2() -> object | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def _exchange(first: Path, second: Path) -> bool:
    """Swap two directories in one step; False where the system cannot."""
    if _RENAMEAT2 is None:
        return False
    result = _RENAMEAT2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD,  # type: ignore[operator]
                        os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(second))


@dataclass
class _Folder:
    """One folder ``out_dir/name`` being replaced, and how far that has got."""

    name: str
    target: Path
    files: dict[PurePosixPath, str]
    staging: Path | None = None
    old: bool = False  # whether target existed
    # "staged": the new folder is complete at staging; "placed": it was renamed to target
    # (nothing was there); "swapped": target is the new folder, staging holds the old one
    state: str = "new"
    aside: Path | None = None  # where the old folder went, when swapped without exchange


@dataclass
class _TopFiles:
    """Files at the top of ``out_dir``: replaced one by one, with backups for a rollback."""

    out_dir: Path
    files: dict[str, str]
    staging: Path | None = None
    replaced: list[tuple[Path, Path | None]] = field(default_factory=list)


def _existing_mode(path: Path, default: int) -> int:
    """The mode of the file being replaced at ``path``, or ``default`` for a new one;
    IsADirectoryError if something other than a file is there."""
    if not (path.is_symlink() or path.exists()):
        return default
    if not path.is_file():
        raise IsADirectoryError(f"cannot write {path}: it exists and is {NOT_A_FILE}")
    return stat.S_IMODE(path.stat().st_mode)


def _link_others(old: Path, new: Path, generated: set[PurePosixPath]) -> None:
    """Hard-link every entry of ``old`` that is not ``generated`` into ``new``."""
    for directory, dirnames, filenames in os.walk(old):
        relative = PurePosixPath(Path(directory).relative_to(old).as_posix())
        for name in [*dirnames, *filenames]:
            rel = relative / name if str(relative) != "." else PurePosixPath(name)
            source, dest = Path(directory, name), new / rel
            if rel in generated:
                continue
            if source.is_dir() and not source.is_symlink():
                # (a generated file where a folder is was refused before: _existing_mode)
                dest.mkdir(exist_ok=True)
                shutil.copymode(source, dest)
                continue
            if dest.is_dir():
                raise NotADirectoryError(f"cannot write into {source}: it exists and is not a "
                                         f"directory")
            try:
                os.link(source, dest, follow_symlinks=False)
            except OSError:
                shutil.copy2(source, dest, follow_symlinks=False)
        dirnames[:] = [d for d in dirnames if not Path(directory, d).is_symlink()]


def _stage(out_dir: Path, folder: _Folder, file_mode: int, dir_mode: int) -> None:
    target = folder.target
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise NotADirectoryError(f"cannot write {target}: it exists and is not a directory")
    folder.old = target.is_dir()
    folder.staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(folder.name), dir=out_dir))
    for rel, text in folder.files.items():
        mode = _existing_mode(target / rel, file_mode) if folder.old else file_mode
        dest = folder.staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        _write_file(dest, text, mode)
    if folder.old:
        _link_others(target, folder.staging, set(folder.files))
    for directory, _, _ in os.walk(folder.staging):
        _fsync_directory(Path(directory))
    os.chmod(folder.staging, stat.S_IMODE(target.stat().st_mode) if folder.old else dir_mode)
    folder.state = "staged"


def _swap(folder: _Folder) -> None:
    assert folder.staging is not None
    if not folder.old:
        os.rename(folder.staging, folder.target)
        folder.state = "placed"
    elif _exchange(folder.staging, folder.target):
        folder.state = "swapped"
    else:
        aside = folder.staging.with_name(folder.staging.name + "-old")
        os.rename(folder.target, aside)
        folder.aside = aside
        try:
            os.rename(folder.staging, folder.target)
        except BaseException:
            os.rename(aside, folder.target)
            folder.aside = None
            raise
        folder.state = "swapped"


def _unswap(folder: _Folder) -> None:
    """Put the old folder back (best effort: the error that got us here is reported)."""
    assert folder.staging is not None
    try:
        if folder.state == "placed":
            os.rename(folder.target, folder.staging)
        elif folder.state == "swapped" and folder.aside is None:
            _exchange(folder.staging, folder.target)
        elif folder.state == "swapped" and folder.aside is not None:
            os.rename(folder.target, folder.staging)
            os.rename(folder.aside, folder.target)
            folder.aside = None
    except OSError:
        return
    folder.state = "staged"


def _discard(folder: _Folder) -> None:
    for path in (folder.staging, folder.aside):
        if path is not None:
            _remove_tree(path)


def _stage_top(top: _TopFiles, file_mode: int) -> None:
    top.staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(_TOP), dir=top.out_dir))
    (top.staging / "new").mkdir()
    (top.staging / "old").mkdir()
    for name, text in top.files.items():
        _write_file(top.staging / "new" / name, text, _existing_mode(top.out_dir / name,
                                                                       file_mode))


def _replace_top(top: _TopFiles) -> None:
    assert top.staging is not None
    for name in top.files:
        dest = top.out_dir / name
        backup: Path | None = None
        if dest.is_symlink() or dest.exists():
            backup = top.staging / "old" / name
            os.link(dest, backup, follow_symlinks=False)
        os.replace(top.staging / "new" / name, dest)
        top.replaced.append((dest, backup))


def _restore_top(top: _TopFiles) -> None:
    for dest, backup in reversed(top.replaced):
        try:
            if backup is not None:
                os.replace(backup, dest)
            else:
                dest.unlink()
        except OSError:
            pass  # best effort: the original error is the one worth reporting
    top.replaced.clear()


def write_atomically(out_dir: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` (relative POSIX path → text) under ``out_dir``; return the paths written.

    Text is encoded as UTF-8 with no newline translation, so the bytes on disk
    are exactly ``text.encode("utf-8")``. Each folder ``out_dir/<first part>`` is
    replaced as a whole, at one instant (see the module's docstring), keeping the
    files in it that ``files`` does not name; a file keeps the mode of the one it
    replaces. Either everything is replaced or, if anything fails, nothing is: the
    folders already swapped are swapped back, folders this call created are
    removed again, and the error is re-raised.
    """
    out_dir = Path(out_dir)
    checked = [(rel, _check_relative(rel), text) for rel, text in files.items()]
    folders: dict[str, _Folder] = {}
    top = _TopFiles(out_dir, {})
    for _, path, text in checked:
        if len(path.parts) == 1:
            top.files[path.parts[0]] = text
            continue
        head = path.parts[0]
        folder = folders.setdefault(head, _Folder(head, out_dir / head, {}))
        folder.files[PurePosixPath(*path.parts[1:])] = text
    umask = _umask()
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    created = _make_parents(out_dir)
    try:
        with folder_lock(out_dir) as held:
            if held:  # only a killed write leaves these: every write holds the lock
                for name in [*folders, *([_TOP] if top.files else [])]:
                    for leftover in staging_folders(out_dir, name):
                        _remove_tree(leftover)
            try:
                for folder in folders.values():
                    _stage(out_dir, folder, file_mode, dir_mode)
                if top.files:
                    _stage_top(top, file_mode)
                for folder in folders.values():
                    _swap(folder)
                if top.files:
                    _replace_top(top)
            except BaseException:
                _restore_top(top)
                for folder in reversed(folders.values()):
                    _unswap(folder)
                raise
            finally:
                for folder in folders.values():
                    _discard(folder)
                if top.staging is not None:
                    _remove_tree(top.staging)
            _fsync_directory(out_dir)
    except BaseException:
        for directory in created:  # deepest first
            try:
                directory.rmdir()
            except OSError:
                pass
        raise
    return [out_dir / rel for rel, _, _ in checked]


def _ignored(name: str, ignore: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in ignore)


def stray_files(
    out_dir: Path,
    files: Mapping[str, str],
    *,
    nets: Iterable[str] | None = None,
    ignore: Iterable[str] = IGNORED,
) -> list[str]:
    """Files under ``out_dir/<net>/`` that ``files`` would not produce, as sorted relative paths.

    ``nets`` names the folders to search; by default the first component of
    every key of ``files`` that has one. Names matching an ``ignore`` pattern
    (files or whole folders) are skipped.
    """
    out_dir = Path(out_dir)
    ignore = tuple(ignore)
    if nets is None:
        nets = {PurePosixPath(rel).parts[0] for rel in files if len(PurePosixPath(rel).parts) > 1}
    strays: list[str] = []
    for net in sorted(set(nets)):
        root = out_dir / net
        if not root.is_dir():
            continue
        for directory, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not _ignored(d, ignore))
            for filename in sorted(filenames):
                if _ignored(filename, ignore):
                    continue
                rel = Path(directory, filename).relative_to(out_dir).as_posix()
                if rel not in files:
                    strays.append(rel)
    return sorted(strays)


def _unified_diff(rel: str, old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{rel} (on disk)",
        tofile=f"{rel} (generated)",
    )
    out: list[str] = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    if not out:  # cannot happen for different texts, but never report an empty diff
        out.append(f"{rel}: contents differ\n")
    return "".join(out)


def diff_against(
    out_dir: Path,
    files: Mapping[str, str],
    *,
    nets: Iterable[str] | None = None,
    ignore: Iterable[str] = IGNORED,
) -> list[tuple[str, str]]:
    """Compare ``files`` with what is under ``out_dir``, byte for byte.

    Returns sorted ``(relative path, report)`` pairs, one for each file that
    differs, where report is a unified diff (on disk → generated), or
    :data:`MISSING`, :data:`NOT_A_FILE`, or :data:`NOT_GENERATED` for a stray
    file found by :func:`stray_files` (``nets`` and ``ignore`` as there).
    An empty list means ``out_dir`` is up to date.
    """
    out_dir = Path(out_dir)
    reports: dict[str, str] = {}
    for rel, text in files.items():
        path = out_dir / _check_relative(rel)
        if not (path.exists() or path.is_symlink()):
            reports[rel] = MISSING
        elif not path.is_file():
            reports[rel] = NOT_A_FILE
        else:
            old = path.read_bytes()
            new = text.encode("utf-8")
            if old != new:
                reports[rel] = _unified_diff(rel, old.decode("utf-8", errors="replace"), text)
    for rel in stray_files(out_dir, files, nets=nets, ignore=ignore):
        reports[rel] = NOT_GENERATED
    return sorted(reports.items())
