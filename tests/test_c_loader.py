"""The C loader (codegen/backends/c/: compiler.py, cache.py, loader.py): compiler errors,
the library cache, CBLAS, marshalling.

The generated C kernels are tested against NumPy elsewhere; here a small fake C kernel
(the real C API, trivial arithmetic) beside a copy of a generated NumPy module checks
that CKernel passes sizes, pointers, state and status codes the way the API says.
"""

from __future__ import annotations

import ctypes
import dataclasses
import re
import string
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from chainrule import codegen
from chainrule.codegen.backends.c import blas as c_blas
from chainrule.codegen.backends.c import compiler as c_compiler
from chainrule.codegen.backends.c import loader as c_loader
from chainrule.codegen.backends.c.blas import resolve_blas
from chainrule.codegen.backends.c.loader import CKernel, CompilerError, compile_kernel
from chainrule.codegen.escape import c_string
from chainrule.codegen.kernel_checks import check_call
from chainrule.codegen.plan.contract import KernelContract

ROOT = Path(__file__).resolve().parents[1]

GOOD_C = """\
#include "good.h"
int good_answer(void) { return ANSWER; }
"""
GOOD_H = "#define ANSWER 42\n"

NO_CBLAS_C = """\
#ifdef CHAINRULE_CBLAS
#error compiled with CHAINRULE_CBLAS
#endif
int nothing(void) { return 0; }
"""

FAKE_H = string.Template("""\
#ifndef ${NET}_H
#define ${NET}_H
#include <stddef.h>
#include <stdint.h>
const char *${net}_contract(void);
size_t ${net}_workspace_bytes(const long *sizes);
size_t ${net}_workspace_bytes_f64(const long *sizes);
size_t ${net}_workspace_bytes_f32(const long *sizes);
#define DECLARE(REAL, SUF) \\
int ${net}_loss_and_grad_##SUF(const long *sizes, const REAL *const *params, \\
    const REAL *const *inputs, const int64_t *const *labels, const REAL *const *targets, \\
    const REAL *const *state, REAL *loss, REAL *const *grads, \\
    REAL *const *state_grads, void *workspace); \\
int ${net}_predict_##SUF(const long *sizes, const REAL *const *params, \\
    const REAL *const *inputs, const REAL *const *state, REAL *const *outputs, \\
    void *workspace);
DECLARE(double, f64)
DECLARE(float, f32)
#undef DECLARE
#endif
""")

