"""Turn loaded scene data + a colouring mode into something to draw, and draw it headless to a PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcseg.viz.camera import Camera, auto_point_size, fit_camera, typical_depth
from pcseg.viz.modes import ModeView, VizData, mode_view
from pcseg.viz.render import RenderScene, render_image, save_png

# Above this many labelled points, spheres would make the mesh huge: colour the points instead.
MAX_HIGHLIGHT_SPHERES = 50_000
_FRAMING_SAMPLES = 200_000


@dataclass
class ViewSettings:
    """How to look at the scene.

    Attributes:
        width, height: image / window size in pixels.
        view: ``top`` or ``iso`` (see :mod:`pcseg.viz.camera`).
        point_size: pixels; None = chosen from the point spacing.
        background: RGB.
    """

    width: int = 1024
    height: int = 768
    view: str = "iso"
    point_size: float | None = None
    background: tuple[int, int, int] = (255, 255, 255)


@dataclass
class Framing:
    """Camera and sizes derived once per scene (they do not change with the colouring)."""

    camera: Camera
    point_size: float
    highlight_radius: float  # metres


def frame_scene(coord: np.ndarray, settings: ViewSettings) -> Framing:
    """Camera that fits ``coord`` (N, 3), point size, and the radius of highlight spheres."""
    step = max(1, len(coord) // _FRAMING_SAMPLES)
    sample = np.asarray(coord[::step], dtype=np.float64)
    camera = fit_camera(sample, settings.view, settings.width, settings.height)
    size = settings.point_size if settings.point_size is not None else auto_point_size(coord, camera)
    ppm = camera.pixels_per_metre(typical_depth(sample, camera))
    diameter_px = max(4.0 * size, 12.0)
    return Framing(camera=camera, point_size=float(size), highlight_radius=0.5 * diameter_px / ppm)


def render_scene_for(data: VizData, view: ModeView, framing: Framing,
                     background: tuple[int, int, int] = (255, 255, 255)) -> tuple[RenderScene, str]:
    """The drawable scene of one mode; returns it with a note for the user (or '')."""
    colors = view.colors
    hl_points = hl_colors = None
    note = ""
    if view.highlight is not None and len(view.highlight):
        if len(view.highlight) > MAX_HIGHLIGHT_SPHERES:
            colors = colors.copy()
            colors[view.highlight] = view.highlight_colors
            note = (f"{len(view.highlight)} selected points: drawn as coloured points, not spheres "
                    f"(more than {MAX_HIGHLIGHT_SPHERES})")
        else:
            hl_points, hl_colors = data.coord[view.highlight], view.highlight_colors
    scene = RenderScene(points=data.coord, colors=colors, point_size=framing.point_size, highlight_points=hl_points,
                        highlight_colors=hl_colors, highlight_radius=framing.highlight_radius, background=background)
    return scene, note


@dataclass
class RenderReport:
    path: Path
    backend: str
    mode: str
    legend: str
    point_size: float
    note: str = ""


def render_png(data: VizData, mode: str, path: str | Path, settings: ViewSettings | None = None,
               backend: str = "auto", color_legend: bool | None = None) -> RenderReport:
    """Render ``data`` coloured by ``mode`` to a PNG file (headless).

    Args:
        backend: see :func:`pcseg.viz.render.render_image`.
        color_legend: ANSI colour swatches in the returned legend (default: if stdout is a terminal).
    """
    settings = settings or ViewSettings()
    view = mode_view(data, mode, color_legend=color_legend)
    framing = frame_scene(data.coord, settings)
    scene, note = render_scene_for(data, view, framing, settings.background)
    image, used = render_image(scene, framing.camera, backend=backend)
    out = save_png(path, image)
    return RenderReport(path=out, backend=used, mode=mode, legend=view.legend, point_size=framing.point_size, note=note)
