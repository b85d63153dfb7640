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


def check_call(contract: Mapping, params: Mapping, inputs: object, targets: object,
               state: Mapping | None, *, need_targets: bool) -> tuple:
    """(sizes, dtype, inputs, targets) of a call: every size name → its value, the inputs'
    dtype, and the inputs and targets as dicts by name; ValueError naming the argument that
    is wrong and what was expected.

    ``inputs`` is a mapping of the contract's input names to arrays, or the array itself
    when there is one input; ``targets`` the same for the targets (labels and real-valued),
    or None when the model has none."""
    sizes = {}
    origin = {}
    input_axes = contract["inputs"]
    inputs, input_names = _by_name("inputs", inputs, list(input_axes), {})
    dtype = None
    for name, axes in input_axes.items():
        dtype = _check_input(input_names[name], inputs[name], tuple(axes), sizes, origin,
                             dtype)
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
    if need_targets:
        label_axes = contract["labels"]
        real_axes = contract["targets"]
        names = [*label_axes, *real_axes]
        targets, target_names = _by_name("targets", targets, names,
                                         {name: "labels" for name in label_axes})
        for name, axes in label_axes.items():
            _check_labels(target_names[name], targets[name], tuple(axes),
                          contract["classes"][name], sizes, origin)
        for name, axes in real_axes.items():
            _check_array(target_names[name], targets[name], tuple(axes), sizes, origin, dtype)
    else:
        targets = {}
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
    unknown_sizes = [size for size in contract["call_sizes"] if size not in sizes]
    if unknown_sizes:
        raise ValueError(f"the size {unknown_sizes[0]} cannot be told from the arrays passed "
                         f"(no array given has an axis {unknown_sizes[0]})")
    return sizes, dtype, inputs, targets


def _by_name(kind, value, names, bare):
    """``value`` as a dict over ``names`` with each array's name in messages: a mapping with
    exactly those keys, or one array when there is one name (None when there are none)."""
    listed = ", ".join(names) or "(none)"
    if isinstance(value, Mapping):
        missing = [name for name in names if name not in value]
        unknown = [name for name in value if name not in names]
        if missing or unknown:
            raise ValueError(f"{kind} must hold exactly the keys {listed}; "
                             f"missing {', '.join(missing) or 'none'}, "
                             f"unknown {', '.join(map(str, unknown)) or 'none'}")
        return dict(value), {name: f"{kind}[{name!r}]" for name in names}
    if not names and value is None:
        return {}, {}
    if len(names) == 1:
        return {names[0]: value}, {names[0]: bare.get(names[0], names[0])}
    if not names:
        raise ValueError(f"{kind} must be None or an empty mapping: this network takes no "
                         f"{kind}, got {type(value).__name__}")
    raise ValueError(f"{kind} must be a mapping of {listed} to arrays (this network takes "
                     f"{len(names)} {kind}), got {type(value).__name__}")


def _check_input(what, array, axes, sizes, origin, dtype):
    """The dtype of the first input (float32 or float64, which every other array must
    share); then each input as any other array."""
    if dtype is not None:
        _check_array(what, array, axes, sizes, origin, dtype)
        return dtype
    if type(array) is not numpy.ndarray:
        raise ValueError(f"{what} must be a numpy.ndarray of shape {_axes_text(axes)}, "
                         f"got {_got(array)}")
    if array.dtype not in _FLOATS:
        raise ValueError(f"{what} must have dtype float32 or float64, got {array.dtype}")
    if array.ndim != len(axes):
        raise ValueError(f"{what} must have shape {_axes_text(axes)}, got {array.shape}")
    if 0 in array.shape:
        raise ValueError(f"{what} must not be empty: shape {_axes_text(axes)} with every "
                         f"size at least 1, got {array.shape}")
    origin[None] = what  # the array the dtype comes from
    _check_array(what, array, axes, sizes, origin, array.dtype)
    return array.dtype


def _check_labels(what, labels, axes, classes, sizes, origin):
    if type(labels) is not numpy.ndarray or not numpy.issubdtype(labels.dtype, numpy.integer):
        got = labels.dtype if type(labels) is numpy.ndarray else _got(labels)
        raise ValueError(f"{what} must be an integer numpy.ndarray of shape "
                         f"{_axes_text(axes)}, got {got}")
    if labels.ndim != len(axes):
        _wrong_rank(what, labels, axes, sizes)
    known = [axis for axis in axes if axis in sizes]
    expected = tuple(sizes[axis] if axis in sizes else n for axis, n in zip(
        axes, labels.shape, strict=True))
    if labels.shape != expected:
        shown = f"({expected[0]},)" if len(expected) == 1 else str(expected)
        raise ValueError(f"{what} must have shape {_axes_text(axes)} = {shown}, "
                         f"got {labels.shape}")
    if 0 in labels.shape:
        raise ValueError(f"{what} must have shape {_axes_text(axes)} with every size "
                         f"at least 1, got {labels.shape}")
    for axis, n in zip(axes, labels.shape, strict=True):
        if axis not in known:
            sizes[axis] = n
            origin[axis] = what
    if classes not in sizes:
        raise ValueError(f"the number of classes {classes} of {what} cannot be told from "
                         f"the arrays passed (no array given has an axis {classes})")
    if labels.size and (labels.min() < 0 or labels.max() >= sizes[classes]):
        bad = labels[(labels < 0) | (labels >= sizes[classes])].flat[0]
        raise ValueError(f"{what} must lie in 0..{sizes[classes] - 1} "
                         f"({classes} = {sizes[classes]} classes), got {bad}")


def _check_array(what, array, axes, sizes, origin, dtype):
    if type(array) is not numpy.ndarray:
        raise ValueError(f"{what} must be a numpy.ndarray of shape {_axes_text(axes)}, "
                         f"got {_got(array)}")
    if array.dtype != dtype:
        if array.dtype in _FLOATS:
            raise ValueError(f"{what} has dtype {array.dtype} but {origin[None]} has {dtype}; "
                             f"mixing float dtypes is not supported")
        raise ValueError(f"{what} must have dtype {dtype} like {origin[None]}, "
                         f"got {array.dtype}")
    if array.ndim != len(axes):
        _wrong_rank(what, array, axes, sizes)
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


def _wrong_rank(what, array, axes, sizes):
    """The error for an array with the wrong number of axes: the expected shape in numbers
    too where every axis is known."""
    if all(axis in sizes for axis in axes):
        known = tuple(sizes[axis] for axis in axes)
        shown = f"({known[0]},)" if len(known) == 1 else str(known)
        raise ValueError(f"{what} must have shape {_axes_text(axes)} = {shown}, "
                         f"got {array.shape}")
    raise ValueError(f"{what} must have shape {_axes_text(axes)}, got {array.shape}")


def _got(value):
    """What an error names instead of a plain numpy.ndarray; subclasses (numpy.matrix, masked
    arrays) are refused: their operators are not the kernel's."""
    if isinstance(value, numpy.ndarray):
        return (f"{type(value).__module__}.{type(value).__qualname__}, a subclass of "
                f"numpy.ndarray (numpy.asarray makes a plain one)")
    return type(value).__name__


def _axes_text(axes):
    return f"({axes[0]},)" if len(axes) == 1 else f"({', '.join(axes)})"
