"""Names: the identifier rule, the one reserved list, and the allocator of generated names.

Every name a user writes (the model, its sizes, indices, quantities and the loss)
becomes an identifier of the generated NumPy module and C source, beside the
identifiers that code uses itself (``numpy``, ``sizes``, ``workspace``, ``NULL``)
and the names codegen makes up (adjoints and gradients ``d_<q>``, temporaries
``t<N>``, fused buffers such as ``W_xifco``, C loop variables such as ``h1``). So a
user name must be

- an ASCII identifier, a letter then letters, digits and ``_`` (:data:`IDENTIFIER`):
  no Unicode, whose NFKC-equal spellings Python would merge;
- none of :data:`RESERVED`: Python's keywords and soft keywords, C's keywords (up to
  C23), the macros, types and functions of the C headers the kernels include (and
  those ``<cblas.h>`` pulls in), the macros GCC predefines, and every identifier the
  generated code uses in a scope that also holds user names; nor start with one of
  :data:`RESERVED_PREFIXES` (``chainrule_``, ``cblas``, ``openblas``, ``scipy_``, in any case);
  a size, none of :data:`SIZE_RESERVED` either;
- not ``x`` unless it is the input: ``x`` is the kernels' argument;
- not the name of a generated adjoint: ``d_<q>`` for a quantity ``q`` with a
  gradient (checked by the Model in both orders of declaration).

:data:`INTERNAL` lists the identifiers the generated code uses only where no user
name is in scope (a helper's locals, a keyword argument): recorded so that
``tests/test_hostile_names.py`` can hold everything the backends emit to this one
module, but not refused. That test renders every kernel and fails when an emitted
identifier is neither a user name, nor a name made from one, nor listed here.

Generated names other than adjoints come from a :class:`Names` allocator, which
skips every candidate that is reserved or already taken. This module is the one
place the lists are typed; the backends' templates and printers are the truth they
are checked against.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Iterator, Mapping

__all__ = ["ADJOINT_PREFIX", "C_FUNCTION_SUFFIXES", "IDENTIFIER", "INTERNAL",
           "RESERVED", "RESERVED_PREFIXES", "SIZE_RESERVED", "Names", "adjoint_name",
           "c_functions", "numbered", "quantity_of_adjoint", "refusal"]

#: The rule for every user name: ASCII letters, digits and ``_``, starting with a letter.
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
IDENTIFIER_RULE = "must be an identifier: ASCII letters, digits and _, starting with a letter"

#: ∂L/∂q is stored as ``d_<q>`` (the gradient of a parameter, the adjoint of an intermediate).
ADJOINT_PREFIX = "d_"

#: The generated C's functions are ``<model>_<suffix>``.
C_FUNCTION_SUFFIXES = ("contract", "check_sizes", "workspace_elements", "workspace_bytes",
                       "workspace_bytes_f64", "workspace_bytes_f32", "run_f64", "run_f32",
                       "loss_and_grad_f64", "loss_and_grad_f32", "predict_f64", "predict_f32")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _with_suffixes(functions: str) -> tuple[str, ...]:
    """A C math function and its float and long double forms: ``exp expf expl``."""
    return tuple(f"{name}{suffix}" for name in functions.split() for suffix in ("", "f", "l"))


_C99_KEYWORDS = _words("""auto break case char const continue default do double else enum
    extern float for goto if inline int long register restrict return short signed sizeof
    static struct switch typedef union unsigned void volatile while""")
#: C23 made these keywords (gcc 15 compiles C23 by default)
_C23_KEYWORDS = _words("""alignas alignof bool constexpr false nullptr static_assert
    thread_local true typeof typeof_unqual""")

_MATH_MACROS = _words("""FP_FAST_FMA FP_FAST_FMAF FP_FAST_FMAL FP_ILOGB0 FP_ILOGBNAN
    FP_INFINITE FP_NAN FP_NORMAL FP_SUBNORMAL FP_ZERO HUGE_VAL HUGE_VALF HUGE_VALL INFINITY
    MATH_ERREXCEPT MATH_ERRNO NAN fpclassify isfinite isgreater isgreaterequal isinf isless
    islessequal islessgreater isnan isnormal isunordered math_errhandling signbit
    float_t double_t
    M_E M_LOG2E M_LOG10E M_LN2 M_LN10 M_PI M_PI_2 M_PI_4 M_1_PI M_2_PI M_2_SQRTPI M_SQRT2
    M_SQRT1_2""")
_MATH_FUNCTIONS = _with_suffixes("""acos asin atan atan2 cos sin tan acosh asinh atanh cosh
    sinh tanh exp exp2 expm1 frexp ilogb ldexp log log10 log1p log2 logb modf scalbn scalbln
    cbrt fabs hypot pow sqrt erf erfc lgamma tgamma ceil floor nearbyint rint lrint llrint
    round lround llround trunc fmod remainder remquo copysign nan nextafter nexttoward fdim
    fmax fmin fma""")
_STDDEF = _words("NULL offsetof size_t ptrdiff_t wchar_t max_align_t")
_STDINT = (*_words("""intptr_t uintptr_t intmax_t uintmax_t INTPTR_MIN INTPTR_MAX UINTPTR_MAX
    INTMAX_MIN INTMAX_MAX UINTMAX_MAX INTMAX_C UINTMAX_C PTRDIFF_MIN PTRDIFF_MAX SIZE_MAX
    SIG_ATOMIC_MIN SIG_ATOMIC_MAX WCHAR_MIN WCHAR_MAX WINT_MIN WINT_MAX"""),
           *(name for bits in (8, 16, 32, 64) for name in (
               f"int{bits}_t", f"uint{bits}_t", f"int_least{bits}_t", f"uint_least{bits}_t",
               f"int_fast{bits}_t", f"uint_fast{bits}_t", f"INT{bits}_MIN", f"INT{bits}_MAX",
               f"UINT{bits}_MAX", f"INT_LEAST{bits}_MIN", f"INT_LEAST{bits}_MAX",
               f"UINT_LEAST{bits}_MAX", f"INT_FAST{bits}_MIN", f"INT_FAST{bits}_MAX",
               f"UINT_FAST{bits}_MAX", f"INT{bits}_C", f"UINT{bits}_C")))
_STRING = _words("""memcpy memmove memset memcmp memchr strcpy strncpy strcat strncat strcmp
    strncmp strcoll strxfrm strchr strrchr strspn strcspn strpbrk strstr strtok strlen
    strerror""")
_ERRNO = _words("errno EDOM ERANGE EILSEQ")
#: what <cblas.h> pulls in: OpenBLAS's own names, <complex.h>, <stdio.h>, <sched.h>, <time.h>
_COMPLEX = _words("complex imaginary CMPLX CMPLXF CMPLXL")
_STDIO = _words("""EOF BUFSIZ FILENAME_MAX FOPEN_MAX L_tmpnam SEEK_CUR SEEK_END SEEK_SET TMP_MAX
    stderr stdin stdout FILE fpos_t""")
_SYSTEM = _words("CLOCKS_PER_SEC SCHED_FIFO SCHED_OTHER SCHED_RR sched_priority")
_OPENBLAS = _words("BLASFUNC CBLAS_H CBLAS_INDEX FLOATRET DOUBLE_DEFINED xdouble BLASLONG "
                   "BLASULONG blasint bfloat16")
#: predefined by GCC (and clang) in their default GNU modes
_COMPILER = _words("linux unix i386")

#: The generated NumPy module: its globals, and the names its kernels (``_forward``,
#: ``loss_and_grad``, ``predict``) bind or call beside the user's names.
_NUMPY_MODULE = _words("""numpy Mapping CONTRACT SIZES PARAMS STATE INPUTS LABELS TARGETS
    OUTPUTS init_params
    loss_and_grad predict _forward check_call draw_params _check_labels _check_array _got
    _axes_text _by_name _check_input _wrong_rank _softmax _log_softmax _FLOATS params state
    inputs targets labels sizes dtype grads range""")
#: The generated C: the run function's arguments and locals, and what it calls.
_C_KERNEL = _words("""sizes params inputs labels targets state loss grads state_grads outputs
    workspace next
    acc top total shift memcpy memset CHAINRULE_OK CHAINRULE_BAD_SIZE CHAINRULE_BAD_LABEL
    CHAINRULE_CBLAS CHAINRULE_BLAS_MIN_WORK CHAINRULE_BLAS_RUNS CHAINRULE_GEMM_CALL
    cblas_dgemm cblas_sgemm CblasRowMajor
    CblasNoTrans CblasTrans""")


def _reserved() -> dict[str, str]:
    """Name → why it is refused; the first family that holds a name gives the reason."""
    families: list[tuple[Iterable[str], str]] = [
        (keyword.kwlist, "is a Python keyword"),
        (keyword.softkwlist, "is a Python soft keyword"),
        ((*_C99_KEYWORDS, *_C23_KEYWORDS), "is a C keyword"),
        (("B",), "is the batch size in the generated code"),
        (_NUMPY_MODULE, "is used by the generated NumPy module"),
        (_C_KERNEL, "is used by the generated C code"),
        (_MATH_MACROS, "is defined by <math.h>"),
        (_MATH_FUNCTIONS, "is a function of <math.h>"),
        (_STDDEF, "is defined by <stddef.h>"),
        (_STDINT, "is defined by <stdint.h>"),
        (_STRING, "is a function of <string.h>"),
        (_ERRNO, "is defined by <errno.h>"),
        (_COMPLEX, "is a macro of <complex.h>, which <cblas.h> includes"),
        (_STDIO, "is defined by <stdio.h>, which <cblas.h> includes"),
        (_SYSTEM, "is a macro of the system headers <cblas.h> includes"),
        (_OPENBLAS, "is defined by <cblas.h> (OpenBLAS)"),
        (_COMPILER, "is a macro GCC predefines in its GNU modes"),
    ]
    reserved: dict[str, str] = {}
    for names, why in families:
        for name in names:
            reserved.setdefault(name, f"{name!r} {why}")
    return reserved


#: Every identifier a user name may not be, with why.
RESERVED: Mapping[str, str] = _reserved()

#: Refused as size names only: what the generated code uses where the sizes (and no other
#: user name) are read.
SIZE_RESERVED: Mapping[str, str] = {
    "n": "'n' is the counter of the generated C's label check, which reads the sizes",
}

#: Whole families, matched case-insensitively: (prefix, why).
RESERVED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("chainrule_", "names starting with chainrule_ (in any case) are the generated C's own "
                   "macros and helpers"),
    ("cblas", "names starting with cblas (in any case) are CBLAS's"),
    ("openblas", "names starting with openblas (in any case) are OpenBLAS's"),
    ("scipy_", "names starting with scipy_ (in any case) are the bundled OpenBLAS's "
               "(scipy-openblas32)"),
)

#: Identifiers the generated code uses only where no user name is in scope: not refused.
INTERNAL: Mapping[str, str] = {
    **{name: "a built-in that only the NumPy module's checks call" for name in _words(
        "ValueError all bool dict int isinstance len list map object str tuple type zip")},
    **{name: "a local, argument or keyword of a NumPy helper that sees no user name"
       for name in _words("""array axes axis bad bound classes contract e expected
           expected_params expected_state got input_axes keepdims keys known label_axes missing
           name names need_targets optimize origin rng s shape shifted size strict u unknown
           value what kind bare listed input_names target_names real_axes unknown_sizes shown""")},
    **{name: "a local of the NumPy module's erf helper, _erf, which sees no user name"
       for name in _words("terms fraction")},
    "out": "numpy.matmul's keyword for the array it writes in place: a keyword, never "
           "bound, so a user's array named out does not clash",
    "collections": "the package the NumPy module imports Mapping from (never bound)",
    **{name: "a local or argument of a C function that sees no user name"
       for name in _words("a i v y")},
    "n": "the C label check's counter, in a block of its own where only the sizes are read "
         "(refused for sizes: SIZE_RESERVED)",
    "I": "<complex.h>'s imaginary unit, which the C source #undefs after <cblas.h> "
         "(I is the built-ins' input size)",
}


def refusal(name: object, *, size: bool = False) -> str | None:
    """Why ``name`` cannot be a user's name, or None if it can; ``size``: it would name a
    size."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        return IDENTIFIER_RULE
    why = RESERVED.get(name) or (SIZE_RESERVED.get(name) if size else None)
    if why is not None:
        return f"is reserved: {why}"
    folded = name.lower()
    for prefix, why in RESERVED_PREFIXES:
        if folded.startswith(prefix):
            return f"is reserved: {why}"
    return None


