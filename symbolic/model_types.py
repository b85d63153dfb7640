"""The pieces a Model is made of: roles, quantities, equations, and the error a bad model raises.

Role in DESIGN.md's picture: the vocabulary of the first stage, shared by the
class that holds a model's declarations (``model.py``) and the checks that
validate them (``model_checks.py``), so that neither imports the other's module
for its types. Import them from ``chainrule.symbolic``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase, Symbol


class ModelError(ValueError):
    """A model is malformed; the message names the equation and what is wrong."""


class Role(enum.Enum):
    INPUT = "input"
    TARGET = "target"
    PARAMETER = "parameter"
    STATE = "state"
    INTERMEDIATE = "intermediate"
    LOSS = "loss"


#: The roles whose quantities get an adjoint (or gradient) array, named by
#: ``names.adjoint_name``.
WITH_ADJOINT = (Role.INTERMEDIATE, Role.PARAMETER, Role.STATE)


@dataclass(frozen=True)
class Quantity:
    """A named array of the model, per example: ``sizes`` are its unit axes, ``time`` adds t."""

    name: str
    role: Role
    sizes: tuple[Symbol, ...]
    time: bool
    latex: str
    base: IndexedBase = field(compare=False, repr=False)
    adjoint_latex: str | None = None
    state_of: str | None = None
    one_hot: bool = False

    @property
    def rank(self) -> int:
        return len(self.sizes) + (1 if self.time else 0)


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs``: the definition of one intermediate (or of the loss, whose lhs is a Symbol)."""

    quantity: Quantity
    lhs: Expr
    rhs: Expr

    @property
    def free(self) -> tuple[Idx, ...]:
        return tuple(self.lhs.indices) if isinstance(self.lhs, Indexed) else ()

    def __str__(self) -> str:
        return f"{sympy.sstr(self.lhs)} = {sympy.sstr(self.rhs)}"


__all__ = ["WITH_ADJOINT", "Equation", "ModelError", "Quantity", "Role"]