# Trivial arithmetic with the real signatures: loss = Σx + Σlabels, grads = 2·param + p,
# state grads = 3·state + s, y[e, k] = k + b_y[k] + Σ_i x[e, i] (+ state[0][b, 0]).
FAKE_C = string.Template("""\
#include "${net}.h"
#define NS ${ns}
#define NP ${np}
#define NST ${nst}
#define NX ${nx}
#define K_AT ${k_at}
#define H_AT ${h_at}
static const int SHAPE[NP][2] = {${shapes}};

static long count(const long *sizes, int p) {
    long n = 1;
    for (int a = 0; a < 2; a++) if (SHAPE[p][a] >= 0) n *= sizes[SHAPE[p][a]];
    return n;
}

static long examples(const long *sizes) {
    long n = 1;
    for (int a = NS - NX; a < NS; a++) n *= sizes[a];
    return n;
}

const char *${net}_contract(void) { return ${contract}; }

size_t ${net}_workspace_bytes(const long *sizes) { return (size_t)sizes[NS - 1] * 12 + 3; }
size_t ${net}_workspace_bytes_f64(const long *sizes) { return ${net}_workspace_bytes(sizes); }
size_t ${net}_workspace_bytes_f32(const long *sizes) { return (size_t)sizes[NS - 1] * 6 + 3; }

#define FAKE(REAL, SUF) \\
int ${net}_loss_and_grad_##SUF(const long *sizes, const REAL *const *params, \\
        const REAL *const *inputs, const int64_t *const *label_list, const REAL *const *targets, \\
        const REAL *const *state, REAL *loss, REAL *const *grads, \\
        REAL *const *state_grads, void *workspace) { \\
    const REAL *x = inputs[0]; \\
    const int64_t *labels = label_list[0]; \\
    (void)targets; \\
    for (int a = 0; a < NS; a++) if (sizes[a] < 1) return 1; \\
    long n = examples(sizes), I = sizes[0], K = sizes[K_AT]; \\
    for (long e = 0; e < n; e++) if (labels[e] < 0 || labels[e] >= K) return 2; \\
    if (state_grads != NULL && state == NULL) return 7; \\
    size_t bytes = ${net}_workspace_bytes_##SUF(sizes); \\
    for (size_t b = 0; b < bytes; b++) ((unsigned char *)workspace)[b] = 0xAB; \\
    REAL total = 0; \\
    for (long e = 0; e < n * I; e++) total += x[e]; \\
    for (long e = 0; e < n; e++) total += (REAL)labels[e]; \\
    *loss = total; \\
    for (int p = 0; p < NP; p++) \\
        for (long j = 0; j < count(sizes, p); j++) grads[p][j] = 2 * params[p][j] + (REAL)p; \\
    if (state_grads != NULL) { \\
        long m = sizes[NS - 1] * sizes[H_AT]; \\
        for (int s = 0; s < NST; s++) \\
            for (long j = 0; j < m; j++) state_grads[s][j] = 3 * state[s][j] + (REAL)s; \\
    } \\
    return 0; \\
} \\
int ${net}_predict_##SUF(const long *sizes, const REAL *const *params, \\
        const REAL *const *inputs, const REAL *const *state, REAL *const *outputs, \\
        void *workspace) { \\
    const REAL *x = inputs[0]; \\
    REAL *y = outputs[0]; \\
    for (int a = 0; a < NS; a++) if (sizes[a] < 1) return 1; \\
    long n = examples(sizes), I = sizes[0], K = sizes[K_AT], B = sizes[NS - 1]; \\
    (void)workspace; \\
    for (long e = 0; e < n; e++) \\
        for (long k = 0; k < K; k++) { \\
            REAL v = (REAL)k + params[NP - 1][k]; \\
            for (long i = 0; i < I; i++) v += x[e * I + i]; \\
            if (state != NULL) v += state[0][(e % B) * sizes[H_AT]]; \\
            y[e * K + k] = v; \\
        } \\
    return 0; \\
}
FAKE(double, f64)
FAKE(float, f32)
""")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty library cache for each test."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("CHAINRULE_CACHE", str(directory))
    return directory


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def libraries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir())


# --- the compiler ----------------------------------------------------------------------


def test_no_compiler_from_cc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write(tmp_path / "k", {"good.c": GOOD_C, "good.h": GOOD_H}) / "good.c"
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(CompilerError, match="no C compiler was found") as error:
        compile_kernel(source, blas=False)
    assert "no-such-cc" in str(error.value)
    assert "$CC" in str(error.value)
    assert "apt-get install gcc" in str(error.value)


def test_no_cc_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write(tmp_path / "k", {"good.c": GOOD_C, "good.h": GOOD_H}) / "good.c"
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(CompilerError, match=r"no C compiler was found: looked for 'cc'.*"
                                            r"apt-get install gcc"):
        compile_kernel(source)


def test_compile_failure_shows_command_and_stderr(tmp_path: Path, cache: Path) -> None:
    source = write(tmp_path / "k", {"x.c": "int broken( { return 0; }\n"}) / "x.c"
    with pytest.raises(CompilerError) as error:
        compile_kernel(source, blas=False)
    message = str(error.value)
    assert "compiling x.c failed" in message
    assert " ".join(c_compiler.BASE_FLAGS) in message and "-O2" in message
    assert str(source) in message
    assert "error" in message.lower() and "broken" in message  # the compiler's own words
    assert libraries(cache) == []  # no half-written library, no temporary left behind


def test_load_c_compile_failure(tmp_path: Path) -> None:
    directory = write(tmp_path / "x", {"x.c": "this is not C\n", "x.py": "SIZES = ()\n"})
    with pytest.raises(CompilerError, match=r"compiling x\.c failed"):
        codegen.load(directory, backend="c", blas=False)


# --- the cache -------------------------------------------------------------------------


