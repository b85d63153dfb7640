"""The built-in networks: ordinary users of the public model API.

``BUILTINS`` maps each network's name to a function that builds its Model.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import Model
from . import lstm, mlp, rnn

BUILTINS: dict[str, Callable[[], Model]] = {
    "mlp": mlp.build,
    "rnn": rnn.build,
    "lstm": lstm.build,
    "lstm_no_peepholes": lambda: lstm.build(peepholes=False),
}

__all__ = ["BUILTINS", "lstm", "mlp", "rnn"]
