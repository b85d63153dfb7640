"""Hostile names: every name a user writes is a safe identifier in every generated file.

The attacks of issue 11: names equal to a generated adjoint (``d_<q>``), names equal
after Unicode normalisation, Python and C keywords, the macros of the C headers,
what the generated NumPy module and C code use themselves, the batch size ``B``, an
input not named ``x``, names equal to the temporaries and fused buffers codegen makes
up, and a model with 16,000 quantities. A refused name is a ModelError (SpecError
from a spec, exit 2 from ``chainrule generate``, nothing written) that names it and
says why; an accepted one gives gradients that match finite differences.

The last tests hold the backends to ``symbolic/names.py``: every identifier the
rendered kernels emit (Python through ``tokenize`` and ``ast``, C through a regex with
comments and strings stripped) is a user name, a name made from one, or listed
there; and inside the functions that hold user names, every other identifier is one
a user cannot write.
"""

from __future__ import annotations

import ast
import io
import re
import shutil
import subprocess
import time
import tokenize
from pathlib import Path

import pytest
from sympy import Sum, exp, log, tanh

from chainrule.codegen.app.check import check_model
from chainrule.codegen.app.cli import main
from chainrule.codegen.backends.c.backend import _Kernel, render_c
from chainrule.codegen.backends.c.blas import resolve_blas
from chainrule.codegen.backends.c.loader import blas_available
from chainrule.codegen.backends.numpy.backend import render_numpy
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.plan.types import Kind, Plan
from chainrule.symbolic import Model, ModelError, derive
from chainrule.symbolic.names import INTERNAL, RESERVED, Names, c_functions, refusal
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import SpecError, loads_spec
from tests.test_spec import TINY

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MLP = (EXAMPLES / "mlp.toml").read_text()
RNN = (EXAMPLES / "rnn.toml").read_text()
LSTM = (EXAMPLES / "lstm.toml").read_text()
COMPILER = shutil.which("cc") or shutil.which("gcc")


def renamed(text: str, **names: str) -> str:
    """``text`` with each whole word ``old`` replaced by ``new`` (all at once)."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    return pattern.sub(lambda m: names[m.group(1)], text)


#: the RNN with input u, time index s, and t, t0, t1 taken by the user
HOSTILE_RNN = renamed(RNN, x="u", t="s", a_h="t", j="t0", W_hh="t1")
#: the LSTM with the names of its built-in's temporaries and fused buffers taken
HOSTILE_LSTM = renamed(LSTM, g_o="d_a_ifco", a_y="t1357", W_hy="W_hifco", k_="t0246", K="t13",
                       k="t0")


def generate(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
             ) -> tuple[int, str, Path, Path]:
    spec = tmp_path / "hostile.toml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    code = main(["generate", "--model", str(spec), "--out", str(out)])
    return code, capsys.readouterr().err, spec, out


def assert_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str,
                   fragments: list[str]) -> None:
    """``chainrule generate --model`` refuses the spec: exit 2, nothing written, and the
    message names the file and holds every fragment."""
    code, err, spec, out = generate(capsys, tmp_path, text)
    assert code == 2, err
    assert not out.exists(), "a refused spec must not write anything"
    assert err.startswith(f"chainrule: error: {spec}: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    with pytest.raises(SpecError):
        loads_spec(text)


def assert_gradients_match(model: Model) -> None:
    """NumPy and (where there is a compiler) C gradients against finite differences."""
    report = check_model(model, cases=1)
    assert report.ok, report.table()
    if COMPILER is not None:
        assert "c" in report.errors, report.table()


def tiny_model(rename: dict[str, str] | None = None, *, loss: str = "L",
               model: str = "tiny") -> Model:
    """The README's one-layer network through the Python API, its names renamed."""
    n = {name: name for name in "I H K i h k kp x z W V a b u y".split()}
    n.update(rename or {})
    m = Model(model)
    I, H, K = m.size(n["I"]), m.size(n["H"]), m.size(n["K"])
    i, h, k, kp = m.index(n["i"], I), m.index(n["h"], H), m.index(n["k"], K), \
        m.index(n["kp"], K)
    x, z = m.input(n["x"], [I]), m.target(n["z"], [K])
    W, V = m.parameter(n["W"], [I, H]), m.parameter(n["V"], [H, K])
    a, b = m.intermediate(n["a"], [H]), m.intermediate(n["b"], [H])
    u, y = m.intermediate(n["u"], [K]), m.intermediate(n["y"], [K])
    m.define(a[h], Sum(W[i, h] * x[i], i))
    m.define(b[h], tanh(a[h]))
    m.define(u[k], Sum(V[h, k] * b[h], h))
    m.define(y[k], exp(u[k]) / Sum(exp(u[kp]), kp))
    m.loss(-Sum(z[k] * log(y[k]), k), name=loss)
    return m


