"""Training-time augmentation of CPCM (spec §3) and HPAL's StrongAug (spec §14), as pure functions.

Every function takes an explicit ``np.random.Generator`` (keyed by (seed, epoch, sample, view) in
the dataset), never global state. :class:`AugmentConfig` holds every parameter with the papers'
values in the presets:

- ``cpcm_scannet``: elastic ((0.2, 0.4), (0.8, 1.6)) p=0.95; rotation x, y ~ U(±π/64), z ~ U(±π)
  multiplied in random order; isotropic scale U(0.9, 1.1); voxel dropout 20 % with p=0.2; x/y
  flips (p=0.95, each axis 0.5); auto-contrast p=0.2; colour translation 0.1 p=0.95; integer
  voxel shift U[0, 100). ``cpcm_scannet_jitter`` adds colour jitter 0.05 p=0.95 (the ScanNet 0.1 %
  script is the only one that enables it).
- ``cpcm_s3dis``: as ScanNet without elastic distortion, with the 4 m crop and x, y ~ U(±π/32).
- ``hpal_strong``: elastic p=0.95; z rotation U(0, 2π); x, y tilt U(±π/64) p=0.95; per-axis scale
  U(0.9, 1.1) p=0.95; auto-contrast, translation 0.1, jitter 0.05. No dropout, flip, crop, shift.
- ``none``: no augmentation (validation, HPAL's teacher "origin" view).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from pcseg.utils.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of the augmentation pipeline (order: elastic, crop, rotate, scale | voxelise |
    dropout, flip, auto-contrast, colour translation, colour jitter, grid shift)."""

    elastic: tuple[tuple[float, float], ...] = ()  # (granularity m, magnitude m) pairs, applied in order
    elastic_p: float = 0.95
    crop_bound: float | None = None  # half-size (m) of the random crop; None = no crop
    crop_shift: tuple[float, float, float] = (0.2, 0.2, 0.05)  # crop centre shift, fraction of the extent
    rotate: tuple[float, float, float] = (0.0, 0.0, 0.0)  # max |angle| (rad) about x, y, z
    rotate_xy_p: float = 1.0  # probability of the x/y tilt (HPAL 0.95)
    rotate_order: str = "random"  # "random" (CPCM: axis rotations multiplied in random order) | "zxy" (HPAL)
    scale: tuple[float, float] | None = None
    scale_anisotropic: bool = False
    scale_p: float = 1.0
    dropout: float = 0.0  # fraction of voxels removed
    dropout_p: float = 0.0
    flip_p: float = 0.0  # probability of the flip step; then x and y each flip with 0.5
    autocontrast_p: float = 0.0
    autocontrast_blend: float | None = None  # None = U(0, 1)
    color_translation: float = 0.0  # ratio: offset U(-r, r) * 255 per channel
    color_translation_p: float = 0.95
    color_jitter: float = 0.0  # ratio: per-point N(0, r * 255)
    color_jitter_p: float = 0.95
    grid_shift: int = 0  # integer voxel shift U[0, grid_shift) per axis

    @property
    def enabled(self) -> bool:
        return self != AugmentConfig()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "cpcm_scannet": AugmentConfig(
        elastic=((0.2, 0.4), (0.8, 1.6)), elastic_p=0.95, rotate=(np.pi / 64, np.pi / 64, np.pi), scale=(0.9, 1.1),
        dropout=0.2, dropout_p=0.2, flip_p=0.95, autocontrast_p=0.2, color_translation=0.1, grid_shift=100,
    ),
    "cpcm_s3dis": AugmentConfig(
        crop_bound=4.0, rotate=(np.pi / 32, np.pi / 32, np.pi), scale=(0.9, 1.1), dropout=0.2, dropout_p=0.2, flip_p=0.95,
        autocontrast_p=0.2, color_translation=0.1, grid_shift=100,
    ),
    "hpal_strong": AugmentConfig(
        elastic=((0.2, 0.4), (0.8, 1.6)), elastic_p=0.95, rotate=(np.pi / 64, np.pi / 64, np.pi), rotate_xy_p=0.95,
        rotate_order="zxy", scale=(0.9, 1.1), scale_anisotropic=True, scale_p=0.95, autocontrast_p=0.2, color_translation=0.1,
        color_jitter=0.05,
    ),
}
PRESETS["cpcm_scannet_jitter"] = replace(PRESETS["cpcm_scannet"], color_jitter=0.05)


# Alternative key names accepted in dicts (those of configs/data/augment/*.yaml).
ALIASES = {
    "clip_bound": "crop_bound",
    "rotate_max": "rotate",
    "dropout_ratio": "dropout",
    "translation_p": "color_translation_p",
    "translation_ratio": "color_translation",
    "jitter_p": "color_jitter_p",
    "random_shift": "grid_shift",
}


