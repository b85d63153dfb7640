"""softplus, sin, cos, sqrt, erf (and the exact GELU) and abs: rules, specs, kernels, notes.

Each function is the hidden activation of the README's one-layer network (``TINY``
of ``tests/test_spec.py``), written as a spec: its derivative rule comes out of
``derive`` as written in ``symbolic/functions.py``, every recorded step checks out
(``verify``), and the NumPy and C kernels agree with central finite differences,
with each other, with PyTorch (float64 within 1e-9, float32 within 1e-4) and stay
finite where softplus's naive form overflows. The notes print each function, and a
function a user registers follows the README's recipe to checked kernels, or fails
with an error that says what to add.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy
from sympy import IndexedBase, Sum

from chainrule import codegen
from chainrule.codegen.app.cli import main
from chainrule.codegen.backends.c.backend import render_c
from chainrule.codegen.backends.latex.backend import render_tex
from chainrule.codegen.backends.latex.printer import latex
from chainrule.codegen.backends.latex.words import LANGUAGES, RULES
from chainrule.codegen.backends.numpy.backend import render_numpy
from chainrule.codegen.plan.lower import lower
from chainrule.symbolic import Rule, derive, logistic, softplus
from chainrule.symbolic.functions import function_names, rule_for
from chainrule.symbolic.spec import SpecError, loads_spec
from chainrule.symbolic.verify import verify_derivation
from tests import test_hostile_names as hostile
from tests import torch_reference
from tests.cases import relative_error
from tests.gradcheck import finite_difference_errors
from tests.kernel_files import write_kernels
from tests.test_spec import TINY

ROOT = Path(__file__).resolve().parents[1]
COMPILER = shutil.which("cc") or shutil.which("gcc")

#: the hidden activation b[h] of each model, as spec text
FUNCTIONS = {
    "softplus": "softplus(a[h])",
    "sin": "sin(a[h])",
    "cos": "cos(a[h])",
    "sqrt": "sqrt(1 + a[h] * a[h])",
    "erf": "erf(a[h])",
    "gelu": "a[h] * (1 + erf(a[h] / sqrt(2))) / 2",
    "abs": "abs(a[h])",
}
#: the rule each model's local partial ∂b/∂a records
RULE_OF = {"softplus": Rule.DERIVATIVE_SOFTPLUS, "sin": Rule.DERIVATIVE_SIN,
           "cos": Rule.DERIVATIVE_COS, "sqrt": None, "erf": Rule.DERIVATIVE_ERF,
           "gelu": Rule.DERIVATIVE_ERF, "abs": Rule.DERIVATIVE_ABS}
SIZES = {"I": 3, "H": 4, "K": 3}


def spec_of(function: str, body: str | None = None) -> str:
    text = TINY.replace("tanh(a[h])", body or FUNCTIONS[function])
    return text.replace('name = "tiny"', f'name = "fn_{function}"')


def model_of(function: str):
    return loads_spec(spec_of(function), filename=f"{function}.toml")


# --- the rules --------------------------------------------------------------------------------


def test_each_rule_is_the_textbook_derivative() -> None:
    x = sympy.Symbol("x", real=True)
    cases = {  # the rule as written, and the function's definition for SymPy to differentiate
        softplus: (logistic(x), sympy.log(1 + sympy.exp(x))),
        sympy.sin: (sympy.cos(x), sympy.sin(x)),
        sympy.cos: (-sympy.sin(x), sympy.cos(x)),
        sympy.erf: (2 * sympy.exp(-x**2) / sympy.sqrt(sympy.pi), sympy.erf(x)),
        sympy.Abs: (sympy.sign(x), sympy.Abs(x)),
    }
    for function, (expected, definition) in cases.items():
        key, rule = rule_for(function)
        assert key in set(Rule)
        derivative = rule(x, function(x))
        assert sympy.simplify(derivative - expected) == 0, function
        difference = (derivative - sympy.diff(definition, x)).rewrite(sympy.exp)
        assert sympy.simplify(difference) == 0, function


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_derive_applies_the_rule(function: str) -> None:
    model = model_of(function)
    derivation = derive(model)
    h, k = (model.indices[n] for n in ("h", "k"))
    a, b = IndexedBase("a")[h], IndexedBase("b")[h]
    upstream = Sum(IndexedBase("V")[h, k] * IndexedBase("d_u")[k], (k, k.lower, k.upper))
    local = {
        "softplus": logistic(a),
        "sin": sympy.cos(a),
        "cos": -sympy.sin(a),
        "sqrt": a / b,  # 1/(2y) · 2a: the power rule, folded back onto b = sqrt(1 + a²)
        "erf": 2 * sympy.exp(-a**2) / sympy.sqrt(sympy.pi),
        "gelu": (1 + sympy.erf(a / sympy.sqrt(2))) / 2
        + a * sympy.exp(-a**2 / 2) / sympy.sqrt(2 * sympy.pi),
        "abs": sympy.sign(a),
    }[function]
    delta = derivation.adjoint("a").expr
    assert sympy.expand(delta - local * upstream) == 0, delta
    recorded = {key for partial in derivation.adjoint("a").local_partials
                for key in partial.rule_keys}
    assert recorded == ({RULE_OF[function]} if RULE_OF[function] else set())


def test_sqrt_is_one_over_twice_its_value() -> None:
    model = loads_spec(spec_of("sqrt", "sqrt(a[h])"))
    h = model.indices["h"]
    delta = derive(model).adjoint("a").expr
    assert delta.has(IndexedBase("b")[h]) and not delta.has(sympy.sqrt(IndexedBase("a")[h]))
    assert sympy.expand(delta * 2 * IndexedBase("b")[h]).has(IndexedBase("V"))


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_every_step_verifies(function: str) -> None:
    report = verify_derivation(derive(model_of(function)), seed=0)
    assert report.ok and report.worst < 1e-12, report.table()


def test_the_rules_have_words_in_every_language() -> None:
    for key in (Rule.DERIVATIVE_SOFTPLUS, Rule.DERIVATIVE_SIN, Rule.DERIVATIVE_COS,
                Rule.DERIVATIVE_ERF, Rule.DERIVATIVE_ABS):
        assert set(RULES[key]) == set(LANGUAGES) and all(RULES[key].values())


# --- the spec language ------------------------------------------------------------------------


def test_the_spec_language_names_every_function() -> None:
    names = function_names()
    for name in ("softplus", "sin", "cos", "sqrt", "erf", "abs", "exp", "log", "tanh",
                 "logistic", "relu"):
        assert name in names, name
    assert "Abs" not in names
    with pytest.raises(SpecError, match=r"unknown function `sinh`.*abs.*erf.*softplus.*sqrt"):
        loads_spec(spec_of("sinh", "sinh(a[h])"))


@pytest.mark.parametrize("constant", ["sin(1)", "cos(0.5)", "erf(0.5)", "abs(-2)", "sqrt(2)",
                                      "softplus(1)", "softplus(0)"])
def test_constants_of_the_new_functions_are_finite_doubles(constant: str) -> None:
    model = loads_spec(spec_of("const", f"{constant} * tanh(a[h])"))
    assert model is not None


def test_a_function_name_is_not_a_value() -> None:
    with pytest.raises(SpecError, match="`erf` is a function; call it"):
        loads_spec(spec_of("bad", "erf * a[h]"))


# --- the kernels ------------------------------------------------------------------------------


def c_or_skip(folder: Path):
    from chainrule.codegen.backends.c.loader import CompilerError, find_compiler

    try:
        find_compiler()
    except CompilerError as error:
        pytest.skip(f"no C compiler: {error}")
    return codegen.load(folder, backend="c")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("functions")
    return {name: write_kernels(model_of(name), root / name) for name in FUNCTIONS}


def kernels(folders: dict[str, Path], function: str) -> dict[str, Any]:
    return {"numpy": codegen.load(folders[function]), "c": c_or_skip(folders[function])}


def inputs(kernel: Any, seed: int, B: int = 5, dtype: Any = np.float64):
    rng = np.random.default_rng(seed)
    params = kernel.init_params(SIZES, rng=rng, dtype=np.float64)
    params = {n: (a + rng.normal(scale=0.5, size=a.shape)).astype(dtype)
              for n, a in params.items()}
    x = rng.normal(size=(B, SIZES["I"])).astype(dtype)
    labels = rng.integers(0, SIZES["K"], size=B)
    return params, x, labels


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_kernels_match_finite_differences_and_each_other(folders, function: str) -> None:
    found = kernels(folders, function)
    for seed in (0, 1):
        params, x, labels = inputs(found["numpy"], seed)
        results = {}
        for backend, kernel in found.items():
            errors = finite_difference_errors(kernel, params, x, labels)
            assert set(errors) == {"W", "V"}
            assert max(errors.values()) < 1e-6, (backend, errors)
            results[backend] = kernel.loss_and_grad(params, x, labels)
        (loss, grads), (c_loss, c_grads) = results["numpy"], results["c"]
        assert c_loss == pytest.approx(loss, rel=1e-12)
        for name, grad in grads.items():
            np.testing.assert_allclose(c_grads[name], grad, rtol=1e-10, atol=1e-12,
                                       err_msg=name)


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_float32_is_within_1e_4_of_float64(folders, function: str) -> None:
    for backend, kernel in kernels(folders, function).items():
        params, x, labels = inputs(kernel, 2)
        loss, grads = kernel.loss_and_grad(params, x, labels)
        params32 = {n: a.astype(np.float32) for n, a in params.items()}
        loss32, grads32 = kernel.loss_and_grad(params32, x.astype(np.float32), labels)
        assert np.asarray(loss32).dtype == np.float32, backend
        assert relative_error(loss32, loss) < 1e-4, backend
        for name, grad in grads.items():
            assert grads32[name].dtype == np.float32, (backend, name)
            assert relative_error(grads32[name], grad) < 1e-4, (backend, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_softplus_is_finite_at_a_thousand(folders, dtype: Any) -> None:
    """a[h] = ±1000: e^1000 overflows, ln(1 + e^x) as written would be infinite."""
    B, I, H, K = 4, SIZES["I"], SIZES["H"], SIZES["K"]
    x = np.ones((B, I), dtype)
    x[1::2] *= -1
    W = np.full((I, H), 1000.0 / I, dtype)
    W[:, 1::2] *= -1
    rng = np.random.default_rng(3)
    V = (1e-3 * rng.normal(size=(H, K))).astype(dtype)
    labels = rng.integers(0, K, size=B)
    results = {}
    for backend, kernel in kernels(folders, "softplus").items():
        with np.errstate(over="raise", divide="raise", invalid="raise"):  # e^-1000 underflows
            loss, grads = kernel.loss_and_grad({"W": W, "V": V}, x, labels)
        assert np.isfinite(loss), backend
        assert all(np.isfinite(g).all() for g in grads.values()), backend
        results[backend] = loss, grads
    # b = softplus(±1000) = 1000 or 0 (e^-1000) exactly: the loss is the cross-entropy of
    # the logits b V, and ∂L/∂W is 0 where σ(a) is 0 or 1 ... times x
    b = np.maximum(x.astype(np.float64) @ W.astype(np.float64), 0.0)
    logits = b @ V.astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    expected = -(shifted[np.arange(B), labels] - np.log(np.exp(shifted).sum(axis=1))).sum()
    for backend, (loss, grads) in results.items():
        rel = 1e-5 if dtype == np.float32 else 1e-12
        assert float(loss) == pytest.approx(expected, rel=rel), backend
        np.testing.assert_allclose(grads["V"], results["numpy"][1]["V"], rtol=1e-5, atol=1e-6,
                                   err_msg=backend)


def test_the_numpy_erf_is_accurate(folders) -> None:
    import mpmath

    erf = codegen.load(folders["erf"])._erf
    xs = np.concatenate([np.linspace(-7, 7, 4001), np.logspace(-300, 1, 400),
                         -np.logspace(-20, 0.8, 200), [1.9999999999, 2.0, 2.0000000001]])
    with mpmath.workdps(30):
        exact = np.array([float(mpmath.erf(mpmath.mpf(float(v)))) for v in xs])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        ours = erf(xs)
        ours32 = erf(xs.astype(np.float32))
    assert ours.dtype == np.float64 and ours32.dtype == np.float32
    assert relative_error(ours, exact) < 1e-15
    assert (np.abs(ours - exact) <= 1.5e-15 * np.maximum(np.abs(exact), 1e-300)).all()
    exact32 = np.array([math.erf(float(v)) for v in xs.astype(np.float32)])
    assert (np.abs(ours32 - exact32) <= 1e-6 * np.maximum(np.abs(exact32), 1e-30)).all()
    edges = erf(np.array([np.inf, -np.inf, 0.0, -0.0, 1e300, np.nan]))
    assert list(edges[:3]) == [1.0, -1.0, 0.0] and np.signbit(edges[3]) and edges[4] == 1.0
    assert np.isnan(edges[5])


def test_erf_helper_only_where_erf_is_called(folders) -> None:
    assert "def _erf(" in (folders["erf"] / "fn_erf.py").read_text()
    assert "def _erf(" in (folders["gelu"] / "fn_gelu.py").read_text()
    assert "def _erf(" not in (folders["sin"] / "fn_sin.py").read_text()
    for function in ("sin", "erf"):  # C: libm's erf, and only the helpers a model calls
        source = (folders[function] / f"fn_{function}.c").read_text()
        assert "chainrule_softplus_f64" not in source and "chainrule_sign_f64" not in source
    assert "static double chainrule_softplus_f64" in (folders["softplus"] / "fn_softplus.c"
                                                      ).read_text()
    assert "static float chainrule_sign_f32" in (folders["abs"] / "fn_abs.c").read_text()


def test_irrational_constants_print_as_literals(folders) -> None:
    """2/√π and 1/√2: one literal, no M_PI (undefined in strict C99), and no numpy scalar
    that would turn a float32 kernel into float64."""
    for function in ("erf", "gelu"):
        python = (folders[function] / f"fn_{function}.py").read_text()
        c = (folders[function] / f"fn_{function}.c").read_text()
        assert "numpy.pi" not in python and "numpy.sqrt(2)" not in python
        assert not re.search(r"\bM_[A-Z0-9_]+", c)
        assert "1.1283791670955126" in python + c or "0.70710678118654757" in python + c


@pytest.mark.skipif(COMPILER is None, reason="no C compiler (cc or gcc) on this machine")
@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_c_compiles_strictly(folders, tmp_path: Path, function: str) -> None:
    source = folders[function] / f"fn_{function}.c"
    done = subprocess.run([COMPILER, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
                           "-c", str(source), "-o", str(tmp_path / "kernel.o")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _unknown_identifiers(model: Any) -> set[str]:
    """What the hostile-names test looks for: every identifier the NumPy module and the C
    files emit that is neither the model's nor made from it nor listed in names.py."""
    plan = lower(derive(model))
    derived = hostile._derived(model, plan)
    python = hostile._python_names(render_numpy(plan))
    c = set().union(*(hostile._c_identifiers(hostile._strip_c(text))
                      for text in render_c(plan).values()))
    return {n for n in python | c if n not in derived and not hostile._known(n)}


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_emitted_identifiers_are_known(function: str) -> None:
    """The erf helper's locals and the C helpers are listed in names.py (or are names no
    user can write): nothing beyond what the same network with tanh emits."""
    baseline = _unknown_identifiers(loads_spec(spec_of(function, "tanh(a[h])")))
    assert _unknown_identifiers(model_of(function)) - baseline == set()