# --- names equal to a generated adjoint ------------------------------------------------------

#: the issue's four renames in examples/mlp.toml, and what the refusal says
MLP_RENAMES = {
    "act1 -> d_a2": ({"act1": "d_a2"},
                     ["quantities.a2: intermediate name 'a2' cannot be used",
                      "would store ∂L/∂a2 as 'd_a2', which is already the name of an "
                      "intermediate"]),
    "act2 -> d_a1": ({"act2": "d_a1"},
                     ["quantities.d_a1: intermediate name 'd_a1' is reserved",
                      "stores ∂L/∂a1, the adjoint of the intermediate 'a1', as 'd_a1'"]),
    "a2 -> d_a_y": ({"a2": "d_a_y"},
                    ["quantities.a_y: intermediate name 'a_y' cannot be used", "'d_a_y'"]),
    "W_h2y -> d_W_xh1": ({"W_h2y": "d_W_xh1"},
                         ["quantities.d_W_xh1: parameter name 'd_W_xh1' is reserved",
                          "∂L/∂W_xh1, the gradient of the parameter 'W_xh1'"]),
}


@pytest.mark.parametrize("case", list(MLP_RENAMES), ids=list(MLP_RENAMES))
def test_a_name_equal_to_an_adjoint_is_refused(capsys, tmp_path: Path, case: str) -> None:
    rename, fragments = MLP_RENAMES[case]
    assert_refused(capsys, tmp_path, renamed(MLP, **rename), fragments)


def test_an_adjoint_name_is_refused_in_either_order() -> None:
    with pytest.raises(ModelError, match=r"intermediate name 'a' cannot be used: the generated "
                                         r"code would store ∂L/∂a as 'd_a'"):
        tiny_model({"W": "d_a"})  # d_a (a parameter) is declared before a
    with pytest.raises(ModelError, match=r"intermediate name 'd_a' is reserved: the generated "
                                         r"code stores ∂L/∂a"):
        tiny_model({"b": "d_a"})  # after
    m = Model("net")
    m.parameter("W", [m.size("H")])
    with pytest.raises(ModelError, match=r"size name 'd_W' is reserved: the generated code "
                                         r"stores ∂L/∂W, the gradient of the parameter 'W'"):
        m.size("d_W")


def test_a_d_name_without_its_quantity_is_fine() -> None:
    """``d_<q>`` is taken only for a q that has an adjoint: not an input, nor a stranger."""
    model = tiny_model({"b": "d_x", "u": "d_act", "y": "d_y0"})
    assert_gradients_match(model)


# --- Unicode, and names that are no ASCII identifier -----------------------------------------


