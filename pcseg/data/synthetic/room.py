"""One synthetic room: layout -> surface samples -> a scanner-like point cloud with ground truth.

Scanner model (occlusion by walls is ignored, hidden surfaces inside furniture are removed):
- surfaces are sampled uniformly, then thinned by distance to, and viewing angle from, a few
  virtual scanner positions, so density varies across the room as in a hand-held scan;
- positions get noise along the surface normal (and a little along it), colours get shading from a
  light from above, a slowly varying exposure field, a room-wide white balance and per-point noise;
- the point count is drawn per room (about 50k-150k) so CPU training stays cheap.

The ground truth is the object every point was sampled from; the writers turn it into ScanNet
segGroups / S3DIS annotation files, and the tests check that the readers give it back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pcseg.data.classes import IGNORE_INDEX, nyu40_to_scannet20, s3dis_class_id
from pcseg.data.synthetic.layout import ROOM_SIZES, Layout, furnish
from pcseg.data.synthetic.objects import CATEGORIES, U
from pcseg.utils.rng import numpy_rng

POINTS_RANGE = (55_000, 140_000)
MIN_POINTS = 50_000
HIDDEN_MARGIN = 0.015


@dataclass
class Room:
    """A generated room and its ground truth.

    Attributes:
        index: room number in the dataset.
        room_type: one of ROOM_TYPES.
        coord: (N, 3) float32 metres (a random scanner frame: rotated about z and shifted).
        color: (N, 3) uint8 RGB.
        point_object: (N,) int32 index into ``objects`` of each point.
        point_surface: (N,) int32 global index of the surface each point came from.
        objects: (raw ScanNet category, annotated in ScanNet?) per object.
    """

    index: int
    room_type: str
    coord: np.ndarray
    color: np.ndarray
    point_object: np.ndarray
    point_surface: np.ndarray
    objects: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def num_points(self) -> int:
        return int(self.coord.shape[0])

    def scannet20(self) -> np.ndarray:
        """(N,) ground-truth scannet20 ids (-1 for unannotated objects and non-benchmark classes)."""
        lut = np.array([nyu40_to_scannet20(np.array([CATEGORIES[c][0]]))[0] if ann else IGNORE_INDEX for c, ann in self.objects])
        return lut[self.point_object].astype(np.int32)

    def s3dis13(self) -> np.ndarray:
        """(N,) ground-truth s3dis13 ids (every object is annotated in S3DIS)."""
        lut = np.array([s3dis_class_id(CATEGORIES[c][2]) for c, _ in self.objects])
        return lut[self.point_object].astype(np.int32)

    def scannet_instance(self) -> np.ndarray:
        """(N,) ScanNet objectId per point: annotated objects numbered 0..K-1 in object order, else -1."""
        ids = np.full(len(self.objects), IGNORE_INDEX, dtype=np.int64)
        annotated = [i for i, (_, ann) in enumerate(self.objects) if ann]
        ids[annotated] = np.arange(len(annotated))
        return ids[self.point_object].astype(np.int32)


class _ColumnIndex:
    """Points bucketed in vertical columns of a 2-D grid, for fast box queries."""

    def __init__(self, points: np.ndarray, cell: float = 0.4):
        self.cell = cell
        self.origin = points[:, :2].min(axis=0)
        ij = np.floor((points[:, :2] - self.origin) / cell).astype(np.int64)
        self.ny = int(ij[:, 1].max()) + 1
        self.nx = int(ij[:, 0].max()) + 1
        key = ij[:, 0] * self.ny + ij[:, 1]
        self.order = np.argsort(key, kind="stable")
        self.sorted_keys = key[self.order]

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Indices of points in the columns overlapping the box [lo, hi] (a superset of the box)."""
        i0, j0 = np.floor((lo[:2] - self.origin) / self.cell).astype(np.int64)
        i1, j1 = np.floor((hi[:2] - self.origin) / self.cell).astype(np.int64)
        i0, i1 = max(i0, 0), min(i1, self.nx - 1)
        j0, j1 = max(j0, 0), min(j1, self.ny - 1)
        if i0 > i1 or j0 > j1:
            return np.zeros(0, dtype=np.int64)
        rows = np.arange(i0, i1 + 1) * self.ny
        starts = np.searchsorted(self.sorted_keys, rows + j0)
        ends = np.searchsorted(self.sorted_keys, rows + j1, side="right")
        return np.concatenate([self.order[a:b] for a, b in zip(starts, ends)])


# Every 8 rooms: two bathrooms and two offices, one of each other type (so every split of 8+ rooms
# has every kind of room, and the small bathroom classes are not too rare).
ROOM_CYCLE = ("bedroom", "office", "bathroom", "living", "kitchen", "conference", "bathroom", "office")


def room_type_for(index: int) -> str:
    """Room types cycle with the index (ROOM_CYCLE)."""
    return ROOM_CYCLE[index % len(ROOM_CYCLE)]


def build_layout(rng: np.random.Generator, room_type: str) -> Layout:
    (x0, x1), (y0, y1) = ROOM_SIZES[room_type]
    lay = Layout(rng, U(rng, x0, x1), U(rng, y0, y1), U(rng, 2.4, 3.2) if room_type != "bathroom" else U(rng, 2.3, 2.7))
    n_doors = 1 + int(room_type in ("office", "living", "conference") and rng.random() < 0.35)
    for _ in range(n_doors):
        lay.add_door()
    n_windows = int(rng.integers(0, 2)) if room_type == "bathroom" else int(rng.integers(1, 4))
    for _ in range(n_windows):
        lay.add_window(small=room_type == "bathroom")
    lay.dress_windows(p_curtain=0.0 if room_type == "bathroom" else 0.55, p_radiator=0.35)
    lay.structure_extras()
    furnish(lay, room_type)
    lay.shell()
    return lay


