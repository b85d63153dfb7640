"""The generated C reads like C a person wrote (issue 12, item 7) and describes itself.

Preprocessor lines at column 0; no ``(void)x;`` for locals; loop counters named after
their indices; row-major index arithmetic nested, not expanded; one kernel body for
both precisions, every precision-dependent name bound in one place; and
``<net>_contract()``, whose JSON is the plan's contract. The C statement printer is a
:class:`~codegen.plan.visitor.StatementVisitor`, which refuses a printer that leaves a
statement kind out.
"""

from __future__ import annotations

import ctypes
import itertools
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from sympy import Sum, exp, log, tanh

from chainrule.codegen.backends.c import backend as c_backend
from chainrule.codegen.backends.c import compiler as toolchain
from chainrule.codegen.backends.c.backend import render_c
from chainrule.codegen.backends.c.blas import resolve_blas
from chainrule.codegen.backends.c.loader import compile_kernel
from chainrule.codegen.plan.contract import contract_of
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.plan.types import Plan
from chainrule.codegen.plan.visitor import KINDS, StatementVisitor
from chainrule.codegen.precision import PRECISIONS
from chainrule.symbolic import Model, derive
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import loads_spec

ROOT = Path(__file__).resolve().parents[1]
COMPILER = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(COMPILER is None, reason="no C compiler (cc) on this machine")

#: ``wc -l generated/lstm/lstm.c`` before issue 12 item 7: the body printed once per precision
LSTM_LINES_BEFORE = 1631
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c"]


@cache
def plan_of(name: str) -> Plan:
    return lower(derive(BUILTINS[name]()))


@cache
def files_of(name: str) -> dict[str, str]:
    return render_c(plan_of(name))


def c_lines(name: str) -> list[str]:
    return files_of(name)[f"{name}.c"].splitlines()


@pytest.mark.parametrize("name", list(BUILTINS))
def test_preprocessor_lines_start_at_column_zero(name: str) -> None:
    for file, text in files_of(name).items():
        indented = [line for line in text.splitlines() if re.match(r"\s+#\s*\w", line)]
        assert indented == [], (file, indented[:3])


@pytest.mark.parametrize("name", list(BUILTINS))
def test_no_void_casts_but_for_an_unused_api_argument(name: str) -> None:
    """Each function declares what its body uses; ``(void)`` is left only for the C API's
    arguments a network does not use (``state`` and ``state_grads`` without a state,
    ``labels`` or ``targets`` without such targets: a definition must name every
    parameter in C99), in the API's functions, never in the run functions."""
    unused = {"labels", "targets"}
    if not plan_of(name).states:
        unused |= {"state", "state_grads"}
    casts = [line.strip() for line in c_lines(name) if "(void)" in line and "(void) {" not in line]
    for line in casts:
        assert set(re.findall(r"\(void\)([A-Za-z_]\w*)", line)) <= unused, line


@pytest.mark.parametrize("name", list(BUILTINS))
def test_loop_counters_are_named_after_their_indices(name: str) -> None:
    counters = set(re.findall(r"for \(long (\w+) =", files_of(name)[f"{name}.c"]))
    assert counters, "no loops found"
    assert not [c for c in counters if re.fullmatch(r"n\d+", c)], counters
    if name.startswith("lstm"):  # the copies of W_h* into W_hifco run over c and c_2
        assert "W_hifco[c*(4*H) + H + c_2] = W_hf[c*H + c_2];" in files_of(name)[f"{name}.c"]


@pytest.mark.parametrize("name", list(BUILTINS))
def test_index_arithmetic_is_nested_row_major(name: str) -> None:
    text = files_of(name)[f"{name}.c"]
    # expanded forms such as B*H*t - B*H are gone: the time index appears as (t - 1) or t
    assert not re.search(r"\*t - ", text), re.search(r".{40}\*t - .{40}", text)
    if plan_of(name).time is not None:
        # a recurrent array indexed row by row (h, or f and g in the bidirectional RNN)
        assert re.search(r"\b\w+\[\(\((t - 1|t \+ 1)\)\*B \+ b\)\*H \+ ", text) or re.search(
            r"\b\w+\[\(t\*B \+ b\)\*H \+ ", text)