def test_names_equal_after_nfkc_are_refused(capsys, tmp_path: Path) -> None:
    wide = "\uff42_h1"  # ｂ_h1, which Python's NFKC would read as b_h1
    with pytest.raises(ModelError, match=r"parameter name 'ｂ_h1' must be an identifier: ASCII "
                                         r"letters, digits and _, starting with a letter"):
        Model("net").parameter(wide, [])
    text = MLP.replace("b_y = {", f'"{wide}" = {{ role = "parameter", shape = ["H1"] }}\nb_y = {{')
    assert_refused(capsys, tmp_path, text, [f"quantities.{wide}: parameter name '{wide}' must "
                                            f"be an identifier: ASCII letters"])


@pytest.mark.parametrize("name", ["é", "a-b", "1a", "_softmax", "_", "", "a b", "ａ"])
def test_non_identifiers_are_refused(name: str) -> None:
    with pytest.raises(ModelError, match=r"must be an identifier: ASCII letters"):
        Model("net").size(name)
    with pytest.raises(ModelError, match=r"model name .* must be an identifier"):
        Model(name)


# --- reserved words of every family -----------------------------------------------------------

#: (name, the family's reason): a Python keyword, a soft keyword, C keywords (C99, C23),
#: C macros and functions, what the NumPy module and the C code use themselves, B
FAMILIES = [
    ("lambda", "'lambda' is a Python keyword"),
    ("None", "'None' is a Python keyword"),
    ("match", "'match' is a Python soft keyword"),
    ("double", "'double' is a C keyword"),
    ("int", "'int' is a C keyword"),
    ("bool", "'bool' is a C keyword"),
    ("NULL", "'NULL' is defined by <stddef.h>"),
    ("NAN", "'NAN' is defined by <math.h>"),
    ("INFINITY", "'INFINITY' is defined by <math.h>"),
    ("HUGE_VAL", "'HUGE_VAL' is defined by <math.h>"),
    ("isnan", "'isnan' is defined by <math.h>"),
    ("M_PI", "'M_PI' is defined by <math.h>"),
    ("expf", "'expf' is a function of <math.h>"),
    ("int64_t", "'int64_t' is defined by <stdint.h>"),
    ("size_t", "'size_t' is defined by <stddef.h>"),
    ("EOF", "'EOF' is defined by <stdio.h>"),
    ("errno", "'errno' is defined by <errno.h>"),
    ("complex", "'complex' is a macro of <complex.h>"),
    ("linux", "'linux' is a macro GCC predefines"),
    ("numpy", "'numpy' is used by the generated NumPy module"),
    ("sizes", "'sizes' is used by the generated NumPy module"),
    ("dtype", "'dtype' is used by the generated NumPy module"),
    ("params", "'params' is used by the generated NumPy module"),
    ("grads", "'grads' is used by the generated NumPy module"),
    ("range", "'range' is used by the generated NumPy module"),
    ("predict", "'predict' is used by the generated NumPy module"),
    ("loss", "'loss' is used by the generated C code"),
    ("workspace", "'workspace' is used by the generated C code"),
    ("next", "'next' is used by the generated C code"),
    ("acc", "'acc' is used by the generated C code"),
    ("CHAINRULE_OK", "'CHAINRULE_OK' is used by the generated C code"),
    ("chainrule_tanh_f32", "names starting with chainrule_"),
    ("Chainrule_Mine", "names starting with chainrule_"),
    ("cblas_dgemm", "'cblas_dgemm' is used by the generated C code"),
    ("cblas_zgemm", "names starting with cblas"),
    ("CblasUpper", "names starting with cblas"),
    ("OPENBLAS_VERSION", "names starting with openblas"),
    ("scipy_cblas_sgemm", "names starting with scipy_"),
    ("B", "'B' is the batch size in the generated code"),
]


