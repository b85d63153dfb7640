"""The kernel contract's checks and parameter draws: one implementation for every backend.

Role in DESIGN.md's picture: the Python side of the kernel contract. A call's
arguments are checked against the contract (``plan/contract.py``, here as the plain
data of ``KernelContract.as_dict()``) by :func:`check_call`, and ``init_params`` draws
parameters with :func:`draw_params`. The C loader imports this module; the NumPy
backend copies its definitions, unchanged, into every generated module, which must
run with NumPy alone (``backends/numpy/backend.py`` reads them with ``ast``). So this
module imports only ``numpy`` and ``Mapping``, and every name it defines at the top
level is one the generated module may hold: no user name can clash with them (user
names are checked identifiers without a leading underscore, see ``symbolic/names.py``),
and the generated module defines nothing else by these names.
"""

from collections.abc import Mapping

import numpy

_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def draw_params(contract: Mapping, sizes: Mapping, *, rng: object = None,
                dtype: object = numpy.float64) -> dict:
    """Parameters drawn uniformly from ±1/sqrt(n), n the first axis's size, as a dict.

    `sizes` maps every name in the contract's sizes to a positive int; `rng` is a
    numpy.random.Generator, an int seed or None; `dtype` is float32 or float64.
    """
    names = contract["sizes"]
    if not isinstance(sizes, Mapping):
        raise ValueError(f"sizes must be a mapping of {', '.join(names)} to ints, "
                         f"got {type(sizes).__name__}")
    missing = [s for s in names if s not in sizes]
    if missing:
        raise ValueError(f"sizes is missing {', '.join(missing)}; "
                         f"expected every one of {', '.join(names)}")
    for size in names:
        value = sizes[size]
        if isinstance(value, bool) or not isinstance(value, int | numpy.integer) or value < 1:
            raise ValueError(f"sizes[{size!r}] must be a positive int, got {value!r}")
    dtype = numpy.dtype(dtype)
    if dtype not in _FLOATS:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if not isinstance(rng, numpy.random.Generator):
        rng = numpy.random.default_rng(rng)
    params = {}
    for name, axes in contract["params"].items():
        shape = tuple(int(sizes[axis]) for axis in axes)
        bound = 1.0 / numpy.sqrt(shape[0])
        params[name] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params


def check_call(contract: Mapping, params: Mapping, x: numpy.ndarray, labels: object,
               state: Mapping | None, *, need_labels: bool) -> tuple[dict, numpy.dtype]:
    """(sizes, dtype) of a call: every size name → its value, and x's dtype; ValueError
    naming the argument that is wrong and what was expected."""
    input_axes = tuple(contract["input"])
    if type(x) is not numpy.ndarray:
        raise ValueError(f"x must be a numpy.ndarray of shape {_axes_text(input_axes)}, "
                         f"got {_got(x)}")
    if x.dtype not in _FLOATS:
        raise ValueError(f"x must have dtype float32 or float64, got {x.dtype}")
    if x.ndim != len(input_axes):
        raise ValueError(f"x must have shape {_axes_text(input_axes)}, got {x.shape}")
    dtype = x.dtype
    sizes = {}
    origin = {}
    for axis, n in zip(input_axes, x.shape, strict=True):
        sizes[axis] = n
        origin[axis] = "x"
    if 0 in x.shape:
        raise ValueError(f"x must not be empty: shape {_axes_text(input_axes)} with every "
                         f"size at least 1, got {x.shape}")
    expected_params = contract["params"]
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping of parameter names to arrays, "
                         f"got {type(params).__name__}")
    missing = [name for name in expected_params if name not in params]
    if missing:
        raise ValueError(f"params is missing {', '.join(missing)}; "
                         f"expected {', '.join(expected_params)}")
    unknown = [name for name in params if name not in expected_params]
    if unknown:
        raise ValueError(f"params has unknown keys {', '.join(map(str, unknown))}; "
                         f"expected {', '.join(expected_params)}")
    for name, axes in expected_params.items():
        _check_array(f"params[{name!r}]", params[name], tuple(axes), sizes, origin, dtype)
    if need_labels:
        _check_labels(contract, labels, sizes)
    if state is not None:
        expected_state = contract["state"]
        keys = ", ".join(expected_state) or "(none)"
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be None or a mapping with keys {keys}, "
                             f"got {type(state).__name__}")
        missing = [name for name in expected_state if name not in state]
        unknown = [name for name in state if name not in expected_state]
        if missing or unknown:
            raise ValueError(f"state must hold exactly the keys {keys}; "
                             f"missing {', '.join(missing) or 'none'}, "
                             f"unknown {', '.join(map(str, unknown)) or 'none'}")
        for name, axes in expected_state.items():
            _check_array(f"state[{name!r}]", state[name], ("B", *axes), sizes, origin, dtype)
    return sizes, dtype


def _check_labels(contract, labels, sizes):
    label_axes = tuple(contract["labels"])
    classes = contract["classes"]
    if type(labels) is not numpy.ndarray or not numpy.issubdtype(labels.dtype, numpy.integer):
        got = labels.dtype if type(labels) is numpy.ndarray else _got(labels)
        raise ValueError(f"labels must be an integer numpy.ndarray of shape "
                         f"{_axes_text(label_axes)}, got {got}")
    expected = tuple(int(sizes[axis]) for axis in label_axes)
    if labels.shape != expected:
        raise ValueError(f"labels must have shape {_axes_text(label_axes)} = {expected}, "
                         f"got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= sizes[classes]):
        bad = labels[(labels < 0) | (labels >= sizes[classes])].flat[0]
        raise ValueError(f"labels must lie in 0..{sizes[classes] - 1} "
                         f"({classes} = {sizes[classes]} classes), got {bad}")


def _check_array(what, array, axes, sizes, origin, dtype):
    if type(array) is not numpy.ndarray:
        raise ValueError(f"{what} must be a numpy.ndarray of shape {_axes_text(axes)}, "
                         f"got {_got(array)}")
    if array.dtype != dtype:
        if array.dtype in _FLOATS:
            raise ValueError(f"{what} has dtype {array.dtype} but x has {dtype}; "
                             f"mixing float dtypes is not supported")
        raise ValueError(f"{what} must have dtype {dtype} like x, got {array.dtype}")
    if array.ndim != len(axes):
        raise ValueError(f"{what} must have shape {_axes_text(axes)}, got {array.shape}")
    if 0 in array.shape:
        raise ValueError(f"{what} must have shape {_axes_text(axes)} with every size "
                         f"at least 1, got {array.shape}")
    for axis, n in zip(axes, array.shape, strict=True):
        if sizes.setdefault(axis, n) != n:
            known = [str(sizes.get(a, a)) for a in axes]
            expected = f"({known[0]},)" if len(known) == 1 else f"({', '.join(known)})"
            raise ValueError(f"{what} must have shape {_axes_text(axes)} = {expected}, "
                             f"got {array.shape}: {axis} = {sizes[axis]} "
                             f"from the shape of {origin[axis]}")
        origin.setdefault(axis, what)


def _got(value):
    """What an error names instead of a plain numpy.ndarray; subclasses (numpy.matrix, masked
    arrays) are refused: their operators are not the kernel's."""
    if isinstance(value, numpy.ndarray):
        return (f"{type(value).__module__}.{type(value).__qualname__}, a subclass of "
                f"numpy.ndarray (numpy.asarray makes a plain one)")
    return type(value).__name__


def _axes_text(axes):
    return f"({axes[0]},)" if len(axes) == 1 else f"({', '.join(axes)})"
