"""Hierarchical min-margin uncertainty (HMMU, HPAL §17.2), vectorised.

For one scene with point coordinates X0 (N, 3) and class probabilities P0 (N, C):

- level 0 is the points themselves, margin m0 = p(1) - p(2) (top-1 minus top-2 probability);
- level l = 1, 2, 3 (grid 0.1 / 0.5 / 1.0 m) subsamples the *previous level's centres* to the
  barycentres of the occupied grid cells; every element of level l-1 joins the region of its nearest
  level-l centre (1-NN, not its own cell: the two differ near cell borders); a region's probability is
  the unweighted mean of its members' probabilities, members whose probability is NaN left out; a
  centre that wins no member gets NaN (it never reaches a point);
- the point score is S_i = w0*m0(i) + w1*m1(r1(i)) + w2*m2(r2(r1(i))) + w3*m3(...), with weights
  1 / 0.1 / 0.01 / 0.001. Lower = more uncertain = asked first.

The official code loops over regions in Python and uses sklearn's KDTree; here every level is a few
``np.unique`` / ``np.bincount`` calls and one ``cKDTree`` query, so a 100 k-point room takes ~0.1 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: HPAL's grid sizes (metres) of the region levels and the weights of levels 0..3 (spec §17.2).
DEFAULT_LEVELS: tuple[float, ...] = (0.1, 0.5, 1.0)
DEFAULT_WEIGHTS: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)


def top2_margin(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 value of every row (NaN rows give NaN).

    A running (max, second max) over the class columns: for the usual handful of classes this is
    several times faster than ``np.partition`` along rows, with the same result (ties give 0).

    Args:
        probs: (N, C) probabilities, C >= 2.

    Returns:
        (N,) float64 margins in [0, 1] for probability rows.
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probabilities must have shape (N, C>=2), got {probs.shape}")
    cols = np.ascontiguousarray(probs.T)
    first = np.maximum(cols[0], cols[1])
    second = np.minimum(cols[0], cols[1])
    for col in cols[2:]:
        second = np.maximum(second, np.minimum(first, col))
        first = np.maximum(first, col)
    return first.astype(np.float64) - second.astype(np.float64)


def grid_subsample(points: np.ndarray, cell: float, return_order: bool = False):
    """Barycentres of the occupied cells of a regular grid (KPConv ``grid_subsampling`` geometry).

    The grid origin is ``floor(min / cell) * cell`` per axis and a point falls in cell
    ``floor((x - origin) / cell)``.

    Args:
        points: (N, 3) coordinates.
        cell: cell edge length (same unit as ``points``).
        return_order: also return the permutation that sorts the points by cell.

    Returns:
        centres (R, 3) float64, the mean of the points of each occupied cell (cells in ascending
        key order), cell_of_point (N,) int64, the row of each point's cell in ``centres``, and
        (with ``return_order``) the (N,) permutation grouping the points cell by cell.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] == 0:
        raise ValueError(f"points must have shape (N>0, 3), got {pts.shape}")
    if not cell > 0:
        raise ValueError(f"grid cell size must be > 0, got {cell}")
    origin = np.floor(pts.min(0) / cell) * cell
    ijk = np.floor((pts - origin) / cell).astype(np.int64)
    ijk = np.maximum(ijk, 0)  # guards against -1 from rounding right at the origin
    dims = ijk.max(0) + 1
    key = (ijk[:, 2] * dims[1] + ijk[:, 1]) * dims[0] + ijk[:, 0]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    new_cell = np.empty(sorted_key.shape[0], dtype=bool)
    new_cell[0] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new_cell[1:])
    cell_of_point = np.empty(key.shape[0], dtype=np.int64)
    cell_of_point[order] = np.cumsum(new_cell) - 1
    counts = np.bincount(cell_of_point).astype(np.float64)
    centres = np.stack([np.bincount(cell_of_point, weights=pts[:, d]) for d in range(3)], axis=1)
    centres /= counts[:, None]
    if return_order:
        return centres, cell_of_point, order
    return centres, cell_of_point