def _resolve_aliases(items: dict[str, Any]) -> dict[str, Any]:
    out = {}
    jitter_on = items.pop("jitter", None)  # config style: jitter (bool) + jitter_std
    jitter_std = items.pop("jitter_std", None)
    if jitter_on is not None or jitter_std is not None:
        out["color_jitter"] = float(jitter_std or 0.0) if (jitter_on is None or jitter_on) else 0.0
    for k, v in items.items():
        key = ALIASES.get(k, k)
        if key in out:
            raise ConfigError(f"augmentation option {key!r} given twice (also as {k!r})")
        out[key] = v
    return out


def augment_config(cfg: Any) -> AugmentConfig:
    """An :class:`AugmentConfig` from None, a preset name, a dict (optional ``preset`` key + overrides) or a config.

    Dicts may use the field names of :class:`AugmentConfig` or the names of ``configs/data/augment``
    (``clip_bound``, ``rotate_max``, ``dropout_ratio``, ``translation_ratio``, ``translation_p``,
    ``jitter`` + ``jitter_std``, ``jitter_p``, ``random_shift``).
    """
    if cfg is None:
        return PRESETS["none"]
    if isinstance(cfg, AugmentConfig):
        return cfg
    if isinstance(cfg, str):
        if cfg not in PRESETS:
            raise ConfigError(f"unknown augmentation preset {cfg!r}; known: {', '.join(sorted(PRESETS))}")
        return PRESETS[cfg]
    try:
        items = dict(cfg.items())  # dict or omegaconf DictConfig
    except AttributeError:
        raise ConfigError(f"augmentation config must be a preset name or a mapping, got {type(cfg).__name__}") from None
    base = augment_config(items.pop("preset", "none"))
    items = _resolve_aliases(items)
    known = {f.name for f in fields(AugmentConfig)}
    unknown = sorted(set(items) - known)
    if unknown:
        raise ConfigError(f"unknown augmentation option(s) {unknown}; known: {', '.join(sorted(known | set(ALIASES)))}")
    conv: dict[str, Any] = {}
    for k, v in items.items():
        if k == "elastic":
            v = tuple(tuple(float(x) for x in pair) for pair in (v or ()))
        elif k in ("rotate", "crop_shift") or (k == "scale" and v is not None):
            v = tuple(float(x) for x in v)
        elif k == "grid_shift":
            v = int(v or 0)
        elif k in ("crop_bound", "autocontrast_blend") and v is not None:
            v = float(v)
        elif k not in ("rotate_order", "scale_anisotropic") and v is not None:
            v = float(v)
        conv[k] = v
    if conv.get("rotate_order", base.rotate_order) not in ("random", "zxy"):
        raise ConfigError("rotate_order must be 'random' or 'zxy'")
    return replace(base, **conv)


# --------------------------------------------------------------------------- geometry (points)
def _smooth3(grid: np.ndarray) -> np.ndarray:
    """Two passes of a 3-tap box filter along each spatial axis of a (X, Y, Z, 3) grid."""
    from scipy.ndimage import uniform_filter1d

    for _ in range(2):
        for axis in range(3):
            grid = uniform_filter1d(grid, size=3, axis=axis, mode="reflect")
    return grid


