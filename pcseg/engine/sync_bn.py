"""Batch norm synchronised across processes, on any device.

torch's ``SyncBatchNorm`` only runs on GPUs. For CPU (gloo) runs — and to make a 2-process run
compute exactly what one process computes with the same global batch — ``DistributedBatchNorm``
computes the batch statistics over all ranks with ``torch.distributed.nn.functional.all_reduce``,
which is differentiable (its backward all-reduces the gradients), so the normalisation and its
gradient are those of one big batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(t, op=dist.ReduceOp.SUM)


class DistributedBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over (N, C) rows whose training statistics span every rank.

    Accepts a plain (N, C) tensor or a sparse tensor (anything with ``feats``/``replace_feats``,
    e.g. ``pcseg.sparse.SparseTensor``), whose feature rows it normalises.
    """

    def forward(self, x):
        if hasattr(x, "replace_feats"):
            return x.replace_feats(self._normalise(x.feats))
        return self._normalise(x)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C)
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # upcast half precision only
        n_local = torch.tensor([float(xf.shape[0])], device=x.device)
        count = _all_reduce(n_local.clone())
        mean = _all_reduce(xf.sum(0)) / count
        var = _all_reduce(((xf - mean) ** 2).sum(0)) / count  # biased, as BN normalises with
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                if self.num_batches_tracked is not None:
                    self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * unbiased.detach())
        y = (xf - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        return y.to(x.dtype)


def convert_to_distributed_bn(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm1d`` (not already synchronised) by a ``DistributedBatchNorm`` with the
    same parameters and buffers; returns the converted module."""
    if isinstance(module, nn.BatchNorm1d) and not isinstance(module, DistributedBatchNorm):
        ref = next(iter(module.state_dict().values()), None)
        new = DistributedBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                   module.track_running_stats,
                                   device=ref.device if ref is not None else None,
                                   dtype=module.weight.dtype if module.affine else None)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in list(module.named_children()):
        setattr(module, name, convert_to_distributed_bn(child))
    return module
