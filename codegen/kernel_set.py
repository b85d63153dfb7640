"""The kernel set: a kernel folder's files, sealed together and read back in one piece.

Role in DESIGN.md's picture: the ground floor under the backends and ``codegen.load``.
``<net>.py``, ``<net>.c`` and ``<net>.h`` are one set: each backend renders a
placeholder line (:data:`SEAL_PLACEHOLDER`) in its file's header; :func:`seal`
(called by ``codegen.artifacts.render``) replaces it, in every file of the set,
with ::

    Kernel set 5e1fa07b3c2d9e8f (3 files), this file 77aa0b1c2d3e4f50: checked by codegen.load.

where "this file" is a hash of the file with both hashes zeroed and the set hash is
a hash of the files' hashes. :func:`read_kernel` reads a folder's kernel files in one
consistent snapshot and :func:`check_seals` refuses files that were modified, or
that carry different sets, or that mix sealed and unsealed files: a ``.c`` of one run
beside the ``.py`` of another would otherwise pass for one kernel. A folder whose
kernel files carry no seal at all (hand-written kernels, older chainrule output) is
loaded as it is, and so is a file rendered by one backend alone (its header keeps the
placeholder): a ``.py`` from ``render_numpy`` loads by itself, but not beside sealed files.
Backends' loaders read through :func:`read_checked`; nothing here knows a backend.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KERNEL_SUFFIXES",
    "SEAL_PLACEHOLDER",
    "KernelFiles",
    "check_seals",
    "read_checked",
    "read_kernel",
    "seal",
]

#: the files of one kernel set, ``<net>`` followed by each
KERNEL_SUFFIXES = (".py", ".c", ".h")

#: the header line a backend renders where the seal goes (after the comment's prefix)
SEAL_PLACEHOLDER = "Kernel set: unsealed"

_DIGITS = 16
_ZERO = "0" * _DIGITS
# Only at the start of a line (after " * " in a C comment): user text in a header is
# escaped onto the line it starts on, so it can never begin a line and forge a seal.
_PREFIX = r"^(?P<prefix>(?: \* )?)"
_SEAL = re.compile((_PREFIX + rf"Kernel set (?P<set>[0-9a-f]{{{_DIGITS}}}) "
                    r"\((?P<count>[1-9][0-9]*) files?\), "
                    rf"this file (?P<file>[0-9a-f]{{{_DIGITS}}}): checked by codegen\.load\.$"
                    ).encode(), re.MULTILINE)
_PLACEHOLDER = re.compile(_PREFIX + re.escape(SEAL_PLACEHOLDER) + "$", re.MULTILINE)

# A regenerate swaps a folder while a reader may be in it: reading again sees the
# folder that is there now (see read_kernel).
_READ_ATTEMPTS = 10


def _seal_line(prefix: str, set_hash: str, count: int, file_hash: str) -> str:
    files = "file" if count == 1 else "files"
    return (f"{prefix}Kernel set {set_hash} ({count} {files}), this file {file_hash}: "
            f"checked by codegen.load.")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:_DIGITS]


def _set_hash(file_hashes: Iterable[str]) -> str:
    return _digest("\n".join(sorted(file_hashes)).encode())


def seal(files: Mapping[str, str]) -> dict[str, str]:
    """``files`` (name → text) with the placeholder line of each file that has one sealed.

    Every file holding :data:`SEAL_PLACEHOLDER` (once, at the start of a line or
    after `` * ``) is a member of the set; the others are returned unchanged.
    """
    members: dict[str, tuple[re.Match[str], str]] = {}
    for name, text in files.items():
        found = list(_PLACEHOLDER.finditer(text))
        if len(found) > 1:
            raise ValueError(f"{name} holds the seal placeholder {len(found)} times, not once")
        if found:
            members[name] = (found[0], text)
    count = len(members)
    canonical = {name: text[:match.start()] + _seal_line(match["prefix"], _ZERO, count, _ZERO)
                 + text[match.end():] for name, (match, text) in members.items()}
    hashes = {name: _digest(text.encode("utf-8")) for name, text in canonical.items()}
    set_hash = _set_hash(hashes.values())
    sealed = dict(files)
    for name, (match, text) in members.items():
        sealed[name] = (text[:match.start()]
                        + _seal_line(match["prefix"], set_hash, count, hashes[name])
                        + text[match.end():])
    return sealed


@dataclass(frozen=True)
class _Seal:
    set_hash: str
    count: int
    file_hash: str
    actual: str  # the hash of the file as it is


def _read_seal(name: str, data: bytes) -> _Seal | None:
    """The seal of one file, or None if it has none (ValueError if it holds several)."""
    found = list(_SEAL.finditer(data))
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(f"{name} holds {len(found)} seal lines, not one")
    match = found[0]
    count = int(match["count"])
    zeroed = _seal_line(match["prefix"].decode(), _ZERO, count, _ZERO).encode()
    canonical = data[:match.start()] + zeroed + data[match.end():]
    return _Seal(match["set"].decode(), count, match["file"].decode(), _digest(canonical))


def check_seals(directory: Path, files: Mapping[str, bytes], needed: Iterable[str]) -> None:
    """Refuse ``files`` (name → bytes, the kernel files found in ``directory``) unless they
    belong together. When none is sealed there is nothing to check. Otherwise every one
    must be sealed and unmodified, all seals must name one set, every name in ``needed``
    (the files the caller uses) must be there, and when the whole set is there its hash
    must be right. Raises ``ValueError`` naming the files and what is wrong.
    """
    needed = list(needed)
    seals = {name: _read_seal(name, data) for name, data in files.items()}
    sealed = {name: s for name, s in seals.items() if s is not None}
    if not sealed:
        return  # hand-written or older files: no claim to check
    where = f"in {directory}"
    fix = "regenerate the folder with `chainrule generate` instead of mixing or editing its files"
    modified = sorted(name for name, s in sealed.items() if s.actual != s.file_hash)
    if modified:
        raise ValueError(f"{', '.join(modified)} {where} {'was' if len(modified) == 1 else 'were'}"
                         f" modified after generation (the seal in its header no longer matches"
                         f" its content); {fix}")
    unsealed = sorted(name for name, s in seals.items() if s is None)
    if unsealed:
        raise ValueError(f"the kernel files {where} do not belong together: "
                         f"{', '.join(sorted(sealed))} "
                         f"{'carries' if len(sealed) == 1 else 'carry'} a chainrule seal but "
                         f"{', '.join(unsealed)} {'does' if len(unsealed) == 1 else 'do'} not; "
                         f"{fix}")
    sets = {s.set_hash for s in sealed.values()}
    if len(sets) > 1:
        groups = "; ".join(f"{', '.join(sorted(n for n, s in sealed.items() if s.set_hash == h))}"
                           f" from set {h}" for h in sorted(sets))
        raise ValueError(f"the kernel files {where} do not belong together ({groups}): they "
                         f"were generated from different models or runs; {fix}")
    first = next(iter(sealed.values()))
    missing = [name for name in needed if name not in files]
    if missing:
        raise ValueError(f"{directory} lacks {', '.join(missing)}, part of the kernel set of "
                         f"{', '.join(sorted(sealed))}; {fix}")
    if len(sealed) == first.count:
        if _set_hash(s.file_hash for s in sealed.values()) != first.set_hash:
            raise ValueError(f"the kernel files {where} ({', '.join(sorted(sealed))}) do not "
                             f"make up the set their seals name; {fix}")
    elif len(sealed) > first.count:
        raise ValueError(f"{directory} holds {len(sealed)} files of a kernel set of "
                         f"{first.count}: {', '.join(sorted(sealed))}; {fix}")


@dataclass(frozen=True)
class KernelFiles:
    """One consistent read of a kernel folder: ``<stem>.py``, ``.c``, ``.h`` as far as present."""

    directory: Path
    stem: str
    data: dict[str, bytes]

    def path(self, suffix: str) -> Path:
        return self.directory / f"{self.stem}{suffix}"

    def get(self, suffix: str) -> bytes | None:
        return self.data.get(f"{self.stem}{suffix}")


def _not_a_kernel_folder(directory: Path) -> ValueError:
    return ValueError(f"{directory} is not a directory of generated kernels")


class _Moved(Exception):
    """The folder was swapped for another while it was read: what was read may be partial."""


def _read_once(directory: Path, suffix: str) -> KernelFiles:
    try:
        folder = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise _not_a_kernel_folder(directory) from None
    try:
        opened = os.fstat(folder)

        def moved() -> bool:
            try:
                now = os.stat(directory)
            except OSError:
                return True
            return (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino)

        try:
            files = _read_files(directory, folder, suffix)
        except (ValueError, OSError):
            if moved():
                raise _Moved() from None
            raise
        # a regenerate swaps the new folder in and then removes the old one file by file:
        # if ours is the old one, what we read may already lack some of its files
        if moved():
            raise _Moved()
        return files
    finally:
        os.close(folder)


def _read_files(directory: Path, folder: int, suffix: str) -> KernelFiles:
    names = set(os.listdir(folder))
    sources = sorted(name for name in names if name.endswith(suffix))
    if len(sources) != 1:
        raise ValueError(f"{directory} must hold exactly one generated {suffix} kernel, "
                         f"found {sources or 'none'}")
    stem = sources[0][:-len(suffix)]
    data: dict[str, bytes] = {}
    for kernel_suffix in KERNEL_SUFFIXES:
        name = f"{stem}{kernel_suffix}"
        if name not in names:
            continue
        # relative to the folder opened once: every file comes from the same folder
        descriptor = os.open(name, os.O_RDONLY, dir_fd=folder)
        with os.fdopen(descriptor, "rb") as handle:
            data[name] = handle.read()
    return KernelFiles(directory, stem, data)


def read_kernel(directory: str | Path, suffix: str) -> KernelFiles:
    """The one kernel file ending in ``suffix`` in ``directory``, with its siblings.

    Every file is read from the same folder, opened once; when a concurrent
    ``chainrule generate`` swapped another folder in meanwhile, the read starts
    again on the folder now there.
    """
    directory = Path(directory)
    for _ in range(_READ_ATTEMPTS):
        try:
            return _read_once(directory, suffix)
        except _Moved:
            continue
        except IsADirectoryError:
            raise ValueError(f"{directory}: a kernel file is a directory") from None
    raise OSError(errno.EAGAIN, f"{directory} was replaced {_READ_ATTEMPTS} times while it "
                  f"was read; is a `chainrule generate` into it looping?")


def read_checked(directory: str | Path, suffix: str,
                 uses: Iterable[str] | None = None) -> KernelFiles:
    """:func:`read_kernel`, then :func:`check_seals` over what it read; ``uses`` are the
    suffixes of the files the caller uses (``suffix`` alone by default), which must be
    there when the files are sealed."""
    files = read_kernel(directory, suffix)
    needed = [f"{files.stem}{s}" for s in (uses if uses is not None else (suffix,))]
    check_seals(files.directory, files.data, needed)
    return files
