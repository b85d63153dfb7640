"""A model's computation graph as a TikZ picture, drawn from its equations.

Role in DESIGN.md's picture: part of the ``latex`` branch. Nodes are the model's inputs,
targets, intermediates and its loss; parameters are not nodes but the labels of the
edges they weight (``W^{(xh)}`` on the edge from ``x`` to ``a_h``, a peephole ``w^{(c\\iota)}``
on the edge from ``s_c``). An arrow runs from each quantity to every quantity whose
equation reads it (``Model.dependencies``). A term of an equation that multiplies two
quantities (``b_\\phi^t s_c^{t-1}``) goes through a multiplicative unit, a small circle
with ``×``, as in Graves' Fig. 4.2. Nothing here knows any network; three kinds of
picture come from the shape of the equations:

- a model without time is drawn layer by layer from left to right (the MLP: one row);
- a recurrent model whose equations multiply no two quantities (the RNN) is unrolled
  over the steps ``t-1, t, t+1``, each step a column from the input up to the output,
  the recurrent edges between the columns and, dashed beside them, the adjoints
  ``δ^{t}``, ``δ^{t+1}`` flowing back. In a bidirectional net (Graves 3.2.4, Fig. 3.4)
  the layer that runs backward in time, reading ``t+1``, sits above the one that runs
  forward, so that each layer's recurrence runs between the steps in rows of its own,
  from ``t-1`` to ``t`` below and from ``t+1`` to ``t`` above (where the steps cannot
  sit side by side without an edge through a node, one step is drawn);
- any other recurrent model (the LSTM's memory block, a GRU) is drawn for one step
  ``t`` from the bottom up: what it reads from another step (``t-1``; ``t+1`` for the
  backward layer of a bidirectional net) is in the bottom row beside the input, and
  what another step reads leaves by a dashed arrow to that step (``t+1``; ``t-1``).
  Where that picture is too tall to print at a legible size (the LSTM's), it is drawn
  from left to right instead, whichever of the two prints larger.

``layout.py`` decides where everything goes; :func:`drawing` returns the boxes and paths
(what the geometry test checks) with the text of each node, and :func:`tikz_graph` prints
them, every node at the size its box has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy
from sympy import Expr, Indexed

from chainrule.codegen.backends.latex.layout import (
    Box,
    Layout,
    Path,
    collisions,
    layered_layout,
    place_labels,
)
from chainrule.codegen.backends.latex.notation import vector_symbols
from chainrule.codegen.backends.latex.printer import NotesLatexPrinter
from chainrule.symbolic import Model, Quantity, Role, adjoint_name

#: Width of one character of a node's text, of a script character and of a label's, in cm.
CHAR = 0.21
SCRIPT = 0.15
LABEL_SCALE = 0.72
#: Height of a node and of an edge label; the size of a multiplicative unit.
NODE_HEIGHT = 0.55
LABEL_HEIGHT = 0.34
PRODUCT = 0.42
#: Space between the columns of an unrolled picture; how far a back arrow runs beside its edge.
COLUMN_GAP = 1.3
BACK_OFFSET = 0.22
#: The largest picture printed at full size, in cm; a larger one is scaled down as a whole.
MAX_WIDTH = 15.0
MAX_HEIGHT = 6.8
#: The steps an unrolled picture shows, relative to t.
STEPS = (-1, 0, 1)


@dataclass
class Drawing:
    """A figure: its layout, each node's TeX and style, each edge's style."""

    layout: Layout
    text: dict[str, str] = field(default_factory=dict)
    style: dict[str, str] = field(default_factory=dict)


def text_width(tex: str, scale: float = 1.0) -> float:
    """A generous estimate of the width of inline math ``tex``, in cm."""
    body = re.sub(r"\\(left|right|,|;|!|quad)", "", tex)
    width = 0.0
    depth_script = 0
    for match in re.finditer(r"\\[A-Za-z]+|[_^]\{|[_^]|\{|\}|.", body):
        token = match.group(0)
        if token in ("_{", "^{"):
            depth_script += 1
        elif token == "}":
            depth_script = max(0, depth_script - 1)
        elif token in ("_", "^", "{", " "):
            continue
        else:
            width += SCRIPT if depth_script else CHAR
    return round((width + 0.3) * scale, 2)


# --- what the equations read --------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A quantity an equation reads: at ``t-1``/``t+1`` when ``shifted``; the parameters that
    weight it; and the product term it is a factor of, if any."""

    name: str
    shift: int
    params: tuple[str, ...]
    product: int | None


