"""The notes a student reads: a Derivation → what ``templates/notes.tex.j2`` shows.

Role in DESIGN.md's picture: the default document of the ``latex`` branch
(``detail="short"``). Everything comes from the derivation and the model, nothing from
the network's name: the model (indices, symbols, figure), the forward pass and the loss
(and, for a cross-entropy, where it comes from), the backward pass, the boundary
condition once, the parameter gradients by one general derivation and a table, a
one-page summary in index and matrix form (``vector.py``) and, in an appendix, the only
table of the kernels' names.

Each stored adjoint is derived from its recorded steps with what a reader learns from:
the local partials that use a derivative rule (a quotient such as the softmax by the
quotient rule), the adjoints substituted into it, the chain rule, the sums over the
Kronecker deltas and the identities, each line annotated "by (n)". Steps that change
nothing are left out, and an adjoint whose derivation has the shape of an earlier one
shows its result only.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Iterable

import sympy
from sympy import Expr, Idx, Indexed

from chainrule.codegen.backends.latex.example import Example, example_context
from chainrule.codegen.backends.latex.figure import tikz_graph
from chainrule.codegen.backends.latex.mirror import mirror
from chainrule.codegen.backends.latex.printer import Scripted, split_scripts
from chainrule.codegen.backends.latex.prose import prose
from chainrule.codegen.backends.latex.trace import (
    LINE_WIDTH,
    _Notes,
    _unique,
    _visible_width,
    tex_escape,
)
from chainrule.codegen.backends.latex.trace import preamble as _preamble
from chainrule.codegen.backends.latex.vector import VectorForms
from chainrule.codegen.backends.latex.vector_check import failing_forms
from chainrule.codegen.backends.latex.words import model_text, quantity_name, rule_name
from chainrule.symbolic import Adjoint, Derivation, InRange, LocalPartial, Partial, Role, Rule

#: Width (estimated characters) of a derivation line that has a note beside it.
NOTED_WIDTH = 42
#: Width of one cell of the summary's matrix forms.
CELL_WIDTH = 30
#: Width of one cell of the summary's index forms, printed with text-style sums.
INDEX_CELL_WIDTH = 38
#: Widest summary cell (with its left side) that a quarter of the page holds.
HALF_CELL = 26

_UNICODE = {
    r"\delta": "δ", r"\epsilon": "ε", r"\iota": "ι", r"\phi": "φ", r"\omega": "ω",
    r"\beta": "β", r"\theta": "θ", r"\sigma": "σ", r"\partial": "∂", r"\prime": "′",
    r"\alpha": "α", r"\gamma": "γ", r"\eta": "η", r"\lambda": "λ", r"\mu": "μ", r"\tau": "τ",
}


def bookmark(tex: str) -> str:
    """Inline math as the plain text of a PDF bookmark: ``\\delta_{k}^{t}`` → ``δkt``, with
    the characters hyperref can write in any engine (``\\unichar``)."""
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"\1/\2", tex)
    text = re.sub(r"\\(left|right|,|;|quad|mathit|operatorname)", "", text)
    for command, char in sorted(_UNICODE.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(command, char)
    text = re.sub(r"[{}_^$\\ ]", "", text)
    return "".join(rf'\unichar{{"{ord(c):04X}}}' if ord(c) > 127 else tex_escape(c)
                   for c in text)


def simplify_deltas(expr: Expr) -> Expr:
    """Sum out every Kronecker delta that is a factor of a whole summand: the substitutions
    that need no thought (``Σ_{t'} f(t') δ_{t t'} = f(t)``), the others kept."""
    if isinstance(expr, sympy.Sum):
        body = sympy.factor_terms(simplify_deltas(expr.function))
        limits = list(expr.limits)
        changed = True
        while changed:
            changed = False
            for delta in [f for f in sympy.Mul.make_args(body)
                          if isinstance(f, sympy.KroneckerDelta)]:
                for limit in limits:
                    value = _solve(delta, limit[0])
                    if value is not None:
                        rest = [f for f in sympy.Mul.make_args(body) if f is not delta]
                        body = sympy.Mul(*rest).xreplace({limit[0]: value})
                        limits.remove(limit)
                        changed = True
                        break
                if changed:
                    break
        return sympy.Sum(body, *limits) if limits else body
    if expr.args and not isinstance(expr, (Indexed, Idx)):
        return expr.func(*(simplify_deltas(a) for a in expr.args))
    return expr


def _modulo_renaming(tex: str) -> str:
    """Printed text with bound indices' primes merged (``h''`` reads as ``h'``)."""
    return re.sub(r"'+", "'", tex)


def _solve(delta: sympy.KroneckerDelta, variable: Idx) -> Expr | None:
    a, b = delta.args
    for side, other in ((a, b), (b, a)):
        offset = sympy.expand(side - variable)
        if side.has(variable) and not offset.has(variable) and not other.has(variable):
            return sympy.expand(other - offset)
    return None


def partial_view(local: LocalPartial) -> tuple[Partial, Expr]:
    """A local partial with the deltas that fix the consumer's indices substituted:
    ``∂a_{h'}^{t'}/∂b_h^t = w_{hh'} δ_{hh'}``... → ``∂a_{h'}^{t+1}/∂b_h^t = w_{hh'}``."""
    partial, value = local.partial, sympy.factor_terms(local.value)
    mine = set(partial.den.indices) if isinstance(partial.den, Indexed) else set()
    theirs = [i for i in (partial.num.indices if isinstance(partial.num, Indexed) else ())
              if isinstance(i, Idx) and i not in mine]
    for delta in [f for f in sympy.Mul.make_args(value) if isinstance(f, sympy.KroneckerDelta)]:
        for index in theirs:
            solved = _solve(delta, index)
            if solved is not None:
                value = sympy.Mul(*[f for f in sympy.Mul.make_args(value) if f is not delta])
                value, num = value.xreplace({index: solved}), partial.num.xreplace(
                    {index: solved})
                partial = Partial(num, partial.den)
                theirs.remove(index)
                break
    return partial, value


class _Teaching(_Notes):
    """Everything ``notes.tex.j2`` shows for one derivation, printed."""

    def __init__(self, derivation: Derivation, lang: str = "en", *,
                 standalone: bool = True, example: Example | None = None) -> None:
        super().__init__(derivation, lang, standalone=standalone)
        self.example = example
        self.s = {**self.s, **prose(lang)}
        self.vectors = VectorForms(self.model)
        # the layer that reads t+1 of a bidirectional network, where it mirrors the one
        # that reads t-1: the summary prints the rows of the second only
        self.mirrored = mirror(self.model) or {}
        # a matrix form that its numerical check finds wrong is never printed
        self.failing_forms = failing_forms(derivation)
        for check in self.failing_forms.values():
            warnings.warn(f"{self.model.name}: the matrix form of {check.describe()}; the "
                          f"summary shows the index form alone", stacklevel=2)
        self.refs: dict[str, str] = {}  # quantity name → label of the equation deriving it
        # Chinese is set at 12pt, English at 11pt: fewer characters fit beside a note
        self._width = NOTED_WIDTH if lang == "en" else NOTED_WIDTH - 5

    # --- references ---------------------------------------------------------------------

    def ref(self, label: str) -> str:
        return rf"(\ref{{{self.prefix}{label}}})"

    def by(self, labels: Iterable[str], rules: Iterable[str] = ()) -> str:
        refs = self.s["ref_sep"].join(self.ref(label) for label in _unique(labels))
        words = [tex_escape(rule_name(key, self.lang), subscripts=True) for key in rules]
        pieces = ([self.s["by"].format(refs=refs)] if refs else []) + words
        return self.s["list_sep"].join(pieces)

    def fits(self, expr: Expr, width: int = NOTED_WIDTH) -> bool:
        return _visible_width(self.tex(expr)) <= width

    def lines(self, lhs: str, expr: Expr, note: str = "", width: int | None = None
              ) -> list[dict[str, str]]:
        """Rows ``lhs &= …`` broken at ``width`` (default: beside a note), the note on the
        first."""
        saved = self._width
        self._width = width or saved
        try:
            rows = self.rows(lhs, "=", expr)
        finally:
            self._width = saved
        for row in rows:
            row["note"], row["gap"] = "", ""
        rows[0]["note"] = note
        return rows

    _width = NOTED_WIDTH

    def equation(self, label: str, lhs: Expr, rhs: Expr) -> dict[str, object]:
        """A numbered display equation, broken as in the full trace (the same in every
        language)."""
        saved = self._width
        self._width = LINE_WIDTH
        try:
            return super().equation(label, lhs, rhs)
        finally:
            self._width = saved

    def terms(self, expr: Expr) -> list[str]:
        whole = self.tex(expr)
        if not isinstance(expr, sympy.Add) or _visible_width(whole) <= self._width:
            return [whole]
        lines: list[str] = []
        for position, term in enumerate(self.printer._as_ordered_terms(expr)):
            piece = (self.tex(term) if position == 0 else "- " + self.tex(-term)
                     if term.could_extract_minus_sign() else "+ " + self.tex(term))
            if lines and _visible_width(lines[-1] + piece) <= self._width:
                lines[-1] += " " + piece
            else:
                lines.append(piece)
        return lines

    # --- the whole document -------------------------------------------------------------

    def context(self) -> dict[str, object]:
        model = self.model
        time = model.time_index
        what = model_text(model.title, self.lang)
        if model.description:  # the model's own words, escaped (a user's text)
            what += self.s["what"].format(what=model_text(model.description, self.lang))
        description = self.s["description"].format(what=tex_escape(what)) if what else ""
        forward = [self.equation(f"eq:fwd:{name}", model.equations[name].lhs,
                                 model.equations[name].rhs)
                   for name in model.evaluation_order()]
        loss = self.equation("eq:loss", model.loss_equation.lhs,  # type: ignore[union-attr]
                             model.loss_equation.rhs)  # type: ignore[union-attr]
        named = self.derivation.named
        blocks = self.blocks(named)
        return {
            "standalone": self.standalone,
            "preamble": _preamble(self.lang) if self.standalone else "",
            "prefix": self.prefix,
            "s": self.s,
            "title": tex_escape(model_text(model.title, self.lang)),
            "bookmark_title": tex_escape(model_text(model.title, self.lang)),
            "intro": self.s["intro"].format(description=description),
            "verified": self.verified(),
            "figure": tikz_graph(model, self.printer),
            "recurrent": time is not None,
            "indices": self.indices_sentence(),
            "symbols": self.symbols(),
            "functions": self.uses_functions(),
            "each_step": self.each_step() if time is not None else "",
            "forward": forward,
            "loss": loss,
            "loss_origin": self.loss_origin(),
            # one formula per adjoint, so that a long list breaks between them
            "order": self.s["list_sep"].join(f"${self.tex(a.lhs)}$" for a in named),
            "boundary": self.boundary_sentence(named),
            "when": self.when(),
            "blocks": blocks,
            "gradients": self.gradients(),
            "summary": self.summary(),
            "example": example_context(self.example, self.s, self.tex,
                                       lambda name: self.vectors.symbol(name, False, None)),
            "appendix": self.appendix(),
        }

    # --- the model ----------------------------------------------------------------------

    def indices_sentence(self) -> str:
        groups: dict[tuple[Expr, Expr], list[Idx]] = {}
        for index in self.model.indices.values():
            if index is not self.model.time_index:
                groups.setdefault((index.lower, index.upper), []).append(index)
        # the notes count units from 1, as Graves does (the kernels' arrays from 0)
        units = self.s["list_sep"].join(
            rf"${', '.join(self.tex(i) for i in members)} = {self.tex(lo + 1)}, \dots, "
            rf"{self.tex(hi + 1)}$" for (lo, hi), members in groups.items())
        time = self.model.time_index
        if time is None:
            return self.s["indices_plain"].format(units=units)
        return self.s["indices_time"].format(
            time=rf"{self.tex(time)} = {self.tex(time.lower)}, \dots, {self.tex(time.upper)}",
            units=units)

    def initial(self, state) -> Expr:
        """An initial state as the notes write it: its owner at the step it stands for,
        ``b^0`` (a recurrence forward in time) or ``b^{T+1}`` (backward)."""
        owner = self.model.quantity(state.state_of)
        indices = self.indices_of(owner)[:-1]
        step = self.model.initial_step(owner)
        return owner.base[(*indices, 0 if step is None else step)]

    def read_at(self, state) -> str:
        """Where an initial state is read: ``t = 1`` forward, ``t = T`` backward (``t = 1, 2``
        for a recurrence through ``t-2``)."""
        owner = self.model.quantity(state.state_of)
        step = self.model.initial_step(owner)
        time = self.model.time_index
        assert time is not None and step is not None
        ahead = step != time.lower - 1
        steps = sorted((step - shift for shift in self.model.shifts(owner)
                        if (shift > 0) == ahead), key=sympy.default_sort_key,
                       reverse=ahead)
        return "t = " + ", ".join(self.tex(sympy.sympify(s)) for s in steps)

    def each_step(self) -> str:
        """The forward loop's sentence: its range(s) and the initial states they start from."""
        states = self.model.of_role(Role.STATE)
        time = self.model.time_index
        assert time is not None
        up = [q for q in states
              if self.model.initial_step(self.model.quantity(q.state_of)) == time.lower - 1]
        down = [q for q in states if q not in up]

        def text(quantities: list) -> str:
            return self.join(self.tex(self.initial(q)) for q in quantities)

        if down and up:
            return self.s["each_step_both"].format(up=text(up), down=text(down))
        if down:
            return self.s["each_step_down"].format(states=text(down))
        if up:
            return self.s["each_step"].format(states=text(up))
        return self.s["each_step_plain"]

    def symbols(self) -> list[dict[str, str]]:
        rows = []
        for role in (Role.INPUT, Role.TARGET, Role.PARAMETER, Role.STATE):
            members = self.model.of_role(role)
            if members:
                shown = [self.initial(q) if role is Role.STATE else self.element(q)
                         for q in members]
                rows.append({"role": self.s[f"role_{role.value}"],
                             "symbols": ", ".join(f"${self.tex(e)}$" for e in shown)})
        return rows

    def loss_origin(self) -> str:
        """Where a cross-entropy comes from, when the loss is one: ``-Σ z ln y`` over a
        target ``z`` and an output ``y``."""
        rhs = self.model.loss_equation.rhs  # type: ignore[union-attr]
        logs = [f for f in rhs.atoms(sympy.log) if isinstance(f.args[0], Indexed)]
        targets = {q.name for q in self.model.of_role(Role.TARGET)}
        reads = {ref.base.name for ref in rhs.atoms(Indexed)}
        if len(logs) == 1 and reads & targets and rhs.could_extract_minus_sign():
            output = logs[0].args[0]
            return self.s["loss_likelihood"].format(y=self.tex(output))
        return self.s["loss_plain"]

    # --- the backward pass --------------------------------------------------------------

    def shift(self, ref: Indexed) -> int:
        """The step offset of a read at ``t + c`` (``c``; 0 at ``t`` or without time)."""
        time = self.model.time_index
        if time is None or not ref.indices:
            return 0
        offset = sympy.expand(ref.indices[-1] - time)
        return int(offset) if offset.is_Integer else 0

    def shifted_adjoints(self, adjoints: Iterable[Adjoint]) -> list[Indexed]:
        """The adjoints read at another step (``t+1``, or ``t-1`` in a layer that runs
        backwards in time) in ``adjoints``' results."""
        found = []
        for adjoint in adjoints:
            for ref in sympy.preorder_traversal(adjoint.expr):
                if isinstance(ref, Indexed) and self.is_adjoint(ref) and self.shift(ref):
                    found.append(ref)
        return _unique(found)

    def boundaries(self) -> list[dict[str, str]]:
        """Graves' boundary conditions, one case per direction of the backward recurrences:
        an adjoint read at ``t+1`` is zero at ``T+1`` (the loop's first step is ``T``), one
        read at ``t-1`` (a layer running backwards in time) is zero at ``0``."""
        time = self.model.time_index
        shifted = self.shifted_adjoints(self.derivation.adjoints.values())
        if time is None or not shifted:
            return []
        cases = []
        for ahead in (True, False):
            refs = [r for r in shifted if (self.shift(r) > 0) == ahead]
            if not refs:
                continue
            reads, conds = [], []
            for ref in refs:
                shift = self.shift(ref)
                reads.append(self.tex(ref.func(ref.base, *self.plain_indices(ref, time + shift))))
                steps = (range(1, shift + 1) if ahead else range(shift, 0))
                for step in steps:
                    when = time.upper + step if ahead else time.lower + step
                    conds.append(self.tex(ref.func(ref.base, *self.plain_indices(ref, when))))
            first = time.upper if ahead else time.lower
            beyond = time.upper + 1 if ahead else time.lower - 1
            cases.append({"last": self.tex(first), "beyond": self.tex(beyond),
                          "reads": self.join(_unique(reads)),
                          "zeros": [f"{c} = 0" for c in _unique(conds)],
                          "conds": self.join(f"{c} = 0" for c in _unique(conds)),
                          "range": (rf"t = {self.tex(time.upper)}, \dots, {self.tex(time.lower)}"
                                    if ahead else
                                    rf"t = {self.tex(time.lower)}, \dots, {self.tex(time.upper)}"),
                          "ahead": ahead})
        return cases

    def directions(self) -> dict[str, int]:
        """The direction of the backward loop each stored adjoint is computed in: -1 (``t``
        descending) for one that reads an adjoint at ``t+1``, +1 (ascending) at ``t-1``, and
        for one that reads neither the direction of the adjoints it reads at its own step
        (0 where there are none)."""
        by_base = {a.base: name for name, a in self.derivation.adjoints.items()}
        found: dict[str, int] = {}
        named = self.derivation.named
        changed = True
        while changed:
            changed = False
            for adjoint in named:
                name = adjoint.quantity.name
                if found.get(name):
                    continue
                direction = 0
                for ref in sympy.preorder_traversal(adjoint.expr):
                    if not isinstance(ref, Indexed) or not self.is_adjoint(ref):
                        continue
                    shift = self.shift(ref)
                    if shift:
                        direction = -1 if shift > 0 else 1
                        break
                    direction = direction or found.get(by_base.get(ref.base, ""), 0)
                if direction:
                    found[name] = direction
                    changed = True
                found.setdefault(name, 0)
        return found

    def loops(self) -> list[dict[str, object]]:
        """The backward loops in the order they run: a range of ``t`` and the adjoints each
        computes (with the boundary values it starts from)."""
        named = self.derivation.named
        directions = self.directions()
        cases = {(-1 if c["ahead"] else 1): c for c in self.boundaries()}
        order = _unique(directions[a.quantity.name] for a in named
                        if directions[a.quantity.name])
        if not order:
            order = [-1]
        if self.mirrored:  # the loop of the layer the summary shows first (t descending)
            order.sort()
        loops = []
        for position, direction in enumerate(order):
            members = [a for a in named if directions[a.quantity.name] == direction
                       or (position == 0 and not directions[a.quantity.name])]
            case = cases.get(direction)
            time = self.model.time_index
            span = (rf"t = {self.tex(time.upper)}, \dots, {self.tex(time.lower)}" if direction < 0
                    else rf"t = {self.tex(time.lower)}, \dots, {self.tex(time.upper)}"
                    ) if time is not None else ""
            loops.append({"range": span, "conds": case["conds"] if case else "",
                          "steps": self.s["list_sep"].join(
                              rf"${self.tex(a.lhs)}$~{self.ref(self.refs[a.quantity.name])}"
                              for a in members)})
        return loops

    def when(self) -> str:
        """How the backward loop runs through time: down from ``T`` (recurrences through
        ``t-1`` in the forward pass), up from ``1`` (through ``t+1``), or both."""
        if self.model.time_index is None:
            return ""
        directions = {d for d in self.directions().values() if d}
        if directions == {-1, 1}:
            return self.s["backward_when_both"]
        return self.s["backward_when_up" if directions == {1} else "backward_when"]

    def boundary_sentence(self, named: list[Adjoint]) -> str:
        cases = self.boundaries()
        sentences = [self.s["boundary_case" if case["ahead"] else "boundary_case_behind"]
                     .format(**case) for case in cases] + self.conditioned_terms(named)
        if not sentences:
            return ""
        return self.s["boundary"].format(cases=self.s["sentence_sep"].join(sentences))

    def conditioned_terms(self, named: list[Adjoint]) -> list[str]:
        """A sentence for each term that is there only where its range condition holds,
        one the boundary values do not imply (so the equations print it as a bracket):
        ``[t = T] Σ_k w_{ck} δ_k`` of a loss read at the last step."""
        sentences = []
        for adjoint in named:
            for term in sympy.Add.make_args(adjoint.expr):
                conditions = [f for f in sympy.Mul.make_args(term) if isinstance(f, InRange)
                              and not self.printer.implied(f, term)]
                if conditions:
                    when = self.join(self.printer.range_condition(c) for c in conditions)
                    sentences.append(self.s["conditioned"].format(
                        term=self.tex(term), lhs=self.tex(adjoint.lhs), when=when))
        return sentences

    def plain_indices(self, ref: Indexed, when: Expr | None = None) -> tuple[Expr, ...]:
        """``ref``'s quantity at its canonical unit indices, at ``when`` (default t+1)."""
        time = self.model.time_index
        assert time is not None
        quantity = self.model.quantities.get(ref.base.name)
        if quantity is None:
            from chainrule.symbolic import quantity_of_adjoint

            quantity = self.model.quantity(quantity_of_adjoint(ref.base.name))
        units = self.indices_of(quantity)[:-1]
        return (*units, time + 1 if when is None else when)

    def signature(self, adjoint: Adjoint) -> tuple[object, ...]:
        inlined = tuple(sorted(
            (lp.rule_keys, self.derivation.adjoints[lp.consumer.quantity.name].inlined
             if lp.consumer.quantity.name in self.derivation.adjoints else False)
            for lp in adjoint.local_partials))
        return (inlined, adjoint.expr.has(InRange), len(adjoint.steps))

    def blocks(self, named: list[Adjoint]) -> list[dict[str, object]]:
        seen: dict[tuple[object, ...], str] = {}
        blocks = []
        for adjoint in named:
            signature = self.signature(adjoint)
            earlier = seen.get(signature)
            seen.setdefault(signature, adjoint.quantity.name)
            self.refs[adjoint.quantity.name] = f"eq:adj:{adjoint.quantity.name}"
            blocks.append(self.block(adjoint, earlier))
        return blocks

    def heading(self, adjoint: Adjoint) -> tuple[str, str]:
        symbol = self.tex(adjoint.lhs)
        what = quantity_name(self.model.name, adjoint.quantity.name, self.lang)
        suffix = self.s["what"].format(what=tex_escape(what)) if what else ""
        return f"${symbol}${suffix}", bookmark(symbol) + (tex_escape(
            self.s["what"].format(what=what)) if what else "")

    def block(self, adjoint: Adjoint, earlier: str | None) -> dict[str, object]:
        heading, mark = self.heading(adjoint)
        label = f"eq:adj:{adjoint.quantity.name}"
        symbol = self.tex(adjoint.lhs)
        if earlier is not None:
            rows = self.lines(symbol, adjoint.expr, width=80)
            return {"heading": heading, "bookmark": mark, "label": label, "rows": rows,
                    "same": self.s["same_way"].format(ref=self.ref(f"eq:adj:{earlier}")),
                    "notes": self.notes(adjoint)}
        rows = self.partial_rows(adjoint) + self.lemma_rows(adjoint)
        if rows:
            rows.append({"left": "", "right": "", "note": "", "gap": "1"})
        rows += self.chain_rows(adjoint)
        return {"heading": heading, "bookmark": mark, "label": label, "rows": rows, "same": "",
                "notes": self.notes(adjoint)}

    def source(self, local: LocalPartial) -> str:
        name = local.consumer.quantity.name
        return "eq:loss" if name == self.model.loss_name else f"eq:fwd:{name}"

    def partial_rows(self, adjoint: Adjoint) -> list[dict[str, str]]:
        """The local partials with a rule to learn from; a quotient by the quotient rule."""
        rows: list[dict[str, str]] = []
        for local in adjoint.local_partials:
            partial, value = partial_view(local)
            quotient = self.quotient(local, partial)
            if quotient is not None:
                rows += quotient
                rows += self.lines("", value, self.by([self.source(local)]))
                rows[-1]["right"] = "= " + self.tex(value)
                continue
            if local.rule_keys:
                rows += self.lines(self.tex(partial), value,
                                   self.by([self.source(local)], local.rule_keys))
        return rows

    def quotient(self, local: LocalPartial, partial: Partial) -> list[dict[str, str]] | None:
        """``∂(n/d)/∂q = (∂n/∂q d - n ∂d/∂q)/d²``, where the consumer's equation is a
        fraction whose denominator depends on ``q``."""
        equation = local.consumer
        num = partial.num
        if not isinstance(num, Indexed) or not isinstance(equation.lhs, Indexed):
            return None
        clashes = {limit[0] for s in equation.rhs.atoms(sympy.Sum) for limit in s.limits
                   if limit[0] in num.indices}
        rhs = equation.rhs.xreplace({i: Idx(i.name + "'", (i.lower, i.upper)) for i in clashes})
        rhs = rhs.xreplace(dict(zip(equation.lhs.indices, num.indices, strict=True)))
        top, bottom = sympy.fraction(rhs)
        if bottom == 1 or not bottom.has(partial.den.base):  # type: ignore[union-attr]
            return None
        d_top = simplify_deltas(sympy.diff(top, partial.den))
        d_bottom = simplify_deltas(sympy.diff(bottom, partial.den))
        d_top, d_bottom = (self.time_deltas(e) for e in (d_top, d_bottom))
        step = (sympy.Mul(d_top, bottom, evaluate=False) - top * d_bottom) / bottom ** 2
        return self.lines(self.tex(partial), step, self.s["quotient_rule"], width=80)

    def time_deltas(self, expr: Expr) -> Expr:
        """``expr`` with a delta between two times replaced by 1 (the times are equal here)."""
        time = self.model.time_index
        return expr.xreplace({d: sympy.S.One for d in expr.atoms(sympy.KroneckerDelta)
                              if time is not None and any(
                                  a.has(time) or (isinstance(a, Idx) and a.upper == time.upper)
                                  for a in d.args)})

    def lemma_rows(self, adjoint: Adjoint) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for local in adjoint.local_partials:
            name = local.consumer.quantity.name
            lemma = self.derivation.adjoints.get(name)
            if lemma is None or not lemma.inlined:
                continue
            rules = [k for lp in lemma.local_partials for k in lp.rule_keys]
            sources = [self.source(lp) for lp in lemma.local_partials]
            sources += [self.refs[lp.consumer.quantity.name] for lp in lemma.local_partials
                        if lp.consumer.quantity.name in self.refs]
            rows += self.lines(self.tex(Partial(self.loss, lemma.lhs.xreplace(
                {lemma.base: lemma.quantity.base}))), lemma.expr,
                               self.by(sources, rules))
        return rows

    def chain_rows(self, adjoint: Adjoint) -> list[dict[str, str]]:
        """The chain of equalities from the chain rule to the result, each line noted."""
        rows: list[dict[str, str]] = []
        shown: list[str] = []
        symbol = self.tex(adjoint.lhs)
        consumers = [self.refs[lp.consumer.quantity.name] for lp in adjoint.local_partials
                     if lp.consumer.quantity.name in self.refs]
        sources = [self.source(lp) for lp in adjoint.local_partials]

        def add(expr: Expr, note: str) -> int:
            printed = self.same_terms(expr)
            if shown and printed == shown[-1]:
                return 0
            shown.append(printed)
            new = self.lines(symbol if not rows else "", expr, note)
            rows.extend(new)
            return len(new)

        for step in adjoint.steps:
            if step.rule_key == Rule.CHAIN_RULE:
                if self.fits(step.after):
                    add(step.after, self.s["chain_rule"])
            elif step.rule_key == Rule.SUBSTITUTE_ADJOINTS:
                add(simplify_deltas(step.after), self.by(sources + consumers))
            elif step.rule_key == Rule.KRONECKER_DELTA:
                add(step.after, self.s["deltas"])
            elif step.rule_key not in (Rule.LOCAL_PARTIALS,):
                add(step.after, tex_escape(rule_name(step.rule_key, self.lang),
                                           subscripts=True))
        if not rows or shown[-1] != self.same_terms(adjoint.expr):
            add(adjoint.expr, "")
        if len(self.lines("", adjoint.expr)) == 1 and rows[-1]["right"].startswith("= "):
            rows[-1]["right"] = r"= \boxed{" + rows[-1]["right"][2:] + "}"
        return rows

    def same_terms(self, expr: Expr) -> str:
        """What two lines of a derivation share when one only reorders the other's terms or
        renames a bound index: their printed terms, sorted, primes merged."""
        return "|".join(sorted(_modulo_renaming(self.tex(t)) for t in sympy.Add.make_args(expr)))

    def notes(self, adjoint: Adjoint) -> list[str]:
        """What the result teaches: why ``y - z``, what a self term at ``t+1`` carries."""
        notes = []
        if any(step.rule_key == Rule.ONE_HOT_TARGETS for step in adjoint.steps):
            notes.append(self.s["sum_to_one"].format(result=self.tex(adjoint.expr)))
        time = self.model.time_index
        for term in sympy.Add.make_args(adjoint.expr):
            factors = [f for f in sympy.Mul.make_args(term) if not isinstance(f, InRange)]
            own = [f for f in factors if isinstance(f, Indexed) and f.base == adjoint.base
                   and time is not None and f.indices[-1] == time + 1]
            rest = [f for f in factors if f not in own]
            if own and rest and all(isinstance(f, Indexed) and not self.is_adjoint(f)
                                    and self.model.quantity(f.base.name).role
                                    is Role.INTERMEDIATE for f in rest):
                notes.append(self.s["carousel"].format(term=self.tex(sympy.Mul(*factors)),
                                                       factor=self.tex(sympy.Mul(*rest))))
        return notes

    # --- gradients ----------------------------------------------------------------------

    def gradient_lhs(self, adjoint: Adjoint) -> Partial:
        return Partial(self.loss, adjoint.quantity.base[adjoint.indices])

    def gradients(self) -> dict[str, object]:
        gradients = list(self.derivation.gradients.values())
        parameters = [g for g in gradients if g.quantity.role is Role.PARAMETER]
        states = [g for g in gradients if g.quantity.role is Role.STATE]
        example = next((g for g in parameters if len(g.quantity.sizes) == 2),
                       parameters[0] if parameters else None)
        rows: list[dict[str, str]] = []
        source = ""
        if example is not None:
            sources = [self.source(lp) for lp in example.local_partials]
            source = self.s["ref_sep"].join(self.ref(label) for label in _unique(sources))
            lhs = self.tex(self.gradient_lhs(example))
            shown: list[str] = []
            for step in example.steps:
                if step.rule_key == Rule.LOCAL_PARTIALS:
                    continue
                expr = (simplify_deltas(step.after)
                        if step.rule_key == Rule.SUBSTITUTE_ADJOINTS else step.after)
                printed = self.tex(expr)
                if shown and printed == shown[-1]:
                    continue
                note = {Rule.CHAIN_RULE: self.s["chain_rule"],
                        Rule.KRONECKER_DELTA: self.s["deltas"]}.get(
                    step.rule_key, self.by(sources))
                rows += self.lines("" if rows else lhs, expr, note)
                shown.append(printed)
        state_rows = [self.lines(self.tex(self.gradient_lhs(g)), g.expr,
                                 self.by([self.refs[lp.consumer.quantity.name]
                                          for lp in g.local_partials
                                          if lp.consumer.quantity.name in self.refs]),
                                 width=80) for g in states]
        where = self.s["list_sep"].join(
            self.s["read_at"].format(state=self.tex(self.initial(g.quantity)),
                                     at=self.read_at(g.quantity)) for g in states)
        return {"example": self.tex(self.element(example.quantity)) if example else "",
                "source": source, "rows": rows,
                "states_head": self.s["states_gradients"].format(where=where) if states else "",
                "states": [row for rows_ in state_rows for row in rows_]}

    # --- summary ------------------------------------------------------------------------

    def cell(self, lhs: str, expr_tex_lines: list[str]) -> str:
        if len(expr_tex_lines) == 1:
            return f"${lhs} = {expr_tex_lines[0]}$"
        # text-style sums, as on one line: the summary is a page a reader scans
        body = r" \\ &\quad \textstyle ".join(expr_tex_lines)
        return rf"$\begin{{aligned}}[t] {lhs} &= \textstyle {body}\end{{aligned}}$"

    def vector_lines(self, tex: str) -> list[str]:
        """A vector form broken after top-level ``+`` where it is wide."""
        if _visible_width(tex) <= CELL_WIDTH:
            return [tex]
        pieces, depth, start = [], 0, 0
        for position, char in enumerate(tex):
            depth += {"{": 1, "}": -1}.get(char, 0)
            if tex.startswith(r"\left", position):
                depth += 1
            if tex.startswith(r"\right", position):
                depth -= 1
            if depth == 0 and char in "+-" and position > 0 and tex[position - 1] == " ":
                pieces.append(tex[start:position].strip())
                start = position
        pieces.append(tex[start:].strip())
        lines: list[str] = []
        for piece in filter(None, pieces):
            if lines and _visible_width(lines[-1] + piece) <= CELL_WIDTH:
                lines[-1] += " " + piece
            else:
                lines.append(piece)
        return lines

    def inline(self, lhs: Expr) -> str:
        """A left side as a cell shows it: ``∂L/∂w_{hk}`` on one line."""
        if isinstance(lhs, Partial):
            return rf"\partial {self.tex(lhs.num)}/\partial {self.tex(lhs.den)}"
        return self.tex(lhs)

    def pair(self, lhs: Expr, expr: Expr, indices: tuple[Expr, ...] = ()) -> dict[str, str]:
        """One row of index form beside matrix form."""
        saved = self._width
        self._width = INDEX_CELL_WIDTH  # \summarysize sets both languages at 10pt
        try:
            index = self.cell(self.inline(lhs), self.terms(expr))
        finally:
            self._width = saved
        units = tuple(i for i in indices if i != self.model.time_index)
        form = self.vectors.form(expr, units) if expr not in self.failing_forms else None
        matrix = (self.cell(self.vectors.lhs(lhs, inline=True), self.vector_lines(form))
                  if form is not None else "")
        return {"index": index, "matrix": matrix}

    def summary(self) -> dict[str, object]:
        model = self.model
        time = model.time_index
        hidden = set(self.mirrored.values())
        forward = [self.pair(model.equations[n].lhs, model.equations[n].rhs,
                             model.equations[n].lhs.indices)
                   for n in model.evaluation_order() if n not in hidden]
        forward.append(self.pair(model.loss_equation.lhs,  # type: ignore[union-attr]
                                 model.loss_equation.rhs))  # type: ignore[union-attr]
        backward = [self.pair(a.lhs, a.expr, a.indices) for a in self.derivation.named
                    if a.quantity.name not in hidden]
        gradients, wide = self.gradient_pairs(hidden)
        cases = self.boundaries()
        loops = self.loops()
        mirrored = ""
        if self.mirrored:
            behind = [case for case in cases if not case["ahead"]]
            # the intermediates' images (those of the weights and states are read off
            # them, and the appendix lists every symbol)
            mirrored = self.s["summary_mirror"].format(
                pairs=self.join(rf"{self.symbol_of(a)} \mapsto {self.symbol_of(b)}"
                                for a, b in self.mirrored.items()
                                if model.quantity(a).role is Role.INTERMEDIATE),
                beyond=behind[0]["beyond"] if behind else self.tex(sympy.S.Zero))
            cases, loops = [case for case in cases if case["ahead"]], [loops[0]]
        conds = self.join(zero for case in cases for zero in case["zeros"])
        if time is None:
            head = self.s["summary_backward_plain"]
        elif len(loops) > 1:
            head = self.s["summary_backward_both"].format(conds=conds)
        elif cases:
            head = self.s["summary_backward"].format(range=loops[0]["range"], conds=conds)
        else:
            head = self.s["summary_backward_free"].format(range=loops[0]["range"])
        loop = {"recurrent": time is not None, "loops": loops,
                "steps": self.s["list_sep"].join(
                    rf"${self.tex(a.lhs)}$~{self.ref(self.refs[a.quantity.name])}"
                    for a in self.derivation.named)}
        directions = self.state_directions()
        if self.mirrored:
            directions = {-1}
        forward_head = ("summary_forward_plain" if time is None else
                        "summary_forward_both" if len(directions) > 1 else
                        "summary_forward_down" if directions == {1} else "summary_forward")
        return {"loop": loop, "forward_head": self.s[forward_head],
                "forward": forward, "backward_head": head, "backward": backward,
                "gradients": gradients, "wide_gradients": wide, "mirror": mirrored}

    def symbol_of(self, name: str) -> str:
        """A quantity's symbol in index form, without its indices, its scripts braced as
        the printer writes them: ``a_{c}^{(r)}``, ``b^{0}``."""
        tex = self.printer.quantity_latex(self.model.quantity(name))
        parts = split_scripts(tex)
        return Scripted(parts.stem, parts.sub, parts.sup).tex() if parts else tex

    def gradient_pairs(self, hidden: set[str] = frozenset()  # type: ignore[assignment]
                       ) -> tuple[list[list[dict[str, str]]], list[dict[str, str]]]:
        """The summary's gradients (less those of the ``hidden`` quantities): narrow ones
        two to a row, each row holding gradients of one adjoint (``∂L/∂W^{(xι)}`` beside
        ``∂L/∂W^{(hι)}``), and the wide ones (a state's, a weight used in several places) a
        row each."""
        rows: list[list[dict[str, str]]] = []
        wide: list[dict[str, str]] = []
        last_group: tuple[str, ...] | None = None
        for g in self.derivation.gradients.values():
            if g.quantity.name in hidden:
                continue
            pair = self.pair(self.gradient_lhs(g), g.expr, g.indices)
            if max(_visible_width(pair["index"]), _visible_width(pair["matrix"])) > HALF_CELL:
                wide.append(pair)
                continue
            group = tuple(sorted({lp.consumer.quantity.name for lp in g.local_partials}))
            if rows and len(rows[-1]) == 1 and group == last_group:
                rows[-1].append(pair)
            else:
                rows.append([pair])
            last_group = group
        return rows, wide

    def state_directions(self) -> set[int]:
        """How the forward recurrences run: -1 for one through ``t-1`` (``t`` ascending, from
        a state at ``0``), 1 for one through ``t+1`` (descending, from ``T+1``)."""
        time = self.model.time_index
        found = set()
        for quantity in self.model.quantities.values():
            shifts = self.model.shifts(quantity) if quantity.time else set()
            found |= {1 if shift > 0 else -1 for shift in shifts}
        return found if time is not None else set()

    # --- appendix -----------------------------------------------------------------------

    def appendix(self) -> list[dict[str, str]]:
        rows = []
        for q in self.model.quantities.values():
            if q.role is Role.LOSS:
                continue
            shape = [self.tex(size) for size in q.sizes]
            if q.time:
                shape.insert(0, self.tex(self.model.time_index.upper))  # type: ignore[union-attr]
            symbol = self.initial(q) if q.role is Role.STATE else self.element(q)
            rows.append({"symbol": self.tex(symbol), "name": tex_escape(q.name),
                         "shape": r" \times ".join(shape) if shape else "1"})
        third = (len(rows) + 2) // 3
        return [list(group) for group in itertools.zip_longest(
            rows[:third], rows[third:2 * third], rows[2 * third:],
            fillvalue={"symbol": "", "name": "", "shape": ""})]


def teaching_context(derivation: Derivation, lang: str = "en", *, standalone: bool = True,
                     example: Example | None = None) -> dict[str, object]:
    """What ``notes.tex.j2`` is filled with for ``derivation``: every expression printed;
    ``example`` the worked example to print (none when None)."""
    return _Teaching(derivation, lang, standalone=standalone, example=example).context()


__all__ = ["CELL_WIDTH", "NOTED_WIDTH", "bookmark", "partial_view", "simplify_deltas",
           "teaching_context"]
