"""Colourings of the viewer: errors, uncertainty colormap, labelled-points mode, legends."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.data.classes import S3DIS13, SCANNET20
from pcseg.viz import colors as C
from pcseg.viz.modes import VizData, available_modes, default_mode, mode_view, unavailable_reason


def test_error_colors_logic():
    gt = np.array([0, 1, 2, -1, -1, 5, 3])
    pred = np.array([0, 2, 2, 4, -1, -1, 3])
    out = C.error_colors(pred, gt)
    expect = [C.CORRECT_RGB, C.WRONG_RGB, C.CORRECT_RGB, C.IGNORE_RGB, C.IGNORE_RGB, C.WRONG_RGB, C.CORRECT_RGB]
    np.testing.assert_array_equal(out, np.array(expect, dtype=np.uint8))
    assert C.error_counts(pred, gt) == {"correct": 3, "wrong": 2, "ignore": 2}
    with pytest.raises(ValueError, match="shape"):
        C.error_colors(pred[:-1], gt)


def test_error_colors_match_a_reference_loop():
    rng = np.random.default_rng(3)
    gt, pred = rng.integers(-1, 4, 1000), rng.integers(-1, 4, 1000)
    out = C.error_colors(pred, gt)
    for p, g, c in zip(pred, gt, out):
        expect = C.IGNORE_RGB if g == -1 else C.CORRECT_RGB if p == g else C.WRONG_RGB
        assert tuple(c) == expect


def test_uncertainty_colormap_is_monotonic_in_luminance():
    values = np.linspace(-2.0, 5.0, 1001)
    rgb, (lo, hi) = C.scalar_colors(values[::-1])  # order of the input must not matter
    assert (lo, hi) == (-2.0, 5.0)
    lum = C.luminance(rgb[::-1])
    assert np.all(np.diff(lum) >= -1e-3), "luminance must not decrease with the score"
    assert lum[-1] - lum[0] > 0.6, "low and high must be far apart"
    # ends are viridis' ends: dark purple and yellow
    assert tuple(rgb[-1]) == (68, 1, 84) and tuple(rgb[0]) == (253, 231, 37)


def test_uncertainty_range_nan_and_clipping():
    rgb, rng_used = C.scalar_colors(np.array([0.0, 0.5, 1.0, np.nan, 7.0]), vmin=0.0, vmax=1.0)
    assert rng_used == (0.0, 1.0)
    assert tuple(rgb[3]) == C.NO_VALUE_RGB
    np.testing.assert_array_equal(rgb[4], rgb[2])  # above vmax clips to the top colour
    constant, _ = C.scalar_colors(np.full(5, 0.3))
    assert len(np.unique(constant, axis=0)) == 1


def test_dimmed_is_dark_grey_and_keeps_order():
    colors = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0]], np.uint8)
    d = C.dimmed(colors)
    assert (d[:, 0] == d[:, 1]).all() and (d[:, 1] == d[:, 2]).all()
    assert d.max() <= 255 * C.DIM_SCALE + C.DIM_OFFSET + 1
    assert d[0, 0] < d[2, 0] < d[3, 0] < d[1, 0]


def _data(**kw):
    n = 6
    base = dict(name="s", coord=np.zeros((n, 3), np.float32), class_map=SCANNET20,
                rgb=np.full((n, 3), 100, np.uint8))
    base.update(kw)
    return VizData(**base)


def test_modes_availability_and_default():
    d = _data()
    assert available_modes(d) == ["rgb"] and default_mode(d) == "rgb"
    assert "no ground truth" in unavailable_reason(d, "gt")
    d = _data(gt=np.array([0, 1, 1, -1, 2, 2]))
    assert default_mode(d) == "gt" and "needs a prediction" in unavailable_reason(d, "error")
    d = _data(gt=np.array([0, 1, 1, -1, 2, 2]), pred=np.array([0, 1, 2, 2, 2, -1]))
    assert default_mode(d) == "pred" and unavailable_reason(d, "error") is None
    with pytest.raises(ValueError, match="cannot show uncertainty"):
        mode_view(d, "uncertainty")


def test_legend_lists_present_classes_only():
    d = _data(gt=np.array([0, 1, 1, -1, 6, 6]), class_map=SCANNET20)
    view = mode_view(d, "gt", color_legend=False)
    np.testing.assert_array_equal(view.colors[0], SCANNET20.palette[0])
    np.testing.assert_array_equal(view.colors[3], (0, 0, 0))
    lines = view.legend.splitlines()[1:]
    assert [ln.split()[0] for ln in lines] == ["0", "1", "6", "-1"]
    assert "table" in lines[2] and "rgb(255, 152, 150)" in lines[2] and lines[2].split()[-2] == "2"
    assert "chair" not in view.legend
    swatches = mode_view(d, "gt", color_legend=True).legend
    assert "\x1b[48;2;174;199;232m" in swatches


def test_labelled_mode_dims_scene_and_colours_selection_by_class():
    gt = np.array([0, 1, 2, 3, -1, 5])
    sel = np.array([False, True, False, False, True, False])
    view = mode_view(_data(gt=gt, selected=sel, class_map=S3DIS13), "labelled", color_legend=False)
    np.testing.assert_array_equal(view.highlight, [1, 4])
    np.testing.assert_array_equal(view.highlight_colors, [S3DIS13.palette[1], C.SELECTED_RGB])
    assert (view.colors == C.dimmed(np.full((6, 3), 100, np.uint8))).all()
    assert "2 of 6 points" in view.legend and "beam" in view.legend
