"""Every artifact of one model: the stage list of DESIGN.md's picture in one function.

    model ──derive()──> Derivation ──lower()──> Plan ──render_numpy()──> <net>.py
                                   │                  └──render_c()────> <net>.c, <net>.h
                                   └──render_tex()─────────────────────> <net>.tex

``render`` returns ``{file name: text}``; writing is ``writer.py``'s job. The kernel
files (``.py``, ``.c``, ``.h``) are sealed as one set (``loader.seal``): each header
carries a hash of the whole set, so ``codegen.load`` refuses a ``.py`` of one run
beside the ``.c`` of another. The notes (``.tex``) are not in the set: no kernel reads
them, and the folder is replaced as a whole anyway (``writer.write_atomically``).
"""

from __future__ import annotations

from chainrule.codegen.backends.c.backend import render_c
from chainrule.codegen.backends.latex.backend import render_tex
from chainrule.codegen.backends.numpy.backend import render_numpy
from chainrule.codegen.loader import seal
from chainrule.codegen.plan.lower import lower
from chainrule.symbolic import Model, derive


def render(model: Model, *, source: str | None = None) -> dict[str, str]:
    """The generated files of ``model``, by name within its folder (``mlp.py``, ...)."""
    derivation = derive(model)
    plan = lower(derivation, source=source)
    return seal({f"{model.name}.py": render_numpy(plan), **render_c(plan),
                 f"{model.name}.tex": render_tex(derivation)})
