"""The floating-point precisions the kernels come in, described once for every backend.

Role in DESIGN.md's picture: the ground floor of ``codegen/``, read by the backends'
printers and templates (C types, literal suffixes, math function names, the BLAS
routine), by the C loader (ctypes types, the function suffix) and by the NumPy
module's checks (the dtypes it accepts). A precision is named by its suffix, ``f64``
or ``f32``: the C functions are ``<net>_loss_and_grad_f64`` and ``..._f32``.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
from sympy.codegen.ast import FloatType, float32, float64

__all__ = ["F32", "F64", "PRECISIONS", "Precision", "precision_of"]


@dataclass(frozen=True)
class Precision:
    """One precision, as each language and library spells it."""

    #: the suffix of the C functions and of the helpers (``f64``)
    name: str
    #: the C type (``double``)
    c_type: str
    #: the suffix of a C floating literal (``F`` for float: ``0.5F``)
    literal_suffix: str
    #: the suffix of libm's functions (``expf``, ``tanhf``; empty for double)
    math_suffix: str
    #: the CBLAS matrix product (``cblas_dgemm``)
    gemm: str
    #: SymPy's floating type, for the printers' ``type_aliases``
    sympy_type: FloatType
    #: NumPy's dtype (``float64``)
    numpy_dtype: np.dtype
    #: ctypes' type (``c_double``)
    ctypes_type: type[ctypes.c_double] | type[ctypes.c_float]

    def c_math(self, function: str) -> str:
        """libm's name of ``function`` in this precision: ``exp`` → ``expf`` in float."""
        return function + self.math_suffix

    def c_literal(self, text: str) -> str:
        """A C floating literal in this precision: ``1.0`` → ``1.0F`` in float."""
        return text + self.literal_suffix


F64 = Precision("f64", "double", "", "", "cblas_dgemm", float64, np.dtype(np.float64),
                ctypes.c_double)
F32 = Precision("f32", "float", "F", "f", "cblas_sgemm", float32, np.dtype(np.float32),
                ctypes.c_float)

#: every precision, in the order the generated files define them
PRECISIONS: tuple[Precision, ...] = (F64, F32)


def precision_of(dtype: object) -> Precision:
    """The precision of a NumPy dtype (ValueError naming the dtypes there are)."""
    wanted = np.dtype(dtype)  # type: ignore[call-overload]
    for precision in PRECISIONS:
        if precision.numpy_dtype == wanted:
            return precision
    names = " or ".join(str(p.numpy_dtype) for p in PRECISIONS)
    raise ValueError(f"dtype must be {names}, got {wanted}")
