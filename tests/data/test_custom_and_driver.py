"""The custom PLY format, and the preparation driver: skip-if-done, failures isolated, worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.data import custom
from pcseg.data.prepare import SceneJob, map_tasks, prepare_scenes
from pcseg.data.rawio import write_ply_vertices
from pcseg.data.scene import Scene, open_dataset
from pcseg.utils.errors import DataError


def _ply(path, n=60, seed=0, label=True, instance=True, color=True, label_values=None, float_labels=False):
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.random(n).astype(np.float32), "y": rng.random(n).astype(np.float32), "z": rng.random(n).astype(np.float32)}
    if color:
        for c in ("red", "green", "blue"):
            arrays[c] = rng.integers(0, 256, n).astype(np.uint8)
    if label:
        lab = rng.integers(-1, 3, n) if label_values is None else np.asarray(label_values)
        arrays["label"] = lab.astype(np.float32 if float_labels else np.int32)
    if instance:
        arrays["instance"] = rng.integers(-1, 5, n).astype(np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_ply_vertices(path, arrays)
    return arrays


def test_custom_round_trip_with_split_folders(tmp_path):
    raw = tmp_path / "raw"
    a = _ply(raw / "train" / "room_a.ply", seed=1)
    b = _ply(raw / "val" / "room_b.ply", seed=2, instance=False, float_labels=True)
    _ply(raw / "test" / "room_c.ply", seed=3, label=False, color=False)
    classes = tmp_path / "classes.txt"
    classes.write_text("# my classes\nground\n\nplant\nrock\n")
    report = custom.prepare_custom(raw, classes, tmp_path / "out", name="garden", progress=False)
    assert report.ok, report.summary()
    ds = open_dataset(tmp_path / "out")
    assert ds.class_map.names == ("ground", "plant", "rock") and ds.name == "garden"
    assert ds.split("train") == ["room_a"] and ds.split("val") == ["room_b"] and ds.split("test") == ["room_c"]
    sa = ds.load("room_a")
    np.testing.assert_array_equal(sa.segment, a["label"])
    np.testing.assert_array_equal(sa.instance, a["instance"])
    np.testing.assert_array_equal(sa.color[:, 0], a["red"])
    sb = ds.load("room_b")
    np.testing.assert_array_equal(sb.segment, b["label"].astype(int))
    assert sb.instance is None
    sc = ds.load("room_c")
    assert sc.segment is None and (sc.color == 0).all()
    assert any("no red/green/blue" in w for w in report.warnings)


def test_custom_bad_input(tmp_path):
    classes = custom.read_classes_file(_write(tmp_path / "c.txt", "a\nb\n"))
    _ply(tmp_path / "bad.ply", label_values=[0, 1, 2, -1] * 15)
    with pytest.raises(DataError, match=r"bad\.ply: label value\(s\) \[2\] outside the class map \(0\.\.1, -1 = unlabelled\)"):
        custom.read_scene(tmp_path / "bad.ply", classes)
    arrays = _ply(tmp_path / "frac.ply", float_labels=True)
    arrays["label"][0] = 0.5
    write_ply_vertices(tmp_path / "frac.ply", arrays)
    with pytest.raises(DataError, match="'label' values must be integers"):
        custom.read_scene(tmp_path / "frac.ply", classes)
    with pytest.raises(DataError, match=r"c2\.txt:2: class 'a' is listed twice"):
        custom.read_classes_file(_write(tmp_path / "c2.txt", "a\na\n"))
    arrays = _ply(tmp_path / "nan.ply")
    arrays["x"][3] = np.nan
    write_ply_vertices(tmp_path / "nan.ply", arrays)
    with pytest.raises(DataError, match=r"nan\.ply: 1 point\(s\) have NaN"):
        custom.read_scene(tmp_path / "nan.ply", classes)


def _write(path, text):
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- driver
def _make_scene(name: str, n: int) -> Scene:
    if n < 0:
        raise DataError(f"/raw/{name}.ply", "deliberately broken")
    rng = np.random.default_rng(n)
    return Scene(name, rng.random((n, 3)).astype(np.float32), np.zeros((n, 3), np.uint8), np.zeros(n, np.int32), None)


def _boom(name: str) -> Scene:
    raise ZeroDivisionError("bug in a reader")


def test_one_bad_scene_never_loses_the_others(tmp_path):
    jobs = [SceneJob("s0", _make_scene, ("s0", 10)), SceneJob("s1", _make_scene, ("s1", -1)), SceneJob("s2", _boom, ("s2",)),
            SceneJob("s3", _make_scene, ("s3", 12))]
    report = prepare_scenes(tmp_path, jobs, progress=False)
    assert report.prepared == ["s0", "s3"]
    assert report.failed["s1"] == "/raw/s1.ply: deliberately broken"
    assert report.failed["s2"].startswith("unexpected ZeroDivisionError: bug in a reader")
    assert not report.ok and "2 scene(s) FAILED" in report.summary()
    # a second run skips what is done and retries only the failures
    again = prepare_scenes(tmp_path, jobs, progress=False)
    assert again.skipped == ["s0", "s3"] and sorted(again.failed) == ["s1", "s2"]
    assert (tmp_path / "scenes" / "s0" / "meta.json").is_file() and not (tmp_path / "scenes" / "s1").exists()


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / "scenes" / ".s9.abc.tmp").mkdir(parents=True)
    prepare_scenes(tmp_path, [SceneJob("s0", _make_scene, ("s0", 5))], progress=False)
    assert sorted(p.name for p in (tmp_path / "scenes").iterdir()) == ["s0"]


def test_worker_processes_give_the_same_results():
    args = [(f"s{i}", 5 + i) for i in range(4)] + [("bad", -1)]
    serial = map_tasks(_make_scene, args, workers=1, progress=False)
    parallel = map_tasks(_make_scene, args, workers=2, progress=False)
    for (ok1, a), (ok2, b) in zip(serial, parallel):
        assert ok1 == ok2
        if ok1:
            np.testing.assert_array_equal(a.coord, b.coord)
        else:
            assert a == b