def reads(model: Model, expr: Expr) -> list[Read]:
    """What ``expr`` reads, with the parameters weighting each read and its product term."""
    found: list[Read] = []
    time = model.time_index
    products = 0

    def shown(node: Expr) -> bool:
        return any(model.quantity(r.base.name).role is not Role.PARAMETER
                   for r in node.atoms(Indexed))

    def walk(node: Expr, params: tuple[str, ...], product: int | None) -> None:
        nonlocal products
        if isinstance(node, Indexed):
            q = model.quantity(node.base.name)
            if q.role is not Role.PARAMETER:
                shift = 0
                if q.time and time is not None and node.indices[-1].has(time):
                    offset = sympy.expand(node.indices[-1] - time)
                    shift = int(offset) if offset.is_Integer else 0
                found.append(Read(q.name, shift, params, product))
            return
        if isinstance(node, sympy.Mul):
            weights = tuple(sorted(f.base.name for f in node.args if isinstance(f, Indexed)
                                   and model.quantity(f.base.name).role is Role.PARAMETER))
            factors = [f for f in node.args if shown(f)]
            if product is None and len({_names(model, f) for f in factors}) > 1:
                products += 1
                product = products
            for f in node.args:
                walk(f, params + weights, product)
            return
        if isinstance(node, sympy.Sum):
            walk(node.function, params, product)
            return
        for arg in node.args:
            walk(arg, params, product)

    walk(expr, (), None)
    return found


def _names(model: Model, expr: Expr) -> frozenset[str]:
    return frozenset(r.base.name for r in expr.atoms(Indexed)
                     if model.quantity(r.base.name).role is not Role.PARAMETER)


# --- the graph ----------------------------------------------------------------------------------


@dataclass
class _Graph:
    text: dict[str, str] = field(default_factory=dict)
    style: dict[str, str] = field(default_factory=dict)
    edges: dict[tuple[str, str], str] = field(default_factory=dict)  # → label TeX
    dashed: set[tuple[str, str]] = field(default_factory=set)

    def node(self, name: str, tex: str, style: str) -> None:
        self.text.setdefault(name, tex)
        self.style.setdefault(name, style)

    def edge(self, source: str, target: str, label: str = "", dashed: bool = False) -> None:
        previous = self.edges.get((source, target), "")
        joined = ", ".join(p for p in (previous, label) if p)
        self.edges[(source, target)] = ", ".join(dict.fromkeys(joined.split(", "))) if joined \
            else ""
        if dashed:
            self.dashed.add((source, target))

    def size(self, name: str) -> tuple[float, float]:
        if self.style[name] == "product":
            return (PRODUCT, PRODUCT)
        return (text_width(self.text[name]), NODE_HEIGHT)