def adjoint_name(quantity: str) -> str:
    """The array holding ∂L/∂``quantity``: ``d_a_y`` for ``a_y``.

    The one place adjoints (of intermediates) and gradients (of parameters and
    initial states) are named; everything else calls this or :func:`quantity_of_adjoint`.
    """
    return ADJOINT_PREFIX + quantity


def quantity_of_adjoint(name: str) -> str | None:
    """The quantity whose adjoint array :func:`adjoint_name` calls ``name`` (``a_y`` for
    ``d_a_y``), or None if ``name`` is no adjoint's name. Whether that quantity exists, and
    has an adjoint, is the model's to say."""
    if name.startswith(ADJOINT_PREFIX) and len(name) > len(ADJOINT_PREFIX):
        return name[len(ADJOINT_PREFIX):]
    return None


def c_functions(model: str) -> tuple[str, ...]:
    """The functions of model ``model``'s generated C: ``mlp_check_sizes``, ..."""
    return tuple(f"{model}_{suffix}" for suffix in C_FUNCTION_SUFFIXES)


def numbered(base: str) -> Iterator[str]:
    """``base``, ``base_2``, ``base_3``, ...: the candidates for a name made from ``base``."""
    yield base
    n = 2
    while True:
        yield f"{base}_{n}"
        n += 1


class Names:
    """The names taken in one set of generated files; :meth:`fresh` hands out new ones.

    A candidate is free when nobody took it and it is not reserved (it would pass
    :func:`refusal`), so a generated name never captures a user's name, a name the
    generated code uses itself, or another generated name.
    """

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = set(taken)

    def __contains__(self, name: object) -> bool:
        return name in self._taken

    def is_free(self, name: str) -> bool:
        return name not in self._taken and refusal(name, size=True) is None

    def take(self, name: str) -> str:
        """Mark ``name`` (a user's name, or one chosen elsewhere) as taken."""
        self._taken.add(name)
        return name

    def fresh(self, candidates: Iterable[str]) -> str:
        """The first free name among ``candidates`` (an endless supply), now taken."""
        for candidate in candidates:
            if self.is_free(candidate):
                return self.take(candidate)
        raise ValueError("no free name among the candidates")

    def copy(self) -> Names:
        return Names(self._taken)
