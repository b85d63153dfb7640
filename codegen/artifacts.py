"""Every artifact of one model: the stage list of DESIGN.md's picture in one function.

    model ──derive()──> Derivation ──lower()──> Plan ──render_numpy()──> <net>.py
                                   └──render_tex()─────────────────────> <net>.tex

``render`` returns ``{file name: text}``; writing is ``writer.py``'s job.
"""

from __future__ import annotations

from symbolic import Model, derive

from .lower import lower
from .numpy_backend import render_numpy


def render(model: Model, *, source: str | None = None) -> dict[str, str]:
    """The generated files of ``model``, by name within its folder (``mlp.py``, ...)."""
    derivation = derive(model)
    plan = lower(derivation, source=source)
    files = {f"{model.name}.py": render_numpy(plan)}
    try:
        from .latex_backend import render_tex
    except ImportError:  # the LaTeX backend is being written alongside
        pass
    else:
        files[f"{model.name}.tex"] = render_tex(derivation)
    return files