class _Figure:
    def __init__(self, model: Model, printer: NotesLatexPrinter) -> None:
        self.model = model
        self.printer = printer
        self.params = vector_symbols(model, printer.declared_latex, printer._print)
        self.equations = {name: model.equations[name].rhs for name in model.evaluation_order()}
        self.equations[model.loss_name] = model.loss_equation.rhs  # type: ignore[union-attr]
        self.reads = {name: reads(model, rhs) for name, rhs in self.equations.items()}
        for name in self.reads:  # the loss is one node: its terms are not units
            if self.model.quantity(name).role is Role.LOSS:
                self.reads[name] = [Read(r.name, r.shift, r.params, None)
                                    for r in self.reads[name]]

    def symbol(self, q: Quantity, shift: int = 0) -> str:
        if q.role is Role.LOSS or (not q.sizes and not q.time):
            return self.printer.doprint(sympy.Symbol(q.name) if q.role is Role.LOSS
                                        else q.base)
        indices = self.model.canonical_indices(q)
        if q.time and self.model.time_index is not None:
            indices = (*indices[:-1], indices[-1] + shift)
        return self.printer.doprint(q.base[indices])

    def adjoint(self, q: Quantity, shift: int) -> str:
        indices = self.model.canonical_indices(q)
        indices = (*indices[:-1], indices[-1] + shift)
        return self.printer.doprint(sympy.IndexedBase(adjoint_name(q.name))[indices])

    def label(self, read: Read) -> str:
        return ", ".join(self.params.get(p, p) for p in read.params)

    def has_products(self) -> bool:
        return any(r.product is not None for rs in self.reads.values() for r in rs)

    def style_of(self, q: Quantity) -> str:
        return {Role.INPUT: "src", Role.TARGET: "src", Role.LOSS: "lossnode"}.get(q.role, "q")

    # --- one step ------------------------------------------------------------------------

    def merged(self) -> dict[str, str]:
        """The net inputs drawn inside their activation's node (``b = f(a)``): quantity
        ``p`` whose one reader ``q`` is an elementwise function of ``p`` alone → ``q``."""
        readers: dict[str, set[str]] = {}
        for name, rs in self.reads.items():
            for read in rs:
                readers.setdefault(read.name, set()).add(name)
        into = {}
        for name, rhs in self.equations.items():
            if (isinstance(rhs, sympy.Function) and len(rhs.args) == 1
                    and isinstance(rhs.args[0], Indexed)):
                p = rhs.args[0].base.name
                if (self.model.quantity(p).role is Role.INTERMEDIATE
                        and readers.get(p) == {name}
                        and [r.shift for r in self.reads[name]] == [0]):
                    into[p] = name
        return into

    def step_graph(self, ghosts: bool = True, merge: bool = False) -> _Graph:
        """One step's graph; with ``ghosts``, what it reads from another step as nodes of the
        bottom row and what another step reads as dashed arrows to it; with ``merge``, each
        activation and its net input in one node."""
        graph = _Graph()
        into = self.merged() if merge else {}

        def node_of(name: str) -> str:
            return into.get(name, name)

        for name in self.equations:
            if name in into.values():
                continue
            q = self.model.quantity(name)
            if name in into:
                target = into[name]
                tex = (f"{self.symbol(self.model.quantity(target))} = "
                       f"{self.printer.doprint(self.equations[target])}")
                graph.node(target, tex, "q")
            else:
                graph.node(name, self.symbol(q), self.style_of(q))
            for read in self.reads[name]:
                source = self.model.quantity(read.name)
                if read.shift:
                    if not ghosts:
                        continue
                    node = f"prev:{read.name}:{read.shift}"
                    graph.node(node, self.symbol(source, read.shift), "src")
                    nxt = f"next:{node_of(read.name)}:{read.shift}"
                    graph.node(nxt, f"t {'-' if read.shift > 0 else '+'} {abs(read.shift)}"
                               if abs(read.shift) > 1 else
                               ("t - 1" if read.shift > 0 else "t + 1"), "ghost")
                    graph.edge(node_of(read.name), nxt, dashed=True)
                else:
                    node = node_of(read.name)
                    graph.node(node, self.symbol(source), self.style_of(source))
                if read.product is not None:
                    unit = f"mul:{name}:{read.product}"
                    graph.node(unit, r"\times", "product")
                    graph.edge(node, unit, self.label(read), dashed=bool(read.shift))
                    graph.edge(unit, node_of(name))
                else:
                    graph.edge(node, node_of(name), self.label(read), dashed=bool(read.shift))
        return graph

    def directions(self) -> tuple[set[str], set[str]]:
        """The layers that run forward and backward in time: the quantities on a path, within
        one step, from an equation reading ``t-1`` (``t+1``) to what it reads there."""
        readers: dict[str, set[str]] = {}
        for name, rs in self.reads.items():
            for read in rs:
                readers.setdefault(read.name, set()).add(name)

        def closure(start: set[str], step: dict[str, set[str]]) -> set[str]:
            seen, todo = set(start), list(start)
            while todo:
                for m in step.get(todo.pop(), ()):
                    if m not in seen:
                        seen.add(m)
                        todo.append(m)
            return seen

        read_by = {name: {r.name for r in rs if not r.shift} for name, rs in self.reads.items()}
        found = []
        for sign in (-1, 1):
            seeds = {name for name, rs in self.reads.items()
                     if any(r.shift * sign > 0 for r in rs)}
            read = {r.name for rs in self.reads.values() for r in rs if r.shift * sign > 0}
            found.append(closure(seeds, readers) & closure(read, read_by))
        return found[0], found[1]

    def layers(self, graph: _Graph, *, stacked: bool = False) -> dict[str, int]:
        """Longest path from the sources; a target, or a quantity of step ``t-1``, sits just
        below its first reader; an arrow to ``t+1`` just above its quantity. ``stacked``: a
        layer running backward in time sits above the one running forward, so that each
        layer's recurrence between the steps runs in rows of its own."""
        level: dict[str, int] = {}
        floor: dict[str, int] = {}
        incoming: dict[str, list[str]] = {n: [] for n in graph.text}
        outgoing: dict[str, list[str]] = {n: [] for n in graph.text}
        for u, v in graph.edges:
            incoming[v].append(u)
            outgoing[u].append(v)

        def depth(name: str) -> int:
            if name not in level:
                level[name] = max(floor.get(name, 0),
                                  1 + max((depth(u) for u in incoming[name]), default=-1))
            return level[name]

        for name in graph.text:
            depth(name)
        forward, backward = self.directions() if stacked else (set(), set())
        forward, backward = forward & set(graph.text), backward & set(graph.text)
        if forward and backward:
            lift = max(level[n] for n in forward) + 1 - min(level[n] for n in backward)
            floor = {n: level[n] + max(0, lift) for n in backward}
            level = {}
            for name in graph.text:
                depth(name)
        for name in graph.text:
            q = self.model.quantities.get(name)
            if (q is not None and q.role is Role.TARGET) or name.startswith("prev:"):
                level[name] = min(level[v] for v in outgoing[name]) - 1
        for name in graph.text:
            if name.startswith("next:"):
                level[name] = level[incoming[name][0]] + 1
        return level

    def lay_out(self, graph: _Graph, *, horizontal: bool, stacked: bool = False) -> Layout:
        sizes = {n: graph.size(n) for n in graph.text}
        labels = {e: (text_width(t, LABEL_SCALE), LABEL_HEIGHT) for e, t in graph.edges.items()
                  if t}
        layout = layered_layout(sizes, self.layers(graph, stacked=stacked), list(graph.edges),
                                horizontal=horizontal, label_sizes=labels)
        for path in layout.paths:
            path.label = graph.edges[(path.source, path.target)]
            path.style = "rec" if (path.source, path.target) in graph.dashed else ""
        return layout

    # --- the three pictures --------------------------------------------------------------

    def drawing(self) -> Drawing:
        time = self.model.time_index
        if time is None:
            graph = self.step_graph()
            return Drawing(self.lay_out(graph, horizontal=True), graph.text, graph.style)
        if self.has_products() or any(not self.model.quantity(n).time
                                      for n in self.equations
                                      if self.model.quantity(n).role is Role.INTERMEDIATE):
            return self.one_step()
        unrolled = self.unrolled()
        if collisions(unrolled.layout):  # steps that cannot sit side by side: one step
            return self.one_step()
        return unrolled

    def one_step(self) -> Drawing:
        """One step, from the bottom up or, where that prints larger (a tall picture such
        as the LSTM's, scaled down to fit the page), from left to right."""
        graph = self.step_graph(merge=True)
        upright = self.lay_out(graph, horizontal=False)
        layout = upright
        if fit_scale(upright) < 1:
            across = self.lay_out(graph, horizontal=True)
            if fit_scale(across) > fit_scale(upright) and not collisions(across):
                layout = across
        return Drawing(layout, graph.text, graph.style)

    def unrolled(self) -> Drawing:
        graph = self.step_graph(ghosts=False)
        step = self.lay_out(graph, horizontal=False, stacked=True)
        timed = [n for n in graph.text if self.model.quantity(n).time]
        left = min(step.boxes[n].x - step.boxes[n].w / 2 for n in timed)
        right = max(step.boxes[n].x + step.boxes[n].w / 2 for n in timed)
        width = right - left + COLUMN_GAP
        layout = Layout()
        text: dict[str, str] = {}
        style: dict[str, str] = {}

        def at(name: str, s: int) -> str:
            return name if not self.model.quantity(name).time else f"{name}@{s}"

        for s in STEPS:
            for name in graph.text:
                if self.model.quantity(name).time or s == 0:
                    box = step.boxes[name]
                    shift = s * width if self.model.quantity(name).time else 0.0
                    layout.boxes[at(name, s)] = Box(round(box.x + shift, 2), box.y, box.w, box.h)
                    text[at(name, s)] = self.symbol(self.model.quantity(name), s)
                    style[at(name, s)] = graph.style[name]
        labels: dict[tuple[str, str], tuple[float, float]] = {}

        def centre(name: str) -> tuple[float, float]:
            return (layout.boxes[name].x, layout.boxes[name].y)

        for path in step.paths:  # the edges within each step
            for s in STEPS:
                u, v = at(path.source, s), at(path.target, s)
                if u == path.source and v == path.target and s != 0:
                    continue
                if s == 0:
                    points = [centre(u), *path.points[1:-1], centre(v)]
                elif v == path.target:  # into the one loss: up, then across at its height
                    points = [centre(u), (centre(u)[0], centre(v)[1]), centre(v)]
                else:
                    points = [centre(u), *[(round(x + s * width, 2), y)
                                           for x, y in path.points[1:-1]], centre(v)]
                layout.paths.append(Path(u, v, points, label=path.label if s == 0 else "",
                                         style=path.style))
                if s == 0 and path.label:
                    labels[(u, v)] = (text_width(path.label, LABEL_SCALE), LABEL_HEIGHT)
        for name, rs in self.reads.items():  # across the steps: forward, and the adjoint back
            for read in rs:
                for s in STEPS:
                    if not read.shift or s + read.shift not in STEPS:
                        continue
                    u, v = at(read.name, s + read.shift), at(name, s)
                    label = self.label(read) if s == 0 else ""
                    layout.paths.append(Path(u, v, [centre(u), centre(v)], label=label))
                    if label:
                        labels[(u, v)] = (text_width(label, LABEL_SCALE), LABEL_HEIGHT)
                    back = _beside(centre(v), centre(u), layout.boxes[v], layout.boxes[u])
                    delta = self.adjoint(self.model.quantity(name), s)
                    layout.paths.append(Path(v, u, back, label=delta, style="back"))
                    labels[(v, u)] = (text_width(delta, LABEL_SCALE), LABEL_HEIGHT)
        for path in layout.paths:
            path.label_box = None
        place_labels(layout, labels)
        return Drawing(layout, text, style)


