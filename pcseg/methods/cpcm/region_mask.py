"""RegionMask: CPCM's grid mask over the input features of a scene (cpcm_hpal.md §5.2).

Each axis of a scene's integer voxel coordinates is cut into ``G`` intervals holding about the same
number of *distinct occupied* coordinate values; the ``G³`` axis-aligned cells formed by these cuts
are half-open ``(lower, upper]`` boxes. ``⌊ratio·G³⌋`` cells are drawn uniformly without replacement
(empty cells count) and every feature channel of the voxels inside them is set to 0, while the
coordinates stay untouched. The boundary conventions are the official code's:

- voxels on the first pivot (the smallest coordinate of an axis) are never masked (lower bound exclusive);
- when an axis has ``n`` distinct values and ``G`` does not divide ``n``, the values above the last
  pivot ``U[G·⌊n/G⌋]`` are never masked either;
- an axis with fewer than ``G`` distinct values has all pivots equal, so nothing in that scene is masked.

The draw is keyed by ``(seed, "region_mask", iteration, scene)`` so that a resumed or distributed run
masks exactly the same cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from pcseg.utils.rng import numpy_rng


def num_masked_cells(grid_size: int, ratio: float) -> int:
    """``⌊ratio·G³⌋``: how many of the ``G³`` cells are masked (48 of 64 for G=4, 384 of 512 for G=8)."""
    if grid_size < 1:
        raise ValueError(f"mask grid size must be >= 1, got {grid_size}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must be in [0, 1], got {ratio}")
    # The small tolerance keeps e.g. 0.75·64 = 48 exact despite binary floating point.
    return int(math.floor(ratio * grid_size**3 + 1e-9))


def axis_pivots(values: torch.Tensor, grid_size: int) -> torch.Tensor:
    """The ``G + 1`` cut positions of one axis: ``U[min(i·⌊n/G⌋, n−1)]`` for ``i = 0..G``.

    Args:
        values: (M,) integer coordinates of the scene's voxels along one axis (M >= 1).
        grid_size: G.

    Returns:
        (G + 1,) non-decreasing pivots taken from the sorted distinct values ``U`` (``n = |U|``).
    """
    distinct = torch.unique(values, sorted=True)
    n = distinct.numel()
    stride = n // grid_size
    positions = torch.clamp(torch.arange(grid_size + 1, device=values.device) * stride, max=n - 1)
    return distinct[positions]


def cell_index(grid_coord: torch.Tensor, grid_size: int) -> torch.Tensor:
    """The RegionMask cell of every voxel, or −1 for voxels that lie in no cell.

    Args:
        grid_coord: (M, 3) integer voxel coordinates of one scene.
        grid_size: G.

    Returns:
        (M,) int64 cell id ``(i·G + j)·G + k`` for the voxel in ``(x_i, x_{i+1}] × (y_j, y_{j+1}] × (z_k, z_{k+1}]``,
        −1 if some coordinate is <= the first pivot or > the last one of its axis.
    """
    if grid_coord.ndim != 2 or grid_coord.shape[1] != 3:
        raise ValueError(f"grid_coord must be (M, 3), got {tuple(grid_coord.shape)}")
    cell = torch.zeros(grid_coord.shape[0], dtype=torch.long, device=grid_coord.device)
    inside = torch.ones(grid_coord.shape[0], dtype=torch.bool, device=grid_coord.device)
    if grid_coord.shape[0] == 0:
        return cell
    for axis in range(3):
        values = grid_coord[:, axis].contiguous()
        pivots = axis_pivots(values, grid_size)
        # First pivot >= value, minus one: the interval (p[i], p[i+1]] that holds the value. Repeated
        # pivots give empty intervals, and searchsorted(left) skips them as it should.
        interval = torch.searchsorted(pivots, values, right=False) - 1
        inside &= (interval >= 0) & (interval < grid_size)
        cell = cell * grid_size + interval.clamp(0, grid_size - 1)
    return torch.where(inside, cell, torch.full_like(cell, -1))


def draw_masked_cells(grid_size: int, ratio: float, seed: int, iteration: int, scene: str) -> torch.Tensor:
    """The cells to mask for one scene at one training step: ``⌊ratio·G³⌋`` distinct ids in ``[0, G³)``.

    Returns:
        (K,) int64, sorted.
    """
    k = num_masked_cells(grid_size, ratio)
    rng = numpy_rng(seed, "region_mask", iteration, scene)
    chosen = rng.permutation(grid_size**3)[:k]
    return torch.from_numpy(chosen).long().sort().values


def region_mask(grid_coord: torch.Tensor, masked_cells: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Which voxels of one scene fall in the chosen cells.

    Args:
        grid_coord: (M, 3) integer voxel coordinates.
        masked_cells: (K,) cell ids from :func:`draw_masked_cells`.
        grid_size: G.

    Returns:
        (M,) bool, True for voxels whose features are to be zeroed.
    """
    cells = cell_index(grid_coord, grid_size)
    chosen = torch.zeros(grid_size**3 + 1, dtype=torch.bool, device=grid_coord.device)
    chosen[masked_cells.to(grid_coord.device)] = True
    return chosen[torch.where(cells >= 0, cells, torch.full_like(cells, grid_size**3))]


@dataclass
class MaskedView:
    """A batch view with RegionMask applied.

    Attributes:
        feat: (M, C) input features, zero in masked voxels (a new tensor; the view's own is untouched).
        mask: (M,) bool, the masked voxels.
    """

    feat: torch.Tensor
    mask: torch.Tensor

    @property
    def masked_fraction(self) -> float:
        return float(self.mask.float().mean()) if self.mask.numel() else 0.0


def mask_batch(
    coords: torch.Tensor,
    feat: torch.Tensor,
    offset: torch.Tensor,
    scenes: Sequence[str],
    grid_size: int,
    ratio: float,
    seed: int,
    iteration: int,
) -> MaskedView:
    """Apply RegionMask to every scene of a collated batch (contracts §3).

    Args:
        coords: (M, 4) int ``[b, x, y, z]`` voxel coordinates, rows of scene b contiguous.
        feat: (M, C) input features.
        offset: (B,) cumulative voxel counts per scene.
        scenes: the B scene names (mask draws are keyed by them).
        grid_size, ratio: G and the masked fraction of cells.
        seed, iteration: the run seed and the global step.

    Returns:
        MaskedView with the masked copy of ``feat`` and the voxel mask.
    """
    if len(scenes) != offset.numel():
        raise ValueError(f"{len(scenes)} scene names for {offset.numel()} scenes in the batch")
    mask = torch.zeros(coords.shape[0], dtype=torch.bool, device=coords.device)
    ends = offset.tolist()
    start = 0
    for scene, end in zip(scenes, ends):
        if end > start:
            cells = draw_masked_cells(grid_size, ratio, seed, iteration, scene)
            mask[start:end] = region_mask(coords[start:end, 1:4], cells, grid_size)
        start = end
    masked_feat = feat.masked_fill(mask[:, None], 0.0)
    return MaskedView(feat=masked_feat, mask=mask)
