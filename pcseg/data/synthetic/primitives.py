"""Surface primitives of the synthetic rooms: specs that know their area and sample themselves.

Everything is built from four shapes: flat parallelograms (with rectangular holes), wavy sheets
(curtains), vertical frustums (bowls, bins, poles) and ellipsoids (plants, pillows). A spec is
declared in an object's local frame, moved into the room with :meth:`placed`, and sampled at a
given density (points per m²). Sampling returns positions, unit normals and 2-D surface coordinates
in metres (``st``) that the materials use for textures.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross is slow for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def yaw_matrix(yaw: float) -> np.ndarray:
    """(3, 3) rotation about +z by ``yaw`` radians."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class Sampled:
    """Samples of one surface: (n, 3) points, (n, 3) unit normals, (n, 2) surface coordinates in metres."""

    points: np.ndarray
    normals: np.ndarray
    st: np.ndarray

    @staticmethod
    def empty() -> "Sampled":
        return Sampled(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 2)))


@dataclass
class Rect:
    """The parallelogram ``origin + s*u + t*v`` (s, t in [0, 1]); normal = u x v.

    ``holes`` are (s0, s1, t0, t1) windows (fractions) with no surface (door and window openings).
    """

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    holes: list[tuple[float, float, float, float]] = field(default_factory=list)

    @property
    def area(self) -> float:
        full = float(np.linalg.norm(cross3(self.u, self.v)))
        return full * max(0.0, 1.0 - sum((s1 - s0) * (t1 - t0) for s0, s1, t0, t1 in self.holes))

    def placed(self, rot: np.ndarray, shift: np.ndarray) -> "Rect":
        return replace(self, origin=rot @ self.origin + shift, u=rot @ self.u, v=rot @ self.v)

    def sample(self, rng: np.random.Generator, density: float) -> Sampled:
        full = float(np.linalg.norm(cross3(self.u, self.v)))
        n = rng.poisson(full * density)
        if n == 0 or full == 0:
            return Sampled.empty()
        st = rng.random((n, 2))
        keep = np.ones(n, dtype=bool)
        for s0, s1, t0, t1 in self.holes:
            keep &= ~((st[:, 0] >= s0) & (st[:, 0] <= s1) & (st[:, 1] >= t0) & (st[:, 1] <= t1))
        st = st[keep]
        points = self.origin + st[:, :1] * self.u + st[:, 1:] * self.v
        normal = cross3(self.u, self.v)
        normal = normal / np.linalg.norm(normal)
        lengths = np.array([np.linalg.norm(self.u), np.linalg.norm(self.v)])
        return Sampled(points, np.broadcast_to(normal, points.shape).copy(), st * lengths)


@dataclass
class Wavy:
    """A curtain-like sheet ``origin + s*u + t*v + amp*sin(2*pi*s*|u|/wavelength + phase)*n``."""

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    amp: float
    wavelength: float
    phase: float = 0.0

    @property
    def area(self) -> float:
        width = float(np.linalg.norm(self.u))
        stretch = np.sqrt(1.0 + (2 * np.pi * self.amp / self.wavelength) ** 2 / 2)  # mean arc-length factor
        return width * stretch * float(np.linalg.norm(self.v))

    def placed(self, rot: np.ndarray, shift: np.ndarray) -> "Wavy":
        return replace(self, origin=rot @ self.origin + shift, u=rot @ self.u, v=rot @ self.v)

    def sample(self, rng: np.random.Generator, density: float) -> Sampled:
        n = rng.poisson(self.area * density)
        if n == 0:
            return Sampled.empty()
        st = rng.random((n, 2))
        width = float(np.linalg.norm(self.u))
        uh = self.u / width
        nrm = cross3(self.u, self.v)
        nrm = nrm / np.linalg.norm(nrm)
        k = 2 * np.pi * width / self.wavelength
        phase = k * st[:, 0] + self.phase
        points = self.origin + st[:, :1] * self.u + st[:, 1:] * self.v + (self.amp * np.sin(phase))[:, None] * nrm
        slope = self.amp * 2 * np.pi / self.wavelength * np.cos(phase)
        normals = nrm[None, :] - slope[:, None] * uh[None, :]
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        return Sampled(points, normals, st * np.array([width, np.linalg.norm(self.v)]))


