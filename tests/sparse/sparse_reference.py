"""Reference implementations for the sparse tests: dense conv3d on a zero-filled grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pcseg.utils.rng import torch_generator


def random_coords(
    seed: int, batch: int, size: int, count: int, stride: int = 1, low: int = 0
) -> torch.Tensor:
    """Distinct (M, 4) int32 coordinates in ``[low, low + size * stride)`` that are multiples of ``stride``
    (relative to 0), about ``count`` per batch element."""
    g = torch_generator(seed, "coords", batch, size, count)
    rows = []
    for b in range(batch):
        pts = torch.randint(0, size, (count, 3), generator=g)
        pts = torch.unique(pts, dim=0)
        rows.append(torch.cat([torch.full((len(pts), 1), b), pts * stride + low], dim=1))
    coords = torch.cat(rows)
    perm = torch.randperm(len(coords), generator=g)  # rows in no particular order
    return coords[perm].to(torch.int32)


def random_feats(seed: int, rows: int, channels: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(rows, channels, generator=torch_generator(seed, "feats", rows, channels)).to(dtype)


def random_weight(seed: int, kernel_volume: int, c_in: int, c_out: int, dtype=torch.float64) -> torch.Tensor:
    g = torch_generator(seed, "weight", kernel_volume, c_in, c_out)
    return (torch.randn(kernel_volume, c_in, c_out, generator=g) / (kernel_volume * c_in) ** 0.5).to(dtype)


def to_dense(coords: torch.Tensor, feats: torch.Tensor, stride: int, batch: int, shape: int) -> torch.Tensor:
    """(B, C, S, S, S) grid with ``feats`` at ``coords / stride`` (coords >= 0) and zeros elsewhere."""
    grid = feats.new_zeros(batch, feats.shape[1], shape, shape, shape)
    c = coords.long()
    idx = c[:, 1:] // stride
    grid[c[:, 0], :, idx[:, 0], idx[:, 1], idx[:, 2]] = feats
    return grid


def from_dense(grid: torch.Tensor, coords: torch.Tensor, stride: int) -> torch.Tensor:
    c = coords.long()
    idx = c[:, 1:] // stride
    return grid[c[:, 0], :, idx[:, 0], idx[:, 1], idx[:, 2]]


def canonical_to_conv3d(weight: torch.Tensor, k: int) -> torch.Tensor:
    """(K, C_in, C_out) -> conv3d weight (C_out, C_in, k, k, k)."""
    return weight.reshape(k, k, k, weight.shape[1], weight.shape[2]).permute(4, 3, 0, 1, 2)


def canonical_to_conv_transpose3d(weight: torch.Tensor, k: int) -> torch.Tensor:
    """(K, C_in, C_out) -> conv_transpose3d weight (C_in, C_out, k, k, k)."""
    return weight.reshape(k, k, k, weight.shape[1], weight.shape[2]).permute(3, 4, 0, 1, 2)


def dense_submanifold(coords, feats, weight, stride, batch, shape):
    grid = to_dense(coords, feats, stride, batch, shape)
    out = F.conv3d(grid, canonical_to_conv3d(weight, 3), padding=1)
    return from_dense(out, coords, stride)


def dense_downsample(coords, feats, weight, stride, batch, shape, out_coords):
    grid = to_dense(coords, feats, stride, batch, shape)
    out = F.conv3d(grid, canonical_to_conv3d(weight, 2), stride=2)
    return from_dense(out, out_coords, 2 * stride)


def dense_upsample(coarse_coords, coarse_feats, weight, coarse_stride, batch, coarse_shape, fine_coords):
    grid = to_dense(coarse_coords, coarse_feats, coarse_stride, batch, coarse_shape)
    out = F.conv_transpose3d(grid, canonical_to_conv_transpose3d(weight, 2), stride=2)
    return from_dense(out, fine_coords, coarse_stride // 2)
