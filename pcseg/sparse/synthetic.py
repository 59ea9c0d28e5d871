"""Surface-like voxel scenes for benchmarks and tests: a room (floor, walls) with box furniture.

Real indoor scans are thin surfaces, not filled volumes: a voxel's 3x3x3 neighbourhood holds about
9-15 occupied cells instead of 27, which is what sparse kernels are tuned for. A random cube of
voxels would make every kernel look either much slower or much faster than on real data.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pcseg.utils.rng import numpy_rng

_WALL_HEIGHT = 2.6


def _rectangle(origin: np.ndarray, u: np.ndarray, v: np.ndarray, spacing: float) -> np.ndarray:
    nu = max(2, int(math.ceil(np.linalg.norm(u) / spacing)) + 1)
    nv = max(2, int(math.ceil(np.linalg.norm(v) / spacing)) + 1)
    a, b = np.meshgrid(np.linspace(0.0, 1.0, nu), np.linspace(0.0, 1.0, nv), indexing="ij")
    return (origin + a.reshape(-1, 1) * u + b.reshape(-1, 1) * v).astype(np.float64)


def _box_faces(center: np.ndarray, size: np.ndarray, angle: float, spacing: float) -> list[np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    ex = np.array([c, s, 0.0]) * size[0]
    ey = np.array([-s, c, 0.0]) * size[1]
    ez = np.array([0.0, 0.0, size[2]])
    o = center - ex / 2 - ey / 2
    return [
        _rectangle(o + ez, ex, ey, spacing),  # top
        _rectangle(o, ex, ez, spacing),
        _rectangle(o + ey, ex, ez, spacing),
        _rectangle(o, ey, ez, spacing),
        _rectangle(o + ex, ey, ez, spacing),
    ]


def room_points(side: float, num_boxes: int, seed: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points on the floor, four walls and ``num_boxes`` rotated boxes of a square room.

    Returns:
        (P, 3) float64 xyz in metres (room rotated by a random angle about z) and (P,) int64 surface id.
    """
    rng = numpy_rng(seed, "room")
    h = min(_WALL_HEIGHT, 0.2 + 0.8 * side)  # small test rooms keep room-like proportions
    surfaces = [
        _rectangle(np.zeros(3), np.array([side, 0, 0.0]), np.array([0, side, 0.0]), spacing),
        _rectangle(np.zeros(3), np.array([side, 0, 0.0]), np.array([0, 0, h]), spacing),
        _rectangle(np.array([0, side, 0.0]), np.array([side, 0, 0.0]), np.array([0, 0, h]), spacing),
        _rectangle(np.zeros(3), np.array([0, side, 0.0]), np.array([0, 0, h]), spacing),
        _rectangle(np.array([side, 0, 0.0]), np.array([0, side, 0.0]), np.array([0, 0, h]), spacing),
    ]
    for _ in range(num_boxes):
        size = rng.uniform([0.4, 0.4, 0.4], [1.6, 1.0, 1.2]) * min(1.0, side / 5.0)
        center = np.array([rng.uniform(0.2, 0.8) * side, rng.uniform(0.2, 0.8) * side, 0.0])
        surfaces.extend(_box_faces(center, size, rng.uniform(0, math.pi), spacing))
    ids = np.concatenate([np.full(len(p), i, dtype=np.int64) for i, p in enumerate(surfaces)])
    pts = np.concatenate(surfaces)
    angle = rng.uniform(0.1, 0.6)  # real scans are rarely axis-aligned
    rot = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    pts = pts @ rot.T
    pts += rng.normal(scale=spacing * 0.3, size=pts.shape)  # sensor noise
    return pts, ids


def room_scene(
    num_voxels: int = 100_000,
    voxel_size: float = 0.02,
    seed: int = 0,
    batch_index: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A voxelised room with about ``num_voxels`` voxels (within a few per cent).

    Args:
        num_voxels: target voxel count; the room size is chosen to match it.
        voxel_size: voxel edge in metres.
        seed: scene seed (keyed randomness).
        batch_index: value of the batch column.

    Returns:
        coords (M, 4) int32 ``[b, x, y, z]`` (distinct, >= 0) and colours (M, 3) float32 in [-0.5, 0.5].
    """
    rng = numpy_rng(seed, "room", "colour")
    num_boxes = 8
    # First guess from the surface area (floor L^2 + walls 4 L h, boxes ~ L^2 / 2, tilted surfaces
    # touch ~1.4 voxels per voxel_size^2), then a few secant steps on the measured count.
    area = num_voxels * voxel_size**2 / 1.4
    side = (-4 * _WALL_HEIGHT + math.sqrt(16 * _WALL_HEIGHT**2 + 6 * area)) / 3
    tried: list[tuple[float, int]] = []
    for _ in range(8):
        side = min(max(side, 0.05), 1000.0)
        pts, ids = room_points(side, num_boxes, seed, spacing=voxel_size * 0.7)
        grid = np.floor(pts / voxel_size).astype(np.int64)
        grid -= grid.min(0)
        uniq, first = np.unique(grid, axis=0, return_index=True)
        tried.append((side, len(uniq)))
        if abs(len(uniq) - num_voxels) <= 0.03 * num_voxels:
            break
        if len(tried) >= 2 and tried[-1][1] != tried[-2][1]:
            (s0, n0), (s1, n1) = tried[-2], tried[-1]
            side = s1 + (num_voxels - n1) * (s1 - s0) / (n1 - n0)
        else:
            side *= math.sqrt(num_voxels / len(uniq))
    palette = rng.uniform(0.0, 1.0, size=(int(ids.max()) + 1, 3))
    colour = palette[ids[first]] + rng.normal(scale=0.05, size=(len(uniq), 3))
    coords = np.concatenate([np.full((len(uniq), 1), batch_index), uniq], axis=1)
    feats = np.clip(colour, 0.0, 1.0) - 0.5
    return torch.from_numpy(coords.astype(np.int32)), torch.from_numpy(feats.astype(np.float32))


def batch_of_rooms(
    num_scenes: int,
    num_voxels: int,
    voxel_size: float = 0.02,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_scenes`` rooms stacked as one batch: coords (M, 4) int32 and feats (M, 3) float32."""
    parts = [room_scene(num_voxels, voxel_size, seed + i, batch_index=i) for i in range(num_scenes)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
