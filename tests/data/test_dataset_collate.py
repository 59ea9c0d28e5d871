"""SegmentationDataset (contract §3): keys and dtypes, weak-label mask, retain_labels, two views and
their correspondences, keyed reproducibility; collation offsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.data import weak_labels as wl
from pcseg.data.collate import collate
from pcseg.data.dataset import SegmentationDataset
from pcseg.data.scene import open_dataset
from pcseg.utils.errors import ConfigError, DataError

KEYS = {"scene", "grid_coord", "coord", "feat", "segment", "point_index", "inverse"}


def _check_view(v: dict, scene, feat_dim: int) -> None:
    m = len(v["point_index"])
    assert v["grid_coord"].shape == (m, 3) and v["grid_coord"].dtype == np.int32 and v["grid_coord"].min() >= 0
    assert v["coord"].shape == (m, 3) and v["coord"].dtype == np.float32 and v["coord"].min() >= 0
    assert v["feat"].shape == (m, feat_dim) and v["feat"].dtype == np.float32
    assert v["segment"].dtype == np.int64 and v["point_index"].dtype == np.int64
    assert v["inverse"].shape == (scene.num_points,) and v["inverse"].dtype == np.int64
    assert len(np.unique(v["point_index"])) == m
    np.testing.assert_array_equal(v["inverse"][v["point_index"]], np.arange(m))  # representatives map to their own row
    alive = v["inverse"] >= 0
    assert v["inverse"][alive].max() < m


def test_validation_sample_is_plain_voxelisation(small_dataset):
    ds = SegmentationDataset(small_dataset, "val", voxel_size=0.1)
    s = ds[0]
    scene = open_dataset(small_dataset).load(s["scene"])
    assert KEYS | {"point_segment"} == set(s)
    _check_view(s, scene, 3)
    assert (s["inverse"] >= 0).all()  # nothing dropped without augmentation
    np.testing.assert_array_equal(s["segment"], scene.segment[s["point_index"]])
    np.testing.assert_array_equal(s["point_segment"], scene.segment)
    np.testing.assert_allclose(s["feat"], scene.color[s["point_index"]] / 255.0 - 0.5, atol=1e-6)
    # coord = the representative's xyz shifted to a zero minimum; grid = floor(coord / voxel)
    np.testing.assert_allclose(s["coord"], scene.coord[s["point_index"]] - scene.coord.min(axis=0), atol=1e-5)
    assert (np.abs(np.floor(s["coord"] / 0.1) - s["grid_coord"]) <= 1).all()


def test_rgb_xyz_features(small_dataset):
    s = SegmentationDataset(small_dataset, "train", voxel_size=0.1, feature_mode="rgb_xyz", augment="hpal_strong")[0]
    assert s["feat"].shape[1] == 6 and "point_segment" not in s
    assert s["feat"][:, :3].min() >= 0 and s["feat"][:, :3].max() <= 1
    np.testing.assert_allclose(s["feat"][:, 3:], s["coord"])


def test_weak_label_mask_and_retain_labels(small_dataset, tmp_path):
    data = open_dataset(small_dataset)
    labels, meta = wl.make_weak_labels(data, "train", ratio=0.02, seed=0)
    path = tmp_path / "w.pth"
    wl.save(path, labels, meta)
    harsh = {"preset": "cpcm_s3dis", "crop_bound": 1.0, "dropout_p": 1.0}  # always crop (2 m window) and drop 20 %
    lost_without_retain = 0
    for retain in (False, True):
        ds = SegmentationDataset(small_dataset, "train", voxel_size=0.15, augment=harsh, weak_labels=path, retain_labels=retain)
        for epoch in range(3):
            ds.set_epoch(epoch)
            s = ds[0]
            scene = data.load(s["scene"])
            idx = labels[s["scene"]]
            labelled_rows = np.flatnonzero(s["segment"] >= 0)
            # only weak-label points carry a target, and with their true class
            assert np.isin(s["point_index"][labelled_rows], idx).all()
            np.testing.assert_array_equal(s["segment"][labelled_rows], scene.segment[s["point_index"][labelled_rows]])
            if retain:
                # every labelled point survives crop and dropout, and its voxel carries a label
                assert (s["inverse"][idx] >= 0).all()
                assert (s["segment"][s["inverse"][idx]] >= 0).all()
                assert len(labelled_rows) == len(np.unique(s["inverse"][idx]))
            else:
                lost_without_retain += int((s["inverse"][idx] < 0).sum())
    assert lost_without_retain > 0  # the official behaviour does lose labels here


def test_two_views_and_correspondences(small_dataset):
    ds = SegmentationDataset(small_dataset, "train", voxel_size=0.1, augment="cpcm_scannet", num_views=2, seed=4)
    s = ds[1]
    scene = open_dataset(small_dataset).load(s["view1"]["scene"])
    _check_view(s["view1"], scene, 3)
    _check_view(s["view2"], scene, 3)
    corr = s["corr"]
    assert corr.dtype == np.int64 and corr.shape[1] == 2 and len(corr) > 0
    np.testing.assert_array_equal(s["view1"]["point_index"][corr[:, 0]], s["view2"]["point_index"][corr[:, 1]])
    both = np.intersect1d(s["view1"]["point_index"], s["view2"]["point_index"])
    assert len(both) == len(corr)  # the matched set is exactly the common representatives
    assert not np.array_equal(s["view1"]["feat"], s["view2"]["feat"])  # independent augmentation


def test_keyed_randomness_is_order_and_instance_independent(small_dataset):
    a = SegmentationDataset(small_dataset, "train", voxel_size=0.1, augment="cpcm_scannet", num_views=2, seed=9)
    b = SegmentationDataset(small_dataset, "train", voxel_size=0.1, augment="cpcm_scannet", num_views=2, seed=9)
    first = a[1]
    a[0]
    again = a[1]
    other = b[1]
    for x in (again, other):
        for view in ("view1", "view2"):
            for key in ("grid_coord", "feat", "point_index", "inverse"):
                np.testing.assert_array_equal(first[view][key], x[view][key])
    a.set_epoch(1)
    assert not np.array_equal(a[1]["view1"]["feat"], first["view1"]["feat"])


def test_per_view_augmentation_list(small_dataset):
    ds = SegmentationDataset(small_dataset, "train", voxel_size=0.1, augment=["hpal_strong", None], num_views=2)
    s = ds[0]
    assert (s["view2"]["inverse"] >= 0).all() and (s["view1"]["inverse"] >= 0).all()  # whole rooms, both views
    plain = SegmentationDataset(small_dataset, "train", voxel_size=0.1)[0]
    np.testing.assert_array_equal(s["view2"]["point_index"], plain["point_index"])
    with pytest.raises(ConfigError):
        SegmentationDataset(small_dataset, "train", voxel_size=0.1, augment=["none"], num_views=2)


def test_bad_weak_labels_are_reported(small_dataset):
    ds = SegmentationDataset(small_dataset, "train", voxel_size=0.1, weak_labels={"scene0000_00": np.array([10**7])})
    with pytest.raises(DataError, match="scene0000_00: indices outside"):
        ds[0]


# --------------------------------------------------------------------------- collate
def test_collate_offsets_and_global_rows(small_dataset):
    ds = SegmentationDataset(small_dataset, "val", voxel_size=0.1, scenes=["scene0000_00", "scene0001_00", "scene0002_00"])
    samples = [ds[i] for i in range(3)]
    batch = collate(samples)
    counts = [len(s["point_index"]) for s in samples]
    npts = [len(s["inverse"]) for s in samples]
    assert batch["offset"].tolist() == np.cumsum(counts).tolist()
    assert batch["point_offset"].tolist() == np.cumsum(npts).tolist()
    assert batch["coords"].dtype == torch.int32 and batch["coords"].shape == (sum(counts), 4)
    assert batch["coords"][:, 0].tolist() == sum(([b] * c for b, c in enumerate(counts)), [])
    assert batch["scene"] == ["scene0000_00", "scene0001_00", "scene0002_00"]
    # global inverse: point j of scene b -> row offset[b-1] + its local row
    start = 0
    pstart = 0
    for s, c, n in zip(samples, counts, npts):
        np.testing.assert_array_equal(batch["inverse"][pstart:pstart + n].numpy(), s["inverse"] + start)
        np.testing.assert_array_equal(batch["feat"][start:start + c].numpy(), s["feat"])
        start, pstart = start + c, pstart + n
    assert batch["point_segment"].shape == (sum(npts),)


def test_collate_two_views_and_limit(small_dataset):
    ds = SegmentationDataset(small_dataset, "train", voxel_size=0.1, augment="cpcm_scannet", num_views=2,
                             scenes=["scene0000_00", "scene0001_00", "scene0002_00"])
    samples = [ds[i] for i in range(3)]
    batch = collate(samples)
    v1, v2 = batch["view1"], batch["view2"]
    corr = batch["corr"].numpy()
    np.testing.assert_array_equal(v1["point_index"].numpy()[corr[:, 0]], v2["point_index"].numpy()[corr[:, 1]])
    assert batch["corr_offset"].tolist() == np.cumsum([len(s["corr"]) for s in samples]).tolist()
    b_of = lambda rows, off: np.searchsorted(off.numpy(), rows, side="right")  # noqa: E731
    np.testing.assert_array_equal(b_of(corr[:, 0], v1["offset"]), b_of(corr[:, 1], v2["offset"]))  # same scene
    # CPCM cap: stop adding scenes once both views together would exceed the limit; the first always stays
    sizes = [len(s["view1"]["point_index"]) + len(s["view2"]["point_index"]) for s in samples]
    capped = collate(samples, limit_numpoints=sizes[0] + sizes[1] - 1)
    assert capped["view1"]["scene"] == ["scene0000_00"] and capped["dropped"] == ["scene0001_00", "scene0002_00"]
    assert collate(samples, limit_numpoints=sizes[0] + sizes[1])["view1"]["scene"] == ["scene0000_00", "scene0001_00"]
    assert collate(samples, limit_numpoints=1)["view1"]["scene"] == ["scene0000_00"]


def test_flips_and_shift_keep_coordinates_non_negative():
    from pcseg.data.augment import AugmentConfig
    from pcseg.data.views import make_view

    rng = np.random.default_rng(0)
    coord = (rng.random((3000, 3)) * [4, 3, 2] + [-7, 2, 0]).astype(np.float32)
    color = rng.integers(0, 256, (3000, 3)).astype(np.uint8)
    seg = np.zeros(3000, np.int64)
    base = make_view("s", coord, color, seg, 0.1, AugmentConfig(), np.random.default_rng(0))
    flipped_axes = set()
    for k in range(12):
        v = make_view("s", coord, color, seg, 0.1, AugmentConfig(flip_p=1.0, grid_shift=100), np.random.default_rng(k))
        assert v["grid_coord"].min() >= 0 and v["coord"].min() >= 0
        np.testing.assert_array_equal(v["point_index"], base["point_index"])  # flips and shifts move, never drop
        shift = v["grid_coord"].min(axis=0)
        assert (shift >= 0).all() and (shift < 100).all()
        g, g0 = v["grid_coord"] - shift, base["grid_coord"]
        for axis in range(3):
            if np.array_equal(g[:, axis], g0[:, axis]):
                continue
            np.testing.assert_array_equal(g[:, axis], g0[:, axis].max() - g0[:, axis])  # a mirror image
            assert axis < 2
            flipped_axes.add(axis)
        np.testing.assert_allclose(np.sort(np.ptp(v["coord"], axis=0)), np.sort(np.ptp(base["coord"], axis=0)), atol=1e-5)
    assert flipped_axes == {0, 1}


def test_weak_label_file_of_another_dataset_is_refused(small_dataset, tmp_path):
    path = tmp_path / "other.pth"
    wl.save(path, {"Area_1_office_1": np.array([1, 2])}, {})
    with pytest.raises(DataError, match=r"other\.pth: no entry for any scene of split 'train'"):
        SegmentationDataset(small_dataset, "train", voxel_size=0.1, weak_labels=path)
