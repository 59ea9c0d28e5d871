"""Tiny prepared datasets for the active-learning tests (written with the real scene writer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pcseg.data.classes import get_class_map
from pcseg.data.scene import Scene, write_dataset_info, write_scene, write_split


def make_dataset(root: Path, sizes=(300, 200, 120), seed: int = 0, unlabelled_fraction: float = 0.0) -> Path:
    rng = np.random.default_rng(seed)
    cmap = get_class_map("scannet20")
    names = []
    for i, n in enumerate(sizes):
        name = f"scene{i:04d}_00"
        coord = (rng.random((n, 3)) * [3.0, 2.0, 1.0]).astype(np.float32)
        seg = rng.integers(0, cmap.num_classes, n).astype(np.int32)
        seg[rng.random(n) < unlabelled_fraction] = -1
        write_scene(root, Scene(name=name, coord=coord, color=rng.integers(0, 255, (n, 3)).astype(np.uint8),
                                segment=seg, instance=np.full(n, -1, np.int32)))
        names.append(name)
    write_dataset_info(root, "synthetic", cmap)
    write_split(root, "train", names)
    write_split(root, "val", names[:1])
    return root


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "data")
