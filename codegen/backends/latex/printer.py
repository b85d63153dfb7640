"""The LaTeX printer of the notes: SymPy's ``LatexPrinter`` taught Graves' index notation.

Role in DESIGN.md's picture: the printer of the ``latex`` branch (Derivation →
``<net>.tex``). :mod:`codegen.latex_backend` prints every expression of a
:class:`~symbolic.Derivation` with it and hands the strings to the template.

It overrides only what differs from SymPy's printer, one ``_print_<Class>``
method each, and reads the notation from the :class:`~symbolic.Model`:

- ``x[i, t]`` prints as the quantity's ``latex`` symbol with the unit indices as
  a subscript and time as a superscript, ``x_{i}^{t}``; a symbol that carries
  scripts of its own (``a^{(1)}``, ``\\epsilon_s``) has them merged,
  ``a^{(1)\\,t}_{h_{1}}``;
- an adjoint array (``adjoint_name(q)[...]``, see ``symbolic/names.py``) prints as the
  quantity's adjoint symbol (``\\delta_{k}``, ``\\epsilon_{s}^{t}``), or as
  ``\\frac{\\partial L}{\\partial w_{ij}}`` when the quantity has none (parameters, initial
  states);
- an index prints as ``Model.index_latex`` gives it, primes kept, and a
  derivation-internal name ``h#3`` as its stem;
- ``Sum`` shows its indices only (``\\sum_{k}``; ranges are stated once, in the
  notation section), :class:`~symbolic.Partial` prints ``\\frac{\\partial a}{\\partial b}``,
  ``KroneckerDelta(a, b)`` prints ``\\delta_{a b}``;
- :class:`~symbolic.InRange` prints nothing inside a product whose adjoint's boundary
  values imply it (``[t ≤ T-1] δ^{t+1}``: the notes state ``δ^{T+1} = 0`` once), and an
  Iverson bracket otherwise (``[t = T] Σ_k w_{ck} δ_k``, a loss read at the last step);
- ``logistic`` is ``\\sigma``, ``relu`` is ``\\operatorname{relu}``, ``step(x)`` is
  ``[x > 0]``, ``log`` is ``\\ln``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase
from sympy.printing.latex import LatexPrinter

from chainrule.codegen.backends.latex.notation import index_form_symbols, index_subscript
from chainrule.symbolic import InRange, Model, Partial, Quantity, quantity_of_adjoint


@dataclass(frozen=True)
class Scripted:
    """A symbol with its scripts kept apart: ``stem_{sub...}^{sup...}``."""

    stem: str
    sub: tuple[str, ...] = ()
    sup: tuple[str, ...] = ()

    def tex(self) -> str:
        """``stem_{a,b}^{c\\,d}``: a symbol's own subscript and the indices read apart."""
        text = self.stem
        if self.sub:
            text += "_{" + ",".join(self.sub) + "}"
        if self.sup:
            text += "^{" + r"\,".join(self.sup) + "}"
        return text


def _read_group(tex: str, start: int) -> tuple[str, int] | None:
    """The script argument at ``tex[start:]``: a ``{...}`` group, a control word or one char."""
    while start < len(tex) and tex[start] == " ":
        start += 1
    if start >= len(tex):
        return None
    if tex[start] == "{":
        depth = 0
        for end in range(start, len(tex)):
            depth += {"{": 1, "}": -1}.get(tex[end], 0)
            if depth == 0:
                return tex[start + 1:end], end + 1
        return None
    if tex[start] == "\\":
        end = start + 1
        while end < len(tex) and tex[end].isalpha():
            end += 1
        end = max(end, start + 2)
        return tex[start:end], end
    return tex[start], start + 1


