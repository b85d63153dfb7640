"""Loading generated C kernels: ``codegen.load(dir, backend="c")``.

Role in DESIGN.md's picture: the C side of the kernel contract. ``generated/<net>/``
holds ``<net>.c`` and ``<net>.h`` beside the NumPy module ``<net>.py``; ``load_c``
reads them (checked together through ``kernel_set.read_checked``), has them compiled
into the verified library cache (``cache.py``, with the compiler of ``compiler.py``)
and wraps the shared library in a ``CKernel`` with the same API as the NumPy module
(SIZES, PARAMS, STATE, init_params, loss_and_grad, predict). The library describes its
own contract (``NET_contract()``, the JSON of ``plan/contract.py``); validation is
``codegen.kernel_checks``, the implementation the NumPy module holds a copy of, so both
backends reject bad input with the same messages; the C functions only see well-formed,
C-contiguous arrays. The C kernel needs nothing of the ``.py`` beside it. This module
also re-exports the public names of ``compiler.py`` and ``cache.py`` (``__all__``).

The C API of a kernel named NET (the kernels return a status, 0 for success):

- ``const char *NET_contract(void)``: the kernel contract as JSON
- ``size_t NET_workspace_bytes_f64(const long *sizes)``: the workspace of the ``_f64``
  functions in bytes (``_f32`` likewise); ``NET_workspace_bytes`` serves every precision
- ``int NET_loss_and_grad_f64(sizes, params, inputs, labels, targets, state, loss, grads,
  state_grads, workspace)``
- ``int NET_predict_f64(sizes, params, inputs, state, outputs, workspace)``

``params``, ``inputs``, ``labels`` (int64), ``targets``, ``state``, ``grads`` and
``outputs`` are arrays of pointers in the contract's order of each table.
- the same with ``_f32`` and ``float``.

``sizes`` is the contract's ``call_sizes``: SIZES in order, then the time size
(recurrent networks), then B.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.codegen.backends.c.blas import (
    Blas,
    BlasChoice,
    BlasInfo,
    blas_info,
    resolve_blas,
    set_blas_threads,
)
from chainrule.codegen.backends.c.cache import (
    CacheError,
    _compile_cached,
    cache_dir,
    compile_kernel,
)
from chainrule.codegen.backends.c.compiler import CompilerError, find_compiler
from chainrule.codegen.kernel_checks import check_call, draw_params
from chainrule.codegen.kernel_set import read_checked
from chainrule.codegen.plan.contract import STATUS as CONTRACT_STATUS
from chainrule.codegen.plan.contract import KernelContract
from chainrule.codegen.precision import PRECISIONS, precision_of

__all__ = [
    "STATUS",
    "CKernel",
    "CacheError",
    "CompilerError",
    "blas_available",
    "cache_dir",
    "compile_kernel",
    "find_compiler",
    "load_c",
]

#: the status codes of the C kernels (the contract's, with the classes' size as ``K``)
STATUS = {code: meaning.format(classes="0..K-1") for code, meaning in CONTRACT_STATUS.items()}


# --- the kernel ------------------------------------------------------------------------

_LABELS_P = ctypes.POINTER(ctypes.c_int64)


def _declare(lib: ctypes.CDLL, net: str) -> dict[str, Any]:
    """Look up the C functions of ``net`` and declare their argument and result types.

    Every pointer is declared ``c_void_p``, so raw callers may pass ctypes pointers,
    ctypes arrays of pointers, ``None`` for NULL, or plain addresses (``a.ctypes.data``).
    """
    def function(name: str) -> Any:
        try:
            return getattr(lib, name)
        except AttributeError:
            raise ValueError(f"{lib._name} has no function {name}; is it a chainrule C kernel "
                             f"for the network {net!r}?") from None

    pointer = ctypes.c_void_p
    functions: dict[str, Any] = {}
    contract = function(f"{net}_contract")
    contract.argtypes = []
    contract.restype = ctypes.c_char_p
    functions["contract"] = contract
    workspace_bytes = function(f"{net}_workspace_bytes")
    workspace_bytes.argtypes = [pointer]
    workspace_bytes.restype = ctypes.c_size_t
    functions["workspace_bytes"] = workspace_bytes
    for precision in PRECISIONS:
        sized = function(f"{net}_workspace_bytes_{precision.name}")
        sized.argtypes = [pointer]
        sized.restype = ctypes.c_size_t
        functions[f"workspace_bytes_{precision.name}"] = sized
        loss_and_grad = function(f"{net}_loss_and_grad_{precision.name}")
        loss_and_grad.argtypes = [pointer] * 10
        loss_and_grad.restype = ctypes.c_int
        functions[f"loss_and_grad_{precision.name}"] = loss_and_grad
        predict = function(f"{net}_predict_{precision.name}")
        predict.argtypes = [pointer] * 6
        predict.restype = ctypes.c_int
        functions[f"predict_{precision.name}"] = predict
    return functions


def _real_pointer(dtype: np.dtype) -> Any:
    return ctypes.POINTER(precision_of(dtype).ctypes_type)


class CKernel:
    """A compiled C kernel with the kernel contract (see DESIGN.md), read from the library
    itself (``<net>_contract()``) and checked by ``codegen.kernel_checks``, as the NumPy
    module checks its calls: both backends refuse bad input with the same messages.

    ``lib`` is the ``ctypes.CDLL`` and ``function(name)`` one of its declared functions,
    for calling the C API directly; ``sizes_array``, ``pointers`` and ``workspace`` build
    their arguments.
    """

    backend = "c"

    def __init__(self, name: str, library: Path, blas: Blas) -> None:
        self._scratch = threading.local()
        self.name = name
        self.library = library
        #: the CBLAS the library calls (``blas.name``: bundled, system or none; false
        #: when none)
        self.blas = blas
        self.lib = ctypes.CDLL(str(library))
        self._functions = _declare(self.lib, name)
        text = self._functions["contract"]()
        contract = KernelContract.from_json(
            (text or b"").decode("ascii", errors="replace"),
            origin=f"the contract {name}_contract() returns in {library}")
        if contract.name != name:
            raise ValueError(f"{library}: {name}_contract() describes the network "
                             f"{contract.name!r}, not {name!r}")
        #: the kernel contract as plain data (what the NumPy module holds as CONTRACT)
        self.CONTRACT: dict[str, Any] = contract.as_dict()
        self.SIZES: tuple[str, ...] = contract.sizes
        self.PARAMS: dict[str, tuple[str, ...]] = dict(contract.params)
        self.STATE: dict[str, tuple[str, ...]] = dict(contract.state)
        #: the order of the C ``sizes`` array: SIZES, then the time size (recurrent nets), then B
        self.SIZES_ORDER: tuple[str, ...] = contract.call_sizes
        self.STATUS: dict[int, str] = dict(contract.status)
        #: the inputs, label targets, real-valued targets and outputs with their axes: the
        #: order of the C functions' pointer arrays
        self.INPUTS: dict[str, tuple[str, ...]] = dict(contract.inputs)
        self.LABELS: dict[str, tuple[str, ...]] = dict(contract.labels)
        self.TARGETS: dict[str, tuple[str, ...]] = dict(contract.targets)
        self.OUTPUTS: dict[str, tuple[str, ...]] = dict(contract.outputs)

    def __repr__(self) -> str:
        return f"<CKernel {self.name} ({self.library}, blas={self.blas.name!r})>"

    def blas_info(self) -> BlasInfo | None:
        """The OpenBLAS the kernel calls, as it describes itself (configuration, kernel
        family for this CPU, threads), or None without CBLAS or for another CBLAS."""
        return blas_info(self.lib, self.blas)

    def set_blas_threads(self, count: int) -> None:
        """Run the kernel's OpenBLAS on ``count`` threads (its default: one per CPU).
        That pool is the kernel's alone, beside NumPy's. On 2 CPUs one thread is faster
        for the LSTMs up to H = 64 in float32 and H = 48 in float64 (0.66-0.78 of the
        time of two), two above (``benchmarks/blas_threads.py``)."""
        set_blas_threads(self.lib, self.blas, count)

    def torch(self, sizes: Mapping[str, int] | None = None, *,
              params: Mapping[str, Any] | None = None, rng: Any = None,
              dtype: Any = None) -> Any:
        """This kernel as a ``torch.nn.Module`` (``codegen.frameworks.torch_module``; needs
        PyTorch): parameters from ``init_params(sizes, rng=rng)`` or ``params``, in
        ``dtype`` (``torch.float32`` when None, or ``torch.float64``)."""
        from chainrule.codegen.frameworks import torch_method

        return torch_method(self)(sizes, params=params, rng=rng, dtype=dtype)

    # --- the contract -------------------------------------------------------------

    def init_params(self, sizes: Mapping[str, int], *, rng: Any = None,
                    dtype: Any = np.float64) -> dict[str, np.ndarray]:
        """Parameters for ``sizes``, exactly as the NumPy module's ``init_params`` draws them."""
        return draw_params(self.CONTRACT, sizes, rng=rng, dtype=dtype)

    def loss_and_grad(self, params: Mapping[str, np.ndarray], inputs: Any, targets: Any,
                      state: Mapping[str, np.ndarray] | None = None
                      ) -> tuple[np.floating, dict[str, np.ndarray]]:
        """(loss, grads): the loss summed over the batch (and time), and its gradients.

        ``inputs`` maps the input names to arrays (or is the array, for one input);
        ``targets`` the same for the targets (labels and real-valued; None if there are
        none). grads holds every PARAMS key, and every STATE key when ``state`` is given.
        """
        sizes, dtype, inputs, targets = check_call(self.CONTRACT, params, inputs, targets,
                                                   state, need_targets=True)
        suffix = precision_of(dtype).name
        keep: list[np.ndarray] = []
        # the header promises the kernels overwrite every gradient: no need to clear them
        grads = {name: np.empty(params[name].shape, dtype) for name in self.PARAMS}
        loss = np.zeros(1, dtype)
        state_grads = None
        if state is not None and self.STATE:
            state_grads = {name: np.empty(state[name].shape, dtype) for name in self.STATE}
        labels = [np.ascontiguousarray(targets[name], dtype=np.int64) for name in self.LABELS]
        keep += labels
        label_pointers = (_LABELS_P * len(labels))(
            *(a.ctypes.data_as(_LABELS_P) for a in labels)) if labels else None
        real = [targets[name] for name in self.TARGETS]
        workspace = self.scratch(sizes, dtype)
        function = f"loss_and_grad_{suffix}"
        status = self._functions[function](
            self.sizes_array(sizes),
            self.pointers([params[name] for name in self.PARAMS], dtype, keep),
            self.pointers([inputs[name] for name in self.INPUTS], dtype, keep),
            label_pointers,
            self.pointers(real, dtype, keep) if real else None,
            self._state_pointers(state, dtype, keep),
            loss.ctypes.data_as(_real_pointer(dtype)),
            self.pointers(list(grads.values()), dtype, keep),
            None if state_grads is None else self.pointers(list(state_grads.values()), dtype,
                                                           keep),
            workspace.ctypes.data_as(ctypes.c_void_p),
        )
        self._raise_on(status, function)
        if state is not None:
            grads.update(state_grads or {})
        return dtype.type(loss[0]), grads

    def predict(self, params: Mapping[str, np.ndarray], inputs: Any,
                state: Mapping[str, np.ndarray] | None = None
                ) -> np.ndarray | dict[str, np.ndarray]:
        """The outputs (OUTPUTS) for ``inputs``, in their dtype: the array when there is one
        output, else a dict by name."""
        sizes, dtype, inputs, _ = check_call(self.CONTRACT, params, inputs, None, state,
                                             need_targets=False)
        suffix = precision_of(dtype).name
        keep: list[np.ndarray] = []
        outputs = {name: np.empty(tuple(int(sizes[a]) for a in axes), dtype)
                   for name, axes in self.OUTPUTS.items()}
        workspace = self.scratch(sizes, dtype)
        function = f"predict_{suffix}"
        status = self._functions[function](
            self.sizes_array(sizes),
            self.pointers([params[name] for name in self.PARAMS], dtype, keep),
            self.pointers([inputs[name] for name in self.INPUTS], dtype, keep),
            self._state_pointers(state, dtype, keep),
            self.pointers(list(outputs.values()), dtype, keep),
            workspace.ctypes.data_as(ctypes.c_void_p),
        )
        self._raise_on(status, function)
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return outputs

    # --- the raw C API --------------------------------------------------------------

    def function(self, name: str) -> Any:
        """The declared C function ``<net>_<name>``, e.g. ``function("loss_and_grad_f64")``.

        Use this (or ``lib.<net>_<name>``), not ``lib["..."]``: ctypes' item lookup makes a
        fresh function object without the declared argument types, which truncates pointers
        passed as Python ints.
        """
        try:
            return self._functions[name]
        except KeyError:
            raise ValueError(f"no C function {name!r}; expected one of "
                             f"{', '.join(self._functions)}") from None

    def sizes_array(self, sizes: Mapping[str, int]) -> ctypes.Array[ctypes.c_long]:
        """The C ``sizes`` argument: every name of ``SIZES_ORDER`` looked up in ``sizes``."""
        return (ctypes.c_long * len(self.SIZES_ORDER))(*(int(sizes[n]) for n in self.SIZES_ORDER))

    def workspace_bytes(self, sizes: Mapping[str, int], dtype: Any = None) -> int:
        """What ``NET_workspace_bytes_<precision>`` asks for ``sizes`` in ``dtype``; with no
        dtype, ``NET_workspace_bytes``: the size that serves every precision."""
        name = ("workspace_bytes" if dtype is None
                else f"workspace_bytes_{precision_of(np.dtype(dtype)).name}")
        return int(self._functions[name](self.sizes_array(sizes)))

    def scratch(self, sizes: Mapping[str, int], dtype: Any = None) -> np.ndarray:
        """This thread's workspace, reused while it is large enough: a fresh one per call
        would be faulted in page by page every time (measured: 4% of an LSTM call)."""
        needed = self._workspace_words(sizes, dtype)
        cached = getattr(self._scratch, "array", None)
        if cached is None or cached.size < needed:
            cached = self._scratch.array = np.empty(needed, np.float64)
        return cached

    def workspace(self, sizes: Mapping[str, int], dtype: Any = None) -> np.ndarray:
        """A fresh workspace for ``sizes`` in ``dtype`` (with none, for every precision):
        float64 elements (8-byte aligned), at least one."""
        return np.empty(self._workspace_words(sizes, dtype), np.float64)

    def _workspace_words(self, sizes: Mapping[str, int], dtype: Any = None) -> int:
        """The workspace in 8-byte words; ValueError where the C says the sizes are invalid
        (0 bytes: a size below 1, or a workspace whose size overflows)."""
        size_bytes = self.workspace_bytes(sizes, dtype)
        if size_bytes == 0:
            given = ", ".join(f"{n} = {int(sizes[n])}" for n in self.SIZES_ORDER)
            raise ValueError(f"{self.name}: sizes {given} need a workspace larger than this "
                             f"machine can address (or a size is below 1)")
        return -(-size_bytes // 8)

    @staticmethod
    def pointers(arrays: Sequence[np.ndarray], dtype: np.dtype,
                 keep: list[np.ndarray] | None = None) -> Any:
        """A C array of pointers to ``arrays``, each made C-contiguous in ``dtype``.

        Contiguous copies are appended to ``keep``: the caller holds them until the call
        returns. Arrays written by C (outputs) must already be C-contiguous in ``dtype``.
        """
        real = _real_pointer(np.dtype(dtype))
        keep = [] if keep is None else keep
        return (real * len(arrays))(*(CKernel._pointer(a, dtype, keep) for a in arrays))

    @staticmethod
    def _pointer(array: np.ndarray, dtype: np.dtype, keep: list[np.ndarray]) -> Any:
        contiguous = np.ascontiguousarray(array, dtype=dtype)
        keep.append(contiguous)
        return contiguous.ctypes.data_as(_real_pointer(np.dtype(dtype)))

    def _state_pointers(self, state: Mapping[str, np.ndarray] | None, dtype: np.dtype,
                        keep: list[np.ndarray]) -> Any:
        if state is None or not self.STATE:
            return None
        return self.pointers([state[name] for name in self.STATE], dtype, keep)

    def _raise_on(self, status: int, function: str) -> None:
        if status != 0:
            meaning = self.STATUS.get(status, "an unknown status")
            raise ValueError(f"C kernel {self.name}_{function} returned {status} ({meaning})")


def blas_available(choice: BlasChoice = True) -> bool:
    """Whether ``blas=choice`` can be used here (a compiler, and that CBLAS links)."""
    try:
        return bool(resolve_blas(choice)) or choice in (False, "none")
    except CompilerError:
        return False


def load_c(directory: str | Path, *, blas: BlasChoice = None) -> CKernel:
    """The C kernel in ``directory``: ``<net>.c`` compiled, with the contract it returns.

    ``blas``: ``"bundled"`` (OpenBLAS from the scipy-openblas32 wheel), ``"system"``
    (``<cblas.h>``, ``$CHAINRULE_SYSTEM_CBLAS`` or ``-lopenblas``), ``"none"`` (the
    kernel's loops); True requires one of the first two, False is ``"none"``, None (the
    default) takes the first that works (``blas.py``). See ``compile_kernel`` for the
    compiler, flags and cache. The ``.c`` and
    ``.h`` (and the ``.py``, when present) are read once, together, and refused
    (``ValueError``) when their seals say they do not belong together; what is
    compiled is exactly what was checked.
    """
    directory = Path(directory)
    files = read_checked(directory, ".c", uses=(".c", ".h"))
    source = files.get(".c")
    assert source is not None
    use_blas = resolve_blas(blas, find_compiler())
    library = _compile_cached(f"{files.stem}.c", source, files.get(".h"),
                              files.path(".c").resolve(), blas=use_blas, flags=None)
    return CKernel(files.stem, library, use_blas)
