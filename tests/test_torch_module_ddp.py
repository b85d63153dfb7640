"""``kernel.torch(...)`` under DistributedDataParallel: two CPU processes (gloo), each on half
the batch, end with the gradients one process computes on the whole batch.

The kernels' loss is a sum over the batch while DDP averages the gradients of its
processes, so each process multiplies its loss by the world size (the README says so).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from chainrule import codegen
from tests import torch_reference

torch = torch_reference.torch
pytestmark = pytest.mark.skipif(torch is None, reason=torch_reference.SKIP_REASON)

GENERATED = Path(__file__).resolve().parents[1] / "generated"
WORLD = 2
SIZES = {"I": 3, "H": 4, "K": 3}
T, B = 4, 6


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(T, B, SIZES["I"])), rng.integers(0, SIZES["K"], size=(T, B))


def _worker(rank: int, init_file: str, out: str) -> None:
    """One process: its half of the batch through DDP, then its gradients to ``out``."""
    from torch.nn.parallel import DistributedDataParallel

    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}",
                                         rank=rank, world_size=WORLD)
    try:
        module = codegen.load(GENERATED / "rnn").torch(SIZES, rng=0, dtype=torch.float64)
        model = DistributedDataParallel(module)
        x, z = _data()
        half = slice(rank * B // WORLD, (rank + 1) * B // WORLD)
        loss = model(torch.from_numpy(x[:, half]), torch.from_numpy(z[:, half])) * WORLD
        loss.backward()
        np.savez(Path(out) / f"rank{rank}.npz",
                 **{name: p.grad.numpy() for name, p in module.named_parameters()})
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_give_the_gradients_of_one(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if not torch.distributed.is_available():
        pytest.skip("this PyTorch build has no torch.distributed")
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    torch.multiprocessing.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)),
                                nprocs=WORLD, join=True)
    kernel = codegen.load(GENERATED / "rnn")
    x, z = _data()
    _, whole = kernel.loss_and_grad(kernel.init_params(SIZES, rng=0), x, z)
    for rank in range(WORLD):
        grads = np.load(tmp_path / f"rank{rank}.npz")
        for name in kernel.PARAMS:
            np.testing.assert_allclose(grads[name], whole[name], rtol=1e-12, atol=1e-14,
                                       err_msg=f"rank {rank}: {name}")
