"""chainrule's symbolic half: the model API and derive().

Read DESIGN.md's picture left to right: a :class:`Model` (``model.py``) goes
through :func:`derive` (``derive.py``) and comes out a :class:`Derivation`
(``derivation.py``) that every backend in ``codegen/`` prints.

This package's ``__all__`` is everything ``codegen/`` may use of it: codegen
imports from ``chainrule.symbolic`` and never from its modules (the user-facing
``networks`` and ``spec`` aside; ``tests/test_layers.py`` holds it to that).
"""

from sympy import Idx, IndexedBase, Sum, exp, log, tanh

from .contraction import reduce_ranges
from .derivation import Adjoint, Derivation, LocalPartial, Step
from .derive import derive
from .expressions import InRange, Partial
from .functions import (
    ACTIVATIONS,
    MissingDerivativeRule,
    MissingPrinter,
    derivative_rule,
    logistic,
    missing_printer,
    relu,
    softplus,
    step,
)
from .model import Equation, Model, ModelError, Quantity, Role
from .names import Names, adjoint_name, c_functions, numbered, quantity_of_adjoint
from .rules import Rule, rule_text
from .verify import (
    NUMERIC_FUNCTIONS,
    TOLERANCE,
    Numbers,
    VerifyError,
    VerifyReport,
    default_cases,
    verify_derivation,
)

__all__ = [
    "ACTIVATIONS",
    "NUMERIC_FUNCTIONS",
    "TOLERANCE",
    "Adjoint",
    "Derivation",
    "Equation",
    "Idx",
    "InRange",
    "IndexedBase",
    "LocalPartial",
    "MissingDerivativeRule",
    "MissingPrinter",
    "Model",
    "ModelError",
    "Names",
    "Numbers",
    "Partial",
    "Quantity",
    "Role",
    "Rule",
    "Step",
    "Sum",
    "VerifyError",
    "VerifyReport",
    "adjoint_name",
    "c_functions",
    "default_cases",
    "derivative_rule",
    "derive",
    "exp",
    "log",
    "logistic",
    "missing_printer",
    "numbered",
    "quantity_of_adjoint",
    "reduce_ranges",
    "relu",
    "rule_text",
    "softplus",
    "step",
    "tanh",
    "verify_derivation",
]
