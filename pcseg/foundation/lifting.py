"""Lifting 2D features onto 3D points: project, depth-test, average.

Camera conventions (stated once, used everywhere in pcseg):

* ``K`` is the 3×3 pinhole matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` of an image of
  ``width × height`` pixels. Pixel centres are at integer coordinates (OpenCV): the pixel in row v,
  column u covers ``[u - 0.5, u + 0.5) × [v - 0.5, v + 0.5)``; a projection (u, v) is read from the
  pixel ``(round(v), round(u))``.
* ``cam_to_world`` is the 4×4 rigid transform from camera to world coordinates (its last column is the
  camera centre in the world).
* Camera axes are OpenCV's: x right, y down, z forward; points in front of the camera have z > 0.
  Poses in OpenGL / nerfstudio / Blender axes (x right, y up, z backward) convert with
  ``opengl_to_opencv``.
* ScanNet: ``pose/<frame>.txt`` is a camera-to-world matrix in exactly this convention, in the frame
  of the scan's ``_vh_clean_2.ply`` (pcseg's prepared scenes keep that raw frame; if you axis-align a
  scan with ``axisAlignment`` A, use ``A @ cam_to_world``). Some frames have ``-inf``/NaN poses:
  skip them (``Camera.pose_is_valid``). ``intrinsic/intrinsic_depth.txt`` (top-left 3×3) belongs to
  the 640×480 depth images, ``intrinsic_color.txt`` to the 1296×968 colour images; depth PNGs are
  uint16 millimetres (divide by 1000; 0 = no measurement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import torch

_OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def opengl_to_opencv(cam_to_world: np.ndarray) -> np.ndarray:
    """Convert a camera-to-world pose from OpenGL axes (x right, y up, z back) to OpenCV axes.

    Args:
        cam_to_world: (4, 4) or (3, 4) pose; rows beyond the third are kept.

    Returns:
        Same shape, with the camera's y and z axes flipped.
    """
    c2w = np.asarray(cam_to_world, dtype=np.float64).copy()
    c2w[:3, 1:3] *= -1.0
    return c2w


@dataclass(frozen=True)
class Camera:
    """A posed pinhole camera (OpenCV conventions, module docstring).

    Attributes:
        K: (3, 3) intrinsics for an image of ``width × height`` pixels.
        cam_to_world: (4, 4) camera-to-world transform.
        width, height: image size in pixels.
    """

    K: np.ndarray
    cam_to_world: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64)
        c2w = np.asarray(self.cam_to_world, dtype=np.float64)
        if K.shape == (4, 4):  # ScanNet's intrinsic files are 4×4
            K = K[:3, :3]
        if K.shape != (3, 3):
            raise ValueError(f"K must be 3x3 (or ScanNet's 4x4), got {K.shape}")
        if c2w.shape == (3, 4):
            c2w = np.vstack([c2w, [0.0, 0.0, 0.0, 1.0]])
        if c2w.shape != (4, 4):
            raise ValueError(f"cam_to_world must be 4x4 (or 3x4), got {c2w.shape}")
        if not self.pose_is_valid(c2w):
            raise ValueError("cam_to_world is not finite (ScanNet marks invalid frames with -inf): skip this view")
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "cam_to_world", c2w)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @staticmethod
    def pose_is_valid(cam_to_world: np.ndarray) -> bool:
        """False for ScanNet's invalid frames (non-finite entries)."""
        return bool(np.isfinite(np.asarray(cam_to_world, dtype=np.float64)).all())

    @property
    def world_to_cam(self) -> np.ndarray:
        """(4, 4) inverse of ``cam_to_world`` (rigid inverse)."""
        rot, t = self.cam_to_world[:3, :3], self.cam_to_world[:3, 3]
        out = np.eye(4)
        out[:3, :3] = rot.T
        out[:3, 3] = -rot.T @ t
        return out

    def resized(self, width: int, height: int) -> "Camera":
        """The same camera for an image resampled to ``width × height`` (e.g. a feature grid).

        Keeps the pixel-centre convention: ``u' = (u + 0.5) · width / W - 0.5``, so
        ``fx' = fx · sx`` and ``cx' = (cx + 0.5) · sx - 0.5`` (same for y).
        """
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, 0] *= sx
        K[0, 1] *= sx
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 1] *= sy
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return Camera(K, self.cam_to_world, width, height)