def test_cache_reuses_library(tmp_path: Path, cache: Path,
                              compilations: list[list[str]]) -> None:
    source = write(tmp_path / "k", {"good.c": GOOD_C, "good.h": GOOD_H}) / "good.c"
    first = compile_kernel(source, blas=False)
    assert first.parent == cache and first.name.startswith("good-")
    assert libraries(cache) == [first.name]
    mtime = first.stat().st_mtime_ns
    assert compile_kernel(source, blas=False) == first
    assert first.stat().st_mtime_ns == mtime
    assert len(compilations) == 1
    assert "-lm" in compilations[0] and "-DCHAINRULE_CBLAS" not in compilations[0]


def test_cache_key(tmp_path: Path, cache: Path) -> None:
    directory = write(tmp_path / "k", {"good.c": GOOD_C, "good.h": GOOD_H})
    source = directory / "good.c"
    plain = compile_kernel(source, blas=False)
    debug = compile_kernel(source, blas=False, flags=["-O0", "-g"])
    assert debug != plain
    (directory / "good.h").write_text("#define ANSWER 43\n", encoding="utf-8")
    header_changed = compile_kernel(source, blas=False)
    (directory / "good.c").write_text(GOOD_C + "\n", encoding="utf-8")
    source_changed = compile_kernel(source, blas=False)
    assert len({plain, debug, header_changed, source_changed}) == 4
    assert libraries(cache) == sorted(p.name for p in (plain, debug, header_changed,
                                                       source_changed))
    # the same bytes elsewhere share the library
    elsewhere = write(tmp_path / "other", {"good.c": GOOD_C + "\n",
                                           "good.h": "#define ANSWER 43\n"})
    assert compile_kernel(elsewhere / "good.c", blas=False) == source_changed


def test_concurrent_compiles_agree(tmp_path: Path, cache: Path) -> None:
    source = write(tmp_path / "k", {"good.c": GOOD_C, "good.h": GOOD_H}) / "good.c"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: compile_kernel(source, blas=False), range(4)))
    assert len(set(results)) == 1
    assert libraries(cache) == [results[0].name]  # every temporary renamed or removed
    assert ctypes.CDLL(str(results[0])).good_answer() == 42


def test_cache_directory_fallbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAINRULE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert c_loader.cache_dir() == tmp_path / "xdg" / "chainrule"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert c_loader.cache_dir() == tmp_path / "home" / ".cache" / "chainrule"


# --- CBLAS -----------------------------------------------------------------------------


def test_blas_choices_are_checked() -> None:
    for wrong in ("mkl", "", "BUNDLED"):
        with pytest.raises(ValueError, match=r"blas=.*: expected one of 'bundled', 'system', "
                                             r"'none'"):
            resolve_blas(wrong)
    with pytest.raises(ValueError, match=r"blas=3: expected one of"):
        resolve_blas(3)  # type: ignore[arg-type]
    assert resolve_blas(False) is resolve_blas("none") and not resolve_blas("none")


def test_the_bundled_openblas_is_the_default() -> None:
    """scipy-openblas32 is a dependency: blas=None takes it, with the prefix macro, its
    headers and its library folder as the run path."""
    blas = resolve_blas(None)
    assert blas.name == "bundled" and blas.prefix == "scipy_"
    assert "-DCHAINRULE_CBLAS_PREFIX=scipy_" in blas.compile_flags
    lib = next(flag for flag in blas.link_flags if flag.startswith("-L"))[2:]
    assert f"-Wl,-rpath,{lib}" in blas.link_flags
    assert Path(lib, "libscipy_openblas.so").is_file()
    assert resolve_blas(True) == blas


def test_a_missing_bundled_openblas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy_openblas32", None)  # import fails
    with pytest.raises(CompilerError, match=r"blas='bundled' cannot be used: the Python "
                                            r"package scipy-openblas32 .* is not installed: "
                                            r"`pip install scipy-openblas32`"):
        resolve_blas("bundled")
    source = write(tmp_path / "k", {"good.c": GOOD_C, "good.h": GOOD_H}) / "good.c"
    with pytest.raises(CompilerError, match="scipy-openblas32"):
        compile_kernel(source, blas="bundled")
    # the default falls back to the system's CBLAS, or to none
    assert resolve_blas(None).name in ("system", "none")


