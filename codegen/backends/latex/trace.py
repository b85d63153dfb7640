"""The full trace of a derivation as LaTeX (``chainrule notes --detail full``).

Role in DESIGN.md's picture: one of the two documents of the ``latex`` branch. It reads
the :class:`~symbolic.Derivation` (model, adjoints, recorded steps), prints every
expression with :class:`~codegen.backends.latex.printer.NotesLatexPrinter`, and fills
``templates/trace.tex.j2``; the template holds the layout and the fixed prose only.

The document: the notation (indices, quantities), the forward equations and the loss,
numbered; then every adjoint in backward order, each preceded by the lemmas (adjoints
inlined into it, e.g. ∂L/∂y_k) it uses, each with its definition, the local partials,
every recorded step as a chain of equalities with the rule named beside each, the boxed
result and, where a contraction left a range condition, the boundary condition in prose
(``δ^{T+1} = 0``); last, the gradients of the parameters and initial states. The notes a
student reads (``teaching.py``) reuse its printing of equations.

:func:`tex_escape` makes user text (a model's title and description) safe for TeX.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import sympy
from sympy import Expr, Idx, Indexed

from chainrule.codegen.backends.latex.figure import tikz_graph
from chainrule.codegen.backends.latex.printer import NotesLatexPrinter
from chainrule.codegen.backends.latex.prose import prose
from chainrule.codegen.backends.latex.words import model_text, quantity_name, rule_name, strings
from chainrule.codegen.templating import render
from chainrule.symbolic import (
    Adjoint,
    Derivation,
    InRange,
    LocalPartial,
    Model,
    Partial,
    Quantity,
    Role,
    Rule,
    VerifyError,
    quantity_of_adjoint,
    verify_derivation,
)

TRACE = "latex/trace.tex.j2"
PREAMBLE = "latex/preamble.tex.j2"

#: Displayed equations wider than this (in characters that show, estimated) are broken
#: after a ``+`` or ``-`` at the top level.
LINE_WIDTH = 62

_TEX_SPECIALS = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$", "%": r"\%",
    "&": r"\&", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
    "<": r"\textless{}", ">": r"\textgreater{}",
}
#: Mathematical characters that rule names and descriptions may use, in math mode.
_TEX_MATH_CHARACTERS = {
    "Σ": r"\Sigma", "∑": r"\sum", "∂": r"\partial", "δ": r"\delta", "ε": r"\epsilon",
    "θ": r"\theta", "σ": r"\sigma", "ι": r"\iota", "φ": r"\phi", "ω": r"\omega",
    "τ": r"\tau", "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "η": r"\eta",
    "λ": r"\lambda", "μ": r"\mu", "≤": r"\le", "≥": r"\ge", "≠": r"\ne", "→": r"\to",
    "·": r"\cdot", "×": r"\times", "−": "-", "²": "^{2}", "′": r"\prime",
}


def tex_escape(text: str, *, subscripts: bool = False) -> str:
    """``text`` as TeX that typesets it literally: ``50% of a_b`` → ``50\\% of a\\_b``.

    TeX's special characters are escaped and the mathematical characters of
    ``_TEX_MATH_CHARACTERS`` (Σ, δ, ≤, ...) set in math mode. With ``subscripts``,
    ``z_k`` (one character after the underscore) is set as z with a subscript k,
    the way rule names such as "one-hot targets: Σ_k z_k = 1" mean it.
    """
    pieces = []
    position = 0
    while position < len(text):
        char = text[position]
        following = text[position + 1] if position + 1 < len(text) else ""
        if (subscripts and char == "_" and position > 0 and following.isalnum()
                and not text[position + 2:position + 3].isalnum()):
            pieces.append(r"\textsubscript{" + tex_escape(following) + "}")
            position += 2
            continue
        if char in _TEX_SPECIALS:
            pieces.append(_TEX_SPECIALS[char])
        elif char in _TEX_MATH_CHARACTERS:
            pieces.append(r"\ensuremath{" + _TEX_MATH_CHARACTERS[char] + "}")
        else:
            pieces.append(char)
        position += 1
    return "".join(pieces)


def _visible_width(tex: str) -> int:
    """A rough count of the characters ``tex`` shows, for deciding where to break lines."""
    tex = re.sub(r"\\(left|right|[,;!]|quad)", "", tex)
    tex = re.sub(r"\\frac\{\\partial ([^{}]*)\}\{\\partial ", r"\\partial \1/{", tex)
    tex = re.sub(r"\\[A-Za-z]+", "x", tex)
    tex = re.sub(r"[_^]\{([^{}]*)\}", lambda m: "x" * ((len(m.group(1)) + 1) // 2), tex)
    return len(re.sub(r"[{} ]", "", tex))


class _Notes:
    """Everything the template shows for one derivation, printed."""

    def __init__(self, derivation: Derivation, lang: str = "en", *,
                 standalone: bool = True) -> None:
        self.derivation = derivation
        self.model: Model = derivation.model
        self.lang = lang
        self.s = strings(lang)
        self.standalone = standalone
        self.prefix = "" if standalone else f"{_label_safe(self.model.name)}:"
        self.printer = NotesLatexPrinter(self.model)
        self.loss = sympy.Symbol(self.model.loss_name)

    def tex(self, expr: Expr) -> str:
        return self.printer.doprint(expr)

    # --- the whole document ------------------------------------------------------------------

    def verified(self) -> str:
        """The sentence saying that every step was checked numerically, with a bound on the
        worst discrepancy that is the same on every machine (a fixed seed, and a power of ten
        no finer than 1e-12: correct steps agree to about 1e-16); empty when the forward
        pass cannot be evaluated numerically."""
        try:
            report = verify_derivation(self.derivation, seed=0)
        except VerifyError:
            return ""
        count = len(report.steps)
        if not report.ok:
            return self.s["verify_failed"].format(failed=len(report.failures), count=count)
        worst = report.worst
        exponent = max(-12, math.ceil(math.log10(worst))) if worst > 0 else -12
        return self.s["verified"].format(cases=len(report.cases), count=count,
                                         exponent=exponent)

    def context(self) -> dict[str, object]:
        model = self.model
        intermediates = [a for a in self.derivation.adjoints.values()
                         if a.quantity.role is Role.INTERMEDIATE]
        time = model.time_index
        return {
            "standalone": self.standalone,
            "verified": self.verified(),
            "preamble": preamble(self.lang) if self.standalone else "",
            "prefix": self.prefix,
            "s": self.s,
            "figure": tikz_graph(model, self.printer),
            "model_name": model.name,
            "model_name_tex": tex_escape(model.name),
            "loss_symbol": self.tex(self.loss),
            "title": tex_escape(model_text(model.title, self.lang)),
            "description": (self.s["what"].format(
                what=tex_escape(model_text(model.description, self.lang)))
                            if model.description else ""),
            "time": (rf"{self.tex(time)} = {self.tex(time.lower)}, \dots, {self.tex(time.upper)}"
                     if time is not None else ""),
            "indices": self.indices(),
            "quantities": [self.quantity_row(q) for q in model.quantities.values()
                           if q.role is not Role.LOSS],
            "functions": self.uses_functions(),
            "initial_states": [eq for eq in (self.initial_state(q)
                                             for q in model.of_role(Role.STATE)) if eq],
            "initial_given": self.join(self.tex(self.state_lhs(q))
                                       for q in model.of_role(Role.STATE)
                                       if not self.initial_state(q)),
            "forward": [self.equation(f"eq:fwd:{name}", model.equations[name].lhs,
                                      model.equations[name].rhs)
                        for name in model.evaluation_order()],
            "loss": self.equation("eq:loss", model.loss_equation.lhs,  # type: ignore[union-attr]
                                  model.loss_equation.rhs),  # type: ignore[union-attr]
            "backward_order": [self.tex(a.lhs) for a in self.derivation.named],
            "backward": [self.block(a) for a in intermediates],
            "gradients": [self.block(a) for a in self.derivation.gradients.values()],
        }

    # --- notation ------------------------------------------------------------------------------

    def indices(self) -> list[dict[str, str]]:
        """Indices grouped by range: ``k, k' = 0, …, K-1``."""
        groups: dict[tuple[Expr, Expr], list[Idx]] = {}
        for index in self.model.indices.values():
            if index is not self.model.time_index:
                groups.setdefault((index.lower, index.upper), []).append(index)
        return [{"names": ", ".join(self.tex(i) for i in members),
                 "range": rf"{self.tex(lo)}, \dots, {self.tex(hi)}"}
                for (lo, hi), members in groups.items()]

    def indices_of(self, quantity: Quantity) -> tuple[Expr, ...]:
        """The indices the notes write ``quantity`` with: ``w_{hh'}`` for a square weight."""
        return self.model.canonical_indices(quantity)

    def element(self, quantity: Quantity) -> Expr:
        indices = self.indices_of(quantity)
        return quantity.base[indices] if indices else sympy.Symbol(quantity.name)

    def quantity_row(self, quantity: Quantity) -> dict[str, str]:
        shape = [self.tex(size) for size in quantity.sizes]
        if quantity.time:
            shape.append(self.tex(self.model.time_index.upper))  # type: ignore[union-attr]
        adjoint = self.derivation.adjoints.get(quantity.name)
        return {
            "name": tex_escape(quantity.name),
            "role": self.s.get(f"role_{quantity.role.value}", tex_escape(quantity.role.value)),
            "symbol": self.tex(self.element(quantity)),
            "shape": r" \times ".join(shape) if shape else "1",
            "adjoint": self.tex(adjoint.lhs) if adjoint is not None and (
                quantity.adjoint_latex) else "",
        }

    def state_lhs(self, state: Quantity) -> Expr:
        """The recurrent quantity at the step its initial state stands for: ``b^0`` for a
        recurrence forward in time, ``b^{T+1}`` for one backward."""
        owner = self.model.quantity(state.state_of)  # type: ignore[arg-type]
        time = self.model.time_index
        assert time is not None
        indices = self.indices_of(owner)[:-1]
        step = self.model.initial_step(owner)
        return owner.base[(*indices, time.lower - 1 if step is None else step)]

    def initial_state(self, state: Quantity) -> dict[str, object] | None:
        """``b^0 = b^{(0)}`` where the state has a symbol of its own; None where the notes
        write it as ``b^0`` itself (the equation would read ``b^0 = b^0``)."""
        lhs = self.state_lhs(state)
        indices = self.indices_of(self.model.quantity(state.state_of))[:-1]  # type: ignore
        rhs = state.base[indices] if indices else sympy.Symbol(state.name)
        if self.tex(lhs) == self.tex(rhs):
            return None
        return self.equation(f"eq:state:{state.name}", lhs, rhs)

    # --- equations -------------------------------------------------------------------------------

    def terms(self, expr: Expr) -> list[str]:
        """The printed lines of ``expr``: one, or its top-level terms packed into several."""
        whole = self.tex(expr)
        if not isinstance(expr, sympy.Add) or _visible_width(whole) <= LINE_WIDTH:
            return [whole]
        lines: list[str] = []
        for position, term in enumerate(self.printer._as_ordered_terms(expr)):
            if position == 0:
                piece = self.tex(term)
            elif term.could_extract_minus_sign():
                piece = "- " + self.tex(-term)
            else:
                piece = "+ " + self.tex(term)
            if lines and _visible_width(lines[-1] + piece) <= LINE_WIDTH:
                lines[-1] += " " + piece
            else:
                lines.append(piece)
        return lines

    def rows(self, lhs: str, relation: str, expr: Expr, tag: str = "") -> list[dict[str, str]]:
        """Aligned rows ``lhs &= …``, continued ``&\\quad + …``; the last one bears ``tag``."""
        lines = self.terms(expr)
        rows = [{"left": lhs, "right": f"{relation} {lines[0]}", "tag": ""}]
        rows += [{"left": "", "right": rf"\quad {line}", "tag": ""} for line in lines[1:]]
        rows[-1]["tag"] = tag
        return rows

    def equation(self, label: str, lhs: Expr, rhs: Expr) -> dict[str, object]:
        return {"label": label, "rows": self.rows(self.tex(lhs), "=", rhs)}

    # --- adjoints --------------------------------------------------------------------------------

    def partial_of(self, quantity: Quantity, indices: Iterable[Expr]) -> str:
        """``\\partial L/\\partial a_{k}``, inline (for headings and prose)."""
        indices = tuple(indices)
        element = quantity.base[indices] if indices else sympy.Symbol(quantity.name)
        return rf"\partial {self.tex(self.loss)}/\partial {self.tex(element)}"

    def block(self, adjoint: Adjoint) -> dict[str, object]:
        quantity = adjoint.quantity
        if quantity.role is Role.INTERMEDIATE:
            kind = "lemma" if adjoint.inlined else "adjoint"
        else:
            kind = "gradient"
        partial = self.partial_of(quantity, adjoint.indices)
        symbol = self.tex(adjoint.lhs)
        named = bool(quantity.adjoint_latex)
        heading = f"${symbol} = {partial}$" if named else f"${partial}$"
        # \unichar{"2202} is ∂ in the PDF's bookmarks (hyperref's PDF strings, any engine)
        bookmark = rf'\unichar{{"2202}}L/\unichar{{"2202}}{tex_escape(quantity.name)}'
        what = quantity_name(self.model.name, quantity.name, self.lang)
        if what:
            heading += self.s["what"].format(what=tex_escape(what))
            bookmark += tex_escape(self.s["what"].format(what=what))
        definition = ""
        if named:
            definition = rf"{symbol} := {self.tex(Partial(self.loss, self.element(quantity)))}"
        return {
            "kind": kind,
            "name": tex_escape(quantity.name),
            "heading": heading,
            "bookmark": bookmark,
            "label": quantity.name,
            "definition": definition,
            "used_by": [self.reference(a) for a in self.readers(adjoint)] if adjoint.inlined
            else [],
            "uses": [self.reference(self.derivation.adjoints[lp.consumer.quantity.name])
                     for lp in adjoint.local_partials
                     if lp.consumer.quantity.name in self.derivation.adjoints
                     and self.derivation.adjoints[lp.consumer.quantity.name].inlined],
            "partials": [self.rows(self.tex(lp.partial), "=", lp.value,
                                   self.rule(lp.rule_keys, [self.source(lp)]))
                         for lp in adjoint.local_partials],
            "partials_have_rules": any(lp.rule_keys for lp in adjoint.local_partials),
            "steps": self.steps(adjoint),
            "result": self.rows(symbol, "=", adjoint.expr),
            "boundary": self.boundary_conditions(adjoint),
        }

    def source(self, local: LocalPartial) -> str:
        """The label of the equation a local partial differentiates."""
        name = local.consumer.quantity.name
        return "eq:loss" if name == self.model.loss_name else f"eq:fwd:{name}"

    def rule(self, keys: Iterable[str], labels: Iterable[str] = ()) -> str:
        """The names of rules (by key) as a step's tag, with the equations they read:
        ``chain rule (3), (5)``."""
        names = self.s["list_sep"].join(rule_name(key, self.lang) for key in keys)
        text = tex_escape(names, subscripts=True) if names else ""
        refs = self.s["list_sep"].join(rf"(\ref{{{self.prefix}{label}}})" for label in labels)
        return f"{text} {refs}".strip() if refs else text

    def reference(self, adjoint: Adjoint) -> dict[str, str]:
        """An adjoint as prose names it: its symbol, or ``\\partial L/\\partial q`` inline."""
        symbol = (self.tex(adjoint.lhs) if adjoint.quantity.adjoint_latex
                  else self.partial_of(adjoint.quantity, adjoint.indices))
        return {"label": adjoint.quantity.name, "symbol": symbol}

    def readers(self, adjoint: Adjoint) -> list[Adjoint]:
        """The adjoints that ``adjoint`` (an inlined one) was substituted into."""
        return [a for a in self.derivation.adjoints.values()
                if any(lp.consumer.quantity is adjoint.quantity for lp in a.local_partials)]

    def steps(self, adjoint: Adjoint) -> list[dict[str, str]]:
        """The recorded rewrites as one chain of equalities, each row tagged with its rule."""
        rows: list[dict[str, str]] = []
        previous: Expr | None = None
        sources = _unique(self.source(lp) for lp in adjoint.local_partials)
        consumers = _unique(f"eq:adj:{lp.consumer.quantity.name}" for lp in adjoint.local_partials
                            if lp.consumer.quantity.name in self.derivation.adjoints)
        for step in adjoint.steps:
            refs = {Rule.LOCAL_PARTIALS: sources,
                    Rule.SUBSTITUTE_ADJOINTS: consumers}.get(step.rule_key, [])
            rule = self.rule([step.rule_key], refs)
            lhs = "" if step.before == previous else self.tex(step.before)
            if lhs and rows:  # a step that does not continue the chain starts a new one
                rows.append({"left": "", "right": "", "tag": ""})
            rows += self.rows(lhs, "=", step.after, rule)
            previous = step.after
        return rows

    # --- boundary conditions ------------------------------------------------------------------

    def boundary_conditions(self, adjoint: Adjoint) -> list[str]:
        """Prose for each range condition in the result (Graves' ``δ^{T+1} = 0``)."""
        grouped: dict[InRange, list[Expr]] = {}
        for node in sympy.preorder_traversal(adjoint.expr):
            if isinstance(node, sympy.Mul):
                conditions = [f for f in node.args if isinstance(f, InRange)]
                body = node.xreplace({c: sympy.S.One for c in conditions})
                for condition in conditions:
                    grouped.setdefault(condition, []).append(body)
        return [self.boundary(adjoint, condition, bodies)
                for condition, bodies in grouped.items()]

    def boundary(self, adjoint: Adjoint, condition: InRange, bodies: list[Expr]) -> str:
        """Why the terms under ``condition`` vanish outside it: what they would read there."""
        variable, lo, hi = condition.args
        if not isinstance(variable, Idx):
            return self.s["bc_vanish"].format(cond=self.printer.range_condition(condition))
        span = self.span(adjoint, variable)
        where = self.printer.range_condition(condition, span)
        # the values of ``variable`` the condition excludes, each with its edge next to the range
        outside = []
        if sympy.simplify(span[1] - hi) != 0:
            outside.append((hi + 1, span[1], hi + 1))
        if sympy.simplify(lo - span[0]) != 0:
            outside.append((span[0], lo - 1, lo - 1))
        v = self.tex(variable)
        at = self.s["and"].join(
            rf"${v} = {self.tex(a)}$" if sympy.simplify(b - a) == 0
            else rf"${self.tex(a)} \le {v} \le {self.tex(b)}$" for a, b, _ in outside)
        reads = _unique(ref for body in bodies for ref in sympy.preorder_traversal(body)
                        if isinstance(ref, Indexed) and any(i.has(variable) for i in ref.indices))
        if not outside:
            return self.s["bc_only"].format(cond=where)
        # a term vanishes for want of a quantity when that quantity is one of its factors
        missing_in = [[ref for ref in _unique(f.xreplace({variable: edge})
                                              for f in _factors(body) for _, _, edge in outside)
                       if self.exists(ref) is False] for body in bodies]
        missing = _unique(ref for refs in missing_in for ref in refs)
        if not all(missing_in):
            return self.s["bc_not_apply"].format(reads=self.join(self.tex(r) for r in reads),
                                                 cond=where, at=at)
        beyond_end = [ref for ref in missing if self.is_adjoint(ref) and any(
            sympy.simplify(index - variable.upper).is_positive for index in ref.indices)]
        text = self.s["bc_missing"].format(
            reads=self.join(self.tex(r) for r in reads), cond=where, at=at,
            missing=self.join(self.tex(r) for r in missing),
            verb=self.s["bc_does"] if len(missing) == 1 else self.s["bc_do"])
        if beyond_end:
            conditions = self.join(rf"{self.tex(ref)} = 0" for ref in beyond_end)
            key = "bc_graves_one" if len(beyond_end) == 1 else "bc_graves_many"
            text += self.s[key].format(conds=conditions)
        return text

    def uses_functions(self) -> str:
        """The squashing functions, once, in Graves' notation: ``f'(a) = b(1 - b)`` and
        ``θ'(a) = 1 - b²`` for a named output ``b``; where an equation applies one without
        naming its result (the LSTM's cell input and output), Graves' ``f``, ``g``, ``h``."""
        words = {**self.s, **prose(self.lang)}
        equations = [e.rhs for e in self.model.equations.values()]
        names = {type(f).__name__ for e in equations for f in e.atoms(sympy.Function)}
        letters = self.printer.letters
        if not letters:
            pieces = [words[f"function_{name}"].format() for name in ("logistic", "tanh")
                      if name in names]
            return (words["functions"].format(pieces=words["function_sep"].join(pieces))
                    if pieces else "")
        inner = [(key, letter) for key, letter in letters.items() if letter != "f"]
        applied = words["list_sep"].join(
            words["letter_applied"].format(letter=letter, arg=self.tex(self.element(
                self.model.quantity(name)))) for (_, name), letter in inner)
        gates = any(letter == "f" for letter in letters.values())
        tanh = [letter for (function, _), letter in inner if function == "tanh"]
        logistic = [letter for (function, _), letter in inner if function == "logistic"]
        means = []
        if gates:
            means.append(words["letters_gates"].format())
        if tanh:
            means.append(words["letters_tanh"].format(
                letters=" = ".join(tanh), primes=" = ".join(f"{t}'(x)" for t in tanh)))
        if logistic:
            means.append(words["letters_logistic"].format(
                letters=" = ".join(logistic), primes=" = ".join(f"{t}'(x)" for t in logistic)))
        return words["functions_graves"].format(
            gates=words["letter_gates"] if gates else "", applied=applied,
            means=words["function_sep"].join(means))

    def join(self, pieces: Iterable[str]) -> str:
        """``$a$``, ``$a$ and $b$``, ``$a$, $b$ and $c$``: inline math, listed in prose."""
        items = [f"${piece}$" for piece in pieces]
        if len(items) <= 1:
            return "".join(items)
        return self.s["list_sep"].join(items[:-1]) + self.s["and"] + items[-1]

    def exists(self, ref: Indexed) -> bool | None:
        """Whether ``ref``'s time lies in its quantity's steps (``0`` counts for an initial state).

        None where that is not decidable, or the quantity is not indexed by time.
        """
        name = ref.base.name
        adjointed = quantity_of_adjoint(name)
        quantity = self.model.quantities.get(name) or (
            self.model.quantities.get(adjointed) if adjointed is not None else None)
        time = self.model.time_index
        if quantity is None or time is None or not quantity.time:
            return None
        first = time.lower - 1 if self.model.state_for(quantity) else time.lower
        when = ref.indices[-1]
        above, below = sympy.simplify(when - time.upper), sympy.simplify(first - when)
        if above.is_positive or below.is_positive:
            return False
        if above.is_nonpositive and below.is_nonpositive:
            return True
        return None

    def span(self, adjoint: Adjoint, variable: Idx) -> tuple[Expr, Expr]:
        if variable == self.model.time_index and adjoint.time_range is not None:
            return adjoint.time_range
        return variable.lower, variable.upper

    def is_adjoint(self, ref: Indexed) -> bool:
        return ref.base.name not in self.model.quantities


