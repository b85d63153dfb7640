"""The geometry of the notes' figures: a layered graph drawing, and the test that no edge runs
through a node.

Role in DESIGN.md's picture: part of the ``latex`` branch, below ``figure.py``, which says
*what* a figure shows (from the model); this module says *where*, and knows no model.
:func:`layered_layout` is Sugiyama's method, small and deterministic: an edge that spans
several layers gets a waypoint in every layer between (so it runs in the gaps between
nodes, never through one), the order in each layer follows the barycentres of the
neighbours for a few sweeps, every node then sits as near the mean of its neighbours as
the spacing allows (isotonic regression, pool-adjacent-violators), and a gap between two
layers widens until no segment crosses it through a node. Edge labels are placed on their
edges where they overlap no node and no other label.

All lengths are in cm; a node is its box (centre and size), which the TikZ text draws at
exactly that size, so :func:`collisions` checks the picture that is printed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

Point = tuple[float, float]

#: Space between two nodes of one layer, between layers, and around a label.
NODE_GAP = 0.35
LAYER_GAP = 0.45
#: Size of the waypoint a long edge takes in each layer it crosses.
WAYPOINT = 0.2


@dataclass
class Box:
    """A node's box: centre ``(x, y)``, width ``w`` and height ``h``."""

    x: float
    y: float
    w: float
    h: float

    def grown(self, margin: float) -> Box:
        return Box(self.x, self.y, self.w + 2 * margin, self.h + 2 * margin)

    def overlaps(self, other: Box) -> bool:
        return (abs(self.x - other.x) * 2 < self.w + other.w
                and abs(self.y - other.y) * 2 < self.h + other.h)


@dataclass
class Path:
    """An edge drawn as a polyline from ``source`` to ``target``, through ``points``."""

    source: str
    target: str
    points: list[Point]
    label: str = ""
    label_box: Box | None = None
    style: str = ""


@dataclass
class Layout:
    """Where every node and edge of a figure is."""

    boxes: dict[str, Box] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)