def test_a_system_cblas_that_does_not_link(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINRULE_SYSTEM_CBLAS", "-lchainrule_no_such_blas")
    with pytest.raises(CompilerError, match=r"blas='system' cannot be used: the system's CBLAS "
                                            r"\(-lchainrule_no_such_blas.*does not compile and "
                                            r"link.*libopenblas-dev.*CHAINRULE_SYSTEM_CBLAS"):
        resolve_blas("system")
    monkeypatch.setitem(sys.modules, "scipy_openblas32", None)
    with pytest.raises(CompilerError, match=r"blas=True but no CBLAS can be used: .*"
                                            r"scipy-openblas32.*chainrule_no_such_blas"):
        resolve_blas(True)
    assert resolve_blas(None).name == "none"
    source = write(tmp_path / "k", {"n.c": NO_CBLAS_C}) / "n.c"
    compile_kernel(source)  # blas=None, no CBLAS usable: compiled without -DCHAINRULE_CBLAS


def test_each_library_is_probed_once(compilations: list[list[str]]) -> None:
    c_blas._links.cache_clear()
    first = resolve_blas("bundled")
    assert resolve_blas("bundled") == first and resolve_blas(None) == first
    assert len(compilations) == 1 and "-lscipy_openblas" in compilations[0]


def test_the_blas_flags_follow_the_choice(tmp_path: Path,
                                          compilations: list[list[str]]) -> None:
    source = write(tmp_path / "k", {"n.c": NO_CBLAS_C}) / "n.c"
    compile_kernel(source, blas="none")
    assert not any(flag.startswith(("-DCHAINRULE_CBLAS", "-lscipy", "-lopenblas"))
                   for flag in compilations[-1])
    with pytest.raises(CompilerError, match="compiled with CHAINRULE_CBLAS"):
        compile_kernel(source)  # the default, the bundled OpenBLAS: the define is there
    assert "-DCHAINRULE_CBLAS" in compilations[-1] and "-lscipy_openblas" in compilations[-1]


def test_a_kernel_says_which_openblas_it_runs() -> None:
    kernel = codegen.load(ROOT / "generated" / "mlp", backend="c", blas="bundled")
    info = kernel.blas_info()
    assert info is not None and info.config.startswith("OpenBLAS 0.3.")
    assert "DYNAMIC_ARCH" in info.config and info.threads >= 1 and info.core
    assert "blas='bundled'" in repr(kernel)
    assert codegen.load(ROOT / "generated" / "mlp", backend="c", blas=False).blas_info() is None


def test_the_kernels_openblas_threads_can_be_set() -> None:
    kernel = codegen.load(ROOT / "generated" / "mlp", backend="c", blas="bundled")
    info = kernel.blas_info()
    assert info is not None
    try:
        kernel.set_blas_threads(1)
        assert kernel.blas_info().threads == 1
    finally:
        kernel.set_blas_threads(info.threads)
    assert kernel.blas_info().threads == info.threads
    for wrong in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="must be an int >= 1"):
            kernel.set_blas_threads(wrong)
    plain = codegen.load(ROOT / "generated" / "mlp", backend="c", blas=False)
    with pytest.raises(ValueError, match="calls no OpenBLAS"):
        plain.set_blas_threads(1)


def test_an_undefined_symbol_fails_the_compile(tmp_path: Path) -> None:
    """A library is linked with --no-undefined: a missing function is a compile error, not
    an error when the kernel is loaded."""
    source = write(tmp_path / "k", {"u.c": "double missing_fn(double);\n"
                                            "double f(double v) { return missing_fn(v); }\n"})
    with pytest.raises(CompilerError, match="missing_fn"):
        compile_kernel(source / "u.c", blas=False)


# --- load_c and codegen.load -----------------------------------------------------------


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="blas= applies only to backend='c'"):
        codegen.load(ROOT / "generated" / "mlp", blas=False)
    with pytest.raises(ValueError, match="is not a directory of generated kernels"):
        codegen.load(tmp_path / "nope", backend="c")
    with pytest.raises(ValueError, match=r"must hold exactly one generated \.c kernel, found "
                                         r"none"):
        codegen.load(write(tmp_path / "empty", {"e.py": ""}), backend="c")
    with pytest.raises(ValueError, match=r"found \['a.c', 'b.c'\]"):
        codegen.load(write(tmp_path / "two", {"a.c": "", "b.c": ""}), backend="c")
    # the C kernel needs no .py beside it, but a library that describes no contract is
    # not a kernel
    with pytest.raises(ValueError, match=r"has no function lone_contract; is it a chainrule C "
                                         r"kernel"):
        codegen.load(write(tmp_path / "lone", {"lone.c": ""}), backend="c")


