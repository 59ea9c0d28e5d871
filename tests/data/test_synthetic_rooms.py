"""Synthetic rooms: the generator's ground truth equals what both raw readers produce; determinism; layout."""

from __future__ import annotations

import json

import numpy as np

from pcseg.data.classes import SCANNET20
from pcseg.data.scene import open_dataset
from pcseg.data.synthetic.generate import plan_rooms
from pcseg.data.synthetic.room import MIN_POINTS, generate_room
from pcseg.data.synthetic.writers import s3dis_files


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_round_trip_through_both_readers(synthetic_root):
    info = json.loads((synthetic_root / "synthetic.json").read_text())
    scannet = open_dataset(synthetic_root / "scannet")
    s3dis = open_dataset(synthetic_root / "s3dis")
    assert scannet.info["class_map"] == "scannet20" and s3dis.info["class_map"] == "s3dis13"
    assert scannet.split("train") == ["synth0000_00"] and scannet.split("val") == ["synth0001_00"]
    assert s3dis.split("val") == [info["rooms"][1]["area"] + "_" + info["rooms"][1]["s3dis_room"]]
    assert info["rooms"][1]["area"] == "Area_5"
    for plan in plan_rooms(2):
        room = generate_room(plan.index, 3, plan.room_type)
        a = scannet.load(plan.scannet_name)
        np.testing.assert_array_equal(a.coord, room.coord)
        np.testing.assert_array_equal(a.color, room.color)
        np.testing.assert_array_equal(a.segment, room.scannet20())
        np.testing.assert_array_equal(a.instance, room.scannet_instance())
        # S3DIS: annotation files concatenated in natural (class, n) order
        order = np.concatenate([np.flatnonzero(room.point_object == oi) for _, oi in s3dis_files(room)])
        b = s3dis.load(plan.s3dis_scene)
        np.testing.assert_array_equal(b.segment, room.s3dis13()[order])
        np.testing.assert_array_equal(b.color, room.color[order])
        assert np.abs(b.coord - room.coord[order]).max() <= 0.0005 + 1e-6  # mm precision of the text files
        assert _same_partition(b.instance, room.point_object[order])


def test_rooms_are_deterministic_and_plausible():
    a = generate_room(2, seed=11)
    b = generate_room(2, seed=11)
    c = generate_room(2, seed=12)
    np.testing.assert_array_equal(a.coord, b.coord)
    np.testing.assert_array_equal(a.color, b.color)
    np.testing.assert_array_equal(a.point_object, b.point_object)
    assert a.num_points != c.num_points or not np.array_equal(a.coord, c.coord)
    assert a.room_type == "bathroom"
    assert MIN_POINTS * 0.9 <= a.num_points <= 150_000
    seg = a.scannet20()
    present = {SCANNET20.names[i] for i in np.unique(seg[seg >= 0])}
    assert {"wall", "floor", "door", "toilet"} <= present
    # floor points lie at the floor height, ceiling-free classes never above the walls
    floor = a.coord[seg == SCANNET20.index("floor")]
    assert floor[:, 2].std() < 0.02
    assert a.coord[:, 2].max() - floor[:, 2].mean() < 3.3
    assert a.color.dtype == np.uint8 and a.color.std() > 10


def test_room_plan_names_and_splits():
    plans = plan_rooms(32)
    assert sum(p.split == "train" for p in plans) == 24 and sum(p.split == "val" for p in plans) == 8
    assert all(p.area == "Area_5" for p in plans if p.split == "val")
    assert all(p.area != "Area_5" for p in plans if p.split == "train")
    assert len({p.s3dis_scene for p in plans}) == 32 and len({p.scannet_name for p in plans}) == 32
    assert {p.room_type for p in plans if p.split == "val"} == {p.room_type for p in plans}


def test_default_plan_adds_training_rooms_and_keeps_eight_val_rooms():
    from pcseg.data.synthetic.generate import DEFAULT_NUM_SCENES

    plans = plan_rooms(DEFAULT_NUM_SCENES)
    assert DEFAULT_NUM_SCENES == 104
    assert [p.index for p in plans if p.split == "val"] == list(range(96, 104))
    small = plan_rooms(32)  # the benchmarks' set: same names and splits as before the default grew
    assert [p.scannet_name for p in small if p.split == "val"] == [f"synth{i:04d}_00" for i in range(24, 32)]
    assert [p.split for p in plan_rooms(8)].count("val") == 2  # a quarter while that is below 8
