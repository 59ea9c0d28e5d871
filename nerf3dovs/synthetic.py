"""A generated table-top scene in the 3D-OVS layout, with exact ground-truth masks.

Coloured primitives (spheres, capped cylinders, boxes) stand on a wooden table in front of a wall. The
scene is rendered by analytic ray casting in numpy with Lambertian shading and 2x2 supersampling, from
forward-facing cameras on a small ellipse (the LLFF capture pattern), and written as::

    <out>/images/000.png ...             RGB photos
    <out>/poses_bounds.npy               LLFF rows (down/right/back axes, hwf column, near/far bounds)
    <out>/segmentations/classes.txt      the prompts, one per line
    <out>/segmentations/<idx>/<prompt>.png  masks (255 = class) of the annotated views
    <out>/palette.json                   prompt -> albedo RGB (0-255): what the oracle encoder decodes
    <out>/scene.json                     generator parameters and per-view label statistics

Run ``python -m nerf3dovs.synthetic --help``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nerf3dovs.data.llff import opengl_to_llff

WALL_Z = -1.4
LIGHT = np.array([0.45, 1.0, 0.7]) / np.linalg.norm([0.45, 1.0, 0.7])
AMBIENT, DIFFUSE = 0.5, 0.5


@dataclass(frozen=True)
class Primitive:
    """One solid of the scene.

    Attributes:
        kind: "sphere" | "cylinder" (vertical axis) | "box" (rotated about the vertical axis by ``yaw``).
        label: class prompt.
        centre: (x, y, z) world centre (OpenGL axes: y up, the cameras look along -z).
        size: sphere (r,), cylinder (r, half height), box (half x, half y, half z).
        yaw: box rotation about +y in radians.
    """

    kind: str
    label: str
    centre: tuple[float, float, float]
    size: tuple[float, ...]
    yaw: float = 0.0


ALBEDO: dict[str, tuple[int, int, int]] = {
    "blue mug": (40, 80, 210),
    "green book": (40, 170, 60),
    "purple box": (140, 60, 170),
    "red apple": (210, 35, 35),
    "white wall": (225, 225, 215),
    "wooden table": (150, 100, 55),
    "yellow ball": (230, 200, 30),
}

OBJECTS: tuple[Primitive, ...] = (
    Primitive("box", "wooden table", (0.0, -0.06, 0.1), (2.2, 0.06, 1.5)),
    Primitive("sphere", "red apple", (-0.72, 0.2, -0.25), (0.2,)),
    Primitive("cylinder", "blue mug", (0.05, 0.21, -0.75), (0.17, 0.21)),
    Primitive("box", "green book", (0.62, 0.045, 0.1), (0.3, 0.045, 0.2), yaw=0.35),
    Primitive("sphere", "yellow ball", (0.62, 0.23, -0.45), (0.14,)),
    Primitive("box", "purple box", (-0.2, 0.15, 0.25), (0.15, 0.15, 0.15), yaw=-0.5),
)


@dataclass
class SceneSpec:
    """Generator parameters (all in scene.json)."""

    num_views: int = 24
    width: int = 160
    height: int = 120
    fov_deg: float = 55.0
    annotated_every: int = 4
    supersample: int = 2
    seed: int = 0
    radius_x: float = 0.45
    radius_y: float = 0.2
    camera_centre: tuple[float, float, float] = (0.0, 0.95, 1.9)
    target: tuple[float, float, float] = (0.0, 0.05, -0.45)
    objects: tuple[Primitive, ...] = field(default_factory=lambda: OBJECTS)


# ---------------------------------------------------------------------------------- intersection


def _hit_sphere(o: np.ndarray, d: np.ndarray, p: Primitive) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(p.centre)
    r = p.size[0]
    oc = o - c
    b = (oc * d).sum(-1)
    cc = (oc * oc).sum(-1) - r * r
    disc = b * b - cc
    t = np.where(disc >= 0, -b - np.sqrt(np.maximum(disc, 0)), np.inf)
    t = np.where(t > 1e-6, t, np.inf)
    n = o + t[:, None] * d - c
    return t, n / r


def _hit_cylinder(o: np.ndarray, d: np.ndarray, p: Primitive) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(p.centre)
    r, hh = p.size
    oc = o - c
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = oc[:, 0] * d[:, 0] + oc[:, 2] * d[:, 2]
    cc = oc[:, 0] ** 2 + oc[:, 2] ** 2 - r * r
    disc = b * b - a * cc
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = np.where((disc >= 0) & (a > 1e-12), (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
    y = oc[:, 1] + t_side * d[:, 1]
    t_side = np.where((t_side > 1e-6) & (np.abs(y) <= hh), t_side, np.inf)
    # top cap only (the bottom stands on the table)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_cap = np.where(np.abs(d[:, 1]) > 1e-12, (hh - oc[:, 1]) / d[:, 1], np.inf)
    q = oc + np.where(np.isfinite(t_cap), t_cap, 0)[:, None] * d
    t_cap = np.where((t_cap > 1e-6) & (q[:, 0] ** 2 + q[:, 2] ** 2 <= r * r), t_cap, np.inf)
    t = np.minimum(t_side, t_cap)
    hit = oc + np.where(np.isfinite(t), t, 0)[:, None] * d
    n_side = np.stack([hit[:, 0], np.zeros_like(t), hit[:, 2]], -1) / r
    n_cap = np.tile(np.array([0.0, 1.0, 0.0]), (len(t), 1))
    n = np.where((t_cap <= t_side)[:, None], n_cap, n_side)
    return t, n


def _hit_box(o: np.ndarray, d: np.ndarray, p: Primitive) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(p.centre)
    half = np.asarray(p.size)
    cy, sy = np.cos(p.yaw), np.sin(p.yaw)
    rot = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])  # local -> world
    ol = (o - c) @ rot
    dl = d @ rot
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dl
        t0 = (-half - ol) * inv
        t1 = (half - ol) * inv
    tmin = np.minimum(t0, t1)
    tmax = np.maximum(t0, t1)
    t_near = np.nanmax(tmin, axis=-1)
    t_far = np.nanmin(tmax, axis=-1)
    ok = (t_near <= t_far) & (t_near > 1e-6)
    t = np.where(ok, t_near, np.inf)
    axis = np.nanargmax(tmin, axis=-1)
    nl = np.zeros_like(ol)
    sign = -np.sign(dl[np.arange(len(t)), axis])
    nl[np.arange(len(t)), axis] = sign
    return t, nl @ rot.T


def _hit(o: np.ndarray, d: np.ndarray, p: Primitive) -> tuple[np.ndarray, np.ndarray]:
    if p.kind == "sphere":
        return _hit_sphere(o, d, p)
    if p.kind == "cylinder":
        return _hit_cylinder(o, d, p)
    if p.kind == "box":
        return _hit_box(o, d, p)
    raise ValueError(f"unknown primitive kind {p.kind!r}")


def _texture(label: str, x: np.ndarray) -> np.ndarray:
    """Brightness modulation (N,) so that surfaces have some photometric detail for the NeRF."""
    if label == "wooden table":
        return 1.0 + 0.12 * np.sin(22.0 * x[:, 0] + 3.0 * np.sin(3.0 * x[:, 2]))
    if label == "white wall":
        return 1.0 - 0.08 * ((np.floor(x[:, 0] * 3.0) + np.floor(x[:, 1] * 3.0)) % 2)
    if label == "green book":
        return 1.0 - 0.25 * (np.abs(x[:, 1] - 0.045) < 0.012)
    if label == "blue mug":
        return 1.0 - 0.2 * (np.abs(x[:, 1] - 0.28) < 0.03)
    return np.ones(len(x))


def cast(origins: np.ndarray, dirs: np.ndarray, objects: tuple[Primitive, ...], labels: list[str]):
    """Trace rays against the scene.

    Args:
        origins: (N, 3) ray origins.
        dirs: (N, 3) unit directions.
        objects: the primitives (the wall plane z = WALL_Z is always present).
        labels: class order; the returned ids index it.

    Returns:
        ``(rgb (N, 3) float in [0, 1], label (N,) int, t (N,) hit distance)``.
    """
    n = len(origins)
    best_t = np.full(n, np.inf)
    best_n = np.zeros((n, 3))
    best_id = np.full(n, labels.index("white wall"))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_wall = (WALL_Z - origins[:, 2]) / dirs[:, 2]
    t_wall = np.where(t_wall > 1e-6, t_wall, np.inf)
    best_t = t_wall
    best_n[:] = (0.0, 0.0, 1.0)
    for p in objects:
        t, nrm = _hit(origins, dirs, p)
        closer = t < best_t
        best_t = np.where(closer, t, best_t)
        best_n = np.where(closer[:, None], nrm, best_n)
        best_id = np.where(closer, labels.index(p.label), best_id)
    if not np.isfinite(best_t).all():
        raise RuntimeError("a ray escaped the scene; move the cameras or enlarge the wall")
    x = origins + best_t[:, None] * dirs
    albedo = np.array([ALBEDO[name] for name in labels], dtype=np.float64)[best_id] / 255.0
    tex = np.ones(n)
    for c, name in enumerate(labels):
        sel = best_id == c
        if sel.any():
            tex[sel] = _texture(name, x[sel])
    shade = AMBIENT + DIFFUSE * np.clip(best_n @ LIGHT, 0.0, 1.0)
    rgb = np.clip(albedo * (tex * shade)[:, None], 0.0, 1.0)
    return rgb, best_id, best_t


# ---------------------------------------------------------------------------------- cameras


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 4) OpenGL camera-to-world looking from ``position`` at ``target`` with world +y up."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right = right / np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward, position], axis=1)


def camera_poses(spec: SceneSpec) -> np.ndarray:
    """(N, 3, 4) forward-facing poses on an ellipse with jittered radius (keyed by ``spec.seed``)."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 7]))
    angles = np.linspace(0.0, 2 * np.pi, spec.num_views, endpoint=False)
    radii = 0.55 + 0.45 * rng.random(spec.num_views)
    centre = np.asarray(spec.camera_centre)
    poses = []
    for a, r in zip(angles, radii):
        pos = centre + np.array([spec.radius_x * r * np.cos(a), spec.radius_y * r * np.sin(a), 0.15 * r * np.sin(2 * a)])
        poses.append(look_at(pos, np.asarray(spec.target)))
    return np.stack(poses)


