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
