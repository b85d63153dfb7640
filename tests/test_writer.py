"""chainrule.codegen.writer: atomic writes of generated artifacts and the drift comparison."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chainrule.codegen import writer
from chainrule.codegen.writer import diff_against, stray_files, write_atomically

FILES = {
    "toy/toy.py": "def f(x):\n    return x\n",
    "toy/toy.tex": "\\section{Toy}\r\nCRLF kept, unicode kept: δ_k = y_k − z_k\n",
    "toy/sub/data.h": "/* no trailing newline */",
    "other/other.c": "int other(void) { return 0; }\n",
}


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root, as relative POSIX path → bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_writes_every_file_with_exact_bytes(tmp_path: Path) -> None:
    written = write_atomically(tmp_path / "out", FILES)

    assert written == [tmp_path / "out" / rel for rel in FILES]
    assert tree(tmp_path / "out") == {rel: text.encode("utf-8") for rel, text in FILES.items()}


def test_overwrites_existing_files_and_keeps_their_mode(tmp_path: Path) -> None:
    write_atomically(tmp_path, {"toy/toy.py": "old\n"})
    (tmp_path / "toy/toy.py").chmod(0o640)

    write_atomically(tmp_path, {"toy/toy.py": "new\n", "toy/new.txt": "fresh\n"})

    assert (tmp_path / "toy/toy.py").read_text() == "new\n"
    assert stat.S_IMODE((tmp_path / "toy/toy.py").stat().st_mode) == 0o640
    # A new file gets the mode the umask gives, not NamedTemporaryFile's 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "toy/new.txt").stat().st_mode) == 0o666 & ~umask
    assert sorted(tree(tmp_path)) == ["toy/new.txt", "toy/toy.py"]


def test_failure_while_writing_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy/toy.py").write_text("old\n")
    before = tree(tmp_path)
    files = {
        "toy/toy.py": "new\n",
        "toy/a.txt": "fine\n",
        "toy/fresh/b.txt": "fine\n",
        "toy/z.txt": "unencodable \ud800\n",  # a lone surrogate: UTF-8 encoding fails
    }

    with pytest.raises(UnicodeEncodeError):
        write_atomically(tmp_path, files)

    assert tree(tmp_path) == before, "no temporaries, no new files, old file untouched"
    assert not (tmp_path / "toy/fresh").exists(), "a folder created for the write is removed"


def test_destination_that_is_a_directory_fails_before_anything_is_replaced(
    tmp_path: Path,
) -> None:
    (tmp_path / "toy/toy.tex").mkdir(parents=True)
    (tmp_path / "toy/toy.py").write_text("old\n")
    before = tree(tmp_path)

    with pytest.raises(IsADirectoryError, match=r"toy\.tex"):
        write_atomically(tmp_path, {"toy/toy.py": "new\n", "toy/toy.tex": "new\n"})

    assert tree(tmp_path) == before
    assert (tmp_path / "toy/toy.tex").is_dir()


def test_failure_while_replacing_restores_the_old_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_atomically(tmp_path, {"toy/a.txt": "old a\n", "toy/b.txt": "old b\n"})
    before = tree(tmp_path)
    real_replace = os.replace
    calls: list[str] = []

    def flaky_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(os.fspath(dst))
        if len(calls) == 3:  # a.txt and new.txt are in place; b.txt fails
            raise OSError("disk on fire")
        real_replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_atomically(
            tmp_path, {"toy/a.txt": "new a\n", "toy/new.txt": "new\n", "toy/b.txt": "new b\n"}
        )
    monkeypatch.undo()

    assert len(calls) >= 3
    assert tree(tmp_path) == before, "replaced files are restored, new ones removed"


@pytest.mark.parametrize("bad", ["/abs/x.py", "../x.py", "toy/../../x.py", "./x.py", "", "a//b"])
def test_rejects_paths_outside_the_output_folder(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="relative path"):
        write_atomically(tmp_path / "out", {bad: "x"})
    assert not (tmp_path / "out").exists()


def test_diff_against_reports_nothing_when_up_to_date(tmp_path: Path) -> None:
    write_atomically(tmp_path, FILES)
    (tmp_path / "toy/__pycache__").mkdir()
    (tmp_path / "toy/__pycache__/toy.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "unrelated.txt").write_text("outside any network folder\n")

    assert diff_against(tmp_path, FILES) == []


def test_diff_against_reports_changed_missing_and_stray_files(tmp_path: Path) -> None:
    write_atomically(tmp_path, FILES)
    (tmp_path / "toy/toy.py").write_text("def f(x):\n    return 2 * x\n")
    (tmp_path / "toy/sub/data.h").unlink()
    (tmp_path / "toy/old.c").write_text("stale\n")
    (tmp_path / "toy/sub/old.h").write_text("stale\n")
    # Only a line ending differs: still drift, since artifacts must match byte for byte.
    (tmp_path / "toy/toy.tex").write_bytes(FILES["toy/toy.tex"].replace("\r\n", "\n").encode())

    reports = dict(diff_against(tmp_path, FILES))

    assert sorted(reports) == [
        "toy/old.c",
        "toy/sub/data.h",
        "toy/sub/old.h",
        "toy/toy.py",
        "toy/toy.tex",
    ]
    assert reports["toy/sub/data.h"] == writer.MISSING
    assert reports["toy/old.c"] == reports["toy/sub/old.h"] == writer.NOT_GENERATED
    diff = reports["toy/toy.py"]
    assert diff.startswith("--- toy/toy.py (on disk)\n+++ toy/toy.py (generated)\n")
    assert "-    return 2 * x\n" in diff
    assert "+    return x\n" in diff
    assert "toy.tex" in reports["toy/toy.tex"]


def test_diff_marks_a_missing_final_newline(tmp_path: Path) -> None:
    write_atomically(tmp_path, {"toy/a.h": "x\ny"})
    diff = dict(diff_against(tmp_path, {"toy/a.h": "x\nz"}))["toy/a.h"]
    assert diff.endswith("-y\n\\ No newline at end of file\n+z\n\\ No newline at end of file\n")


def test_diff_against_a_directory_where_a_file_should_be(tmp_path: Path) -> None:
    (tmp_path / "toy/toy.py").mkdir(parents=True)
    assert diff_against(tmp_path, {"toy/toy.py": "x\n"}) == [("toy/toy.py", writer.NOT_A_FILE)]


def test_stray_files_only_in_the_named_network_folders(tmp_path: Path) -> None:
    write_atomically(tmp_path, FILES)
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone/gone.py").write_text("a network that no longer exists\n")
    (tmp_path / "toy/extra.txt").write_text("x\n")

    assert stray_files(tmp_path, FILES) == ["toy/extra.txt"]
    assert stray_files(tmp_path, FILES, nets=["other"]) == []
    assert stray_files(tmp_path, FILES, nets=["toy", "other", "gone", "absent"]) == [
        "gone/gone.py",
        "toy/extra.txt",
    ]
