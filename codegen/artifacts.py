"""Every artifact of one model: the stage list of DESIGN.md's picture in one function.

    model ──derive()──> Derivation ──lower()──> Plan ──numpy──> <net>.py
                             │                        └─c──────> <net>.c, <net>.h
                             └──────────────latex────────────> <net>.tex

``render`` returns ``{file name: text}``, every backend of ``registry.BACKENDS`` in
turn; writing is ``writer.py``'s job. The kernel files (``.py``, ``.c``, ``.h``) are
sealed as one set (``kernel_set.seal``): each header carries a hash of the whole set,
so ``codegen.load`` refuses a ``.py`` of one run beside the ``.c`` of another. The
notes (``.tex``) are not in the set: no kernel reads them, and the folder is replaced
as a whole anyway (``writer.write_atomically``).
"""

from __future__ import annotations

from chainrule.codegen.kernel_set import seal
from chainrule.codegen.plan.lower import lower
from chainrule.codegen.registry import BACKENDS
from chainrule.codegen.worked_example import run_example
from chainrule.symbolic import Model, derive


def render(model: Model, *, source: str | None = None) -> dict[str, str]:
    """The generated files of ``model``, by name within its folder (``mlp.py``, ...)."""
    derivation = derive(model)
    plan = lower(derivation, source=source)
    files: dict[str, str] = {}
    for backend in BACKENDS:
        if backend.name == "latex":  # the notes print the NumPy kernel's worked example
            rendered = backend.render(derivation, plan, example=run_example(derivation))
        else:
            rendered = backend.render(derivation, plan)
        clash = sorted(set(files) & set(rendered))
        if clash:
            raise ValueError(f"the {backend.name} backend renders {', '.join(clash)}, which "
                             f"another backend renders too")
        files.update(rendered)
    return seal(files)
