"""The built-in networks: ordinary users of the public model API.

``BUILTINS`` maps each network's name to a function that builds its Model.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import Model
from . import mlp

BUILTINS: dict[str, Callable[[], Model]] = {
    "mlp": mlp.build,
}

__all__ = ["BUILTINS", "mlp"]