def test_lstm_is_shorter() -> None:
    """No (void) lines, no unused declarations, no expanded index sums: shorter, though each
    precision keeps a body of its own (a macro body would be unreadable and undebuggable)."""
    lines = c_lines("lstm")
    assert len(lines) <= 0.9 * LSTM_LINES_BEFORE, len(lines)


@pytest.mark.parametrize("name", list(BUILTINS))
def test_one_body_serves_every_precision(name: str) -> None:
    """Every run function holds the same text, printed once; what differs between the
    precisions is bound by #define before each function and #undef after it."""
    text = files_of(name)[f"{name}.c"]
    bodies = []
    for precision in PRECISIONS:
        run = re.search(rf"static int {name}_run_{precision.name}\(.*?\) {{\n(.*?\n)}}\n",
                        text, re.S)
        assert run is not None, precision.name
        bodies.append(run.group(1))
        assert f"#define chainrule_real {precision.c_type}\n" in text
    assert all(body == bodies[0] for body in bodies)
    for line in bodies[0].splitlines():
        if "CHAINRULE_GEMM" in line or "CHAINRULE_BLAS_RUNS" in line or line.startswith("#"):
            continue  # a product's work m·n·k is a double in every precision
        # no precision's own math or BLAS routine in the body: only the bound names
        assert not re.search(r"\b(expf?|logf?|tanhf?|cblas_[ds]gemm|double|float)\b",
                             re.sub(r"/\*.*?\*/", "", line)), line


def test_float_literals_are_right_in_each_precision(tmp_path: Path) -> None:
    """A literal prints as each precision prints it (17 digits; 9 and an F suffix), picked
    by CHAINRULE_LIT; the kernel compiles strictly, with and without CBLAS."""
    spec = (ROOT / "examples" / "mlp.toml").read_text(encoding="utf-8")
    spec = spec.replace('name = "mlp"', 'name = "lit"').replace(
        '"act1[h1] = tanh(a1[h1])"',
        '"act1[h1] = relu(a1[h1]) * 0.1 + tanh(a1[h1]) / 3 + 1.7 * logistic(a1[h1])"')
    files = render_c(lower(derive(loads_spec(spec))))
    text = files["lit.c"]
    assert "CHAINRULE_LIT(0.10000000000000001, 0.1F)" in text
    assert "CHAINRULE_LIT(1.0, 1.0F)/CHAINRULE_LIT(3.0, 3.0F)" in text
    assert "#define CHAINRULE_LIT(chainrule_f64, chainrule_f32) chainrule_f32" in text
    assert "#define chainrule_fmax fmaxf" in text
    if COMPILER is not None:
        _compile_strictly(tmp_path, files, "lit")


def _compile_strictly(tmp_path: Path, files: dict[str, str], name: str) -> None:
    """Compile with the strict flags, with the bundled OpenBLAS's flags, and with
    -DCHAINRULE_CBLAS where the system's <cblas.h> is found."""
    compiler = COMPILER
    assert compiler is not None
    for file, text in files.items():
        (tmp_path / file).write_text(text, encoding="utf-8")
    variants: list[list[str]] = [[]]
    probe = subprocess.run([compiler, "-E", "-x", "c", "-"], input="#include <cblas.h>\n",
                           capture_output=True, text=True, check=False)
    if probe.returncode == 0:
        variants.append(["-DCHAINRULE_CBLAS"])
    variants.append(list(resolve_blas("bundled").compile_flags))
    for extra in variants:
        done = subprocess.run([compiler, *STRICT, *extra, str(tmp_path / f"{name}.c"), "-o",
                               str(tmp_path / f"{name}.o")],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, (extra, done.stderr)


def _contract_from_library(tmp_path: Path, files: dict[str, str], name: str) -> str:
    for file, text in files.items():
        (tmp_path / file).write_text(text, encoding="utf-8")
    library = ctypes.CDLL(str(compile_kernel(tmp_path / f"{name}.c", blas=False,
                                             flags=["-O0"])))
    function = getattr(library, f"{name}_contract")
    function.argtypes = []
    function.restype = ctypes.c_char_p
    return function().decode("ascii")


@needs_cc
@pytest.mark.parametrize("name", list(BUILTINS))
def test_the_library_returns_its_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          name: str) -> None:
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    got = _contract_from_library(tmp_path, files_of(name), name)
    assert got == contract_of(plan_of(name)).to_json()


