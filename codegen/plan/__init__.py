"""The plan stage of DESIGN.md's picture: Derivation → Plan, backend-neutral.

- ``types.py``: the plan's arrays and statement kinds (what every backend prints);
- ``lower.py``: ``lower(Derivation) → Plan``, the one place equations become statements;
- ``schedule.py``: a recurrent phase split around one loop over time;
- ``fuse.py``: contractions that share an operand fused into one;
- ``accumulate.py``: a product adding into the sum that reads it (run by a backend whose
  products can, the C one);
- ``transpose.py``: a transposed copy of a concatenated weight that a loop's product
  reads transposed (run by a backend whose library packs operands per call, the C one);
- ``lifetimes.py``, ``cse.py``, ``contract.py``: what lives how long, common
  subexpressions, the kernel contract.

It imports ``chainrule.symbolic`` and never a backend.
"""
