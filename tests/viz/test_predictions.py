"""The prediction PLY format (pcseg.data.predictions): round trips, the documented layout, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from pcseg.data.classes import S3DIS13, SCANNET20, make_custom_class_map
from pcseg.data.predictions import PredictionCloud, read_prediction_ply, write_prediction_ply
from pcseg.utils.errors import DataError


def _arrays(n=500, seed=0, num_classes=20):
    rng = np.random.default_rng(seed)
    coord = rng.normal(size=(n, 3)).astype(np.float32) * 3 + 100
    pred = rng.integers(-1, num_classes, n)
    gt = rng.integers(-1, num_classes, n).astype(np.int32)
    unc = rng.random(n).astype(np.float32)
    sel = rng.random(n) < 0.1
    color = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    return coord, pred, gt, unc, sel, color


@pytest.mark.parametrize("text", [False, True])
def test_round_trip_all_fields(tmp_path, text):
    coord, pred, gt, unc, sel, color = _arrays()
    path = write_prediction_ply(tmp_path / "p.ply", coord, pred, SCANNET20, gt=gt, uncertainty=unc, selected=sel,
                                color=color, scene="scene0000_00", text=text)
    pc = read_prediction_ply(path)
    assert isinstance(pc, PredictionCloud)
    np.testing.assert_array_equal(pc.coord, coord)
    np.testing.assert_array_equal(pc.pred, pred)
    np.testing.assert_array_equal(pc.gt, gt)
    np.testing.assert_array_equal(pc.uncertainty, unc)
    np.testing.assert_array_equal(pc.selected, sel)
    np.testing.assert_array_equal(pc.color, color)
    assert pc.scene == "scene0000_00"
    assert pc.class_map.name == "scannet20" and pc.class_map.names == SCANNET20.names
    np.testing.assert_array_equal(pc.class_map.palette, SCANNET20.palette)
    assert pc.pred.dtype == np.int32 and pc.selected.dtype == bool and pc.color.dtype == np.uint8


def test_optional_fields_absent_and_header(tmp_path):
    coord, pred, *_ = _arrays(num_classes=13)
    path = write_prediction_ply(tmp_path / "sub" / "p.ply", coord, pred, S3DIS13)
    pc = read_prediction_ply(path)
    assert pc.gt is None and pc.uncertainty is None and pc.selected is None and pc.color is None and pc.scene is None
    assert pc.class_map.names == S3DIS13.names
    ply = PlyData.read(str(path))
    assert not ply.text and ply.byte_order == "<"
    props = [p.name for p in ply["vertex"].properties]
    assert props == ["x", "y", "z", "red", "green", "blue", "label"]
    assert ply.comments[:3] == ["pcseg_prediction 1", "pcseg_class_map s3dis13", "pcseg_ignore_index -1"]
    assert ply.comments[3:] == [f"pcseg_class {i} {r} {g} {b} {n}"
                                for i, (n, (r, g, b)) in enumerate(zip(S3DIS13.names, S3DIS13.palette))]
    # red/green/blue hold the palette colour of the prediction; -1 (no prediction) is black.
    v = ply["vertex"].data
    rgb = np.stack([v["red"], v["green"], v["blue"]], 1)
    ok = pred >= 0
    np.testing.assert_array_equal(rgb[ok], S3DIS13.palette[pred[ok]])
    assert (rgb[~ok] == 0).all()
    assert not list(tmp_path.joinpath("sub").glob(".*.tmp")), "atomic write left a temporary file"


def test_custom_class_map_with_spaces_round_trips(tmp_path):
    cmap = make_custom_class_map(["red apple", "banana", "coffee mug"], name="teatime")
    coord, pred, *_ = _arrays(n=50, num_classes=3)
    pc = read_prediction_ply(write_prediction_ply(tmp_path / "p.ply", coord, pred, cmap))
    assert pc.class_map.name == "teatime" and pc.class_map.names == ("red apple", "banana", "coffee mug")
    np.testing.assert_array_equal(pc.class_map.palette, cmap.palette)


def test_plain_plyfile_writer_following_the_docs(tmp_path):
    """A writer that does not import pcseg (e.g. the nerf3dovs exporter) produces a readable file."""
    n = 20
    v = np.zeros(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
                           ("label", "i4"), ("uncertainty", "f4")])
    v["x"] = np.arange(n)
    v["label"] = np.arange(n) % 2
    v["uncertainty"] = 0.5
    comments = ["pcseg_prediction 1", "pcseg_class_map teatime", "pcseg_ignore_index -1", "pcseg_scene teatime",
                "pcseg_class 0 255 0 0 red apple", "pcseg_class 1 255 255 0 banana"]
    PlyData([PlyElement.describe(v, "vertex")], comments=comments).write(str(tmp_path / "ovs.ply"))
    pc = read_prediction_ply(tmp_path / "ovs.ply")
    assert pc.class_map.names == ("red apple", "banana") and pc.scene == "teatime"
    np.testing.assert_array_equal(pc.pred, np.arange(n) % 2)
    assert pc.gt is None and pc.uncertainty is not None


def test_overwrite_replaces_file(tmp_path):
    coord, pred, *_ = _arrays()
    path = tmp_path / "p.ply"
    write_prediction_ply(path, coord, pred, SCANNET20)
    write_prediction_ply(path, coord[:10], pred[:10], SCANNET20)
    assert read_prediction_ply(path).num_points == 10


# --------------------------------------------------------------------------- bad files
def _write_plain(path, props=("x", "y", "z", "label"), comments=None, labels=None):
    n = 5
    v = np.zeros(n, dtype=[(p, "i4" if p in ("label", "gt") else "u1" if p.startswith("orig") else "f4") for p in props])
    if labels is not None:
        v["label"] = labels
    comments = comments if comments is not None else ["pcseg_prediction 1", "pcseg_class_map scannet20"] + [
        f"pcseg_class {i} {r} {g} {b} {n}" for i, (n, (r, g, b)) in enumerate(zip(SCANNET20.names, SCANNET20.palette))]
    PlyData([PlyElement.describe(v, "vertex")], comments=comments).write(str(path))
    return path


def _expect(path, fragment):
    with pytest.raises(DataError) as info:
        read_prediction_ply(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and fragment in msg, msg
    assert "\n" not in msg


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.ply", "does not exist")


def test_not_a_ply(tmp_path):
    (tmp_path / "x.ply").write_text("hello\n")
    _expect(tmp_path / "x.ply", "not a readable PLY")


def test_truncated_binary(tmp_path):
    coord, pred, *_ = _arrays()
    path = write_prediction_ply(tmp_path / "p.ply", coord, pred, SCANNET20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    _expect(path, "not a readable PLY")


def test_not_a_pcseg_file(tmp_path):
    _expect(_write_plain(tmp_path / "a.ply", comments=["made by something else"]), "not a pcseg prediction file")


def test_missing_label_property(tmp_path):
    _expect(_write_plain(tmp_path / "a.ply", props=("x", "y", "z")), "missing vertex property label")


def test_label_out_of_range(tmp_path):
    _expect(_write_plain(tmp_path / "a.ply", labels=[0, 1, 20, 3, -1]), "outside the 20 classes")


def test_class_list_with_gap(tmp_path):
    comments = ["pcseg_prediction 1", "pcseg_class_map mine", "pcseg_class 0 1 2 3 a", "pcseg_class 2 1 2 3 b"]
    _expect(_write_plain(tmp_path / "a.ply", comments=comments, labels=[0] * 5), "class ids in the header must be 0..1")


def test_bad_class_line(tmp_path):
    comments = ["pcseg_prediction 1", "pcseg_class_map mine", "pcseg_class 0 300 2 3 a"]
    _expect(_write_plain(tmp_path / "a.ply", comments=comments, labels=[0] * 5), "bad header comment")


def test_names_disagree_with_builtin(tmp_path):
    comments = ["pcseg_prediction 1", "pcseg_class_map scannet20", "pcseg_class 0 1 2 3 wall"]
    _expect(_write_plain(tmp_path / "a.ply", comments=comments, labels=[0] * 5), "disagree with the built-in")


def test_future_version(tmp_path):
    _expect(_write_plain(tmp_path / "a.ply", comments=["pcseg_prediction 2"]), "format version '2'")


def test_partial_original_colour(tmp_path):
    _expect(_write_plain(tmp_path / "a.ply", props=("x", "y", "z", "label", "orig_red"), labels=[0] * 5),
            "original colour needs all of")


# --------------------------------------------------------------------------- writer argument checks
def test_writer_rejects_bad_arrays(tmp_path):
    coord, pred, gt, *_ = _arrays()
    with pytest.raises(ValueError, match="outside"):
        write_prediction_ply(tmp_path / "p.ply", coord, np.full(len(pred), 20), SCANNET20)
    with pytest.raises(ValueError, match="shape"):
        write_prediction_ply(tmp_path / "p.ply", coord, pred[:-1], SCANNET20)
    with pytest.raises(ValueError, match="integer"):
        write_prediction_ply(tmp_path / "p.ply", coord, pred.astype(float), SCANNET20)
    with pytest.raises(ValueError, match="uint8"):
        write_prediction_ply(tmp_path / "p.ply", coord, pred, SCANNET20, color=np.zeros((len(pred), 3)))
    bad = coord.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_prediction_ply(tmp_path / "p.ply", bad, pred, SCANNET20)
    assert not (tmp_path / "p.ply").exists()


def test_writer_snippet_in_docs_produces_a_readable_file(tmp_path):
    """docs/viz.md shows a plyfile-only writer (for nerf3dovs); it must stay in step with the reader."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "viz.md"
    code = re.search(r"### Writing the format without pcseg.*?```python\n(.*?)```", doc.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own documentation
    rng = np.random.default_rng(0)
    xyz, label = rng.random((40, 3)), rng.integers(-1, 3, 40)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    rgb = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    namespace["write_labelled_cloud"](str(tmp_path / "o.ply"), xyz, label, ["red apple", "banana", "mug"], palette,
                                      scene="teatime", rgb=rgb, score=rng.random(40))
    pc = read_prediction_ply(tmp_path / "o.ply")
    assert pc.class_map.names == ("red apple", "banana", "mug") and pc.scene == "teatime"
    np.testing.assert_array_equal(pc.pred, label)
    np.testing.assert_array_equal(pc.color, rgb)
    np.testing.assert_allclose(pc.coord, xyz.astype(np.float32))
    v = PlyData.read(str(tmp_path / "o.ply"))["vertex"].data
    np.testing.assert_array_equal(np.stack([v["red"], v["green"], v["blue"]], 1), make_palette_colours(label, palette))


def make_palette_colours(label, palette):
    out = np.zeros((len(label), 3), np.uint8)
    out[label >= 0] = palette[label[label >= 0]]
    return out