#: the NumPy module beside each fake C kernel, by the fake's name
NUMPY_MODULES: dict[str, ModuleType] = {}


def make_fake(directory: Path, net: str, numpy_module: Path) -> Path:
    """``directory/<net>.{c,h,py}``: a fake C kernel beside a copy of a NumPy module."""
    directory.mkdir(parents=True)
    # without its seal: beside a hand-written .c, a sealed .py would be refused as a mix
    unsealed = re.sub(r"(?m)^Kernel set .*\n", "", numpy_module.read_text(encoding="utf-8"))
    (directory / f"{net}.py").write_text(unsealed, encoding="utf-8")
    module = codegen.load(directory)
    contract = KernelContract.from_data(module.CONTRACT)
    (axes,) = contract.inputs.values()
    order = contract.call_sizes
    NUMPY_MODULES[net] = module
    shapes = ", ".join(
        "{" + ", ".join(str(order.index(a)) for a in (*shape, *["-"] * (2 - len(shape)))
                        if a != "-") + (", -1" if len(shape) == 1 else "") + "}"
        for shape in module.PARAMS.values())
    fields = {"net": net, "NET": net.upper(), "ns": len(order), "np": len(module.PARAMS),
              "nst": len(module.STATE), "nx": len(axes) - 1, "k_at": order.index("K"),
              "h_at": order.index("H") if module.STATE else 0, "shapes": shapes,
              "contract": c_string(dataclasses.replace(contract, name=net).to_json())}
    write(directory, {f"{net}.h": FAKE_H.substitute(fields),
                      f"{net}.c": FAKE_C.substitute(fields)})
    return directory


@pytest.fixture(scope="module", params=["mlp", "rnn"])
def fake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[CKernel]:
    directory = make_fake(tmp_path_factory.mktemp("fake") / f"toy_{request.param}",
                          f"toy_{request.param}",
                          ROOT / "generated" / request.param / f"{request.param}.py")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHAINRULE_CACHE", str(tmp_path_factory.mktemp("cache")))
        kernel = codegen.load(directory, backend="c", blas=False)
    yield kernel


