"""Write rendered artifacts to disk atomically, and compare them with what is there.

This is the last stage of the one-way flow model → derivation → plan → text
(DESIGN.md, "codegen/"): the backends render text, and this module puts it in
``generated/<net>/`` without rendering anything itself. DESIGN.md asks that
"a failed run leaves no partial files", so :func:`write_atomically` first writes
every file to a temporary file beside its destination and only then moves them
into place; a failure before that removes every temporary and leaves the old
files untouched, and a failure while moving puts back the files already moved.

:func:`diff_against` is the drift check behind ``chainrule generate --check``
and ``tests/test_generated.py``: checked-in artifacts must be byte-identical to
what the generator produces, and nothing that it does not produce may sit in a
network's folder.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "IGNORED",
    "MISSING",
    "NOT_A_FILE",
    "NOT_GENERATED",
    "diff_against",
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


@dataclass
class _Pending:
    rel: str
    dest: Path
    tmp: Path
    backup: Path | None = None  # a link to the file being replaced, for rollback
    replaced: bool = False


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


def _default_mode() -> int:
    # NamedTemporaryFile creates files 0600; artifacts should get the mode any new
    # file gets. Python has no read-only umask query, so set and restore it.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


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


def _unlink_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _discard(pending: list[_Pending], created: list[Path]) -> None:
    for item in pending:
        _unlink_quietly(item.tmp)
        _unlink_quietly(item.backup)
    for directory in created:  # deepest first
        try:
            directory.rmdir()
        except OSError:
            pass


def _roll_back(pending: list[_Pending]) -> None:
    for item in reversed(pending):
        if not item.replaced:
            continue
        try:
            if item.backup is not None:
                os.replace(item.backup, item.dest)
                item.backup = None
            else:
                item.dest.unlink()
        except OSError:
            pass  # best effort: the original error is the one worth reporting


def _backup(item: _Pending) -> None:
    backup = item.tmp.with_name(item.tmp.name + ".bak")
    try:
        os.link(item.dest, backup, follow_symlinks=False)
    except OSError:
        shutil.copy2(item.dest, backup, follow_symlinks=False)
    item.backup = backup


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


def write_atomically(out_dir: Path, files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` (relative POSIX path → text) under ``out_dir``; return the paths written.

    Text is encoded as UTF-8 with no newline translation, so the bytes on disk
    are exactly ``text.encode("utf-8")``. Either every file is replaced or, if
    anything fails, none is: temporaries are removed, files already moved into
    place are restored, directories this call created are removed again, and
    the error is re-raised.
    """
    out_dir = Path(out_dir)
    checked = [(rel, out_dir / _check_relative(rel), text) for rel, text in files.items()]
    mode = _default_mode()
    pending: list[_Pending] = []
    created: list[Path] = []
    try:
        for rel, dest, text in checked:
            created[:0] = _make_parents(dest.parent)
            if dest.is_symlink() or dest.exists():
                if not dest.is_file():
                    raise IsADirectoryError(f"cannot write {dest}: it exists and is {NOT_A_FILE}")
                file_mode = stat.S_IMODE(dest.stat().st_mode)
            else:
                file_mode = mode
            with tempfile.NamedTemporaryFile(
                "w",
                encoding="utf-8",
                newline="",
                dir=dest.parent,
                prefix=f".{dest.name}.",
                suffix=".tmp",
                delete=False,
            ) as handle:
                item = _Pending(rel, dest, Path(handle.name))
                pending.append(item)
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(item.tmp, file_mode)
            if dest.exists():
                _backup(item)
        for item in pending:
            os.replace(item.tmp, item.dest)
            item.replaced = True
    except BaseException:
        _roll_back(pending)
        _discard(pending, created)
        raise
    for item in pending:
        _unlink_quietly(item.backup)
    for directory in sorted({item.dest.parent for item in pending}):
        _fsync_directory(directory)
    return [item.dest for item in pending]


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
