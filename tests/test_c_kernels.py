"""The generated C kernels: against NumPy and finite differences, strict compiles, sanitizers.

The C kernel is a second printer of the plan the NumPy kernel comes from, so
the two must agree to rounding (float64 within 1e-12 relative, float32 within
1e-4) on random sizes including the edges; finite differences then check the C
gradients on their own. Every kernel compiles with ``-std=c99 -Wall -Wextra
-Werror -pedantic`` (with and without CBLAS), and one run of every kernel under
AddressSanitizer and UndefinedBehaviorSanitizer covers B=1 and T=1.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from chainrule import codegen
from chainrule.codegen.backends.c import loader as c_loader
from chainrule.codegen.backends.c.blas import resolve_blas
from tests.cases import case_id, random_inputs, relative_error
from tests.gradcheck import finite_difference_errors

GENERATED = Path(__file__).resolve().parents[1] / "generated"
NETWORKS = ["mlp", "rnn", "lstm", "lstm_no_peepholes"]
COMPILER = shutil.which("cc") or shutil.which("gcc")

pytestmark = pytest.mark.skipif(COMPILER is None, reason="no C compiler (cc) on this machine")

# (seed, T, B, I, H, K): T is ignored by the MLP
CASES = [(0, 1, 1, 1, 1, 2), (1, 1, 3, 2, 4, 2), (2, 4, 1, 3, 1, 3), (3, 3, 5, 4, 3, 5),
         (4, 7, 2, 6, 5, 2)]


@pytest.fixture(scope="module", params=NETWORKS)
def pair(request):
    directory = GENERATED / request.param
    return codegen.load(directory), codegen.load(directory, backend="c")


def sizes_of(kernel, I, H, K):
    values = {"I": I, "H": H, "K": K, "H1": H, "H2": max(H - 1, 1)}
    return {name: values[name] for name in kernel.SIZES}


def inputs(kernel, seed, T, B, I, H, K, dtype=np.float64, with_state=True):
    return random_inputs(kernel, seed, T, B, I, H, K, dtype=dtype, with_state=with_state,
                         scale=0.3)


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-4)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_c_matches_numpy(pair, case, dtype, tolerance) -> None:
    numpy_kernel, c_kernel = pair
    for with_state in (True, False):
        params, x, labels, state = inputs(numpy_kernel, *case, dtype=dtype,
                                          with_state=with_state)
        loss, grads = c_kernel.loss_and_grad(params, x, labels, state)
        ref_loss, ref_grads = numpy_kernel.loss_and_grad(params, x, labels, state)
        assert isinstance(loss, np.dtype(dtype).type)
        assert loss == pytest.approx(ref_loss, rel=tolerance)
        assert set(grads) == set(ref_grads)
        for name, grad in grads.items():
            assert grad.dtype == dtype and grad.shape == ref_grads[name].shape
            assert relative_error(grad, ref_grads[name]) < tolerance, name
        y = c_kernel.predict(params, x, state)
        np.testing.assert_allclose(y, numpy_kernel.predict(params, x, state),
                                   rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("case", CASES[:3], ids=case_id)
def test_c_gradients_match_finite_differences(pair, case) -> None:
    _, c_kernel = pair
    params, x, labels, state = inputs(c_kernel, *case)
    errors = finite_difference_errors(c_kernel, params, x, labels, state)
    assert max(errors.values()) < 1e-6, errors


def test_c_validates_like_numpy(pair) -> None:
    numpy_kernel, c_kernel = pair
    params, x, labels, state = inputs(numpy_kernel, 5, 3, 2, 2, 3, 3)
    bad = [(params, x, labels + 3, state), ({**params, "b_y": params["b_y"][:1]}, x, labels,
                                            state),
           (params, x.astype(np.float32), labels, state)]
    for args in bad:
        with pytest.raises(ValueError) as c_error:
            c_kernel.loss_and_grad(*args)
        with pytest.raises(ValueError) as numpy_error:
            numpy_kernel.loss_and_grad(*args)
        assert str(c_error.value) == str(numpy_error.value)


def raw_call(c_kernel, sizes: list[int], labels: np.ndarray, params: dict) -> int:
    """Call ``<net>_loss_and_grad_f64`` directly, bypassing the Python checks."""
    name = Path(c_kernel.library).name
    lib = c_kernel.lib
    net = next(n for n in NETWORKS[::-1] if hasattr(lib, f"{n}_loss_and_grad_f64")
               and n in name)
    c_sizes = (ctypes.c_long * len(sizes))(*sizes)
    workspace_bytes = lib[f"{net}_workspace_bytes"]
    workspace_bytes.restype = ctypes.c_size_t
    workspace = np.zeros(workspace_bytes(c_sizes) // 8 + 1)
    params = {n: params[n] for n in c_kernel.PARAMS}  # the C order is PARAMS'
    pointers = (ctypes.c_void_p * len(params))(*[a.ctypes.data for a in params.values()])
    grads = {n: np.zeros_like(a) for n, a in params.items()}
    grad_pointers = (ctypes.c_void_p * len(grads))(*[a.ctypes.data for a in grads.values()])
    x = np.zeros(int(np.prod(np.abs(sizes))) + 16)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    loss = np.zeros(1)
    function = lib[f"{net}_loss_and_grad_f64"]

    def address(array: np.ndarray) -> ctypes.c_void_p:
        return ctypes.c_void_p(array.ctypes.data)

    inputs = (ctypes.c_void_p * 1)(x.ctypes.data)
    label_pointers = (ctypes.c_void_p * 1)(labels.ctypes.data)
    return function(c_sizes, pointers, inputs, label_pointers, None, None, address(loss),
                    grad_pointers, None, address(workspace))


def test_status_codes(pair) -> None:
    numpy_kernel, c_kernel = pair
    params, _, labels, _ = inputs(numpy_kernel, 6, 2, 2, 2, 3, 3)
    sizes = [*sizes_of(numpy_kernel, 2, 3, 3).values(), *([2] if numpy_kernel.STATE else []),
             2]
    assert raw_call(c_kernel, sizes, labels, params) == 0
    assert raw_call(c_kernel, sizes, labels + 3, params) == 2
    negative = labels.copy()
    negative.flat[0] = -1
    assert raw_call(c_kernel, sizes, negative, params) == 2
    assert raw_call(c_kernel, [0, *sizes[1:]], labels, params) == 1
    assert raw_call(c_kernel, [*sizes[:-1], -1], labels, params) == 1


# --- compiling: strict warnings, sanitizers ----------------------------------------------------


#: every CBLAS choice; the bundled one is a dependency, the system one optional
BLAS_CHOICES = ["none", "bundled", "system"]
WHY_NOT = {"bundled": "the bundled OpenBLAS cannot be used (pip install scipy-openblas32)",
           "system": "no system CBLAS here (Debian: apt-get install libopenblas-dev)"}


def skip_unless_usable(blas: str) -> None:
    if not c_loader.blas_available(blas):
        pytest.skip(WHY_NOT[blas])


@pytest.mark.parametrize("net", NETWORKS)
@pytest.mark.parametrize("blas", BLAS_CHOICES)
def test_compiles_without_warnings(net: str, blas: str, tmp_path: Path) -> None:
    if blas != "none":
        skip_unless_usable(blas)
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-c"]
    flags += list(resolve_blas(blas).compile_flags)
    result = subprocess.run([COMPILER, *flags, str(GENERATED / net / f"{net}.c"), "-o",
                             str(tmp_path / f"{net}.o")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


HARNESS = r"""
#include "{net}.h"
#include <stdio.h>
#include <stdlib.h>

