"""One augmented, voxelised view of a scene, and point correspondences between two views.

The pipeline follows CPCM (spec §3): elastic distortion -> crop -> rotation and scale (about the
bounding-box centre) -> shift to a zero minimum -> voxelise (one representative point per voxel)
-> voxel dropout -> x/y flips -> colour augmentation -> integer voxel shift -> features. Every
removed point is tracked, so ``inverse`` maps each original point to its voxel row or -1, and the
CPCM matched set of two views is "original points that are representatives in both".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pcseg.data.augment import AugmentConfig, augment_colors, crop_mask, dropout_mask, elastic_distortion, random_rotation, random_scale
from pcseg.data.voxelize import voxelize

FEATURE_MODES = ("rgb", "rgb_xyz")


def make_features(color: np.ndarray, coord: np.ndarray, mode: str) -> np.ndarray:
    """Network input per voxel.

    Args:
        color: (M, 3) RGB in 0..255 (after colour augmentation).
        coord: (M, 3) metres (after geometric augmentation, minimum 0).
        mode: ``"rgb"`` -> RGB/255 - 0.5 (CPCM); ``"rgb_xyz"`` -> [RGB/255, xyz] (HPAL).

    Returns:
        (M, 3) or (M, 6) float32.
    """
    color = np.asarray(color, dtype=np.float32)
    if mode == "rgb":
        return color / 255.0 - 0.5
    if mode == "rgb_xyz":
        return np.concatenate([color / 255.0, np.asarray(coord, dtype=np.float32)], axis=1)
    raise ValueError(f"feature mode must be one of {FEATURE_MODES}, got {mode!r}")


def feature_channels(mode: str) -> int:
    """Input channels of a feature mode."""
    return {"rgb": 3, "rgb_xyz": 6}[mode]


def make_view(
    scene: str,
    coord: np.ndarray,
    color: np.ndarray,
    segment: np.ndarray,
    voxel_size: float,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    retain_labels: bool = False,
    representative: str = "first",
    feature_mode: str = "rgb",
) -> dict[str, Any]:
    """Build one view (the sample dict of docs/contracts.md §3, without ``point_segment``).

    Args:
        scene: scene name.
        coord: (N, 3) xyz in metres.
        color: (N, 3) uint8 RGB.
        segment: (N,) training target, -1 = ignore (weak-label mask already applied).
        voxel_size: metres.
        cfg: augmentation parameters (``AugmentConfig()`` = none).
        rng: the view's generator, keyed by (seed, epoch, sample, view).
        retain_labels: crop, voxelisation and dropout never drop a labelled point's voxel.
        representative: ``"first"`` or ``"random"`` point per voxel.
        feature_mode: ``"rgb"`` or ``"rgb_xyz"``.
    """
    n = coord.shape[0]
    segment = np.asarray(segment, dtype=np.int64)
    labelled = segment >= 0
    alive = np.arange(n)
    pts = np.asarray(coord, dtype=np.float64)

    if cfg.elastic and rng.random() < cfg.elastic_p:
        for granularity, magnitude in cfg.elastic:
            pts = elastic_distortion(pts, granularity, magnitude, rng)
    if cfg.crop_bound is not None:
        keep = crop_mask(pts, cfg.crop_bound, cfg.crop_shift, rng)
        if retain_labels:
            keep |= labelled
        if not keep.any():  # a crop window that misses every point (hollow scene): keep the scene whole
            keep[:] = True
        alive, pts = alive[keep], pts[keep]
    if any(cfg.rotate) or cfg.scale is not None:
        rot = random_rotation(cfg, rng)
        scale = random_scale(cfg, rng)
        if not (np.array_equal(rot, np.eye(3)) and np.all(scale == 1.0)):
            centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
            pts = ((pts - centre) @ rot.T) * scale + centre
    pts = pts - pts.min(axis=0)

    vox = voxelize(pts, voxel_size, labelled=labelled[alive], retain_labels=retain_labels, mode=representative, rng=rng)
    rep = alive[vox.point_index]
    grid = vox.grid_coord.astype(np.int64)
    vcoord = pts[vox.point_index]
    inverse = np.full(n, -1, dtype=np.int64)
    inverse[alive] = vox.inverse

    if cfg.dropout > 0 and rng.random() < cfg.dropout_p:
        keep = dropout_mask(len(rep), cfg.dropout, rng, protect=labelled[rep] if retain_labels else None)
        new_row = np.cumsum(keep) - 1
        new_row[~keep] = -1
        inverse = np.where(inverse >= 0, new_row[np.maximum(inverse, 0)], -1)
        rep, grid, vcoord = rep[keep], grid[keep], vcoord[keep]
    if cfg.flip_p > 0 and rng.random() < cfg.flip_p:
        for axis in (0, 1):
            if rng.random() < 0.5:
                grid[:, axis] = grid[:, axis].max() - grid[:, axis]
                vcoord[:, axis] = vcoord[:, axis].max() - vcoord[:, axis]
    colors = augment_colors(color[rep], cfg, rng)
    if cfg.grid_shift > 0:
        grid = grid + rng.integers(0, cfg.grid_shift, 3)

    return {
        "scene": scene,
        "grid_coord": grid.astype(np.int32),
        "coord": vcoord.astype(np.float32),
        "feat": make_features(colors, vcoord, feature_mode),
        "segment": segment[rep],
        "point_index": rep.astype(np.int64),
        "inverse": inverse,
    }


def correspondences(view1: dict[str, Any], view2: dict[str, Any]) -> np.ndarray:
    """(K, 2) int64 voxel rows (view 1, view 2) whose representatives are the same original point."""
    _, rows1, rows2 = np.intersect1d(view1["point_index"], view2["point_index"], assume_unique=True, return_indices=True)
    return np.stack([rows1, rows2], axis=1).astype(np.int64)