def split_scripts(tex: str) -> Scripted | None:
    """Split a symbol's LaTeX into stem, subscript and superscript, or None if it has other shape.

    ``a^{(1)}`` → ``("a", (), ("(1)",))``; ``\\epsilon_s`` → ``("\\epsilon", ("s",), ())``;
    ``x`` → ``("x", (), ())``. A symbol with text after its scripts (``W_xh`` reads
    as ``W_{x} h`` in TeX) or a doubled script is None: it cannot take more scripts.
    """
    depth, position = 0, 0
    while position < len(tex):
        char = tex[position]
        if char == "\\":
            position += 2
            continue
        if char in "{}":
            depth += 1 if char == "{" else -1
        elif depth == 0 and char in "_^":
            break
        position += 1
    stem = tex[:position].strip()
    if not stem or depth != 0:
        return None
    scripts: dict[str, str] = {}
    while position < len(tex):
        char = tex[position]
        if char == " ":
            position += 1
            continue
        if char not in "_^" or char in scripts:
            return None
        group = _read_group(tex, position + 1)
        if group is None:
            return None
        scripts[char], position = group
    return Scripted(stem, tuple(filter(None, [scripts.get("_")])),
                    tuple(filter(None, [scripts.get("^")])))


def _is_simple(tex: str) -> bool:
    """One letter, perhaps primed: such indices need no separator (``w_{hh'}``)."""
    return len(tex.rstrip("'")) == 1 and tex[0].isalpha()


def join_indices(indices: list[str]) -> str:
    """Indices side by side: nothing between single letters (``hk'``), a thin space otherwise."""
    return " ".join(indices) if all(map(_is_simple, indices)) else r"\,".join(indices)


def with_primes(tex: str, primes: int) -> str:
    """``tex`` with ``primes`` primes, composed with the superscript it may already carry."""
    if primes == 0:
        return tex
    parts = split_scripts(tex)
    if parts is None:
        return "{" + tex + "}" + "'" * primes
    if parts.sup:
        return Scripted(parts.stem, parts.sub, (r"\prime" * primes + " " + parts.sup[0],)).tex()
    return Scripted(parts.stem + "'" * primes, parts.sub).tex()


class GravesBase(sympy.Function):
    """A squashing function as Graves names it in the LSTM (``f`` for the gates, ``g`` for
    the cell input, ``h`` for the cell output), or its derivative (``g'``): the notes print
    ``tanh(a_c)`` as ``g(a_c)`` and ``1 - tanh²(a_c)`` as ``g'(a_c)``. Each letter is a
    subclass (:func:`graves_function`); they exist to be printed, and name the function
    they stand for (``squashing``, a name of :data:`SQUASHING`) for the matrix forms'
    numerical check."""

    nargs = 1
    letter: ClassVar[str] = ""
    prime: ClassVar[bool] = False
    squashing: ClassVar[str] = ""


_GRAVES_CLASSES: dict[tuple[str, bool, str], type[GravesBase]] = {}


def graves_function(letter: str, prime: bool = False, squashing: str = "") -> type[GravesBase]:
    """The function class printed ``letter`` (with ``prime``, its derivative) that stands
    for ``squashing`` (``tanh``, ``logistic``)."""
    key = (letter, prime, squashing)
    if key not in _GRAVES_CLASSES:
        name = "Graves_" + "".join(c if c.isalnum() else "_" for c in letter) + (
            "_prime" if prime else "") + (f"_{squashing}" if squashing else "")
        _GRAVES_CLASSES[key] = type(name, (GravesBase,), {
            "letter": letter, "prime": prime, "squashing": squashing})
    return _GRAVES_CLASSES[key]


#: The squashing functions Graves' letters stand for, by SymPy class name.
SQUASHING = ("tanh", "logistic")
#: The letters of the squashing functions applied inside an equation (not named by it), in
#: the order they are first applied: Graves' cell input and cell output.
INNER_LETTERS = ("g", "h")


