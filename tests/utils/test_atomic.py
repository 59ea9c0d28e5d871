import os
from pathlib import Path

import numpy as np
import pytest

from pcseg.utils.atomic import (
    atomic_directory,
    atomic_numpy_save,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    remove_stale_temporaries,
)


def test_write_text_replaces_and_leaves_no_temporaries(tmp_path: Path):
    target = tmp_path / "a" / "file.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]


def test_failed_directory_build_leaves_old_version(tmp_path: Path):
    final = tmp_path / "scene"
    with atomic_directory(final) as tmp:
        (tmp / "x.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(final) as tmp:
            (tmp / "x.txt").write_text("new, half written")
            raise RuntimeError("crash")
    assert (final / "x.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]


def test_directory_replace(tmp_path: Path):
    final = tmp_path / "d"
    for text in ("1", "2"):
        with atomic_directory(final) as tmp:
            (tmp / "v").write_text(text)
    assert (final / "v").read_text() == "2"


def test_numpy_torch_json_round_trip(tmp_path: Path):
    import torch

    arr = np.arange(6, dtype=np.int64).reshape(2, 3)
    atomic_numpy_save(tmp_path / "a.npy", arr)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), arr)
    atomic_torch_save({"w": torch.ones(2)}, tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt")["w"].sum() == 2
    atomic_write_json(tmp_path / "j.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "j.json").read_text().startswith("{\n  \"a\"")


def test_remove_stale_temporaries(tmp_path: Path):
    (tmp_path / ".x.123.tmp").write_text("partial")
    os.mkdir(tmp_path / ".scene.456.tmp")
    (tmp_path / "keep.txt").write_text("k")
    assert remove_stale_temporaries(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
