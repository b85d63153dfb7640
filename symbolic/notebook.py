"""How a Derivation, an Adjoint and a Step display in Jupyter: LaTeX in the notes' letters.

Role in DESIGN.md's picture: the smallest LaTeX printer of a derivation, inside
``symbolic/`` (which never imports ``codegen/``, where the notes' full printer lives).
:class:`NotationPrinter` subclasses SymPy's ``LatexPrinter`` and overrides only what the
notes write differently: each quantity as its model declares it (``latex=``, the
adjoint's ``adjoint=``: ``\\delta_j^t``), unit indices as subscripts and time as a
superscript, ``∂L/∂q`` for an adjoint without a letter, Kronecker deltas, Iverson
brackets for index ranges, bare ``\\sum_k``, ``\\sigma`` for the logistic function. The
notes also drop a layer label where the indices tell layers apart, and print the
vector forms; for those, read the notes (``chainrule notes``).

The ``_repr_latex_`` methods of ``derivation.py`` call :func:`derivation_latex`,
:func:`adjoint_latex` and :func:`step_latex`. A lone Adjoint or Step does not hold its
model, only the quantities it names (its own, its consumers'): other arrays print by
their names there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase
from sympy.printing.latex import LatexPrinter

from .expressions import InRange, Partial
from .model import Model, Quantity
from .names import quantity_of_adjoint
from .rules import rule_text

__all__ = ["NotationPrinter", "adjoint_latex", "derivation_latex", "step_latex"]


def _split(tex: str) -> tuple[str, str | None, str | None]:
    """``w^{(xh)}`` → ("w", None, "(xh)"); ``\\delta_k`` → ("\\delta", "k", None)."""
    stem_end = 0
    if tex.startswith("\\"):
        stem_end = 1
        while stem_end < len(tex) and tex[stem_end].isalpha():
            stem_end += 1
    else:
        while stem_end < len(tex) and tex[stem_end] not in "_^":
            stem_end += 1
    stem, rest = tex[:stem_end], tex[stem_end:]
    scripts: dict[str, str] = {}
    while rest and rest[0] in "_^" and rest[0] not in scripts:
        mark, rest = rest[0], rest[1:]
        if rest.startswith("{"):
            end = _closing(rest)
            scripts[mark], rest = rest[1:end], rest[end + 1:]
        else:
            scripts[mark], rest = rest[:1], rest[1:]
    if rest or not stem:  # a shape this printer does not compose: keep it whole
        return "{" + tex + "}", None, None
    return stem, scripts.get("_"), scripts.get("^")


def _closing(text: str) -> int:
    """Where the group that opens ``text`` (with ``{``) closes (its length if it never does)."""
    depth = 0
    for position, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return position
    return len(text)


def _compose(stem: str, sub: str | None, sup: str | None) -> str:
    return stem + (f"_{{{sub}}}" if sub else "") + (f"^{{{sup}}}" if sup else "")


class NotationPrinter(LatexPrinter):
    """SymPy's LaTeX printer with the letters of ``quantities`` (by name)."""

    def __init__(self, quantities: Mapping[str, Quantity], *,
                 index_latex: Mapping[str, str] | None = None,
                 loss: tuple[str, str] | None = None, settings: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(settings)
        self.quantities = dict(quantities)
        self.index_latex = dict(index_latex or {})
        self.loss = loss  # (the loss symbol's name, its LaTeX)

    @classmethod
    def of_model(cls, model: Model) -> NotationPrinter:
        loss = model.loss_equation
        loss_tex = None
        if loss is not None and isinstance(loss.lhs, sympy.Symbol):
            loss_tex = (loss.lhs.name, loss.quantity.latex)
        return cls(model.quantities, index_latex=model.index_latex, loss=loss_tex)

    def _lookup(self, base: IndexedBase) -> tuple[Quantity | None, bool]:
        quantity = self.quantities.get(base.name)
        if quantity is not None:
            return quantity, False
        of = quantity_of_adjoint(base.name)
        return (self.quantities.get(of), True) if of is not None else (None, False)

    def _symbol(self, quantity: Quantity, adjoint: bool, indices: tuple[Expr, ...]) -> str:
        indices = tuple(indices)
        time = None
        if quantity.time and len(indices) == quantity.rank:
            indices, time = indices[:-1], indices[-1]
        letter = quantity.adjoint_latex if adjoint else quantity.latex
        assert letter is not None
        stem, sub, sup = _split(letter)
        printed = [self._print(i) for i in indices]
        if printed:
            joined = "".join(printed) if all(len(p.rstrip("'")) == 1 for p in printed) \
                else r"\,".join(printed)
            # a symbol's own subscript that names its one unit index (``\delta_k`` over k)
            # gives way to the index; a label (``\delta_\iota``) stays
            unit = len(indices) == 1 and sub is not None and (
                sub == printed[0].rstrip("'") or sub in self.index_latex)
            sub = joined if (sub is None or unit) else f"{sub},{joined}"
        if time is not None:
            sup = self._print(time) if sup is None else f"{sup}\\,{self._print(time)}"
        return _compose(stem, sub, sup)

    def _print_Indexed(self, expr: Indexed) -> str:
        quantity, adjoint = self._lookup(expr.base)
        if quantity is None:
            return super()._print_Indexed(expr)
        if adjoint and not quantity.adjoint_latex:
            return self._partial(self._symbol(quantity, False, expr.indices))
        return self._symbol(quantity, adjoint, expr.indices)

    def _print_IndexedBase(self, expr: IndexedBase) -> str:
        quantity, adjoint = self._lookup(expr)
        if quantity is None:
            return super()._print_IndexedBase(expr)
        if adjoint and not quantity.adjoint_latex:
            return self._partial(quantity.latex)
        return (quantity.adjoint_latex if adjoint else quantity.latex) or quantity.name

    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exponent = expr.args
        if isinstance(base, Indexed) and exponent.is_Integer and exponent > 0:
            tex = self._print(base)
            if "^" in tex or tex.startswith(r"\frac"):  # b_h^t squared: (b_h^t)^2
                return rf"\left({tex}\right)^{{{self._print(exponent)}}}"
            return f"{tex}^{{{self._print(exponent)}}}"
        return super()._print_Pow(expr)

    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        if self.loss is not None and expr.name == self.loss[0]:
            return self.loss[1]
        return super()._print_Symbol(expr, style)

    def _print_Idx(self, expr: Idx) -> str:
        name = expr.name.split("#")[0]
        stem = name.rstrip("'")
        primes = len(name) - len(stem)
        tex = self.index_latex.get(stem, stem)
        if tex == stem:  # declared without latex=: ``k_`` is how Python spells k'
            bare = stem.rstrip("_") or stem
            primes += len(stem) - len(bare)
            tex = self._deal_with_super_sub(bare)
        return tex + "'" * primes

    def _partial(self, of: str) -> str:
        loss = self.loss[1] if self.loss else "L"
        return rf"\frac{{\partial {loss}}}{{\partial {of}}}"

    def _print_Partial(self, expr: Partial) -> str:
        return rf"\frac{{\partial {self._print(expr.num)}}}{{\partial {self._print(expr.den)}}}"

    def _print_KroneckerDelta(self, expr: sympy.KroneckerDelta, exp: str | None = None) -> str:
        a, b = (self._print(arg) for arg in expr.args)
        tex = rf"\delta_{{{a}{b}}}" if all(isinstance(x, Idx) for x in expr.args) \
            else rf"\delta_{{{a},{b}}}"
        return rf"\left({tex}\right)^{{{exp}}}" if exp is not None else tex

    def _print_Sum(self, expr: sympy.Sum) -> str:
        signs = "".join(rf"\sum_{{{self._print(index)}}}" for index, _, _ in expr.limits)
        body = self._print(expr.function)
        if isinstance(expr.function, sympy.Add):
            body = rf"\left({body}\right)"
        return f"{signs} {body}"

    def _print_InRange(self, expr: InRange) -> str:
        target, lo, hi = (self._print(a) for a in expr.args)
        return rf"\left[{lo} \le {target} \le {hi}\right]"

    def _print_logistic(self, expr: sympy.Function, exp: str | None = None) -> str:
        name = rf"\sigma^{{{exp}}}" if exp is not None else r"\sigma"
        return rf"{name}\left({self._print(expr.args[0])}\right)"


def _lhs(printer: NotationPrinter, adjoint: Any) -> str:
    """``\\delta_j^t`` (the adjoint's letter), or ``∂L/∂q`` where it has none."""
    return printer._print(adjoint.lhs) if adjoint.indices else printer._print(
        adjoint.base)


def _aligned(rows: Iterable[str]) -> str:
    return "$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"


def _printer_of(adjoints: Iterable[Any]) -> NotationPrinter:
    """A printer knowing the quantities an adjoint holds: its own and its consumers'."""
    quantities: dict[str, Quantity] = {}
    for adjoint in adjoints:
        quantities[adjoint.quantity.name] = adjoint.quantity
        for partial in adjoint.local_partials:
            quantities.setdefault(partial.consumer.quantity.name, partial.consumer.quantity)
    return NotationPrinter(quantities)


def derivation_latex(derivation: Any) -> str:
    """Every adjoint and gradient of ``derivation``, one aligned row each."""
    printer = NotationPrinter.of_model(derivation.model)
    rows = [rf"{_lhs(printer, a)} &= {printer.doprint(a.expr)}"
            for a in [*derivation.named, *derivation.gradients.values()]]
    return _aligned(rows)


def adjoint_latex(adjoint: Any, printer: NotationPrinter | None = None) -> str:
    """The adjoint's result, then each recorded step with its rule."""
    printer = printer or _printer_of([adjoint])
    rows = [rf"&= {printer.doprint(step.after)} && \text{{({rule_text(step.rule_key)})}}"
            for step in adjoint.steps]
    if not adjoint.steps or adjoint.steps[-1].after != adjoint.expr:
        rows.append(rf"&= {printer.doprint(adjoint.expr)}")
    rows[0] = _lhs(printer, adjoint) + " " + rows[0]
    return _aligned(rows)


def step_latex(step: Any, printer: NotationPrinter | None = None) -> str:
    """``before = after`` by the step's rule."""
    printer = printer or NotationPrinter({})
    return _aligned([rf"{printer.doprint(step.before)} &= {printer.doprint(step.after)} "
                     rf"&& \text{{({rule_text(step.rule_key)})}}"])