def test_exact_gelu_from_a_spec_file_through_the_command_line(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "gelu.toml"
    spec.write_text(spec_of("gelu"), encoding="utf-8")
    assert main(["check", "--model", str(spec)]) == 0, capsys.readouterr()
    assert "ok: every gradient" in capsys.readouterr().out


# --- PyTorch ----------------------------------------------------------------------------------


def torch_loss_and_grad(function: str, params: dict[str, np.ndarray], x: np.ndarray,
                        labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    torch = torch_reference.torch
    functional = torch.nn.functional
    activation = {
        "softplus": functional.softplus, "sin": torch.sin, "cos": torch.cos,
        "sqrt": lambda a: torch.sqrt(1 + a * a), "erf": torch.erf,
        "gelu": lambda a: functional.gelu(a, approximate="none"), "abs": torch.abs,
    }[function]
    leaves = {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}
    logits = activation(torch.tensor(x) @ leaves["W"]) @ leaves["V"]
    index = torch.as_tensor(labels, dtype=torch.int64).unsqueeze(-1)
    loss = -torch.log_softmax(logits, dim=-1).gather(-1, index).sum()
    loss.backward()
    return loss.item(), {n: t.grad.numpy() for n, t in leaves.items()}


@pytest.mark.skipif(torch_reference.torch is None, reason=torch_reference.SKIP_REASON)
@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_against_pytorch(folders, function: str) -> None:
    for backend, kernel in kernels(folders, function).items():
        for dtype, tolerance in ((np.float64, 1e-9), (np.float32, 1e-4)):
            params, x, labels = inputs(kernel, 4, B=6, dtype=dtype)
            loss, grads = kernel.loss_and_grad(params, x, labels)
            torch_params = {n: a.astype(np.float64) for n, a in params.items()}
            their_loss, their_grads = torch_loss_and_grad(function, torch_params,
                                                          x.astype(np.float64), labels)
            assert relative_error(loss, their_loss) < tolerance, (backend, dtype)
            for name, grad in their_grads.items():
                assert relative_error(grads[name], grad) < tolerance, (backend, dtype, name)


# --- the notes --------------------------------------------------------------------------------


def test_latex_prints_each_function_readably() -> None:
    model = model_of("softplus")
    a = IndexedBase("a")[model.indices["h"]]
    assert latex(softplus(a), model) == r"\operatorname{softplus}{\left(a_{h}\right)}"
    assert latex(softplus(a) ** 2, model) == r"\operatorname{softplus}^{2}{\left(a_{h}\right)}"
    assert r"\operatorname{erf}" in latex(sympy.erf(a), model)
    assert r"\sin" in latex(sympy.sin(a), model) and r"\cos" in latex(sympy.cos(a), model)
    assert r"\sqrt{" in latex(sympy.sqrt(a), model)
    assert r"\left|{a_{h}}\right|" in latex(sympy.Abs(a), model)
    assert r"\operatorname{sign}" in latex(sympy.sign(a), model)
    assert r"\frac{2 e^{- a_{h}^{2}}}{\sqrt{\pi}}" == latex(
        2 * sympy.exp(-a**2) / sympy.sqrt(sympy.pi), model)


@pytest.mark.parametrize("function", ["softplus", "erf", "abs"])
def test_the_notes_name_the_rule(function: str) -> None:
    derivation = derive(model_of(function))
    key = RULE_OF[function]
    for lang in LANGUAGES:
        tex = render_tex(derivation, lang, detail="full")
        assert RULES[key][lang] in tex, (function, lang)


# --- a function of one's own ------------------------------------------------------------------


def _run(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter: a registered rule lasts for the process, and
    these tests must leave the registry of this one as it was."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def readme_recipe() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Functions and their derivative rules", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the README's section on functions has one Python example"
    return blocks[0]


def test_the_readme_recipe_reaches_checked_kernels() -> None:
    script = readme_recipe() + """
from chainrule.codegen.artifacts import render

assert report.cases and {"numpy", "c"} <= set(report.errors) | set(report.skipped)
files = render(model)
assert "derivative of swish" in files["mlp.tex"], "the notes name the rule"
assert "chainrule_logistic_f32" in files["mlp.c"], "swish printed as x*logistic(x)"
print("recipe ok")
"""
    done = _run(script)
    assert done.returncode == 0 and "recipe ok" in done.stdout, done.stderr[-3000:]


MISSING = '''
import sympy
from chainrule.codegen.app.check import check_model
from chainrule.codegen.artifacts import render
from chainrule.symbolic import MissingPrinter, ModelError, derivative_rule, logistic
from chainrule.symbolic.spec import loads_spec

class swish(sympy.Function):
    nargs = 1

@derivative_rule(swish, "derivative of swish")
def _rule(x, y):
    return logistic(x) + y * (1 - logistic(x))

model = loads_spec(TEXT)
for backend, method in (("NumPy", "_numpycode"), ("C", "_ccode")):
    try:
        render(model)
    except MissingPrinter as error:
        assert isinstance(error, ModelError)
        text = str(error)
        assert f"the {backend} backend cannot print the function 'swish'" in text, text
        assert method in text and "README" in text, text
    else:
        raise AssertionError("rendered without a printer")
    setattr(swish, method, lambda self, printer: printer._print(
        self.args[0] * logistic(self.args[0])))
assert "mlp.c" in render(model)
report = check_model(model, backends=("numpy",))
assert report.ok, report.table()
print("missing ok")
'''


def test_a_function_without_a_printer_is_a_clear_error() -> None:
    spec = (ROOT / "examples" / "mlp.toml").read_text().replace("tanh(", "swish(")
    done = _run(f"TEXT = {spec!r}\n" + MISSING)
    assert done.returncode == 0 and "missing ok" in done.stdout, done.stderr[-3000:]
