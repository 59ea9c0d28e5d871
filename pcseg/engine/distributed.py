"""torch.distributed plumbing for `torchrun`: process group, rank helpers, rank-0-only writes.

Launch with ``torchrun --nproc_per_node=N -m pcseg.cli.main train <experiment>`` (or the `pcseg`
console script as the torchrun program). NCCL on GPUs, gloo on CPU.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_spec: str = "auto") -> DistInfo:
    """Join the process group that torchrun describes in the environment (no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and not str(device_spec).startswith("cpu")
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank)


def current() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                        local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks (no-op when not distributed); returns ``t``."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj, src: int = 0):
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        holder = [obj]
        dist.broadcast_object_list(holder, src=src)
        return holder[0]
    return obj


def all_gather_objects(obj) -> list:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        out = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def cleanup(sync: bool = True) -> None:
    """Leave the process group in step with the other ranks, before the interpreter shuts down.

    Order matters (a 2-process `pcseg al` aborted with "terminate called without an active
    exception" in CI without it): a barrier so no rank tears its connections down while another still
    talks to it; a garbage collection so the DDP wrappers of finished rounds release their reference to
    the group; then the group itself is destroyed while Python is fully alive. Exiting with a live gloo
    group leaves its C++ threads to be torn down during interpreter finalisation, which aborts.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    import gc

    try:
        if sync:
            dist.barrier()
    finally:
        gc.collect()
        dist.destroy_process_group()


@contextmanager
def process_group_scope() -> Iterator[None]:
    """Run a command that may join torchrun's group; leave the group on the way out (see `cleanup`)."""
    try:
        yield
    except BaseException:
        cleanup(sync=False)
        raise
    cleanup()
