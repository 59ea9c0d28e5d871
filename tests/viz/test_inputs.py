"""What `pcseg viz` loads: scenes, prediction files, weak-label files, uncertainty; clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.data.classes import S3DIS13, SCANNET20
from pcseg.data.predictions import write_prediction_ply
from pcseg.utils.errors import ConfigError, DataError
from pcseg.viz.inputs import load_labelled_mask, load_viz_data


def test_scene_folder_and_data_scene_agree(room_dataset, room_scene):
    a = load_viz_data(room_dataset / "scenes" / room_scene.name)
    b = load_viz_data(data_root=room_dataset, scene_name=room_scene.name)
    for d in (a, b):
        assert d.name == room_scene.name and d.class_map.name == "scannet20"
        np.testing.assert_array_equal(d.gt, room_scene.segment)
        np.testing.assert_array_equal(d.rgb, room_scene.color)
        assert d.pred is None and d.selected is None


def test_scene_with_prediction_labels_and_uncertainty(tmp_path, room_dataset, room_scene, room_prediction):
    import torch

    pred, unc = room_prediction
    ply = write_prediction_ply(tmp_path / "p.ply", room_scene.coord, pred, SCANNET20, uncertainty=unc)
    idx = np.array([5, 17, 123], np.int64)
    torch.save({room_scene.name: idx, "other": np.array([1])}, tmp_path / "labels.pth")
    np.save(tmp_path / "u.npy", np.linspace(0, 1, room_scene.num_points))
    d = load_viz_data(data_root=room_dataset, scene_name=room_scene.name, pred_path=ply,
                      labels_path=tmp_path / "labels.pth")
    np.testing.assert_array_equal(d.pred, pred)
    np.testing.assert_array_equal(d.uncertainty, unc)
    np.testing.assert_array_equal(np.flatnonzero(d.selected), idx)
    d = load_viz_data(room_dataset / "scenes" / room_scene.name, pred_path=ply, uncertainty_path=tmp_path / "u.npy")
    assert d.uncertainty[-1] == 1.0, "--uncertainty overrides the prediction file's field"


def test_prediction_file_alone(tmp_path, room_scene, room_prediction):
    pred, _ = room_prediction
    ply = write_prediction_ply(tmp_path / "p.ply", room_scene.coord, pred, SCANNET20, gt=room_scene.segment,
                               color=room_scene.color, scene="room0")
    d = load_viz_data(ply)
    assert d.name == "room0" and d.class_map.name == "scannet20"
    np.testing.assert_array_equal(d.gt, room_scene.segment)
    np.testing.assert_array_equal(d.rgb, room_scene.color)


def test_prediction_for_another_scene_is_refused(tmp_path, room_dataset, room_scene, room_prediction):
    pred, _ = room_prediction
    short = write_prediction_ply(tmp_path / "a.ply", room_scene.coord[:-1], pred[:-1], SCANNET20)
    with pytest.raises(DataError, match="points but scene 'room0' has"):
        load_viz_data(room_dataset / "scenes" / "room0", pred_path=short)
    moved = write_prediction_ply(tmp_path / "b.ply", room_scene.coord[::-1], pred, SCANNET20)
    with pytest.raises(DataError, match="coordinates differ"):
        load_viz_data(room_dataset / "scenes" / "room0", pred_path=moved)
    other = write_prediction_ply(tmp_path / "c.ply", room_scene.coord, np.zeros(len(pred), int), S3DIS13)
    with pytest.raises(DataError, match="differ from the scene's"):
        load_viz_data(room_dataset / "scenes" / "room0", pred_path=other)


def test_bad_invocations(tmp_path, room_dataset):
    with pytest.raises(ConfigError, match="nothing to show"):
        load_viz_data()
    with pytest.raises(ConfigError, match="--data needs --scene"):
        load_viz_data(data_root=room_dataset)
    with pytest.raises(DataError, match="did you mean room0"):
        load_viz_data(data_root=room_dataset, scene_name="room1")
    with pytest.raises(DataError, match="does not exist"):
        load_viz_data(tmp_path / "missing")
    with pytest.raises(ConfigError, match="--class-map"):
        load_viz_data(room_dataset / "scenes" / "room0", class_map_name="nyu41")


def test_scene_outside_a_dataset_needs_a_class_map(tmp_path, room_scene):
    from pcseg.data.scene import write_scene

    folder = write_scene(tmp_path / "loose", room_scene)
    with pytest.raises(ConfigError, match="--class-map"):
        load_viz_data(folder)
    assert load_viz_data(folder, class_map_name="scannet20").class_map is SCANNET20


def test_weak_label_files(tmp_path):
    import torch

    torch.save({"a": torch.tensor([0, 3]), "Area_1/office_2.pth": np.array([1, 2], np.int32)}, tmp_path / "ok.pth")
    assert np.flatnonzero(load_labelled_mask(tmp_path / "ok.pth", "a", 5)).tolist() == [0, 3]
    # keys of the official CPCM files map to our scene names
    assert np.flatnonzero(load_labelled_mask(tmp_path / "ok.pth", "Area_1_office_2", 5)).tolist() == [1, 2]
    with pytest.raises(DataError, match="outside 0..2"):
        load_labelled_mask(tmp_path / "ok.pth", "a", 3)
    with pytest.raises(DataError, match="no entry for scene 'c'"):
        load_labelled_mask(tmp_path / "ok.pth", "c", 10)
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(DataError, match="expected a dict"):
        load_labelled_mask(tmp_path / "list.pth", "a", 5)
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="junk.pth"):
        load_labelled_mask(tmp_path / "junk.pth", "a", 5)


def test_uncertainty_file_errors(tmp_path, room_dataset):
    np.save(tmp_path / "u.npy", np.zeros(7))
    with pytest.raises(DataError, match=r"expected one score per point"):
        load_viz_data(room_dataset / "scenes" / "room0", uncertainty_path=tmp_path / "u.npy")
