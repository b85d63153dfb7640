"""Hostile arrays and sizes (issue 11): refused with a clear error, never run into.

``numpy.matrix`` and masked arrays passed the kernels' ``isinstance(ndarray)``
check and then failed (or computed something else) inside the NumPy kernel,
whose ``*`` and ``@`` they redefine: every array argument must now be a plain
``numpy.ndarray``, for the NumPy module and the C object alike (it reuses the
module's checks). ``<net>_workspace_bytes`` multiplied signed longs unchecked;
it now returns 0 for sizes whose workspace cannot be counted, and the kernels
refuse those sizes before computing any offset.
"""

from __future__ import annotations

import ctypes
import shutil
from pathlib import Path

import numpy as np
import pytest

from chainrule import codegen

GENERATED = Path(__file__).resolve().parents[1] / "generated"
NETWORKS = ["mlp", "rnn", "lstm", "lstm_no_peepholes"]
COMPILER = shutil.which("cc") or shutil.which("gcc")
BACKENDS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(
    COMPILER is None, reason="no C compiler (cc) on this machine"))]
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
#: the C kernels' limit on the workspace's element count: a long (they index with long), and
#: its bytes a size_t
LIMIT = min(2 ** (8 * ctypes.sizeof(ctypes.c_long) - 1) - 1,
            (2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1) // 8)


class Tagged(np.ndarray):
    """An ndarray subclass of one's own: as foreign to the kernel as numpy.matrix."""


@pytest.fixture(scope="module", params=BACKENDS)
def rnn(request):
    return codegen.load(GENERATED / "rnn", backend=request.param)


@pytest.fixture(scope="module", params=BACKENDS)
def mlp(request):
    return codegen.load(GENERATED / "mlp", backend=request.param)


def mlp_call(kernel):
    sizes = {"I": 3, "H1": 4, "H2": 2, "K": 3}
    params = kernel.init_params(sizes, rng=0)
    x = np.random.default_rng(1).normal(size=(5, 3))
    labels = np.array([0, 1, 2, 1, 0])
    return params, x, labels


SUBCLASSES = {
    "matrix": np.asmatrix,
    "masked": np.ma.masked_array,
    "subclass": lambda a: a.view(Tagged),
}


@pytest.mark.parametrize("kind", SUBCLASSES)
def test_x_that_is_not_a_plain_ndarray_is_refused(mlp, kind: str) -> None:
    params, x, labels = mlp_call(mlp)
    loss, _ = mlp.loss_and_grad(params, x, labels)  # the plain arrays work
    assert np.isfinite(loss)
    bad = SUBCLASSES[kind](x)
    assert isinstance(bad, np.ndarray) and type(bad) is not np.ndarray
    for call in (lambda: mlp.loss_and_grad(params, bad, labels),
                 lambda: mlp.predict(params, bad)):
        with pytest.raises(ValueError, match=r"^x must be a numpy.ndarray of shape \(B, I\), "
                                             r"got .*a subclass of numpy.ndarray"):
            call()


@pytest.mark.parametrize("kind", SUBCLASSES)
def test_a_parameter_that_is_not_a_plain_ndarray_is_refused(mlp, kind: str) -> None:
    params, x, labels = mlp_call(mlp)
    bad = SUBCLASSES[kind](params["W_xh1"])
    with pytest.raises(ValueError, match=r"^params\['W_xh1'\] must be a numpy.ndarray of shape "
                                         r"\(I, H1\), got .*a subclass of numpy.ndarray"):
        mlp.loss_and_grad({**params, "W_xh1": bad}, x, labels)


@pytest.mark.parametrize("kind", ["masked", "subclass"])  # a matrix is always 2-D
def test_labels_that_are_not_a_plain_ndarray_are_refused(mlp, kind: str) -> None:
    params, x, labels = mlp_call(mlp)
    with pytest.raises(ValueError, match=r"^labels must be an integer numpy.ndarray of shape "
                                         r"\(B,\), got .*a subclass of numpy.ndarray"):
        mlp.loss_and_grad(params, x, SUBCLASSES[kind](labels))


@pytest.mark.parametrize("kind", SUBCLASSES)
def test_a_state_that_is_not_a_plain_ndarray_is_refused(rnn, kind: str) -> None:
    sizes = {"I": 2, "H": 3, "K": 2}
    params = rnn.init_params(sizes, rng=0)
    x = np.zeros((4, 2, 2))
    labels = np.zeros((4, 2), dtype=np.int64)
    h0 = SUBCLASSES[kind](np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^state\['h0'\] must be a numpy.ndarray of shape "
                                         r"\(B, H\), got .*a subclass"):
        rnn.loss_and_grad(params, x, labels, {"h0": h0})


def test_the_masked_arrays_mask_is_named_not_ignored(mlp) -> None:
    """numpy.asarray would drop a mask silently; the kernel says what it got instead."""
    params, x, labels = mlp_call(mlp)
    with pytest.raises(ValueError, match=r"numpy.ma.MaskedArray"):
        mlp.loss_and_grad(params, np.ma.masked_array(x, mask=x > 0), labels)


# --- the C workspace --------------------------------------------------------------------------

needs_cc = pytest.mark.skipif(COMPILER is None, reason="no C compiler (cc) on this machine")


@pytest.fixture(scope="module", params=NETWORKS)
def c_kernel(request):
    return codegen.load(GENERATED / request.param, backend="c")


def sizes_with(kernel, value: int, **overrides: int) -> dict[str, int]:
    return {name: overrides.get(name, value) for name in kernel.SIZES_ORDER}


@needs_cc
def test_huge_sizes_give_a_workspace_of_zero(c_kernel) -> None:
    assert c_kernel.workspace_bytes(sizes_with(c_kernel, 1)) > 0
    for value in (2**40, 2**62, 2**63 - 1):
        assert c_kernel.workspace_bytes(sizes_with(c_kernel, value)) == 0, value
    assert c_kernel.workspace_bytes(sizes_with(c_kernel, 1, B=2**62)) == 0
    with pytest.raises(ValueError, match="larger than this machine can address"):
        c_kernel.workspace(sizes_with(c_kernel, 2**40))


@needs_cc
def test_invalid_sizes_give_a_workspace_of_zero(c_kernel) -> None:
    for value in (0, -1, -(2**40)):
        assert c_kernel.workspace_bytes(sizes_with(c_kernel, 2, B=value)) == 0


@needs_cc
def test_the_workspace_is_exact_up_to_the_limit_and_zero_beyond() -> None:
    """In the MLP every region has a batch axis, so with the other sizes 1 the workspace
    holds ``n·B`` doubles: exact for the largest B that fits, 0 for the next one."""
    kernel = codegen.load(GENERATED / "mlp", backend="c")
    per_example = kernel.workspace_bytes(sizes_with(kernel, 1)) // 8
    assert kernel.workspace_bytes(sizes_with(kernel, 1, B=2**30)) == 8 * per_example * 2**30
    largest = LIMIT // per_example
    assert kernel.workspace_bytes(sizes_with(kernel, 1, B=largest)) == 8 * per_example * largest
    assert kernel.workspace_bytes(sizes_with(kernel, 1, B=largest + 1)) == 0


@needs_cc
def test_the_kernels_refuse_huge_sizes_before_touching_memory(c_kernel) -> None:
    """Sizes of 2**40 with NULL for every pointer: CHAINRULE_BAD_SIZE, no crash."""
    net = c_kernel.name
    lib = c_kernel.lib
    order = c_kernel.SIZES_ORDER
    sizes = (ctypes.c_long * len(order))(*[2**40] * len(order))
    for function, arguments in ((f"{net}_loss_and_grad_f64", 10), (f"{net}_predict_f64", 6),
                                (f"{net}_loss_and_grad_f32", 10), (f"{net}_predict_f32", 6)):
        call = lib[function]
        call.restype = ctypes.c_int
        assert call(sizes, *[None] * (arguments - 1)) == 1, function  # CHAINRULE_BAD_SIZE


def test_the_header_says_what_zero_means() -> None:
    header = (GENERATED / "mlp" / "mlp.h").read_text()
    assert "Each returns 0 when the sizes are invalid" in header
    assert "CHAINRULE_BAD_SIZE when the sizes are invalid" in header