def _beside(a: tuple[float, float], b: tuple[float, float], box_a: Box, box_b: Box
            ) -> list[tuple[float, float]]:
    """A segment from box ``a`` to box ``b``, beside the one between their centres (below it,
    by ``BACK_OFFSET``), from border to border."""
    (x0, y0), (x1, y1) = a, b
    length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
    nx, ny = (y1 - y0) / length, -(x1 - x0) / length  # the normal on the right of a → b
    if ny > 0:
        nx, ny = -nx, -ny
    start = _border((x0 + nx * BACK_OFFSET, y0 + ny * BACK_OFFSET), (x1 - x0, y1 - y0), box_a)
    end = _border((x1 + nx * BACK_OFFSET, y1 + ny * BACK_OFFSET), (x0 - x1, y0 - y1), box_b)
    return [(round(start[0], 2), round(start[1], 2)), (round(end[0], 2), round(end[1], 2))]


def _border(point: tuple[float, float], direction: tuple[float, float], box: Box
            ) -> tuple[float, float]:
    """Where the ray from ``point`` along ``direction`` leaves ``box`` (plus a hair)."""
    (x, y), (dx, dy) = point, direction
    ts = []
    if dx:
        ts.append(((box.x + (box.w / 2 if dx > 0 else -box.w / 2)) - x) / dx)
    if dy:
        ts.append(((box.y + (box.h / 2 if dy > 0 else -box.h / 2)) - y) / dy)
    t = max(0.0, min(ts)) if ts else 0.0
    length = (dx * dx + dy * dy) ** 0.5
    t += 0.05 / length
    return (x + dx * t, y + dy * t)


