"""RegionMask (cpcm_hpal.md §5.2): cell partition, boundary conventions, masked count, keyed draws."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from pcseg.methods.cpcm.region_mask import (
    axis_pivots,
    cell_index,
    draw_masked_cells,
    mask_batch,
    num_masked_cells,
    region_mask,
)


def reference_cells(grid: np.ndarray, g: int) -> np.ndarray:
    """Brute force from the spec's wording: loop over the G³ boxes (x_i, x_{i+1}] × ... and label voxels."""
    pivots = []
    for axis in range(3):
        u = np.unique(grid[:, axis])
        s = len(u) // g
        pivots.append([u[min(i * s, len(u) - 1)] for i in range(g + 1)])
    cells = np.full(len(grid), -1)
    for i, j, k in itertools.product(range(g), repeat=3):
        inside = np.ones(len(grid), bool)
        for axis, c in enumerate((i, j, k)):
            lo, hi = pivots[axis][c], pivots[axis][c + 1]
            inside &= (grid[:, axis] > lo) & (grid[:, axis] <= hi)
        assert (cells[inside] == -1).all(), "cells overlap"
        cells[inside] = (i * g + j) * g + k
    return cells


def random_scene(rng: np.random.Generator, n: int = 3000, extent=(60, 45, 20)) -> np.ndarray:
    grid = np.stack([rng.integers(0, e, n) for e in extent], 1) + rng.integers(0, 100, 3)
    return np.unique(grid, axis=0).astype(np.int32)


@pytest.mark.parametrize("g", [1, 2, 4, 8])
def test_cells_match_brute_force_boxes(g):
    grid = random_scene(np.random.default_rng(g))
    got = cell_index(torch.from_numpy(grid), g).numpy()
    np.testing.assert_array_equal(got, reference_cells(grid, g))


def test_pivots_split_distinct_values_into_equal_counts():
    # 13 distinct x values with big, uneven gaps and many repeats: stride ⌊13/4⌋ = 3, so each of the G=4
    # intervals holds 3 distinct values (equal count, not equal length), the first value in none.
    distinct = torch.tensor([0, 1, 2, 3, 10, 11, 40, 41, 42, 90, 95, 99, 120])
    values = distinct.repeat_interleave(torch.arange(1, 14))
    pivots = axis_pivots(values, 4)
    assert pivots.tolist() == [0, 3, 40, 90, 120]
    grid = torch.stack([values, torch.zeros_like(values) + 5, torch.zeros_like(values) + 5], 1)
    # y and z hold one distinct value: all pivots equal, every voxel outside → nothing maskable.
    assert (cell_index(grid, 4) == -1).all()
    full = torch.stack([values, values, values], 1)
    cells = cell_index(full, 4)
    per_interval = [int(torch.unique(values[cells == (i * 4 + i) * 4 + i]).numel()) for i in range(4)]
    assert per_interval == [3, 3, 3, 3]
    assert (cells[values == 0] == -1).all()
    # With 12 distinct values the last pivot index 12 is clamped to n − 1 = 11: the top interval is one short.
    assert axis_pivots(distinct[:12], 4).tolist() == [0, 3, 40, 90, 99]


def test_boundary_semantics_lower_exclusive_upper_inclusive_and_top_remainder_unmasked():
    # 10 distinct values, G = 4: stride 2, pivots U[0,2,4,6,8] = 0,2,4,6,8 → 9 is above the last pivot.
    v = torch.arange(10)
    grid = torch.stack([v, v, v], 1)
    cells = cell_index(grid, 4)
    diagonal = {0: -1, 1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 6: 2, 7: 3, 8: 3, 9: -1}
    for value, interval in diagonal.items():
        expected = -1 if interval < 0 else (interval * 4 + interval) * 4 + interval
        assert int(cells[value]) == expected, value


def test_exact_number_of_cells_and_empty_cells_count():
    assert num_masked_cells(4, 0.75) == 48 and num_masked_cells(8, 0.75) == 384
    assert num_masked_cells(3, 0.5) == 13  # ⌊13.5⌋
    cells = draw_masked_cells(8, 0.75, seed=0, iteration=3, scene="scene0000_00")
    assert cells.numel() == 384 and torch.unique(cells).numel() == 384
    assert int(cells.min()) >= 0 and int(cells.max()) < 512
    # A scene occupying a thin slab has many empty cells: they still use up the K draws, so the masked
    # voxel fraction differs from 0.75 (here it is exactly the fraction of chosen occupied cells).
    grid = torch.from_numpy(random_scene(np.random.default_rng(5), extent=(50, 50, 3)))
    cell = cell_index(grid, 8)
    mask = region_mask(grid, cells, 8)
    chosen = torch.zeros(512, dtype=torch.bool)
    chosen[cells] = True
    expected = (cell >= 0) & chosen[cell.clamp(min=0)]
    assert torch.equal(mask, expected)


def test_masking_zeroes_features_keeps_coordinates_and_is_keyed():
    rng = np.random.default_rng(0)
    scenes = [random_scene(rng), random_scene(rng, n=2000, extent=(30, 30, 30))]
    coords = torch.cat([torch.cat([torch.full((len(s), 1), b, dtype=torch.int32), torch.from_numpy(s)], 1)
                        for b, s in enumerate(scenes)])
    feat = torch.rand(coords.shape[0], 3) - 0.5
    offset = torch.tensor(np.cumsum([len(s) for s in scenes]))
    names = ["a", "b"]
    coords_before, feat_before = coords.clone(), feat.clone()
    out = mask_batch(coords, feat, offset, names, 4, 0.75, seed=1, iteration=7)
    assert torch.equal(coords, coords_before) and torch.equal(feat, feat_before)  # inputs untouched
    assert (out.feat[out.mask] == 0).all()
    assert torch.equal(out.feat[~out.mask], feat[~out.mask])
    assert 0.3 < out.masked_fraction < 0.95
    # Each scene's mask is RegionMask on its own coordinates with its own keyed draw.
    n0 = len(scenes[0])
    for b, (lo, hi) in enumerate(((0, n0), (n0, coords.shape[0]))):
        cells = draw_masked_cells(4, 0.75, 1, 7, names[b])
        assert torch.equal(out.mask[lo:hi], region_mask(coords[lo:hi, 1:], cells, 4))
    # Deterministic per (seed, iteration, scene); a different key gives a different draw.
    again = mask_batch(coords, feat, offset, names, 4, 0.75, seed=1, iteration=7)
    assert torch.equal(again.mask, out.mask)
    assert not torch.equal(mask_batch(coords, feat, offset, names, 4, 0.75, seed=2, iteration=7).mask, out.mask)
    assert not torch.equal(mask_batch(coords, feat, offset, names, 4, 0.75, seed=1, iteration=8).mask, out.mask)
    assert not torch.equal(draw_masked_cells(4, 0.75, 1, 7, "a"), draw_masked_cells(4, 0.75, 1, 7, "b"))


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="grid size"):
        num_masked_cells(0, 0.75)
    with pytest.raises(ValueError, match="ratio"):
        num_masked_cells(4, 1.5)
    with pytest.raises(ValueError, match="scene names"):
        mask_batch(torch.zeros(2, 4, dtype=torch.int32), torch.zeros(2, 3), torch.tensor([2]), ["a", "b"],
                   4, 0.75, 0, 0)
