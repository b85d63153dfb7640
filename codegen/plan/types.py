"""The kernel plan: a small, backend-neutral description of one network's kernels.

Role in DESIGN.md's picture: the middle of ``Derivation → plan → text``. The
plan says which arrays exist (shapes in size names, the batch axis added, time
first for arrays over time) and lists statements in four phases: ``forward``,
``loss`` (the scalar loss, summed over the batch and time), ``backward`` (the
stored adjoints) and ``gradients`` (parameter gradients, each one contraction
over time and batch, and the initial states' gradients). A recurrent phase
holds one :class:`Loop` over ``t`` (ascending forward, descending backward)
between the statements hoisted before it and those that run after it.

Statements reference arrays as SymPy ``Indexed`` objects whose indices are plan
indices: the model's time index ``t`` (possibly shifted, ``t-1``, or a constant),
:data:`BATCH` and the model's unit indices. Outside a loop a reference at ``t``
means every step at once; inside it, the current step. Each statement is a
contraction (einsum-like), an elementwise assignment, a (log-)softmax, a one-hot
expansion of the labels, or one of the bookkeeping statements (allocation,
initial state, concatenation of parameters, views of a fused buffer, a guard).
Backends print statements; they never look at the Derivation.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from sympy import Expr, Idx, Indexed, Symbol

#: The batch size and the batch index codegen adds to every per-example array.
BATCH_SIZE = Symbol("B", integer=True, positive=True)
BATCH = Idx("b#", (0, BATCH_SIZE - 1))


class Kind(enum.Enum):
    INPUT = "input"
    TARGET = "target"
    PARAMETER = "parameter"
    STATE = "state"
    FORWARD = "forward"
    ADJOINT = "adjoint"
    GRADIENT = "gradient"
    TEMPORARY = "temporary"


@dataclass(frozen=True)
class View:
    """An array that is the slice ``start:stop`` of ``buffer`` along axis ``axis``."""

    buffer: str
    axis: int
    start: Expr
    stop: Expr


@dataclass(frozen=True)
class Array:
    """An array of the kernel; ``axes`` are sizes (``B`` and the number of time rows included).

    An array over time has the time axis first; its row 0 holds step
    ``first_time`` (0 for a quantity whose initial state is row 0, else 1); a quantity
    read at t+1 has its initial state after step T, in its last row. A
    fused buffer lists its ``parts``, each an array with a :class:`View` of it.
    """

    name: str
    axes: tuple[Expr, ...]
    kind: Kind
    quantity: str | None = None
    time: Idx | None = None
    first_time: int = 1
    view: View | None = None
    parts: tuple[str, ...] = ()
    #: the step whose row holds the quantity's initial state: 0 (row 0) for a quantity read
    #: at t-1, T + 1 (the last row) for one read at t+1; None without a state
    initial_at: Expr | None = None
    #: rows of zeros beyond the initial state's, for reads further back (t-2: the step
    #: t = -1) or ahead (t+2: T + 2)
    padding: int = 0


@dataclass(frozen=True)
class Contract:
    """``out[...] = coefficient · Σ_{indices not in out} Π operands``; with ``accumulate``,
    ``out[...] +=`` (``plan/accumulate.py``)."""

    out: Ref
    operands: tuple[Indexed, ...]
    coefficient: Expr
    comment: str = ""
    accumulate: bool = False


@dataclass(frozen=True)
class Assign:
    """``out[...] = value``, elementwise over ``out``'s indices."""

    out: Ref
    value: Expr
    comment: str = ""


@dataclass(frozen=True)
class Softmax:
    """``out = softmax(logits)`` (or ``log_softmax`` when ``log``) along ``axis``, stably."""

    out: Ref
    logits: Indexed
    axis: Idx
    log: bool = False
    comment: str = ""


@dataclass(frozen=True)
class OneHot:
    """``out[..., k] = [labels[...] == k]``: the one-hot target ``out`` built from the
    integer labels the caller passes for it."""

    out: Ref
    axis: Idx
    comment: str = ""


@dataclass(frozen=True)
class Concat:
    """``out`` = the parameters ``parts`` side by side along axis ``axis`` (a copy); with
    ``transposed``, each part (a matrix) transposed first (``plan/transpose.py``)."""

    out: str
    parts: tuple[str, ...]
    axis: int
    comment: str = ""
    transposed: bool = False


@dataclass(frozen=True)
class Allocate:
    """``name`` gets storage of its shape; statements then write it in place."""

    name: str
    comment: str = ""


@dataclass(frozen=True)
class Initial:
    """The row of step ``step`` (0, or T + 1 for a quantity read at t+1) of ``array`` is the
    initial state ``state`` (zeros when none is given); the array's padding rows beyond it
    are zeros."""

    array: str
    state: str
    step: Expr
    comment: str = ""


@dataclass(frozen=True)
class Split:
    """Bind every view of ``buffer`` (arrays whose :class:`View` names it)."""

    buffer: str
    comment: str = ""


@dataclass(frozen=True)
class Guarded:
    """``body`` runs only where ``lo ≤ t ≤ hi`` (or ``lo ≤ value ≤ hi``); elsewhere ``out``
    is zero.

    This is how a boundary condition of the derivation (``[t ≤ T-1]``, i.e.
    ``δ^{T+1} = 0``) reaches the kernels: the guarded term is never evaluated
    where it would read past the last step.
    """

    lo: Expr
    hi: Expr
    body: tuple[Statement, ...]
    out: Ref
    comment: str = ""
    #: what the condition tests: None for the time index, else an expression in the sizes
    #: alone (``[2 ≤ T]``: the body reads step 2)
    value: Expr | None = None