def project_points(points: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into the camera.

    Args:
        points: (N, 3) world coordinates.
        camera: the camera.

    Returns:
        uv: (N, 2) float64 pixel coordinates (u = column, v = row); meaningless where z <= 0.
        z: (N,) float64 depth along the optical axis (camera z).
    """
    pts = np.asarray(points, dtype=np.float64)
    w2c = camera.world_to_cam
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    safe = np.where(np.abs(z) > 1e-12, z, 1e-12)
    pix = (cam / safe[:, None]) @ camera.K.T
    return pix[:, :2], z


def _nearest_pixel(uv: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols = np.floor(uv[:, 0] + 0.5).astype(np.int64)
    rows = np.floor(uv[:, 1] + 0.5).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    return rows, cols, inside


def visible_points(
    points: np.ndarray,
    camera: Camera,
    depth: np.ndarray | None = None,
    depth_camera: Camera | None = None,
    abs_tol: float = 0.05,
    rel_tol: float = 0.0,
    min_depth: float = 1e-3,
) -> np.ndarray:
    """Which points the camera sees.

    A point is visible when z > ``min_depth``, it projects inside the image, and, if ``depth`` is
    given, the depth image has a valid (finite, > 0) value d at its nearest depth pixel with
    ``|z - d| <= abs_tol + rel_tol · d``.

    Args:
        points: (N, 3) world coordinates.
        camera: the camera of the image.
        depth: optional (Hd, Wd) depth in metres along the optical axis (z-depth, not ray length).
        depth_camera: the depth image's camera; default: ``camera.resized(Wd, Hd)`` (registered depth).
        abs_tol, rel_tol: depth agreement tolerance (metres, fraction of d).
        min_depth: nearest accepted z.

    Returns:
        (N,) bool.
    """
    uv, z = project_points(points, camera)
    _, _, inside = _nearest_pixel(uv, camera.width, camera.height)
    mask = inside & (z > min_depth)
    if depth is None:
        return mask
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {depth.shape}")
    dcam = depth_camera or camera.resized(depth.shape[1], depth.shape[0])
    if (dcam.height, dcam.width) != depth.shape:
        raise ValueError(f"depth image is {depth.shape}, its camera says {(dcam.height, dcam.width)}")
    duv, dz = project_points(points, dcam)
    rows, cols, dinside = _nearest_pixel(duv, dcam.width, dcam.height)
    mask &= dinside
    d = np.zeros(len(z))
    d[mask] = depth[rows[mask], cols[mask]]
    valid = np.isfinite(d) & (d > 0)
    return mask & valid & (np.abs(dz - d) <= abs_tol + rel_tol * d)


@dataclass
class LiftView:
    """One posed view to lift from.

    Attributes:
        features: (D, h, w) features of the image (numpy, memory map or tensor); h × w may differ from
            the camera's image size (the camera is rescaled to the feature grid).
        camera: camera of the image the features were computed from.
        depth: optional (Hd, Wd) z-depth in metres for the visibility test (0 / NaN = unknown).
        depth_camera: the depth image's camera if it is not registered to ``camera``.
    """

    features: np.ndarray | torch.Tensor
    camera: Camera
    depth: np.ndarray | None = None
    depth_camera: Camera | None = None


@dataclass
class LiftResult:
    """Per-point mean of the features of the views that see it.

    Attributes:
        features: (N, D) float32; rows of never-seen points are 0.
        counts: (N,) int64 number of views that saw each point.
    """

    features: np.ndarray
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def lift_features(
    points: np.ndarray,
    views: Iterable[LiftView],
    *,
    abs_tol: float = 0.05,
    rel_tol: float = 0.0,
    min_depth: float = 1e-3,
) -> LiftResult:
    """Average 2D features over the views in which each 3D point is visible.

    Args:
        points: (N, 3) world coordinates (same frame as the cameras' poses).
        views: the posed feature maps (an iterable, so views can be loaded one at a time).
        abs_tol, rel_tol, min_depth: visibility test (``visible_points``).

    Returns:
        LiftResult with (N, D) mean features (nearest feature cell per view) and (N,) view counts.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {points.shape}")
    sums: np.ndarray | None = None
    counts = np.zeros(len(points), dtype=np.int64)
    for view in views:
        feats = view.features
        if feats.ndim != 3:
            raise ValueError(f"view features must be (D, h, w), got {tuple(feats.shape)}")
        dim, h, w = feats.shape
        if sums is None:
            sums = np.zeros((len(points), dim), dtype=np.float64)
        elif dim != sums.shape[1]:
            raise ValueError(f"views disagree on the feature size: {dim} vs {sums.shape[1]}")
        seen = visible_points(points, view.camera, view.depth, view.depth_camera, abs_tol, rel_tol, min_depth)
        if not seen.any():
            continue
        grid = view.camera.resized(w, h)
        uv, _ = project_points(points[seen], grid)
        rows, cols, inside = _nearest_pixel(uv, w, h)
        # a point inside the image always lands inside the grid, but rounding at the border may not
        idx = np.nonzero(seen)[0][inside]
        rows, cols = rows[inside], cols[inside]
        if isinstance(feats, torch.Tensor):
            picked = feats[:, torch.as_tensor(rows), torch.as_tensor(cols)].float().cpu().numpy()
        else:
            picked = np.asarray(feats[:, rows, cols], dtype=np.float32)
        sums[idx] += picked.T
        counts[idx] += 1
    if sums is None:
        raise ValueError("lift_features got no views")
    mean = np.zeros_like(sums, dtype=np.float32)
    seen_any = counts > 0
    mean[seen_any] = (sums[seen_any] / counts[seen_any, None]).astype(np.float32)
    return LiftResult(features=mean, counts=counts)