static unsigned long seed = 12345;
static double next_random(void) {{
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    return (double)(seed >> 11) / 9007199254740992.0 - 0.5;
}}

static void *filled(size_t count, int single) {{
    size_t n;
    void *memory = malloc((count ? count : 1) * (single ? sizeof(float) : sizeof(double)));
    for (n = 0; n < count; ++n) {{
        if (single) ((float *)memory)[n] = (float)next_random();
        else ((double *)memory)[n] = next_random();
    }}
    return memory;
}}

int main(int argc, char **argv) {{
    long sizes[{count}];
    size_t param_sizes[{params}];
    size_t x_count, label_count, y_count, state_count;
    int single, with_state, status, n;
    if (argc != {count} + 1) return 99;
    for (n = 0; n < {count}; ++n) sizes[n] = atol(argv[n + 1]);
    {unpack}
    {param_sizes}
    x_count = (size_t)({x_count});
    label_count = (size_t)({label_count});
    y_count = label_count * (size_t)K;
    state_count = (size_t)B * (size_t)({state_width});
    for (single = 0; single <= 1; ++single) {{
        for (with_state = 0; with_state <= {has_state}; ++with_state) {{
            void *params[{params}], *grads[{params}];
            void *state[{states_or_one}], *state_grads[{states_or_one}];
            void *x = filled(x_count, single), *y = filled(y_count, single);
            int64_t *labels = malloc(label_count * sizeof(int64_t));
            /* each precision's own size: AddressSanitizer sees a float kernel that
             * reaches past the floats it asked for */
            void *workspace = malloc(single ? {net}_workspace_bytes_f32(sizes)
                                            : {net}_workspace_bytes_f64(sizes));
            double loss64;
            float loss32;
            size_t i;
            for (i = 0; i < label_count; ++i) labels[i] = (int64_t)(i % (size_t)K);
            for (n = 0; n < {params}; ++n) {{
                params[n] = filled(param_sizes[n], single);
                grads[n] = filled(param_sizes[n], single);
            }}
            for (n = 0; n < {states_or_one}; ++n) {{
                state[n] = filled(state_count, single);
                state_grads[n] = filled(state_count, single);
            }}
            const int64_t *label_list[1];
            void *inputs[1], *outputs[1];
            label_list[0] = labels;
            inputs[0] = x;
            outputs[0] = y;
            if (single) {{
                status = {net}_loss_and_grad_f32(sizes, (const float *const *)params,
                    (const float *const *)inputs, label_list, NULL,
                    with_state ? (const float *const *)state : NULL, &loss32, (float *const *)grads,
                    with_state ? (float *const *)state_grads : NULL, workspace);
                status |= {net}_predict_f32(sizes, (const float *const *)params,
                    (const float *const *)inputs, with_state ? (const float *const *)state : NULL,
                    (float *const *)outputs, workspace);
            }} else {{
                status = {net}_loss_and_grad_f64(sizes, (const double *const *)params,
                    (const double *const *)inputs, label_list, NULL,
                    with_state ? (const double *const *)state : NULL, &loss64,
                    (double *const *)grads, with_state ? (double *const *)state_grads : NULL,
                    workspace);
                status |= {net}_predict_f64(sizes, (const double *const *)params,
                    (const double *const *)inputs, with_state ? (const double *const *)state : NULL,
                    (double *const *)outputs, workspace);
            }}
            if (status != 0) {{ printf("status %d\n", status); return 1; }}
            labels[label_count - 1] = K;
            if (single ? {net}_loss_and_grad_f32(sizes, (const float *const *)params,
                             (const float *const *)inputs, label_list, NULL, NULL, &loss32,
                             (float *const *)grads, NULL, workspace) != CHAINRULE_BAD_LABEL
                       : {net}_loss_and_grad_f64(sizes, (const double *const *)params,
                             (const double *const *)inputs, label_list, NULL, NULL, &loss64,
                             (double *const *)grads, NULL, workspace) != CHAINRULE_BAD_LABEL)
                return 2;
            for (n = 0; n < {params}; ++n) {{ free(params[n]); free(grads[n]); }}
            for (n = 0; n < {states_or_one}; ++n) {{ free(state[n]); free(state_grads[n]); }}
            free(x); free(y); free(labels); free(workspace);
        }}
    }}
    printf("ok\n");
    return 0;
}}
"""


def harness_source(kernel, net: str) -> str:
    recurrent = bool(kernel.STATE)
    names = [*kernel.SIZES, *(["T"] if recurrent else []), "B"]
    unpack = " ".join(f"long {n} = sizes[{i}];" for i, n in enumerate(names))
    unpack += " " + " ".join(f"(void){n};" for n in names)
    param_sizes = " ".join(f"param_sizes[{n}] = (size_t)" + "*".join(["1", *axes]) + ";"
                           for n, axes in enumerate(kernel.PARAMS.values()))
    width = next(iter(kernel.STATE.values()))[0] if recurrent else "1"
    return HARNESS.format(
        net=net, count=len(names), param_sizes=param_sizes, unpack=unpack,
        x_count="T*B*I" if recurrent else "B*I", label_count="T*B" if recurrent else "B",
        state_width=width, has_state=int(recurrent), params=len(kernel.PARAMS),
        states_or_one=max(len(kernel.STATE), 1))


def sanitizers_available(tmp_path: Path) -> bool:
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    result = subprocess.run([COMPILER, "-fsanitize=address,undefined", str(probe), "-o",
                             str(tmp_path / "probe")], capture_output=True, text=True)
    return result.returncode == 0


@pytest.mark.parametrize("net", NETWORKS)
def test_sanitizers(net: str, tmp_path: Path) -> None:
    if not sanitizers_available(tmp_path):
        pytest.skip("the C compiler has no AddressSanitizer/UBSan runtime (Debian: gcc's "
                    "libasan and libubsan come with gcc)")
    kernel = codegen.load(GENERATED / net)
    (tmp_path / "harness.c").write_text(harness_source(kernel, net))
    for suffix in (".c", ".h"):
        shutil.copy(GENERATED / net / f"{net}{suffix}", tmp_path)
    program = tmp_path / "run"
    build = subprocess.run(
        [COMPILER, "-std=c99", "-g", "-O1", "-fsanitize=address,undefined",
         "-fno-omit-frame-pointer", "-fno-sanitize-recover=all", str(tmp_path / f"{net}.c"),
         str(tmp_path / "harness.c"), "-o", str(program), "-lm"],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    count = len(kernel.SIZES) + (1 if kernel.STATE else 0) + 1
    edge = ["1"] * count
    edge[len(kernel.SIZES) - 1] = "2"  # K = 2 classes; every other size (T and B too) is 1
    for sizes in (edge, ["3", "4", "2", "5", "3"][:count]):
        run = subprocess.run([str(program), *sizes], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0 and run.stdout.strip() == "ok", (sizes, run.stdout,
                                                                     run.stderr[-3000:])


@pytest.mark.parametrize("blas", BLAS_CHOICES)
@pytest.mark.parametrize("net", NETWORKS)
def test_large_products_match_numpy(net: str, blas: str) -> None:
    """Sizes where the products pass CHAINRULE_BLAS_MIN_WORK: through each CBLAS, and the
    loops."""
    if blas != "none":
        skip_unless_usable(blas)
    numpy_kernel = codegen.load(GENERATED / net)
    c_kernel = codegen.load(GENERATED / net, backend="c", blas=blas)
    assert c_kernel.blas.name == blas
    for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-4)):
        params, x, labels, state = inputs(numpy_kernel, 8, 3, 40, 50, 60, 10, dtype=dtype)
        loss, grads = c_kernel.loss_and_grad(params, x, labels, state)
        ref_loss, ref_grads = numpy_kernel.loss_and_grad(params, x, labels, state)
        assert loss == pytest.approx(ref_loss, rel=tolerance)
        for name, grad in grads.items():
            assert relative_error(grad, ref_grads[name]) < tolerance, name