@pytest.mark.parametrize("name, why", FAMILIES, ids=[n for n, _ in FAMILIES])
def test_reserved_names_are_refused_through_the_api(name: str, why: str) -> None:
    for kind, rename in (("size", {"H": name}), ("index", {"h": name}),
                         ("intermediate", {"b": name}), ("parameter", {"V": name})):
        with pytest.raises(ModelError) as error:
            tiny_model(rename)
        assert str(error.value).startswith(f"{kind} name {name!r} is reserved: {why}"), \
            error.value
    with pytest.raises(ModelError, match=re.escape(f"model name {name!r} is reserved")):
        Model(name)
    with pytest.raises(ModelError, match=re.escape(f"loss name {name!r} is reserved")):
        tiny_model(loss=name)


@pytest.mark.parametrize("name, why", FAMILIES, ids=[n for n, _ in FAMILIES])
def test_reserved_names_are_refused_in_a_spec(capsys, tmp_path: Path, name: str,
                                              why: str) -> None:
    assert_refused(capsys, tmp_path, renamed(TINY, b=name),
                   [f"quantities.{name}: intermediate name {name!r} is reserved: {why}"])


def test_a_size_named_b_is_refused_not_a_traceback(capsys, tmp_path: Path) -> None:
    assert_refused(capsys, tmp_path, renamed(TINY, H="B"),
                   ["sizes: size name 'B' is reserved: 'B' is the batch size"])


def test_reserved_model_and_time_names_in_a_spec(capsys, tmp_path: Path) -> None:
    assert_refused(capsys, tmp_path, TINY.replace('name = "tiny"', 'name = "numpy"'),
                   ["model name 'numpy' is reserved: 'numpy' is used by the generated NumPy"])
    assert_refused(capsys, tmp_path, RNN.replace('index = "t"', 'index = "total"'),
                   ["time: index name 'total' is reserved: 'total' is used by the generated C"])
    assert_refused(capsys, tmp_path, RNN.replace('size = "T"', 'size = "NULL"'),
                   ["time: size name 'NULL' is reserved"])


def test_x_is_a_name_like_any_other() -> None:
    """The kernels take their inputs by name (``inputs["x"]``), so ``x`` is no argument's name
    and any quantity may be called so; the API's own argument names stay reserved."""
    model = tiny_model({"x": "inp", "b": "x"})
    assert_gradients_match(model)
    for argument in ("inputs", "targets", "labels", "outputs"):
        with pytest.raises(ModelError, match=rf"intermediate name '{argument}' is reserved"):
            tiny_model({"b": argument})


def test_a_c_function_of_the_model_is_refused() -> None:
    with pytest.raises(ModelError, match=r"intermediate name 'tiny_check_sizes' is reserved: "
                                         r"'tiny_check_sizes' is a function of the generated C "
                                         r"of model 'tiny'"):
        tiny_model({"b": "tiny_check_sizes"})
    with pytest.raises(ModelError, match=r"parameter name 'run_f64' cannot be used: the "
                                         r"generated code would store ∂L/∂run_f64 as "
                                         r"'d_run_f64', which is already the name of a function"):
        tiny_model({"W": "run_f64"}, model="d")
    tiny_model({"b": "other_check_sizes"})  # another model's name is free


# --- any input name, and names equal to what codegen makes up ---------------------------------


def test_an_input_not_named_x_works() -> None:
    model = tiny_model({"x": "inp"})
    assert render_numpy(lower(derive(model))).count('    inp = inputs["inp"]\n') == 2
    assert_gradients_match(model)


def test_a_recurrent_model_with_other_input_and_time_names_works() -> None:
    """Input ``u``, time index ``s``, and the usual time name ``t`` taken by a quantity:
    the C loop over time must not be called t."""
    model = loads_spec(HOSTILE_RNN)
    plan = lower(derive(model))
    assert {"t", "t0", "t1"} <= set(plan.arrays) | set(model.indices)
    assert all(plan.arrays[name].quantity == name for name in ("t", "t1"))
    source = render_c(plan)["rnn.c"]
    assert "for (long s = T; s >= 1; --s)" in source
    assert "for (long t =" not in source
    assert_gradients_match(model)


