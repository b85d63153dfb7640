"""chainrule's symbolic half: the model API and derive().

Read DESIGN.md's picture left to right: a :class:`Model` (``model.py``) goes
through :func:`derive` (``derive.py``) and comes out a :class:`Derivation` that
every backend in ``codegen/`` prints.
"""

from sympy import Idx, IndexedBase, Sum, exp, log, tanh

from .derive import Adjoint, Derivation, Step, derive
from .expressions import InRange, Partial
from .functions import ACTIVATIONS, MissingDerivativeRule, derivative_rule, logistic, relu, step
from .model import Equation, Model, ModelError, Quantity, Role

__all__ = [
    "ACTIVATIONS", "Adjoint", "Derivation", "Equation", "Idx", "InRange", "IndexedBase",
    "MissingDerivativeRule", "Model", "ModelError", "Partial", "Quantity", "Role", "Step", "Sum",
    "derivative_rule", "derive", "exp", "log", "logistic", "relu", "step", "tanh",
]
