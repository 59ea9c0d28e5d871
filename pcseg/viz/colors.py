"""Per-point colourings for the viewer: class palettes, errors, uncertainty, labelled points (pure numpy).

Every function returns (N, 3) uint8 RGB, so the same arrays feed the Open3D window, the headless
renderers and the tests.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from pcseg.data.classes import ClassMap

CORRECT_RGB = (170, 170, 170)  # error mode: prediction == ground truth
WRONG_RGB = (230, 25, 25)  # error mode: prediction != ground truth
IGNORE_RGB = (0, 0, 0)  # ground truth is ignore (-1): neither right nor wrong
NO_VALUE_RGB = (128, 128, 128)  # uncertainty mode: NaN score
SELECTED_RGB = (255, 215, 0)  # labelled mode without ground truth: bright gold
# Labelled mode: the rest of the scene becomes a dark grey version of itself so the labelled points stand out.
DIM_SCALE, DIM_OFFSET = 0.3, 35.0


def label_colors(labels: np.ndarray, class_map: ClassMap) -> np.ndarray:
    """(N,) class ids -> (N, 3) palette colours; ignore / out-of-range ids are black."""
    return class_map.colorize(labels, ignore_color=IGNORE_RGB)


def error_colors(pred: np.ndarray, gt: np.ndarray, ignore_index: int = -1) -> np.ndarray:
    """Grey where ``pred == gt``, red where they differ, black where ``gt`` is ``ignore_index``.

    A point with no prediction (``pred == ignore_index``) but a valid ground truth counts as wrong.

    Args:
        pred: (N,) predicted ids.
        gt: (N,) ground-truth ids.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    out = np.empty((pred.shape[0], 3), dtype=np.uint8)
    out[:] = WRONG_RGB
    out[pred == gt] = CORRECT_RGB
    out[gt == ignore_index] = IGNORE_RGB
    return out


def error_counts(pred: np.ndarray, gt: np.ndarray, ignore_index: int = -1) -> dict[str, int]:
    """Numbers behind :func:`error_colors`: correct, wrong and ignored points."""
    valid = np.asarray(gt) != ignore_index
    correct = int(((np.asarray(pred) == gt) & valid).sum())
    return {"correct": correct, "wrong": int(valid.sum()) - correct, "ignore": int((~valid).sum())}


@lru_cache(maxsize=4)
def colormap_table(name: str = "viridis") -> np.ndarray:
    """(256, 3) float64 RGB in [0, 1] of a matplotlib colormap (the table only; mapping is done in numpy)."""
    import matplotlib

    return np.asarray(matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3], dtype=np.float64)


def scalar_colors(values: np.ndarray, vmin: float | None = None, vmax: float | None = None,
                  cmap: str = "viridis") -> tuple[np.ndarray, tuple[float, float]]:
    """Map scores to a perceptual colormap (viridis: dark blue = low, yellow = high).

    Values are scaled linearly from ``vmin``..``vmax`` (default: the finite min and max) to the table,
    interpolating between its 256 entries; NaN / infinite values get ``NO_VALUE_RGB``.

    Args:
        values: (N,) float scores.

    Returns:
        (N, 3) uint8 colours and the ``(vmin, vmax)`` range used.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    data_lo, data_hi = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 1.0)
    lo = data_lo if vmin is None else float(vmin)
    hi = data_hi if vmax is None else float(vmax)
    span = hi - lo if hi > lo else 1.0
    t = np.clip((np.where(finite, values, lo) - lo) / span, 0.0, 1.0) * 255.0
    table = colormap_table(cmap)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, 255)
    frac = (t - i0)[:, None]
    rgb = table[i0] * (1.0 - frac) + table[i1] * frac
    out = np.rint(rgb * 255.0).astype(np.uint8)
    out[~finite] = NO_VALUE_RGB
    return out, (lo, hi)


def dimmed(colors: np.ndarray) -> np.ndarray:
    """A dark grey version of ``colors`` (N, 3) uint8: the backdrop of the labelled-points mode."""
    gray = np.asarray(colors, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.rint(np.clip(gray * DIM_SCALE + DIM_OFFSET, 0, 255))[:, None].repeat(3, 1).astype(np.uint8)


def highlight_colors(selected: np.ndarray, gt: np.ndarray | None, class_map: ClassMap | None) -> np.ndarray:
    """Colours of the selected points: their ground-truth class colour if known, else bright gold.

    Args:
        selected: (K,) indices of the selected points.
        gt: (N,) ground truth of all points, or None.

    Returns:
        (K, 3) uint8.
    """
    out = np.empty((len(selected), 3), dtype=np.uint8)
    out[:] = SELECTED_RGB
    if gt is not None and class_map is not None:
        g = np.asarray(gt)[selected]
        ok = (g >= 0) & (g < class_map.num_classes)
        out[ok] = class_map.palette[g[ok]]
    return out


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Relative luminance (WCAG / sRGB) of (N, 3) uint8 colours, in [0, 1]."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])