def test_names_equal_to_generated_ones_are_avoided() -> None:
    """The LSTM's temporaries and fused buffers (t0, t1357, t0246, W_hifco, d_a_ifco)
    taken by the user's own names: codegen picks others, and the gradients hold."""
    builtin = lower(derive(BUILTINS["lstm"]()))
    generated = {"t0", "t13", "t1357", "t0246", "W_hifco", "d_a_ifco"}
    assert generated <= set(builtin.arrays)
    model = loads_spec(HOSTILE_LSTM)
    plan = lower(derive(model))
    users = model.user_names()
    for name, array in plan.arrays.items():
        if name in users:
            assert array.quantity == name, (name, array)
        else:
            assert refusal(name) is None, name
    assert_gradients_match(model)


def test_sixteen_thousand_quantities_declare_quickly() -> None:
    m = Model("big")
    H = m.size("H")
    m.index("h", H)
    start = time.perf_counter()
    for n in range(16_000):
        m.intermediate(f"q{n}", [H])
    assert time.perf_counter() - start < 5, "the name check must be linear"
    with pytest.raises(ModelError, match="'q15999' is already used by an intermediate"):
        m.parameter("q15999", [H])


# --- the backends emit nothing that names.py does not know ------------------------------------


def _models() -> dict[str, Model]:
    models = {name: build() for name, build in BUILTINS.items()}
    models |= {f"{path.name}": loads_spec(path.read_text(), filename=path.name)
               for path in sorted(EXAMPLES.glob("*.toml"))}
    models["hostile rnn"] = loads_spec(HOSTILE_RNN)
    models["hostile lstm"] = loads_spec(HOSTILE_LSTM)
    models["tiny, input inp"] = tiny_model({"x": "inp"})
    return models


MODELS = _models()


def _known(name: str) -> bool:
    """Listed in names.py, or no name a user could write (``_softmax``, ``__cplusplus``)."""
    return refusal(name) is not None or name in INTERNAL


def _derived(model: Model, plan: Plan) -> set[str]:
    """User names and the names made from them: arrays (adjoints, temporaries, fused
    buffers), and the C functions and header guard named after the model."""
    return {*model.user_names(), *plan.arrays, *c_functions(model.name),
            f"CHAINRULE_{model.name.upper()}_H"}


def _python_names(source: str) -> set[str]:
    """Every NAME token that is not an attribute (``numpy.einsum``'s ``einsum``)."""
    names: set[str] = set()
    previous = None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and not (previous is not None and previous.string == "."):
            names.add(token.string)
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT,
                              tokenize.INDENT, tokenize.DEDENT):
            previous = token
    return names


def _scoped_names(node: ast.AST) -> set[str]:
    """The names ``node`` reads, binds or takes as arguments (not attributes, keywords)."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.arg):
            found.add(sub.arg)
        elif isinstance(sub, ast.FunctionDef):
            found.add(sub.name)
        elif isinstance(sub, ast.alias):
            found.add(sub.asname or sub.name.split(".")[0])
    return found


#: the generated functions that hold the user's names
PYTHON_KERNELS = ("_forward", "loss_and_grad", "predict")


@pytest.mark.parametrize("name", list(MODELS))
def test_emitted_python_identifiers_are_known(name: str) -> None:
    model = MODELS[name]
    plan = lower(derive(model))
    source = render_numpy(plan)
    derived = _derived(model, plan)
    unknown = sorted(n for n in _python_names(source) if n not in derived and not _known(n))
    assert unknown == [], f"identifiers the NumPy module emits that names.py does not list: " \
                          f"{unknown}"
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in PYTHON_KERNELS:
            # beside the user's names, only names a user cannot write
            clash = sorted(n for n in _scoped_names(node)
                           if n not in derived and refusal(n) is None)
            assert clash == [], (node.name, clash)
        else:
            # a helper or the module's globals: never a user's name
            strangers = sorted(n for n in _scoped_names(node) if not _known(n))
            assert strangers == [], (getattr(node, "name", type(node).__name__), strangers)


def _strip_c(source: str) -> str:
    """C without comments, string and character literals, #include lines and directives."""
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    source = re.sub(r"//[^\n]*", " ", source)
    source = re.sub(r'"(\\.|[^"\\\n])*"', '""', source)
    source = re.sub(r"'(\\.|[^'\\\n])*'", "''", source)
    source = re.sub(r"^[ \t]*#[ \t]*include[^\n]*", "", source, flags=re.M)
    return re.sub(r"^([ \t]*)#[ \t]*\w+", r"\1", source, flags=re.M)


