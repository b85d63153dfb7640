"""The C kernel's ``sizes`` array follows the model, whatever its sizes are called.

The C object used to build its ``sizes`` order with a literal ``"T"``: a spec whose
time size is ``N`` passed on NumPy and made the C kernel read past the end of its
``sizes`` array (``MemoryError: Unable to allocate 64.1 PiB``). Here both backends run
against finite differences on such specs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chainrule.codegen.app.check import check_model
from chainrule.codegen.backends.c.loader import find_compiler
from chainrule.symbolic.spec import loads_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _compiler() -> bool:
    try:
        find_compiler()
    except Exception:
        return False
    return True


needs_cc = pytest.mark.skipif(not _compiler(), reason="no C compiler (apt-get install gcc)")

RNN = (EXAMPLES / "rnn.toml").read_text()
VARIANTS = {
    "time size N": RNN.replace('time = { index = "t", size = "T" }',
                               'time = { index = "t", size = "N" }'),
    "sizes in another order": RNN.replace('sizes = ["I", "H", "K"]', 'sizes = ["K", "H", "I"]'),
    "both": RNN.replace('time = { index = "t", size = "T" }', 'time = { index = "t", size = "N" }')
               .replace('sizes = ["I", "H", "K"]', 'sizes = ["K", "I", "H"]'),
}


@needs_cc
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_both_backends_take_any_size_names_and_order(variant: str) -> None:
    text = VARIANTS[variant]
    assert text != RNN
    model = loads_spec(text, filename=f"rnn ({variant}).toml")
    report = check_model(model, source=f"rnn ({variant})")
    assert report.ok, report.table()
    assert set(report.errors) == {"numpy", "c"} and not report.skipped, report.table()