def _long_named_model() -> Model:
    """A one-layer network whose size names are long enough that its contract passes the
    4095 characters C99 promises a string literal."""
    long = {letter: f"{letter}{'_' * 3}{letter.lower() * 600}" for letter in "IHK"}
    m = Model("wide")
    I, H, K = (m.size(long[letter]) for letter in "IHK")
    i, h, k, kp = m.index("i", I), m.index("h", H), m.index("k", K), m.index("kp", K)
    x, z = m.input("x", [I]), m.target("z", [K])
    W, V = m.parameter("W", [I, H]), m.parameter("V", [H, K])
    a, b = m.intermediate("a", [H]), m.intermediate("b", [H])
    u, y = m.intermediate("u", [K]), m.intermediate("y", [K])
    m.define(a[h], Sum(W[i, h] * x[i], i))
    m.define(b[h], tanh(a[h]))
    m.define(u[k], Sum(V[h, k] * b[h], h))
    m.define(y[k], exp(u[k]) / Sum(exp(u[kp]), kp))
    m.loss(-Sum(z[k] * log(y[k]), k))
    return m


@needs_cc
def test_a_contract_too_long_for_a_string_literal(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))
    plan = lower(derive(_long_named_model()))
    expected = contract_of(plan).to_json()
    assert len(expected) > 4095
    files = render_c(plan)
    assert "static const unsigned char text[]" in files["wide.c"]
    _compile_strictly(tmp_path, files, "wide")
    assert _contract_from_library(tmp_path, files, "wide") == expected


def test_the_header_documents_the_contract_and_the_status_codes() -> None:
    header = files_of("lstm")["lstm.h"]
    assert "const char *lstm_contract(void);" in header
    for code, meaning in contract_of(plan_of("lstm")).status.items():
        assert re.search(rf"CHAINRULE_\w+ \({code}\) +{re.escape(meaning)}", header), meaning
    assert "#define CHAINRULE_BAD_LABEL 2" in header


def test_the_statement_printer_is_a_statement_visitor() -> None:
    assert issubclass(c_backend._Emitter, StatementVisitor)
    for method in KINDS.values():
        assert method in vars(c_backend._Emitter), method


def test_a_visitor_missing_a_kind_fails_when_defined() -> None:
    methods = {name: (lambda self, statement, *context: []) for name in KINDS.values()}
    del methods["softmax"]
    with pytest.raises(TypeError, match="softmax"):
        type("Incomplete", (StatementVisitor,), methods)
    type("Partial", (StatementVisitor,), methods, partial=True)  # said to be incomplete: fine


