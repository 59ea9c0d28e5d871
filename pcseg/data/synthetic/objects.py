"""Furniture and room fixtures of the synthetic generator, built from primitives.

Every builder returns a :class:`SynthObject` in its local frame: footprint centred on the origin,
standing on z = 0, front facing +y (the back, -y, goes against a wall). Sizes, proportions,
construction details and finishes are drawn from the generator, so two chairs are never the same.
``CATEGORIES`` lists the raw ScanNet category and NYU40 id of every object kind the generator
writes, and the S3DIS class used for the S3DIS layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pcseg.data.synthetic import materials as M
from pcseg.data.synthetic.primitives import Ellipsoid, Frustum, Rect, Solid, Surface, Wavy, box_faces, yaw_matrix

# raw ScanNet category -> (NYU40 id, NYU40 class name, S3DIS class). NYU40 ids as in ScanNet's
# scannetv2-labels.combined.tsv.
CATEGORIES: dict[str, tuple[int, str, str]] = {
    "wall": (1, "wall", "wall"),
    "floor": (2, "floor", "floor"),
    "ceiling": (22, "ceiling", "ceiling"),
    "door": (8, "door", "door"),
    "window": (9, "window", "window"),
    "curtain": (16, "curtain", "clutter"),
    "picture": (11, "picture", "clutter"),
    "whiteboard": (30, "whiteboard", "board"),
    "table": (7, "table", "table"),
    "coffee table": (7, "table", "table"),
    "dining table": (7, "table", "table"),
    "desk": (14, "desk", "table"),
    "chair": (5, "chair", "chair"),
    "office chair": (5, "chair", "chair"),
    "armchair": (5, "chair", "chair"),
    "couch": (6, "sofa", "sofa"),
    "sofa": (6, "sofa", "sofa"),
    "bed": (4, "bed", "clutter"),
    "pillow": (18, "pillow", "clutter"),
    "nightstand": (32, "night stand", "clutter"),
    "cabinet": (3, "cabinet", "clutter"),
    "kitchen cabinet": (3, "cabinet", "clutter"),
    "file cabinet": (3, "cabinet", "clutter"),
    "bathroom vanity": (3, "cabinet", "clutter"),
    "bookshelf": (10, "bookshelf", "bookcase"),
    "kitchen counter": (12, "counter", "table"),
    "counter": (12, "counter", "clutter"),
    "refrigerator": (24, "refridgerator", "clutter"),
    "toilet": (33, "toilet", "clutter"),
    "sink": (34, "sink", "clutter"),
    "bathtub": (36, "bathtub", "clutter"),
    "shower curtain": (28, "shower curtain", "clutter"),
    "trash can": (39, "otherfurniture", "clutter"),
    "radiator": (39, "otherfurniture", "clutter"),
    "ottoman": (39, "otherfurniture", "clutter"),
    "tv stand": (39, "otherfurniture", "clutter"),
    "lamp": (35, "lamp", "clutter"),
    "monitor": (40, "otherprop", "clutter"),
    "tv": (25, "television", "clutter"),
    "plant": (40, "otherprop", "clutter"),
    "rug": (40, "otherprop", "clutter"),
    "box": (29, "box", "clutter"),
    "mirror": (19, "mirror", "clutter"),
    "towel": (27, "towel", "clutter"),
    "column": (38, "otherstructure", "column"),
    "beam": (38, "otherstructure", "beam"),
    "clutter": (40, "otherprop", "clutter"),
}


@dataclass
class SynthObject:
    """One annotated (or deliberately unannotated) object.

    Attributes:
        category: raw ScanNet category (a key of CATEGORIES).
        surfaces: (surface, material, relative density) triples.
        solids: boxes that hide other objects' points (and the floor / wall behind).
        size: (width x, depth y, height z) of the footprint box in the local frame.
        annotated: False = present in the scan but in no ScanNet segGroup (label -1).
        yaw, position: the pose once placed (local -> room).
        wall, t: for objects placed against a wall, which wall and the position along it.
    """

    category: str
    surfaces: list[tuple[Surface, M.Material, float]] = field(default_factory=list)
    solids: list[Solid] = field(default_factory=list)
    size: tuple[float, float, float] = (0.0, 0.0, 0.0)
    annotated: bool = True
    yaw: float = 0.0
    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    wall: int = -1  # set by Layout.on_wall: the wall it stands against and where along it
    t: float = 0.0

    def box(self, lo, hi, mat: M.Material, skip=(), solid: bool = True, density: float = 1.0, yaw: float = 0.0,
            pivot=(0.0, 0.0, 0.0)) -> None:
        """Add an axis-aligned box (optionally turned by ``yaw`` about ``pivot``)."""
        rot = yaw_matrix(yaw)
        pivot = np.asarray(pivot, dtype=float)
        shift = pivot - rot @ pivot
        for face in box_faces(lo, hi, skip):
            self.surfaces.append((face.placed(rot, shift) if yaw else face, mat, density))
        if solid:
            self.solids.append(Solid(np.asarray(lo, float), np.asarray(hi, float), rot, shift))

    def add(self, surface: Surface, mat: M.Material, density: float = 1.0) -> None:
        self.surfaces.append((surface, mat, density))

    def placed(self, yaw: float, x: float, y: float, z: float = 0.0) -> "SynthObject":
        """This object moved into the room (rotated by ``yaw`` about z, then translated)."""
        rot = yaw_matrix(yaw)
        shift = np.array([x, y, z], dtype=float)
        return SynthObject(
            self.category,
            [(s.placed(rot, shift), m, d) for s, m, d in self.surfaces],
            [s.placed(rot, shift) for s in self.solids],
            self.size, self.annotated, yaw, shift,
        )

    @property
    def area(self) -> float:
        return float(sum(s.area * d for s, _, d in self.surfaces))

    def footprint(self) -> tuple[float, float, float, float]:
        """Axis-aligned (xmin, ymin, xmax, ymax) of the placed footprint."""
        w, d, _ = self.size
        corners = np.array([[-w / 2, -d / 2], [w / 2, -d / 2], [w / 2, d / 2], [-w / 2, d / 2]])
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        xy = corners @ np.array([[c, s], [-s, c]]) + self.position[:2]
        return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def U(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _legs(obj: SynthObject, w: float, d: float, h: float, t: float, inset: float, mat: M.Material, round_legs: bool) -> None:
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (w / 2 - inset - t / 2), sy * (d / 2 - inset - t / 2)
            if round_legs:
                obj.add(Frustum(np.array([cx, cy, 0.0]), t / 2, t / 2, t / 2, t / 2, 0.0, h), mat)
                obj.solids.append(Solid(np.array([cx - t / 2, cy - t / 2, 0]), np.array([cx + t / 2, cy + t / 2, h])))
            else:
                obj.box((cx - t / 2, cy - t / 2, 0), (cx + t / 2, cy + t / 2, h), mat, skip=("z-", "z+"))


# --------------------------------------------------------------------------- tables and desks
def table(rng: np.random.Generator, kind: str = "table") -> SynthObject:
    """Dining / meeting / coffee table: a top on four legs, a pedestal, or (coffee) a lower shelf."""
    finish = M.furniture_finish(rng)
    legs_mat = finish if rng.random() < 0.6 else M.flat(rng, M.METALS + M.BLACKS)
    if kind == "coffee table":
        w, d, h = U(rng, 0.8, 1.3), U(rng, 0.45, 0.7), U(rng, 0.38, 0.5)
    elif kind == "conference":
        w, d, h, kind = U(rng, 2.2, 4.0), U(rng, 1.0, 1.4), U(rng, 0.72, 0.78), "table"
    else:
        w, d, h = U(rng, 0.9, 1.8), U(rng, 0.7, 1.0), U(rng, 0.72, 0.78)
    top_t = U(rng, 0.025, 0.05)
    obj = SynthObject(kind, size=(w, d, h))
    round_top = kind != "coffee table" and w < 1.3 and rng.random() < 0.3
    if round_top:
        r = min(w, d + 0.2) / 2
        obj.size = (2 * r, 2 * r, h)
        obj.add(Frustum(np.zeros(3), r, r, r, r, h - top_t, h, caps=("bottom", "top")), finish)
        obj.solids.append(Solid(np.array([-r * 0.7, -r * 0.7, h - top_t]), np.array([r * 0.7, r * 0.7, h])))
        obj.add(Frustum(np.zeros(3), 0.04, 0.04, 0.04, 0.04, 0.05, h - top_t), legs_mat)
        obj.add(Frustum(np.zeros(3), 0.25, 0.25, 0.25, 0.25, 0.0, 0.05, caps=("top",)), legs_mat)
        return obj
    obj.box((-w / 2, -d / 2, h - top_t), (w / 2, d / 2, h), finish)
    leg_t = U(rng, 0.035, 0.08)
    _legs(obj, w, d, h - top_t, leg_t, U(rng, 0.02, 0.12), legs_mat, rng.random() < 0.35)
    if kind == "coffee table" and rng.random() < 0.5:
        obj.box((-w / 2 + 0.05, -d / 2 + 0.05, 0.08), (w / 2 - 0.05, d / 2 - 0.05, 0.1), finish)
    elif kind != "coffee table" and rng.random() < 0.5:  # apron under the top
        a = U(rng, 0.06, 0.12)
        obj.box((-w / 2 + 0.08, -d / 2 + 0.08, h - top_t - a), (w / 2 - 0.08, d / 2 - 0.08, h - top_t), finish, skip=("z+",))
    return obj


def desk(rng: np.random.Generator) -> SynthObject:
    """Desk: a top on panel sides or a drawer pedestal, with a modesty panel at the back."""
    finish = M.furniture_finish(rng)
    w, d, h = U(rng, 1.1, 1.8), U(rng, 0.6, 0.8), U(rng, 0.71, 0.77)
    top_t = U(rng, 0.025, 0.04)
    obj = SynthObject("desk", size=(w, d, h))
    obj.box((-w / 2, -d / 2, h - top_t), (w / 2, d / 2, h), finish)
    side_t = U(rng, 0.02, 0.04)
    style = rng.random()
    if style < 0.5:  # two panel sides
        for sx in (-1, 1):
            x0 = sx * (w / 2) - (side_t if sx > 0 else 0)
            obj.box((x0, -d / 2 + 0.02, 0), (x0 + side_t, d / 2 - 0.02, h - top_t), finish, skip=("z+",))
    else:  # drawer pedestal on one side, a panel or legs on the other
        pw = U(rng, 0.38, 0.48)
        side = 1 if rng.random() < 0.5 else -1
        x0, x1 = (w / 2 - pw, w / 2) if side > 0 else (-w / 2, -w / 2 + pw)
        obj.box((x0, -d / 2 + 0.03, 0), (x1, d / 2 - 0.02, h - top_t), finish, skip=("z+", "z-"))
        for k in range(3):  # drawer fronts and handles
            z = 0.06 + k * (h - top_t - 0.08) / 3
            obj.box((x0 + 0.02, d / 2 - 0.02, z + 0.02), (x1 - 0.02, d / 2 - 0.005, z + (h - top_t - 0.08) / 3 - 0.02),
                    M.flat(rng, M.GREYS) if rng.random() < 0.3 else finish, skip=("y-",), solid=False)
        ox = -side * (w / 2 - side_t / 2)
        obj.box((ox - side_t / 2, -d / 2 + 0.02, 0), (ox + side_t / 2, d / 2 - 0.02, h - top_t), finish, skip=("z+",))
    if rng.random() < 0.7:
        obj.box((-w / 2 + side_t, -d / 2 + 0.02, h - top_t - U(rng, 0.3, 0.45)), (w / 2 - side_t, -d / 2 + 0.04, h - top_t), finish,
                skip=("z+",))
    return obj


# --------------------------------------------------------------------------- seating
def chair(rng: np.random.Generator, style: str | None = None) -> SynthObject:
    """Four-legged chair or office chair (pole on a five-spoke base), seat and back, optional arms."""
    style = style or ("office" if rng.random() < 0.45 else "plain")
    seat_w, seat_d = U(rng, 0.4, 0.52), U(rng, 0.4, 0.5)
    seat_h, seat_t = U(rng, 0.42, 0.5), U(rng, 0.03, 0.09)
    back_h, back_t = U(rng, 0.3, 0.55), U(rng, 0.025, 0.08)
    cover = M.fabric(rng) if rng.random() < 0.6 else M.furniture_finish(rng)
    frame = M.flat(rng, M.BLACKS + M.METALS) if style == "office" or rng.random() < 0.4 else M.wood(rng)
    obj = SynthObject("office chair" if style == "office" else "chair", size=(seat_w, seat_d, seat_h + back_h))
    obj.box((-seat_w / 2, -seat_d / 2, seat_h - seat_t), (seat_w / 2, seat_d / 2, seat_h), cover)
    tilt = U(rng, 0.0, 0.06)
    obj.box((-seat_w / 2 + 0.01, -seat_d / 2 - tilt, seat_h + 0.02), (seat_w / 2 - 0.01, -seat_d / 2 - tilt + back_t, seat_h + back_h),
            cover)
    if style == "office":
        obj.add(Frustum(np.zeros(3), 0.025, 0.025, 0.025, 0.025, 0.08, seat_h - seat_t), frame)
        spoke_r = U(rng, 0.26, 0.33)
        phase = U(rng, 0, 2 * np.pi)
        for k in range(5):
            obj.box((0, -0.02, 0.05), (spoke_r, 0.02, 0.09), frame, yaw=phase + k * 2 * np.pi / 5, solid=False)
            a = phase + k * 2 * np.pi / 5
            obj.add(Ellipsoid(np.array([spoke_r * np.cos(a), spoke_r * np.sin(a), 0.03]), (0.03, 0.03, 0.03)), M.flat(rng, M.BLACKS))
        obj.size = (max(seat_w, 2 * spoke_r), max(seat_d, 2 * spoke_r), seat_h + back_h)
        obj.box((-0.015, -seat_d / 2 - tilt, seat_h - 0.05), (0.015, -seat_d / 2 - tilt + 0.02, seat_h + 0.05), frame, solid=False)
    else:
        _legs(obj, seat_w, seat_d, seat_h - seat_t, U(rng, 0.025, 0.045), 0.01, frame, rng.random() < 0.3)
    if rng.random() < (0.6 if style == "office" else 0.2):
        for sx in (-1, 1):
            x = sx * (seat_w / 2 - 0.02)
            obj.box((x - 0.025, -seat_d / 2, seat_h + 0.18), (x + 0.025, seat_d / 2 - 0.08, seat_h + 0.22), frame)
            obj.box((x - 0.012, -0.02, seat_h), (x + 0.012, 0.02, seat_h + 0.18), frame, solid=False)
    return obj


def sofa(rng: np.random.Generator, seats: int | None = None) -> SynthObject:
    """Sofa (or, with one seat, an armchair): base, seat cushions, back cushions, arms, short feet."""
    seats = seats or int(rng.integers(2, 4))
    cover = M.fabric(rng) if rng.random() < 0.8 else M.flat(rng, M.BLACKS + [(110, 70, 45)])
    seat_w = U(rng, 0.55, 0.7)
    arm_w = U(rng, 0.08, 0.25)
    w, d = seats * seat_w + 2 * arm_w, U(rng, 0.8, 1.0)
    base_h, seat_h, back_h, arm_h = U(rng, 0.1, 0.18), U(rng, 0.4, 0.47), U(rng, 0.72, 0.92), U(rng, 0.52, 0.68)
    back_d = U(rng, 0.15, 0.28)
    obj = SynthObject("armchair" if seats == 1 else ("couch" if rng.random() < 0.5 else "sofa"), size=(w, d, back_h))
    feet = M.flat(rng, M.BLACKS + M.WOODS)
    obj.box((-w / 2 + 0.02, -d / 2 + 0.02, 0.05), (w / 2 - 0.02, d / 2 - 0.02, base_h), cover, skip=("z-",))
    _legs(obj, w, d, 0.05, 0.04, 0.04, feet, False)
    for k in range(seats):
        x0 = -w / 2 + arm_w + k * seat_w
        obj.box((x0 + 0.005, -d / 2 + back_d, base_h), (x0 + seat_w - 0.005, d / 2 - 0.01, seat_h), cover)
        obj.box((x0 + 0.005, -d / 2, base_h), (x0 + seat_w - 0.005, -d / 2 + back_d, back_h), cover)
    for sx in (-1, 1):
        x0 = -w / 2 if sx < 0 else w / 2 - arm_w
        obj.box((x0, -d / 2, base_h), (x0 + arm_w, d / 2, arm_h), cover)
    return obj


def ottoman(rng: np.random.Generator) -> SynthObject:
    w = U(rng, 0.4, 0.7)
    d = w if rng.random() < 0.6 else U(rng, 0.35, 0.6)
    h = U(rng, 0.35, 0.45)
    obj = SynthObject("ottoman", size=(w, d, h))
    if rng.random() < 0.4:
        obj.add(Frustum(np.zeros(3), w / 2, w / 2, w / 2, w / 2, 0.0, h, caps=("top",)), M.fabric(rng))
        obj.solids.append(Solid(np.array([-w / 3, -w / 3, 0]), np.array([w / 3, w / 3, h])))
        obj.size = (w, w, h)
    else:
        obj.box((-w / 2, -d / 2, 0), (w / 2, d / 2, h), M.fabric(rng), skip=("z-",))
    return obj


# --------------------------------------------------------------------------- bedroom
def bed(rng: np.random.Generator) -> tuple[SynthObject, list[SynthObject]]:
    """Bed (frame, mattress, blanket, headboard) and its pillows (separate objects, as in ScanNet)."""
    w = U(rng, 0.9, 1.05) if rng.random() < 0.35 else U(rng, 1.35, 1.85)
    length = U(rng, 1.95, 2.15)
    frame_h, mat_h = U(rng, 0.18, 0.35), U(rng, 0.18, 0.28)
    head_h = U(rng, 0.8, 1.25)
    frame = M.wood(rng) if rng.random() < 0.6 else M.fabric(rng)
    sheet = M.flat(rng, M.WHITES + M.FABRICS[-3:], val=0.1)
    blanket = M.fabric(rng)
    obj = SynthObject("bed", size=(w, length, head_h))
    obj.box((-w / 2, -length / 2, 0), (w / 2, length / 2, frame_h), frame, skip=("z-",))
    obj.box((-w / 2 + 0.02, -length / 2 + 0.05, frame_h), (w / 2 - 0.02, length / 2 - 0.02, frame_h + mat_h), sheet)
    cover_from = U(rng, -0.15, 0.2)
    obj.box((-w / 2 + 0.005, cover_from, frame_h + 0.03), (w / 2 - 0.005, length / 2 - 0.005, frame_h + mat_h + 0.03), blanket,
            skip=("z-", "y-"), solid=False)
    obj.box((-w / 2 - 0.02, -length / 2 - 0.06, 0), (w / 2 + 0.02, -length / 2, head_h), frame, skip=("y-",))
    pillows = []
    n_p = 1 if w < 1.2 else 2
    for k in range(n_p):
        cx = 0.0 if n_p == 1 else (k - 0.5) * w / 2
        p = SynthObject("pillow", size=(0.5, 0.35, 0.15))
        pw = min(U(rng, 0.25, 0.33), w / (2 * n_p) - 0.02)
        p.add(Ellipsoid(np.array([cx, -length / 2 + 0.28, frame_h + mat_h + 0.05]), (pw, U(rng, 0.16, 0.2), U(rng, 0.06, 0.1)),
                        zmin=-0.05), sheet if rng.random() < 0.5 else M.fabric(rng))
        pillows.append(p)
    return obj, pillows


def nightstand(rng: np.random.Generator) -> SynthObject:
    w, d, h = U(rng, 0.38, 0.55), U(rng, 0.35, 0.45), U(rng, 0.45, 0.62)
    finish = M.furniture_finish(rng)
    obj = SynthObject("nightstand", size=(w, d, h))
    obj.box((-w / 2, -d / 2, 0.0), (w / 2, d / 2, h), finish, skip=("z-", "y-"))
    obj.box((-0.04, d / 2, h - 0.12), (0.04, d / 2 + 0.02, h - 0.1), M.flat(rng, M.METALS), solid=False)
    return obj


# --------------------------------------------------------------------------- storage
def cabinet(rng: np.random.Generator, kind: str = "cabinet", w: float | None = None, d: float | None = None,
            h: float | None = None, finish: M.Material | None = None) -> SynthObject:
    """Closed cabinet with door / drawer fronts and handles (``kind`` picks the raw category)."""
    if kind == "file cabinet":
        w, d, h = w or U(rng, 0.4, 0.5), d or U(rng, 0.5, 0.65), h or U(rng, 0.7, 1.35)
    w = w or U(rng, 0.45, 1.2)
    d = d or U(rng, 0.35, 0.6)
    h = h or U(rng, 0.7, 2.0)
    finish = finish or M.furniture_finish(rng)
    obj = SynthObject(kind, size=(w, d, h))
    obj.box((-w / 2, -d / 2, 0), (w / 2, d / 2, h), finish, skip=("z-", "y-"))
    handle = M.flat(rng, M.METALS + M.BLACKS)
    drawers = kind == "file cabinet" or (h < 1.0 and rng.random() < 0.4)
    if drawers:
        n = max(2, int(h / 0.3))
        for k in range(n):
            z = (k + 0.5) * h / n
            obj.box((-0.06, d / 2, z + h / (2 * n) - 0.08), (0.06, d / 2 + 0.025, z + h / (2 * n) - 0.06), handle, solid=False)
    else:
        n_doors = 1 if w < 0.6 else 2
        for k in range(n_doors):
            x = (-0.03 if n_doors == 2 and k == 0 else 0.03) if n_doors == 2 else w / 2 - 0.06
            obj.box((x - 0.01, d / 2, h * 0.45), (x + 0.01, d / 2 + 0.025, h * 0.45 + min(0.25, h * 0.3)), handle, solid=False)
        if n_doors == 2:  # the gap between the doors reads as a dark groove
            obj.box((-0.004, d / 2 - 0.002, 0.02), (0.004, d / 2 + 0.001, h - 0.02), M.Material((35, 32, 30)), skip=("y-",), solid=False)
    return obj


def bookshelf(rng: np.random.Generator) -> SynthObject:
    """Open shelf unit (sides, top, bottom, back, shelves) filled with books of many colours."""
    w, d, h = U(rng, 0.6, 1.3), U(rng, 0.25, 0.4), U(rng, 0.9, 2.2)
    t = U(rng, 0.015, 0.03)
    finish = M.furniture_finish(rng)
    obj = SynthObject("bookshelf", size=(w, d, h))
    for sx in (-1, 1):
        x0 = -w / 2 if sx < 0 else w / 2 - t
        obj.box((x0, -d / 2, 0), (x0 + t, d / 2, h), finish, skip=("z-",))
    obj.box((-w / 2 + t, -d / 2, h - t), (w / 2 - t, d / 2, h), finish)
    obj.box((-w / 2 + t, -d / 2, 0), (w / 2 - t, -d / 2 + 0.01, h - t), finish, skip=("y-",))
    n_shelves = max(2, int(h / U(rng, 0.3, 0.42)))
    gap = h / n_shelves
    for k in range(n_shelves):
        z = k * gap
        obj.box((-w / 2 + t, -d / 2 + 0.01, z), (w / 2 - t, d / 2, z + t), finish, skip=("z-",) if k == 0 else ())
        x = -w / 2 + t + U(rng, 0.0, 0.1)
        fill_end = w / 2 - t - U(rng, 0.0, 0.4) * w
        lean = rng.random() < 0.3
        while x < fill_end - 0.02:
            bw = U(rng, 0.015, 0.06)
            bh = min(U(rng, 0.15, 0.32), gap - t - 0.02)
            bd = min(U(rng, 0.14, 0.26), d - 0.03)
            col = M.Material(M.jitter_color(rng, (rng.uniform(30, 230), rng.uniform(30, 230), rng.uniform(30, 230)), hue=0.0, sat=0.0,
                                            val=0.0))
            if bh > 0.08:
                obj.box((x, -d / 2 + 0.012, z + t), (x + bw, -d / 2 + 0.012 + bd, z + t + bh), col, skip=("z-", "y-"), solid=False)
            x += bw + (U(rng, 0.0, 0.01) if not lean else U(rng, 0.0, 0.05))
    return obj


def counter_run(rng: np.random.Generator, length: float, kitchen: bool = True) -> list[SynthObject]:
    """Kitchen counter (or bathroom vanity): cabinets under a stone top with an inset sink.

    Returns [counter, sink, cabinets...]; all share the local frame of the run (front +y).
    """
    d = U(rng, 0.58, 0.65) if kitchen else U(rng, 0.45, 0.55)
    h = U(rng, 0.86, 0.92) if kitchen else U(rng, 0.8, 0.86)
    top_t = U(rng, 0.025, 0.045)
    stone = M.Material(M.pick(rng, M.STONES), "speckle", amount=U(rng, 0.05, 0.3),
                       rgb2=M.pick(rng, M.STONES + M.BLACKS), seed=int(rng.integers(1 << 30)))
    cab_finish = M.furniture_finish(rng)
    out: list[SynthObject] = []
    # sink opening on the top
    sw, sd = U(rng, 0.4, 0.6) if kitchen else U(rng, 0.35, 0.45), U(rng, 0.32, 0.4)
    sx = U(rng, -length / 2 + sw / 2 + 0.1, length / 2 - sw / 2 - 0.1) if length > sw + 0.25 else 0.0
    sy = 0.02
    counter = SynthObject("kitchen counter" if kitchen else "counter", size=(length, d, h))
    x0, x1, y0, y1 = -length / 2, length / 2, -d / 2, d / 2 + 0.02
    hole = ((sx - sw / 2 - x0) / (x1 - x0), (sx + sw / 2 - x0) / (x1 - x0), (sy - sd / 2 - y0) / (y1 - y0), (sy + sd / 2 - y0) / (y1 - y0))
    counter.add(Rect(np.array([x0, y0, h]), np.array([x1 - x0, 0, 0]), np.array([0, y1 - y0, 0]), holes=[hole]), stone)
    for f in box_faces((x0, y0, h - top_t), (x1, y1, h), skip=("z+", "z-", "y-")):
        counter.add(f, stone)
    counter.solids.append(Solid(np.array([x0, y0, h - top_t]), np.array([sx - sw / 2, y1, h])))
    counter.solids.append(Solid(np.array([sx + sw / 2, y0, h - top_t]), np.array([x1, y1, h])))
    out.append(counter)
    steel = M.flat(rng, M.METALS) if kitchen or rng.random() < 0.3 else M.flat(rng, M.WHITES)
    sink = SynthObject("sink", size=(sw, sd, h))
    depth = U(rng, 0.15, 0.22)
    for f in box_faces((sx - sw / 2, sy - sd / 2, h - depth), (sx + sw / 2, sy + sd / 2, h), skip=("z+",)):
        f.u, f.v = f.v, f.u  # flip to inward normals (inside of the basin)
        sink.add(f, steel)
    sink.add(Frustum(np.array([sx, sy - sd / 2 - 0.06, 0.0]), 0.015, 0.015, 0.015, 0.015, h, h + U(rng, 0.18, 0.3)), M.flat(rng, M.METALS))
    sink.box((sx - 0.012, sy - sd / 2 - 0.06, h + 0.16), (sx + 0.012, sy - sd / 2 + 0.12, h + 0.19), M.flat(rng, M.METALS), solid=False)
    out.append(sink)
    # cabinets underneath, in units
    n_units = max(1, int(round(length / U(rng, 0.45, 0.8))))
    unit = length / n_units
    for k in range(n_units):
        cab = cabinet(rng, "kitchen cabinet" if kitchen else "bathroom vanity", w=unit - 0.01, d=d - 0.04, h=h - top_t - 0.1, finish=cab_finish)
        shifted = cab.placed(0.0, -length / 2 + (k + 0.5) * unit, -0.02, 0.1)
        shifted.size, shifted.yaw, shifted.position = cab.size, 0.0, np.zeros(3)
        for solid in shifted.solids:
            solid.spare = ("sink",)
        # plinth / toe kick (part of the cabinet)
        shifted.box((-length / 2 + k * unit, -d / 2, 0), (-length / 2 + (k + 1) * unit, d / 2 - 0.1, 0.1), M.flat(rng, M.BLACKS + M.GREYS),
                    skip=("z-", "y-"))
        out.append(shifted)
    return out


def refrigerator(rng: np.random.Generator, small: bool = False) -> SynthObject:
    w, d, h = (U(rng, 0.45, 0.6), U(rng, 0.45, 0.6), U(rng, 0.8, 1.3)) if small else (U(rng, 0.6, 0.9), U(rng, 0.62, 0.75), U(rng, 1.6, 1.95))
    finish = M.flat(rng, M.WHITES + M.METALS + M.BLACKS[:1], val=0.05)
    obj = SynthObject("refrigerator", size=(w, d, h))
    obj.box((-w / 2, -d / 2, 0), (w / 2, d / 2, h), finish, skip=("z-", "y-"))
    split = h * U(rng, 0.55, 0.7)
    obj.box((-w / 2 + 0.01, d / 2 - 0.002, split - 0.006), (w / 2 - 0.01, d / 2 + 0.003, split + 0.006), M.Material((40, 40, 42)), solid=False,
            skip=("y-",))
    hx = w / 2 - 0.07 if rng.random() < 0.5 else -w / 2 + 0.07
    handle = M.flat(rng, M.METALS + M.BLACKS)
    obj.box((hx - 0.015, d / 2, split + 0.1), (hx + 0.015, d / 2 + 0.05, split + 0.1 + U(rng, 0.3, 0.6)), handle, solid=False)
    obj.box((hx - 0.015, d / 2, split - 0.4), (hx + 0.015, d / 2 + 0.05, split - 0.1), handle, solid=False)
    return obj


# --------------------------------------------------------------------------- bathroom
def toilet(rng: np.random.Generator) -> SynthObject:
    white = M.flat(rng, M.WHITES, val=0.04)
    tank_w, tank_d, tank_h = U(rng, 0.36, 0.46), U(rng, 0.15, 0.22), U(rng, 0.3, 0.42)
    bowl_h = U(rng, 0.38, 0.43)
    length = U(rng, 0.6, 0.72)
    obj = SynthObject("toilet", size=(tank_w, length, bowl_h + tank_h))
    obj.box((-tank_w / 2, -length / 2, bowl_h), (tank_w / 2, -length / 2 + tank_d, bowl_h + tank_h), white, skip=("y-",))
    bowl_ry = (length - tank_d) / 2 + 0.03
    cy = -length / 2 + tank_d + bowl_ry - 0.06
    obj.add(Frustum(np.array([0.0, cy, 0.0]), 0.11, 0.16, 0.18, bowl_ry, 0.0, bowl_h - 0.03), white)
    obj.add(Frustum(np.array([0.0, cy, 0.0]), 0.19, bowl_ry + 0.01, 0.19, bowl_ry + 0.01, bowl_h - 0.03, bowl_h, caps=("top",)),
            white if rng.random() < 0.7 else M.flat(rng, M.WOODS + M.BLACKS))
    obj.add(Frustum(np.array([0.0, -length / 2 + tank_d / 2, 0.0]), 0.12, 0.1, 0.12, 0.1, 0.0, bowl_h), white)
    obj.solids.append(Solid(np.array([-0.12, cy - bowl_ry * 0.7, 0]), np.array([0.12, cy + bowl_ry * 0.7, bowl_h])))
    return obj


def bathtub(rng: np.random.Generator) -> SynthObject:
    w, d, h = U(rng, 1.45, 1.8), U(rng, 0.7, 0.82), U(rng, 0.45, 0.6)
    rim = U(rng, 0.05, 0.1)
    white = M.flat(rng, M.WHITES, val=0.04)
    obj = SynthObject("bathtub", size=(w, d, h))
    for f in box_faces((-w / 2, -d / 2, 0), (w / 2, d / 2, h), skip=("z-", "z+")):
        obj.add(f, white)
    hole = (rim / w, 1 - rim / w, rim / d, 1 - rim / d)
    obj.add(Rect(np.array([-w / 2, -d / 2, h]), np.array([w, 0, 0]), np.array([0, d, 0]), holes=[hole]), white)
    for f in box_faces((-w / 2 + rim, -d / 2 + rim, 0.08), (w / 2 - rim, d / 2 - rim, h), skip=("z+",)):
        f.u, f.v = f.v, f.u
        obj.add(f, white)
    obj.solids += [Solid(np.array([-w / 2, -d / 2, 0]), np.array([w / 2, d / 2, 0.08]))]
    for lo, hi in (((-w / 2, -d / 2, 0), (-w / 2 + rim, d / 2, h)), ((w / 2 - rim, -d / 2, 0), (w / 2, d / 2, h)),
                   ((-w / 2, -d / 2, 0), (w / 2, -d / 2 + rim, h)), ((-w / 2, d / 2 - rim, 0), (w / 2, d / 2, h))):
        obj.solids.append(Solid(np.asarray(lo, float), np.asarray(hi, float)))
    return obj


def shower_curtain(rng: np.random.Generator, tub_w: float, tub_d: float, tub_h: float, room_h: float) -> SynthObject:
    """A curtain hung along the open long side of a bathtub (same local frame as the tub)."""
    top = min(U(rng, 1.9, 2.05), room_h - 0.1)
    bottom = tub_h + U(rng, 0.05, 0.25)
    cover = U(rng, 0.35, 1.0) * tub_w
    start = -tub_w / 2 if rng.random() < 0.5 else tub_w / 2 - cover
    mat = M.Material(M.pick(rng, M.WHITES + [(200, 220, 230), (230, 210, 200), (210, 230, 210)]),
                     "stripes" if rng.random() < 0.35 else "flat", scale=U(rng, 0.05, 0.15), rgb2=M.pick(rng, M.FABRICS),
                     seed=int(rng.integers(1 << 30)))
    obj = SynthObject("shower curtain", size=(tub_w, 0.1, top))
    y = tub_d / 2 - 0.05
    obj.add(Wavy(np.array([start + cover, y, bottom]), np.array([-cover, 0, 0]), np.array([0, 0, top - bottom]), amp=U(rng, 0.02, 0.05),
                 wavelength=U(rng, 0.1, 0.2), phase=U(rng, 0, 6.3)), mat)
    obj.add(Frustum(np.array([0.0, y, top]), 0.012, 0.012, 0.012, 0.012, -tub_w / 2, tub_w / 2,
                    rot=np.array([[0, 0, 1.0], [0, 1.0, 0], [-1.0, 0, 0]])), M.flat(rng, M.METALS))
    return obj


# --------------------------------------------------------------------------- walls: mounted things
def picture(rng: np.random.Generator) -> SynthObject:
    w, h = U(rng, 0.3, 1.2), U(rng, 0.25, 0.9)
    t = U(rng, 0.015, 0.04)
    frame_w = U(rng, 0.0, 0.06)
    art = M.Material(M.pick(rng, M.FABRICS + M.WOODS, hue=0.2, sat=0.3, val=0.3), "picture", scale=U(rng, 0.05, 0.25),
                     seed=int(rng.integers(1 << 30)))
    obj = SynthObject("picture", size=(w, t, h))
    frame = M.flat(rng, M.BLACKS + M.WOODS + M.WHITES)
    obj.box((-w / 2, -t / 2, 0), (w / 2, t / 2, h), frame, skip=("y-", "y+"))
    obj.box((-w / 2, -t / 2, 0), (w / 2, t / 2, h), art if frame_w == 0 else frame, skip=("y-", "x-", "x+", "z-", "z+"), solid=False)
    if frame_w > 0.005:
        obj.add(Rect(np.array([-w / 2 + frame_w, t / 2 + 0.001, frame_w]), np.array([0, 0, h - 2 * frame_w]), np.array([w - 2 * frame_w, 0, 0])),
                art)
    return obj


def whiteboard(rng: np.random.Generator) -> SynthObject:
    w, h = U(rng, 1.2, 2.4), U(rng, 0.9, 1.2)
    obj = SynthObject("whiteboard", size=(w, 0.03, h))
    obj.box((-w / 2, -0.015, 0), (w / 2, 0.015, h), M.flat(rng, M.WHITES, val=0.03), skip=("y-",))
    alu = M.flat(rng, M.METALS)
    for z0, z1 in ((-0.02, 0.0), (h, h + 0.02)):
        obj.box((-w / 2 - 0.02, -0.015, z0), (w / 2 + 0.02, 0.025, z1), alu, skip=("y-",))
    obj.box((-w / 2, 0.015, -0.02), (w / 2, 0.08, 0.0), alu, skip=("y-",))
    return obj


def mirror(rng: np.random.Generator) -> SynthObject:
    w, h = U(rng, 0.5, 1.0), U(rng, 0.6, 1.0)
    obj = SynthObject("mirror", size=(w, 0.02, h))
    obj.box((-w / 2, -0.01, 0), (w / 2, 0.01, h), M.Material(M.jitter_color(rng, (150, 160, 165), val=0.2), "carpet", amount=0.3,
                                                             seed=int(rng.integers(1 << 30))), skip=("y-",))
    return obj


def towel(rng: np.random.Generator) -> SynthObject:
    w, h = U(rng, 0.3, 0.6), U(rng, 0.4, 0.7)
    obj = SynthObject("towel", size=(w, 0.05, h))
    obj.add(Wavy(np.array([w / 2, 0.03, 0]), np.array([-w, 0, 0]), np.array([0, 0, h]), amp=0.01, wavelength=0.15), M.fabric(rng))
    return obj


def radiator(rng: np.random.Generator, w: float) -> SynthObject:
    h, d = U(rng, 0.45, 0.65), U(rng, 0.07, 0.12)
    white = M.flat(rng, M.WHITES + M.GREYS[2:3], val=0.04)
    obj = SynthObject("radiator", size=(w, d, h + 0.1))
    obj.add(Wavy(np.array([w / 2, d / 2 - 0.015, 0.1]), np.array([-w, 0, 0]), np.array([0, 0, h]), amp=0.012, wavelength=U(rng, 0.04, 0.07)),
            white)
    obj.box((-w / 2, -d / 2, 0.1), (w / 2, d / 2 - 0.03, 0.1 + h), white, skip=("y-", "y+"))
    return obj


# --------------------------------------------------------------------------- small things
def trash_can(rng: np.random.Generator) -> SynthObject:
    r, h = U(rng, 0.12, 0.22), U(rng, 0.3, 0.7)
    mat = M.flat(rng, M.GREYS + M.BLACKS + [(60, 90, 150), (70, 130, 80)])
    obj = SynthObject("trash can", size=(2 * r, 2 * r, h))
    square = rng.random() < 0.35
    if square:
        obj.box((-r, -r, 0), (r, r, h), mat, skip=("z-", "z+"), solid=False)
        obj.box((-r + 0.01, -r + 0.01, 0.02), (r - 0.01, r - 0.01, h), mat, skip=("z-", "z+"), solid=False)
    else:
        obj.add(Frustum(np.zeros(3), r * 0.85, r * 0.85, r, r, 0.0, h), mat)
        obj.add(Frustum(np.zeros(3), r * 0.8, r * 0.8, r * 0.95, r * 0.95, 0.03, h, caps=("bottom",), inward=True), mat)
    obj.solids.append(Solid(np.array([-r * 0.7, -r * 0.7, 0]), np.array([r * 0.7, r * 0.7, 0.02])))
    return obj


def tv_stand(rng: np.random.Generator) -> tuple[SynthObject, SynthObject]:
    w, d, h = U(rng, 1.0, 1.8), U(rng, 0.35, 0.48), U(rng, 0.4, 0.6)
    finish = M.furniture_finish(rng)
    stand = SynthObject("tv stand", size=(w, d, h))
    stand.box((-w / 2, -d / 2, 0.05), (w / 2, d / 2, h), finish, skip=("z-", "y-"))
    stand.box((-w / 2 + 0.02, d / 2, 0.1), (w / 2 - 0.02, d / 2 + 0.005, h * 0.5), M.flat(rng, M.BLACKS), solid=False, skip=("y-",))
    tw = min(w - 0.1, U(rng, 0.9, 1.45))
    th = tw * 0.58
    tv = SynthObject("tv", size=(tw, 0.08, th))
    tv.box((-tw / 2, -0.04, h + 0.08), (tw / 2, 0.01, h + 0.08 + th), M.flat(rng, M.BLACKS, val=0.05))
    tv.box((-0.12, -0.1, h), (0.12, 0.08, h + 0.02), M.flat(rng, M.BLACKS), skip=("z-",))
    tv.box((-0.03, -0.04, h + 0.02), (0.03, -0.02, h + 0.1), M.flat(rng, M.BLACKS), solid=False)
    return stand, tv


def monitor(rng: np.random.Generator) -> SynthObject:
    w = U(rng, 0.45, 0.7)
    h = w * 0.6
    obj = SynthObject("monitor", size=(w, 0.2, h + 0.12))
    black = M.flat(rng, M.BLACKS)
    obj.box((-w / 2, -0.03, 0.12), (w / 2, 0.0, 0.12 + h), black)
    obj.box((-0.02, -0.06, 0.0), (0.02, -0.03, 0.14), black, solid=False)
    obj.box((-0.1, -0.12, 0.0), (0.1, 0.06, 0.012), black, skip=("z-",))
    return obj


def lamp(rng: np.random.Generator, floor: bool) -> SynthObject:
    shade = M.flat(rng, M.WHITES + M.FABRICS[-3:])
    metal = M.flat(rng, M.METALS + M.BLACKS)
    h = U(rng, 1.4, 1.8) if floor else U(rng, 0.35, 0.6)
    r = U(rng, 0.15, 0.25) if floor else U(rng, 0.1, 0.16)
    obj = SynthObject("lamp", size=(2 * r, 2 * r, h))
    obj.add(Frustum(np.zeros(3), r * 0.8, r * 0.8, r * 0.8, r * 0.8, 0.0, 0.02, caps=("top",)), metal)
    obj.add(Frustum(np.zeros(3), 0.012, 0.012, 0.012, 0.012, 0.02, h - r), metal)
    obj.add(Frustum(np.zeros(3), r, r, r * 0.65, r * 0.65, h - r * 1.1, h), shade)
    return obj


def plant(rng: np.random.Generator) -> SynthObject:
    pr, ph = U(rng, 0.1, 0.2), U(rng, 0.15, 0.35)
    fol = U(rng, 0.2, 0.45)
    obj = SynthObject("plant", size=(2 * fol, 2 * fol, ph + 2 * fol))
    obj.add(Frustum(np.zeros(3), pr * 0.75, pr * 0.75, pr, pr, 0.0, ph), M.flat(rng, M.STONES + [(170, 90, 60)]))
    green = M.Material(M.jitter_color(rng, (70, 120, 55), hue=0.04, sat=0.15, val=0.2), "carpet", amount=0.5, seed=int(rng.integers(1 << 30)))
    obj.add(Ellipsoid(np.array([0.0, 0.0, ph + fol * 0.9]), (fol, fol, fol * U(rng, 0.9, 1.4))), green)
    return obj


def rug(rng: np.random.Generator) -> SynthObject:
    w, d = U(rng, 1.2, 2.5), U(rng, 0.8, 1.8)
    mat = M.Material(M.pick(rng, M.FABRICS, hue=0.05, sat=0.15, val=0.15), "carpet", amount=U(rng, 0.1, 0.3), seed=int(rng.integers(1 << 30)))
    obj = SynthObject("rug", size=(w, d, 0.012))
    obj.box((-w / 2, -d / 2, 0.0), (w / 2, d / 2, 0.012), mat, skip=("z-",))
    return obj


def cardboard_box(rng: np.random.Generator, annotated: bool = True) -> SynthObject:
    w, d, h = U(rng, 0.2, 0.6), U(rng, 0.2, 0.5), U(rng, 0.15, 0.5)
    mat = M.flat(rng, [(170, 130, 90), (190, 155, 110)] if annotated else M.FABRICS + M.GREYS)
    obj = SynthObject("box" if annotated else "clutter", size=(w, d, h), annotated=annotated)
    obj.box((-w / 2, -d / 2, 0), (w / 2, d / 2, h), mat, skip=("z-",))
    return obj


# --------------------------------------------------------------------------- structure
def column(rng: np.random.Generator, height: float, wall_mat: M.Material) -> SynthObject:
    w, d = U(rng, 0.3, 0.6), U(rng, 0.2, 0.5)
    obj = SynthObject("column", size=(w, d, height))
    obj.box((-w / 2, -d / 2, 0), (w / 2, d / 2, height), wall_mat, skip=("z-", "z+", "y-"))
    return obj


def beam(rng: np.random.Generator, length: float, height: float, wall_mat: M.Material) -> SynthObject:
    w, dz = U(rng, 0.2, 0.4), U(rng, 0.2, 0.4)
    obj = SynthObject("beam", size=(w, length, dz))
    obj.box((-w / 2, -length / 2, height - dz), (w / 2, length / 2, height), wall_mat, skip=("z+", "y-", "y+"))
    return obj


def curtain_panel(rng: np.random.Generator, width: float, top: float, bottom: float, mat: M.Material) -> SynthObject:
    """One curtain panel hanging at local y = 0 (the wall side is -y), ``width`` wide, from ``top`` to ``bottom``."""
    obj = SynthObject("curtain", size=(width, 0.2, top))
    amp = U(rng, 0.025, 0.07)
    obj.add(Wavy(np.array([width / 2, amp, bottom]), np.array([-width, 0, 0]), np.array([0, 0, top - bottom]), amp=amp,
                 wavelength=U(rng, 0.1, 0.25), phase=U(rng, 0, 6.3)), mat)
    return obj


def curtain_material(rng: np.random.Generator) -> M.Material:
    base = M.pick(rng, M.FABRICS + M.WHITES, hue=0.05, sat=0.15, val=0.15)
    if rng.random() < 0.3:
        return M.Material(base, "stripes", scale=U(rng, 0.05, 0.2), rgb2=M.pick(rng, M.FABRICS), seed=int(rng.integers(1 << 30)))
    return M.Material(base, "fabric", scale=U(rng, 0.01, 0.04), amount=U(rng, 0.03, 0.1), seed=int(rng.integers(1 << 30)))
