"""A pinhole camera that frames a point cloud, shared by every renderer (Open3D window, Open3D
offscreen, numpy fallback) so they all show the same picture.

Conventions are Open3D's / OpenCV's: the extrinsic maps world to camera coordinates, the camera looks
along +z, x points right and y points down in the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VIEWS = ("top", "iso")
# iso: seen from azimuth 225 deg (the -x -y side), 40 deg above the horizon.
_ISO_AZIMUTH, _ISO_ELEVATION = np.deg2rad(225.0), np.deg2rad(40.0)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera.

    Attributes:
        width, height: image size in pixels.
        intrinsic: (3, 3) float64 ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
        extrinsic: (4, 4) float64 world -> camera transform.
        near, far: depth range (metres) that holds the whole cloud.
    """

    width: int
    height: int
    intrinsic: np.ndarray
    extrinsic: np.ndarray
    near: float
    far: float

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) (x right, y down; pixel centres at integers)
        and depth (N,) along the viewing axis."""
        cam = points @ self.extrinsic[:3, :3].T + self.extrinsic[:3, 3]
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.intrinsic[0, 0] * cam[:, 0] / z + self.intrinsic[0, 2]
            v = self.intrinsic[1, 1] * cam[:, 1] / z + self.intrinsic[1, 2]
        return np.stack([u, v], axis=1), z

    def pixels_per_metre(self, depth: float) -> float:
        return float(self.intrinsic[0, 0] / depth)


def view_rotation(view: str) -> np.ndarray:
    """(3, 3) rotation whose rows are the camera's x (right), y (down) and z (forward) axes in world frame."""
    if view == "top":
        forward, up = np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0])
    elif view == "iso":
        eye_dir = np.array([np.cos(_ISO_ELEVATION) * np.cos(_ISO_AZIMUTH),
                            np.cos(_ISO_ELEVATION) * np.sin(_ISO_AZIMUTH), np.sin(_ISO_ELEVATION)])
        forward, up = -eye_dir, np.array([0.0, 0.0, 1.0])
    else:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def fit_camera(points: np.ndarray, view: str = "iso", width: int = 1024, height: int = 768,
               fov_deg: float = 40.0, margin: float = 0.04) -> Camera:
    """The camera looking at ``points`` from ``view`` that fits them all in the image.

    The camera sits on the line through the bounding-box centre along the view direction, at the
    smallest distance for which every point projects inside the image shrunk by ``margin`` on each side.

    Args:
        points: (N, 3) coordinates (a subsample is enough).
        view: ``top`` (looking down, +y up in the image) or ``iso`` (oblique, from above).
        fov_deg: vertical field of view.
    """
    points = np.asarray(points, dtype=np.float64)
    rot = view_rotation(view)
    fy = 0.5 * height / np.tan(np.deg2rad(fov_deg) / 2)
    fx = fy
    tan_x = (0.5 * width / fx) * (1 - 2 * margin)
    tan_y = (0.5 * height / fy) * (1 - 2 * margin)
    centre = 0.5 * (points.min(0) + points.max(0))
    for _ in range(4):
        # The camera looks at `centre` from distance d; a few rounds move `centre` sideways so the
        # projected cloud sits in the middle of the image (perspective makes the bbox centre off-centre).
        q = (points - centre) @ rot.T  # camera-aligned offsets (a right, b down, e forward)
        d = _fit_distance(q, tan_x, tan_y)
        depth = q[:, 2] + d
        u, v = q[:, 0] / depth, q[:, 1] / depth  # normalised image coordinates
        shift_u, shift_v = 0.5 * (u.min() + u.max()), 0.5 * (v.min() + v.max())
        if max(abs(shift_u) * fx, abs(shift_v) * fy) < 0.5:  # under half a pixel
            break
        centre = centre + d * (shift_u * rot[0] + shift_v * rot[1])
    q = (points - centre) @ rot.T
    d = _fit_distance(q, tan_x, tan_y)
    depth = q[:, 2] + d
    eye = centre - d * rot[2]
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = rot
    extrinsic[:3, 3] = -rot @ eye
    intrinsic = np.array([[fx, 0.0, width / 2 - 0.5], [0.0, fy, height / 2 - 0.5], [0.0, 0.0, 1.0]])
    near = max(float(depth.min()) * 0.5, 1e-3)
    far = float(depth.max()) * 2.0 + 1e-3
    return Camera(width=width, height=height, intrinsic=intrinsic, extrinsic=extrinsic, near=near, far=far)


def _fit_distance(q: np.ndarray, tan_x: float, tan_y: float) -> float:
    """Smallest distance d such that every offset (a, b, e) has |a| <= tan_x (e + d), |b| <= tan_y (e + d)."""
    extent = float(np.abs(q).max()) or 1.0
    return float(max((np.abs(q[:, 0]) / tan_x - q[:, 2]).max(), (np.abs(q[:, 1]) / tan_y - q[:, 2]).max(),
                     (-q[:, 2]).max() + 0.05 * extent))


def typical_depth(points: np.ndarray, camera: Camera) -> float:
    """Median depth of ``points`` (N, 3) in front of ``camera``."""
    _, z = camera.project(np.asarray(points, dtype=np.float64))
    z = z[z > 0]
    return float(np.median(z)) if len(z) else 1.0


def point_spacing(points: np.ndarray, num_queries: int = 20000, max_tree_points: int = 1_000_000) -> float:
    """Typical distance between neighbouring points of a scanned surface (metres).

    The median, over an evenly strided set of query points, of the mean distance to their 4 nearest
    neighbours: equal to the step for a regular grid and about 0.8 / sqrt(density) for random
    samples, so the same point size suits both. Clouds above ``max_tree_points`` are thinned first
    and the result scaled back (on a surface the spacing goes with the square root of the count).
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if n < 5:
        return 0.0
    thin = max(1, -(-n // max_tree_points))
    cloud = points[::thin]
    queries = cloud[:: max(1, len(cloud) // num_queries)]
    dist, _ = cKDTree(cloud).query(queries, k=5)
    mean4 = dist[:, 1:].mean(1)
    mean4 = mean4[mean4 > 0]
    if not len(mean4):
        return 0.0
    return float(np.median(mean4) * np.sqrt(len(cloud) / n))


def auto_point_size(points: np.ndarray, camera: Camera, max_size: float = 12.0) -> float:
    """Point size in pixels that closes most gaps between neighbouring points at the typical depth."""
    spacing = point_spacing(points)
    px = 1.8 * spacing * camera.pixels_per_metre(typical_depth(points, camera))
    return float(np.clip(np.ceil(px), 1.0, max_size))
