"""The built-in networks: ordinary users of the public model API.

``BUILTINS`` maps each network's name to a function that builds its Model. ``BOOK``
names the built-ins the combined notes book holds by default: Graves' chapters (the
MLP, the RNN and the LSTM with and without peepholes); every built-in has its own
notes all the same.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import Model
from . import blstm, brnn, lstm, mlp, rnn

BUILTINS: dict[str, Callable[[], Model]] = {
    "mlp": mlp.build,
    "rnn": rnn.build,
    "lstm": lstm.build,
    "lstm_no_peepholes": lambda: lstm.build(peepholes=False),
    "brnn": brnn.build,
    "blstm": blstm.build,
}

#: The built-ins ``chainrule notes`` puts in the combined book when given no names.
BOOK: tuple[str, ...] = ("mlp", "rnn", "lstm", "lstm_no_peepholes")

__all__ = ["BOOK", "BUILTINS", "blstm", "brnn", "lstm", "mlp", "rnn"]
