"""The interactive Open3D window: one point cloud, keys 1..6 / R G P E U L switch the colouring."""

from __future__ import annotations

import os
import sys
from typing import Callable

import numpy as np

from pcseg.utils.errors import PcsegError
from pcseg.viz.modes import MODE_KEYS, MODES, VizData, key_help, mode_view, unavailable_reason
from pcseg.viz.render import (RenderError, captured_stderr, highlight_mesh_arrays, import_open3d, apply_camera,
                              style_render_option)
from pcseg.viz.viewer import ViewSettings, frame_scene, render_scene_for


def has_display() -> bool:
    """Whether a window can be shown (always assumed on macOS / Windows)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class ViewerWindow:
    """An Open3D legacy window on one scene.

    Args:
        data: the scene's arrays.
        mode: initial colouring (one of ``MODES``, available for ``data``).
        settings: size, view, point size, background.
        visible: False opens a hidden window (EGL without a display): used by tests to drive the keys.
        out: where legends and messages go (default: print).
    """

    def __init__(self, data: VizData, mode: str, settings: ViewSettings | None = None, visible: bool = True,
                 out: Callable[[str], None] = print):
        self.o3d = import_open3d()
        self.data, self.settings, self.out = data, settings or ViewSettings(), out
        self.framing = frame_scene(data.coord, self.settings)
        self.mode: str | None = None
        self._highlight_mesh = None
        vis = self.o3d.visualization.VisualizerWithKeyCallback()
        with captured_stderr() as chatter:
            ok = vis.create_window(window_name=f"pcseg viz: {data.name}", width=self.settings.width,
                                   height=self.settings.height, visible=visible)
        if not ok:
            raise RenderError("Open3D could not open a window" + (f" ({chatter[-1].strip()})" if chatter else "")
                              + "; use --png FILE to render headless")
        self.vis = vis
        self.pcd = self.o3d.geometry.PointCloud(self.o3d.utility.Vector3dVector(data.coord.astype(np.float64)))
        with captured_stderr():
            vis.add_geometry(self.pcd)
            style_render_option(vis, self.framing.point_size, self.settings.background)
            apply_camera(self.o3d, vis, self.framing.camera)
        for mode_name, keys in MODE_KEYS.items():
            for key in keys:
                vis.register_key_callback(ord(key), self._callback(mode_name))
        vis.register_key_callback(ord("H"), self._print_help)
        self.switch(mode)

    def _callback(self, mode: str):
        def on_key(_vis) -> bool:
            return self.switch(mode)

        return on_key

    def _print_help(self, _vis) -> bool:
        self.out(key_help())
        return False

    def switch(self, mode: str) -> bool:
        """Recolour the scene as ``mode`` and print its legend; returns False if it is not available."""
        if mode not in MODES:
            raise ValueError(f"unknown colouring {mode!r}")
        reason = unavailable_reason(self.data, mode)
        if reason is not None:
            self.out(f"[{mode}] not available: {reason}")
            return False
        view = mode_view(self.data, mode)
        scene, note = render_scene_for(self.data, view, self.framing, self.settings.background)
        self.pcd.colors = self.o3d.utility.Vector3dVector(np.asarray(scene.colors, np.float64) / 255.0)
        with captured_stderr():
            self.vis.update_geometry(self.pcd)
            if self._highlight_mesh is not None:
                self.vis.remove_geometry(self._highlight_mesh, reset_bounding_box=False)
                self._highlight_mesh = None
            if scene.has_highlights:
                verts, tris, colors = highlight_mesh_arrays(scene)
                mesh = self.o3d.geometry.TriangleMesh(self.o3d.utility.Vector3dVector(verts),
                                                      self.o3d.utility.Vector3iVector(tris))
                mesh.vertex_colors = self.o3d.utility.Vector3dVector(colors)
                self.vis.add_geometry(mesh, reset_bounding_box=False)
                self._highlight_mesh = mesh
        self.mode = mode
        self.out(view.legend + (f"\n  note: {note}" if note else "") + "\n" + key_help())
        return True

    def press(self, key: str) -> bool:
        """Act as if ``key`` (e.g. ``"4"`` or ``"E"``) was pressed (for tests and scripted use)."""
        for mode_name, keys in MODE_KEYS.items():
            if key.upper() in keys:
                return self.switch(mode_name)
        raise ValueError(f"no action on key {key!r}")

    def capture(self) -> np.ndarray:
        """The current frame as (H, W, 3) uint8."""
        with captured_stderr():
            self.vis.poll_events()
            self.vis.update_renderer()
            buf = np.asarray(self.vis.capture_screen_float_buffer(do_render=True))
        return np.rint(np.clip(buf, 0, 1) * 255).astype(np.uint8)

    def run(self) -> None:
        """Show the window until the user closes it (Q / Esc)."""
        try:
            self.vis.run()
        finally:
            self.close()

    def close(self) -> None:
        if self.vis is not None:
            self.vis.destroy_window()
            self.vis = None


def open_window(data: VizData, mode: str, settings: ViewSettings) -> None:
    """Open the interactive viewer (blocks until closed)."""
    if not has_display():
        raise PcsegError("no display to open a window on (DISPLAY is not set): use --png FILE to render "
                         "headless, or run under a virtual display (xvfb-run pcseg viz ...)")
    ViewerWindow(data, mode, settings).run()
