"""Voxel coordinates as int64 keys, key lookup, and the kernel maps of the torch backend.

Everything here is vectorised torch code (CPU or CUDA) with no Python loop over voxels.

Coordinates are ``[b, x, y, z]`` rows. At tensor stride ``s`` every spatial coordinate is a multiple
of ``s`` (MinkowskiEngine's convention); downsampling maps ``c`` to ``floor(c / 2s) * 2s``.

A :class:`Packing` turns the coordinates of one stride into dense int64 keys
``((b * Ex + gx) * Ey + gy) * Ez + gz`` where ``g = c // s - origin`` is the grid index. The grid is
padded by one cell on every side, so a neighbour query ``g + d`` with ``|d| <= 1`` can never wrap into
another row, column or batch element: no bounds check is needed per query.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pcseg.sparse.offsets import kernel_offsets

#: Largest dense lookup grid (int32 cells, 128 MiB); bigger scenes fall back to ``searchsorted``.
DENSE_GRID_MAX_CELLS = 1 << 25
_INT64_SAFE = 1 << 62


@dataclass(frozen=True)
class Packing:
    """Dense int64 keys for the voxels of one stride.

    Attributes:
        stride: tensor stride s of the coordinates being packed.
        origin: (3,) int64, grid index of the padding cell below the smallest coordinate.
        extent: padded grid size (Ex, Ey, Ez).
        batch_size: number of batch elements B.
    """

    stride: int
    origin: torch.Tensor
    extent: tuple[int, int, int]
    batch_size: int

    @staticmethod
    def for_bounds(lo: torch.Tensor, hi: torch.Tensor, stride: int, batch_size: int) -> "Packing":
        """Packing that covers stride-1 bounds ``lo..hi`` (each (3,) int64) at ``stride``, padded by one."""
        glo = torch.div(lo, stride, rounding_mode="floor")
        ghi = torch.div(hi, stride, rounding_mode="floor")
        extent = tuple(int(v) for v in (ghi - glo + 3).tolist())
        cells = batch_size * extent[0] * extent[1] * extent[2]
        if cells >= _INT64_SAFE:
            raise OverflowError(
                f"voxel grid of {batch_size} x {extent} cells at stride {stride} does not fit int64 keys"
            )
        return Packing(stride, glo - 1, extent, batch_size)  # type: ignore[arg-type]

    @property
    def num_cells(self) -> int:
        return self.batch_size * self.extent[0] * self.extent[1] * self.extent[2]

    def pack(self, coords: torch.Tensor) -> torch.Tensor:
        """Keys of coordinates at this packing's stride.

        Args:
            coords: (N, 4) integer ``[b, x, y, z]``, spatial parts multiples of ``stride``.

        Returns:
            (N,) int64 keys.
        """
        c = coords.to(torch.int64)
        g = torch.div(c[:, 1:], self.stride, rounding_mode="floor") - self.origin.to(c.device)
        ex, ey, ez = self.extent
        return ((c[:, 0] * ex + g[:, 0]) * ey + g[:, 1]) * ez + g[:, 2]

    def unpack(self, keys: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`pack`: (N,) int64 keys -> (N, 4) int32 coordinates."""
        ex, ey, ez = self.extent
        gz = keys % ez
        rest = keys // ez
        gy = rest % ey
        rest = rest // ey
        gx = rest % ex
        b = rest // ex
        g = torch.stack([gx, gy, gz], dim=1) + self.origin.to(keys.device)
        return torch.cat([b[:, None], g * self.stride], dim=1).to(torch.int32)

    def offset_deltas(self, kernel_size: int) -> torch.Tensor:
        """(K,) int64 key difference of each canonical kernel offset (one grid cell per unit)."""
        d = kernel_offsets(kernel_size)
        _, ey, ez = self.extent
        return (d[:, 0] * ey + d[:, 1]) * ez + d[:, 2]


