"""Room layouts: walls with doors and windows, then furniture placed against walls or in free space.

A :class:`Layout` keeps track of what is where: wall spans (so a bookshelf never stands in front of a
door or a window) and floor footprints (so furniture does not collide, apart from chairs tucked
under their own table). ``furnish(room_type)`` fills a room the way that kind of room usually is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pcseg.data.synthetic import materials as M
from pcseg.data.synthetic import objects as O
from pcseg.data.synthetic.primitives import Rect, Solid
from pcseg.data.synthetic.objects import SynthObject, U

ROOM_TYPES = ("bedroom", "office", "living", "kitchen", "bathroom", "conference")
# S3DIS-style room names (<type>_<n>) for the S3DIS layout.
S3DIS_ROOM_TYPE = {"bedroom": "bedroom", "office": "office", "living": "lounge", "kitchen": "pantry", "bathroom": "WC",
                   "conference": "conferenceRoom"}
ROOM_SIZES = {  # (x range, y range) in metres
    "bedroom": ((3.2, 5.0), (3.5, 5.5)),
    "office": ((4.0, 7.5), (4.0, 6.5)),
    "living": ((4.5, 7.0), (4.0, 6.5)),
    "kitchen": ((3.2, 5.0), (3.5, 6.0)),
    "bathroom": ((2.3, 3.3), (2.6, 3.8)),
    "conference": ((5.0, 8.5), (4.0, 6.5)),
}


@dataclass
class Span:
    t0: float
    t1: float
    z0: float
    z1: float
    kind: str


@dataclass
class Layout:
    rng: np.random.Generator
    lx: float
    ly: float
    height: float
    objects: list[SynthObject] = field(default_factory=list)
    spans: dict[int, list[Span]] = field(default_factory=lambda: {0: [], 1: [], 2: [], 3: []})
    floor: list[tuple[float, float, float, float]] = field(default_factory=list)
    windows: list[tuple[int, float, float, float, float]] = field(default_factory=list)  # wall, t0, t1, sill, top
    holes: dict[int, list[tuple[float, float, float, float]]] = field(default_factory=lambda: {0: [], 1: [], 2: [], 3: []})
    wall_material: M.Material | None = None

    # ------------------------------------------------------------------ geometry helpers
    def wall_length(self, wall: int) -> float:
        return self.lx if wall in (0, 2) else self.ly

    def wall_pose(self, wall: int, t: float, off: float) -> tuple[float, float, float]:
        """(yaw, x, y) of a local frame at ``t`` along ``wall``, ``off`` metres into the room, +y facing in."""
        if wall == 0:
            return 0.0, t, off
        if wall == 1:
            return np.pi / 2, self.lx - off, t
        if wall == 2:
            return np.pi, t, self.ly - off
        return -np.pi / 2, off, t

    def _span_free(self, wall: int, t0: float, t1: float, z0: float, z1: float, ignore: tuple[str, ...] = ()) -> bool:
        for s in self.spans[wall]:
            if s.kind in ignore:
                continue
            if t0 < s.t1 and s.t0 < t1 and z0 < s.z1 and s.z0 < z1:
                return False
        return True

    def _floor_free(self, box: tuple[float, float, float, float], skip: int | None = None, shrink: float = 0.01) -> bool:
        x0, y0, x1, y1 = box
        if x0 < -0.02 or y0 < -0.02 or x1 > self.lx + 0.02 or y1 > self.ly + 0.02:
            return False
        for i, (a0, b0, a1, b1) in enumerate(self.floor):
            if i == skip:
                continue
            if x0 + shrink < a1 and a0 < x1 - shrink and y0 + shrink < b1 and b0 < y1 - shrink:
                return False
        return True

    def add(self, obj: SynthObject, floor: bool = True) -> int:
        self.objects.append(obj)
        if floor:
            self.floor.append(obj.footprint())
            return len(self.floor) - 1
        return -1

    # ------------------------------------------------------------------ placement
    def on_wall(self, obj: SynthObject, wall: int | None = None, t: float | None = None, z: float = 0.0, gap: float = 0.01,
                tries: int = 40, floor: bool = True) -> SynthObject | None:
        """Place ``obj`` with its back against a wall; None if no free spot was found.

        Wall spans are checked in height too, so low furniture may stand under a window.
        """
        w, d, h = obj.size
        for _ in range(tries if t is None else 1):
            wl = int(self.rng.integers(4)) if wall is None else wall
            length = self.wall_length(wl)
            if w > length - 0.1:
                continue
            tt = U(self.rng, w / 2 + 0.03, length - w / 2 - 0.03) if t is None else t
            if not self._span_free(wl, tt - w / 2, tt + w / 2, z, z + h):
                continue
            yaw, x, y = self.wall_pose(wl, tt, gap + d / 2)
            placed = obj.placed(yaw, x, y, z)
            if floor and not self._floor_free(placed.footprint()):
                continue
            self.spans[wl].append(Span(tt - w / 2, tt + w / 2, z, z + h, obj.category))
            self.add(placed, floor)
            placed.wall, placed.t = wl, tt
            return placed
        return None

    def free(self, obj: SynthObject, yaw: float | None = None, margin: float = 0.25, tries: int = 60,
             near: tuple[float, float, float] | None = None) -> SynthObject | None:
        """Place ``obj`` on the floor away from walls (optionally within ``near`` = (x, y, radius))."""
        r = 0.5 * float(np.hypot(obj.size[0], obj.size[1]))
        for _ in range(tries):
            a = yaw if yaw is not None else (float(self.rng.integers(4)) * np.pi / 2 + U(self.rng, -0.15, 0.15))
            if near is None:
                lo_x, hi_x, lo_y, hi_y = margin + r * 0.6, self.lx - margin - r * 0.6, margin + r * 0.6, self.ly - margin - r * 0.6
            else:
                cx, cy, rad = near
                lo_x, hi_x, lo_y, hi_y = cx - rad, cx + rad, cy - rad, cy + rad
            if lo_x >= hi_x or lo_y >= hi_y:
                return None
            placed = obj.placed(a, U(self.rng, lo_x, hi_x), U(self.rng, lo_y, hi_y))
            if self._floor_free(placed.footprint()):
                self.add(placed)
                return placed
        return None

    def mount(self, obj: SynthObject, z_range: tuple[float, float], wall: int | None = None, tries: int = 40,
              off: float = 0.0) -> SynthObject | None:
        """Hang ``obj`` on a wall (pictures, boards, mirrors) where no door, window or tall furniture is."""
        w, _, h = obj.size
        for _ in range(tries):
            wl = int(self.rng.integers(4)) if wall is None else wall
            length = self.wall_length(wl)
            if w > length - 0.3:
                continue
            t = U(self.rng, w / 2 + 0.1, length - w / 2 - 0.1)
            z = U(self.rng, *z_range)
            if z + h > self.height - 0.05 or not self._span_free(wl, t - w / 2 - 0.05, t + w / 2 + 0.05, z - 0.05, z + h + 0.05):
                continue
            yaw, x, y = self.wall_pose(wl, t, off + obj.size[1] / 2)
            placed = obj.placed(yaw, x, y, z)
            self.spans[wl].append(Span(t - w / 2, t + w / 2, z, z + h, obj.category))
            self.add(placed, floor=False)
            return placed
        return None

    def chairs_around(self, table: SynthObject, table_index: int, rng: np.random.Generator, style: str | None = None) -> None:
        """Chairs along the long sides (and ends, if room) of a placed table, facing it."""
        w, d, _ = table.size
        spots = []
        n_side = max(1, int(w / 0.65))
        for side in (-1, 1):
            for k in range(n_side):
                spots.append(((k + 0.5) * w / n_side - w / 2, side * (d / 2 + U(rng, 0.0, 0.3)), side))
        if w > 1.4 and rng.random() < 0.5:
            for end in (-1, 1):
                spots.append((end * (w / 2 + U(rng, 0.05, 0.3)), 0.0, 2 * end))
        rot = np.array([[np.cos(table.yaw), -np.sin(table.yaw)], [np.sin(table.yaw), np.cos(table.yaw)]])
        for x, y, side in spots:
            if rng.random() < 0.15:
                continue
            c = O.chair(rng, style)
            face = {1: np.pi, -1: 0.0, 2: np.pi / 2, -2: -np.pi / 2}[side]
            pos = rot @ np.array([x, y]) + table.position[:2]
            placed = c.placed(table.yaw + face + U(rng, -0.3, 0.3), pos[0], pos[1])
            if self._floor_free(placed.footprint(), skip=table_index, shrink=0.03):
                self.add(placed)

    # ------------------------------------------------------------------ structure
    def add_door(self) -> None:
        rng = self.rng
        for _ in range(30):
            wall = int(rng.integers(4))
            dw, dh = U(rng, 0.78, 0.98), U(rng, 1.98, min(2.2, self.height - 0.15))
            length = self.wall_length(wall)
            t = U(rng, dw / 2 + 0.15, length - dw / 2 - 0.15)
            if not self._span_free(wall, t - dw / 2 - 0.1, t + dw / 2 + 0.1, 0, dh + 0.1):
                continue
            finish = M.wood(rng) if rng.random() < 0.45 else M.flat(rng, M.WHITES + M.GREYS[:3], val=0.05)
            frame_mat = finish if rng.random() < 0.5 else M.flat(rng, M.WHITES)
            door = SynthObject("door", size=(dw, 0.0, dh))
            recess = U(rng, 0.0, 0.06)
            angle = U(rng, 0.35, 1.4) if rng.random() < 0.3 else 0.0
            if angle:
                door.box((-dw / 2, 0.0, 0.0), (dw / 2 - 0.01, 0.04, dh - 0.01), finish, yaw=angle, pivot=(-dw / 2, 0.0, 0.0))
            else:
                door.box((-dw / 2, -recess - 0.04, 0.0), (dw / 2, -recess, dh), finish, skip=("y-", "z-"))
                hx = dw / 2 - 0.08
                door.box((hx - 0.06, -recess, 0.98), (hx + 0.01, -recess + 0.06, 1.0), M.flat(rng, M.METALS), solid=False)
                for x0, x1 in ((-dw / 2, -dw / 2), (dw / 2, dw / 2)):  # reveals
                    door.add(Rect(np.array([x0, -recess, 0.0]), np.array([0, recess, 0]), np.array([0, 0, dh])), frame_mat)
            fw = U(rng, 0.04, 0.09)
            for lo, hi in (((-dw / 2 - fw, 0, 0), (-dw / 2, 0.018, dh + fw)), ((dw / 2, 0, 0), (dw / 2 + fw, 0.018, dh + fw)),
                           ((-dw / 2, 0, dh), (dw / 2, 0.018, dh + fw))):
                door.box(lo, hi, frame_mat, skip=("y-", "z-"))
            yaw, x, y = self.wall_pose(wall, t, 0.0)
            self.add(door.placed(yaw, x, y), floor=False)
            self.spans[wall].append(Span(t - dw / 2 - fw, t + dw / 2 + fw, 0.0, dh + fw, "door"))
            self.holes[wall].append((t - dw / 2, t + dw / 2, 0.0, dh))
            swing = O.SynthObject("door swing", size=(dw + 0.2, dw + 0.1, 0.0)).placed(yaw, *self._xy(wall, t, (dw + 0.1) / 2))
            self.floor.append(swing.footprint())
            return

    def _xy(self, wall: int, t: float, off: float) -> tuple[float, float]:
        _, x, y = self.wall_pose(wall, t, off)
        return x, y

    def add_window(self, small: bool = False) -> None:
        rng = self.rng
        for _ in range(30):
            wall = int(rng.integers(4))
            length = self.wall_length(wall)
            ww = U(rng, 0.5, 0.9) if small else U(rng, 0.7, min(2.4, length - 0.6))
            sill = U(rng, 1.2, 1.5) if small else U(rng, 0.6, 1.05)
            top = min(self.height - U(rng, 0.12, 0.35), sill + (U(rng, 0.5, 0.8) if small else U(rng, 1.0, 1.7)))
            if ww < 0.4 or top - sill < 0.4:
                continue
            t = U(rng, ww / 2 + 0.2, length - ww / 2 - 0.2)
            if not self._span_free(wall, t - ww / 2 - 0.15, t + ww / 2 + 0.15, sill - 0.1, top + 0.1):
                continue
            frame_mat = M.flat(rng, M.WHITES + M.GREYS[:3] + M.WOODS[:2], val=0.05)
            glass = M.Material(M.jitter_color(rng, [(200, 215, 230), (170, 185, 200), (235, 240, 245), (120, 140, 150)][int(rng.integers(4))],
                                              val=0.15), "carpet", amount=0.15, seed=int(rng.integers(1 << 30)))
            win = SynthObject("window", size=(ww, 0.0, top))
            depth = U(rng, 0.08, 0.25)
            h = top - sill
            for lo, u, v in (((-ww / 2, -depth, sill), (0, depth, 0), (0, 0, h)), ((ww / 2, 0, sill), (0, -depth, 0), (0, 0, h)),
                             ((-ww / 2, 0, top), (0, -depth, 0), (ww, 0, 0)), ((-ww / 2, -depth, sill), (0, depth, 0), (ww, 0, 0))):
                win.add(Rect(np.array(lo, float), np.array(u, float), np.array(v, float)), frame_mat)
            win.add(Rect(np.array([-ww / 2, -depth + 0.02, sill]), np.array([0, 0, h]), np.array([ww, 0, 0])), glass, density=0.3)
            fw = U(rng, 0.03, 0.07)
            n_panes = max(1, int(round(ww / U(rng, 0.6, 1.1))))
            bars = [(-ww / 2 + k * ww / n_panes) for k in range(n_panes + 1)]
            for b in bars:
                x0 = min(max(b - fw / 2, -ww / 2), ww / 2 - fw)
                win.box((x0, -depth + 0.02, sill), (x0 + fw, -depth + 0.07, top), frame_mat, skip=("y-",))
            for z0 in (sill, top - fw):
                win.box((-ww / 2, -depth + 0.02, z0), (ww / 2, -depth + 0.07, z0 + fw), frame_mat, skip=("y-",))
            if rng.random() < 0.6:  # sill board
                win.box((-ww / 2 - 0.04, -depth, sill - 0.03), (ww / 2 + 0.04, U(rng, 0.02, 0.2), sill), frame_mat, skip=("y-",))
            yaw, x, y = self.wall_pose(wall, t, 0.0)
            self.add(win.placed(yaw, x, y), floor=False)
            self.spans[wall].append(Span(t - ww / 2, t + ww / 2, sill - 0.05, top + 0.05, "window"))
            self.holes[wall].append((t - ww / 2, t + ww / 2, sill, top))
            self.windows.append((wall, t - ww / 2, t + ww / 2, sill, top))
            return

    def dress_windows(self, p_curtain: float, p_radiator: float) -> None:
        rng = self.rng
        for wall, t0, t1, sill, top in list(self.windows):
            tc, ww = (t0 + t1) / 2, t1 - t0
            if rng.random() < p_radiator and sill > 0.65:
                rad = O.radiator(rng, min(ww, U(rng, 0.6, 1.4)))
                rad.size = (rad.size[0], rad.size[1], min(rad.size[2], sill - 0.08))
                self.on_wall(rad, wall=wall, t=tc, gap=U(rng, 0.02, 0.06))
            if rng.random() < p_curtain:
                mat = O.curtain_material(rng)
                top_c = min(self.height - 0.03, top + U(rng, 0.05, 0.3))
                bottom = U(rng, 0.0, 0.05) if rng.random() < 0.6 else max(0.3, sill - U(rng, 0.05, 0.2))
                extra = U(rng, 0.1, 0.35)
                for side in (-1, 1):
                    if rng.random() < 0.15:
                        continue
                    pw = U(rng, 0.25, 0.6) * ww / 2 + extra
                    tp = tc + side * (ww / 2 + extra - pw / 2)
                    panel = O.curtain_panel(rng, pw, top_c, bottom, mat)
                    yaw, x, y = self.wall_pose(wall, tp, U(rng, 0.04, 0.12))
                    self.add(panel.placed(yaw, x, y), floor=False)
                    self.spans[wall].append(Span(tp - pw / 2, tp + pw / 2, bottom, top_c, "curtain"))

    def shell(self) -> None:
        """Floor, ceiling and the four walls (with door and window openings)."""
        rng = self.rng
        wall_mat = self.wall_material or M.flat(rng, M.WALLS, val=0.05)
        floor_kind = rng.random()
        if floor_kind < 0.45:
            floor_mat = M.Material(M.pick(rng, M.WOODS), "planks", scale=U(rng, 0.08, 0.2), amount=U(rng, 0.04, 0.12),
                                   seed=int(rng.integers(1 << 30)))
        elif floor_kind < 0.75:
            floor_mat = M.Material(M.pick(rng, M.STONES + M.WHITES), "tiles", scale=U(rng, 0.2, 0.6), amount=U(rng, 0.03, 0.1),
                                   rgb2=M.pick(rng, M.GREYS), seed=int(rng.integers(1 << 30)))
        else:
            floor_mat = M.Material(M.pick(rng, M.FABRICS + M.GREYS, val=0.1), "carpet", amount=U(rng, 0.05, 0.2), seed=int(rng.integers(1 << 30)))
        floor = SynthObject("floor", size=(self.lx, self.ly, 0.0))
        floor.add(Rect(np.zeros(3), np.array([self.lx, 0, 0]), np.array([0, self.ly, 0])), floor_mat)
        ceiling = SynthObject("ceiling", size=(self.lx, self.ly, 0.0))
        ceiling_mat = M.flat(rng, M.WHITES + M.WALLS[:2], val=0.04)
        ceiling.add(Rect(np.array([0, 0, self.height]), np.array([0, self.ly, 0]), np.array([self.lx, 0, 0])), ceiling_mat)
        walls = []
        accent = int(rng.integers(4)) if rng.random() < 0.25 else -1
        for wall in range(4):
            length = self.wall_length(wall)
            origin = {0: (0, 0, 0), 1: (self.lx, 0, 0), 2: (0, self.ly, 0), 3: (0, 0, 0)}[wall]
            along = np.array([1.0, 0, 0]) if wall in (0, 2) else np.array([0, 1.0, 0])
            up = np.array([0, 0, 1.0])
            # (u, v) order chosen so that u x v points into the room
            if wall in (0, 1):
                u, v = up * self.height, along * length
                holes = [(z0 / self.height, z1 / self.height, t0 / length, t1 / length) for t0, t1, z0, z1 in self.holes[wall]]
            else:
                u, v = along * length, up * self.height
                holes = [(t0 / length, t1 / length, z0 / self.height, z1 / self.height) for t0, t1, z0, z1 in self.holes[wall]]
            obj = SynthObject("wall", size=(length, 0.0, self.height))
            obj.add(Rect(np.array(origin, float), u, v, holes=holes), wall_mat if wall != accent else M.flat(rng, M.WALLS + M.FABRICS[-3:]))
            walls.append(obj)
        self.objects[:0] = [floor, ceiling] + walls
        self.wall_material = wall_mat

    def structure_extras(self) -> None:
        """Columns and ceiling beams (S3DIS classes; 'otherstructure' in ScanNet) in some rooms."""
        rng = self.rng
        mat = self.wall_material or M.flat(rng, M.WALLS)
        if rng.random() < 0.25:
            for _ in range(int(rng.integers(1, 3))):
                self.on_wall(O.column(rng, self.height, mat), gap=0.0)
        if rng.random() < 0.2:
            along_x = rng.random() < 0.5
            length = self.ly if along_x else self.lx
            b = O.beam(rng, length, self.height, mat)
            pos = U(rng, 0.3 * (self.lx if along_x else self.ly), 0.7 * (self.lx if along_x else self.ly))
            placed = b.placed(0.0, pos, self.ly / 2) if along_x else b.placed(np.pi / 2, self.lx / 2, pos)
            self.add(placed, floor=False)


# ---------------------------------------------------------------------- furnishing per room type
def _maybe(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def _small_things(lay: Layout, rng: np.random.Generator, trash: float, plant: float, boxes: int, clutter: int) -> None:
    if _maybe(rng, trash):
        lay.on_wall(O.trash_can(rng), gap=U(rng, 0.02, 0.3)) or lay.free(O.trash_can(rng))
    if _maybe(rng, plant):
        lay.on_wall(O.plant(rng), gap=0.05) or lay.free(O.plant(rng))
    for _ in range(int(rng.integers(0, boxes + 1))):
        lay.on_wall(O.cardboard_box(rng), gap=U(rng, 0.01, 0.2), tries=15) or lay.free(O.cardboard_box(rng), tries=15)
    for _ in range(int(rng.integers(0, clutter + 1))):
        lay.free(O.cardboard_box(rng, annotated=False), tries=15)


def _pictures(lay: Layout, rng: np.random.Generator, n: int) -> None:
    for _ in range(n):
        lay.mount(O.picture(rng), (1.1, 1.9))


def _desk_with_chair(lay: Layout, rng: np.random.Generator, monitor_p: float) -> None:
    desk = lay.on_wall(O.desk(rng))
    if desk is None:
        return
    if _maybe(rng, monitor_p):
        mon = O.monitor(rng).placed(desk.yaw, *(desk.position[:2] + _rot2(desk.yaw) @ np.array([U(rng, -0.3, 0.3), -0.1])), desk.size[2])
        lay.add(mon, floor=False)
    if _maybe(rng, 0.3):
        lp = O.lamp(rng, floor=False).placed(desk.yaw, *(desk.position[:2] + _rot2(desk.yaw) @ np.array([desk.size[0] / 2 - 0.15, -0.15])),
                                             desk.size[2])
        lay.add(lp, floor=False)
    if _maybe(rng, 0.9):
        c = O.chair(rng, "office" if rng.random() < 0.7 else None)
        pos = desk.position[:2] + _rot2(desk.yaw) @ np.array([U(rng, -0.2, 0.2), desk.size[1] / 2 + U(rng, 0.05, 0.4)])
        placed = c.placed(desk.yaw + np.pi + U(rng, -0.6, 0.6), *pos)
        if lay._floor_free(placed.footprint(), skip=len(lay.floor) - 1, shrink=0.04):
            lay.add(placed)


def _rot2(yaw: float) -> np.ndarray:
    return np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])


def _table_with_chairs(lay: Layout, rng: np.random.Generator, kind: str = "table", style: str | None = None) -> None:
    t = lay.free(O.table(rng, kind), margin=0.7)
    if t is not None:
        lay.chairs_around(t, len(lay.floor) - 1, rng, style)


def furnish(lay: Layout, room_type: str) -> None:
    """Place the furniture of a ``room_type`` room (structure must already be in place)."""
    rng = lay.rng
    if room_type == "bedroom":
        bed_obj, pillows = O.bed(rng)
        bed = lay.on_wall(bed_obj)
        if bed is not None:
            for p in pillows:
                lay.add(p.placed(bed.yaw, *bed.position), floor=False)
            for side in (-1, 1):
                if _maybe(rng, 0.7):
                    ns = O.nightstand(rng)
                    t = bed.t + side * (bed.size[0] / 2 + ns.size[0] / 2 + U(rng, 0.02, 0.1))
                    placed = lay.on_wall(ns, wall=bed.wall, t=t)
                    if placed is not None and _maybe(rng, 0.5):
                        lay.add(O.lamp(rng, floor=False).placed(placed.yaw, *placed.position[:2], placed.size[2]), floor=False)
        for _ in range(int(rng.integers(1, 3))):
            lay.on_wall(O.cabinet(rng, h=U(rng, 0.8, 2.0)))
        if _maybe(rng, 0.4):
            _desk_with_chair(lay, rng, 0.4)
        if _maybe(rng, 0.3):
            lay.on_wall(O.bookshelf(rng))
        if _maybe(rng, 0.4):
            lay.free(O.rug(rng), margin=0.3)
        if _maybe(rng, 0.25):
            lay.free(O.sofa(rng, seats=1))
        elif _maybe(rng, 0.2):
            lay.on_wall(O.sofa(rng, seats=2))
        _pictures(lay, rng, int(rng.integers(1, 4)))
        _small_things(lay, rng, 0.3, 0.2, 1, 2)
    elif room_type == "office":
        for _ in range(int(rng.integers(1, 5))):
            _desk_with_chair(lay, rng, 0.8)
        for _ in range(int(rng.integers(1, 4))):
            lay.on_wall(O.bookshelf(rng))
        for _ in range(int(rng.integers(0, 3))):
            lay.on_wall(O.cabinet(rng, "file cabinet" if rng.random() < 0.5 else "cabinet"))
        if _maybe(rng, 0.6):
            lay.mount(O.whiteboard(rng), (0.8, 1.1))
        if _maybe(rng, 0.35):
            _table_with_chairs(lay, rng)
        if _maybe(rng, 0.3):
            lay.on_wall(O.sofa(rng))
        if _maybe(rng, 0.25):  # office fridge
            lay.on_wall(O.refrigerator(rng, small=True))
        _pictures(lay, rng, int(rng.integers(0, 3)))
        _small_things(lay, rng, 0.8, 0.4, 3, 2)
    elif room_type == "living":
        sofa = lay.on_wall(O.sofa(rng))
        if sofa is not None:
            ct = O.table(rng, "coffee table")
            pos = sofa.position[:2] + _rot2(sofa.yaw) @ np.array([U(rng, -0.2, 0.2), sofa.size[1] / 2 + U(rng, 0.35, 0.6) + ct.size[1] / 2])
            placed = ct.placed(sofa.yaw + U(rng, -0.1, 0.1), *pos)
            if lay._floor_free(placed.footprint()):
                lay.add(placed)
            opposite = (sofa.wall + 2) % 4
            if _maybe(rng, 0.75):
                stand, tv = O.tv_stand(rng)
                st = lay.on_wall(stand, wall=opposite)
                if st is not None:
                    lay.add(tv.placed(st.yaw, *st.position), floor=False)
        if _maybe(rng, 0.4):
            lay.on_wall(O.sofa(rng)) or lay.free(O.sofa(rng))
        for _ in range(int(rng.integers(0, 3))):
            lay.free(O.sofa(rng, seats=1)) if _maybe(rng, 0.6) else lay.free(O.chair(rng, "plain"), yaw=U(rng, 0, 6.3))
        for _ in range(int(rng.integers(0, 3))):
            lay.on_wall(O.bookshelf(rng))
        if _maybe(rng, 0.5):
            lay.on_wall(O.cabinet(rng))
        if _maybe(rng, 0.5):
            lay.free(O.rug(rng), margin=0.3)
        if _maybe(rng, 0.4):
            lay.free(O.ottoman(rng))
        if _maybe(rng, 0.5):
            lay.on_wall(O.lamp(rng, floor=True), gap=0.1) or lay.free(O.lamp(rng, floor=True))
        if _maybe(rng, 0.3):
            _table_with_chairs(lay, rng, "table", "plain")
        _pictures(lay, rng, int(rng.integers(1, 4)))
        _small_things(lay, rng, 0.3, 0.7, 1, 2)
    elif room_type == "kitchen":
        wall = int(rng.integers(4))
        length = min(lay.wall_length(wall) - 0.2, U(rng, 1.6, 3.6))
        _counter(lay, rng, wall, length, kitchen=True)
        if _maybe(rng, 0.3):
            w2 = (wall + 1) % 4
            _counter(lay, rng, w2, min(lay.wall_length(w2) - 1.0, U(rng, 1.2, 2.4)), kitchen=True)
        lay.on_wall(O.refrigerator(rng)) or lay.free(O.refrigerator(rng), margin=0.4)
        _table_with_chairs(lay, rng, "table", "plain")
        if _maybe(rng, 0.3):
            lay.on_wall(O.cabinet(rng))
        _pictures(lay, rng, int(rng.integers(0, 2)))
        _small_things(lay, rng, 0.9, 0.3, 2, 2)
    elif room_type == "bathroom":
        tub = O.bathtub(rng)
        corners = [(w, end) for w in range(4) for end in (0, 1)]
        for k in rng.permutation(len(corners)):  # a corner spot on any wall
            wall, end = corners[k]
            length = lay.wall_length(wall)
            if tub.size[0] > length - 0.05:
                continue
            t = tub.size[0] / 2 + 0.005 if end == 0 else length - tub.size[0] / 2 - 0.005
            placed = lay.on_wall(tub, wall=wall, t=t, gap=0.005)
            if placed is not None:
                if _maybe(rng, 0.9):
                    sc = O.shower_curtain(rng, tub.size[0], tub.size[1], tub.size[2], lay.height)
                    lay.add(sc.placed(placed.yaw, *placed.position), floor=False)
                break
        lay.on_wall(O.toilet(rng), gap=0.02)
        if _maybe(rng, 0.9):
            _counter(lay, rng, None, U(rng, 0.6, 1.3), kitchen=False)
        for _ in range(int(rng.integers(0, 3))):
            lay.mount(O.towel(rng), (0.9, 1.4), off=0.02)
        if _maybe(rng, 0.3):
            lay.on_wall(O.cabinet(rng, w=U(rng, 0.35, 0.6), d=U(rng, 0.3, 0.4), h=U(rng, 0.6, 1.8)))
        _small_things(lay, rng, 0.7, 0.1, 1, 1)
    elif room_type == "conference":
        _table_with_chairs(lay, rng, "conference", "office" if rng.random() < 0.6 else None)
        for _ in range(int(rng.integers(1, 3))):
            lay.mount(O.whiteboard(rng), (0.8, 1.1))
        if _maybe(rng, 0.4):
            stand, tv = O.tv_stand(rng)
            st = lay.on_wall(stand)
            if st is not None:
                lay.add(tv.placed(st.yaw, *st.position), floor=False)
        for _ in range(int(rng.integers(0, 3))):
            lay.on_wall(O.cabinet(rng, h=U(rng, 0.7, 1.2)))
        if _maybe(rng, 0.25):
            lay.on_wall(O.bookshelf(rng))
        for _ in range(int(rng.integers(0, 4))):
            lay.on_wall(O.chair(rng), gap=0.05)
        _pictures(lay, rng, int(rng.integers(1, 4)))
        _small_things(lay, rng, 0.6, 0.5, 1, 1)
    else:
        raise ValueError(f"unknown room type {room_type!r}; known: {', '.join(ROOM_TYPES)}")


def _counter(lay: Layout, rng: np.random.Generator, wall: int | None, length: float, kitchen: bool) -> None:
    """A counter run (counter, sink, cabinets below), upper cabinets and, in bathrooms, a mirror."""
    if length < 0.6:
        return
    parts = O.counter_run(rng, length, kitchen)
    d, h = parts[0].size[1], parts[0].size[2]
    block = SynthObject("counter run", size=(length, d + 0.02, h + 0.05))
    placed = lay.on_wall(block, wall=wall)
    if placed is None:
        return
    lay.objects.remove(placed)  # the block only reserved the space; add the real parts
    yaw, pos = placed.yaw, placed.position
    for p in parts:
        lay.add(p.placed(yaw, *pos), floor=False)
    wl, tc = placed.wall, placed.t
    if kitchen:
        z0 = U(rng, 1.4, 1.55)
        uh, ud = min(U(rng, 0.6, 0.8), lay.height - z0 - 0.05), U(rng, 0.3, 0.36)
        n = max(1, int(round(length / U(rng, 0.5, 0.8))))
        finish = M.furniture_finish(rng)
        for k in range(n):
            if _maybe(rng, 0.15):
                continue
            t = tc - length / 2 + (k + 0.5) * length / n
            lay.on_wall(O.cabinet(rng, "kitchen cabinet", w=length / n - 0.01, d=ud, h=uh, finish=finish), wall=wl, t=t, z=z0, floor=False)
    else:
        lay.mount(O.mirror(rng), (h + 0.25, h + 0.45), wall=wl, tries=10)
