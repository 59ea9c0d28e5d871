"""Voxelisation against a reference loop, retain_labels, and augmentation invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pcseg.data import augment as A
from pcseg.data.voxelize import voxelize
from pcseg.utils.errors import ConfigError


def _reference_first(coord: np.ndarray, voxel: float) -> dict[tuple, int]:
    """Voxel -> index of its first point in array order (plain Python)."""
    lo = np.floor(coord / voxel).astype(int).min(axis=0)
    first: dict[tuple, int] = {}
    for i, p in enumerate(coord):
        key = tuple(int(v) for v in np.floor(p / voxel).astype(int) - lo)
        first.setdefault(key, i)
    return first


def test_first_point_rule_matches_reference():
    rng = np.random.default_rng(0)
    coord = rng.random((3000, 3)) * [1.0, 0.6, 0.4] - 0.3
    vox = voxelize(coord, 0.1)
    ref = _reference_first(coord, 0.1)
    got = {tuple(g): int(i) for g, i in zip(vox.grid_coord.tolist(), vox.point_index)}
    assert got == ref
    assert vox.grid_coord.dtype == np.int32 and vox.grid_coord.min() == 0
    # inverse: every point's voxel row, and representatives map to their own row
    np.testing.assert_array_equal(vox.inverse[vox.point_index], np.arange(vox.num_voxels))
    recomputed = np.floor(coord / 0.1).astype(int) - np.floor(coord / 0.1).astype(int).min(axis=0)
    np.testing.assert_array_equal(vox.grid_coord[vox.inverse], recomputed)


def test_random_mode_picks_a_member_and_is_keyed():
    rng = np.random.default_rng(1)
    coord = rng.random((2000, 3))
    a = voxelize(coord, 0.2, mode="random", rng=np.random.default_rng(7))
    b = voxelize(coord, 0.2, mode="random", rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.point_index, b.point_index)
    np.testing.assert_array_equal(a.inverse[a.point_index], np.arange(a.num_voxels))
    assert not np.array_equal(a.point_index, voxelize(coord, 0.2).point_index)


def test_retain_labels_keeps_every_labelled_voxel():
    rng = np.random.default_rng(2)
    coord = rng.random((5000, 3)) * 2
    labelled = np.zeros(5000, bool)
    labelled[rng.choice(5000, 400, replace=False)] = True
    plain = voxelize(coord, 0.1, labelled=labelled)
    kept = voxelize(coord, 0.1, labelled=labelled, retain_labels=True)
    voxels_with_label = np.unique(kept.inverse[labelled])
    # every voxel holding a labelled point has a labelled representative ...
    assert labelled[kept.point_index[voxels_with_label]].all()
    assert kept.labelled_kept == len(voxels_with_label)
    # ... and the only labels lost are those merged with another labelled point of the same voxel
    assert kept.labelled_merged == 400 - len(voxels_with_label) == kept.labelled_lost
    assert plain.labelled_kept < kept.labelled_kept  # the official rule loses labels to quantisation
    np.testing.assert_array_equal(plain.grid_coord, kept.grid_coord)  # same voxels, other representatives


# --------------------------------------------------------------------------- augmentation
def test_rotation_preserves_distances():
    rng = np.random.default_rng(3)
    pts = rng.random((200, 3)) * 5
    for cfg in (A.PRESETS["cpcm_scannet"], A.PRESETS["cpcm_s3dis"], A.PRESETS["hpal_strong"]):
        rot = A.random_rotation(cfg, rng)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
        q = pts @ rot.T
        np.testing.assert_allclose(np.linalg.norm(q[1:] - q[:-1], axis=1), np.linalg.norm(pts[1:] - pts[:-1], axis=1), rtol=1e-10)
    tilt = A.random_rotation(A.PRESETS["cpcm_scannet"], rng)
    assert abs(tilt[2, 2]) > math.cos(2 * math.pi / 64) - 1e-9  # x/y tilts stay within ±π/64 each


def test_elastic_displacement_is_bounded_by_magnitude():
    rng = np.random.default_rng(4)
    pts = rng.random((4000, 3)) * [4, 3, 2.5]
    origin, noise = A.elastic_noise_grid(pts, 0.2, np.random.default_rng(9))
    moved = A.elastic_distortion(pts, 0.2, 0.4, np.random.default_rng(9))
    disp = np.abs(moved - pts)
    assert (disp <= 0.4 * np.abs(noise).max(axis=(0, 1, 2)) + 1e-9).all()
    assert disp.mean() > 0.01  # it does move points
    # smooth: nearby points move alike
    near = np.linalg.norm(pts[:, None] - pts[None, :200], axis=2) < 0.02
    i, j = np.nonzero(near[:, :200] & ~np.eye(4000, 200, dtype=bool))
    if len(i):
        assert np.abs((moved - pts)[i] - (moved - pts)[j]).max() < 0.1


def test_trilinear_interpolation_matches_scipy():
    from scipy.interpolate import RegularGridInterpolator

    rng = np.random.default_rng(5)
    grid = rng.normal(size=(6, 5, 4, 3))
    origin = np.array([-1.0, 0.5, 2.0])
    pts = origin + rng.random((500, 3)) * np.array([5, 4, 3]) * 0.3
    ref = RegularGridInterpolator([origin[k] + 0.3 * np.arange(grid.shape[k]) for k in range(3)], grid)(pts)
    np.testing.assert_allclose(A.trilinear(grid, origin, 0.3, pts), ref, atol=1e-12)


def test_colour_augmentations_stay_in_range():
    rng = np.random.default_rng(6)
    color = rng.integers(0, 256, (1000, 3)).astype(float)
    cfg = A.PRESETS["hpal_strong"]
    for k in range(20):
        out = A.augment_colors(color, A.augment_config({"preset": "hpal_strong", "autocontrast_p": 1.0}), np.random.default_rng(k))
        assert out.min() >= 0 and out.max() <= 255 and out.shape == color.shape
    stretched = A.auto_contrast(color * 0.5 + 20, 1.0)
    np.testing.assert_allclose(stretched.min(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(stretched.max(axis=0), 255, atol=1e-9)
    shifted = A.color_translation(np.full((10, 3), 100.0), 0.1, np.random.default_rng(0))
    assert np.all(np.abs(shifted - 100) <= 25.5) and np.ptp(shifted, axis=0).max() == 0  # one offset for all points
    assert cfg.color_jitter == 0.05


def test_crop_keeps_a_window_and_small_rooms_whole():
    rng = np.random.default_rng(7)
    big = rng.random((5000, 3)) * [12, 9, 3]
    keep = A.crop_mask(big, 4.0, (0.2, 0.2, 0.05), rng)
    assert 0 < keep.sum() < 5000 and np.ptp(big[keep], axis=0).max() < 8.0
    small = rng.random((500, 3)) * [3, 3, 2]
    assert A.crop_mask(small, 4.0, (0.2, 0.2, 0.05), rng).all()


def test_dropout_protects_labelled_voxels():
    protect = np.zeros(1000, bool)
    protect[::7] = True
    keep = A.dropout_mask(1000, 0.2, np.random.default_rng(0), protect)
    assert keep[protect].all() and 800 <= keep.sum() <= 800 + protect.sum()


def test_augment_config_presets_aliases_and_errors():
    assert A.augment_config(None) == A.AugmentConfig() and not A.augment_config("none").enabled
    cfg = A.augment_config({"preset": "cpcm_scannet", "clip_bound": 4.0, "jitter": True, "jitter_std": 0.05, "random_shift": 10})
    assert cfg.crop_bound == 4.0 and cfg.color_jitter == 0.05 and cfg.grid_shift == 10 and cfg.elastic == ((0.2, 0.4), (0.8, 1.6))
    assert A.augment_config({"jitter": False, "jitter_std": 0.05}).color_jitter == 0.0
    with pytest.raises(ConfigError, match="unknown augmentation preset"):
        A.augment_config("cpcm")
    with pytest.raises(ConfigError, match=r"unknown augmentation option\(s\) \['rotation'\]"):
        A.augment_config({"rotation": 1})
