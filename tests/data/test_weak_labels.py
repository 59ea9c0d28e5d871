"""Weak labels: sampler properties, file round trips, official-file import, statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from raw_builders import make_small_dataset

from pcseg.data import weak_labels as wl
from pcseg.data.scene import open_dataset
from pcseg.utils.errors import DataError
from pcseg.utils.rng import numpy_rng


def _segment(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    seg = np.repeat(np.arange(6), [5000, 2000, 700, 90, 3, 1])  # from common to singleton classes
    seg = np.concatenate([seg, np.full(400, -1)])
    return seg[rng.permutation(len(seg))]


@pytest.mark.parametrize("ratio", [0.001, 0.01, 0.2])
def test_class_even_exact_counts_and_coverage(ratio):
    seg = _segment()
    idx = wl.sample_class_even(seg, ratio, np.random.default_rng(0))
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)  # sorted, no duplicates
    assert (seg[idx] >= 0).all()  # never an unlabelled point
    for c in range(6):
        n_c = int((seg == c).sum())
        assert int((seg[idx] == c).sum()) == max(int(np.floor(n_c * ratio)), 1)
    assert len(idx) == sum(max(int(np.floor((seg == c).sum() * ratio)), 1) for c in range(6))


def test_class_even_is_uniform_within_a_class():
    # CPCM's bug picks positions in [0, n_c) of the whole array; ours must spread over the class's points.
    seg = np.concatenate([np.zeros(1000, int), np.ones(1000, int)])
    picks = np.concatenate([wl.sample_class_even(seg, 0.05, np.random.default_rng(s)) for s in range(40)])
    ones = picks[seg[picks] == 1]
    assert ones.min() >= 1000 and 1400 < ones.mean() < 1600


def test_sampling_is_deterministic_per_seed():
    seg = _segment()
    a = wl.sample_class_even(seg, 0.01, np.random.default_rng(5))
    b = wl.sample_class_even(seg, 0.01, np.random.default_rng(5))
    c = wl.sample_class_even(seg, 0.01, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_uniform_sampler():
    seg = _segment()
    idx = wl.sample_uniform(seg, 20, np.random.default_rng(0))
    assert len(idx) == 20 == len(np.unique(idx)) and (seg[idx] >= 0).all()
    assert len(wl.sample_uniform(np.array([-1, 2, 3]), 20, np.random.default_rng(0))) == 2


def test_make_save_load_and_stats(small_dataset, tmp_path):
    ds = open_dataset(small_dataset)
    labels, meta = wl.make_weak_labels(ds, "train", ratio=0.01, seed=3)
    again, _ = wl.make_weak_labels(ds, "train", ratio=0.01, seed=3)
    assert labels.keys() == again.keys() == set(ds.split("train"))
    assert all(np.array_equal(labels[k], again[k]) for k in labels)
    # keyed by (seed, scene): a scene's labels do not depend on which other scenes are sampled
    solo = wl.sample_class_even(ds.load("scene0001_00").segment, 0.01, numpy_rng(3, "scene0001_00"))
    np.testing.assert_array_equal(solo, labels["scene0001_00"])
    path = tmp_path / "lab.pth"
    wl.save(path, labels, meta)
    loaded = wl.load(path)
    assert all(np.array_equal(loaded[k], labels[k]) and loaded[k].dtype == np.int64 for k in labels)
    assert wl.load_meta(path)["sampler"] == "class_even" and wl.load_meta(path)["ratio"] == 0.01
    stats = wl.label_stats(loaded, ds)
    seg = np.concatenate([ds.load(k).segment[v] for k, v in labels.items()])
    assert stats["per_class"] == np.bincount(seg, minlength=20).tolist()
    assert stats["total"] == len(seg) and stats["duplicates"] == 0 and stats["ignore_points"] == 0
    assert "wall" in wl.format_stats(stats)


def test_import_official_files(small_dataset, tmp_path):
    ds = open_dataset(small_dataset)
    n0 = ds.num_points("scene0000_00")
    # CPCM percentage style: new-style zip, numpy values, duplicates, and a scene we do not have
    cpcm = {"scene0000_00": np.array([5, 9, 5, n0 - 1]), "scene0001_00": np.array([0, 1]), "scene0999_00": np.array([1])}
    torch.save(cpcm, tmp_path / "percentage0.001evenc")
    res = wl.import_official(tmp_path / "percentage0.001evenc", ds)
    np.testing.assert_array_equal(res.labels["scene0000_00"], [5, 9, n0 - 1])
    assert res.duplicates_removed == 1 and res.unknown_scenes == ["scene0999_00"] and res.key_style == "scannet"
    # Pointcept / ScanNet LA style: old-style torch.save of tensors
    torch.save({"scene0001_00": torch.tensor([3, 4, 7])}, tmp_path / "points20", _use_new_zipfile_serialization=False)
    res = wl.import_official(tmp_path / "points20", ds)
    np.testing.assert_array_equal(res.labels["scene0001_00"], [3, 4, 7])
    # out-of-range index names the scene
    torch.save({"scene0000_00": np.array([0, n0])}, tmp_path / "bad")
    with pytest.raises(DataError, match=rf"bad: scene scene0000_00: 1 index\(es\) outside 0..{n0 - 1}"):
        wl.import_official(tmp_path / "bad", ds)
    (tmp_path / "junk").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a readable index file"):
        wl.import_official(tmp_path / "junk", ds)


def test_import_maps_cpcm_s3dis_keys_and_warns(tmp_path):
    root = make_small_dataset(tmp_path / "s", num_scenes=2)
    # rename the scenes to S3DIS names
    for old, new in (("scene0000_00", "Area_1_office_2"), ("scene0001_00", "Area_5_hallway_6")):
        (root / "scenes" / old).rename(root / "scenes" / new)
        meta = json.loads((root / "scenes" / new / "meta.json").read_text())
        meta["scene"] = new
        (root / "scenes" / new / "meta.json").write_text(json.dumps(meta))
    (root / "splits" / "train.txt").write_text("Area_1_office_2\n")
    (root / "splits" / "val.txt").write_text("Area_5_hallway_6\n")
    torch.save({"Area_1/office_2.pth": np.array([1, 2]), "Area_5/hallway_6.pth": np.array([3])}, tmp_path / "s3dis_pct")
    res = wl.import_official(tmp_path / "s3dis_pct", open_dataset(root))
    assert sorted(res.labels) == ["Area_1_office_2", "Area_5_hallway_6"] and res.key_style == "cpcm-s3dis"
    assert any("1 cm-quantised point order" in w for w in res.warnings)


def test_normalise_key():
    assert wl.normalise_key("Area_3/conferenceRoom_1.pth") == ("Area_3_conferenceRoom_1", "cpcm-s3dis")
    assert wl.normalise_key("scene0011_01") == ("scene0011_01", "scannet")
    assert wl.normalise_key("scene0011_01.pth") == ("scene0011_01", "scannet")
