"""Shared test setup: offline hubs, single-threaded determinism knobs, fixture paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Never touch the network from tests (a failed hub lookup retries for ~47 s).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("PCSEG_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """../shared/fixtures (small real ScanNet/S3DIS samples); skipped where the checkout lacks it."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real-data fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A generated synthetic dataset of 3 rooms (2 train, 1 val), prepared in both layouts.

    Returns the output folder: ``<out>/scannet`` and ``<out>/s3dis`` are prepared datasets.
    """
    from pcseg.data.synthetic.generate import generate_dataset

    out = tmp_path_factory.mktemp("tiny_synthetic")
    report = generate_dataset(out, num_scenes=3, num_val=1, seed=11, workers=1, progress=False)
    assert report.ok, report
    return out