def fit_scale(layout: Layout) -> float:
    """How much a picture of ``layout`` is scaled down to fit ``MAX_WIDTH × MAX_HEIGHT``
    (1 where it fits)."""
    boxes = layout.boxes.values()
    width = max(b.x + b.w / 2 for b in boxes) - min(b.x - b.w / 2 for b in boxes)
    height = max(b.y + b.h / 2 for b in boxes) - min(b.y - b.h / 2 for b in boxes)
    return min(1.0, MAX_WIDTH / width, MAX_HEIGHT / height)


def drawing(model: Model, printer: NotesLatexPrinter) -> Drawing:
    """The figure of ``model``: where each node and edge is, and what each node says."""
    return _Figure(model, printer).drawing()


def layers(model: Model) -> dict[str, int]:
    """The layer of every quantity in the one-step picture (0 at the bottom)."""
    figure = _Figure(model, NotesLatexPrinter(model))
    level = figure.layers(figure.step_graph())
    return {n: v for n, v in level.items() if n in model.quantities}


_STYLES = {
    "q": "draw, rounded corners=2pt, fill=white",
    "src": "draw, rounded corners=2pt, fill=black!8",
    "lossnode": "draw, double, rounded corners=2pt, fill=white",
    "ghost": "",
    "product": "draw, circle, fill=white",
}


