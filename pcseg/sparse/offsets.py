"""Kernel offsets: the one canonical order in which every pcseg kernel is stored.

A kernel of size ``k`` (``k`` = 3 for submanifold convolutions, 2 for the stride-2 down/up
convolutions, 1 for point-wise layers) is stored as a tensor of shape ``(k**3, C_in, C_out)``.
Row ``i`` belongs to the offset ``(ix, iy, iz)`` with

    i = (ix * k + iy) * k + iz        # x slowest, z fastest

which is the order of ``torch.nn.functional.conv3d`` weights ``(C_out, C_in, kx, ky, kz)`` flattened
over the three kernel axes when the coordinate columns ``x, y, z`` are the dense axes ``D, H, W``.

The offset itself, in units of the tensor stride ``s``:
- odd ``k`` (3): ``d = index - k // 2``, i.e. -1, 0, +1 (centred);
- even ``k`` (2): ``d = index``, i.e. 0, +1 (the voxel and its upper neighbours), as in MinkowskiEngine
  and ``conv3d`` with stride 2: the coarse voxel ``u`` (a multiple of ``2s``) gathers ``u + d * s``.

MinkowskiEngine enumerates the same offsets x-fastest (``i_me = ix + k * iy + k**2 * iz``);
:func:`minkowski_permutation` converts between the two (the permutation is its own inverse).
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=None)
def _offsets(kernel_size: int) -> tuple[tuple[int, int, int], ...]:
    shift = kernel_size // 2 if kernel_size % 2 == 1 else 0
    return tuple(
        (ix - shift, iy - shift, iz - shift)
        for ix in range(kernel_size)
        for iy in range(kernel_size)
        for iz in range(kernel_size)
    )


def kernel_offsets(kernel_size: int) -> torch.Tensor:
    """Offsets of a cubic kernel in the canonical order.

    Args:
        kernel_size: edge length k of the cube (1, 2 or 3).

    Returns:
        (k**3, 3) int64 tensor of ``(dx, dy, dz)`` in units of the tensor stride.
    """
    return torch.tensor(_offsets(kernel_size), dtype=torch.int64)


def mirror_permutation(kernel_size: int) -> torch.Tensor:
    """Index ``j`` such that offset ``j`` is the negation of offset ``i`` (odd kernels only).

    For the canonical order of an odd kernel this is simply ``k**3 - 1 - i``.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"an even kernel ({kernel_size}) has no mirrored offsets")
    return torch.arange(kernel_size**3 - 1, -1, -1)


def minkowski_permutation(kernel_size: int) -> torch.Tensor:
    """Permutation ``p`` with ``W_minkowski = W_canonical[p]`` (and ``W_canonical = W_minkowski[p]``).

    MinkowskiEngine's row ``ix + k*iy + k*k*iz`` holds canonical row ``(ix*k + iy)*k + iz``.
    """
    k = kernel_size
    return torch.arange(k**3).reshape(k, k, k).permute(2, 1, 0).reshape(-1)
