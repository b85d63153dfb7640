"""A model's computation graph as a TikZ picture, drawn from its equations.

Nodes are the model's inputs, targets, intermediates and its loss (parameters
are left out: every equation has some); an arrow runs from each quantity to
every quantity whose equation reads it, as ``Model.dependencies`` says. The
picture is laid out in layers: a quantity sits one layer above the highest
quantity of the same step it reads, so the inputs are at the bottom and the
loss at the top; a target sits just below its first reader.

A recurrent model is drawn for one time step ``t``: a quantity read at ``t-1``
appears once more on the left as ``q^{t-1}``, with dashed arrows to its readers,
and once on the right, with a dashed arrow from ``q^{t}`` to the step ``t+1``
that reads it. The LSTM's memory block (gates, peepholes from the cell state)
comes out of its equations this way; nothing here knows any network.
"""

from __future__ import annotations

import sympy

from chainrule.codegen.backends.latex.printer import NotesLatexPrinter
from chainrule.symbolic import Model, Quantity, Role

#: Distance between layers and between nodes of one layer, in cm.
LAYER_SEP = 1.25
NODE_SEP = 2.4


def _node_id(name: str) -> str:
    """A TikZ node name for quantity ``name`` (letters and digits only)."""
    return "q" + "".join(c if c.isalnum() else f"x{ord(c):x}" for c in name)


def layers(model: Model) -> dict[str, int]:
    """The layer of every quantity the figure shows (0 at the bottom)."""
    order = [*model.evaluation_order(), model.loss_name]
    level: dict[str, int] = {}
    readers: dict[str, list[str]] = {}
    for name in order:
        deps = [(q, shifted) for q, shifted in model.dependencies(name)
                if q.role is not Role.PARAMETER]
        for q, _ in deps:
            readers.setdefault(q.name, []).append(name)
        same_step = [level.get(q.name, 0) for q, shifted in deps
                     if not shifted and q.role is Role.INTERMEDIATE]
        level[name] = 1 + max(same_step, default=0)
    for q in model.quantities.values():
        if q.role is Role.INPUT:
            level[q.name] = 0
        elif q.role is Role.TARGET and q.name in readers:
            level[q.name] = min(level[r] for r in readers[q.name]) - 1
    return level


def positions(model: Model) -> dict[str, tuple[float, float]]:
    """Where each node of the figure sits (x, y in cm).

    Layer by layer from the bottom, each node takes the free place nearest the mean
    of the quantities it reads whose straight arrows to it pass clear of the nodes
    placed so far, so that long arrows do not run through other quantities.
    """
    level = layers(model)
    reads: dict[str, list[str]] = {name: [] for name in level}
    for name in [*model.evaluation_order(), model.loss_name]:
        reads[name] = [q.name for q, shifted in model.dependencies(name)
                       if not shifted and q.name in level]
    rows: dict[int, list[str]] = {}
    for name in sorted(level, key=lambda n: (level[n], list(model.quantities).index(n))):
        rows.setdefault(level[name], []).append(name)
    placed: dict[str, tuple[float, float]] = {}

    def blocked(source: tuple[float, float], target: tuple[float, float]) -> int:
        (x0, y0), (x1, y1) = source, target
        hits = 0
        for x, y in placed.values():
            if y0 < y < y1:
                crossing = x0 + (x1 - x0) * (y - y0) / (y1 - y0)
                hits += abs(crossing - x) < NODE_SEP * 0.45
        return hits

    for row_level in sorted(rows):
        y = row_level * LAYER_SEP
        row = rows[row_level]
        centre = {n: (sum(placed[r][0] for r in reads[n] if r in placed)
                      / max(1, sum(r in placed for r in reads[n]))) for n in row}
        if not any(r in placed for n in row for r in reads[n]):  # a bottom row: centred
            for position, name in enumerate(row):
                placed[name] = ((position - (len(row) - 1) / 2) * NODE_SEP, y)
            continue
        taken: list[float] = []
        # a quantity that reads nothing drawn (a target) goes beside the others, to the right
        for name in sorted(row, key=lambda n: (not any(r in placed for r in reads[n]),
                                               centre[n], row.index(n))):
            if not any(r in placed for r in reads[name]):
                centre[name] = max(taken, default=-NODE_SEP) + NODE_SEP
            candidates = [centre[name] + step * NODE_SEP / 2 for step in
                          sorted(range(-8, 9), key=lambda s: (abs(s), s))]
            best = min(candidates, key=lambda x: (
                sum(blocked(placed[r], (x, y)) for r in reads[name] if r in placed) * 10
                + abs(x - centre[name]) / NODE_SEP
                + (100 if any(abs(x - other) < NODE_SEP * 0.99 for other in taken) else 0)))
            taken.append(best)
            placed[name] = (round(best, 2), y)
    return placed


