"""One convention of symbols for every note: Graves' letters, the labels a model declares only
where they are needed.

Role in DESIGN.md's picture: part of the ``latex`` branch's printer. A model declares a
symbol per quantity (``a^{(y)}``, ``w^{(hy)}``, ``\\delta^{(1)}``); written with all its
indices, a layer label in parentheses is redundant when no other quantity of the same
letter has the same sizes: ``a^{(y)}_k`` is Graves' ``a_k`` and ``w^{(hy)}_{hk}`` his
``w_{hk}``, since the indices tell the layers apart. The LSTM's gate weights keep their
labels (``w^{(x\\iota)}_{ic}`` and ``w^{(x\\phi)}_{ic}`` have the same sizes).

A symbol's own subscript that is the letter of its one unit index (``a_k`` for a
quantity over ``k``, ``b_c`` over ``c``) names the unit, not a label: the printer writes
the index in its place (``a_{k'}``), never both (``a_{k,k'}``).

The vector and matrix forms of the summary drop the unit indices, so there the labels
are kept, a two-index weight is a capital (``W^{(hy)}``) and a subscript that only
repeated the index is dropped where the letter stays unique (``\\delta_k`` → ``\\delta``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from chainrule.symbolic import Model, Quantity, Role


def _parts(tex: str) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
    from chainrule.codegen.backends.latex.printer import split_scripts

    parts = split_scripts(tex)
    return None if parts is None else (parts.stem, parts.sub, parts.sup)


def _compose(stem: str, sub: tuple[str, ...], sup: tuple[str, ...]) -> str:
    from chainrule.codegen.backends.latex.printer import Scripted

    return Scripted(stem, sub, sup).tex()


def is_label(script: str) -> bool:
    """Whether a superscript is a layer label in parentheses, ``(hy)``."""
    return script.startswith("(") and script.endswith(")")


def drop_redundant_labels(symbols: dict[str, str], sizes: dict[str, tuple[object, ...]]
                          ) -> dict[str, str]:
    """``symbols`` (quantity name → TeX) with each parenthesised superscript label dropped
    where no other symbol of the same letter and subscript has the same ``sizes``."""
    keys: dict[str, tuple[object, ...]] = {}
    for name, tex in symbols.items():
        parts = _parts(tex)
        if parts is not None:
            stem, sub, sup = parts
            keys[name] = (stem, sub, tuple(s for s in sup if not is_label(s)), sizes[name])
    result = dict(symbols)
    for name, key in keys.items():
        parts = _parts(symbols[name])
        assert parts is not None
        stem, sub, sup = parts
        if any(is_label(s) for s in sup) and sum(k == key for k in keys.values()) == 1:
            result[name] = _compose(stem, sub, tuple(s for s in sup if not is_label(s)))
    return result


def index_form_symbols(model: Model, declared: Callable[[Quantity], str]
                       ) -> tuple[dict[str, str], dict[str, str]]:
    """The symbols (quantity name → TeX) and adjoint symbols the notes print with indices."""
    quantities = list(model.quantities.values())
    sizes = {q.name: (tuple(q.sizes), q.time) for q in quantities}
    # an initial state is written without its time index: its label is what marks it
    symbols = {**drop_redundant_labels({q.name: declared(q) for q in quantities
                                        if q.role is not Role.STATE}, sizes),
               **{q.name: declared(q) for q in quantities if q.role is Role.STATE}}
    adjoints = drop_redundant_labels(
        {q.name: q.adjoint_latex for q in quantities if q.adjoint_latex}, sizes)
    return symbols, adjoints


def index_subscript(model: Model, quantity: Quantity, own_sub: tuple[str, ...],
                    index_tex: Callable[[object], str]) -> bool:
    """Whether ``own_sub``, a symbol's own subscript, is just the letter of ``quantity``'s one
    unit index (``a_k`` over ``k``): then the printed index takes its place."""
    if len(quantity.sizes) != 1 or len(own_sub) != 1:
        return False
    (unit,) = model.canonical_indices(quantity)[:1]
    return own_sub[0].strip() == index_tex(unit)


def vector_symbols(model: Model, declared: Callable[[Quantity], str],
                   index_tex: Callable[[object], str], *, adjoint: bool = False
                   ) -> dict[str, str]:
    """The symbols of the summary's vector and matrix forms, by quantity name."""
    chosen: dict[str, str] = {}
    for q in model.quantities.values():
        tex = q.adjoint_latex if adjoint else declared(q)
        if not tex:
            continue
        parts = _parts(tex)
        if parts is None:
            chosen[q.name] = tex
            continue
        stem, sub, sup = parts
        if index_subscript(model, q, sub, index_tex):
            sub = ()
        if len(q.sizes) == 2 and not adjoint and len(stem) == 1 and stem.islower():
            stem = stem.upper()
        chosen[q.name] = _compose(stem, sub, sup)
    # a dropped subscript comes back where the bare letter would name two quantities
    counts = _counts(chosen.values())
    for q in model.quantities.values():
        if q.name in chosen and counts[chosen[q.name]] > 1:
            chosen[q.name] = q.adjoint_latex if adjoint else declared(q)  # type: ignore[assignment]
    return chosen


def _counts(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


__all__ = ["drop_redundant_labels", "index_form_symbols", "index_subscript", "is_label",
           "vector_symbols"]
