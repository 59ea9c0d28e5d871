"""Procedural colours for the synthetic rooms: base colours with within-class variation and textures.

A :class:`Material` turns surface coordinates (metres) into RGB. Textures are pure functions of the
coordinates and the material's own seed (hash noise), so they are deterministic and cost a few
vectorised numpy operations per surface.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

PATTERNS = ("flat", "wood", "planks", "tiles", "fabric", "speckle", "picture", "stripes", "carpet")


def hash01(*ints: np.ndarray, seed: int = 0) -> np.ndarray:
    """Deterministic pseudo-random numbers in [0, 1) from integer lattice coordinates."""
    h = np.uint64(seed * 0x9E3779B1 + 0x85EBCA6B) * np.ones(np.broadcast(*ints).shape, dtype=np.uint64)
    for k, x in enumerate(ints):
        h ^= np.asarray(x).astype(np.int64).astype(np.uint64) * np.uint64([0x8DA6B343, 0xD8163841, 0xCB1AB31F][k % 3])
        h ^= h >> np.uint64(15)
        h *= np.uint64(0x2C1B3C6D)
        h ^= h >> np.uint64(12)
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(0x1000000)


@dataclass(frozen=True)
class Material:
    """How a surface is coloured.

    Attributes:
        rgb: base colour, 0..255.
        pattern: one of PATTERNS.
        scale: pattern period in metres (plank width, tile size, stripe width, ...).
        amount: pattern contrast (0 = none).
        rgb2: secondary colour (grout, stripes, speckles, picture palette anchor).
        seed: pattern randomness.
    """

    rgb: tuple[float, float, float]
    pattern: str = "flat"
    scale: float = 0.1
    amount: float = 0.1
    rgb2: tuple[float, float, float] | None = None
    seed: int = 0

    def colorize(self, st: np.ndarray) -> np.ndarray:
        """(n, 2) surface coordinates in metres -> (n, 3) float RGB (0..255, not yet clipped)."""
        n = st.shape[0]
        base = np.tile(np.asarray(self.rgb, dtype=np.float64), (n, 1))
        s, t = st[:, 0], st[:, 1]
        second = np.asarray(self.rgb2 if self.rgb2 is not None else self.rgb, dtype=np.float64)
        if self.pattern == "flat" or n == 0:
            return base
        if self.pattern == "wood":
            grain = np.sin(2 * np.pi * t / self.scale + 2.5 * np.sin(2 * np.pi * s / (self.scale * 9)))
            return base * (1 + self.amount * grain[:, None])
        if self.pattern == "planks":
            k = np.floor(t / self.scale)
            j = np.floor((s + hash01(k, seed=self.seed) * 1.7) / 1.2)  # staggered plank ends
            plank = hash01(k, j, seed=self.seed) - 0.5
            grain = np.sin(2 * np.pi * t / (self.scale / 7) + 3 * hash01(k, seed=self.seed + 1))
            return base * (1 + 2 * self.amount * plank[:, None] + 0.3 * self.amount * grain[:, None])
        if self.pattern == "tiles":
            fs, ft = np.mod(s / self.scale, 1.0), np.mod(t / self.scale, 1.0)
            grout = (np.minimum(fs, ft) < 0.03) | (np.maximum(fs, ft) > 0.97)
            tile = hash01(np.floor(s / self.scale), np.floor(t / self.scale), seed=self.seed) - 0.5
            out = base * (1 + self.amount * tile[:, None])
            out[grout] = second
            return out
        if self.pattern == "fabric":
            weave = np.sin(2 * np.pi * s / self.scale) * np.sin(2 * np.pi * t / self.scale)
            return base * (1 + self.amount * weave[:, None])
        if self.pattern == "carpet":
            cell = hash01(np.floor(s / 0.02), np.floor(t / 0.02), seed=self.seed) - 0.5
            return base * (1 + self.amount * cell[:, None])
        if self.pattern == "speckle":
            r = hash01(np.floor(s / 0.01), np.floor(t / 0.01), seed=self.seed)
            out = base.copy()
            out[r < self.amount] = second
            return out
        if self.pattern == "stripes":
            out = base.copy()
            out[np.mod(np.floor(s / self.scale), 2) == 1] = second
            return out
        if self.pattern == "picture":
            # Smooth random colour field: bilinear blend of per-cell colours around rgb2's hue.
            gs, gt = s / self.scale, t / self.scale
            i0, j0 = np.floor(gs), np.floor(gt)
            fs, ft = gs - i0, gt - j0
            out = np.zeros((n, 3))
            for di, wi in ((0, 1 - fs), (1, fs)):
                for dj, wj in ((0, 1 - ft), (1, ft)):
                    cells = np.stack([hash01(i0 + di, j0 + dj, c, seed=self.seed) for c in range(3)], axis=1)
                    out += (wi * wj)[:, None] * cells
            return 40 + 200 * (0.55 * out + 0.45 * second / 255.0)
        raise ValueError(f"unknown pattern {self.pattern!r}")


def jitter_color(rng: np.random.Generator, rgb, hue: float = 0.02, sat: float = 0.08, val: float = 0.08) -> tuple[float, float, float]:
    """A variation of ``rgb`` (0..255): small random shifts in hue, saturation and brightness."""
    h, s, v = colorsys.rgb_to_hsv(*(np.asarray(rgb, dtype=float) / 255.0))
    h = (h + rng.uniform(-hue, hue)) % 1.0
    s = float(np.clip(s + rng.uniform(-sat, sat), 0, 1))
    v = float(np.clip(v * (1 + rng.uniform(-val, val)), 0, 1))
    return tuple(255.0 * np.array(colorsys.hsv_to_rgb(h, s, v)))


# Colour families shared across classes on purpose (wood furniture, white fixtures, fabrics), so
# colour alone does not give the class away.
WOODS = [(150, 105, 65), (120, 80, 50), (185, 145, 100), (95, 65, 45), (200, 170, 130), (160, 120, 80)]
WHITES = [(232, 230, 225), (222, 222, 218), (240, 238, 232), (212, 208, 200)]
GREYS = [(120, 120, 122), (90, 92, 95), (160, 160, 158), (60, 60, 62), (185, 185, 180)]
BLACKS = [(40, 40, 42), (55, 52, 50), (30, 32, 36)]
FABRICS = [(110, 120, 140), (150, 140, 120), (90, 95, 100), (140, 80, 70), (80, 110, 90), (170, 160, 150),
           (60, 70, 110), (120, 100, 130), (190, 175, 150)]
WALLS = [(225, 222, 214), (215, 210, 200), (230, 225, 210), (200, 205, 205), (220, 215, 195), (205, 200, 210),
         (235, 230, 225), (190, 200, 190)]
STONES = [(110, 110, 112), (60, 58, 60), (190, 180, 165), (215, 215, 210), (140, 120, 100)]
METALS = [(175, 178, 182), (140, 142, 146), (200, 202, 205)]


def pick(rng: np.random.Generator, family: list[tuple[int, int, int]], **jitter) -> tuple[float, float, float]:
    """A jittered colour from a family."""
    return jitter_color(rng, family[int(rng.integers(len(family)))], **jitter)


def wood(rng: np.random.Generator) -> Material:
    return Material(pick(rng, WOODS), "wood", scale=float(rng.uniform(0.01, 0.03)), amount=float(rng.uniform(0.04, 0.12)),
                    seed=int(rng.integers(1 << 30)))


def flat(rng: np.random.Generator, family, **jitter) -> Material:
    return Material(pick(rng, family, **jitter), "flat", seed=int(rng.integers(1 << 30)))


def fabric(rng: np.random.Generator) -> Material:
    return Material(pick(rng, FABRICS, hue=0.04, sat=0.12, val=0.15), "fabric", scale=float(rng.uniform(0.01, 0.05)),
                    amount=float(rng.uniform(0.03, 0.1)), seed=int(rng.integers(1 << 30)))


def furniture_finish(rng: np.random.Generator) -> Material:
    """Wood, white laminate, grey or black: the common finishes of tables, desks, cabinets, shelves."""
    r = rng.random()
    if r < 0.5:
        return wood(rng)
    if r < 0.72:
        return flat(rng, WHITES)
    if r < 0.88:
        return flat(rng, GREYS)
    return flat(rng, BLACKS)
