"""SymPy expression classes that the derivation writes but users never do.

Role in DESIGN.md's picture: vocabulary shared by ``derive()`` and every printer.

- :class:`InRange` is an Iverson bracket ``[lo ≤ e ≤ hi]``: the range condition a
  contraction leaves on a term (``δ^{t+1}`` exists only for ``t+1 ≤ T``). It is
  data on the term, not a ``Piecewise``; the plan turns it into a loop guard and
  the notes into a boundary condition.
- :class:`Partial` is the unevaluated ``∂num/∂den`` shown in recorded steps.
"""

from __future__ import annotations

import sympy
from sympy import Expr


class InRange(sympy.Function):
    """``[lo <= expr <= hi]``: 1 inside the range, 0 outside."""

    nargs = 3

    @classmethod
    def eval(cls, expr: Expr, lo: Expr, hi: Expr) -> Expr | None:
        below = sympy.simplify(lo - expr)
        above = sympy.simplify(expr - hi)
        if below.is_positive or above.is_positive:
            return sympy.S.Zero
        if below.is_nonpositive and above.is_nonpositive:
            return sympy.S.One
        return None

    @property
    def target(self) -> Expr:
        return self.args[0]


class Partial(sympy.Expr):
    """The partial derivative ``∂num/∂den``, kept unevaluated for display."""

    is_commutative = True

    def __new__(cls, num: Expr, den: Expr) -> Partial:
        return sympy.Expr.__new__(cls, sympy.sympify(num), sympy.sympify(den))

    @property
    def num(self) -> Expr:
        return self.args[0]

    @property
    def den(self) -> Expr:
        return self.args[1]

    def _sympystr(self, printer: sympy.printing.str.StrPrinter) -> str:
        return f"∂{printer.doprint(self.num)}/∂{printer.doprint(self.den)}"
