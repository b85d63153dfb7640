"""The plan's statement kinds as an interface: what every backend that prints a plan implements.

Role in DESIGN.md's picture: the seam between ``plan`` and the backends. A backend's
statement printer subclasses :class:`StatementVisitor` and defines one method per
kind in :data:`KINDS` (``assign``, ``contract``, ...); ``visit`` dispatches on the
statement's type. A subclass that leaves a kind out fails when it is defined (at
import), not by falling through when a plan first holds that kind; a subclass meant
to be completed by another says so with ``partial=True``.
"""

from __future__ import annotations

import typing
from typing import Any

from chainrule.codegen.plan.types import (
    Allocate,
    Assign,
    Concat,
    Contract,
    Guarded,
    Initial,
    Loop,
    OneHot,
    Softmax,
    Split,
    Statement,
)

__all__ = ["KINDS", "StatementVisitor"]

#: every statement kind of the plan and the method that prints it
KINDS: dict[type, str] = {
    Contract: "contract",
    Assign: "assign",
    Softmax: "softmax",
    OneHot: "one_hot",
    Concat: "concat",
    Allocate: "allocate",
    Initial: "initial",
    Split: "split",
    Guarded: "guarded",
    Loop: "loop",
}

if set(KINDS) != set(typing.get_args(Statement)):  # a kind added to types.py but not here
    raise TypeError(f"plan.visitor.KINDS {sorted(k.__name__ for k in KINDS)} differs from "
                    f"the kinds of plan.types.Statement "
                    f"{sorted(k.__name__ for k in typing.get_args(Statement))}")


class StatementVisitor:
    """Dispatch on a statement's kind: ``visit(statement, *context)`` calls the method
    :data:`KINDS` names for its type with the same arguments."""

    def __init_subclass__(cls, *, partial: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if partial:
            return
        missing = [method for method in KINDS.values() if not callable(getattr(cls, method, None))]
        if missing:
            raise TypeError(f"{cls.__module__}.{cls.__qualname__} prints plans but has no "
                            f"method for the statement kinds {', '.join(missing)} "
                            f"(see codegen/plan/visitor.py)")

    def visit(self, statement: Statement, *context: Any) -> Any:
        try:
            method = KINDS[type(statement)]
        except KeyError:
            raise TypeError(f"{type(statement).__name__} is not a statement kind of the plan "
                            f"(expected one of {', '.join(k.__name__ for k in KINDS)})") from None
        return getattr(self, method)(statement, *context)