def squashing_letters(model: Model) -> dict[tuple[str, str], str]:
    """Graves' letters for ``model``'s squashing functions, by (function, argument's
    quantity): where an equation applies ``tanh`` to a quantity without naming the result
    (``s = b_ι tanh(a_c) + …``, the LSTM's cell input and output), the first two such
    applications get ``g`` and ``h`` and the named logistic ones (``b_ι = σ(a_ι)``, the
    gates) ``f``; a model without such applications (an MLP, an RNN, a GRU) keeps ``σ``
    and ``tanh`` (its derivatives are written with the named outputs, ``b(1 - b)``,
    ``1 - b²``)."""
    inner: dict[tuple[str, str], str] = {}
    named: dict[tuple[str, str], str] = {}
    for name in model.evaluation_order():
        rhs = model.equations[name].rhs
        for node in sympy.preorder_traversal(rhs):
            if (type(node).__name__ not in SQUASHING or not node.args
                    or not isinstance(node.args[0], Indexed)):
                continue
            key = (type(node).__name__, node.args[0].base.name)
            if node == rhs:
                if key[0] == "logistic":
                    named.setdefault(key, "f")
            elif (key[0] == "tanh" and key not in inner
                  and len(inner) < len(INNER_LETTERS)):
                inner[key] = INNER_LETTERS[len(inner)]
    return {**named, **inner} if inner else {}


