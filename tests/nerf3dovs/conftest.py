"""Fixtures of the nerf3dovs tests: one tiny generated scene in the 3D-OVS layout per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def ovs_scene(tmp_path_factory) -> Path:
    """6 views of 64x48 px, masks for views 0 and 3 (rendered with the numpy ray caster)."""
    from nerf3dovs.synthetic import SceneSpec, write_scene

    root = tmp_path_factory.mktemp("ovs") / "table"
    write_scene(root, SceneSpec(num_views=6, width=64, height=48, supersample=1, annotated_every=3))
    return root
