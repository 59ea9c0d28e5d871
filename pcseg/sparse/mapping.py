"""Voxel rows -> original points."""

from __future__ import annotations

import torch


def voxel_to_point(feats: torch.Tensor, inverse: torch.Tensor, fill_value: float = 0.0) -> torch.Tensor:
    """Give every original point the row of its voxel.

    Args:
        feats: (M, C) per-voxel values (logits, features, ...).
        inverse: (N,) integer voxel row of each point, -1 for a point whose voxel was dropped
            (the ``inverse`` of a collated batch, contracts §3).
        fill_value: value of the rows of points with ``inverse == -1``.

    Returns:
        (N, C) tensor on ``feats``' device, differentiable with respect to ``feats``.

    Raises:
        ValueError: ``inverse`` is not 1-D, not integer, or holds a row outside ``[-1, M)``.
    """
    if inverse.dim() != 1 or inverse.dtype.is_floating_point or inverse.dtype == torch.bool:
        raise ValueError(
            f"inverse must be a 1-D integer tensor, got shape {tuple(inverse.shape)} {inverse.dtype}"
        )
    if feats.dim() != 2:
        raise ValueError(f"feats must have shape (M, C), got {tuple(feats.shape)}")
    inverse = inverse.to(device=feats.device, dtype=torch.int64)
    if inverse.numel() and (int(inverse.min()) < -1 or int(inverse.max()) >= feats.shape[0]):
        raise ValueError(
            f"inverse holds voxel rows in [{int(inverse.min())}, {int(inverse.max())}] but there are "
            f"{feats.shape[0]} voxels (valid: -1 .. {feats.shape[0] - 1})"
        )
    valid = inverse >= 0
    out = feats.index_select(0, inverse.clamp(min=0))
    if bool(valid.all()):
        return out
    return torch.where(valid[:, None], out, torch.full_like(out, fill_value))
