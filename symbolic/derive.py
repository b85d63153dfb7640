"""derive(model) → Derivation: reverse accumulation over the equation graph, in index notation.

Role in DESIGN.md's picture: the one derivation every output is printed from.
For each quantity ``q`` (intermediates, parameters, initial states):

    ∂L/∂q[j,τ] = Σ_{consumers c} Σ_{(i,t)} ∂L/∂c[i,t] · ∂c[i,t]/∂q[j,τ]

1. **chain rule** over the consumers of ``q`` (``symbolic/model.py`` knows them);
2. **local partials** by the rule table (``partials.py``, ``functions.py``), inner
   deltas contracted and folded back onto named quantities (``foldback.py``);
3. **substitution** of each consumer's adjoint: a named symbol (``δ_k``, ``ε_s``)
   or, for an adjoint only one other adjoint reads (``∂L/∂y_k``, ``∂L/∂b_h``),
   its expression — the way Graves inlines them;
4. **contraction** of the Kronecker deltas with ranges (``contraction.py``),
   which yields the boundary conditions ``[t ≤ T-1]`` as data;
5. **identities** (``identities.py``), e.g. one-hot targets ``Σ_k z_k = 1``.

Each rewrite is recorded as a :class:`~symbolic.derivation.Step` under its rule's key
(``rules.py``); the result types are in ``derivation.py``. Everything is symbolic in the
sizes: no size is ever given a value, so the cost does not depend on them.
"""

from __future__ import annotations

import sympy
from sympy import Expr, Idx, Indexed, IndexedBase

from .contraction import Namer, contract, prettify, reduce_ranges, rename_bound
from .derivation import Adjoint, Derivation, LocalPartial, Step
from .expressions import Partial
from .foldback import fold_back
from .identities import IDENTITIES
from .model import Equation, Model, Quantity, Role
from .names import adjoint_name
from .partials import local_partial
from .rules import Rule


def derive(model: Model) -> Derivation:
    """Derive ∂L/∂q for every intermediate, parameter and initial state of ``model``."""
    model.validate()
    return _Deriver(model).run()


