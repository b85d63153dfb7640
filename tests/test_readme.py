"""The README's examples run as written (from the repository root): Python and C."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "the README has no Python examples"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_c_example_builds_and_learns(tmp_path: Path) -> None:
    """examples/c/rnn_step.c, compiled as the README says, takes a step that lowers the loss."""
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (cc) on this machine")
    program = tmp_path / "rnn_step"
    build = subprocess.run([compiler, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
                            "-O2", "-Igenerated/rnn", "examples/c/rnn_step.c",
                            "generated/rnn/rnn.c", "-lm", "-o", str(program)],
                           cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "after one step" in run.stdout, run.stdout + run.stderr


def test_c_example_builds_with_the_bundled_openblas(tmp_path: Path) -> None:
    """The README's commands for the wheel's OpenBLAS, run as written (the program into a
    temporary folder): the kernel calls scipy_cblas_dgemm, and the step lowers the loss."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) on this machine")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("# the wheel's")
    commands = text[start:text.index("```", start)]
    program = tmp_path / "rnn_step"
    script = (commands.replace(".venv/bin/python", sys.executable)
              .replace("-o rnn_step", f"-o {program}"))
    build = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    symbols = subprocess.run(["nm", "-D", "--undefined-only", str(program)],
                             capture_output=True, text=True)
    assert symbols.returncode != 0 or "scipy_cblas_dgemm" in symbols.stdout
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "after one step" in run.stdout, run.stdout + run.stderr
