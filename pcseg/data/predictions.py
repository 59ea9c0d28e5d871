"""Prediction files: one PLY point cloud per scene with the predicted class (and optional extras) per point.

The format is plain binary PLY, readable by MeshLab/CloudCompare (they show the prediction colours)
and writable with nothing but ``plyfile`` (docs/viz.md spells it out for writers that do not import
pcseg, such as the nerf3dovs exporter)::

    ply
    format binary_little_endian 1.0
    comment pcseg_prediction 1
    comment pcseg_class_map scannet20
    comment pcseg_ignore_index -1
    comment pcseg_scene scene0000_00                (optional)
    comment pcseg_class 0 174 199 232 wall          (one per class, ids 0..C-1 in order: id r g b name)
    ...
    element vertex N
    property float x / y / z
    property uchar red / green / blue               palette colour of the prediction (black for -1)
    property int label                              predicted class id, -1 = no prediction
    property int gt                                 (optional) ground-truth id, -1 = ignore
    property float uncertainty                      (optional) any per-point score, higher = less sure
    property uchar selected                         (optional) 1 = labelled / selected point
    property uchar orig_red / orig_green / orig_blue  (optional) the scan's own RGB
    end_header
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcseg.data.classes import IGNORE_INDEX, ClassMap, get_class_map
from pcseg.utils.atomic import atomic_write_bytes
from pcseg.utils.errors import DataError

FORMAT_VERSION = 1
MAGIC = "pcseg_prediction"
ORIG_COLOR_PROPS = ("orig_red", "orig_green", "orig_blue")


@dataclass
class PredictionCloud:
    """A prediction file in memory.

    Attributes:
        coord: (N, 3) float32 xyz.
        pred: (N,) int32 predicted class ids, -1 = no prediction.
        class_map: the classes (names, palette) the ids refer to.
        gt: (N,) int32 ground truth, -1 = ignore; None if the file has none.
        uncertainty: (N,) float32 per-point score (higher = less certain); None if absent.
        selected: (N,) bool labelled / selected points; None if absent.
        color: (N, 3) uint8 original scan RGB; None if absent.
        scene: scene name from the header, or None.
    """

    coord: np.ndarray
    pred: np.ndarray
    class_map: ClassMap
    gt: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    selected: np.ndarray | None = None
    color: np.ndarray | None = None
    scene: str | None = None

    @property
    def num_points(self) -> int:
        return int(self.coord.shape[0])


# --------------------------------------------------------------------------- writing
def write_prediction_ply(
    path: str | Path,
    coord: np.ndarray,
    pred: np.ndarray,
    class_map: ClassMap,
    gt: np.ndarray | None = None,
    uncertainty: np.ndarray | None = None,
    selected: np.ndarray | None = None,
    color: np.ndarray | None = None,
    scene: str | None = None,
    text: bool = False,
) -> Path:
    """Write a prediction PLY atomically (a crash leaves the old file or none, never half of one).

    Args:
        path: output ``.ply`` file (parent folders are created).
        coord: (N, 3) point coordinates (stored as float32).
        pred: (N,) integer class ids in ``[0, C)`` or ``class_map.ignore_index`` (no prediction).
        class_map: the class map the ids refer to; its name, names and palette go in the header.
        gt: optional (N,) ground-truth ids (same range as ``pred``).
        uncertainty: optional (N,) float scores.
        selected: optional (N,) bool (or 0/1) mask of labelled / selected points.
        color: optional (N, 3) uint8 original RGB.
        scene: optional scene name recorded in the header.
        text: write ASCII PLY instead of binary (for debugging; much larger).

    Returns:
        The path written.

    Raises:
        ValueError: on shape, range or dtype problems of the arrays (a programming error of the caller).
    """
    coord = np.asarray(coord)
    if coord.ndim != 2 or coord.shape[1] != 3:
        raise ValueError(f"coord must have shape (N, 3), got {coord.shape}")
    n = coord.shape[0]
    if not np.isfinite(coord).all():
        raise ValueError("coord holds NaN or infinite values")
    pred = _check_labels("pred", pred, n, class_map)
    fields: list[tuple[str, str]] = [("x", "f4"), ("y", "f4"), ("z", "f4"),
                                     ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("label", "i4")]
    columns: dict[str, np.ndarray] = {}
    columns["x"], columns["y"], columns["z"] = (coord[:, i] for i in range(3))
    rgb = class_map.colorize(pred)
    columns["red"], columns["green"], columns["blue"] = (rgb[:, i] for i in range(3))
    columns["label"] = pred
    if gt is not None:
        fields.append(("gt", "i4"))
        columns["gt"] = _check_labels("gt", gt, n, class_map)
    if uncertainty is not None:
        u = np.asarray(uncertainty)
        if u.shape != (n,):
            raise ValueError(f"uncertainty must have shape ({n},), got {u.shape}")
        fields.append(("uncertainty", "f4"))
        columns["uncertainty"] = u
    if selected is not None:
        s = np.asarray(selected)
        if s.shape != (n,):
            raise ValueError(f"selected must have shape ({n},), got {s.shape}")
        fields.append(("selected", "u1"))
        columns["selected"] = s != 0
    if color is not None:
        c = np.asarray(color)
        if c.shape != (n, 3):
            raise ValueError(f"color must have shape ({n}, 3), got {c.shape}")
        if c.dtype != np.uint8:
            raise ValueError(f"color must be uint8 RGB, got {c.dtype}")
        fields += [(p, "u1") for p in ORIG_COLOR_PROPS]
        for i, p in enumerate(ORIG_COLOR_PROPS):
            columns[p] = c[:, i]

    vertices = np.empty(n, dtype=[(name, "<" + t if t != "u1" else t) for name, t in fields])
    for name, _ in fields:
        vertices[name] = columns[name]
    comments = _header_comments(class_map, scene)

    from plyfile import PlyData, PlyElement

    ply = PlyData([PlyElement.describe(vertices, "vertex")], text=text, byte_order="<", comments=comments)
    buf = io.BytesIO()
    ply.write(buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _check_labels(what: str, labels: np.ndarray, n: int, class_map: ClassMap) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{what} must hold integer class ids, got dtype {labels.dtype}")
    bad = ((labels < 0) | (labels >= class_map.num_classes)) & (labels != class_map.ignore_index)
    if bad.any():
        raise ValueError(f"{what} has ids outside [0, {class_map.num_classes}) and not the ignore index "
                         f"{class_map.ignore_index}: {np.unique(labels[bad])[:10].tolist()}")
    return labels.astype(np.int32, copy=False)


def _header_comments(class_map: ClassMap, scene: str | None) -> list[str]:
    def one_line(value: str, what: str) -> str:
        if not value or value != value.strip() or any(ch in value for ch in "\r\n"):
            raise ValueError(f"{what} {value!r} cannot go in a PLY header (empty, padded or multi-line)")
        return value

    comments = [f"{MAGIC} {FORMAT_VERSION}", f"pcseg_class_map {one_line(class_map.name, 'class map name')}",
                f"pcseg_ignore_index {class_map.ignore_index}"]
    if scene is not None:
        comments.append(f"pcseg_scene {one_line(scene, 'scene name')}")
    for i, (name, rgb) in enumerate(zip(class_map.names, class_map.palette)):
        r, g, b = (int(v) for v in rgb)
        comments.append(f"pcseg_class {i} {r} {g} {b} {one_line(name, 'class name')}")
    return comments


# --------------------------------------------------------------------------- reading
def read_prediction_ply(path: str | Path) -> PredictionCloud:
    """Read a prediction PLY written by :func:`write_prediction_ply` (or any writer following docs/viz.md).

    Raises:
        DataError: the file is missing, not a PLY, not a pcseg prediction file, has an inconsistent
            header, lacks a required property, or holds class ids outside the class map.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "prediction file does not exist")
    from plyfile import PlyData

    try:
        ply = PlyData.read(str(path))
    except Exception as exc:  # plyfile raises PlyHeaderParseError, PlyElementParseError, ValueError, ...
        raise DataError(path, f"not a readable PLY file ({type(exc).__name__}: {_first_line(exc)})") from None
    class_map, scene = _parse_header(path, list(ply.comments))
    if "vertex" not in [e.name for e in ply.elements]:
        raise DataError(path, "no 'vertex' element")
    vertex = ply["vertex"].data
    props = set(vertex.dtype.names or ())
    missing = [p for p in ("x", "y", "z", "label") if p not in props]
    if missing:
        raise DataError(path, f"missing vertex propert{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}")
    n = len(vertex)
    if n == 0:
        raise DataError(path, "the file has no points")
    coord = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
    if not np.isfinite(coord).all():
        raise DataError(path, f"{int((~np.isfinite(coord)).any(1).sum())} point(s) have NaN or infinite coordinates")
    pred = _read_labels(path, vertex, "label", class_map)
    gt = _read_labels(path, vertex, "gt", class_map) if "gt" in props else None
    uncertainty = np.array(vertex["uncertainty"], dtype=np.float32) if "uncertainty" in props else None
    selected = (np.asarray(vertex["selected"]) != 0) if "selected" in props else None
    color = None
    present = [p for p in ORIG_COLOR_PROPS if p in props]
    if present:
        if len(present) != 3:
            raise DataError(path, f"original colour needs all of {', '.join(ORIG_COLOR_PROPS)}; found only {', '.join(present)}")
        color = np.stack([vertex[p] for p in ORIG_COLOR_PROPS], axis=1)
        if not np.issubdtype(color.dtype, np.integer) or color.min() < 0 or color.max() > 255:
            raise DataError(path, "orig_red/green/blue must be integers in 0..255 (uchar)")
        color = color.astype(np.uint8)
    return PredictionCloud(coord=coord, pred=pred, class_map=class_map, gt=gt, uncertainty=uncertainty,
                           selected=selected, color=color, scene=scene)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"