def elastic_noise_grid(coord: np.ndarray, granularity: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed Gaussian noise on a lattice of spacing ``granularity`` covering ``coord`` (one cell of margin).

    Returns:
        (origin (3,), noise (X, Y, Z, 3)); lattice node (i, j, k) sits at origin + granularity * (i, j, k).
    """
    lo = coord.min(axis=0) - granularity
    dims = ((coord.max(axis=0) - coord.min(axis=0)) // granularity).astype(np.int64) + 3
    noise = rng.standard_normal((*dims.tolist(), 3)).astype(np.float32)
    return lo, _smooth3(noise)


def trilinear(grid: np.ndarray, origin: np.ndarray, spacing: float, points: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of a (X, Y, Z, C) lattice at (N, 3) points (clamped to the lattice)."""
    dims = np.array(grid.shape[:3])
    flat = grid.reshape(-1, grid.shape[3])
    f = (points - origin) / spacing
    i0 = np.clip(np.floor(f).astype(np.int64), 0, dims - 2)
    w = np.clip(f - i0, 0.0, 1.0)
    base = (i0[:, 0] * dims[1] + i0[:, 1]) * dims[2] + i0[:, 2]
    out = np.zeros((points.shape[0], grid.shape[3]), dtype=np.float64)
    for dx in (0, 1):
        wx = w[:, 0] if dx else 1 - w[:, 0]
        for dy in (0, 1):
            wxy = wx * (w[:, 1] if dy else 1 - w[:, 1])
            for dz in (0, 1):
                wxyz = wxy * (w[:, 2] if dz else 1 - w[:, 2])
                out += wxyz[:, None] * np.take(flat, base + (dx * dims[1] + dy) * dims[2] + dz, axis=0)
    return out


def elastic_distortion(coord: np.ndarray, granularity: float, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Displace points by ``magnitude`` x a smooth random field sampled every ``granularity`` metres.

    The displacement of every point is a convex combination of lattice values, so its size per axis is
    at most ``magnitude * max|noise|``.
    """
    origin, noise = elastic_noise_grid(coord, granularity, rng)
    return coord + magnitude * trilinear(noise, origin, granularity, coord)


def rotation_matrix(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    if axis == 0:
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == 1:
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def random_rotation(cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """(3, 3) rotation: per-axis angles U(±cfg.rotate[a]); CPCM multiplies them in random order, HPAL does z then x, y."""
    tilt = rng.random() < cfg.rotate_xy_p
    mats = []
    for axis in range(3):
        limit = cfg.rotate[axis]
        angle = rng.uniform(-limit, limit) if limit > 0 and (axis == 2 or tilt) else 0.0
        mats.append(rotation_matrix(axis, angle))
    order = rng.permutation(3) if cfg.rotate_order == "random" else np.array([2, 0, 1])
    rot = np.eye(3)
    for axis in order:
        rot = mats[axis] @ rot
    return rot


def random_scale(cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """(3,) scale factors (isotropic unless ``scale_anisotropic``); ones if disabled or not drawn."""
    if cfg.scale is None or rng.random() >= cfg.scale_p:
        return np.ones(3)
    lo, hi = cfg.scale
    return rng.uniform(lo, hi, 3) if cfg.scale_anisotropic else np.full(3, rng.uniform(lo, hi))


def crop_mask(coord: np.ndarray, bound: float, shift: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """CPCM's clip: keep points within ±``bound`` of a randomly shifted bounding-box centre (all if the room is small)."""
    lo, hi = coord.min(axis=0), coord.max(axis=0)
    extent = hi - lo
    if extent.max() < bound:
        return np.ones(coord.shape[0], dtype=bool)
    centre = (lo + hi) / 2 + np.array([rng.uniform(-s, s) for s in shift]) * extent
    return np.all(np.abs(coord - centre) < bound, axis=1)


# --------------------------------------------------------------------------- voxels
def dropout_mask(num: int, ratio: float, rng: np.random.Generator, protect: np.ndarray | None = None) -> np.ndarray:
    """Keep a random (1 - ratio) share of ``num`` voxels; ``protect`` (bool) voxels are always kept."""
    keep = np.zeros(num, dtype=bool)
    keep[rng.choice(num, size=int(round(num * (1 - ratio))), replace=False)] = True
    if protect is not None:
        keep |= protect
    return keep


def auto_contrast(color: np.ndarray, blend: float) -> np.ndarray:
    """Blend colours with their per-channel min-max stretched version (0..255 floats)."""
    lo, hi = color.min(axis=0), color.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    stretched = (color - lo) * (255.0 / span)
    return (1 - blend) * color + blend * stretched


def color_translation(color: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    offset = (rng.random(3) - 0.5) * 255 * 2 * ratio
    return np.clip(color + offset, 0, 255)


def color_jitter(color: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(color + rng.standard_normal(color.shape) * ratio * 255, 0, 255)


def augment_colors(color: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """The chromatic steps in CPCM order (auto-contrast, translation, jitter) on (M, 3) 0..255 floats."""
    color = np.asarray(color, dtype=np.float64)
    if cfg.autocontrast_p > 0 and rng.random() < cfg.autocontrast_p:
        blend = rng.random() if cfg.autocontrast_blend is None else cfg.autocontrast_blend
        color = auto_contrast(color, blend)
    if cfg.color_translation > 0 and rng.random() < cfg.color_translation_p:
        color = color_translation(color, cfg.color_translation, rng)
    if cfg.color_jitter > 0 and rng.random() < cfg.color_jitter_p:
        color = color_jitter(color, cfg.color_jitter, rng)
    return color


@dataclass
class GeometryDraw:
    """The random geometric choices of one view (kept for tests and debugging)."""

    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    scale: np.ndarray = field(default_factory=lambda: np.ones(3))
    flips: tuple[bool, bool] = (False, False)
    shift: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.int64))
