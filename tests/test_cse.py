"""Common subexpressions (``codegen/plan/cse.py``): a function application is computed
once per step of a phase, in the plan and so in every backend.

Checked on the plans of the built-ins and of specs that repeat a function on purpose,
on the NumPy and C text they print (the LSTM's ``tanh(s^t)`` and ``tanh(a_c^t)`` in
the backward loop), on small hand-made scopes for the cases the built-ins do not have
(guards, writes between two occurrences, views of a buffer), and numerically: freshly
rendered kernels against finite differences, against each other, and against the
kernels lowered without the pass.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sympy
from sympy import Idx, IndexedBase, Symbol

from chainrule import codegen
from chainrule.codegen.artifacts import render
from chainrule.codegen.plan import lower as lower_module
from chainrule.codegen.plan.cse import common_subexpressions
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.plan.types import (
    BATCH,
    BATCH_SIZE,
    Array,
    Assign,
    Contract,
    Guarded,
    Kind,
    Loop,
    Plan,
    Ref,
    Statement,
    View,
    walk,
)
from chainrule.codegen.writer import write_atomically
from chainrule.symbolic import Model, derive
from chainrule.symbolic.functions import logistic
from chainrule.symbolic.networks import BUILTINS
from chainrule.symbolic.spec import load_spec
from tests.cases import random_inputs, relative_error
from tests.gradcheck import finite_difference_errors
from tests.numpy_text import numpy_scopes

GRU = Path(__file__).resolve().parents[1] / "examples" / "gru.toml"

# An RNN whose output layer reads tanh(h) twice in one equation: the forward pass
# computes it after the loop (every step at once), the backward pass in the loop.
TWICE_RNN = """
name = "twice_rnn"
title = "An RNN that reads tanh of its hidden state twice"
description = "u = tanh(h) + exp(tanh(h)) between the hidden and the output layer"
sizes = ["I", "H", "K"]
time = { index = "t", size = "T" }

[indices]
i = "I"
j = "H"
j_ = "H"
k = "K"
k_ = "K"

[quantities]
x = { role = "input", shape = ["I"], time = true }
z = { role = "target", shape = ["K"], time = true }
W_xh = { role = "parameter", shape = ["I", "H"] }
W_hh = { role = "parameter", shape = ["H", "H"] }
b_h = { role = "parameter", shape = ["H"] }
W_uy = { role = "parameter", shape = ["H", "K"] }
b_y = { role = "parameter", shape = ["K"] }
a_h = { role = "intermediate", shape = ["H"], time = true }
h = { role = "intermediate", shape = ["H"], time = true }
u = { role = "intermediate", shape = ["H"], time = true }
a_y = { role = "intermediate", shape = ["K"], time = true }
y = { role = "intermediate", shape = ["K"], time = true }
h0 = { role = "state", of = "h" }

[equations]
forward = [
    "a_h[j, t] = sum(W_xh[i, j] * x[i, t], i) + sum(W_hh[j_, j] * h[j_, t - 1], j_) + b_h[j]",
    "h[j, t] = tanh(a_h[j, t])",
    "u[j, t] = tanh(h[j, t]) + exp(tanh(h[j, t]))",
    "a_y[k, t] = sum(W_uy[j, k] * u[j, t], j) + b_y[k]",
    "y[k, t] = exp(a_y[k, t]) / sum(exp(a_y[k_, t]), k_)",
]
loss = "-sum(z[k, t] * log(y[k, t]), k, t)"
"""

# The same without time: an MLP whose hidden layer reads tanh(a) twice.
TWICE_MLP = """
name = "twice_mlp"
title = "An MLP that reads tanh of its net input twice"
description = "b = tanh(a) + exp(tanh(a))"
sizes = ["I", "H", "K"]

[indices]
i = "I"
h = "H"
k = "K"
k_ = "K"

[quantities]
x = { role = "input", shape = ["I"] }
z = { role = "target", shape = ["K"] }
W_xh = { role = "parameter", shape = ["I", "H"] }
b_h = { role = "parameter", shape = ["H"] }
W_hy = { role = "parameter", shape = ["H", "K"] }
b_y = { role = "parameter", shape = ["K"] }
a = { role = "intermediate", shape = ["H"] }
b = { role = "intermediate", shape = ["H"] }
a_y = { role = "intermediate", shape = ["K"] }
y = { role = "intermediate", shape = ["K"] }

