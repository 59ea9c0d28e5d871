"""``pcseg labels make / import / stats`` on a small prepared dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pcseg.cli.main import main
from pcseg.data import weak_labels as wl
from pcseg.data.classes import get_class_map
from pcseg.data.scene import Scene, open_dataset, write_dataset_info, write_scene, write_split


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    names = []
    for i in range(3):
        n = 3000
        seg = rng.integers(0, 4, n).astype(np.int32)
        name = f"scene{i:04d}_00"
        write_scene(root, Scene(name, rng.random((n, 3)).astype(np.float32), np.zeros((n, 3), np.uint8), seg, None))
        names.append(name)
    write_dataset_info(root, "scannet", get_class_map("scannet20"))
    write_split(root, "train", names[:2])
    write_split(root, "val", names[2:])
    return root


def test_make_ratio_and_points(dataset, tmp_path, capsys):
    out = tmp_path / "l.pth"
    assert main(["labels", "make", "--data", str(dataset), "--ratio", "0.01", "--seed", "2", "--out", str(out)]) == 0
    labels = wl.load(out)
    assert sorted(labels) == ["scene0000_00", "scene0001_00"]  # the train split only
    ds = open_dataset(dataset)
    for name, idx in labels.items():
        seg = ds.load(name).segment
        for c in range(4):
            assert int((seg[idx] == c).sum()) == max(int((seg == c).sum() * 0.01), 1)
    meta = json.loads((tmp_path / "l.pth.json").read_text())
    assert meta["sampler"] == "class_even" and meta["seed"] == 2 and meta["ratio"] == 0.01
    assert "wall" in capsys.readouterr().out
    assert main(["labels", "make", "--data", str(dataset), "--points-per-scene", "20", "--split", "val", "--out", str(out)]) == 0
    assert {k: len(v) for k, v in wl.load(out).items()} == {"scene0002_00": 20}


def test_make_needs_exactly_one_amount(dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["labels", "make", "--data", str(dataset), "--ratio", "0.1", "--points-per-scene", "3", "--out", str(tmp_path / "x")])
    assert main(["labels", "make", "--data", str(dataset), "--ratio", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert "--ratio must be in (0, 1]" in capsys.readouterr().err


def test_import_and_stats(dataset, tmp_path, capsys):
    official = tmp_path / "percentage0.001evenc"
    torch.save({"scene0000_00": np.array([4, 4, 8]), "scene0001_00": np.array([1]), "scene0500_00": np.array([0])}, official)
    out = tmp_path / "imported.pth"
    assert main(["labels", "import", str(official), "--data", str(dataset), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 duplicate index(es) removed" in text and "not in the dataset's splits" in text
    labels = wl.load(out)
    np.testing.assert_array_equal(labels["scene0000_00"], [4, 8])
    assert wl.load_meta(out)["sampler"] == "imported"
    assert main(["labels", "stats", str(out), "--data", str(dataset)]) == 0
    text = capsys.readouterr().out
    assert "3 labelled points in 2 scenes" in text and "provenance: sampler=imported" in text
    torch.save({"scene0000_00": np.array([10**6])}, official)
    assert main(["labels", "import", str(official), "--data", str(dataset), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "outside 0..2999" in err