def printed_letters(letters: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """The letters the printer writes: ``g`` and ``h``; the gates keep ``σ`` (the prose
    says that Graves' ``f`` is ``σ``), since ``b = σ(a)`` says more than ``b = f(a)``."""
    return {key: letter for key, letter in letters.items() if letter != "f"}


class NotesLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer in the notation of ``model`` (see the module docstring).

    Settings beyond SymPy's: ``show_ranges`` (default False) prints range
    conditions inside products as Iverson brackets instead of hiding them.
    """

    _default_settings: ClassVar[dict[str, Any]] = {**LatexPrinter._default_settings,
                                                   "show_ranges": False}

    def __init__(self, model: Model, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self.model = model
        self._bracket_logs = False
        self._symbols: tuple[dict[str, str], dict[str, str]] | None = None
        self.letters = squashing_letters(model)
        self._printed = printed_letters(self.letters)

    def doprint(self, expr: Any) -> str:
        return super().doprint(self.graves(expr))

    # --- Graves' squashing functions --------------------------------------------------------

    def _letter(self, node: Expr) -> str | None:
        if (type(node).__name__ in SQUASHING and node.args
                and isinstance(node.args[0], Indexed)):
            return self._printed.get((type(node).__name__, node.args[0].base.name))
        return None

    def graves(self, expr: Any) -> Any:
        """``expr`` with the squashing functions of :func:`squashing_letters` as Graves
        writes them: ``g(a_c)`` for ``tanh(a_c)``, ``g'(a_c)`` for ``1 - tanh²(a_c)`` and for
        ``σ(x)(1 - σ(x))``."""
        if not self._printed or not isinstance(expr, sympy.Basic):
            return expr
        return self._squash(expr)

    def _squash(self, expr: Expr) -> Expr:
        if isinstance(expr, (Indexed, Idx, IndexedBase)) or not expr.args:
            return expr
        if isinstance(expr, sympy.Add) and len(expr.args) == 2 and sympy.S.One in expr.args:
            other = expr.args[0] if expr.args[1] == 1 else expr.args[1]
            square = -other
            if (isinstance(square, sympy.Pow) and square.exp == 2
                    and type(square.base).__name__ == "tanh" and self._letter(square.base)):
                letter = self._letter(square.base)
                return graves_function(letter, True, "tanh")(
                    self._squash(square.base.args[0]))
        if isinstance(expr, sympy.Mul):
            factors = list(expr.args)
            for factor in list(factors):
                if type(factor).__name__ == "logistic" and self._letter(factor):
                    rest = sympy.S.One - factor
                    if factor in factors and rest in factors:
                        factors.remove(factor)
                        factors.remove(rest)
                        factors.append(graves_function(self._letter(factor), True,
                                                       "logistic")(factor.args[0]))
            if len(factors) != len(expr.args):
                return sympy.Mul(*(self._squash(f) for f in factors))
        letter = self._letter(expr)
        if letter is not None:
            return graves_function(letter, False, type(expr).__name__)(
                self._squash(expr.args[0]))
        return expr.func(*(self._squash(a) for a in expr.args))

    def _print_GravesBase(self, expr: GravesBase, exp: str | None = None) -> str:
        name = expr.letter + ("'" if expr.prime else "")
        if exp is not None:
            name = f"{{{name}}}^{{{exp}}}"
        return rf"{name}{{\left({self._print(expr.args[0])}\right)}}"

    # --- symbols of the model ---------------------------------------------------------------

    def quantity_latex(self, quantity: Quantity) -> str:
        """The symbol of a quantity in the notes' convention (``notation.py``)."""
        return self._graves()[0].get(quantity.name) or self.declared_latex(quantity)

    def adjoint_latex(self, quantity: Quantity) -> str | None:
        """The symbol of a quantity's adjoint in the notes' convention, or None."""
        return self._graves()[1].get(quantity.name) if quantity.adjoint_latex else None

    def _graves(self) -> tuple[dict[str, str], dict[str, str]]:
        if self._symbols is None:
            self._symbols = index_form_symbols(self.model, self.declared_latex)
        return self._symbols

    def declared_latex(self, quantity: Quantity) -> str:
        """The symbol a quantity declares; one declared without ``latex=`` prints like a
        SymPy Symbol."""
        if quantity.latex != quantity.name:
            return quantity.latex
        stem, *_ = quantity.name.partition("_")
        stem = stem.rstrip("0123456789") or stem
        tex = self._deal_with_super_sub(quantity.name)
        if len(stem) > 1 and stem.isalpha() and tex.startswith(stem):
            tex = r"\mathit{" + stem + "}" + tex[len(stem):]
        return tex

    def loss_latex(self) -> str:
        return self.quantity_latex(self.model.quantity(self.model.loss_name))

    def _quantity_of(self, base: IndexedBase) -> tuple[Quantity | None, bool]:
        """(quantity, is_adjoint) for an array: ``x`` → (x, False), its adjoint → (x, True)."""
        name = base.name
        if name in self.model.quantities:
            return self.model.quantities[name], False
        adjointed = quantity_of_adjoint(name)
        if adjointed is not None and adjointed in self.model.quantities:
            return self.model.quantities[adjointed], True
        return None, False

    def scripted(self, expr: Indexed) -> Scripted | None:
        """``expr`` as a stem with scripts, or None where it prints otherwise (a fraction)."""
        quantity, adjoint = self._quantity_of(expr.base)
        indices = list(expr.indices)
        if quantity is None:
            return Scripted("{" + self._print(expr.base) + "}",
                            (join_indices([self._print(i) for i in indices]),))
        if adjoint and not quantity.adjoint_latex:
            return None
        symbol = self.adjoint_latex(quantity) if adjoint else self.quantity_latex(quantity)
        assert symbol is not None
        time = indices.pop() if quantity.time and len(indices) == quantity.rank else None
        own = split_scripts(symbol) or Scripted("{" + symbol + "}")
        if indices and index_subscript(self.model, quantity, own.sub, self._print):
            own = Scripted(own.stem, (), own.sup)  # ``a_k`` over k: the index takes its place
        sub = own.sub + ((join_indices([self._print(i) for i in indices]),) if indices else ())
        sup = own.sup + ((self._print(time),) if time is not None else ())
        return Scripted(own.stem, sub, sup)

    def _print_Indexed(self, expr: Indexed) -> str:
        scripted = self.scripted(expr)
        if scripted is not None:
            return scripted.tex()
        quantity, _ = self._quantity_of(expr.base)
        assert quantity is not None
        return self._print(Partial(sympy.Symbol(self.model.loss_name),
                                   quantity.base[expr.indices]))

    def _print_IndexedBase(self, expr: IndexedBase) -> str:
        quantity, adjoint = self._quantity_of(expr)
        if quantity is None:
            return super()._print_IndexedBase(expr)
        if adjoint:
            if quantity.adjoint_latex:
                return self.adjoint_latex(quantity)  # type: ignore[return-value]
            return self._print(Partial(sympy.Symbol(self.model.loss_name), quantity.base))
        return self.quantity_latex(quantity)

    def _print_Idx(self, expr: Idx) -> str:
        name = expr.name.split("#")[0]
        stem = name.rstrip("'")
        primes = len(name) - len(stem)
        tex = self.model.index_latex.get(stem, stem)
        if tex == stem:  # declared without latex=: ``k_`` is how Python spells k'
            bare = stem.rstrip("_") or stem
            primes += len(stem) - len(bare)
            tex = self._deal_with_super_sub(bare)
        return with_primes(tex, primes)

    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        loss = self.model.loss_equation
        if loss is not None and expr == loss.lhs:
            return self.loss_latex()
        return super()._print_Symbol(expr, style)

    # --- powers of scripted symbols ---------------------------------------------------------

    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exponent = expr.args
        is_root_or_fraction = exponent.is_Rational and (exponent.is_negative or exponent.q != 1)
        if isinstance(base, Indexed) and not is_root_or_fraction:
            power = self._print(exponent)
            scripted = self.scripted(base)
            if scripted is not None and not scripted.sup:
                return Scripted(scripted.stem, scripted.sub, (power,)).tex()
            return rf"\left({self._print(base)}\right)^{{{power}}}"
        return super()._print_Pow(expr)

    # --- derivation vocabulary --------------------------------------------------------------

    def _print_Partial(self, expr: Partial) -> str:
        num, den = self._print(expr.num), self._print(expr.den)
        return rf"\frac{{\partial {num}}}{{\partial {den}}}"

    def _print_KroneckerDelta(self, expr: sympy.KroneckerDelta, exp: str | None = None) -> str:
        a, b = (self._print(arg) for arg in expr.args)
        simple = all(isinstance(arg, Idx) for arg in expr.args)
        pair = join_indices([a, b]) if simple else f"{a}, {b}"
        tex = rf"\delta_{{{pair}}}"
        return rf"\left({tex}\right)^{{{exp}}}" if exp is not None else tex

    def _print_Sum(self, expr: sympy.Sum) -> str:
        signs = "".join(rf"\sum_{{{self._print(index)}}}" for index, _, _ in expr.limits)
        body = self._print(expr.function)
        if isinstance(expr.function, sympy.Add) or expr.function.could_extract_minus_sign():
            body = self._add_parens(body)
        return f"{signs} {body}"

    def _print_InRange(self, expr: InRange) -> str:
        return rf"\left[{self.range_condition(expr)}\right]"

    def implied(self, condition: InRange, product: Expr) -> bool:
        """Whether ``condition`` (``lo ≤ e ≤ hi``), a factor of ``product``, goes without
        saying. The notes' equations hold at the steps of the backward loop, ``1 ≤ t ≤ T``
        (an initial state's gradient is an equation of its own), and the boundary values
        make an adjoint zero outside ``1..T``: where ``product`` reads an adjoint at step
        ``σ`` in every term, it vanishes unless ``1 ≤ σ ≤ T``. The condition goes without
        saying when each of its bounds follows from one of these: ``[t ≤ T-1] δ^{t+1}``
        (``δ^{T+1} = 0``), ``[T ≥ 2] δ^{2}``; never ``[t = T] δ_k``, nor a condition on a
        unit index."""
        time = self.model.time_index
        target, lo, hi = condition.args
        if time is None:
            return False
        rest = sympy.Mul(*(f for f in sympy.Mul.make_args(product) if f != condition))
        # the facts, each as (lowest, highest) of something: t, and each adjoint's step
        facts = [(time, sympy.S.One, time.upper)] + [
            (step, sympy.S.One, time.upper) for step in self._adjoint_steps(rest)]
        below = target - lo  # must be ≥ 0
        above = hi - target  # must be ≥ 0
        return (any(below.is_nonnegative or (below - (x - first)).is_nonnegative
                    for x, first, _ in facts)
                and any(above.is_nonnegative or (above - (last - x)).is_nonnegative
                        for x, _, last in facts))

    def _adjoint_steps(self, expr: Expr) -> set[Expr]:
        """The steps of the adjoints that every term of ``expr`` reads as a factor (of a
        product, or of a sum's body): ``t + 1`` for ``δ^{t+1}``."""
        if isinstance(expr, Indexed):
            quantity, adjoint = self._quantity_of(expr.base)
            if adjoint and quantity is not None and quantity.time and \
                    len(expr.indices) == quantity.rank:
                return {expr.indices[-1]}
            return set()
        if isinstance(expr, sympy.Mul):
            return set().union(*(self._adjoint_steps(f) for f in expr.args))
        if isinstance(expr, sympy.Sum):
            return self._adjoint_steps(expr.function)
        if isinstance(expr, sympy.Add):
            return set.intersection(*(self._adjoint_steps(term) for term in expr.args))
        return set()

    def range_condition(self, expr: InRange, span: tuple[Expr, Expr] | None = None) -> str:
        """``lo \\le e \\le hi``, leaving out a bound that ``span`` (or the index) implies."""
        target, lo, hi = expr.args
        if span is not None:
            bounds: tuple[Expr | None, Expr | None] = span
        elif isinstance(target, Idx):
            bounds = (target.lower, target.upper)
        else:
            bounds = (None, None)
        text = self._print(target)
        if lo == hi:
            return rf"{text} = {self._print(lo)}"
        if lo == bounds[0]:
            return rf"{text} \le {self._print(hi)}" if hi != bounds[1] else text
        if hi == bounds[1]:
            return rf"{text} \ge {self._print(lo)}"
        return rf"{self._print(lo)} \le {text} \le {self._print(hi)}"

    def _print_Mul(self, expr: Expr) -> str:
        if isinstance(expr, sympy.Mul):
            if not self._settings["show_ranges"]:
                kept = [arg for arg in expr.args
                        if not (isinstance(arg, InRange) and self.implied(arg, expr))]
                if len(kept) != len(expr.args):
                    return self._print(sympy.Mul(*kept))
            if any(map(_is_log, expr.args)):
                return self._print_product_with_logs(expr)
            ordered = self.graves_order(expr)
            if ordered is not None:
                return ordered
        with self._logs_in_brackets(True):
            return super()._print_Mul(expr)

    def graves_order(self, expr: sympy.Mul) -> str | None:
        """A product in Graves' order, or None where SymPy's is kept: a derivative factor
        first, beside the output it is written with (``b(1 - b)``, ``(1 - b^{2})``), then the
        weights, the forward quantities, the adjoints (``w_{hk} \\delta_{k}``) and sums last."""
        coefficient, factors = expr.as_coeff_mul()
        if coefficient not in (1, -1) or len(factors) < 2 or any(
                isinstance(f, sympy.Pow) and f.exp.is_negative for f in factors):
            return None  # SymPy's printer makes the fractions
        partners = {f.args[1] if f.args[0] == 1 else f.args[0]: f for f in factors
                    if isinstance(f, sympy.Add) and len(f.args) == 2 and sympy.S.One in f.args}
        partners = {-k if k.could_extract_minus_sign() else k: v for k, v in partners.items()}

        def rank(factor: Expr) -> int:
            if isinstance(factor, sympy.Add) or factor in partners:
                return 0
            if isinstance(factor, GravesBase):  # Graves' b_ι g(a_c), b_ω h'(s_c)
                return 3
            if isinstance(factor, sympy.Sum):
                return 5
            if isinstance(factor, Indexed):
                quantity, adjoint = self._quantity_of(factor.base)
                if adjoint:
                    return 4
                if quantity is not None and quantity.role.value == "parameter":
                    return 1
            return 2

        ordered = sorted(factors, key=lambda f: (rank(f), factors.index(f)))
        for output, derivative in partners.items():  # b(1 - b): the pair side by side
            if output in ordered:
                ordered.remove(output)
                ordered.insert(ordered.index(derivative), output)
        pieces = []
        for position, factor in enumerate(ordered):
            tex = self._print(factor)
            last = position == len(ordered) - 1
            if isinstance(factor, sympy.Add) or (isinstance(factor, sympy.Sum) and not last):
                tex = self._add_parens(tex)
            pieces.append(tex)
        return ("- " if coefficient == -1 else "") + " ".join(pieces)

    def _print_product_with_logs(self, expr: sympy.Mul) -> str:
        """``z_{k} \\ln y_{k}``: logarithms last; only the last one goes without brackets."""
        logs = [arg for arg in expr.args if _is_log(arg)]
        rest = sympy.Mul(*(arg for arg in expr.args if not _is_log(arg)))
        with self._logs_in_brackets(True):
            pieces = [self._print(log) for log in logs[:-1]]
            if rest == -1:
                prefix = "- "
            elif rest == 1:
                prefix = ""
            else:
                prefix = self._print(rest)
                if self._needs_mul_brackets(rest, first=True, last=False):
                    prefix = self._add_parens(prefix)
                prefix += " "
        with self._logs_in_brackets(False):
            pieces.append(self._print(logs[-1]))
        return prefix + " ".join(pieces)

    @contextmanager
    def _logs_in_brackets(self, value: bool) -> Iterator[None]:
        """Within a product, ``\\ln y z`` would read as ln(yz): bracket all but the last log."""
        saved, self._bracket_logs = self._bracket_logs, value
        try:
            yield
        finally:
            self._bracket_logs = saved

    # --- functions ---------------------------------------------------------------------------

    def _function(self, name: str, expr: sympy.Function, exp: str | None) -> str:
        name = f"{name}^{{{exp}}}" if exp is not None else name
        return rf"{name}{{\left({self._print(expr.args[0])}\right)}}"

    def _print_logistic(self, expr: sympy.Function, exp: str | None = None) -> str:
        return self._function(r"\sigma", expr, exp)

    def _print_relu(self, expr: sympy.Function, exp: str | None = None) -> str:
        return self._function(r"\operatorname{relu}", expr, exp)

    def _print_softplus(self, expr: sympy.Function, exp: str | None = None) -> str:
        return self._function(r"\operatorname{softplus}", expr, exp)

    def _print_step(self, expr: sympy.Function, exp: str | None = None) -> str:
        tex = rf"\left[{self._print(expr.args[0])} > 0\right]"
        return f"{tex}^{{{exp}}}" if exp is not None else tex

    def _print_log(self, expr: sympy.Function, exp: str | None = None) -> str:
        (arg,) = expr.args
        name = rf"\ln^{{{exp}}}" if exp is not None else r"\ln"
        one_symbol = isinstance(arg, sympy.Symbol) or (
            isinstance(arg, Indexed) and self.scripted(arg) is not None)
        if one_symbol and not self._bracket_logs:
            return f"{name} {self._print(arg)}"
        return rf"{name}{{\left({self._print(arg)}\right)}}"


def _is_log(expr: Expr) -> bool:
    return isinstance(expr, sympy.log) or (isinstance(expr, sympy.Pow)
                                           and isinstance(expr.base, sympy.log))


def latex(expr: Expr, model: Model, **settings: object) -> str:
    """``expr`` in the notes' notation for ``model``."""
    return NotesLatexPrinter(model, dict(settings)).doprint(expr)
