"""Headless rendering of a coloured point cloud to an image.

Backends, tried in this order by ``backend="auto"``:

1. ``open3d`` — Open3D's legacy ``Visualizer(visible=False)`` + frame capture, in this process. With no
   display it renders through Mesa EGL; lighting off, so every point shows its exact colour. If it
   cannot get a GL context, ``create_window`` returns False and we move on (no crash).
2. ``open3d-offscreen`` — Open3D's Filament ``OffscreenRenderer`` (Vulkan/lavapipe or EGL) with the
   unlit shader and post-processing off. It runs in a **child process**: when Filament finds no
   usable driver it aborts the whole process, and once it has started in a process the legacy
   Visualizer there can no longer create a window. Points get slightly blended edges.
3. ``numpy`` — a z-buffered splatting renderer written here (square points, disc highlights). Same
   camera and colours, no GPU or GL needed; used only as a fallback, with a warning.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pcseg.utils.atomic import atomic_write_bytes
from pcseg.utils.errors import MissingDependencyError, PcsegError
from pcseg.viz.camera import Camera

BACKENDS = ("auto", "open3d", "open3d-offscreen", "numpy")
OFFSCREEN_TIMEOUT_S = 300
_LEGACY_MAX_POINT_SIZE = 25.0  # the legacy Visualizer clamps point_size to [1, 25]


class RenderError(PcsegError):
    """A rendering backend could not produce an image."""


@dataclass
class RenderScene:
    """What to draw.

    Attributes:
        points: (N, 3) float coordinates.
        colors: (N, 3) uint8 RGB per point.
        point_size: point side in pixels.
        highlight_points: (K, 3) points drawn as spheres on top (labelled / selected), or None.
        highlight_colors: (K, 3) uint8 colours of those spheres.
        highlight_radius: sphere radius in metres.
        background: RGB background colour.
    """

    points: np.ndarray
    colors: np.ndarray
    point_size: float = 3.0
    highlight_points: np.ndarray | None = None
    highlight_colors: np.ndarray | None = None
    highlight_radius: float = 0.02
    background: tuple[int, int, int] = (255, 255, 255)

    @property
    def has_highlights(self) -> bool:
        return self.highlight_points is not None and len(self.highlight_points) > 0


# --------------------------------------------------------------------------- entry points
def render_image(scene: RenderScene, camera: Camera, backend: str = "auto") -> tuple[np.ndarray, str]:
    """Render ``scene`` as seen by ``camera``.

    Args:
        backend: one of ``BACKENDS``. ``auto`` tries ``open3d``, then ``open3d-offscreen``, then falls
            back to ``numpy`` with a warning; a named backend raises ``RenderError`` if it fails.

    Returns:
        (H, W, 3) uint8 image and the name of the backend that drew it.
    """
    if backend not in BACKENDS:
        raise RenderError(f"unknown render backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "numpy":
        return render_numpy(scene, camera), "numpy"
    if backend == "open3d":
        return render_open3d_legacy(scene, camera), "open3d"
    if backend == "open3d-offscreen":
        return render_open3d_offscreen(scene, camera), "open3d-offscreen"
    failures = []
    for name, fn in (("open3d", render_open3d_legacy), ("open3d-offscreen", render_open3d_offscreen)):
        try:
            return fn(scene, camera), name
        except Exception as exc:  # noqa: BLE001 - any failure of one backend means: try the next one
            failures.append(f"{name}: {exc}")
    message = ("Open3D could not render headless, using pcseg's numpy point splatting instead (square points, "
               "no anti-aliasing). Reasons: " + " | ".join(failures))
    warnings.warn(message, RuntimeWarning, stacklevel=2)
    return render_numpy(scene, camera), "numpy"


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image as PNG, atomically."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="RGB").save(buf, format="PNG", optimize=True)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


# --------------------------------------------------------------------------- Open3D helpers
def import_open3d():
    try:
        import open3d as o3d
    except ImportError as exc:  # includes missing system libraries (libusb, libGL)
        raise MissingDependencyError("open3d", "the 3D viewer and Open3D rendering",
                                     f"Install it with `pip install open3d` ({exc}).") from None
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d


def sphere_template(resolution: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere as (V, 3) vertices and (T, 3) triangles (a UV sphere, built in numpy)."""
    rings, segments = resolution, 2 * resolution
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    body = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 0, 1]], body, [[0, 0, -1]]])
    tris = []
    ring = lambda r, s: 1 + r * segments + (s % segments)  # noqa: E731
    for s in range(segments):
        tris.append((0, ring(0, s), ring(0, s + 1)))
        tris.append((len(verts) - 1, ring(rings - 2, s + 1), ring(rings - 2, s)))
        for r in range(rings - 2):
            a, b, c, d = ring(r, s), ring(r, s + 1), ring(r + 1, s), ring(r + 1, s + 1)
            tris += [(a, c, b), (b, c, d)]
    return verts.astype(np.float64), np.asarray(tris, dtype=np.int32)