[equations]
forward = [
    "a[h] = sum(W_xh[i, h] * x[i], i) + b_h[h]",
    "b[h] = tanh(a[h]) + exp(tanh(a[h]))",
    "a_y[k] = sum(W_hy[h, k] * b[h], h) + b_y[k]",
    "y[k] = exp(a_y[k]) / sum(exp(a_y[k_]), k_)",
]
loss = "-sum(z[k] * log(y[k]), k)"
"""

SPECS = {"twice_rnn": TWICE_RNN, "twice_mlp": TWICE_MLP}


def spec_model(text: str, tmp_path: Path) -> Model:
    path = tmp_path / "model.toml"
    path.write_text(text)
    return load_spec(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Model]:
    """Every built-in, the GRU spec and the specs above, by name."""
    found = {name: build() for name, build in BUILTINS.items()}
    found["gru"] = load_spec(GRU)
    folder = tmp_path_factory.mktemp("specs")
    for name, text in SPECS.items():
        found[name] = spec_model(text, folder)
    return found


ALL = [*BUILTINS, "gru", *SPECS]


# --- the plan -----------------------------------------------------------------------------


def applications(expr: sympy.Expr) -> list[sympy.Expr]:
    """Every function call in ``expr`` (an applied function, a power that is not a whole
    one), as often as it occurs."""
    found = []
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Function) or (
                isinstance(node, sympy.Pow) and not node.exp.is_integer):
            found.append(node)
    return found


def steps(statements: list[Statement] | tuple[Statement, ...],
          label: str) -> Iterator[tuple[str, list[Assign]]]:
    """The elementwise statements of each scope of a phase: the loop body (one step, its
    guards included) and the rest (every step at once)."""
    outside: list[Assign] = []
    for statement in statements:
        if isinstance(statement, Loop):
            yield from steps(statement.body, f"{label}, one step of the loop")
        else:
            outside += [s for s in walk([statement]) if isinstance(s, Assign)]
    yield label, outside


def phases(plan: Plan) -> dict[str, list[Statement]]:
    return {"forward": plan.forward, "loss": plan.loss_statements,
            "backward": plan.backward, "gradients": plan.gradient_statements}


@pytest.mark.parametrize("name", ALL)
def test_no_step_computes_a_function_twice(models: dict[str, Model], name: str) -> None:
    plan = lower(derive(models[name]))
    for phase, statements in phases(plan).items():
        for scope, assigns in steps(statements, phase):
            counts = Counter(node for s in assigns for node in applications(s.value))
            repeated = {str(node): n for node, n in counts.items() if n > 1}
            assert not repeated, f"{name}, {scope}: {repeated}"


def test_lstm_backward_step_reads_temporaries(models: dict[str, Model]) -> None:
    """tanh(s^t) and tanh(a_c^t) once each per backward step, into per-step temporaries
    (no time axis, like every temporary within one step), named t<N> by the lowering."""
    model = models["lstm"]
    plan = lower(derive(model))
    (loop,) = [s for s in plan.backward if isinstance(s, Loop)]
    found: dict[str, Assign] = {}
    for statement in loop.body:
        if isinstance(statement, Assign) and isinstance(statement.value, sympy.tanh):
            found[str(statement.value.args[0].base)] = statement
    assert set(found) == {"s", "a_c"}
    per_step = next(plan.array(s.out) for s in loop.body if isinstance(s, Guarded))
    for base, statement in found.items():
        array = plan.array(statement.out)
        assert dataclasses.replace(array, name=per_step.name) == per_step  # as t15, t17 are
        argument = statement.value.args[0]
        assert array.kind is Kind.TEMPORARY
        assert array.time is None and array.axes == plan.arrays[base].axes[1:]
        assert re.fullmatch(r"t\d+", array.name) and array.name not in model.user_names()
        assert argument.indices[0].has(plan.time)
        assert statement.out.indices == tuple(argument.indices[1:])
        readers = [x for x in walk(list(loop.body)) if isinstance(x, Assign)
                   and statement.out in x.value.atoms(sympy.Indexed)]
        assert len(readers) == 2, (base, readers)


def test_forward_over_time_keeps_the_time_axis(models: dict[str, Model]) -> None:
    """Outside the loop a temporary holds every step: tanh(h^t) for u, after the loop."""
    plan = lower(derive(models["twice_rnn"]))
    (loop_position,) = [n for n, s in enumerate(plan.forward) if isinstance(s, Loop)]
    shared = [s for s in plan.forward[loop_position + 1:]
              if isinstance(s, Assign) and isinstance(s.value, sympy.tanh)]
    assert len(shared) == 1
    array = plan.array(shared[0].out)
    assert array.kind is Kind.TEMPORARY and array.time == plan.time
    assert array.axes[0] == plan.time.upper and shared[0].out.indices[0] == plan.time


# --- the text of the backends ---------------------------------------------------------------


def balanced_calls(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Every call ``name(arguments)`` in ``text`` whose name matches ``pattern``."""
    found = []
    for match in pattern.finditer(text):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        found.append(text[match.start():end + 1])
    return found


