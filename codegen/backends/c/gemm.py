"""The C backend's CBLAS calls: a contraction that is a product of two matrices.

Role in DESIGN.md's picture: part of ``plan → c``, asked by ``statements.py`` about
each contraction. Each operand and the result must be a matrix in memory: its loop
indices fall into two blocks (rows, columns), each block flat (its axes contiguous
with each other) and the columns of stride 1, possibly transposed; a product of a
matrix and a vector is left to the loops. The answer is the arguments of
``cblas_?gemm`` (row-major, through ``chainrule_gemm``, bound to each precision's
routine) and the work ``m·n·k``; ``kernel.c.j2``'s ``CHAINRULE_GEMM`` makes the call
where the kernel is compiled with ``-DCHAINRULE_CBLAS`` and the work is above a
threshold, and the loops run otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import Expr, Idx, Indexed

from chainrule.codegen.backends.c.printer import KernelCPrinter, Layout
from chainrule.codegen.plan.types import Contract, Ref, matrix_product, ref_name

__all__ = ["gemm_call"]

#: one axis of a matrix view: (loop index, extent, stride)
Axis = tuple[Idx, Expr, Expr]
#: a matrix view: (&its first element, its axes)
View = tuple[str, list[Axis]]

_TRANSPOSE = {False: "CblasNoTrans", True: "CblasTrans"}


@dataclass(frozen=True)
class _Product:
    """``C = P·Q`` as CBLAS takes it: pointers, transposes, leading dimensions, m n k."""

    p: str
    q: str
    c: str
    p_trans: bool
    q_trans: bool
    lda: Expr
    ldb: Expr
    ldc: Expr
    extents: tuple[Expr, Expr, Expr]


def gemm_call(statement: Contract, out_loops: list[Idx], summed: list[Idx],
              printer: KernelCPrinter, layouts: dict[str, Layout],
              fixed: set[Idx]) -> tuple[str, str] | None:
    """``(m·n·k, the arguments of cblas_?gemm)`` when the contraction is a product of
    two matrices, over the loops ``out_loops`` (of the result) and ``summed``; the
    indices in ``fixed`` are bound by an enclosing loop."""
    if len(statement.operands) != 2 or not out_loops or not summed:
        return None
    views = [_matrix_view(r, printer, layouts, fixed)
             for r in (*statement.operands, statement.out)]
    if any(v is None for v in views):
        return None
    product = _product(*views, summed)  # type: ignore[arg-type]
    if product is None:
        return None
    return _print_call(product, statement.coefficient, printer, statement.accumulate)


def _matrix_view(ref: Ref, printer: KernelCPrinter, layouts: dict[str, Layout],
                 fixed: set[Idx]) -> View | None:
    """``(&first element, [(index, extent, stride)])`` of ``ref`` over its loop indices."""
    if not isinstance(ref, Indexed):
        return None
    layout = layouts[ref_name(ref)]
    first: list[Expr] = []  # the indices of the first element
    axes: list[Axis] = []
    for index, stride in zip(ref.indices, layout.strides, strict=True):
        loops = [s for s in index.free_symbols if isinstance(s, Idx) and s not in fixed]
        if not loops:
            first.append(index)
            continue
        if len(loops) != 1 or any(loops[0] == a[0] for a in axes):
            return None
        (loop,) = loops
        shift = sympy.expand(index - loop)
        if shift.has(Idx):
            return None
        first.append(loop.lower + shift)
        axes.append((loop, sympy.simplify(loop.upper - loop.lower + 1), stride))
    offset = printer.flat_index(layout, first)
    pointer = printer.pointer(layout)
    return (f"{pointer} + {offset}" if offset != "0" else pointer), axes


def _product(a: View, b: View, c: View, summed: list[Idx]) -> _Product | None:
    """``c = a·b`` (or ``b·a``) as a product of matrices summed over ``summed``, or None."""
    (a_ptr, a_axes), (b_ptr, b_axes), (c_ptr, c_axes) = a, b, c
    names = [[axis[0] for axis in axes] for axes in (a_axes, b_axes, c_axes)]
    product = matrix_product(*names)
    if product is None or set(product[1]) != set(summed):
        return None
    swapped, shared = product
    (p_ptr, p_axes), (q_ptr, q_axes) = ((b_ptr, b_axes), (a_ptr, a_axes)) if swapped \
        else ((a_ptr, a_axes), (b_ptr, b_axes))
    p_free = [a for a in p_axes if a[0] not in shared]
    q_free = [a for a in q_axes if a[0] not in shared]
    if not p_free or not q_free:  # a matrix times a vector: the loops do it
        return None
    p_shared = [a for a in p_axes if a[0] in shared]
    q_shared = [a for a in q_axes if a[0] in shared]
    # the summed axes must lie in the same order in both matrices to flatten into one
    if [a[0] for a in p_shared] != [a[0] for a in q_shared]:
        return None
    p_layout = _matrix(p_free, p_shared, p_axes)
    q_layout = _matrix(q_shared, q_free, q_axes)
    c_layout = _matrix(p_free, q_free, c_axes)
    if p_layout is None or q_layout is None or c_layout is None or c_layout[0]:
        return None
    (p_trans, lda), (q_trans, ldb), (_, ldc) = p_layout, q_layout, c_layout
    extents = (_size(p_free), _size(q_free), _size(p_shared))
    return _Product(p_ptr, q_ptr, c_ptr, p_trans, q_trans, lda, ldb, ldc, extents)


def _print_call(product: _Product, coefficient: Expr, printer: KernelCPrinter,
                accumulate: bool = False) -> tuple[str, str]:
    """``(m·n·k, the arguments of cblas_?gemm)`` for ``C = coefficient · P·Q`` (``C +=``
    with ``accumulate``: beta 1, which OpenBLAS takes as C itself, with no pass over it)."""
    m, n, k = (printer.doprint(e) for e in product.extents)
    alpha = printer.doprint(coefficient)
    arguments = (f"CblasRowMajor, {_TRANSPOSE[product.p_trans]}, "
                 f"{_TRANSPOSE[product.q_trans]}, {m}, {n}, {k}, {alpha}, {product.p}, "
                 f"{printer.doprint(product.lda)}, {product.q}, "
                 f"{printer.doprint(product.ldb)}, {1 if accumulate else 0}, {product.c}, "
                 f"{printer.doprint(product.ldc)}")
    printer.function("gemm")
    work = " * ".join(f"({printer.doprint(e)})" if isinstance(e, sympy.Mul | sympy.Add)
                      else printer.doprint(e) for e in product.extents)
    # m·n·k in double whatever the precision: a count compared with CHAINRULE_BLAS_MIN_WORK,
    # which a long could overflow
    return f"(double){work}", arguments


def _size(axes: list[Axis]) -> Expr:
    return sympy.Mul(*(extent for _, extent, _ in axes))


def _matrix(rows: list[Axis], cols: list[Axis], axes: list[Axis]) -> tuple[bool, Expr] | None:
    """``(transposed, leading dimension)`` if ``axes`` is the matrix rows × cols (or cols ×
    rows, transposed) in row-major memory; None if the blocks cannot be flattened."""
    names = [a[0] for a in axes]
    row_names, col_names = [a[0] for a in rows], [a[0] for a in cols]
    if names == row_names + col_names:
        transposed = False
    elif names == col_names + row_names:
        transposed = True
    else:
        return None
    # the blocks as this array lays them out (its own strides)
    outer, inner = axes[:len(axes) - len(cols if not transposed else rows)], \
        axes[len(axes) - len(cols if not transposed else rows):]
    if not _flat(inner) or not _flat(outer) or inner[-1][2] != 1:
        return None
    return transposed, outer[-1][2]


def _flat(block: list[Axis]) -> bool:
    """Whether consecutive axes of ``block`` are contiguous with each other."""
    return all(sympy.simplify(block[n][2] - block[n + 1][1] * block[n + 1][2]) == 0
               for n in range(len(block) - 1))