def nearest_centre(points: np.ndarray, centres: np.ndarray, workers: int = 1, order: np.ndarray | None = None) -> np.ndarray:
    """Index of the nearest centre of every point (1-NN, Euclidean).

    Args:
        points: (N, 3).
        centres: (R, 3).
        workers: threads for the k-d tree query (-1 = all cores).
        order: optional permutation grouping nearby points (e.g. by grid cell): the queries run in
            that order, which keeps the tree walk cache-friendly (~30 % faster), results unchanged.

    Returns:
        (N,) int64 indices into ``centres``.
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(np.asarray(centres, dtype=np.float64), balanced_tree=False, compact_nodes=False)
    pts = np.asarray(points, dtype=np.float64)
    if order is None:
        return np.asarray(tree.query(pts, k=1, workers=workers)[1], dtype=np.int64)
    out = np.empty(pts.shape[0], dtype=np.int64)
    out[order] = tree.query(pts[order], k=1, workers=workers)[1]
    return out


def region_mean(probs: np.ndarray, region: np.ndarray, num_regions: int) -> np.ndarray:
    """Unweighted mean probability of each region, rows containing NaN left out.

    Args:
        probs: (N, C) member probabilities (may contain NaN rows).
        region: (N,) region index of every member, in [0, num_regions).
        num_regions: R.

    Returns:
        (R, C) float64 means; NaN for a region with no (finite) member.
    """
    valid = ~np.isnan(probs).any(axis=1)
    reg = region[valid]
    vals = probs[valid]
    counts = np.bincount(reg, minlength=num_regions).astype(np.float64)
    sums = np.stack(
        [np.bincount(reg, weights=vals[:, c], minlength=num_regions) for c in range(probs.shape[1])], axis=1
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


@dataclass
class HMMUResult:
    """Per-point HMMU score and the pieces it was built from (for inspection and tests).

    Attributes:
        score: (N,) float64 final score, lower = more uncertain.
        margins: per level l, (R_l,) margins of the level's elements (level 0: the points).
        regions: per level l >= 1, (N,) index of every point's level-l region.
        centres: per level l >= 1, (R_l, 3) the level's centres.
    """

    score: np.ndarray
    margins: list[np.ndarray]
    regions: list[np.ndarray]
    centres: list[np.ndarray]


def hmmu_scores(
    coord: np.ndarray,
    probs: np.ndarray,
    levels: Sequence[float] = DEFAULT_LEVELS,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    workers: int = 1,
    return_details: bool = False,
) -> np.ndarray | HMMUResult:
    """HMMU score of every point of one scene.

    Args:
        coord: (N, 3) point coordinates in metres.
        probs: (N, C) class probabilities (softmax of the network).
        levels: grid sizes of the region levels, each built on the previous level's centres.
        weights: len(levels) + 1 weights, level 0 (points) first.
        workers: threads for the nearest-centre queries.
        return_details: return an :class:`HMMUResult` instead of the score array.

    Returns:
        (N,) float64 scores (or the details).
    """
    coord = np.asarray(coord)
    probs = np.asarray(probs)
    if coord.ndim != 2 or coord.shape[1] != 3:
        raise ValueError(f"coord must have shape (N, 3), got {coord.shape}")
    if probs.ndim != 2 or probs.shape[0] != coord.shape[0]:
        raise ValueError(f"probs must have shape ({coord.shape[0]}, C), got {probs.shape}")
    if len(weights) != len(levels) + 1:
        raise ValueError(f"{len(levels)} HMMU levels need {len(levels) + 1} weights, got {len(weights)}")
    if list(levels) != sorted(levels) or any(g <= 0 for g in levels):
        raise ValueError(f"HMMU grid sizes must be positive and increasing, got {list(levels)}")

    margin0 = top2_margin(probs)
    score = weights[0] * margin0
    margins, regions, centres_all = [margin0], [], []
    prev_coord: np.ndarray = coord.astype(np.float64)
    prev_probs: np.ndarray = probs
    point_region = np.arange(coord.shape[0], dtype=np.int64)  # each point's element at the previous level
    for level, (cell, w) in enumerate(zip(levels, weights[1:]), start=1):
        centres, _, order = grid_subsample(prev_coord, cell, return_order=True)
        member_of = nearest_centre(prev_coord, centres, workers=workers, order=order)
        level_probs = region_mean(prev_probs, member_of, centres.shape[0])
        level_margin = top2_margin(level_probs)
        point_region = member_of[point_region]
        score = score + w * level_margin[point_region]
        margins.append(level_margin)
        regions.append(point_region)
        centres_all.append(centres)
        prev_coord, prev_probs = centres, level_probs
    if return_details:
        return HMMUResult(score=score, margins=margins, regions=regions, centres=centres_all)
    return score