# arithmetic is no call to count: the expressions outside the loop write it as operators
NUMPY_CALL = re.compile(r"\bnumpy\.(?!zeros|empty|array\(|concatenate|einsum|tensordot|arange|"
                        r"broadcast_to|(?:add|subtract|multiply|divide|negative|square)\()"
                        r"\w+\(")
C_CALL = re.compile(r"\b(?!for\b|if\b|sizeof\b|while\b|return\b)[A-Za-z_]\w*\(")
# an element stored (``s[...] = ...;``) or a loop body's local (``const chainrule_real t14_e``)
C_STATEMENT = re.compile(
    r"^\s*(?:const chainrule_real )?[A-Za-z_]\w*(\[[^\]]*\])? = (?P<value>.*);$")


def c_scopes(text: str) -> dict[str, list[str]]:
    """The statement lines of each ``<net>_run_<precision>`` function that holds the
    computation, split into the forward pass and the rest (after ``if (outputs)``), each into
    its loop over time and the rest. A body written once as a macro (continued lines) is
    read like any other."""
    scopes: dict[str, list[str]] = {}
    lines = [line.rstrip().removesuffix("\\").rstrip() for line in text.splitlines()]
    for start, line in enumerate(lines):
        match = re.match(r"static int \w+_run_(f\d+)\(", line)
        if not match:
            continue
        part, depth, loop_depth, through_time = "forward", 0, None, False
        for line in lines[start + 1:]:
            if line == "}":
                break
            if "if (outputs)" in line:
                part = "later"
            if "/* through time" in line:
                through_time = True
            opened = line.count("{") - line.count("}")
            if through_time and line.lstrip().startswith("for ("):
                loop_depth, through_time = depth, False
                depth += opened
                continue
            depth += opened
            if loop_depth is not None and depth <= loop_depth:
                loop_depth = None
                continue
            scope = f"{match.group(1)}, {part}" + (", loop" if loop_depth is not None else "")
            statement = C_STATEMENT.match(line)
            if statement:
                scopes.setdefault(scope, []).append(statement.group("value"))
    return scopes


def repeated_calls(scopes: dict[str, list[str]], pattern: re.Pattern[str]) -> dict[str, dict]:
    repeated = {}
    for scope, lines in scopes.items():
        counts = Counter(call for line in lines for call in balanced_calls(line, pattern))
        twice = {call: n for call, n in counts.items() if n > 1}
        if twice:
            repeated[scope] = twice
    return repeated


@pytest.fixture(scope="module")
def rendered(models: dict[str, Model]) -> dict[str, dict[str, str]]:
    return {name: render(model) for name, model in models.items()}


@pytest.mark.parametrize("name", ALL)
def test_numpy_calls_each_function_once_per_step(rendered, name: str) -> None:
    scopes = numpy_scopes(rendered[name][f"{name}.py"])
    assert repeated_calls(scopes, NUMPY_CALL) == {}


@pytest.mark.parametrize("name", ALL)
def test_c_calls_each_function_once_per_step(rendered, name: str) -> None:
    scopes = c_scopes(rendered[name][f"{name}.c"])
    assert any(scope.endswith(", forward") for scope in scopes), "no statements found"
    assert repeated_calls(scopes, C_CALL) == {}


