"""Grid sampling (voxelisation): one representative point per occupied voxel.

Representative rules:
- ``"first"``: the first point of the voxel in array order (HPAL / torchsparse ``sparse_quantize``;
  also what ``np.unique(return_index=True)`` gives). Deterministic.
- ``"random"``: a uniformly random point of the voxel (Pointcept's training-time GridSample).

Both are "official" in that they ignore labels: a labelled point survives only if it happens to be
its voxel's representative (CPCM loses 10-80 % of its weak labels this way, spec §1.3). With
``retain_labels=True`` every voxel that contains a labelled point takes a labelled point as its
representative (the Pointcept / CPCM ``retain_label`` behaviour); the only labels still lost are
labelled points sharing a voxel with another labelled point, which :class:`Voxelization` counts.

Voxel rows are sorted by their packed grid key (x-major), like MinkowskiEngine's quantisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("first", "random")


@dataclass
class Voxelization:
    """Result of :func:`voxelize`.

    Attributes:
        grid_coord: (M, 3) int32 voxel coordinates, minimum 0 on every axis.
        point_index: (M,) int64 index of each voxel's representative point.
        inverse: (N,) int64 voxel row of every input point.
        labelled_total: labelled input points.
        labelled_kept: voxels whose representative is labelled (= labels that reach the loss).
        labelled_merged: labelled points in a voxel that already has another labelled point.
    """

    grid_coord: np.ndarray
    point_index: np.ndarray
    inverse: np.ndarray
    labelled_total: int = 0
    labelled_kept: int = 0
    labelled_merged: int = 0

    @property
    def num_voxels(self) -> int:
        return int(self.point_index.shape[0])

    @property
    def labelled_lost(self) -> int:
        """Labelled points whose label does not reach any voxel."""
        return self.labelled_total - self.labelled_kept


def grid_coordinates(coord: np.ndarray, voxel_size: float) -> np.ndarray:
    """(N, 3) float metres -> (N, 3) int64 voxel indices shifted so the minimum is 0."""
    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be > 0, got {voxel_size}")
    grid = np.floor(np.asarray(coord, dtype=np.float64) / voxel_size).astype(np.int64)
    if grid.shape[0]:
        grid -= grid.min(axis=0)
    return grid


def pack_keys(grid: np.ndarray) -> np.ndarray:
    """Packed int64 key per (N, 3) non-negative grid coordinate (x-major order)."""
    if grid.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    dims = grid.max(axis=0).astype(np.int64) + 1
    if float(dims[0]) * float(dims[1]) * float(dims[2]) >= 2**62:
        raise ValueError(f"grid of {dims.tolist()} voxels is too large to pack into int64 keys")
    return (grid[:, 0] * dims[1] + grid[:, 1]) * dims[2] + grid[:, 2]


def voxelize(
    coord: np.ndarray,
    voxel_size: float,
    labelled: np.ndarray | None = None,
    retain_labels: bool = False,
    mode: str = "first",
    rng: np.random.Generator | None = None,
    grid: np.ndarray | None = None,
) -> Voxelization:
    """Pick one representative point per voxel.

    Args:
        coord: (N, 3) point coordinates in metres (ignored if ``grid`` is given).
        voxel_size: voxel edge in metres.
        labelled: (N,) bool, points that carry a training label.
        retain_labels: voxels holding a labelled point get a labelled representative.
        mode: ``"first"`` or ``"random"`` (see the module doc).
        rng: required for ``mode="random"``.
        grid: (N, 3) precomputed non-negative integer voxel coordinates.

    Returns:
        A :class:`Voxelization`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if grid is None:
        grid = grid_coordinates(coord, voxel_size)
    n = grid.shape[0]
    keys = pack_keys(grid)
    if labelled is None:
        labelled = np.zeros(n, dtype=bool)
    labelled = np.asarray(labelled, dtype=bool)
    if mode == "random":
        if rng is None:
            raise ValueError("mode='random' needs an rng")
        tiebreak = rng.random(n)
    else:
        tiebreak = np.arange(n)
    priority = (~labelled).astype(np.int8) if retain_labels else np.zeros(n, dtype=np.int8)
    order = np.lexsort((tiebreak, priority, keys))
    sorted_keys = keys[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    rows = np.cumsum(first) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = rows
    point_index = order[first].astype(np.int64)

    total = int(labelled.sum())
    kept = int(labelled[point_index].sum())
    voxels_with_label = int(np.unique(inverse[labelled]).size) if total else 0
    return Voxelization(
        grid_coord=grid[point_index].astype(np.int32),
        point_index=point_index,
        inverse=inverse,
        labelled_total=total,
        labelled_kept=kept,
        labelled_merged=total - voxels_with_label,
    )
