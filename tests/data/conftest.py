"""Fixtures of the data-layer tests: a small generated synthetic dataset and tiny prepared scenes."""

from __future__ import annotations

from pathlib import Path

import pytest

from raw_builders import make_small_dataset


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """``pcseg prepare synthetic`` output with 2 rooms (1 train, 1 val), seed 3 (shared by several tests)."""
    from pcseg.data.synthetic.generate import generate_dataset

    out = tmp_path_factory.mktemp("synthetic")
    report = generate_dataset(out, num_scenes=2, seed=3, workers=1, progress=False)
    assert report.ok, report
    return out


@pytest.fixture
def small_dataset(tmp_path) -> Path:
    return make_small_dataset(tmp_path / "small")
