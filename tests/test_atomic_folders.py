"""Atomic kernel folders (issue 11): ``chainrule generate`` killed at any instant leaves
``<net>/`` all old or all new, and ``codegen.load`` refuses files that do not belong
together.

The kill loops run real processes and ``kill -9`` them while they write: the slow part
of a write, ``fsync``, is slowed further in the child so that random kills land inside
it. After every kill the folder must be byte for byte one of the two models' file
sets (their seals name the set), with nothing else in it; the only thing allowed
beside it is a ``.<net>.new-*`` leftover, which the next successful run removes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chainrule import codegen
from chainrule.codegen import writer
from chainrule.codegen.artifacts import render
from chainrule.codegen.backends.c.loader import compile_kernel
from chainrule.codegen.kernel_set import check_seals
from chainrule.codegen.writer import staging_folders, write_atomically
from chainrule.symbolic.spec import load_spec, source_of
from tests.test_spec import TINY

ROOT = Path(__file__).resolve().parents[1]

# `chainrule generate` with a slow disk, saying when it starts writing
SLOW_GENERATE = """\
import os, sys, time
real_fsync = os.fsync
def slow_fsync(fd):
    time.sleep(0.01)
    real_fsync(fd)
os.fsync = slow_fsync
from chainrule.codegen import writer
real_write = writer.write_atomically
def announced(*args, **kwargs):
    print("writing", flush=True)
    written = real_write(*args, **kwargs)
    print("written", flush=True)
    return written
writer.write_atomically = announced
from chainrule.codegen.app.cli import main
sys.exit(main(sys.argv[1:]))
"""

# the two file sets of a JSON file written alternately, for ever
WRITE_FOREVER = """\
import json, os, sys, time
from chainrule.codegen.writer import write_atomically
real_fsync = os.fsync
def slow_fsync(fd):
    time.sleep(0.002)
    real_fsync(fd)
os.fsync = slow_fsync
sets = json.load(open(sys.argv[1], encoding="utf-8"))
print("ready", flush=True)
n = int(sys.argv[3])
while True:
    write_atomically(sys.argv[2], sets[n % 2])
    n += 1
