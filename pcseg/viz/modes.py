"""What the viewer shows: the loaded arrays of one scene and the six colouring modes with their legends."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

import numpy as np

from pcseg.data.classes import ClassMap
from pcseg.viz import colors as C

MODES = ("rgb", "gt", "pred", "error", "uncertainty", "labelled")
# Window keys per mode: a digit and a letter (GLFW key codes are the ASCII codes of digits / capitals).
MODE_KEYS = {"rgb": ("1", "R"), "gt": ("2", "G"), "pred": ("3", "P"), "error": ("4", "E"),
             "uncertainty": ("5", "U"), "labelled": ("6", "L")}
MODE_TITLES = {"rgb": "RGB (the scan's colours)", "gt": "ground truth", "pred": "prediction",
               "error": "errors (grey = correct, red = wrong, black = ignore)",
               "uncertainty": "uncertainty (viridis: dark blue = low, yellow = high)",
               "labelled": "labelled / selected points (spheres) over the dimmed scene"}


@dataclass
class VizData:
    """Everything known about the points of one scene (all arrays share the point order).

    Attributes:
        name: scene name (for titles).
        coord: (N, 3) float32.
        class_map: the classes of ``gt`` / ``pred`` (None if neither is known).
        rgb: (N, 3) uint8 scan colours, or None.
        gt: (N,) int ground truth (-1 = ignore), or None.
        pred: (N,) int prediction (-1 = none), or None.
        uncertainty: (N,) float scores, or None.
        selected: (N,) bool labelled / selected points, or None.
        sources: where each array came from, for the printed summary.
    """

    name: str
    coord: np.ndarray
    class_map: ClassMap | None = None
    rgb: np.ndarray | None = None
    gt: np.ndarray | None = None
    pred: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    selected: np.ndarray | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def num_points(self) -> int:
        return int(self.coord.shape[0])

    def below_height(self, height: float) -> "VizData":
        """The points at most ``height`` metres above the lowest one (every array cut alike).

        Indoor scans with a ceiling hide the room from any outside view; cutting at ~2 m opens it.
        """
        keep = self.coord[:, 2] <= float(self.coord[:, 2].min()) + height
        cut = {name: (None if getattr(self, name) is None else getattr(self, name)[keep])
               for name in ("coord", "rgb", "gt", "pred", "uncertainty", "selected")}
        return replace(self, **cut, sources={**self.sources, "cut": f"points above {height:g} m hidden"})


def unavailable_reason(data: VizData, mode: str) -> str | None:
    """Why ``mode`` cannot be shown for ``data`` (None if it can)."""
    if mode not in MODES:
        return f"unknown colouring {mode!r} (choose one of {', '.join(MODES)})"
    need = {"rgb": [("rgb", "no RGB colours (the prediction file has no orig_red/green/blue)")],
            "gt": [("gt", "no ground truth (unlabelled scene, or a prediction file without 'gt')")],
            "pred": [("pred", "no prediction (give --pred FILE or a prediction PLY)")],
            "error": [("pred", "needs a prediction (--pred FILE or a prediction PLY)"),
                      ("gt", "needs ground truth (a labelled scene or a prediction PLY with 'gt')")],
            "uncertainty": [("uncertainty", "no uncertainty (give --uncertainty FILE.npy or a prediction PLY with it)")],
            "labelled": [("selected", "no labelled/selected points (give --labels FILE or a prediction PLY with 'selected')")]}
    for attr, reason in need[mode]:
        if getattr(data, attr) is None:
            return reason
    return None


def available_modes(data: VizData) -> list[str]:
    return [m for m in MODES if unavailable_reason(data, m) is None]


def default_mode(data: VizData) -> str:
    """Prediction if there is one, else ground truth, else the scan colours."""
    for mode in ("pred", "gt", "rgb", "uncertainty", "labelled"):
        if unavailable_reason(data, mode) is None:
            return mode
    return "rgb"


@dataclass
class ModeView:
    """One colouring of the scene.

    Attributes:
        colors: (N, 3) uint8 colour of every point.
        highlight: (K,) indices of points drawn large on top (labelled mode), or None.
        highlight_colors: (K, 3) uint8 colours of those points.
        legend: text to print (class ids, names, colours, counts).
    """

    mode: str
    colors: np.ndarray
    legend: str
    highlight: np.ndarray | None = None
    highlight_colors: np.ndarray | None = None


def mode_view(data: VizData, mode: str, color_legend: bool | None = None) -> ModeView:
    """Colours and legend of ``data`` in ``mode``.

    Args:
        color_legend: draw a colour swatch (ANSI 24-bit colour) in the legend; default: if stdout is a terminal.

    Raises:
        ValueError: if the mode is not available (see :func:`unavailable_reason`).
    """
    reason = unavailable_reason(data, mode)
    if reason is not None:
        raise ValueError(f"cannot show {mode}: {reason}")
    swatch = sys.stdout.isatty() if color_legend is None else color_legend
    title = f"[{mode}] {MODE_TITLES[mode]}"
    if mode == "rgb":
        return ModeView(mode, np.asarray(data.rgb, dtype=np.uint8), title)
    if mode in ("gt", "pred"):
        labels = data.gt if mode == "gt" else data.pred
        legend = class_legend(labels, data.class_map, swatch, none_name="ignore" if mode == "gt" else "no prediction")
        return ModeView(mode, C.label_colors(labels, data.class_map), f"{title}\n{legend}")
    if mode == "error":
        ignore = data.class_map.ignore_index if data.class_map is not None else -1
        counts = C.error_counts(data.pred, data.gt, ignore)
        valid = counts["correct"] + counts["wrong"]
        lines = [title]
        for key, rgb in (("correct", C.CORRECT_RGB), ("wrong", C.WRONG_RGB), ("ignore", C.IGNORE_RGB)):
            pct = f"{100.0 * counts[key] / max(valid, 1):6.2f}% of labelled" if key != "ignore" else ""
            lines.append(f"  {_swatch(rgb, swatch)}{key:<8} rgb{rgb!s:<16} {counts[key]:>9d} pts  {pct}".rstrip())
        return ModeView(mode, C.error_colors(data.pred, data.gt, ignore), "\n".join(lines))
    if mode == "uncertainty":
        colors, (lo, hi) = C.scalar_colors(data.uncertainty)
        u = np.asarray(data.uncertainty, dtype=np.float64)
        n_bad = int((~np.isfinite(u)).sum())
        lo_rgb, hi_rgb = (tuple(int(c) for c in C.scalar_colors(np.array([v]), lo, hi)[0][0]) for v in (lo, hi))
        lines = [title, f"  {_swatch(lo_rgb, swatch)}low   {lo:<10.4g} rgb{lo_rgb}",
                 f"  {_swatch(hi_rgb, swatch)}high  {hi:<10.4g} rgb{hi_rgb}"]
        if n_bad:
            lines.append(f"  {_swatch(C.NO_VALUE_RGB, swatch)}{n_bad} point(s) without a value (NaN) rgb{C.NO_VALUE_RGB}")
        return ModeView(mode, colors, "\n".join(lines))
    # labelled
    sel = np.flatnonzero(np.asarray(data.selected))
    base = data.rgb if data.rgb is not None else (
        C.label_colors(data.gt, data.class_map) if data.gt is not None else np.full((data.num_points, 3), 200, np.uint8))
    hl_colors = C.highlight_colors(sel, data.gt, data.class_map)
    lines = [title, f"  {len(sel)} of {data.num_points} points ({100.0 * len(sel) / data.num_points:.3f}%)"]
    if data.gt is not None and len(sel):
        lines.append("  their ground-truth classes:")
        lines.append(class_legend(np.asarray(data.gt)[sel], data.class_map, swatch, none_name="ignore"))
    else:
        lines.append(f"  {_swatch(C.SELECTED_RGB, swatch)}selected rgb{C.SELECTED_RGB}")
    return ModeView(mode, C.dimmed(base), "\n".join(lines), highlight=sel, highlight_colors=hl_colors)


def class_legend(labels: np.ndarray, class_map: ClassMap, swatch: bool = False, none_name: str = "ignore") -> str:
    """Legend of the classes present in ``labels``, in id order: id, name, rgb and point count
    (ids outside the class map, i.e. ignore, last)."""
    labels = np.asarray(labels)
    ids, counts = np.unique(labels, return_counts=True)
    width = max([len(n) for n in class_map.names] + [len(none_name)])
    lines = []
    for i, n in zip(ids.tolist(), counts.tolist()):
        if 0 <= i < class_map.num_classes:
            rgb = tuple(int(c) for c in class_map.palette[i])
            lines.append(f"  {_swatch(rgb, swatch)}{i:3d}  {class_map.names[i]:<{width}}  rgb{rgb!s:<16} {n:>9d} pts")
    for i, n in zip(ids.tolist(), counts.tolist()):
        if not 0 <= i < class_map.num_classes:
            lines.append(f"  {_swatch(C.IGNORE_RGB, swatch)}{i:3d}  {none_name:<{width}}  rgb{C.IGNORE_RGB!s:<16} {n:>9d} pts")
    return "\n".join(lines)


def _swatch(rgb, enabled: bool) -> str:
    if not enabled:
        return ""
    r, g, b = (int(c) for c in rgb)
    return f"\x1b[48;2;{r};{g};{b}m    \x1b[0m "


def key_help() -> str:
    keys = "  ".join(f"{d}/{k} {m}" for m, (d, k) in MODE_KEYS.items())
    return (f"keys: {keys}  |  H this help  |  +/- point size  |  mouse: rotate (left), pan (shift/middle), "
            "zoom (wheel)  |  Q/Esc quit")
