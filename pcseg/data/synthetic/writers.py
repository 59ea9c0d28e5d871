"""Write a generated room in the raw ScanNet v2 and S3DIS layouts (the same files the readers expect).

ScanNet: ``scans/<scene>/<scene>_vh_clean_2.ply`` (binary, x y z red green blue alpha), the
over-segmentation ``<scene>_vh_clean_2.0.010000.segs.json`` (segments never cross objects, so the
annotation is exact), ``<scene>.aggregation.json`` (one segGroup per annotated object, raw category
names) and a ``scannetv2-labels.combined.tsv`` with the generator's categories.

S3DIS: ``Area_<k>/<room>/Annotations/<class>_<n>.txt`` (lines ``x y z r g b``, mm precision like
the real files). The room-level ``<room>.txt`` of the real dataset is not written: no reader uses it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from pcseg.data.rawio import write_ply_vertices
from pcseg.data.s3dis import ANNOTATION_PATTERN
from pcseg.data.scannet import LABEL_TSV
from pcseg.data.synthetic.objects import CATEGORIES
from pcseg.data.synthetic.room import Room
from pcseg.utils.atomic import atomic_write_text

# Raw files of a room are plain writes: the room's record (rooms/<scene>.json, written atomically
# after them) is what marks a room as complete, and an incomplete room is regenerated.


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")

SEGMENT_SIZE = 0.3  # metres: over-segmentation cell (ScanNet segments hold a few hundred vertices)

NYU40_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture", "counter", "blinds",
    "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes", "ceiling", "books", "refridgerator",
    "television", "paper", "towel", "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)
TSV_HEADER = ("id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass", "nyu40class", "eigen13class",
              "ModelNet40", "ModelNet10", "ShapeNetCore55", "synsetoffset", "wnsynsetid", "wnsynsetkey", "mpcat40", "mpcat40index")


def over_segmentation(room: Room, rng: np.random.Generator) -> np.ndarray:
    """(N,) segment id per point: one segment per (surface, 30 cm cell); ids are arbitrary distinct ints."""
    cell = np.floor(room.coord / SEGMENT_SIZE).astype(np.int64)
    cell -= cell.min(axis=0)
    key = ((room.point_surface.astype(np.int64) * 4096 + cell[:, 0]) * 4096 + cell[:, 1]) * 4096 + cell[:, 2]
    _, inverse = np.unique(key, return_inverse=True)
    n_seg = int(inverse.max()) + 1
    ids = rng.choice(max(4 * n_seg, 16), size=n_seg, replace=False)  # like ScanNet: not 0..K-1
    return ids[inverse].astype(np.int64)


def write_scannet_scene(raw_root: str | Path, name: str, room: Room, rng: np.random.Generator) -> None:
    """Write one room as ``<raw_root>/scans/<name>/`` (mesh vertices, segments, aggregation)."""
    folder = Path(raw_root) / "scans" / name
    folder.mkdir(parents=True, exist_ok=True)
    n = room.num_points
    write_ply_vertices(folder / f"{name}_vh_clean_2.ply", {
        "x": room.coord[:, 0], "y": room.coord[:, 1], "z": room.coord[:, 2],
        "red": room.color[:, 0], "green": room.color[:, 1], "blue": room.color[:, 2], "alpha": np.full(n, 255, np.uint8),
    }, durable=False)
    seg = over_segmentation(room, rng)
    segs_name = f"{name}_vh_clean_2.0.010000.segs.json"
    _write(folder / segs_name, json.dumps({"params": {"segMinVerts": 20, "kThresh": 0.01, "synthetic": True},
                                                      "sceneId": name, "segIndices": seg.tolist()}))
    instance = room.scannet_instance()
    groups = []
    order = np.argsort(room.point_object, kind="stable")
    bounds = np.searchsorted(room.point_object[order], np.arange(len(room.objects) + 1))
    for oi, (category, annotated) in enumerate(room.objects):
        members = order[bounds[oi]:bounds[oi + 1]]
        if not annotated or members.size == 0:
            continue
        obj_id = int(instance[members[0]])
        groups.append({"id": obj_id, "objectId": obj_id, "segments": np.unique(seg[members]).tolist(), "label": category})
    _write(folder / f"{name}.aggregation.json", json.dumps(
        {"sceneId": f"scannet.{name}", "appId": "pcseg.synthetic.v1", "segGroups": groups, "segmentsFile": f"scannet.{segs_name}"}))


def write_label_tsv(raw_root: str | Path, rooms_objects: list[list[tuple[str, bool]]] | None = None) -> Path:
    """The generator's ``scannetv2-labels.combined.tsv`` (same columns as ScanNet's)."""
    counts = Counter(c for objs in (rooms_objects or []) for c, _ in objs)
    lines = ["\t".join(TSV_HEADER)]
    for i, (raw, (nyu, _, _)) in enumerate(sorted(CATEGORIES.items()), start=1):
        row = [str(i), raw, raw, str(counts.get(raw, 0)), str(nyu), "", NYU40_NAMES[nyu - 1], NYU40_NAMES[nyu - 1]] + [""] * 9
        lines.append("\t".join(row))
    path = Path(raw_root) / LABEL_TSV
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def s3dis_files(room: Room) -> list[tuple[str, int]]:
    """(annotation file name, object index) per object with points, in the reader's natural order."""
    has_points = np.bincount(room.point_object, minlength=len(room.objects)) > 0
    per_class: Counter[str] = Counter()
    files = []
    for oi, (category, _) in enumerate(room.objects):
        if not has_points[oi]:
            continue
        cls = CATEGORIES[category][2]
        per_class[cls] += 1
        files.append((f"{cls}_{per_class[cls]}.txt", oi))
    def natural(item: tuple[str, int]) -> tuple[str, int]:
        m = ANNOTATION_PATTERN.match(item[0])
        assert m is not None
        return m.group(1), int(m.group(2))
    return sorted(files, key=natural)


def write_s3dis_room(raw_root: str | Path, area: str, room_name: str, room: Room) -> np.ndarray:
    """Write ``<raw_root>/<area>/<room_name>/Annotations/*.txt``.

    Returns:
        (N,) int64: for each point of the prepared S3DIS scene (files concatenated in natural
        order), its index in ``room`` — the permutation the round-trip test needs.
    """
    folder = Path(raw_root) / area / room_name / "Annotations"
    folder.mkdir(parents=True, exist_ok=True)
    order = np.argsort(room.point_object, kind="stable")
    bounds = np.searchsorted(room.point_object[order], np.arange(len(room.objects) + 1))
    out = []
    for fname, oi in s3dis_files(room):
        members = order[bounds[oi]:bounds[oi + 1]]
        rows = np.column_stack([room.coord[members].astype(np.float64), room.color[members].astype(np.float64)])
        text = ("%.3f %.3f %.3f %d %d %d\n" * len(rows)) % tuple(rows.ravel().tolist())
        _write(folder / fname, text)
        out.append(members)
    return np.concatenate(out).astype(np.int64)