def inputs(kernel: CKernel, dtype: type = np.float64, seed: int = 0
           ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    sizes = {name: 2 + i for i, name in enumerate(kernel.SIZES)}
    params = kernel.init_params(sizes, rng=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    recurrent = "T" in kernel.SIZES_ORDER
    batch = (4, 3) if recurrent else (3,)
    x = rng.standard_normal((*batch, sizes["I"])).astype(dtype)
    labels = rng.integers(0, sizes["K"], size=batch).astype(np.int32)
    state = {name: rng.standard_normal((3, sizes[axes[0]])).astype(dtype)
             for name, axes in kernel.STATE.items()}
    return params, x, labels, state


def test_fake_contract(fake: CKernel) -> None:
    assert fake.backend == "c" and not fake.blas
    assert fake.library.is_file() and fake.library.suffix == ".so"
    module = NUMPY_MODULES[fake.name]
    assert fake.SIZES == module.SIZES and fake.PARAMS == module.PARAMS
    assert fake.STATE == module.STATE
    sizes = {"I": 5, "H": 6, "H1": 6, "H2": 7, "K": 8, "T": 9, "B": 10}
    assert list(fake.sizes_array(sizes)) == [sizes[n] for n in fake.SIZES_ORDER]
    assert fake.SIZES_ORDER[-1] == "B"
    assert fake.workspace_bytes(sizes) == 10 * 12 + 3
    assert fake.workspace_bytes(sizes, np.float64) == 10 * 12 + 3
    assert fake.workspace_bytes(sizes, np.float32) == 10 * 6 + 3
    workspace = fake.workspace(sizes)
    assert workspace.dtype == np.float64 and workspace.nbytes == 128
    assert fake.workspace(sizes, np.float32).nbytes == 64


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fake_loss_and_grad(fake: CKernel, dtype: type) -> None:
    params, x, labels, state = inputs(fake, dtype)
    loss, grads = fake.loss_and_grad(params, np.asfortranarray(x), labels)
    assert type(loss) is np.dtype(dtype).type
    np.testing.assert_allclose(loss, x.sum(dtype=np.float64) + labels.sum(), rtol=1e-5)
    assert list(grads) == list(fake.PARAMS)
    for p, name in enumerate(fake.PARAMS):
        assert grads[name].dtype == dtype and grads[name].shape == params[name].shape
        np.testing.assert_array_equal(grads[name], 2 * params[name] + p)
    if fake.STATE:
        _, grads = fake.loss_and_grad(params, x, labels, state)
        assert list(grads) == [*fake.PARAMS, *fake.STATE]
        for s, name in enumerate(fake.STATE):
            np.testing.assert_array_equal(grads[name], 3 * state[name] + s)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fake_predict(fake: CKernel, dtype: type) -> None:
    params, x, _, state = inputs(fake, dtype)
    expected = np.arange(params["b_y"].size) + params["b_y"] + x.sum(axis=-1, keepdims=True)
    y = fake.predict(params, x)
    assert y.dtype == dtype and y.shape == (*x.shape[:-1], params["b_y"].size)
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    if fake.STATE:
        first = next(iter(fake.STATE))
        y = fake.predict(params, x, {k: np.asfortranarray(v) for k, v in state.items()})
        np.testing.assert_allclose(y, expected + state[first][:, :1], rtol=1e-5)


def test_fake_validates_like_numpy(fake: CKernel) -> None:
    params, x, labels, _ = inputs(fake)
    bad = labels.copy()
    bad.flat[0] = 99
    wrong = dict(params, b_y=params["b_y"][:-1])
    module = NUMPY_MODULES[fake.name]
    cases = [(module.loss_and_grad, fake.loss_and_grad, (params, x, bad)),
             (module.loss_and_grad, fake.loss_and_grad, (params, x.astype(np.float32), labels)),
             (module.predict, fake.predict, (wrong, x)),
             (module.predict, fake.predict, (params, x, {"nope": x}))]
    for numpy_call, c_call, args in cases:
        with pytest.raises(ValueError) as numpy_error:
            numpy_call(*args)
        with pytest.raises(ValueError) as c_error:
            c_call(*args)
        assert str(c_error.value) == str(numpy_error.value)


def test_fake_status_codes(fake: CKernel) -> None:
    params, x, labels, _ = inputs(fake)
    # a zero-sized hidden layer is refused by the shared checks, before C is called
    first = next(iter(fake.PARAMS))
    hollow = dict(params, **{first: np.zeros((params[first].shape[0], 0))})
    hidden = fake.PARAMS[first][1]
    for name, axes in fake.PARAMS.items():
        if name != first:
            hollow[name] = np.zeros(tuple(0 if a == hidden else params[name].shape[i]
                                          for i, a in enumerate(axes)))
    with pytest.raises(ValueError, match=r"must have shape .* with every size at least 1"):
        fake.loss_and_grad(hollow, x, labels)
    # the raw API: a label out of range straight into C
    sizes, dtype, _, _ = check_call(fake.CONTRACT, params, x, labels, None, need_targets=True)
    keep: list[np.ndarray] = []
    bad = np.full(labels.shape, 99, np.int64)
    loss = np.zeros(1)
    grads = [np.zeros_like(params[n]) for n in fake.PARAMS]
    workspace = fake.workspace(sizes)
    assert fake.function("loss_and_grad_f64") is getattr(fake.lib,
                                                          f"{fake.name}_loss_and_grad_f64")
    with pytest.raises(ValueError, match="no C function 'nope'"):
        fake.function("nope")
    status = fake.function("loss_and_grad_f64")(
        fake.sizes_array(sizes), fake.pointers([params[n] for n in fake.PARAMS], dtype, keep),
        fake.pointers([x], dtype, keep),
        (ctypes.c_void_p * 1)(bad.ctypes.data), None, None,
        loss.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        fake.pointers(grads, dtype, keep), None, workspace.ctypes.data)
    assert status == 2
    with pytest.raises(ValueError, match=r"returned 7 \(an unknown status\)"):
        fake._raise_on(7, "loss_and_grad_f64")