@dataclass(frozen=True)
class Loop:
    """``for t`` over ``1..T`` (``step`` 1) or ``T..1`` (``step`` -1), running ``body``."""

    step: int
    body: tuple[Statement, ...]
    comment: str = ""


Statement = Contract | Assign | Softmax | OneHot | Concat | Allocate | Initial | Split \
    | Guarded | Loop


@dataclass
class Plan:
    """Everything a backend needs to print the kernels of one network."""

    name: str
    title: str
    source: str
    sizes: tuple[Symbol, ...]
    arrays: dict[str, Array]
    #: the model's inputs, in its order (the kernels take them by name)
    inputs: tuple[str, ...]
    #: every target, in the model's order; those in ``labels`` come as class labels
    #: (integers, expanded by a :class:`OneHot`), the others as real values
    targets: tuple[str, ...]
    labels: tuple[str, ...]
    #: what ``predict`` returns: the quantities the loss reads
    outputs: tuple[str, ...]
    loss: str
    parameters: dict[str, tuple[Symbol, ...]]
    states: dict[str, tuple[Symbol, ...]]
    gradients: dict[str, str]
    time: Idx | None = None
    forward: list[Statement] = field(default_factory=list)
    loss_statements: list[Statement] = field(default_factory=list)
    backward: list[Statement] = field(default_factory=list)
    gradient_statements: list[Statement] = field(default_factory=list)

    def array(self, ref: Ref | str) -> Array:
        return self.arrays[ref if isinstance(ref, str) else ref_name(ref)]

    def views_of(self, buffer: str) -> list[Array]:
        """The arrays that are slices of ``buffer``, in the buffer's order."""
        return [self.arrays[part] for part in self.arrays[buffer].parts]

    def in_place(self) -> set[str]:
        """Arrays that have storage before they are written (allocated, or views of a buffer)."""
        allocated = {s.name for s in walk(self.all_statements()) if isinstance(s, Allocate)}
        return allocated | {a.name for a in self.arrays.values() if a.view}

    def all_statements(self) -> list[Statement]:
        return [*self.forward, *self.loss_statements, *self.backward,
                *self.gradient_statements]


Ref = Indexed | Symbol


def ref_name(ref: Ref) -> str:
    """The array a reference reads or writes."""
    return str(ref.base.label) if isinstance(ref, Indexed) else ref.name


def ref_indices(ref: Ref) -> tuple[Expr, ...]:
    """A reference's indices; ``()`` for a scalar."""
    return tuple(ref.indices) if isinstance(ref, Indexed) else ()


def walk(statements: list[Statement] | tuple[Statement, ...]) -> list[Statement]:
    """Every statement, those inside loops and guards included, in order."""
    flat: list[Statement] = []
    for statement in statements:
        flat.append(statement)
        if isinstance(statement, Loop | Guarded):
            flat += walk(statement.body)
    return flat


def written(statement: Statement) -> set[str]:
    """The arrays ``statement`` (with everything inside it) writes."""
    if isinstance(statement, Loop):
        return set().union(*(written(s) for s in statement.body))
    if isinstance(statement, Guarded):
        return {ref_name(statement.out)}.union(*(written(s) for s in statement.body))
    if isinstance(statement, Concat | Allocate):
        return {statement.out if isinstance(statement, Concat) else statement.name}
    if isinstance(statement, Initial):
        return {statement.array}
    if isinstance(statement, Split):
        return set()
    return {ref_name(statement.out)}


def read(statement: Statement) -> list[Ref]:
    """The references ``statement`` (with everything inside it) reads."""
    if isinstance(statement, Loop | Guarded):
        return [ref for s in statement.body for ref in read(s)]
    if isinstance(statement, Contract):
        return [*statement.operands, *([statement.out] if statement.accumulate else [])]
    if isinstance(statement, Assign):
        refs = sorted(statement.value.atoms(Indexed), key=str)
        labels = {ref.base.label for ref in refs}
        # free_symbols holds every Indexed's label too; a scalar temporary is a bare Symbol
        scalars = (s for s in statement.value.free_symbols
                   if type(s) is Symbol and s not in labels)
        return refs + sorted(scalars, key=str)
    if isinstance(statement, Softmax):
        return [statement.logits]
    return []


def matrix_product(left: Sequence[Expr], right: Sequence[Expr], out: Sequence[Expr]
                   ) -> tuple[bool, list[Expr]] | None:
    """Whether ``out = Σ left·right`` (operands and output given by their axes) is a
    product of two matrices, and how: ``(swapped, shared)``.

    It is one when the operands share at least one axis, every shared axis is summed
    (none is in the output), no operand repeats an axis, and the output is the first
    operand's other axes followed by the second's, with the operands in the given order
    (``swapped`` False) or the other way round (True). ``shared`` lists the summed axes
    in the order of the first operand of that product. How the matrices lie in memory
    (transposes, strides) is each backend's question.
    """
    shared = [axis for axis in left if axis in right]
    if not shared or any(axis in out for axis in shared) or len(set(left)) != len(left) \
            or len(set(right)) != len(right):
        return None
    for swapped, (first, second) in ((False, (left, right)), (True, (right, left))):
        rest = [a for a in first if a not in shared] + [a for a in second if a not in shared]
        if tuple(rest) == tuple(out):
            return swapped, [a for a in first if a in shared]
    return None