@pytest.mark.parametrize("name", ["lstm", "lstm_no_peepholes"])
def test_gates_share_one_loop_nest(name: str) -> None:
    """The four gates' input projections, and their weight gradients, run in one loop
    nest (a line of its body each) under one test of their common work; the biases'
    gradients share a loop nest too."""
    text = files_of(name)[f"{name}.c"]
    body = re.search(rf"static int {name}_run_f64\(.*?\) {{\n(.*?\n)}}\n", text, re.S)
    assert body is not None
    lines = body.group(1).splitlines()
    tests = [n for n, line in enumerate(lines) if "if (CHAINRULE_BLAS_RUNS(" in line]
    assert len(tests) == 3, tests  # x·W_x* before the loop; x and h times d_a_* after it
    for start in tests:
        calls = list(itertools.takewhile(lambda line: "} else {" not in line,
                                         lines[start + 1:]))
        assert len(calls) == 4 and all("CHAINRULE_GEMM_CALL(" in c for c in calls), calls
    zeroed = [line.strip() for line in lines if re.fullmatch(r"\s*d_b_\w+\[c\] = 0;", line)]
    assert len(zeroed) == 4
    first = next(n for n, line in enumerate(lines) if line.strip() == zeroed[0])
    assert [line.strip() for line in lines[first:first + 7] if "d_b_" in line] == zeroed


def _step_nests(name: str) -> list[list[str]]:
    """The bodies of the loop nests marked CHAINRULE_INDEPENDENT in the float64 kernel."""
    lines = c_lines(name)
    nests = []
    for n, line in enumerate(lines):
        if line.strip() == "CHAINRULE_INDEPENDENT":
            depth = len(line) - len(line.lstrip())
            body = list(itertools.takewhile(
                lambda text, d=depth: len(text) - len(text.lstrip()) > d or not text.strip(),
                lines[n + 2:]))
            nests.append([text.strip() for text in body])
    return nests[:len(nests) // 2]  # the float64 kernel: each body is printed per precision


def test_a_step_is_one_pass_over_its_elements() -> None:
    """Issue 16, item 3: the LSTM's forward step computes its gates, state and output in
    one loop nest over B·H, after the recurrent product; the backward step its δ's in
    another, the guarded term (zero at t = T) as a select inside it."""
    forward, backward = _step_nests("lstm_no_peepholes")
    written = [line.split("[")[0].split(" = ")[0] for line in forward if not line.startswith("/*")]
    # the pre-activations of i, f, o are read by their squashing function alone: locals
    assert written == ["const chainrule_real a_i_e", "g_i", "const chainrule_real a_f_e", "g_f",
                       "a_c", "s", "const chainrule_real a_o_e", "g_o", "h"]
    assert "g_i[((t - 1)*B + b)*H + c] = chainrule_logistic(a_i_e);" in forward
    assignments = [line for line in backward if not line.startswith("/*")]
    assert len(assignments) == 9, assignments
    assert [line for line in assignments if "?" in line] == [
        "const chainrule_real t13_e = (t <= T - 1) ? d_s[b*H + c]*g_f[(t*B + b)*H + c] : 0;"]


def test_the_step_passes_are_vectorized(tmp_path: Path) -> None:
    """Marked free of dependences between iterations, GCC vectorizes the fused loops; it
    would not with the run-time overlap tests their dozen arrays ask for (at most 10)."""
    compiler = toolchain.find_compiler() if COMPILER is not None else ()
    if not compiler or toolchain.optimization_flags(compiler) != toolchain.GCC_OPTIMIZATION:
        pytest.skip("GCC's -fopt-info reports which loops it vectorized; no GCC here")
    name = "lstm_no_peepholes"
    for file, text in files_of(name).items():
        (tmp_path / file).write_text(text)
    report = subprocess.run(
        [*compiler, *toolchain.optimization_flags(compiler),
         *(flag for flag in toolchain.BASE_FLAGS if flag != "-shared"), "-c",
         str(tmp_path / f"{name}.c"), "-o", str(tmp_path / "k.o"), "-fopt-info-vec-optimized"],
        capture_output=True, text=True, check=True).stderr
    vectorized = {int(m) for m in re.findall(rf"{name}\.c:(\d+):\d+: optimized: loop vectorized",
                                             report)}
    marked = [n + 2 for n, line in enumerate(c_lines(name))  # 1-based: the loop after it
              if line.strip() == "CHAINRULE_INDEPENDENT"]
    assert len(marked) == 4  # forward and backward step, in each precision
    assert set(marked) <= vectorized, (marked, sorted(vectorized))
