"""The kernel plan: a small, backend-neutral description of one network's kernels.

Role in DESIGN.md's picture: the middle of ``Derivation → plan → text``. The
plan says which arrays exist (shapes in size names, the batch axis added), and
lists statements in phases: ``forward``, ``loss`` (the scalar loss, summed over
the batch), ``backward`` (the stored adjoints) and ``gradients`` (parameter
gradients, each one contraction over the batch). Recurrent models will add the
loops over ``t`` as phases of their own (issue "Recurrence").

Statements reference arrays as SymPy ``Indexed`` objects whose indices are plan
indices (:data:`BATCH` and the model's unit indices). Each statement is a
contraction (einsum-like), an elementwise assignment, a (log-)softmax or a
one-hot expansion of the labels. Backends
print statements; they never look at the Derivation.
"""

from __future__ import annotations

import enum
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
class Array:
    """An array of the kernel; ``axes`` are size symbols (``B`` and ``T`` included)."""

    name: str
    axes: tuple[Symbol, ...]
    kind: Kind
    quantity: str | None = None


@dataclass(frozen=True)
class Contract:
    """``out[...] (+)= coefficient · Σ_{indices not in out} Π operands``."""

    out: Ref
    operands: tuple[Indexed, ...]
    coefficient: Expr
    accumulate: bool = False
    comment: str = ""


@dataclass(frozen=True)
class Assign:
    """``out[...] (+)= value``, elementwise over ``out``'s indices."""

    out: Ref
    value: Expr
    accumulate: bool = False
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
    """``out[b, k] = [labels[b] == k]``: the one-hot target built from integer labels."""

    out: Ref
    axis: Idx
    comment: str = ""


Statement = Contract | Assign | Softmax | OneHot


@dataclass
class Plan:
    """Everything a backend needs to print the kernels of one network."""

    name: str
    title: str
    source: str
    sizes: tuple[Symbol, ...]
    arrays: dict[str, Array]
    input: str
    target: str
    output: str
    loss: str
    parameters: dict[str, tuple[Symbol, ...]]
    states: dict[str, tuple[Symbol, ...]]
    gradients: dict[str, str]
    forward: list[Statement] = field(default_factory=list)
    loss_statements: list[Statement] = field(default_factory=list)
    backward: list[Statement] = field(default_factory=list)
    gradient_statements: list[Statement] = field(default_factory=list)

    def array(self, ref: Ref) -> Array:
        return self.arrays[ref_name(ref)]


Ref = Indexed | Symbol


def ref_name(ref: Ref) -> str:
    """The array a reference reads or writes."""
    return str(ref.base.label) if isinstance(ref, Indexed) else ref.name


def ref_indices(ref: Ref) -> tuple[Expr, ...]:
    """A reference's indices; ``()`` for a scalar."""
    return tuple(ref.indices) if isinstance(ref, Indexed) else ()
