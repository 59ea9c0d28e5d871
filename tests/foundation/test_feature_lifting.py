"""2D→3D lifting: projections against hand computation, depth-tested visibility, and label recovery."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcseg.foundation.lifting import (
    Camera,
    LiftView,
    lift_features,
    opengl_to_opencv,
    project_points,
    visible_points,
)
from pcseg.foundation.oracle import OracleEncoder
from pcseg.foundation.pyramid import OVSHierarchyConfig, extract_ovs_hierarchy
from pcseg.foundation.relevancy import cosine_maps

K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])


def test_projection_by_hand():
    cam = Camera(K, np.eye(4), 100, 80)
    uv, z = project_points(np.array([[0.1, -0.2, 2.0]]), cam)
    assert np.allclose(uv, [[55.0, 30.0]]) and np.allclose(z, [2.0])  # u = fx x/z + cx, v = fy y/z + cy
    # a camera at x = -2 looking along +x (its z axis), y down as the world's
    c2w = np.eye(4)
    c2w[:3, :3] = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]
    c2w[:3, 3] = [-2, 0, 0]
    uv, z = project_points(np.array([[0.0, -0.2, -0.1]]), Camera(K, c2w, 100, 80))
    assert np.allclose(uv, [[55.0, 30.0]]) and np.allclose(z, [2.0])


def test_opengl_poses_convert_to_opencv():
    # an OpenGL camera at the origin looks down -z with y up: the point (0.2, 0.1, -2) is right and above
    cam = Camera(K, opengl_to_opencv(np.eye(4)), 100, 80)
    uv, z = project_points(np.array([[0.2, 0.1, -2.0]]), cam)
    assert np.allclose(z, [2.0]) and np.allclose(uv, [[60.0, 35.0]])


def test_camera_accepts_scannet_shapes_and_rejects_invalid_poses():
    k4 = np.eye(4)
    k4[:3, :3] = K
    cam = Camera(k4, np.eye(4)[:3], 100, 80)
    assert cam.K.shape == (3, 3) and cam.cam_to_world.shape == (4, 4)
    bad = np.full((4, 4), -np.inf)
    assert not Camera.pose_is_valid(bad)
    with pytest.raises(ValueError, match="skip this view"):
        Camera(K, bad, 100, 80)


def test_resized_camera_keeps_pixel_centres():
    cam = Camera(K, np.eye(4), 100, 80)
    half = cam.resized(50, 40)
    assert np.allclose(half.K, [[50.0, 0.0, 24.75], [0.0, 50.0, 19.75], [0.0, 0.0, 1.0]])
    point = np.array([[0.3, 0.1, 2.0]])  # projects to (65, 45): pixel 65 covers [64.5, 65.5)
    u, v = project_points(point, cam)[0][0]
    u2, v2 = project_points(point, half)[0][0]
    assert np.isclose(u2, (u + 0.5) / 2 - 0.5) and np.isclose(v2, (v + 0.5) / 2 - 0.5)


def test_visibility_with_and_without_depth():
    cam = Camera(K, np.eye(4), 100, 80)
    pts = np.array(
        [
            [0.0, 0.0, 2.0],  # in view, on the depth surface
            [0.0, 0.0, 3.0],  # same pixel, behind the surface: occluded
            [0.0, 0.0, -2.0],  # behind the camera
            [5.0, 0.0, 2.0],  # outside the image (u = 300)
            [0.02, 0.0, 2.04],  # 4 cm off the surface: within the 5 cm tolerance
        ]
    )
    assert visible_points(pts, cam).tolist() == [True, True, False, False, True]
    depth = np.full((40, 50), 2.0)  # half resolution, registered to the colour camera
    assert visible_points(pts, cam, depth).tolist() == [True, False, False, False, True]
    assert visible_points(pts, cam, depth, abs_tol=0.01).tolist() == [True, False, False, False, False]
    assert visible_points(pts, cam, depth, abs_tol=0.0, rel_tol=0.5).tolist() == [True, True, False, False, True]
    depth[:] = 0.0  # no measurement anywhere: nothing can be confirmed visible
    assert not visible_points(pts, cam, depth).any()


def test_lift_features_by_hand():
    # 4x4-pixel cameras with f = 4, c = 1.5: a point (x, y, 1) projects to (4x + 1.5, 4y + 1.5)
    k = np.array([[4.0, 0, 1.5], [0, 4.0, 1.5], [0, 0, 1]])
    pts = np.array([[0.125, 0.125, 1.0], [-0.375, -0.375, 1.0], [0.375, 0.375, 1.0]])  # pixels (2,2), (0,0), (3,3)
    f1 = np.zeros((2, 4, 4), dtype=np.float32)
    f1[:, 2, 2] = [1.0, 2.0]
    f1[:, 0, 0] = [3.0, 4.0]
    f1[:, 3, 3] = [5.0, 6.0]
    # view 2: camera centre at x = 0.25, so u = 4(x - 0.25) + 1.5: the points land at (u, v) = (1, 2),
    # (-1, 0) (outside) and (2, 3). Its features are on a 2x2 grid (half resolution), where
    # u' = (u + 0.5) / 2 - 0.5: (0.25, 0.75) -> cell (row 1, col 0) and (0.75, 1.25) -> cell (row 1, col 1).
    shift = np.eye(4)
    shift[0, 3] = 0.25
    f2 = np.zeros((2, 2, 2), dtype=np.float32)
    f2[:, 1, 0] = [10.0, 20.0]
    f2[:, 1, 1] = [50.0, 60.0]
    f2[:, 0, 0] = [70.0, 80.0]  # nobody lands here
    views = [LiftView(f1, Camera(k, np.eye(4), 4, 4)), LiftView(torch.from_numpy(f2), Camera(k, shift, 4, 4))]
    uv, _ = project_points(pts, Camera(k, shift, 4, 4).resized(2, 2))
    assert np.allclose(uv[[0, 2]], [[0.25, 0.75], [0.75, 1.25]])
    res = lift_features(pts, views)
    assert res.counts.tolist() == [2, 1, 2]
    assert np.allclose(res.features[0], [(1.0 + 10.0) / 2, (2.0 + 20.0) / 2])
    assert np.allclose(res.features[1], [3.0, 4.0])
    assert np.allclose(res.features[2], [(5.0 + 50.0) / 2, (6.0 + 60.0) / 2])
    never = lift_features(np.array([[0.0, 0.0, -1.0]]), views)
    assert never.counts.tolist() == [0] and np.all(never.features == 0)


# ------------------------------------------------------------------------------ recovery on a scene


def _render(points, colors, cam):
    """Z-buffered point splatting: (H, W, 3) image in [0, 1] and (H, W) z-depth (0 where empty)."""
    uv, z = project_points(points, cam)
    cols, rows = np.floor(uv[:, 0] + 0.5).astype(int), np.floor(uv[:, 1] + 0.5).astype(int)
    ok = (z > 0) & (cols >= 0) & (cols < cam.width) & (rows >= 0) & (rows < cam.height)
    order = np.lexsort((z[ok], rows[ok] * cam.width + cols[ok]))  # by pixel, nearest first
    pix = (rows[ok] * cam.width + cols[ok])[order]
    first = np.concatenate([[True], pix[1:] != pix[:-1]])
    image = np.zeros((cam.height * cam.width, 3))
    depth = np.zeros(cam.height * cam.width)
    image[pix[first]] = colors[ok][order][first]
    depth[pix[first]] = z[ok][order][first]
    return image.reshape(cam.height, cam.width, 3), depth.reshape(cam.height, cam.width)


def test_lifting_oracle_features_recovers_point_labels(palette):
    names = list(palette)
    rgb = np.array([palette[n] for n in names]) / 255.0
    # a wall at z = 3 with three vertical stripes, and a small panel at z = 2 in front of it
    xs, ys = np.meshgrid(np.arange(-1.5, 1.5, 0.02), np.arange(-1.0, 1.0, 0.02))
    wall = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, 3.0)], axis=1)
    wall_label = np.digitize(wall[:, 0], [-0.5, 0.5])  # 0, 1, 2
    px, py = np.meshgrid(np.arange(-0.35, 0.35, 0.01), np.arange(-0.3, 0.3, 0.01))
    panel = np.stack([px.ravel(), py.ravel(), np.full(px.size, 2.0)], axis=1)
    points = np.concatenate([wall, panel])
    labels = np.concatenate([wall_label, np.full(len(panel), 3)])
    shade = 0.75 + 0.25 * np.cos(points[:, 1])[:, None]
    colors = rgb[labels] * shade
    k = np.array([[45.0, 0, 31.5], [0, 45.0, 23.5], [0, 0, 1]])
    encoder = OracleEncoder(palette, embed_dim=24, noise_std=0.1, seed=0, input_size=(16, 16))
    text = encoder.encode_text(names)
    with_depth, without_depth = [], []
    for x in (-0.4, 0.0, 0.4):
        c2w = np.eye(4)
        c2w[0, 3] = x
        cam = Camera(k, c2w, 64, 48)
        image, depth = _render(points, colors, cam)
        feats = extract_ovs_hierarchy(image.astype(np.float32), encoder, OVSHierarchyConfig(seed=1))
        finest = feats[2]  # (D, 48, 64), smallest crops
        with_depth.append(LiftView(finest, cam, depth))
        without_depth.append(LiftView(finest, cam))
    res = lift_features(points, with_depth, abs_tol=0.05)
    seen = res.counts > 0
    pred = cosine_maps(torch.from_numpy(res.features.T[:, :, None]), text)[0, :, :, 0].argmax(dim=0).numpy()
    assert seen.mean() > 0.8
    assert (pred[seen] == labels[seen]).mean() > 0.93  # errors only along stripe borders
    # without the depth test, wall points hidden behind the panel take the panel's features
    hidden = (labels < 3) & (np.abs(points[:, 0]) < 0.2) & (np.abs(points[:, 1]) < 0.2)
    res_free = lift_features(points, without_depth)
    pred_free = cosine_maps(torch.from_numpy(res_free.features.T[:, :, None]), text)[0, :, :, 0].argmax(dim=0).numpy()
    assert (pred_free[hidden] == 3).mean() > 0.8
    assert (res.counts[hidden] == 0).all()  # with depth: never seen (hidden in every view), not mislabelled
