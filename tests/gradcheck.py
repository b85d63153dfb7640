"""Central finite differences of a kernel's loss, in float64: the oracle every test shares.

It is the one ``chainrule check`` runs (``codegen/check.py``), so the tests and the
command hold the kernels to the same formula and the same tolerance.
"""

from chainrule.codegen.app.check import finite_difference_errors

__all__ = ["finite_difference_errors"]