class KeyLookup:
    """Row number of each key: a dense int32 table for small grids, else sorted keys + searchsorted.

    Args:
        keys: (N,) int64 distinct keys; row ``i`` has key ``keys[i]``.
        num_cells: all keys (and all queries) lie in ``[0, num_cells)``.
        dense_limit: largest ``num_cells`` for which the dense table is used.
    """

    def __init__(self, keys: torch.Tensor, num_cells: int, dense_limit: int = DENSE_GRID_MAX_CELLS):
        n = keys.numel()
        self.num_rows = n
        if num_cells <= dense_limit:
            self.table: torch.Tensor | None = torch.full(
                (num_cells,), -1, dtype=torch.int32, device=keys.device
            )
            self.table[keys] = torch.arange(n, dtype=torch.int32, device=keys.device)
        else:
            self.table = None
            self.sorted_keys, self.order = torch.sort(keys)

    def find(self, queries: torch.Tensor, missing: int = -1) -> torch.Tensor:
        """Rows of ``queries`` (any shape, int64), ``missing`` where the key is absent."""
        if self.table is not None:
            rows = self.table[queries].to(torch.int64)
            if missing != -1:
                rows = torch.where(rows < 0, torch.full_like(rows, missing), rows)
            return rows
        if self.num_rows == 0:
            return torch.full_like(queries, missing)
        pos = torch.searchsorted(self.sorted_keys, queries).clamp_(max=self.num_rows - 1)
        found = self.sorted_keys[pos] == queries
        return torch.where(found, self.order[pos], torch.full_like(pos, missing))


def find_duplicate(keys: torch.Tensor) -> int | None:
    """Index of one row whose key occurs earlier too, or None if all keys are distinct."""
    if keys.numel() < 2:
        return None
    sorted_keys, order = torch.sort(keys, stable=True)
    dup = (sorted_keys[1:] == sorted_keys[:-1]).nonzero()
    if dup.numel() == 0:
        return None
    return int(order[int(dup[0, 0]) + 1])


@dataclass(frozen=True)
class DownsampleMap:
    """How the voxels at stride s (fine, N rows) fall into their parents at stride 2s (coarse, Nc rows).

    Attributes:
        coarse_coords: (Nc, 4) int32, sorted by key (batch, then x, y, z).
        slot: (N,) int64, ``parent * 8 + offset`` of every fine voxel (offset in the canonical 2x2x2 order).
        children: (Nc, 8) int64, fine row of each child slot; ``N`` (the zero padding row) where empty.
    """

    coarse_coords: torch.Tensor
    slot: torch.Tensor
    children: torch.Tensor


def submanifold_map(packing: Packing, keys: torch.Tensor, lookup: KeyLookup) -> torch.Tensor:
    """Neighbour table of a 3x3x3 submanifold convolution.

    Args:
        packing: packing of the stride.
        keys: (N,) int64 keys of the voxels.
        lookup: lookup built on ``keys``.

    Returns:
        (N, 27) int64; entry ``[i, k]`` is the row at ``coords[i] + offset_k * s``, or ``N`` if there is
        none (so that index N can point at a zero padding row).
    """
    deltas = packing.offset_deltas(3).to(keys.device)
    return lookup.find(keys[:, None] + deltas[None, :], missing=keys.numel())


def downsample_map(coords: torch.Tensor, fine: Packing, coarse: Packing) -> DownsampleMap:
    """Parents of the voxels ``coords`` (stride ``fine.stride``) at stride ``coarse.stride = 2 * fine.stride``."""
    s = fine.stride
    c = coords.to(torch.int64)
    coarse_keys = coarse.pack(c)  # packing floors c / 2s: the parent's grid cell
    unique_keys, parent = torch.unique(coarse_keys, sorted=True, return_inverse=True)
    bits = torch.remainder(torch.div(c[:, 1:], s, rounding_mode="floor"), 2)
    offset = (bits[:, 0] * 2 + bits[:, 1]) * 2 + bits[:, 2]
    slot = parent * 8 + offset
    n = coords.shape[0]
    children = torch.full((unique_keys.numel() * 8,), n, dtype=torch.int64, device=coords.device)
    children[slot] = torch.arange(n, device=coords.device)  # slots are distinct: no write collides
    return DownsampleMap(coarse.unpack(unique_keys), slot, children.view(-1, 8))