@pytest.mark.parametrize("name", ["lstm", "lstm_no_peepholes"])
def test_lstm_tanh_of_the_cell_state(rendered, name: str) -> None:
    """Today's counts, per step: tanh(s^t) once forward and once backward (it was
    twice backward), tanh(a_c^t) once forward and once backward (it was twice)."""
    numpy = numpy_scopes(rendered[name][f"{name}.py"])
    backward = "\n".join(numpy["loss_and_grad, loop"])
    forward = "\n".join(numpy["_forward, loop"])
    assert backward.count("numpy.tanh(s[t])") == 1
    assert backward.count("numpy.tanh(a_c[t - 1])") == 1
    assert backward.count("numpy.tanh(") == 2
    assert forward.count("numpy.tanh(s[t])") == 1
    assert forward.count("numpy.tanh(a_c[t - 1])") == 1
    loops = [lines for scope, lines in c_scopes(rendered[name][f"{name}.c"]).items()
             if scope.endswith(", later, loop")]
    assert loops, "no backward loop found"
    for lines in loops:  # one per precision, or one body that every precision shares
        calls = [call for line in lines for call in balanced_calls(line, C_CALL)]
        assert len(calls) == 2, calls
        assert all(re.match(r"\w*tanh\w*\(", call) for call in calls), calls
        assert sorted(call[call.index("(") + 1:].split("[")[0] for call in calls) == \
            ["a_c", "s"], calls


# --- small scopes: guards, writes between, views ----------------------------------------


T = Symbol("T", integer=True, positive=True)
H = Symbol("H", integer=True, positive=True)
t = Idx("t", (1, T))
c = Idx("c", (0, H - 1))


class Scope:
    """A table of arrays over ``(t, b#, c)`` and the temporaries the pass adds to it."""

    def __init__(self, *names: str) -> None:
        self.arrays = {n: Array(n, (T, BATCH_SIZE, H), Kind.FORWARD, n, t) for n in names}
        self.count = 0

    def temporary(self, indices: tuple[Idx, ...]) -> Ref:
        name = f"t{self.count}"
        self.count += 1
        indices = (*(i for i in indices if i == t), *(i for i in indices if i != t))
        axes = tuple(sympy.simplify(i.upper - i.lower + 1) for i in indices)
        self.arrays[name] = Array(name, axes, Kind.TEMPORARY, None, t if t in indices else None)
        return IndexedBase(name)[indices]

    def run(self, statements: list[Statement]) -> list[Statement]:
        return common_subexpressions(statements, self.arrays, self.temporary, t)


def at(name: str, shift: int = 0) -> sympy.Indexed:
    return IndexedBase(name)[t + shift, BATCH, c]


def temporaries(statements: list[Statement] | tuple[Statement, ...]) -> list[Assign]:
    return [s for s in walk(statements) if isinstance(s, Assign) and str(s.out.base)[0] == "t"]


def one_step(*body: Statement) -> list[Statement]:
    return [Loop(-1, tuple(body))]


def test_once_is_left_alone() -> None:
    scope = Scope("u", "v", "w")
    statements = one_step(Assign(at("v"), sympy.tanh(at("u"))),
                          Assign(at("w"), sympy.exp(at("u"))))
    assert scope.run(statements) == statements
    assert scope.count == 0


def test_within_a_step_the_temporary_has_no_time_axis() -> None:
    scope = Scope("u", "v", "w")
    (loop,) = scope.run(one_step(Assign(at("v"), sympy.tanh(at("u")) * at("w")),
                                 Assign(at("w"), 1 - sympy.tanh(at("u")) ** 2)))
    first, v, w = loop.body
    assert first == Assign(IndexedBase("t0")[BATCH, c], sympy.tanh(at("u")),
                           "computed once for v, w")
    assert scope.arrays["t0"].axes == (BATCH_SIZE, H) and scope.arrays["t0"].time is None
    assert v.value == IndexedBase("t0")[BATCH, c] * at("w")
    assert w.value == 1 - IndexedBase("t0")[BATCH, c] ** 2


def test_other_indices_are_another_value() -> None:
    scope = Scope("u", "v", "w")
    statements = one_step(Assign(at("v"), sympy.tanh(at("u"))),
                          Assign(at("w"), sympy.tanh(at("u", -1))))
    assert scope.run(statements) == statements


