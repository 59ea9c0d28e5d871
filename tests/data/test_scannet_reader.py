"""ScanNet v2 reader: label chain raw category -> NYU40 -> scannet20 on real fixture data, splits, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from raw_builders import RAW_CATEGORY, load_fixture, write_label_tsv, write_scannet_scene

from pcseg.data import scannet
from pcseg.data.classes import SCANNET20, SCANNET20_NYU40_IDS
from pcseg.data.scene import open_dataset
from pcseg.utils.errors import DataError


def _reference_scannet20(nyu40: np.ndarray) -> np.ndarray:
    """Independent mapping: position in the benchmark id list, -1 otherwise."""
    table = {nyu: i for i, nyu in enumerate(SCANNET20_NYU40_IDS)}
    return np.array([table.get(int(v), -1) for v in nyu40])


@pytest.fixture
def fixture_raw(tmp_path, shared_fixtures):
    pts, sem, ins = load_fixture(shared_fixtures, "scannet", "scene0000_00")
    raw = tmp_path / "raw"
    write_scannet_scene(raw, "scene0000_00", pts, sem, ins)
    write_label_tsv(raw / scannet.LABEL_TSV)
    return raw, pts, sem, ins


def test_fixture_scene_label_chain(fixture_raw, tmp_path):
    raw, pts, sem, ins = fixture_raw
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "scannetv2_train.txt").write_text("scene0000_00\n")
    report = scannet.prepare_scannet(raw, tmp_path / "out", splits_dir=splits, progress=False)
    assert report.ok and report.prepared == ["scene0000_00"]
    ds = open_dataset(tmp_path / "out")
    scene = ds.load("scene0000_00")
    # vertex order and values kept
    np.testing.assert_array_equal(scene.coord, pts[:, :3])
    np.testing.assert_array_equal(scene.color, pts[:, 3:].astype(np.uint8))
    np.testing.assert_array_equal(scene.segment, _reference_scannet20(sem))
    # the fixture's known label histogram (NYU40 ids of ScanNet scene0000_00)
    counts = {SCANNET20.names[c]: int(n) for c, n in zip(*np.unique(scene.segment[scene.segment >= 0], return_counts=True))}
    assert counts == {"wall": 14, "floor": 13, "cabinet": 14, "bed": 3, "sofa": 7, "table": 4, "door": 2, "desk": 2,
                      "curtain": 11, "refrigerator": 1, "toilet": 2}
    assert int((scene.segment == -1).sum()) == 27  # unannotated + shelves, pillow, ceiling, tv, column, plant
    annotated = sem > 0
    np.testing.assert_array_equal(scene.instance[annotated], ins[annotated])
    assert (scene.instance[~annotated] == -1).all()
    assert ds.split("train") == ["scene0000_00"]
    assert ds.info["class_map"] == "scannet20"


def test_official_splits_are_shipped():
    splits = scannet.official_splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 1201, "val": 312, "test": 100}
    assert not set(splits["train"]) & set(splits["val"])
    assert splits["test"][0] == "scene0707_00" and splits["test"][-1] == "scene0806_00"


def test_label_tsv_by_header_and_errors(tmp_path):
    good = tmp_path / "a.tsv"
    good.write_text("raw_category\tnyu40id\tother\nchair\t5\tx\nmystery\t\tx\n")
    assert scannet.read_label_tsv(good) == {"chair": 5, "mystery": 0}
    bad = tmp_path / "b.tsv"
    bad.write_text("raw_category\tnyu40id\nchair\tfive\n")
    with pytest.raises(DataError, match=r"b\.tsv:2: nyu40id 'five' is not an integer"):
        scannet.read_label_tsv(bad)
    bad.write_text("raw_category\tnyu40id\nchair\t41\n")
    with pytest.raises(DataError, match="outside 0..40"):
        scannet.read_label_tsv(bad)


def test_test_scenes_are_unlabelled(tmp_path, shared_fixtures):
    pts, sem, ins = load_fixture(shared_fixtures, "scannet", "scene0000_00")
    raw = tmp_path / "raw"
    write_scannet_scene(raw, "scene0707_00", pts, sem, ins, test_scene=True)
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "test.txt").write_text("scene0707_00\n")
    report = scannet.prepare_scannet(raw, tmp_path / "out", splits_dir=splits, progress=False)
    assert report.ok
    scene = open_dataset(tmp_path / "out").load("scene0707_00")
    assert scene.segment is None and scene.meta["has_labels"] is False


def test_overlapping_groups_last_wins():
    seg = np.array([10, 10, 20, 30, 40])
    groups = [(0, "wall", np.array([10, 20])), (1, "door", np.array([20, 30]))]
    nyu, inst = scannet.vertex_labels(seg, groups, {"wall": 1, "door": 8}, "agg.json")
    np.testing.assert_array_equal(nyu, [1, 1, 8, 8, 0])
    np.testing.assert_array_equal(inst, [0, 0, 1, 1, -1])


# --------------------------------------------------------------------------- bad input
def _scene(tmp_path, shared_fixtures):
    pts, sem, ins = load_fixture(shared_fixtures, "scannet", "scene0000_00")
    raw = tmp_path / "raw"
    folder = write_scannet_scene(raw, "scene0000_00", pts, sem, ins)
    files = scannet.find_scenes(raw)["scene0000_00"]
    label_map = {raw_name: nyu for nyu, raw_name in RAW_CATEGORY.items()}
    return folder, files, label_map


def test_segs_vertex_count_mismatch(tmp_path, shared_fixtures):
    folder, files, label_map = _scene(tmp_path, shared_fixtures)
    files.segs.write_text(json.dumps({"segIndices": list(range(99))}))
    with pytest.raises(DataError, match=r"segs\.json: has 99 segment indices but the mesh has 100 vertices"):
        scannet.read_scene(files, label_map)


def test_malformed_json_names_file_and_line(tmp_path, shared_fixtures):
    folder, files, label_map = _scene(tmp_path, shared_fixtures)
    files.aggregation.write_text('{\n "segGroups": [\n  {"label": "wall",, }\n]}')
    with pytest.raises(DataError, match=r"aggregation\.json:3: not valid JSON"):
        scannet.read_scene(files, label_map)


def test_unknown_category(tmp_path, shared_fixtures):
    folder, files, label_map = _scene(tmp_path, shared_fixtures)
    del label_map["door"]
    with pytest.raises(DataError, match=r"aggregation\.json: raw category 'door' not in the label map"):
        scannet.read_scene(files, label_map)


def test_nan_coordinates(tmp_path, shared_fixtures):
    pts, sem, ins = load_fixture(shared_fixtures, "scannet", "scene0000_00")
    pts[5, 1] = np.nan
    pts[9, 2] = np.inf
    raw = tmp_path / "raw"
    write_scannet_scene(raw, "scene0000_00", pts, sem, ins)
    files = scannet.find_scenes(raw)["scene0000_00"]
    with pytest.raises(DataError, match=r"_vh_clean_2\.ply: 2 point\(s\) have NaN or infinite coordinates \(first: vertex 5\)"):
        scannet.read_scene(files, {})


def test_malformed_and_empty_ply(tmp_path, shared_fixtures):
    folder, files, label_map = _scene(tmp_path, shared_fixtures)
    data = files.ply.read_bytes()
    files.ply.write_bytes(data[: len(data) // 3])  # truncated body
    with pytest.raises(DataError, match=r"_vh_clean_2\.ply: (not a readable PLY|truncated)"):
        scannet.read_scene(files, label_map)
    files.ply.write_bytes(b"this is not a ply file\n")
    with pytest.raises(DataError, match="not a readable PLY file"):
        scannet.read_scene(files, label_map)
    empty = load_fixture(shared_fixtures, "scannet", "scene0000_00")
    write_scannet_scene(tmp_path / "raw2", "scene0001_00", empty[0][:0], empty[1][:0], empty[2][:0], faces=False)
    with pytest.raises(DataError, match="no points"):
        scannet.read_scene(scannet.find_scenes(tmp_path / "raw2")["scene0001_00"], label_map)