def highlight_mesh_arrays(scene: RenderScene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One triangle mesh holding a sphere per highlighted point: vertices, triangles, vertex colours (0..1)."""
    verts, tris = sphere_template()
    centres = np.asarray(scene.highlight_points, dtype=np.float64)
    k, v = len(centres), len(verts)
    all_verts = (centres[:, None, :] + scene.highlight_radius * verts[None]).reshape(-1, 3)
    all_tris = (tris[None] + (np.arange(k, dtype=np.int32) * v)[:, None, None]).reshape(-1, 3)
    colors = np.repeat(np.asarray(scene.highlight_colors, dtype=np.float64) / 255.0, v, axis=0)
    return all_verts, all_tris, colors


def open3d_geometries(o3d, scene: RenderScene) -> list:
    """The Open3D point cloud (+ highlight sphere mesh) of ``scene``."""
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(scene.points, dtype=np.float64)))
    pcd.colors = o3d.utility.Vector3dVector(np.asarray(scene.colors, dtype=np.float64) / 255.0)
    geoms = [pcd]
    if scene.has_highlights:
        verts, tris, colors = highlight_mesh_arrays(scene)
        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts), o3d.utility.Vector3iVector(tris))
        mesh.vertex_colors = o3d.utility.Vector3dVector(colors)
        geoms.append(mesh)
    return geoms


def pinhole_parameters(o3d, camera: Camera):
    params = o3d.camera.PinholeCameraParameters()
    k = camera.intrinsic
    params.intrinsic = o3d.camera.PinholeCameraIntrinsic(camera.width, camera.height, k[0, 0], k[1, 1], k[0, 2], k[1, 2])
    params.extrinsic = camera.extrinsic
    return params


def apply_camera(o3d, vis, camera: Camera) -> None:
    """Point a legacy Visualizer's view at ``camera`` (exact intrinsics and pose)."""
    ctr = vis.get_view_control()
    if not ctr.convert_from_pinhole_camera_parameters(pinhole_parameters(o3d, camera), allow_arbitrary=True):
        raise RenderError("Open3D refused the camera parameters")
    ctr.set_constant_z_near(camera.near)
    ctr.set_constant_z_far(camera.far)


def style_render_option(vis, point_size: float, background: tuple[int, int, int]) -> None:
    opt = vis.get_render_option()
    opt.background_color = np.asarray(background, dtype=np.float64) / 255.0
    opt.point_size = float(np.clip(point_size, 1.0, _LEGACY_MAX_POINT_SIZE))
    opt.light_on = False  # unlit: the image holds the exact point colours
    opt.mesh_show_back_face = True


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture what C libraries write to file descriptor 2 (GL/GLFW/Mesa chatter) while the block runs.

    Yields a list that holds the captured lines after the block, to quote them in an error message.
    """
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def _last_lines(lines: list[str], n: int = 3) -> str:
    text = " / ".join(line.strip() for line in lines[-n:] if line.strip())
    return f" (driver said: {text})" if text else ""


def render_open3d_legacy(scene: RenderScene, camera: Camera) -> np.ndarray:
    """Render with Open3D's legacy Visualizer on a hidden window (EGL when there is no display)."""
    o3d = import_open3d()
    vis = o3d.visualization.Visualizer()
    with captured_stderr() as chatter:
        created = vis.create_window(window_name="pcseg", width=camera.width, height=camera.height, visible=False)
    if not created:
        raise RenderError("Open3D's Visualizer could not create a hidden window (no display and no EGL)"
                          + _last_lines(chatter))
    try:
        with captured_stderr():
            for geom in open3d_geometries(o3d, scene):
                vis.add_geometry(geom)
            style_render_option(vis, scene.point_size, scene.background)
            apply_camera(o3d, vis, camera)
            vis.poll_events()
            vis.update_renderer()
            buf = np.asarray(vis.capture_screen_float_buffer(do_render=True))
    finally:
        vis.destroy_window()
    if buf.shape[:2] != (camera.height, camera.width):
        raise RenderError(f"Open3D returned a {buf.shape[1]}x{buf.shape[0]} frame instead of "
                          f"{camera.width}x{camera.height}")
    return np.rint(np.clip(buf, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_open3d_offscreen(scene: RenderScene, camera: Camera) -> np.ndarray:
    """Render with Open3D's Filament OffscreenRenderer in a child process (see the module docstring)."""
    import_open3d()  # fail early and clearly if open3d is missing
    with tempfile.TemporaryDirectory(prefix="pcseg-render-") as tmp:
        request, result = Path(tmp) / "scene.npz", Path(tmp) / "image.npy"
        save_request(request, scene, camera)
        env = dict(os.environ)
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.run([sys.executable, "-m", "pcseg.viz.offscreen_worker", str(request), str(result)],
                                  capture_output=True, text=True, env=env, timeout=OFFSCREEN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RenderError(f"Open3D OffscreenRenderer did not finish within {OFFSCREEN_TIMEOUT_S} s") from None
        if proc.returncode != 0 or not result.is_file():
            how = f"exit status {proc.returncode}" if proc.returncode >= 0 else f"killed by signal {-proc.returncode}"
            raise RenderError(f"Open3D OffscreenRenderer failed ({how})" + _last_lines(proc.stderr.splitlines()))
        image = np.load(result)
    if image.shape != (camera.height, camera.width, 3):
        raise RenderError(f"Open3D OffscreenRenderer returned an image of shape {image.shape}")
    return image


def save_request(path: Path, scene: RenderScene, camera: Camera) -> None:
    """Serialise a render job for the offscreen worker."""
    hl = scene.has_highlights
    np.savez(path, points=np.asarray(scene.points, np.float64), colors=np.asarray(scene.colors, np.uint8),
             point_size=scene.point_size, background=np.asarray(scene.background, np.uint8),
             highlight_points=np.asarray(scene.highlight_points if hl else np.zeros((0, 3)), np.float64),
             highlight_colors=np.asarray(scene.highlight_colors if hl else np.zeros((0, 3)), np.uint8),
             highlight_radius=scene.highlight_radius, width=camera.width, height=camera.height,
             intrinsic=camera.intrinsic, extrinsic=camera.extrinsic, near=camera.near, far=camera.far)


def load_request(path: Path) -> tuple[RenderScene, Camera]:
    with np.load(path) as z:
        scene = RenderScene(points=z["points"], colors=z["colors"], point_size=float(z["point_size"]),
                            highlight_points=z["highlight_points"], highlight_colors=z["highlight_colors"],
                            highlight_radius=float(z["highlight_radius"]),
                            background=tuple(int(c) for c in z["background"]))
        camera = Camera(width=int(z["width"]), height=int(z["height"]), intrinsic=z["intrinsic"],
                        extrinsic=z["extrinsic"], near=float(z["near"]), far=float(z["far"]))
    return scene, camera


def offscreen_render_in_this_process(scene: RenderScene, camera: Camera) -> np.ndarray:
    """The Filament render itself (called by the worker process only)."""
    o3d = import_open3d()
    rendering = o3d.visualization.rendering
    renderer = rendering.OffscreenRenderer(camera.width, camera.height)
    renderer.scene.set_background(list(np.asarray(scene.background, np.float64) / 255.0) + [1.0])
    renderer.scene.view.set_post_processing(False)  # no tone mapping / gamma: exact colours
    for i, geom in enumerate(open3d_geometries(o3d, scene)):
        material = rendering.MaterialRecord()
        material.shader = "defaultUnlit"
        material.point_size = float(scene.point_size)
        renderer.scene.add_geometry(f"g{i}", geom, material)
    renderer.setup_camera(camera.intrinsic, camera.extrinsic, camera.width, camera.height)
    image = np.asarray(renderer.render_to_image())
    return np.ascontiguousarray(image[..., :3], dtype=np.uint8)


# --------------------------------------------------------------------------- numpy fallback
def render_numpy(scene: RenderScene, camera: Camera) -> np.ndarray:
    """Z-buffered splatting: each point covers a ``point_size`` square of pixels, highlights a disc.

    Pixel centres sit at integer coordinates (``cx = W/2 - 0.5``); a square of side ``s`` around a point
    projected at ``u`` covers the pixels ``i`` with ``u - s/2 <= i < u + s/2``, as OpenGL points do.
    """
    h, w = camera.height, camera.width
    image = np.empty((h, w, 3), dtype=np.uint8)
    image[:] = np.asarray(scene.background, dtype=np.uint8)
    frags_pix, frags_depth, frags_color = [], [], []

    def add(pix_x, pix_y, depth, colors):
        ok = (pix_x >= 0) & (pix_x < w) & (pix_y >= 0) & (pix_y < h)
        frags_pix.append(pix_y[ok] * w + pix_x[ok])
        frags_depth.append(depth[ok])
        frags_color.append(colors[ok])

    uv, z = camera.project(np.asarray(scene.points, dtype=np.float64))
    vis = (z > camera.near) & np.isfinite(uv).all(1)
    uv, z, colors = uv[vis], z[vis], np.asarray(scene.colors, np.uint8)[vis]
    side = max(1, int(round(scene.point_size)))
    start = np.ceil(uv - side / 2).astype(np.int64)
    for dy in range(side):
        for dx in range(side):
            add(start[:, 0] + dx, start[:, 1] + dy, z, colors)
    if scene.has_highlights:
        huv, hz = camera.project(np.asarray(scene.highlight_points, dtype=np.float64))
        hvis = (hz > camera.near) & np.isfinite(huv).all(1)
        huv, hz = huv[hvis], hz[hvis]
        hcol = np.asarray(scene.highlight_colors, np.uint8)[hvis]
        radius_px = camera.intrinsic[0, 0] * scene.highlight_radius / hz
        r_max = int(np.ceil(min(radius_px.max(initial=0.0), 64)))
        centre = np.rint(huv).astype(np.int64)
        for dy in range(-r_max, r_max + 1):
            for dx in range(-r_max, r_max + 1):
                inside = dx * dx + dy * dy <= radius_px**2
                # A sphere's front surface is nearer than its centre: depth - radius keeps it on top.
                add(centre[inside, 0] + dx, centre[inside, 1] + dy, hz[inside] - scene.highlight_radius, hcol[inside])
    pix = np.concatenate(frags_pix)
    if len(pix):
        depth, color = np.concatenate(frags_depth), np.concatenate(frags_color)
        order = np.lexsort((depth, pix))  # by pixel, nearest first
        first = np.unique(pix[order], return_index=True)[1]
        winners = order[first]
        image.reshape(-1, 3)[pix[winners]] = color[winners]
    return image
