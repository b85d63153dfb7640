"""Every artifact of one model: the stage list of DESIGN.md's picture in one function.

    model ──derive()──> Derivation ──lower()──> Plan ──render_numpy()──> <net>.py
                                   │                  └──render_c()────> <net>.c, <net>.h
                                   └──render_tex()─────────────────────> <net>.tex

``render`` returns ``{file name: text}``; writing is ``writer.py``'s job.
"""

from __future__ import annotations

from symbolic import Model, derive

from .c_backend import render_c
from .latex_backend import render_tex
from .lower import lower
from .numpy_backend import render_numpy


def render(model: Model, *, source: str | None = None) -> dict[str, str]:
    """The generated files of ``model``, by name within its folder (``mlp.py``, ...)."""
    derivation = derive(model)
    plan = lower(derivation, source=source)
    return {f"{model.name}.py": render_numpy(plan), **render_c(plan),
            f"{model.name}.tex": render_tex(derivation)}