def generate_room(index: int, seed: int, room_type: str | None = None) -> Room:
    """Generate room ``index`` of the dataset with ``seed`` (deterministic in both)."""
    rng = numpy_rng(seed, "synthetic-room", index)
    room_type = room_type or room_type_for(index)
    lay = build_layout(rng, room_type)
    objects = [o for o in lay.objects if o.category in CATEGORIES]

    target = int(rng.integers(*POINTS_RANGE))
    if room_type == "bathroom":
        target = int(rng.integers(MIN_POINTS + 5_000, 90_000))
    total_area = sum(o.area for o in objects)
    density = 2.0 * target / max(total_area, 1e-6)

    # 1. sample every surface
    pts, nrm, col, obj_id, surf_id = [], [], [], [], []
    surface_index = 0
    for oi, obj in enumerate(objects):
        for surf, mat, dens in obj.surfaces:
            s = surf.sample(rng, density * dens)
            if s.points.shape[0]:
                pts.append(s.points)
                nrm.append(s.normals)
                col.append(mat.colorize(s.st))
                obj_id.append(np.full(s.points.shape[0], oi, dtype=np.int32))
                surf_id.append(np.full(s.points.shape[0], surface_index, dtype=np.int32))
            surface_index += 1
    points = np.concatenate(pts)
    normals = np.concatenate(nrm)
    colors = np.concatenate(col)
    point_object = np.concatenate(obj_id)
    point_surface = np.concatenate(surf_id)
    categories = np.array([o.category for o in objects])

    # 2. hidden surfaces: points of other objects inside a solid part
    visible = np.ones(points.shape[0], dtype=bool)
    grid = _ColumnIndex(points)
    for oi, obj in enumerate(objects):
        for solid in obj.solids:
            lo, hi = solid.world_bounds(HIDDEN_MARGIN)
            cand = grid.query(lo, hi)
            cand = cand[np.all((points[cand] >= lo) & (points[cand] <= hi), axis=1) & (point_object[cand] != oi)]
            if solid.spare:
                cand = cand[~np.isin(categories[point_object[cand]], solid.spare)]
            visible[cand[solid.contains(points[cand], HIDDEN_MARGIN)]] = False
    keep = np.flatnonzero(visible)

    # 3. scanner-like thinning: distance and viewing angle to the nearest of a few scan positions
    n_scan = int(rng.integers(2, 5))
    scanners = np.stack([rng.uniform(0.5, lay.lx - 0.5, n_scan), rng.uniform(0.5, lay.ly - 0.5, n_scan),
                         rng.uniform(1.1, 1.6, n_scan)], axis=1)
    p = points[keep]
    best = np.full(len(p), np.inf)
    to_scanner = np.zeros_like(p)
    for sc in scanners:
        diff = sc - p
        d2 = np.einsum("ij,ij->i", diff, diff)
        closer = d2 < best
        best[closer] = d2[closer]
        to_scanner[closer] = diff[closer]
    d = np.sqrt(best)
    cos = np.abs(np.einsum("ij,ij->i", normals[keep], to_scanner)) / np.maximum(d, 1e-6)
    prob = np.clip((2.2 / np.maximum(d, 1e-3)) ** 2, 0.25, 1.0) * (0.35 + 0.65 * cos)
    keep = keep[rng.random(len(keep)) < prob]
    if len(keep) > target:
        keep = np.sort(rng.choice(keep, size=target, replace=False))

    points, normals, colors = points[keep], normals[keep], colors[keep]
    point_object, point_surface = point_object[keep], point_surface[keep]

    # 4. sensor noise on positions
    sigma = U(rng, 0.002, 0.006)
    points = points + normals * rng.normal(0.0, sigma, (len(points), 1)) + rng.normal(0.0, 0.0015, points.shape)

    # 5. colour: shading, exposure field, white balance, noise
    light = np.array([U(rng, -0.3, 0.3), U(rng, -0.3, 0.3), 1.0])
    light /= np.linalg.norm(light)
    shade = 0.72 + 0.28 * (normals @ light)
    exposure = np.ones(len(points))
    for _ in range(3):
        k = rng.normal(size=3)
        k *= 2 * np.pi / (np.linalg.norm(k) * U(rng, 1.5, 4.0))
        exposure += U(rng, 0.02, 0.06) * np.sin(points @ k + U(rng, 0, 6.3))
    balance = np.array([U(rng, 0.93, 1.07) for _ in range(3)]) * U(rng, 0.82, 1.08)
    colors = colors * (shade * exposure)[:, None] * balance + rng.normal(0.0, U(rng, 2.5, 6.0), colors.shape)
    colors = np.clip(np.rint(colors), 0, 255).astype(np.uint8)

    # 6. scanner frame: random rotation about z and offset; vertex order shuffled like a fused mesh
    yaw = U(rng, 0, 2 * np.pi)
    c, s = np.cos(yaw), np.sin(yaw)
    centre = np.array([lay.lx / 2, lay.ly / 2, 0.0])
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    offset = np.array([U(rng, 1.0, 5.0), U(rng, 1.0, 5.0), U(rng, -0.08, 0.08)])
    points = (points - centre) @ rot.T + offset
    order = rng.permutation(len(points))
    return Room(
        index=index,
        room_type=room_type,
        coord=points[order].astype(np.float32),
        color=colors[order],
        point_object=point_object[order],
        point_surface=point_surface[order],
        objects=[(o.category, o.annotated) for o in objects],
    )
