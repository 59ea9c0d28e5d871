"""Build small raw-format datasets (ScanNet v2, S3DIS, custom PLY) in temporary folders for reader tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pcseg.data.classes import S3DIS13_MMDET3D_ORDER, get_class_map
from pcseg.data.rawio import write_ply_vertices
from pcseg.data.scene import Scene, write_dataset_info, write_scene, write_split

# One raw category per NYU40 id used by the fixture (names and ids as in ScanNet's label tsv).
RAW_CATEGORY = {
    1: "wall", 2: "floor", 3: "kitchen cabinet", 4: "bed", 6: "couch", 7: "coffee table", 8: "door", 14: "desk",
    15: "shelf", 16: "curtains", 18: "pillow", 22: "ceiling", 24: "refrigerator", 25: "tv", 33: "toilet", 38: "column",
    40: "plant",
}
TSV_HEADER = "id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class"


def load_fixture(fixtures: Path, dataset: str, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (N, 6) float32, semantic (N,) int64, instance (N,) int64) of an mmdet3d fixture."""
    base = fixtures / "mmdet3d_tests" / dataset
    pts = np.fromfile(base / "points" / f"{name}.bin", dtype=np.float32).reshape(-1, 6)
    sem = np.fromfile(base / "semantic_mask" / f"{name}.bin", dtype=np.int64)
    ins = np.fromfile(base / "instance_mask" / f"{name}.bin", dtype=np.int64)
    return pts, sem, ins


def write_label_tsv(path: Path, mapping: dict[str, int] | None = None) -> Path:
    mapping = mapping or {raw: nyu for nyu, raw in RAW_CATEGORY.items()}
    rows = [TSV_HEADER] + [f"{i}\t{raw}\t{raw}\t1\t{nyu}\t\t{raw}\t{raw}" for i, (raw, nyu) in enumerate(mapping.items(), start=1)]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_scannet_scene(raw: Path, name: str, points: np.ndarray, nyu40: np.ndarray, instance: np.ndarray,
                        test_scene: bool = False, faces: bool = True) -> Path:
    """A raw ScanNet scene: every vertex its own segment; one group per (instance) with nyu40 > 0."""
    folder = raw / ("scans_test" if test_scene else "scans") / name
    folder.mkdir(parents=True, exist_ok=True)
    n = len(points)
    tri = np.stack([np.arange(n - 2), np.arange(1, n - 1), np.arange(2, n)], axis=1) if faces and n >= 3 else None
    write_ply_vertices(folder / f"{name}_vh_clean_2.ply", {
        "x": points[:, 0].astype(np.float32), "y": points[:, 1].astype(np.float32), "z": points[:, 2].astype(np.float32),
        "red": points[:, 3].astype(np.uint8), "green": points[:, 4].astype(np.uint8), "blue": points[:, 5].astype(np.uint8),
        "alpha": np.full(n, 255, np.uint8),
    }, faces=tri)
    if test_scene:
        return folder
    seg_ids = np.arange(n) * 7 + 3  # arbitrary distinct ids, like ScanNet's
    (folder / f"{name}_vh_clean_2.0.010000.segs.json").write_text(json.dumps({"sceneId": name, "segIndices": seg_ids.tolist()}))
    groups = []
    for obj in np.unique(instance[nyu40 > 0]):
        members = np.flatnonzero((instance == obj) & (nyu40 > 0))
        label = RAW_CATEGORY[int(nyu40[members[0]])]
        groups.append({"id": int(obj), "objectId": int(obj), "segments": seg_ids[members].tolist(), "label": label})
    (folder / f"{name}.aggregation.json").write_text(json.dumps({"sceneId": f"scannet.{name}", "segGroups": groups}))
    return folder


def write_s3dis_room(raw: Path, area: str, room: str, points: np.ndarray, class_names: list[str], instance: np.ndarray) -> Path:
    """A raw S3DIS room: one ``<class>_<k>.txt`` per instance."""
    folder = raw / area / room / "Annotations"
    folder.mkdir(parents=True, exist_ok=True)
    counter: dict[str, int] = {}
    for obj in np.unique(instance):
        members = np.flatnonzero(instance == obj)
        cls = class_names[members[0]]
        counter[cls] = counter.get(cls, 0) + 1
        lines = "".join(f"{p[0]:.3f} {p[1]:.3f} {p[2]:.3f} {int(p[3])} {int(p[4])} {int(p[5])}\n" for p in points[members])
        (folder / f"{cls}_{counter[cls]}.txt").write_text(lines)
    return folder


def mmdet3d_s3dis_names(sem: np.ndarray) -> list[str]:
    return [S3DIS13_MMDET3D_ORDER[i] for i in sem]


def make_small_dataset(root: Path, num_scenes: int = 3, points: int = 4000, seed: int = 0) -> Path:
    """Random room-sized point clouds with random scannet20 labels (some -1), written with the real writer."""
    rng = np.random.default_rng(seed)
    cmap = get_class_map("scannet20")
    names = []
    for i in range(num_scenes):
        n = points + 500 * i
        coord = (rng.random((n, 3)) * [4.0, 3.0, 2.5] + [1.0, -2.0, 0.0]).astype(np.float32)
        seg = rng.integers(0, 6, n).astype(np.int32)
        seg[rng.random(n) < 0.1] = -1
        name = f"scene{i:04d}_00"
        write_scene(root, Scene(name, coord, rng.integers(0, 256, (n, 3)).astype(np.uint8), seg, np.full(n, -1, np.int32)))
        names.append(name)
    write_dataset_info(root, "scannet", cmap)
    write_split(root, "train", names[:-1])
    write_split(root, "val", names[-1:])
    return root
