"""The interactive window, driven through its key handler on a hidden (EGL) window."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.data.classes import SCANNET20
from pcseg.viz import colors as C
from pcseg.viz.modes import VizData
from pcseg.viz.viewer import ViewSettings


def test_keys_switch_colourings(room_scene, room_prediction):
    pytest.importorskip("open3d")
    from pcseg.viz.window import ViewerWindow

    pred, unc = room_prediction
    selected = np.zeros(room_scene.num_points, bool)
    selected[np.flatnonzero(room_scene.segment == SCANNET20.index("floor"))[:10]] = True
    data = VizData(name="room0", coord=room_scene.coord, class_map=SCANNET20, rgb=room_scene.color,
                   gt=room_scene.segment, pred=pred, selected=selected)
    messages: list[str] = []
    win = ViewerWindow(data, "gt", ViewSettings(320, 240), visible=False, out=messages.append)
    try:
        assert win.mode == "gt" and "[gt] ground truth" in messages[-1] and "table" in messages[-1]
        assert "keys: 1/R rgb" in messages[-1], "key help printed with the legend"

        def count(image, rgb):
            return int((image == np.asarray(rgb, np.uint8)).all(-1).sum())

        gt_image = win.capture()
        assert count(gt_image, SCANNET20.palette[SCANNET20.index("floor")]) > 500
        assert count(gt_image, C.WRONG_RGB) == 0

        assert win.press("6") and win.mode == "labelled"
        labelled = win.capture()
        floor_px = count(labelled, SCANNET20.palette[SCANNET20.index("floor")])
        assert 10 * 20 < floor_px < 10 * 200, "ten floor-coloured spheres over the dimmed scene"
        assert count(labelled, SCANNET20.palette[SCANNET20.index("wall")]) == 0

        assert win.press("E") and win.mode == "error"
        err = win.capture()
        assert count(err, C.CORRECT_RGB) > 2000 and count(err, C.WRONG_RGB) > 100
        assert count(err, SCANNET20.palette[SCANNET20.index("floor")]) == 0, "spheres removed on switch"
        assert "wrong" in messages[-1]

        assert not win.press("5"), "no uncertainty loaded"
        assert win.mode == "error" and "not available" in messages[-1]

        assert win.press("3") and win.mode == "pred"
        pred_image = win.capture()
        assert count(pred_image, SCANNET20.palette[SCANNET20.index("sofa")]) > 20  # the mistaken chair part
        with pytest.raises(ValueError):
            win.press("Z")
    finally:
        win.close()


def test_open_window_without_display_is_a_clear_error(monkeypatch, room_scene):
    from pcseg.utils.errors import PcsegError
    from pcseg.viz.window import open_window

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    data = VizData(name="r", coord=room_scene.coord, rgb=room_scene.color)
    with pytest.raises(PcsegError, match="--png"):
        open_window(data, "rgb", ViewSettings())