"""


def spec(tmp_path: Path, title: str) -> Path:
    path = tmp_path / f"{title.lower()}.toml"
    path.write_text(TINY.replace('name = "tiny"\n', f'name = "tiny"\ntitle = "{title}"\n'),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict[str, bytes]]]:
    """Two specs of a network ``tiny`` that differ in their title, with their files."""
    folder = tmp_path_factory.mktemp("specs")
    found = []
    for title in ("Old", "New"):
        path = spec(folder, title)
        files = render(load_spec(path), source=source_of(path))
        found.append((path, {name: text.encode("utf-8") for name, text in files.items()}))
    return found


def folder_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_whole(out: Path, sets: list[dict[str, bytes]], *, leftovers: bool = True) -> int:
    """``out/tiny`` is exactly one of ``sets`` (which one is returned); beside it at most
    ``.tiny.new-*`` leftovers."""
    beside = sorted(p.name for p in out.iterdir() if p.name != "tiny")
    assert all(name.startswith(".tiny.new-") for name in beside) and (leftovers or not beside), \
        beside
    state = folder_state(out / "tiny")
    assert state in sets, f"a mixed or partial folder: {sorted(state)}"
    check_seals(out / "tiny", {n: d for n, d in state.items() if not n.endswith(".tex")},
                ["tiny.py", "tiny.c", "tiny.h"])
    return sets.index(state)


def test_generate_killed_at_random_instants(tmp_path: Path,
                                            models: list[tuple[Path, dict[str, bytes]]]
                                            ) -> None:
    out = tmp_path / "out"
    sets = [files for _, files in models]
    command = [sys.executable, "-c", SLOW_GENERATE, "generate", "--out", str(out), "--model"]
    first = subprocess.Popen([*command, str(models[0][0])], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    assert first.stdout is not None and first.stdout.readline() == "writing\n"
    start = time.monotonic()
    assert first.stdout.readline() == "written\n"
    write_time = time.monotonic() - start  # how long a write takes on this machine
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert assert_whole(out, sets) == 0
    rng = random.Random(11)
    seen, current, attempts = set(), 0, 0
    while attempts < 8 or (seen != {0, 1} and attempts < 16):
        attempts += 1
        model = models[1 - current][0]  # always the other one: every kill could flip it
        child = subprocess.Popen([*command, str(model)], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        assert child.stdout is not None
        assert child.stdout.readline() == "writing\n"
        time.sleep(rng.uniform(0, 1.3 * write_time))  # mostly inside the write; some finish
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
        current = assert_whole(out, sets)
        seen.add(current)
    assert seen == {0, 1}, "the kills should leave old and new folders both"
    last = subprocess.run([*command, str(models[1][0])], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert last.returncode == 0, last.stderr
    assert "not generated" not in last.stderr
    assert assert_whole(out, sets, leftovers=False) == 1
    assert codegen.load(out / "tiny").SIZES == ("I", "H", "K")


def test_writes_killed_at_random_instants(tmp_path: Path,
                                          models: list[tuple[Path, dict[str, bytes]]]) -> None:
    """Many more kills, each inside a write: a child that only ever writes."""
    out = tmp_path / "out"
    sets = [{f"tiny/{n}": d.decode("utf-8") for n, d in files.items()} for _, files in models]
    data = tmp_path / "sets.json"
    data.write_text(json.dumps(sets), encoding="utf-8")
    write_atomically(out, sets[0])
    expected = [files for _, files in models]
    rng = random.Random(5)
    for attempt in range(30):
        child = subprocess.Popen([sys.executable, "-c", WRITE_FOREVER, str(data), str(out),
                                  str(attempt)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0, 0.05))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
        assert_whole(out, expected)
    write_atomically(out, sets[1])
    assert assert_whole(out, expected, leftovers=False) == 1


def test_readers_never_see_a_mix(tmp_path: Path,
                                 models: list[tuple[Path, dict[str, bytes]]]) -> None:
    """``codegen.load`` while another process swaps the folder back and forth: every load
    reads one whole folder (read again if the old one is removed under it)."""
    out = tmp_path / "out"
    sets = [{f"tiny/{n}": d.decode("utf-8") for n, d in files.items()} for _, files in models]
    data = tmp_path / "sets.json"
    data.write_text(json.dumps(sets), encoding="utf-8")
    write_atomically(out, sets[0])
    child = subprocess.Popen([sys.executable, "-c", WRITE_FOREVER.replace("0.002", "0"),
                              str(data), str(out), "1"], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        titles = set()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            titles.add(codegen.load(out / "tiny").__doc__.split(" (")[0])
    finally:
        child.kill()
        child.wait(timeout=60)
        child.stdout.close()
    assert titles <= {"Old", "New"} and titles


# --- codegen.load and the seals --------------------------------------------------------


@pytest.fixture
def two(tmp_path: Path, models: list[tuple[Path, dict[str, bytes]]]) -> tuple[Path, Path]:
    folders = []
    for n, (_, files) in enumerate(models):
        folder = tmp_path / f"set{n}" / "tiny"
        write_atomically(folder, {name: data.decode("utf-8") for name, data in files.items()})
        folders.append(folder)
    return folders[0], folders[1]


def needs_cc() -> None:
    if shutil.which(os.environ.get("CC", "cc").split()[0]) is None:
        pytest.skip("no C compiler")


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_load_refuses_files_of_two_sets(two: tuple[Path, Path], backend: str) -> None:
    old, new = two
    shutil.copy(new / "tiny.c", old / "tiny.c")
    with pytest.raises(ValueError, match="do not belong together") as error:
        codegen.load(old, backend=backend)
    assert "tiny.c from set" in str(error.value)
    assert "tiny.h, tiny.py from set" in str(error.value)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_load_refuses_a_modified_file(two: tuple[Path, Path], backend: str) -> None:
    old, _ = two
    path = old / ("tiny.py" if backend == "numpy" else "tiny.h")
    path.write_text(path.read_text() + "\n")
    with pytest.raises(ValueError, match=rf"{path.name} in .* was modified after generation"):
        codegen.load(old, backend=backend)


def test_load_refuses_an_unsealed_file_beside_sealed_ones(two: tuple[Path, Path]) -> None:
    old, _ = two
    (old / "tiny.h").write_text("/* hand-written */\n")
    with pytest.raises(ValueError, match=r"tiny\.c, tiny\.py carry a chainrule seal but "
                                         r"tiny\.h does not"):
        codegen.load(old)


def test_load_c_needs_the_whole_set(two: tuple[Path, Path]) -> None:
    old, _ = two
    (old / "tiny.h").unlink()
    assert codegen.load(old).SIZES == ("I", "H", "K"), "NumPy uses the .py alone"
    with pytest.raises(ValueError, match=r"lacks tiny\.h, part of the kernel set"):
        codegen.load(old, backend="c")


def test_a_lone_module_loads(tmp_path: Path, two: tuple[Path, Path]) -> None:
    old, _ = two
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(old / "tiny.py", alone / "tiny.py")
    assert codegen.load(alone).SIZES == ("I", "H", "K")


def test_load_c_of_a_whole_set(tmp_path: Path, two: tuple[Path, Path],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    needs_cc()
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    kernel = codegen.load(two[1], backend="c", blas=False)
    # the library is the one built from the new set's source (the cache is keyed by it)
    assert kernel.library == compile_kernel(two[1] / "tiny.c", blas=False)
    assert kernel.library != compile_kernel(two[0] / "tiny.c", blas=False)
    assert kernel.CONTRACT == codegen.load(two[1]).CONTRACT


# --- the writer ------------------------------------------------------------------------


def test_leftovers_of_a_killed_write_are_removed(tmp_path: Path) -> None:
    write_atomically(tmp_path, {"toy/toy.py": "old\n"})
    for leftover in (".toy.new-abc123", ".toy.new-def456-old"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "toy.py").write_text("partial")
    (tmp_path / ".other.new-keep").mkdir()
    assert len(staging_folders(tmp_path, "toy")) == 2
    write_atomically(tmp_path, {"toy/toy.py": "new\n"})
    assert staging_folders(tmp_path, "toy") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.new-keep", "toy"]


def test_files_the_write_does_not_produce_stay(tmp_path: Path) -> None:
    write_atomically(tmp_path, {"toy/toy.py": "old\n", "toy/sub/a.h": "a\n"})
    (tmp_path / "toy" / "notes.txt").write_text("mine\n")
    (tmp_path / "toy" / "sub" / "b.h").write_text("mine too\n")
    (tmp_path / "toy").chmod(0o750)
    write_atomically(tmp_path, {"toy/toy.py": "new\n", "toy/sub/a.h": "A\n"})
    assert (tmp_path / "toy" / "notes.txt").read_text() == "mine\n"
    assert (tmp_path / "toy" / "sub" / "b.h").read_text() == "mine too\n"
    assert (tmp_path / "toy" / "toy.py").read_text() == "new\n"
    assert (tmp_path / "toy").stat().st_mode & 0o777 == 0o750


def test_without_an_exchange_the_folder_is_still_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "_RENAMEAT2", None)
    write_atomically(tmp_path, {"toy/toy.py": "old\n", "toy/toy.c": "old\n"})
    write_atomically(tmp_path, {"toy/toy.py": "new\n", "toy/toy.c": "new\n"})
    assert folder_state(tmp_path / "toy") == {"toy.c": b"new\n", "toy.py": b"new\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_a_failed_second_folder_swaps_the_first_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_atomically(tmp_path, {"a/a.py": "old a\n", "b/b.py": "old b\n"})
    real = writer._swap
    calls = []

    def failing(folder: writer._Folder) -> None:
        calls.append(folder.name)
        if folder.name == "b":
            raise OSError("disk on fire")
        real(folder)

    monkeypatch.setattr(writer, "_swap", failing)
    with pytest.raises(OSError, match="disk on fire"):
        write_atomically(tmp_path, {"a/a.py": "new a\n", "b/b.py": "new b\n"})
    assert calls == ["a", "b"]
    assert (tmp_path / "a/a.py").read_text() == "old a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_concurrent_writes_into_one_folder(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for _ in range(10):
                write_atomically(tmp_path, {"toy/toy.py": f"{n}\n", "toy/toy.c": f"{n}\n"})
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    state = folder_state(tmp_path / "toy")
    assert state["toy.py"] == state["toy.c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_a_file_where_a_folder_is_generated(tmp_path: Path) -> None:
    write_atomically(tmp_path, {"toy/sub": "a file\n"})
    with pytest.raises(NotADirectoryError, match=r"toy/sub: it exists and is not a directory"):
        write_atomically(tmp_path, {"toy/sub/a.h": "x\n"})
    assert (tmp_path / "toy" / "sub").read_text() == "a file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]