def test_twice_in_one_statement_and_nested() -> None:
    """logistic(tanh(u)) twice, tanh(u) once more: each computed once, tanh(u) first."""
    scope = Scope("u", "v", "w")
    inner = sympy.tanh(at("u"))
    (loop,) = scope.run(one_step(
        Assign(at("v"), logistic(inner) + sympy.exp(logistic(inner))),
        Assign(at("w"), inner * at("v"))))
    inner_t, outer_t, v, w = loop.body
    assert inner_t.value == inner and outer_t.value == logistic(inner_t.out)
    assert v.value == outer_t.out + sympy.exp(outer_t.out)
    assert w.value == inner_t.out * at("v")
    assert len(temporaries(loop.body)) == 2 == scope.count


def test_a_write_between_splits_the_value() -> None:
    scope = Scope("u", "v", "w")
    statements = one_step(Assign(at("v"), sympy.tanh(at("u"))),
                          Assign(at("u"), at("v") * 2),
                          Assign(at("w"), sympy.tanh(at("u"))))
    assert scope.run(statements) == statements


def test_a_write_to_the_buffer_of_a_view_splits_the_value() -> None:
    """``p`` is a view of the buffer ``q``: a contraction writing ``q`` writes ``p``."""
    scope = Scope("u", "v", "w")
    scope.arrays["q"] = Array("q", (T, BATCH_SIZE, 2 * H), Kind.FORWARD, None, t, parts=("p",))
    scope.arrays["p"] = Array("p", (T, BATCH_SIZE, H), Kind.FORWARD, "p", t,
                              view=View("q", 2, sympy.S.Zero, H))
    k = Idx("k", (0, 2 * H - 1))
    statements = one_step(Assign(at("v"), sympy.tanh(at("p"))),
                          Contract(IndexedBase("q")[t, BATCH, k], (IndexedBase("u")[t, BATCH, k],),
                                   sympy.S.One),
                          Assign(at("w"), sympy.tanh(at("p"))))
    assert scope.run(statements) == statements


def guarded(out: str, value: sympy.Expr, hi: sympy.Expr = T - 1) -> Guarded:
    return Guarded(sympy.S.One, hi, (Assign(IndexedBase(out)[BATCH, c], value),),
                   IndexedBase(out)[BATCH, c])


def test_a_guarded_occurrence_shares_an_unguarded_one() -> None:
    """The unguarded statement reads u^{t+1} at every step anyway: computing it once
    before the guard reads nothing the kernel did not read before."""
    scope = Scope("u", "v", "w", "g")
    value = sympy.tanh(at("u", 1))
    (loop,) = scope.run(one_step(guarded("g", value * at("w", 1)),
                                 Assign(at("v"), value + IndexedBase("g")[BATCH, c])))
    shared, guard, v = loop.body
    assert isinstance(shared, Assign) and shared.value == value
    assert guard.body[0].value == shared.out * at("w", 1)
    assert v.value == shared.out + IndexedBase("g")[BATCH, c]


def test_under_one_guard_only_it_stays_under_the_guard() -> None:
    """tanh(u^{t+1}) exists only where t ≤ T-1: computed inside the guard, never before it,
    where it would read past the last step."""
    scope = Scope("u", "v", "w", "g")
    value = sympy.tanh(at("u", 1))
    (loop,) = scope.run(one_step(guarded("g", value + sympy.exp(value)),
                                 Assign(at("v"), IndexedBase("g")[BATCH, c])))
    guard, v = loop.body
    assert isinstance(guard, Guarded) and v.value == IndexedBase("g")[BATCH, c]
    inner, g = guard.body
    assert inner.value == value and g.value == inner.out + sympy.exp(inner.out)


def test_under_two_equal_guards_it_gets_a_guard_of_its_own() -> None:
    scope = Scope("u", "v", "w", "g", "h")
    value = sympy.tanh(at("u", 1))
    (loop,) = scope.run(one_step(guarded("g", value * at("w", 1)),
                                 guarded("h", value * at("v", 1))))
    shared, g, h = loop.body
    assert isinstance(shared, Guarded) and (shared.lo, shared.hi) == (1, T - 1)
    assert shared.body == (Assign(shared.out, value),)
    assert g.body[0].value == shared.out * at("w", 1)
    assert h.body[0].value == shared.out * at("v", 1)


def test_under_two_different_guards_it_is_left_alone() -> None:
    scope = Scope("u", "v", "w", "g", "h")
    value = sympy.tanh(at("u", 1))
    statements = one_step(guarded("g", value * at("w", 1)),
                          guarded("h", value * at("v", 1), hi=T - 2))
    assert scope.run(statements) == statements