def focal_length(spec: SceneSpec) -> float:
    return 0.5 * spec.width / np.tan(0.5 * np.deg2rad(spec.fov_deg))


def render_view(c2w: np.ndarray, spec: SceneSpec, labels: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one view.

    Returns:
        ``(rgb (H, W, 3) uint8, label (H, W) int of the pixel-centre ray, z-depth (H, W))``.
    """
    w, h, f, s = spec.width, spec.height, focal_length(spec), spec.supersample
    offs = (np.arange(s) + 0.5) / s
    # supersampled colour
    ys, xs = np.meshgrid(np.arange(h * s), np.arange(w * s), indexing="ij")
    u = xs.reshape(-1) // s + offs[xs.reshape(-1) % s]
    v = ys.reshape(-1) // s + offs[ys.reshape(-1) % s]
    rgb, _, _ = _cast_pixels(c2w, u, v, w, h, f, labels, spec.objects)
    rgb = rgb.reshape(h, s, w, s, 3).mean(axis=(1, 3))
    # pixel-centre labels and depth
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    _, lab, t = _cast_pixels(c2w, xs.reshape(-1) + 0.5, ys.reshape(-1) + 0.5, w, h, f, labels, spec.objects)
    d_cam_z = 1.0 / np.sqrt(((xs.reshape(-1) + 0.5 - w / 2) / f) ** 2 + ((ys.reshape(-1) + 0.5 - h / 2) / f) ** 2 + 1)
    depth = (t * d_cam_z).reshape(h, w)
    return (np.round(rgb * 255.0)).astype(np.uint8), lab.reshape(h, w), depth


def _cast_pixels(c2w, u, v, w, h, f, labels, objects):
    d_cam = np.stack([(u - w / 2) / f, -(v - h / 2) / f, -np.ones_like(u)], -1)
    d = d_cam @ c2w[:, :3].T
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    o = np.broadcast_to(c2w[:, 3], d.shape)
    return cast(o, d, objects, labels)


# ---------------------------------------------------------------------------------- writing


def write_scene(out: Path, spec: SceneSpec | None = None) -> dict:
    """Render and write the whole scene folder; returns the scene.json content."""
    from PIL import Image

    spec = spec or SceneSpec()
    labels = sorted({p.label for p in spec.objects} | {"white wall"})
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    seg = out / "segmentations"
    seg.mkdir(parents=True, exist_ok=True)
    poses = camera_poses(spec)
    f = focal_length(spec)
    bounds = np.zeros((spec.num_views, 2))
    annotated = list(range(0, spec.num_views, max(1, spec.annotated_every)))
    pixel_counts = {}
    digits = max(3, len(str(spec.num_views - 1)))
    for i, c2w in enumerate(poses):
        rgb, lab, depth = render_view(c2w, spec, labels)
        Image.fromarray(rgb).save(out / "images" / f"{i:0{digits}d}.png")
        bounds[i] = (depth.min() * 0.9, depth.max() * 1.1)
        if i in annotated:
            view = seg / f"{i:0{digits}d}"
            view.mkdir(exist_ok=True)
            for c, name in enumerate(labels):
                Image.fromarray(np.where(lab == c, 255, 0).astype(np.uint8)).save(view / f"{name}.png")
            pixel_counts[i] = {name: int((lab == c).sum()) for c, name in enumerate(labels)}
    np.save(out / "poses_bounds.npy", opengl_to_llff(poses, [spec.height, spec.width, f], bounds))
    (seg / "classes.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    (out / "palette.json").write_text(json.dumps({n: list(ALBEDO[n]) for n in labels}, indent=2) + "\n")
    meta = {
        "generator": "nerf3dovs.synthetic",
        "num_views": spec.num_views,
        "width": spec.width,
        "height": spec.height,
        "focal": f,
        "seed": spec.seed,
        "classes": labels,
        "annotated_views": annotated,
        "label_pixels": pixel_counts,
    }
    (out / "scene.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nerf3dovs.synthetic",
        description="Render the generated table-top scene in the 3D-OVS layout (images/, poses_bounds.npy, "
        "segmentations/, palette.json) for training ovs-nerf with the oracle encoders.",
    )
    parser.add_argument("out", type=Path, help="output scene folder (created; existing files are overwritten)")
    parser.add_argument("--views", type=int, default=24, help="number of camera views (default 24)")
    parser.add_argument("--width", type=int, default=160, help="image width in pixels (default 160)")
    parser.add_argument("--height", type=int, default=120, help="image height in pixels (default 120)")
    parser.add_argument("--annotated-every", type=int, default=4, help="write masks for every k-th view (default 4)")
    parser.add_argument("--supersample", type=int, default=2, help="s x s colour samples per pixel (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the camera jitter (default 0)")
    args = parser.parse_args(argv)
    if args.views < 2 or args.width < 8 or args.height < 8 or args.supersample < 1 or args.annotated_every < 1:
        parser.error("need --views >= 2, --width/--height >= 8, --supersample >= 1, --annotated-every >= 1")
    spec = SceneSpec(
        num_views=args.views,
        width=args.width,
        height=args.height,
        annotated_every=args.annotated_every,
        supersample=args.supersample,
        seed=args.seed,
    )
    meta = write_scene(args.out, spec)
    print(f"wrote {meta['num_views']} views ({spec.width}x{spec.height}), classes {meta['classes']}, "
          f"annotated {meta['annotated_views']} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