def _c_identifiers(code: str) -> set[str]:
    return set(re.findall(r"(?<![\w.])[A-Za-z_]\w*", code))


def _c_functions(code: str) -> dict[str, str]:
    """Top-level function definitions: name → header and body."""
    functions: dict[str, str] = {}
    depth, start, opened = 0, 0, 0
    for position, char in enumerate(code):
        if char == "{":
            if depth == 0:
                opened = position
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                header = code[start:opened]
                # the function's name is the last to follow a type (the #define lines
                # before it hold CHAINRULE_LIT(chainrule_f64, ...) after a type too)
                typed = re.findall(r"\b(?:int|void|size_t|char|double|float)\b[\s*]*(\w+)\s*\(",
                                   header)
                name = typed[-1] if typed else re.findall(r"(\w+)\s*\(", header)[0]
                functions[name] = code[start:position + 1]
                start = position + 1
        elif char == ";" and depth == 0:
            start = position + 1
    return functions


@pytest.mark.parametrize("name", list(MODELS))
def test_emitted_c_identifiers_are_known(name: str) -> None:
    model = MODELS[name]
    plan = lower(derive(model))
    files = render_c(plan)
    source = _strip_c(files[f"{model.name}.c"])
    # loop variables, and the loop bodies' locals (named from the same free names)
    loops = set(re.findall(r"for \(long (\w+) =", source)) | set(
        re.findall(r"const chainrule_real (\w+) =", source))
    # the arrays of the plan the C kernel prints, after its own passes (a transposed copy)
    derived = _derived(model, _Kernel(plan).plan) | loops
    for file, text in files.items():
        unknown = sorted(n for n in _c_identifiers(_strip_c(text))
                         if n not in derived and not _known(n))
        assert unknown == [], f"identifiers {file} emits that names.py does not list: {unknown}"
    functions = _c_functions(source)
    with_user_names = {f"{model.name}_run_f64", f"{model.name}_run_f32",
                       f"{model.name}_workspace_elements"}
    assert with_user_names <= set(functions)
    for function, body in functions.items():
        identifiers = _c_identifiers(body)
        if function in with_user_names:
            # SIZE_RESERVED: block-local names that only the sizes cannot be
            clash = sorted(n for n in identifiers if n not in derived
                           and refusal(n, size=True) is None)
            assert clash == [], (function, clash)
        else:
            strangers = sorted(n for n in identifiers
                               if not _known(n) and n not in c_functions(model.name))
            assert strangers == [], (function, strangers)


@pytest.mark.parametrize("name", list(MODELS))
def test_generated_names_are_free(name: str) -> None:
    """Every array and C loop variable codegen names is no user name and nothing reserved."""
    model = MODELS[name]
    plan = lower(derive(model))
    users = model.user_names()
    for array in plan.arrays.values():
        if array.name not in users:
            assert array.kind not in (Kind.INPUT, Kind.TARGET, Kind.PARAMETER, Kind.STATE)
            assert refusal(array.name) is None, array.name
    source = _strip_c(render_c(plan)[f"{model.name}.c"])
    # loop variables, and the loop bodies' locals (named from the same free names)
    loops = set(re.findall(r"for \(long (\w+) =", source)) | set(
        re.findall(r"const chainrule_real (\w+) =", source))
    arrays_and_sizes = set(plan.arrays) | {str(s) for s in plan.sizes}
    for loop in loops:
        assert loop not in arrays_and_sizes, loop
        assert refusal(loop) is None or loop in model.indices, loop