def segment_hits(a: Point, b: Point, box: Box) -> bool:
    """Whether the segment ``a``–``b`` passes through ``box`` (Liang–Barsky clipping)."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = x1 - x0, y1 - y0
    lo, hi = 0.0, 1.0
    for p, q in ((-dx, x0 - (box.x - box.w / 2)), (dx, (box.x + box.w / 2) - x0),
                 (-dy, y0 - (box.y - box.h / 2)), (dy, (box.y + box.h / 2) - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        r = q / p
        if p < 0:
            lo = max(lo, r)
        else:
            hi = min(hi, r)
        if lo > hi:
            return False
    return hi - lo > 1e-9


def collisions(layout: Layout, margin: float = 0.03) -> list[str]:
    """What overlaps in ``layout``: an edge through a node other than its two ends, a label
    on a node or on another label. Empty for a good picture."""
    found = []
    for path in layout.paths:
        for a, b in itertools.pairwise(path.points):
            for name, box in layout.boxes.items():
                if name not in (path.source, path.target) and segment_hits(a, b, box.grown(
                        margin)):
                    found.append(f"edge {path.source}->{path.target} through {name}")
    labels = [p for p in layout.paths if p.label_box is not None]
    for position, path in enumerate(labels):
        assert path.label_box is not None
        for name, box in layout.boxes.items():
            if path.label_box.overlaps(box):
                found.append(f"label of {path.source}->{path.target} on {name}")
        for other in labels[position + 1:]:
            if path.label_box.overlaps(other.label_box):  # type: ignore[arg-type]
                found.append(f"label of {path.source}->{path.target} on the label of "
                             f"{other.source}->{other.target}")
    return sorted(set(found))


def _isotonic(wanted: list[float], seps: list[float]) -> list[float]:
    """Positions nearest ``wanted`` (least squares) with ``x[i+1] - x[i] >= seps[i]``."""
    offsets = [0.0]
    for sep in seps:
        offsets.append(offsets[-1] + sep)
    values = [w - o for w, o in zip(wanted, offsets, strict=True)]
    blocks: list[list[float]] = []  # [mean, count]
    for value in values:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            blocks[-1] = [(blocks[-1][0] * blocks[-1][1] + mean * count) / (blocks[-1][1] + count),
                          blocks[-1][1] + count]
    fitted = [mean for mean, count in blocks for _ in range(int(count))]
    return [f + o for f, o in zip(fitted, offsets, strict=True)]


def layered_layout(sizes: dict[str, tuple[float, float]], layer: dict[str, int],
                   edges: Sequence[tuple[str, str]], *, horizontal: bool = False,
                   label_sizes: dict[tuple[str, str], tuple[float, float]] | None = None
                   ) -> Layout:
    """Lay out a graph whose every edge goes from a lower layer to a higher one.

    ``sizes`` gives each node's (width, height), in the order that breaks ties; layers run
    bottom to top, or left to right when ``horizontal``. ``label_sizes`` gives the label
    of an edge its (width, height); the label is placed on the edge.
    """
    label_sizes = label_sizes or {}
    # 1. a waypoint in every layer an edge crosses
    size = dict(sizes)
    level = dict(layer)
    chains: list[tuple[str, str, list[str]]] = []
    for u, v in edges:
        if level[v] <= level[u]:
            raise ValueError(f"edge {u}->{v} does not go up a layer")
        chain = [u]
        for step in range(level[u] + 1, level[v]):
            name = f"{u}->{v}@{step}"
            size[name] = (WAYPOINT, WAYPOINT)
            level[name] = step
            chain.append(name)
        chain.append(v)
        chains.append((u, v, chain))
    rank = {name: position for position, name in enumerate(size)}
    below: dict[str, list[str]] = {n: [] for n in size}
    above: dict[str, list[str]] = {n: [] for n in size}
    for _, _, chain in chains:
        for a, b in itertools.pairwise(chain):
            above[a].append(b)
            below[b].append(a)
    rows: dict[int, list[str]] = {}
    for name in sorted(size, key=lambda n: (level[n], rank[n])):
        rows.setdefault(level[name], []).append(name)
    levels = sorted(rows)

    # 2. order within layers: barycentres of the neighbours, sweeping up and down
    def sweep(order: list[int], neighbours: dict[str, list[str]]) -> None:
        for lev in order:
            index = {n: i for lv in levels for i, n in enumerate(rows[lv])}
            row = rows[lev]
            key = {n: (sum(index[m] for m in neighbours[n]) / len(neighbours[n])
                       if neighbours[n] else float(index[n])) for n in row}
            row.sort(key=lambda n: (key[n], index[n]))

    for _ in range(4):
        sweep(levels[1:], below)
        sweep(levels[-2::-1], above)

    # 3. across: each node near the mean of its neighbours, the spacing kept
    def across_size(name: str) -> float:
        return size[name][1] if horizontal else size[name][0]

    def along_size(name: str) -> float:
        return size[name][0] if horizontal else size[name][1]

    cross: dict[str, float] = {}
    for lev in levels:
        position = 0.0
        for name in rows[lev]:
            cross[name] = position
            position += across_size(name) + NODE_GAP
    for round_ in range(12):
        order = levels if round_ % 2 == 0 else levels[::-1]
        for lev in order:
            row = rows[lev]
            wanted = []
            for name in row:
                near = (below if round_ % 2 == 0 else above)[name] or below[name] + above[name]
                wanted.append(sum(cross[m] for m in near) / len(near) if near else cross[name])
            seps = [(across_size(a) + across_size(b)) / 2 + NODE_GAP
                    for a, b in itertools.pairwise(row)]
            for name, value in zip(row, _isotonic(wanted, seps), strict=True):
                cross[name] = value
    # centre the picture across
    low = min(cross[n] - across_size(n) / 2 for n in size)
    high = max(cross[n] + across_size(n) / 2 for n in size)
    for name in cross:
        cross[name] = round(cross[name] - (low + high) / 2, 2)

    # 4. along: each gap wide enough for its labels, widened until no segment hits a node
    extent = {lev: max(along_size(n) for n in rows[lev]) for lev in levels}
    gaps = {lev: LAYER_GAP for lev in levels[:-1]}
    for u, v, chain in chains:
        if (u, v) in label_sizes:
            w, h = label_sizes[(u, v)]
            lev = level[chain[-2]]
            gaps[lev] = max(gaps[lev], (w if horizontal else h) + 2 * NODE_GAP / 2)
    layout = Layout()
    for _ in range(40):
        along: dict[int, float] = {}
        position = 0.0
        previous = levels[0]
        for lev in levels:
            if along:
                position += extent[previous] / 2 + gaps[previous] + extent[lev] / 2
            along[lev] = position
            previous = lev
        boxes = {}
        for name in size:
            a, c = along[level[name]], cross[name]
            x, y = (a, c) if horizontal else (c, a)
            w, h = size[name]
            boxes[name] = Box(round(x, 2), round(y, 2), w, h)
        layout = Layout({n: b for n, b in boxes.items() if n in sizes}, [])
        for u, v, chain in chains:
            layout.paths.append(Path(u, v, [(boxes[n].x, boxes[n].y) for n in chain]))
        hit = {level[chain[i]] for u, v, chain in chains for i in range(len(chain) - 1)
               if any(segment_hits((boxes[chain[i]].x, boxes[chain[i]].y),
                                   (boxes[chain[i + 1]].x, boxes[chain[i + 1]].y),
                                   box.grown(0.05))
                      for name, box in layout.boxes.items() if name not in (u, v))}
        failed = place_labels(layout, label_sizes)
        hit |= {level[v] - 1 for u, v in failed}
        if not hit:
            break
        for lev in hit:
            gaps[lev] += 0.25
    return layout


def place_labels(layout: Layout, label_sizes: dict[tuple[str, str], tuple[float, float]]
                 ) -> list[tuple[str, str]]:
    """Put each sized edge's label on its edge where it covers no node and no label placed
    before it: the middle of its last segment if it can, else further along or back. Returns
    the edges whose labels found no free place (they sit in the middle)."""
    placed: list[Box] = []
    failed = []
    for path in layout.paths:
        if (path.source, path.target) not in label_sizes:
            continue
        w, h = label_sizes[(path.source, path.target)]
        segments = list(itertools.pairwise(path.points))[::-1]
        candidates = [(a, b, f) for a, b in segments
                      for f in (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8)]
        best = None
        for a, b, f in candidates:
            box = Box(round(a[0] + (b[0] - a[0]) * f, 2), round(a[1] + (b[1] - a[1]) * f, 2), w, h)
            if not any(box.overlaps(other.grown(0.02))
                       for other in [*layout.boxes.values(), *placed]):
                best = box
                break
        if best is None:  # nowhere free: the middle, where a test will see it
            a, b = segments[0]
            best = Box(round((a[0] + b[0]) / 2, 2), round((a[1] + b[1]) / 2, 2), w, h)
            failed.append((path.source, path.target))
        path.label_box = best
        placed.append(best)
    return failed


__all__ = ["LAYER_GAP", "NODE_GAP", "WAYPOINT", "Box", "Layout", "Path", "collisions",
           "layered_layout", "place_labels", "segment_hits"]
