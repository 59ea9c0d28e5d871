"""Camera framing and point sizing shared by every renderer."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.viz.camera import auto_point_size, fit_camera, point_spacing, view_rotation


@pytest.mark.parametrize("view", ["top", "iso"])
def test_fit_camera_frames_every_point_tightly(view):
    rng = np.random.default_rng(0)
    pts = rng.random((5000, 3)) * [6.0, 3.0, 2.5] + [100.0, -40.0, 1.0]
    cam = fit_camera(pts, view, 640, 480, margin=0.05)
    uv, z = cam.project(pts)
    assert (z > cam.near).all() and (z < cam.far).all()
    lo_u, hi_u = uv[:, 0].min(), uv[:, 0].max()
    lo_v, hi_v = uv[:, 1].min(), uv[:, 1].max()
    # inside the image with the margin (0.05 * size), and touching it on at least one axis
    assert lo_u >= 0.05 * 640 - 1.5 and hi_u <= 0.95 * 640 + 0.5
    assert lo_v >= 0.05 * 480 - 1.5 and hi_v <= 0.95 * 480 + 0.5
    assert min(lo_u - 0.05 * 640, lo_v - 0.05 * 480) < 2.0
    # centred
    assert abs((lo_u + hi_u) / 2 - 319.5) < 1.0 and abs((lo_v + hi_v) / 2 - 239.5) < 1.0


def test_view_rotations_are_proper_and_top_has_y_up():
    for view in ("top", "iso"):
        r = view_rotation(view)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(r), 1.0)
    cam = fit_camera(np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0]], float), "top", 100, 100)
    uv, _ = cam.project(np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0]], float))
    assert uv[1, 1] < uv[0, 1], "+y must point up in the top view"
    assert uv[2, 0] > uv[0, 0], "+x must point right in the top view"
    iso = view_rotation("iso")
    assert iso[2, 2] < 0 and iso[2, 0] > 0 and iso[2, 1] > 0, "iso looks down, from the -x/-y side"
    with pytest.raises(ValueError, match="unknown view"):
        view_rotation("side")


def test_point_spacing_of_a_grid():
    g = np.stack(np.meshgrid(np.arange(200), np.arange(200), indexing="ij"), -1).reshape(-1, 2) * 0.01
    pts = np.concatenate([g, np.zeros((len(g), 1))], 1)
    assert point_spacing(pts) == pytest.approx(0.01, rel=0.15)


def test_auto_point_size_grows_with_sparser_clouds():
    rng = np.random.default_rng(1)
    dense = np.concatenate([rng.random((40000, 2)) * 4, np.zeros((40000, 1))], 1)
    sparse = dense[:2500]
    cam = fit_camera(dense, "top", 640, 480)
    assert 1 <= auto_point_size(dense, cam) < auto_point_size(sparse, cam) <= 12