def tikz_graph(model: Model, printer: NotesLatexPrinter) -> str:
    """The ``tikzpicture`` of ``model``'s computation graph (deterministic text)."""
    level = layers(model)
    where = positions(model)
    time = model.time_index
    shown = [q for q in model.quantities.values() if q.name in level]
    shown.sort(key=lambda q: (level[q.name], where[q.name][0], _rank(model, q)))

    def symbol(q: Quantity, shift: int = 0) -> str:
        if q.role is Role.LOSS:
            return printer.doprint(sympy.Symbol(q.name))
        indices = model.canonical_indices(q)
        if q.time and indices:
            assert time is not None
            indices = (*indices[:-1], indices[-1] + shift)
        return printer.doprint(q.base[indices] if indices else sympy.Symbol(q.name))

    lines = [
        r"\begin{tikzpicture}[",
        r"  q/.style={draw, rounded corners=2pt, minimum height=6mm, inner sep=2pt, fill=white},",
        r"  src/.style={q, fill=black!8},",
        r"  lossnode/.style={q, double},",
        r"  ghost/.style={inner sep=1pt},",
        r"  >={Stealth[length=2mm]}, every edge/.style={draw, ->},",
        r"  rec/.style={draw, ->, dashed}]",
    ]
    for q in shown:
        x, y = where[q.name]
        style = {Role.INPUT: "src", Role.TARGET: "src", Role.LOSS: "lossnode"}.get(q.role, "q")
        lines.append(rf"\node[{style}] ({_node_id(q.name)}) at ({x:.2f}, {y:.2f}) "
                     rf"{{${symbol(q)}$}};")
    xs = [x for x, _ in where.values()]
    left, right = min(xs) - NODE_SEP, max(xs) + NODE_SEP
    edges, recurrent = [], []
    ghosts: dict[str, Quantity] = {}
    for name in [*model.evaluation_order(), model.loss_name]:
        for q, shifted in model.dependencies(name):
            if q.name not in level:
                continue
            if shifted:
                ghosts.setdefault(q.name, q)
                recurrent.append(rf"\draw[rec] (prev{_node_id(q.name)}) -- ({_node_id(name)});")
            else:
                edges.append(rf"\draw ({_node_id(q.name)}) edge ({_node_id(name)});")
    for q in ghosts.values():
        y = where[q.name][1]
        lines.append(rf"\node[ghost] (prev{_node_id(q.name)}) at ({left:.2f}, {y:.2f}) "
                     rf"{{${symbol(q, -1)}$}};")
        lines.append(rf"\node[ghost] (next{_node_id(q.name)}) at ({right:.2f}, {y:.2f}) "
                     rf"{{$t + 1$}};")
        recurrent.append(rf"\draw[rec] ({_node_id(q.name)}) -- (next{_node_id(q.name)});")
    lines += edges + recurrent
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines) + "\n"


def _rank(model: Model, q: Quantity) -> int:
    """Where ``q`` comes in the model's own order (declaration order), for a stable layout."""
    return list(model.quantities).index(q.name)


__all__ = ["LAYER_SEP", "NODE_SEP", "layers", "positions", "tikz_graph"]
