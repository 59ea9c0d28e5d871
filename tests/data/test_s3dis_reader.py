"""S3DIS reader: CPCM class order from real fixture data, instances, splits, corrupt lines, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from raw_builders import load_fixture, mmdet3d_s3dis_names, write_s3dis_room

from pcseg.data import s3dis
from pcseg.data.classes import S3DIS13
from pcseg.data.scene import open_dataset
from pcseg.utils.errors import DataError


def _room_lines(n: int = 50, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{x:.3f} {y:.3f} {z:.3f} {r} {g} {b}" for (x, y, z), (r, g, b)
            in zip(rng.random((n, 3)) * 4, rng.integers(0, 256, (n, 3)))]


def test_fixture_room_class_order_and_instances(tmp_path, shared_fixtures):
    pts, sem, ins = load_fixture(shared_fixtures, "s3dis", "Area_1_office_2")
    names = mmdet3d_s3dis_names(sem)
    raw = tmp_path / "raw"
    write_s3dis_room(raw, "Area_1", "office_2", pts, names, ins)
    write_s3dis_room(raw, "Area_5", "hallway_1", pts[:20], names[:20], ins[:20])
    report = s3dis.prepare_s3dis(raw, tmp_path / "out", progress=False)
    assert report.ok, report.summary()
    ds = open_dataset(tmp_path / "out")
    assert ds.split("train") == ["Area_1_office_2"] and ds.split("val") == ["Area_5_hallway_1"]
    assert ds.split("area1") == ["Area_1_office_2"] and ds.info["class_map"] == "s3dis13"
    scene = ds.load("Area_1_office_2")
    assert scene.num_points == 100
    got = {S3DIS13.names[c]: int(n) for c, n in zip(*np.unique(scene.segment, return_counts=True))}
    # the fixture's known histogram, read through the explicit mmdet3d -> CPCM order change
    assert got == {"ceiling": 19, "floor": 14, "wall": 39, "beam": 2, "column": 2, "window": 2, "door": 6, "table": 4,
                   "chair": 2, "sofa": 2, "bookcase": 3, "clutter": 5}
    # every point keeps its class and its object: match prepared points to fixture points by position
    fixture_index = {tuple(k): i for i, k in enumerate(np.round(pts[:, :3] * 1000).astype(np.int64))}
    assert len(fixture_index) == 100
    match = np.array([fixture_index[tuple(k)] for k in np.round(scene.coord * 1000).astype(np.int64)])
    assert sorted(match.tolist()) == list(range(100))
    assert [S3DIS13.names[c] for c in scene.segment] == [names[i] for i in match]
    pairs = set(zip(scene.instance.tolist(), ins[match].tolist()))  # a bijection between the two id sets
    assert len(pairs) == len(np.unique(ins)) == len(np.unique(scene.instance))

def test_natural_file_order_and_stairs_ignored(tmp_path):
    ann = tmp_path / "Area_2" / "storage_1" / "Annotations"
    ann.mkdir(parents=True)
    lines = _room_lines(30)
    (ann / "wall_10.txt").write_text("\n".join(lines[:10]) + "\n")
    (ann / "wall_2.txt").write_text("\n".join(lines[10:20]) + "\n")
    (ann / "stairs_1.txt").write_text("\n".join(lines[20:]) + "\n")
    (ann / ".DS_Store").write_text("junk")
    scene = s3dis.read_room("Area_2", "storage_1", ann.parent)
    assert scene.name == "Area_2_storage_1"
    # stairs_1, wall_2, wall_10 (natural order); stairs -> -1
    np.testing.assert_array_equal(scene.segment, [-1] * 10 + [S3DIS13.index("wall")] * 20)
    np.testing.assert_array_equal(scene.instance, [0] * 10 + [1] * 10 + [2] * 10)
    np.testing.assert_allclose(scene.coord[10:20], np.array([[float(v) for v in ln.split()[:3]] for ln in lines[10:20]]), atol=1e-6)


def test_corrupt_lines_repaired_or_skipped(tmp_path):
    ann = tmp_path / "Area_5" / "hallway_6" / "Annotations"
    ann.mkdir(parents=True)
    lines = _room_lines(200)
    lines[3] = "1.000 2.000 3.000 185\x00187 182"  # the real Area_5/hallway_6 corruption: NUL for a space
    lines[7] = "1.500 2.500 3.500 103.0\x100000 90 80"  # stray byte inside a number
    lines[11] = "1.0 2.0 3.0 4 5"  # 5 columns: skipped
    lines[15] = "nan 2.0 3.0 4 5 6"  # not finite: skipped
    (ann / "ceiling_1.txt").write_text("\n".join(lines) + "\n")
    scene = s3dis.read_room("Area_5", "hallway_6", ann.parent)
    warnings = scene.meta["warnings"]
    assert scene.num_points == 198
    assert any("ceiling_1.txt:4: repaired" in w for w in warnings)
    assert any("ceiling_1.txt:8: repaired" in w for w in warnings)
    assert any("ceiling_1.txt:12: skipped" in w for w in warnings)
    assert any("ceiling_1.txt:16: skipped" in w for w in warnings)
    np.testing.assert_array_equal(scene.color[3], [185, 187, 182])
    np.testing.assert_allclose(scene.coord[3], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(scene.color[7], [103, 90, 80])


def test_broken_file_fails_its_room_not_the_area(tmp_path):
    raw = tmp_path / "raw"
    good = raw / "Area_1" / "office_1" / "Annotations"
    bad = raw / "Area_1" / "office_2" / "Annotations"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    (good / "chair_1.txt").write_text("\n".join(_room_lines(40)) + "\n")
    (bad / "chair_1.txt").write_text("garbage\n" * 40)
    report = s3dis.prepare_s3dis(raw, tmp_path / "out", progress=False)
    assert report.prepared == ["Area_1_office_1"]
    assert list(report.failed) == ["Area_1_office_2"]
    assert "chair_1.txt: 40 of 40 lines are malformed" in report.failed["Area_1_office_2"]
    assert open_dataset(tmp_path / "out").split("area1") == ["Area_1_office_1"]


def test_unknown_class_and_empty_room(tmp_path):
    ann = tmp_path / "Area_3" / "lobby_1" / "Annotations"
    ann.mkdir(parents=True)
    (ann / "robot_1.txt").write_text("\n".join(_room_lines(5)) + "\n")
    with pytest.raises(DataError, match=r"robot_1\.txt: unknown class 'robot'"):
        s3dis.read_room("Area_3", "lobby_1", ann.parent)
    (ann / "robot_1.txt").unlink()
    (ann / "wall_1.txt").write_text("")
    with pytest.raises(DataError, match="empty room"):
        s3dis.read_room("Area_3", "lobby_1", ann.parent)
    (ann / "wall_1.txt").write_text("1e40 0 0 1 2 3\n")
    with pytest.raises(DataError, match="NaN or infinite"):
        s3dis.read_room("Area_3", "lobby_1", ann.parent)