@pytest.mark.skipif(COMPILER is None, reason="no C compiler (cc) on this machine")
@pytest.mark.parametrize("name", ["gru.toml", "hostile rnn", "hostile lstm", "tiny, input inp"])
def test_hostile_kernels_compile_strictly(tmp_path: Path, name: str) -> None:
    """-std=c99 -Wall -Wextra -Werror -pedantic, with CBLAS where its header is found."""
    model = MODELS[name]
    for file, text in render_c(lower(derive(model))).items():
        (tmp_path / file).write_text(text)
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c"]
    variants = [[]] + ([["-DCHAINRULE_CBLAS"]] if _macros([], ["cblas.h"]) else []) + (
        [list(resolve_blas("bundled").compile_flags)] if blas_available("bundled") else [])
    for extra in variants:
        result = subprocess.run([COMPILER, *flags, *extra, str(tmp_path / f"{model.name}.c"),  # type: ignore[list-item]
                                 "-o", str(tmp_path / "kernel.o")],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, (extra, result.stderr)


def test_the_allocator_skips_taken_and_reserved_names() -> None:
    names = Names(["t0", "h"])
    assert names.fresh(["t0", "double", "h", "t1"]) == "t1"
    assert "t1" in names and not names.is_free("t1")
    copy = names.copy()
    copy.take("u")
    assert "u" not in names


def test_the_reserved_list_holds_no_builtin_name() -> None:
    """The built-ins' own names are all free: nothing reserved by mistake."""
    for build in BUILTINS.values():
        model = build()
        assert [n for n in model.user_names() if refusal(n)] == []
    assert "I" not in RESERVED and "i" not in RESERVED


def _macros(flags: list[str], includes: list[str]) -> set[str] | None:
    """The macros the compiler defines with ``includes``, or None if it cannot."""
    text = "".join(f"#include <{header}>\n" for header in includes)
    result = subprocess.run([COMPILER, *flags, "-dM", "-E", "-"], input=text,  # type: ignore[list-item]
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return {line.split()[1].split("(")[0] for line in result.stdout.splitlines()
            if line.startswith("#define ")}


@pytest.mark.skipif(COMPILER is None, reason="no C compiler (cc) on this machine")
def test_every_macro_of_the_headers_is_reserved() -> None:
    """What the C kernels include (and GCC predefines) holds no macro a user name could be."""
    headers = ["math.h", "string.h", "stddef.h", "stdint.h"]
    bundled = resolve_blas("bundled") if blas_available("bundled") else None
    sets = [_macros(["-std=c99"], headers), _macros(["-std=gnu17"], headers),
            _macros(["-std=c99"], [*headers, "cblas.h"]),
            _macros(["-std=c99", *bundled.compile_flags], [*headers, "cblas.h"])
            if bundled else None]
    assert sets[0] is not None and sets[1] is not None
    macros = set().union(*(s for s in sets if s is not None))
    free = sorted(m for m in macros if refusal(m) is None and m not in INTERNAL)
    assert free == [], f"macros a user name could be (add them to symbolic/names.py): {free}"


def test_spec_and_api_refuse_the_same_names() -> None:
    """The spec has no list of its own beyond the equations' function names."""
    for name in ("double", "numpy", "B", "workspace"):
        with pytest.raises(ModelError):
            tiny_model({"b": name})
        with pytest.raises(SpecError, match=re.escape(f"{name!r} is reserved: ")):
            loads_spec(renamed(TINY, b=name))
    with pytest.raises(SpecError, match=r"'relu' is reserved \(a function name in equations\)"):
        loads_spec(renamed(TINY, b="relu"))