def test_a_guard_writing_what_it_reads_keeps_its_own() -> None:
    scope = Scope("u", "v", "w")
    value = sympy.tanh(at("u"))
    guard = Guarded(sympy.S.One, T - 1, (Assign(at("u"), at("w")),
                                         Assign(IndexedBase("g")[BATCH, c], value)),
                    IndexedBase("g")[BATCH, c])
    scope.arrays["g"] = Array("g", (BATCH_SIZE, H), Kind.TEMPORARY)
    statements = one_step(Assign(at("v"), value), guard)
    assert scope.run(statements) == statements


def test_outside_the_loop_the_temporary_holds_every_step() -> None:
    scope = Scope("u", "v", "w")
    statements = [Assign(at("v"), sympy.tanh(at("u", -1))),
                  Assign(at("w"), sympy.tanh(at("u", -1)) * at("v"))]
    shared, v, w = scope.run(statements)
    assert shared.out == IndexedBase("t0")[t, BATCH, c]
    assert scope.arrays["t0"].time == t and scope.arrays["t0"].axes == (T, BATCH_SIZE, H)
    assert v.value == shared.out and w.value == shared.out * at("v")


def test_the_loop_and_the_work_outside_it_do_not_share() -> None:
    scope = Scope("u", "v", "w")
    statements = [*one_step(Assign(at("v"), sympy.tanh(at("u")))),
                  Assign(at("w"), sympy.tanh(at("u")))]
    assert scope.run(statements) == statements


# --- numbers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folders(models: dict[str, Model], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[tuple[str, bool], Path]:
    """Kernels of each network lowered with the pass (True) and without it (False)."""
    found = {}
    for name in ("lstm", "twice_rnn", "twice_mlp"):
        for shared in (True, False):
            folder = tmp_path_factory.mktemp(f"{name}_{'cse' if shared else 'plain'}")
            with pytest.MonkeyPatch.context() as patch:
                if not shared:
                    patch.setattr(lower_module, "common_subexpressions",
                                  lambda statements, *_: statements)
                files = render(models[name])
            write_atomically(folder, files)
            found[name, shared] = folder
    return found


def c_or_skip(folder: Path):
    from chainrule.codegen.backends.c.loader import CompilerError, find_compiler

    try:
        find_compiler()
    except CompilerError as error:
        pytest.skip(f"no C compiler: {error}")
    return codegen.load(folder, backend="c")


NUMBERS = ["lstm", "twice_rnn", "twice_mlp"]


def test_without_the_pass_the_kernels_repeat_work(folders) -> None:
    text = (folders["lstm", False] / "lstm.py").read_text()
    assert "\n".join(numpy_scopes(text)["loss_and_grad, loop"]).count("numpy.tanh(s[t])") == 2


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("name", NUMBERS)
def test_gradients_match_finite_differences(folders, name: str, backend: str) -> None:
    folder = folders[name, True]
    kernel = c_or_skip(folder) if backend == "c" else codegen.load(folder)
    for case in ((0, 1, 1, 1, 1, 2), (5, 3, 2, 3, 4, 3)):
        params, x, labels, state = random_inputs(kernel, *case)
        errors = finite_difference_errors(kernel, params, x, labels, state)
        assert max(errors.values()) < 1e-6, (case, errors)


@pytest.mark.parametrize("name", NUMBERS)
def test_same_numbers_as_without_the_pass(folders, name: str) -> None:
    kernels = {(backend, shared): (c_or_skip(folders[name, shared]) if backend == "c"
                                   else codegen.load(folders[name, shared]))
               for backend in ("numpy", "c") for shared in (True, False)}
    reference = kernels["numpy", False]
    for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-5)):
        params, x, labels, state = random_inputs(reference, 7, 4, 3, 3, 5, 3, dtype=dtype)
        loss, grads = reference.loss_and_grad(params, x, labels, state)
        for key, kernel in kernels.items():
            other_loss, other_grads = kernel.loss_and_grad(params, x, labels, state)
            assert relative_error(other_loss, loss) < tolerance, (key, dtype)
            for grad, value in grads.items():
                assert other_grads[grad].dtype == dtype
                assert relative_error(other_grads[grad], value) < tolerance, (key, grad)
            assert relative_error(kernel.predict(params, x, state),
                                  reference.predict(params, x, state)) < tolerance
