"""examples/train_char_lstm.py, in short: a few Adam steps of the generated LSTM on the README
text lower the loss, and the loss curve is written as a PNG (when matplotlib is there)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests import torch_reference

pytestmark = pytest.mark.skipif(torch_reference.torch is None,
                                reason=torch_reference.SKIP_REASON)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_char_lstm.py"


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_char_lstm", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_short_training_run_lowers_the_loss(tmp_path: Path) -> None:
    train = example()
    losses, model, chars = train.train(30, hidden=16, T=16, B=8, lr=3e-2)
    assert losses[0] == pytest.approx(math.log(len(chars)), rel=0.05)  # about uniform
    assert np.mean(losses[-5:]) < losses[0] - 0.8, losses
    assert len(train.sample(model, chars, length=5)) >= 5
    written = train.plot(losses, tmp_path / "loss.png")
    if written is None:
        pytest.skip("matplotlib is not installed: the loss curve is not drawn "
                    "(pip install -e '.[examples]')")
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