def _factors(expr: Expr) -> list[Indexed]:
    """The quantities ``expr`` is a multiple of: ``w δ^{t+1}`` and ``Σ_h w_{hk} δ^{t+1}_h``."""
    if isinstance(expr, Indexed):
        return [expr]
    if isinstance(expr, sympy.Mul):
        return [f for arg in expr.args for f in _factors(arg)]
    if isinstance(expr, sympy.Sum):
        return _factors(expr.function)
    return []


def _unique(items: Iterable[Expr]) -> list[Expr]:
    """``items`` without repeats, in first-seen order."""
    return list(dict.fromkeys(items))


def _label_safe(name: str) -> str:
    """``name`` with only the characters a LaTeX label can hold safely."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)


def preamble(lang: str = "en") -> str:
    """The preamble of a notes document in ``lang``: class, fonts, packages."""
    strings(lang)  # an unknown language is an error here, not a silent English preamble
    return render(PREAMBLE, {"lang": lang}).rstrip("\n")


def trace_context(derivation: Derivation, lang: str = "en", *,
                  standalone: bool = True) -> dict[str, object]:
    """What the full trace's template is filled with: every expression already printed."""
    return _Notes(derivation, lang, standalone=standalone).context()


__all__ = ["LINE_WIDTH", "PREAMBLE", "TRACE", "preamble", "tex_escape", "trace_context"]