@dataclass
class Frustum:
    """A vertical elliptic frustum from ``z0`` (radii rx0, ry0) to ``z1`` (rx1, ry1) around ``center``.

    ``caps``: which of "bottom"/"top" discs to sample; ``inward`` flips the normals (inside of a bowl).
    """

    center: np.ndarray
    rx0: float
    ry0: float
    rx1: float
    ry1: float
    z0: float
    z1: float
    caps: tuple[str, ...] = ()
    inward: bool = False
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))

    def _mean_perimeter(self) -> float:
        a, b = (self.rx0 + self.rx1) / 2, (self.ry0 + self.ry1) / 2
        return float(np.pi * (3 * (a + b) - np.sqrt(max((3 * a + b) * (a + 3 * b), 0.0))))  # Ramanujan

    @property
    def area(self) -> float:
        slant = np.hypot(self.z1 - self.z0, ((self.rx1 - self.rx0) + (self.ry1 - self.ry0)) / 2)
        side = self._mean_perimeter() * slant
        caps = (np.pi * self.rx0 * self.ry0 if "bottom" in self.caps else 0.0) + (np.pi * self.rx1 * self.ry1 if "top" in self.caps else 0.0)
        return float(side + caps)

    def placed(self, rot: np.ndarray, shift: np.ndarray) -> "Frustum":
        return replace(self, center=rot @ self.center + shift, rot=rot @ self.rot)

    def sample(self, rng: np.random.Generator, density: float) -> Sampled:
        parts = []
        slant = np.hypot(self.z1 - self.z0, ((self.rx1 - self.rx0) + (self.ry1 - self.ry0)) / 2)
        n = rng.poisson(self._mean_perimeter() * slant * density)
        if n:
            theta = rng.random(n) * 2 * np.pi
            h = rng.random(n)
            rx = self.rx0 + (self.rx1 - self.rx0) * h
            ry = self.ry0 + (self.ry1 - self.ry0) * h
            p = np.stack([rx * np.cos(theta), ry * np.sin(theta), self.z0 + (self.z1 - self.z0) * h], axis=1)
            dz, drx, dry = self.z1 - self.z0, self.rx1 - self.rx0, self.ry1 - self.ry0
            c, si = np.cos(theta), np.sin(theta)
            # normal = dP/dtheta x dP/dh (outward)
            nr = np.stack([ry * dz * c, rx * dz * si, -rx * dry * si**2 - ry * drx * c**2], axis=1)
            st = np.stack([theta * (rx + ry) / 2, h * dz], axis=1)
            parts.append((p, nr, st))
        for cap, z, a, b, sign in (("bottom", self.z0, self.rx0, self.ry0, -1.0), ("top", self.z1, self.rx1, self.ry1, 1.0)):
            if cap not in self.caps:
                continue
            n = rng.poisson(np.pi * a * b * density)
            if n:
                r = np.sqrt(rng.random(n))
                theta = rng.random(n) * 2 * np.pi
                p = np.stack([a * r * np.cos(theta), b * r * np.sin(theta), np.full(n, z)], axis=1)
                nr = np.tile([0.0, 0.0, sign], (n, 1))
                parts.append((p, nr, p[:, :2].copy()))
        if not parts:
            return Sampled.empty()
        p = np.concatenate([x[0] for x in parts])
        nr = np.concatenate([x[1] for x in parts])
        nr /= np.linalg.norm(nr, axis=1, keepdims=True)
        if self.inward:
            nr = -nr
        return Sampled(p @ self.rot.T + self.center, nr @ self.rot.T, np.concatenate([x[2] for x in parts]))


@dataclass
class Ellipsoid:
    """An axis-aligned (in the local frame) ellipsoid surface; ``zmin`` cuts it flat from below."""

    center: np.ndarray
    radii: tuple[float, float, float]
    zmin: float | None = None
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))

    @property
    def area(self) -> float:
        a, b, c = self.radii
        p = 1.6075
        return float(4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p))

    def placed(self, rot: np.ndarray, shift: np.ndarray) -> "Ellipsoid":
        return replace(self, center=rot @ self.center + shift, rot=rot @ self.rot)

    def sample(self, rng: np.random.Generator, density: float) -> Sampled:
        n = rng.poisson(self.area * density)
        if n == 0:
            return Sampled.empty()
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        r = np.asarray(self.radii)
        p = d * r
        nr = d / r
        nr /= np.linalg.norm(nr, axis=1, keepdims=True)
        if self.zmin is not None:
            keep = p[:, 2] >= self.zmin
            p, nr, d = p[keep], nr[keep], d[keep]
        st = np.stack([np.arctan2(d[:, 1], d[:, 0]) * (r[0] + r[1]) / 2, p[:, 2]], axis=1)
        return Sampled(p @ self.rot.T + self.center, nr @ self.rot.T, st)


Surface = Rect | Wavy | Frustum | Ellipsoid

FACES = ("x-", "x+", "y-", "y+", "z-", "z+")


def box_faces(lo, hi, skip: tuple[str, ...] = ()) -> list[Rect]:
    """The six outward faces of the axis-aligned box [lo, hi] (minus the ``skip``ped ones: "z-" etc.)."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    dx, dy, dz = hi - lo
    ex, ey, ez = np.array([dx, 0, 0]), np.array([0, dy, 0]), np.array([0, 0, dz])
    faces = {
        "x-": Rect(lo.copy(), ez.copy(), ey.copy()),
        "x+": Rect(lo + ex, ey.copy(), ez.copy()),
        "y-": Rect(lo.copy(), ex.copy(), ez.copy()),
        "y+": Rect(lo + ey, ez.copy(), ex.copy()),
        "z-": Rect(lo.copy(), ey.copy(), ex.copy()),
        "z+": Rect(lo + ez, ex.copy(), ey.copy()),
    }
    return [f for name, f in faces.items() if name not in skip and f.area > 0]


@dataclass
class Solid:
    """An oriented box that hides other objects' points inside it (hidden-surface removal).

    ``spare``: object categories it does not hide (a sink basin reaching into its cabinet).
    """

    lo: np.ndarray
    hi: np.ndarray
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))
    shift: np.ndarray = field(default_factory=lambda: np.zeros(3))
    spare: tuple[str, ...] = ()

    def placed(self, rot: np.ndarray, shift: np.ndarray) -> "Solid":
        return Solid(self.lo, self.hi, rot @ self.rot, rot @ self.shift + shift, self.spare)

    def contains(self, points: np.ndarray, margin: float) -> np.ndarray:
        local = (points - self.shift) @ self.rot
        return np.all((local >= self.lo - margin) & (local <= self.hi + margin), axis=1)

    def world_bounds(self, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned room-frame bounds of the (margin-grown) box."""
        lo, hi = self.lo - margin, self.hi + margin
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        world = corners @ self.rot.T + self.shift
        return world.min(axis=0), world.max(axis=0)
