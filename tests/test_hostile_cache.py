"""The C compile cache under stress (issue 11): broken, planted and unusable caches.

A cached library is loaded only after it is checked (a regular file of this user's,
opened without following links, whose bytes hash to the hash in its name); one that
fails is compiled again. A cache that cannot be used is one ``CacheError`` naming
``$CHAINRULE_CACHE`` and the fix. Loading a broken library can kill the process
(SIGBUS), so every load after a corruption runs in a child process.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule import codegen
from chainrule.codegen.backends.c import cache as c_cache
from chainrule.codegen.backends.c import compiler as c_compiler
from chainrule.codegen.backends.c.loader import CacheError, CompilerError, compile_kernel

ROOT = Path(__file__).resolve().parents[1]
GOOD_C = '#include "good.h"\nint good_answer(void) { return ANSWER; }\n'
GOOD_H = "#define ANSWER 42\n"
ROOT_USER = os.geteuid() == 0
OTHER_UID = 54321

# compile (through the cache) and call the library in a fresh process
CHILD = """\
import ctypes, sys
from chainrule.codegen.backends.c.loader import compile_kernel
library = compile_kernel(sys.argv[1], blas=False)
print(library)
print(ctypes.CDLL(str(library)).good_answer())
"""


@pytest.fixture(autouse=True)
def needs_compiler() -> None:
    try:
        c_compiler.find_compiler()
    except CompilerError as error:
        pytest.skip(f"no C compiler: {error}")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("CHAINRULE_CACHE", str(directory))
    return directory


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "k"
    folder.mkdir()
    (folder / "good.h").write_text(GOOD_H)
    (folder / "good.c").write_text(GOOD_C)
    return folder / "good.c"


def in_child(source: Path, cache: Path) -> tuple[Path, int]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(source)], cwd=ROOT,
                          env={**os.environ, "CHAINRULE_CACHE": str(cache)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"the child died ({done.returncode}): {done.stderr}"
    library, answer = done.stdout.split()
    return Path(library), int(answer)


def entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir())


def replace_with(library: Path, data: bytes) -> None:
    """Corrupt the cached ``library`` the way a crash or a full disk would: a new file
    under its name (never the mapped inode itself, which would kill this process)."""
    library.unlink()
    library.write_bytes(data)
    library.chmod(0o755)


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "link", "fifo"])
def test_damaged_library_is_compiled_again(source: Path, cache: Path, damage: str,
                                           tmp_path: Path) -> None:
    library = compile_kernel(source, blas=False)
    data = library.read_bytes()
    if damage == "truncated":
        replace_with(library, data[: len(data) // 2])
    elif damage == "empty":
        replace_with(library, b"")
    elif damage == "garbage":
        replace_with(library, os.urandom(len(data)))
    elif damage == "link":  # a link to a file with the right bytes: still not followed
        elsewhere = tmp_path / "elsewhere.so"
        elsewhere.write_bytes(data)
        library.unlink()
        library.symlink_to(elsewhere)
    else:
        library.unlink()
        os.mkfifo(library)
    reloaded, answer = in_child(source, cache)
    assert answer == 42
    assert reloaded == library, "the same bytes again, under the same name"
    assert stat.S_ISREG(os.lstat(reloaded).st_mode) and reloaded.read_bytes() == data
    assert entries(cache) == [library.name]


def test_library_with_a_wrong_hash_beside_a_good_one(source: Path, cache: Path) -> None:
    library = compile_kernel(source, blas=False)
    prefix = library.name[: -len("0" * 32 + ".so")]
    planted = cache / f"{prefix}{'0' * 32}.so"
    planted.write_bytes(b"not a library")
    assert compile_kernel(source, blas=False) == library


@pytest.mark.skipif(not ROOT_USER, reason="chown needs root; see the test below")
def test_library_of_another_user_is_not_loaded(source: Path, cache: Path,
                                               compilations: list[list[str]]) -> None:
    library = compile_kernel(source, blas=False)
    os.chown(library, OTHER_UID, OTHER_UID)
    again = compile_kernel(source, blas=False)
    assert len(compilations) == 2, "compiled again"
    assert again.stat().st_uid == os.geteuid()
    assert ctypes.CDLL(str(again)).good_answer() == 42


def test_library_of_another_user_is_not_loaded_simulated(
        source: Path, cache: Path, compilations: list[list[str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    library = compile_kernel(source, blas=False)
    planted = library.stat().st_ino
    real = c_cache._owned_by_someone_else
    monkeypatch.setattr(c_cache, "_owned_by_someone_else",
                        lambda info: info.st_ino == planted or real(info))
    again = compile_kernel(source, blas=False)
    assert len(compilations) == 2 and again.stat().st_ino != planted
    assert entries(cache) == [again.name]


def test_new_cache_is_private(source: Path, cache: Path) -> None:
    compile_kernel(source, blas=False)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


def test_open_cache_is_made_private(source: Path, cache: Path) -> None:
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    compile_kernel(source, blas=False)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


def assert_clear(error: pytest.ExceptionInfo[CacheError], cache: Path, *words: str) -> None:
    message = str(error.value)
    assert str(cache) in message and "$CHAINRULE_CACHE" in message, message
    for word in words:
        assert word in message, message
    assert isinstance(error.value, CompilerError)


def test_cache_naming_a_file(source: Path, cache: Path) -> None:
    cache.write_text("a file\n")
    with pytest.raises(CacheError) as error:
        compile_kernel(source, blas=False)
    assert_clear(error, cache, "is not a folder", "a folder of your own")


def test_cache_inside_a_file(source: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("x\n")
    cache = tmp_path / "file" / "cache"
    monkeypatch.setenv("CHAINRULE_CACHE", str(cache))
    with pytest.raises(CacheError) as error:
        compile_kernel(source, blas=False)
    assert_clear(error, cache, "a folder of your own")


@pytest.mark.skipif(not ROOT_USER, reason="chown needs root")
def test_cache_of_another_user(source: Path, cache: Path) -> None:
    cache.mkdir(mode=0o700)
    os.chown(cache, OTHER_UID, OTHER_UID)
    with pytest.raises(CacheError) as error:
        codegen.load(write_kernel(source.parent), backend="c", blas=False)
    assert_clear(error, cache, "belongs to another user", f"uid {OTHER_UID}")


def write_kernel(folder: Path) -> Path:
    """``folder``, a (hand-written, unsealed) kernel folder ``good``: its ``good.c`` is all
    the C backend reads (the cache is refused before the library would be asked for its
    contract)."""
    return folder


def test_read_only_cache(source: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = compile_kernel(source, blas=False)
    cache.chmod(0o500)
    try:
        assert compile_kernel(source, blas=False) == library, "reading still works"
        (source.parent / "good.h").write_text("#define ANSWER 43\n")
        if ROOT_USER:  # permissions do not stop root: refuse the write the way the OS would
            def refused(*args: object, **kwargs: object) -> None:
                raise PermissionError(errno.EACCES, "Permission denied", str(cache))

            monkeypatch.setattr(c_cache.tempfile, "mkstemp", refused)
        with pytest.raises(CacheError) as error:
            compile_kernel(source, blas=False)
        assert_clear(error, cache, "cannot be written", "Permission denied", "chmod u+w")
    finally:
        cache.chmod(0o700)
    assert entries(cache) == [library.name]


def test_killed_compile_leaves_a_temporary_the_next_removes(source: Path, cache: Path) -> None:
    compile_kernel(source, blas=False)
    stale = cache / ".good-abcdef.so.tmp"
    stale.write_bytes(b"half a library")
    (source.parent / "good.h").write_text("#define ANSWER 43\n")
    second = compile_kernel(source, blas=False)
    assert not stale.exists() and second.name in entries(cache)


def test_concurrent_processes_share_one_library(source: Path, cache: Path) -> None:
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(source)], cwd=ROOT,
                                 env={**os.environ, "CHAINRULE_CACHE": str(cache)},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert all(child.returncode == 0 for child in children), outputs
    assert len({out.split()[0] for out, _ in outputs}) == 1
    assert {out.split()[1] for out, _ in outputs} == {"42"}
    assert len(entries(cache)) == 1


def test_compiled_from_the_bytes_hashed(source: Path, cache: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The source changing between hashing and compiling cannot put the wrong library
    under the key: the compiler reads a private copy of the hashed bytes."""
    run = c_compiler._run_compiler

    def change_first(command: list[str]) -> object:
        (source.parent / "good.h").write_text("#define ANSWER 7\n")
        return run(command)

    monkeypatch.setattr(c_compiler, "_run_compiler", change_first)
    library = compile_kernel(source, blas=False)
    assert ctypes.CDLL(str(library)).good_answer() == 42


def test_source_in_a_strangely_named_folder(tmp_path: Path, cache: Path) -> None:
    """The compiler reads a copy that names the original in a ``#line``: any folder name
    (quotes, backslashes, a line break, a trigraph, non-ASCII) must survive as a C string."""
    folder = tmp_path / 'we"ird\\ na\nme ??= é'
    folder.mkdir()
    (folder / "good.h").write_text(GOOD_H)
    (folder / "good.c").write_text(GOOD_C)
    assert ctypes.CDLL(str(compile_kernel(folder / "good.c", blas=False))).good_answer() == 42
    (folder / "good.c").write_text(GOOD_C + "int broken(void) { return nope; }\n")
    with pytest.raises(CompilerError, match="nope") as error:
        compile_kernel(folder / "good.c", blas=False)
    assert "good.c:3" in str(error.value)
