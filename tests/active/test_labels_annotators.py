"""Label sets, initial labels, the oracle, and the export/import round trip for people."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.active.annotators import (
    ExportAnnotator,
    OracleAnnotator,
    QueryContext,
    build_annotator,
    import_answers,
    write_answers_csv,
)
from pcseg.active.labels import LabelSet, initial_selection
from pcseg.data.classes import get_class_map
from pcseg.data.scene import open_dataset
from pcseg.utils.errors import ConfigError, DataError

CMAP = get_class_map("scannet20")


def test_initial_selection_is_hpal_rounding_and_keyed_by_scene():
    scenes = [("a", 10_000), ("b", 12_500), ("c", 1_000)]
    sel = initial_selection(scenes, seed=0, percent=0.02)
    assert {k: len(v) for k, v in sel.items()} == {"a": 2, "b": 2}  # 2.5 -> 2 (Python round), c: 0.2 -> 0
    again = initial_selection(list(reversed(scenes)), seed=0, percent=0.02)
    assert all(np.array_equal(sel[k], again[k]) for k in sel)  # independent of scene order
    other = initial_selection(scenes, seed=1, percent=0.02)
    assert not np.array_equal(sel["a"], other["a"])
    fixed = initial_selection(scenes, seed=0, points_per_scene=3)
    assert [len(fixed[k]) for k in "abc"] == [3, 3, 3]
    assert all(np.unique(v).size == v.size for v in fixed.values())


def test_label_set_union_save_load_and_refuses_duplicates(tmp_path):
    ls = LabelSet().union({"s1": (np.array([5, 1]), np.array([3, -1])), "s2": (np.array([0]), np.array([7]))})
    assert len(ls) == 3 and ls.indices["s1"].tolist() == [1, 5] and ls.labels["s1"].tolist() == [-1, 3]
    ls2 = ls.union({"s1": (np.array([2]), np.array([4]))})
    assert ls2.indices["s1"].tolist() == [1, 2, 5] and len(ls) == 3  # the original is unchanged
    with pytest.raises(ValueError, match="already labelled"):
        ls2.union({"s1": (np.array([5]), np.array([0]))})
    with pytest.raises(ValueError, match="twice"):
        ls2.union({"s3": (np.array([1, 1]), np.array([0, 0]))})
    ls2.save(tmp_path / "l.npz", {"round": 1})
    back = LabelSet.load(tmp_path / "l.npz")
    assert back.indices.keys() == ls2.indices.keys()
    for s in back.indices:
        np.testing.assert_array_equal(back.indices[s], ls2.indices[s])
        np.testing.assert_array_equal(back.labels[s], ls2.labels[s])
    assert back.mask("s1", 6).tolist() == [False, True, True, False, False, True]
    assert back.class_histogram(20)[[3, 4, 7, 20]].tolist() == [1, 1, 1, 1]
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz"):
        LabelSet.load(tmp_path / "bad.npz")


def test_oracle_answers_are_the_ground_truth(tiny_dataset, tmp_path):
    ds = open_dataset(tiny_dataset)
    query = {"scene0000_00": np.array([7, 3, 100]), "scene0002_00": np.array([0])}
    ans = OracleAnnotator().answer(query, QueryContext(ds, tmp_path, 0))
    for scene, (idx, lab) in ans.items():
        np.testing.assert_array_equal(idx, query[scene])
        np.testing.assert_array_equal(lab, ds.load(scene).segment[query[scene]])


def test_export_then_import_round_trip(tiny_dataset, tmp_path):
    pytest.importorskip("plyfile")
    from pcseg.data.predictions import read_prediction_ply

    ds = open_dataset(tiny_dataset)
    query = {"scene0001_00": np.array([9, 2, 50]), "scene0000_00": np.array([1])}
    round_dir = tmp_path / "round"
    probs = {s: np.random.default_rng(0).dirichlet(np.ones(20), ds.num_points(s)) for s in query}
    ctx = QueryContext(ds, round_dir, 0, resume_hint="pcseg al x resume=true", probs=probs.get)
    ann = build_annotator("export", CMAP)
    assert ann.answer(query, ctx) is None  # nobody has answered yet: the round waits
    qdir = round_dir / "query"
    rows = (qdir / "queries.csv").read_text().splitlines()
    assert rows[0] == "scene,index,x,y,z,predicted,label" and len(rows) == 5
    first = rows[1].split(",")
    assert first[:2] == ["scene0001_00", "9"] and first[-1] == ""
    np.testing.assert_allclose([float(v) for v in first[2:5]], ds.load("scene0001_00").coord[9], atol=1e-4)
    assert first[5] == CMAP.names[int(probs["scene0001_00"][9].argmax())]
    ply = read_prediction_ply(qdir / "scene0001_00.ply")
    assert np.flatnonzero(ply.selected).tolist() == [2, 9, 50]
    assert "pcseg viz" in (qdir / "README.txt").read_text()

    # a person fills in the labels: names, ids and "ignore" are all accepted
    truth = OracleAnnotator().answer(query, ctx)
    lines = [rows[0]]
    for k, row in enumerate(rows[1:]):
        cells = row.split(",")
        lab = int(ds.load(cells[0]).segment[int(cells[1])])
        cells[-1] = CMAP.names[lab].upper() if k % 2 == 0 else str(lab)
        lines.append(",".join(cells))
    (round_dir / "answers.csv").write_text("\n".join(lines) + "\n")
    got = ann.answer(query, ctx)
    for scene in query:
        np.testing.assert_array_equal(got[scene][0], truth[scene][0])
        np.testing.assert_array_equal(got[scene][1], truth[scene][1])
    # the short three-column form written by write_answers_csv reads back the same
    write_answers_csv(tmp_path / "short.csv", truth, CMAP)
    again = import_answers(tmp_path / "short.csv", query, CMAP)
    for scene in query:
        np.testing.assert_array_equal(again[scene][1], truth[scene][1])


OK2 = "scene0001_00,4,ignore\n"


@pytest.mark.parametrize(
    "body,problem",
    [
        ("scene,index\nscene0000_00,1\n", "missing column"),
        ("scene,index,label\nscene0009_00,1,wall\n" + OK2, "was not queried"),
        ("scene,index,label\nscene0000_00,2,wall\n" + OK2, "point 2 of scene scene0000_00 was not queried"),
        ("scene,index,label\nscene0000_00,1,wall\nscene0000_00,1,wall\n" + OK2, "answered twice"),
        ("scene,index,label\nscene0000_00,1,\n" + OK2, "empty label"),
        ("scene,index,label\nscene0000_00,1,spaceship\n" + OK2, "neither a class"),
        ("scene,index,label\nscene0000_00,1,20\n" + OK2, "neither a class"),
        ("scene,index,label\nscene0000_00,x,wall\n" + OK2, "not an integer"),
        ("scene,index,label\nscene0000_00,1,wall\n", "1 queried point(s) have no answer"),
    ],
)
def test_import_reports_the_file_line_and_problem(tmp_path, body, problem):
    query = {"scene0000_00": np.array([1]), "scene0001_00": np.array([4])}
    path = tmp_path / "answers.csv"
    path.write_text(body)
    with pytest.raises(DataError) as err:
        import_answers(path, query, CMAP)
    assert problem in str(err.value) and str(path) in str(err.value)


def test_import_accepts_ignore_words():
    from pcseg.active.annotators import parse_label

    assert [parse_label(v, CMAP) for v in ("-1", "ignore", " Wall ", "19", "otherfurniture")] == [-1, -1, 0, 19, 19]


def test_unknown_annotator():
    with pytest.raises(ConfigError, match="oracle, export"):
        build_annotator("crowd", CMAP)
