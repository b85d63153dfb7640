"""Matrix and vector forms of index equations, for the notes' summary and gradient table.

Role in DESIGN.md's picture: part of the ``latex`` branch. An equation in index notation
(``a_k^t = Σ_h w_{hk} b_h^t + β_k``) is rewritten over whole vectors and matrices
(``a^t = W^\\top b^t + β``): a sum over a unit index of a matrix times a vector is a
matrix product, decided by the plan's own test (``codegen.plan.matrix_product``, the one
the kernels' contractions use); a sum over time of two vectors with the output's two
indices is a sum of outer products (``Σ_t x^t (δ^t)^\\top``); a sum of a product of
vectors over their one index is a dot product; ``exp(a_k)/Σ_{k'} exp(a_{k'})`` is
``softmax(a)``; products of vectors are elementwise (``⊙``), and so are functions.
Where an expression has no such form, :func:`vector_form` returns None and the notes
show the index form alone.
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy import Expr, Idx, Indexed

from chainrule.codegen.backends.latex.notation import is_label, vector_symbols
from chainrule.codegen.backends.latex.printer import (
    GravesBase,
    NotesLatexPrinter,
    Scripted,
    split_scripts,
)
from chainrule.codegen.plan.types import matrix_product
from chainrule.symbolic import InRange, Model, Partial, Role


class _NoForm(Exception):
    """The expression has no matrix form this module knows."""


class Atom(sympy.Symbol):
    """A printed vector, matrix or scalar standing in the expression tree: ``W^{(hy)} δ^t``."""

    tex: str
    axes: tuple[Idx, ...]
    rank: int
    #: a product or a sum printed as one atom: parenthesised as a factor of ``⊙``
    compound: bool
    #: what the atom computes, for the numerical check (``vector_check.py``): the tuple
    #: ``(kind, *arguments)`` of one of the kinds of :data:`OPERATIONS`
    op: tuple[Any, ...]

    def __new__(cls, tex: str, axes: tuple[Idx, ...], rank: int = 2,
                compound: bool = False, op: tuple[Any, ...] = ()) -> Atom:
        # SymPy caches Symbols by name: every attribute is in the name, or an atom made
        # for another model would hand this one its rank (and the order of its factors)
        atom = super().__new__(cls, f"atom:{tex}:{axes}:{rank}:{compound}:{op}")
        atom.tex, atom.axes, atom.rank, atom.compound, atom.op = tex, axes, rank, compound, op
        return atom


#: The kinds of :attr:`Atom.op`, with their arguments: each is decided where the atom's
#: TeX is, from the same facts (which matrix, transposed or not), so that evaluating the
#: operations checks the decisions the printed form shows.
OPERATIONS = {
    "array": "(name, adjoint, time): the quantity's values (its adjoint's, with adjoint)"
             " at step time (None: no time axis) over its unit axes",
    "softmax": "(argument,): softmax of the argument atom over its one axis",
    "matvec": "(name, transposed, vector): the matrix (transposed) times the vector",
    "dot": "(first, second): the dot product of two vectors",
    "outer": "(left, right): the outer product of two products of vectors",
    "time_sum": "(body,): the body summed over t = 1..T",
    "range": "(target, lo, hi): 1 where lo <= target <= hi, else 0 (an Iverson bracket)",
    "value": "(expr,): a converted expression",
}


class _VectorPrinter(NotesLatexPrinter):
    def _print_Atom(self, expr: Atom) -> str:
        return expr.tex

    def _print_Mul(self, expr: Expr) -> str:
        if isinstance(expr, sympy.Mul):
            brackets = [f for f in expr.args if isinstance(f, Atom) and f.op[:1] == ("range",)]
            if brackets:  # an Iverson bracket first, as in index form: [t = T] W δ
                if expr.could_extract_minus_sign():
                    return "- " + self._print(-expr)
                rest = sympy.Mul(*(f for f in expr.args if f not in brackets))
                return " ".join([*(b.tex for b in brackets), self._print(rest)])
            coefficient, factors = expr.as_coeff_mul()
            vectors = [f for f in factors if _is_vector(f)]
            if len(vectors) > 1 and coefficient in (1, -1):
                vectors = _graves_order(vectors)
                scalars = [self._print(f) for f in factors if not _is_vector(f)]
                pieces = [self._add_parens(self._print(f))
                          if isinstance(f, sympy.Add) or (isinstance(f, Atom) and f.compound)
                          else self._print(f) for f in vectors]
                head = ("- " if coefficient == -1 else "") + " ".join(scalars)
                return (head + " " if scalars else head) + r" \odot ".join(pieces)
        return super()._print_Mul(expr)

    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exponent = expr.args
        if isinstance(base, Atom) and base.axes and exponent == 2:
            return rf"{base.tex} \odot {base.tex}"
        return super()._print_Pow(expr)


def _rank(expr: Expr) -> int:
    """Graves' order of factors (as the index form's printer has it): a derivative first,
    then weights, forward quantities and adjoints."""
    if isinstance(expr, sympy.Add):
        return 0
    if isinstance(expr, GravesBase):
        return 3
    if isinstance(expr, Atom):
        return expr.rank
    return max((a.rank for a in expr.atoms(Atom)), default=2)


def _graves_order(factors: list[Expr]) -> list[Expr]:
    ordered = sorted(factors, key=lambda f: (_rank(f), factors.index(f)))
    for factor in list(ordered):  # b ⊙ (1 - b): the output beside its derivative
        if isinstance(factor, sympy.Add) and len(factor.args) == 2 and sympy.S.One in factor.args:
            other = next(a for a in factor.args if a != 1)
            output = -other if other.could_extract_minus_sign() else other
            if output in ordered:
                ordered.remove(output)
                ordered.insert(ordered.index(factor), output)
    return ordered


def _is_vector(expr: Expr) -> bool:
    return any(isinstance(a, Atom) and a.axes for a in expr.atoms(Atom))


class VectorForms:
    """Prints expressions of ``model`` in matrix and vector form."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.printer = _VectorPrinter(model)
        index_tex = self.printer._print
        self.symbols = vector_symbols(model, self.printer.declared_latex, index_tex)
        self.adjoints = vector_symbols(model, self.printer.declared_latex, index_tex,
                                       adjoint=True)
        self.time = model.time_index
        self.out: tuple[Expr, ...] = ()

    # --- symbols --------------------------------------------------------------------------

    def symbol(self, name: str, adjoint: bool, time: Expr | None,
               transposed: bool = False) -> str:
        quantity = self.model.quantity(name)
        if adjoint and name not in self.adjoints:
            inner = self.symbol(name, False, time)
            return rf"\frac{{\partial {self.printer.loss_latex()}}}{{\partial {inner}}}"
        tex = (self.adjoints if adjoint else self.symbols)[name]
        parts = split_scripts(tex) or Scripted("{" + tex + "}")
        sup = parts.sup
        if time is not None and quantity.time:
            sup = (*sup, self.printer._print(time))
        if transposed:
            # a weight's layer label takes the transpose beside it (W^{(hy)\top}); a
            # time or other superscript would read as its exponent: (x^t)^⊤
            if not all(is_label(s) for s in sup):
                return rf"({Scripted(parts.stem, parts.sub, sup).tex()})^{{\top}}"
            sup = (*sup, r"\top")
        return Scripted(parts.stem, parts.sub, sup).tex()

    def reference(self, ref: Indexed) -> Atom:
        quantity, adjoint = self.printer._quantity_of(ref.base)
        if quantity is None:
            raise _NoForm(ref)
        indices = list(ref.indices)
        time = indices.pop() if quantity.time and len(indices) == quantity.rank else None
        rank = 4 if adjoint else 1 if quantity.role is Role.PARAMETER else 2
        return Atom(self.symbol(quantity.name, adjoint, time), tuple(indices), rank,
                    op=("array", quantity.name, adjoint, time))

    # --- expressions ----------------------------------------------------------------------

    def convert(self, expr: Expr) -> Expr:
        """``expr`` with every array and sum replaced by an :class:`Atom`."""
        if isinstance(expr, Indexed):
            return self.reference(expr)
        if isinstance(expr, InRange):
            return self.bracket(expr)
        if isinstance(expr, sympy.Sum):
            return self.sum(expr)
        if isinstance(expr, sympy.Mul):
            softmax = self.softmax(expr)
            if softmax is not None:
                return softmax
            # a range condition the boundary values imply prints nothing, as in index form
            return sympy.Mul(*(sympy.S.One if isinstance(f, InRange) and
                               self.printer.implied(f, expr) else self.convert(f)
                               for f in expr.args))
        if isinstance(expr, (sympy.Symbol, sympy.Number)) or not expr.args:
            if isinstance(expr, sympy.Symbol) and expr.name != self.model.loss_name:
                raise _NoForm(expr)
            return expr
        return expr.func(*(self.convert(arg) for arg in expr.args))

    def bracket(self, condition: InRange) -> Atom:
        """A range condition as the index form prints it: ``[t = T]``."""
        return Atom(self.printer._print(condition), (), 0, op=("range", *condition.args))

    def unconditioned(self, product: Expr) -> list[Expr]:
        """The factors of ``product`` less its range conditions, where the boundary values
        imply them (where one is not, the caller's form would lose it: no form)."""
        factors = sympy.Mul.make_args(product)
        if any(isinstance(f, InRange) and not self.printer.implied(f, product)
               for f in factors):
            raise _NoForm(product)
        return [f for f in factors if not isinstance(f, InRange)]

    def softmax(self, expr: sympy.Mul) -> Atom | None:
        """``exp(a_k) / Σ_{k'} exp(a_{k'})`` as ``softmax(a)``."""
        numerators = [f for f in expr.args if isinstance(f, sympy.exp)]
        denominators = [f for f in expr.args if isinstance(f, sympy.Pow) and f.exp == -1
                        and isinstance(f.base, sympy.Sum)]
        if len(expr.args) != 2 or len(numerators) != 1 or len(denominators) != 1:
            return None
        (top,), (bottom,) = numerators, denominators
        total = bottom.base
        if len(total.limits) != 1 or not isinstance(total.function, sympy.exp):
            return None
        inner, (index, _, _) = top.args[0], total.limits[0]
        if not isinstance(inner, Indexed):
            return None
        free = [i for i in inner.indices if i != self.time and isinstance(i, Idx)]
        if len(free) != 1 or total.function.args[0] != inner.xreplace({free[0]: index}):
            return None
        argument = self.reference(inner)
        return Atom(rf"\operatorname{{softmax}}\left({argument.tex}\right)", argument.axes,
                    op=("softmax", argument))

    def sum(self, total: sympy.Sum) -> Atom:
        summed = [index for index, _, _ in total.limits]
        body = total.function
        over_time = [i for i in summed if i == self.time]
        units = [i for i in summed if i != self.time]
        if over_time:
            inner = (sympy.Sum(body, *[(i, i.lower, i.upper) for i in units]) if units
                     else body)
            atom = self.outer(inner) if _is_product(inner) else None
            if atom is None:
                converted = self.convert(inner)
                atom = Atom(self.printer.doprint(converted), _axes(converted),
                            op=("value", converted))
            tex = atom.tex if not isinstance(inner, sympy.Add) else rf"\left({atom.tex}\right)"
            return Atom(rf"\sum_{{{self.printer._print(self.time)}}} {tex}", atom.axes,
                        compound=True, op=("time_sum", atom))
        if len(units) != 1:
            raise _NoForm(total)
        (index,) = units
        factors = self.unconditioned(body)
        matrices = [f for f in factors if isinstance(f, Indexed) and self.is_matrix(f)]
        rest = sympy.Mul(*[f for f in factors if f not in matrices])
        if len(matrices) == 1:
            (matrix,) = matrices
            vector = self.convert(rest)
            axes = _axes(vector)
            rows, columns = matrix.indices
            product = matrix_product((rows, columns), axes, tuple(
                a for a in (rows, columns) if a != index))
            if product is None or axes != (index,):
                raise _NoForm(total)
            name = matrix.base.name
            transposed = rows == index
            tex = self.symbol(name, False, None, transposed=transposed)
            vec = self.printer.doprint(vector)
            if isinstance(vector, sympy.Add) or (isinstance(vector, sympy.Mul)
                                                 and _is_vector(vector)):
                vec = rf"\left({vec}\right)"
            return Atom(f"{tex} {vec}", (columns if transposed else rows,), _rank(vector),
                        compound=True, op=("matvec", name, transposed, vector))
        vectors = [self.convert(f) for f in factors]
        if len(vectors) == 2 and all(_axes(v) == (index,) for v in vectors):
            first, second = (self.printer.doprint(v) for v in vectors)
            return Atom(rf"({first})^{{\top}} {second}", (), op=("dot", *vectors))
        raise _NoForm(total)

    def outer(self, body: Expr) -> Atom | None:
        """``x_i^t δ_h^t`` as the outer product ``x^t (δ^t)^\\top`` (axes ``(i, h)``), and
        ``b_h r_{h'} δ_{h'}`` as ``b (r ⊙ δ)^\\top``: the factors over each of two axes
        multiplied elementwise."""
        groups: dict[tuple[Idx, ...], list[Expr]] = {}
        try:
            factors = self.unconditioned(body)
        except _NoForm:
            return None  # a condition to print: the caller's elementwise form has it
        for factor in factors:
            converted = self.convert(factor)
            groups.setdefault(_axes(converted), []).append(converted)
        scalars = groups.pop((), [])
        if scalars or len(groups) != 2 or any(len(axes) != 1 for axes in groups):
            return None
        (a, first), (b, second) = groups.items()
        if self.out and (b[0], a[0]) == self.out:
            first, second, a, b = second, first, b, a
        products = sympy.Mul(*first), sympy.Mul(*second)
        left, right = (self.printer.doprint(product) for product in products)
        if len(first) > 1:
            left = f"({left})"
        # plain parentheses: \left( would grow them to the scripts' height
        return Atom(rf"{left} ({right})^{{\top}}", (a[0], b[0]), op=("outer", *products))

    def is_matrix(self, ref: Indexed) -> bool:
        quantity, adjoint = self.printer._quantity_of(ref.base)
        return (quantity is not None and not adjoint and quantity.role is Role.PARAMETER
                and len(quantity.sizes) == 2)

    # --- equations ------------------------------------------------------------------------

    def lhs(self, ref: Expr, *, inline: bool = False) -> str:
        """The left side of an equation in vector form: ``a^t``, ``\\frac{∂L}{∂W}`` (with
        ``inline``, ``∂L/∂W``)."""
        if isinstance(ref, Partial) and isinstance(ref.den, Indexed):
            loss, den = self.printer.loss_latex(), self.reference(ref.den).tex
            if inline:
                return rf"\partial {loss}/\partial {den}"
            return rf"\frac{{\partial {loss}}}{{\partial {den}}}"
        if isinstance(ref, Indexed):
            return self.reference(ref).tex
        return self.printer.doprint(ref)

    def form(self, expr: Expr, out: tuple[Expr, ...] = ()) -> str | None:
        """``expr`` in matrix and vector form, or None where it has none; ``out`` is the
        left side's unit indices (an outer product follows their order)."""
        # Graves' g(a_c), before the arrays become atoms
        converted = self.converted(expr, out, graves=True)
        return None if converted is None else self.printer.doprint(converted)

    def converted(self, expr: Expr, out: tuple[Expr, ...] = (), *,
                  graves: bool = False) -> Expr | None:
        """``expr`` over :class:`Atom` s, or None where it has no matrix form; with
        ``graves``, with Graves' letters (``g(a_c)`` for ``tanh(a_c)``) as :meth:`form`
        prints it."""
        if graves:
            expr = self.printer.graves(expr)
        self.out = tuple(out)
        try:
            if len(self.out) == 2 and _is_product(expr):
                atom = self.outer(expr)
                if atom is not None:
                    return atom
            converted = self.convert(expr)
            # a product of vectors over different units at the top (x_i (1 - b_h²) …)
            # is no elementwise product: _axes refuses it
            axes = _axes(converted)
            if self.out and len(axes) != len(self.out):
                return None
            return converted
        except _NoForm:
            return None


def _axes(expr: Expr) -> tuple[Idx, ...]:
    """The unit axes of a converted expression. The factors of a product must share one
    (``x_h y_{h'}`` is an outer product, never ``x ⊙ y``); the terms of a sum may name
    the same unit with different letters (``Σ_{c'} w_{cc'} δ_{c'}`` beside ``w_c δ_c``)."""
    if isinstance(expr, Atom):
        return expr.axes
    found = sorted({_axes(arg) for arg in expr.args} - {()}, key=str)
    if not found:
        return ()
    if isinstance(expr, sympy.Mul) and len(found) > 1:
        raise _NoForm(expr)
    if len({tuple(i.upper for i in axes) for axes in found}) > 1:
        raise _NoForm(expr)
    return found[0]


def _is_product(expr: Expr) -> bool:
    factors = [f for f in sympy.Mul.make_args(expr) if not isinstance(f, InRange)]
    return isinstance(expr, sympy.Mul) and len(factors) >= 2


def vector_form(model: Model, expr: Expr, **_: Any) -> str | None:
    """``expr`` in matrix and vector form for ``model``, or None."""
    return VectorForms(model).form(expr)


__all__ = ["OPERATIONS", "Atom", "VectorForms", "vector_form"]