class _Deriver:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.namer = Namer()
        self.adjoints: dict[str, Adjoint] = {}
        self.family = {(i.lower, i.upper): i.name for i in reversed(model.indices.values())}
        self.consumers: dict[str, list[Equation]] = {name: [] for name in model.quantities}
        for equation in [*model.equations.values(), model.loss_equation]:
            assert equation is not None
            for quantity, _ in model.dependencies(equation.quantity.name):
                if equation not in self.consumers[quantity.name]:
                    self.consumers[quantity.name].append(equation)

    # --- the quantities and their indices ----------------------------------------------------

    def time_range(self, quantity: Quantity) -> tuple[Expr, Expr] | None:
        t = self.model.time_index
        if not quantity.time or t is None:
            return None
        initial = self.model.initial_step(quantity)
        if initial is None:
            return (t.lower, t.upper)
        return (t.lower - 1, t.upper) if initial == t.lower - 1 else (t.lower, t.upper + 1)

    def ranges(self, quantity: Quantity) -> dict[Idx, tuple[Expr, Expr]]:
        span = self.time_range(quantity)
        return {self.model.time_index: span} if span is not None else {}

    def adjoint_base(self, quantity: Quantity) -> IndexedBase:
        # the Model refuses user names that equal an adjoint_name(q), so this name is free
        return IndexedBase(adjoint_name(quantity.name))

    def is_inlined(self, quantity: Quantity) -> bool:
        """Inline ∂L/∂q when exactly one other adjoint reads it and nobody named it."""
        if quantity.role is not Role.INTERMEDIATE or quantity.adjoint_latex:
            return False
        readers = {q.name for q, _ in self.model.dependencies(quantity.name)
                   if q.role in (Role.INTERMEDIATE, Role.PARAMETER)}
        return len(readers) == 1 and quantity.name not in readers

    # --- the derivation ---------------------------------------------------------------------

    def run(self) -> Derivation:
        wanted = [q for q in self.model.quantities.values()
                  if q.role in (Role.INTERMEDIATE, Role.PARAMETER)]
        for quantity in wanted:
            self.adjoint(quantity)
        for state in self.model.of_role(Role.STATE):
            self.adjoints[state.name] = self.state_adjoint(state)
        forward = self.model.evaluation_order()
        backward = [name for name in reversed(forward) if not self.adjoints[name].inlined]
        ordered = {name: self.adjoints[name] for name in
                   [*reversed(forward), *(q.name for q in self.model.of_role(Role.PARAMETER)),
                    *(q.name for q in self.model.of_role(Role.STATE))]}
        return Derivation(self.model, ordered, backward)

    def adjoint(self, quantity: Quantity) -> Adjoint:
        if quantity.name in self.adjoints:
            return self.adjoints[quantity.name]
        indices = self.model.canonical_indices(quantity)
        target = quantity.base[indices]
        base = self.adjoint_base(quantity)
        steps: list[Step] = []
        partials: list[LocalPartial] = []
        loss = sympy.Symbol(self.model.loss_name)

        chain_terms, local_terms, value_terms = [], [], []
        for consumer in self.consumers[quantity.name]:
            dummies = self.dummies_for(consumer, avoid=set(indices))
            lhs = consumer.lhs.xreplace(dummies) if dummies else consumer.lhs
            limits = [(d, d.lower, d.upper) for d in dummies.values()]
            rhs = rename_bound(consumer.rhs, self.namer).xreplace(dummies)
            partial = self.local(consumer, lhs, rhs, target, dummies, indices)
            partials.append(partial)
            upstream = self.upstream(consumer, lhs)
            chain_terms.append(_sum(Partial(loss, lhs) * partial.partial, limits))
            local_terms.append(_sum(Partial(loss, lhs) * partial.value, limits))
            value_terms.append(_sum(upstream * partial.value, limits))

        total = sympy.Add(*value_terms)
        steps.append(Step(Rule.CHAIN_RULE, Partial(loss, target), sympy.Add(*chain_terms)))
        steps.append(Step(Rule.LOCAL_PARTIALS, sympy.Add(*chain_terms), sympy.Add(*local_terms)))
        steps.append(Step(Rule.SUBSTITUTE_ADJOINTS, sympy.Add(*local_terms), total))
        contracted = contract(total, self.ranges(quantity), self.namer,
                              time=self.model.time_index)
        steps.append(Step(Rule.KRONECKER_DELTA, total, contracted))
        expr = contracted
        for key, apply in IDENTITIES.items():
            simplified = apply(expr, self.model)
            if simplified != expr:
                steps.append(Step(key, expr, simplified))
                expr = simplified
        pretty = prettify(expr, self.family, set(indices))
        steps = [Step(s.rule_key, prettify(s.before, self.family, set(indices)),
                      prettify(s.after, self.family, set(indices))) for s in steps]
        result = Adjoint(quantity, base, indices, pretty, self.is_inlined(quantity),
                         self.time_range(quantity), steps, partials)
        self.adjoints[quantity.name] = result
        return result

    def dummies_for(self, consumer: Equation, avoid: set[Idx]) -> dict[Idx, Idx]:
        """Primed names for the consumer's free indices that clash with none of ``avoid``."""
        taken = {i.name for i in avoid}
        mapping = {}
        for index in consumer.free:
            name = index.name + "'"
            while name in taken:
                name += "'"
            taken.add(name)
            mapping[index] = Idx(name, (index.lower, index.upper))
        return mapping

    def local(self, consumer: Equation, lhs: Expr, rhs: Expr, target: Indexed,
              dummies: dict[Idx, Idx], indices: tuple[Idx, ...]) -> LocalPartial:
        """∂lhs/∂target, its inner deltas contracted, folded onto named quantities."""
        rules: list[str] = []
        raw = local_partial(rhs, target, rules)
        free_ranges = {**self.ranges(self.model.quantity(target.base)),
                       **{d: (d.lower, d.upper) for d in dummies.values()}}
        value = contract(raw, free_ranges, self.namer, time=self.model.time_index)
        t = self.model.time_index
        candidates: list[Expr] = [*dummies.values(), *indices]
        if t is not None:
            candidates += [e + shift for e in candidates if e.has(t) for shift in (-1, 1)]
        definitions = [(consumer, rhs.xreplace({d: i for i, d in dummies.items()}))] + [
            (eq, eq.rhs) for eq in self.model.equations.values() if eq is not consumer]
        value = fold_back(value, definitions, candidates)
        return LocalPartial(consumer, Partial(lhs, target), raw, value, tuple(rules))

    def upstream(self, consumer: Equation, lhs: Expr) -> Expr:
        """∂L/∂(consumer at ``lhs``): 1 for the loss, an inlined expression, or a named symbol."""
        quantity = consumer.quantity
        if quantity.role is Role.LOSS:
            return sympy.S.One
        if not self.is_inlined(quantity):
            return self.adjoint_base(quantity)[tuple(lhs.indices)]
        adjoint = self.adjoint(quantity)
        mapping = dict(zip(adjoint.indices, lhs.indices, strict=True))
        return rename_bound(adjoint.expr, self.namer).xreplace(mapping)

    def state_adjoint(self, state: Quantity) -> Adjoint:
        """∂L/∂(initial state) = the owner's adjoint at t = 0 (at t = T+1 for a quantity
        read at t+1)."""
        owner = self.adjoints[state.state_of]  # type: ignore[index]
        t = self.model.time_index
        assert t is not None
        step = self.model.initial_step(owner.quantity)
        assert step is not None
        at_zero = reduce_ranges(owner.expr.xreplace({t: step}), {})
        indices = owner.indices[:-1]
        at_zero = prettify(rename_bound(at_zero, self.namer), self.family, set(indices))
        owner_at_zero = owner.quantity.base[(*indices, step)]
        steps = [Step(Rule.INITIAL_STATE, Partial(sympy.Symbol(self.model.loss_name),
                                                   state.base[indices]),
                      Partial(sympy.Symbol(self.model.loss_name), owner_at_zero)),
                 Step(Rule.BOUNDARY_AT_ZERO if step == 0 else Rule.BOUNDARY_AFTER_END,
                      Partial(sympy.Symbol(self.model.loss_name), owner_at_zero), at_zero)]
        return Adjoint(state, self.adjoint_base(state), indices, at_zero, False, None,
                       steps, [])


def _sum(expr: Expr, limits: list[tuple[Idx, Expr, Expr]]) -> Expr:
    return sympy.Sum(expr, *limits) if limits else expr