def _read_labels(path: Path, vertex: np.ndarray, prop: str, class_map: ClassMap) -> np.ndarray:
    values = np.asarray(vertex[prop])
    if not np.issubdtype(values.dtype, np.integer):
        raise DataError(path, f"property '{prop}' must be an integer type, got {values.dtype}")
    bad = ((values < 0) | (values >= class_map.num_classes)) & (values != class_map.ignore_index)
    if bad.any():
        raise DataError(path, f"property '{prop}' has {int(bad.sum())} value(s) outside the {class_map.num_classes} "
                              f"classes of {class_map.name} (e.g. {np.unique(values[bad])[:5].tolist()})")
    return values.astype(np.int32)


def _parse_header(path: Path, comments: list[str]) -> tuple[ClassMap, str | None]:
    """Class map and scene name from the header comments."""
    entries: dict[str, list[str]] = {}
    classes: list[tuple[int, tuple[int, int, int], str]] = []
    for line_no, comment in enumerate(comments, 1):
        key, _, value = comment.strip().partition(" ")
        if key == "pcseg_class":
            parts = value.split(" ", 4)
            try:
                if len(parts) != 5 or not parts[4].strip():
                    raise ValueError
                cid, r, g, b = (int(p) for p in parts[:4])
                if not all(0 <= c <= 255 for c in (r, g, b)):
                    raise ValueError
            except ValueError:
                raise DataError(path, f"bad header comment {comment!r}: expected 'pcseg_class <id> <r> <g> <b> <name>' "
                                      "with r, g, b in 0..255") from None
            classes.append((cid, (r, g, b), parts[4].strip()))
        elif key.startswith("pcseg_"):
            entries[key] = [value.strip()]
    if MAGIC not in entries:
        raise DataError(path, f"not a pcseg prediction file (no 'comment {MAGIC} {FORMAT_VERSION}' line in the header)")
    if entries[MAGIC][0] != str(FORMAT_VERSION):
        raise DataError(path, f"prediction format version {entries[MAGIC][0]!r}; this pcseg reads {FORMAT_VERSION}")
    name = entries.get("pcseg_class_map", [""])[0]
    if not name:
        raise DataError(path, "header has no 'comment pcseg_class_map <name>' line")
    if not classes:
        raise DataError(path, "header lists no classes ('comment pcseg_class <id> <r> <g> <b> <name>' lines)")
    ids = [c[0] for c in classes]
    if ids != list(range(len(classes))):
        raise DataError(path, f"class ids in the header must be 0..{len(classes) - 1} in order, got {ids[:10]}")
    try:
        ignore_index = int(entries.get("pcseg_ignore_index", [str(IGNORE_INDEX)])[0])
    except ValueError:
        raise DataError(path, "'pcseg_ignore_index' is not an integer") from None
    if 0 <= ignore_index < len(classes):
        raise DataError(path, f"ignore index {ignore_index} is a class id")
    names = tuple(c[2] for c in classes)
    try:
        builtin = get_class_map(name)
    except KeyError:
        builtin = None
    if builtin is not None and tuple(builtin.names) != names:
        raise DataError(path, f"class names in the header disagree with the built-in class map {name!r}")
    palette = np.array([c[1] for c in classes], dtype=np.uint8)
    class_map = ClassMap(name=name, names=names, palette=palette, ignore_index=ignore_index)
    scene = entries.get("pcseg_scene", [None])[0] or None
    return class_map, scene
