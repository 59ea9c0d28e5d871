"""Gradient-level check of the distributed training path in float64: DDP + synchronised batch norm +
globally normalised cross-entropy over 2 gloo processes equals one process holding both scenes."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pcseg.data.collate import collate
from pcseg.data.dataset import SegmentationDataset
from pcseg.engine.sync_bn import convert_to_distributed_bn
from pcseg.methods.base import StepContext
from pcseg.methods.supervised import SupervisedMethod
from pcseg.models import build_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch(root: str, idx: list[int]):
    ds = SegmentationDataset(root, "train", 0.2, "rgb", augment="cpcm_scannet", num_views=1, seed=4)
    b = collate([ds[i] for i in idx])
    b["feat"] = b["feat"].double()
    return b


def _grads(model, batch, ctx) -> dict[str, torch.Tensor]:
    method = SupervisedMethod(num_classes=20)
    loss = method.training_step(model, batch, ctx).loss
    loss.backward()
    mod = model.module if hasattr(model, "module") else model
    return {k: p.grad.detach().clone() for k, p in mod.named_parameters()}


def _worker(rank: int, port: int, root: str, state: dict, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = build_model("res16unet34c", 3, 20, width=0.125).double()
    model.load_state_dict(state)
    model = torch.nn.parallel.DistributedDataParallel(convert_to_distributed_bn(model), broadcast_buffers=False)

    def reducer(n: int) -> int:
        t = torch.tensor([n])
        dist.all_reduce(t)
        return int(t)

    ctx = StepContext(iteration=0, epoch=0, max_iterations=1, iters_per_epoch=1, seed=4, world_size=2,
                      count_reducer=reducer)
    g = _grads(model, _batch(root, [rank]), ctx)
    if rank == 0:
        out.update({k: v.numpy() for k, v in g.items()})
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_gradients_equal_single_process_in_float64(tiny_synthetic):
    root = str(tiny_synthetic / "scannet")
    torch.manual_seed(0)
    model = build_model("res16unet34c", 3, 20, width=0.125).double()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = StepContext(iteration=0, epoch=0, max_iterations=1, iters_per_epoch=1, seed=4)
    ref = _grads(model, _batch(root, [0, 1]), ctx)

    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(_free_port(), root, state, out), nprocs=2, join=True)
        got = dict(out)
    assert got.keys() == ref.keys()
    for k, g in ref.items():
        np.testing.assert_allclose(got[k], g.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