def _node_id(name: str) -> str:
    """A TikZ node name for figure node ``name`` (letters and digits only)."""
    return "q" + "".join(c if c.isalnum() else f"x{ord(c):x}" for c in name)


def tikz_graph(model: Model, printer: NotesLatexPrinter) -> str:
    """The ``tikzpicture`` of ``model``'s computation graph (deterministic text)."""
    picture = drawing(model, printer)
    lines = [
        r"\begin{tikzpicture}[inner sep=0pt, outer sep=0pt,",
        r"  >={Stealth[length=1.8mm]}, fwd/.style={draw, ->}, rec/.style={draw, ->, dashed},",
        r"  back/.style={draw, ->, densely dotted, thick, black!60},",
        r"  lbl/.style={fill=white, inner sep=0.5pt, font=\scriptsize}]",
    ]
    for name, box in picture.layout.boxes.items():
        size = (f"minimum size={box.w:.2f}cm" if picture.style[name] == "product" else
                f"minimum width={box.w:.2f}cm, minimum height={box.h:.2f}cm")
        style = ", ".join(s for s in (_STYLES[picture.style[name]], size) if s)
        lines.append(rf"\node[{style}] ({_node_id(name)}) at ({box.x:.2f}, {box.y:.2f}) "
                     rf"{{${picture.text[name]}$}};")
    for path in picture.layout.paths:
        ends = [f"({x:.2f}, {y:.2f})" for x, y in path.points]
        if path.style != "back":
            ends[0], ends[-1] = f"({_node_id(path.source)})", f"({_node_id(path.target)})"
        lines.append(rf"\draw[{path.style or 'fwd'}] {' -- '.join(ends)};")
    for path in picture.layout.paths:
        if path.label and path.label_box is not None:
            lines.append(rf"\node[lbl] at ({path.label_box.x:.2f}, {path.label_box.y:.2f}) "
                         rf"{{${path.label}$}};")
    lines.append(r"\end{tikzpicture}")
    scale = fit_scale(picture.layout)
    if scale < 1:  # the whole picture, text and all, so that its geometry stays as laid out
        lines = [rf"\scalebox{{{scale:.2f}}}{{%", *lines, "}"]
    return "\n".join(lines) + "\n"


__all__ = ["Drawing", "Read", "drawing", "fit_scale", "layers", "reads", "text_width", "tikz_graph"]
