"""Low-level readers and writers shared by the raw-dataset modules (PLY, JSON, text).

Every failure becomes a one-line :class:`~pcseg.utils.errors.DataError` that names the file and the
problem, so a malformed download never surfaces as a traceback from inside plyfile or json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pcseg.utils.errors import DataError

# Colour property names in the wild: ScanNet/Open3D write red/green/blue, some tools write r/g/b.
_COLOR_NAMES = (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue"))


def read_ply_vertices(path: str | Path) -> dict[str, np.ndarray]:
    """Read the ``vertex`` element of a PLY file as a dict of 1-D arrays (one per property).

    Faces and other elements are not needed by pcseg; triangle lists are declared fixed-length so
    that plyfile can memory-map them instead of parsing them row by row.

    Raises:
        DataError: missing or unreadable file, no vertex element, or no x/y/z properties.
    """
    from plyfile import PlyData, PlyParseError

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with open(path, "rb") as fh:
            try:
                ply = PlyData.read(fh, known_list_len={"face": {"vertex_indices": 3, "vertex_index": 3}})
            except (PlyParseError, ValueError):
                # Not a triangle mesh after all (quads, polygons): read it generically.
                fh.seek(0)
                ply = PlyData.read(fh)
    except (PlyParseError, ValueError, EOFError, OSError, IndexError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a readable PLY file ({_short(exc)})") from None
    if "vertex" not in ply:
        raise DataError(path, "PLY file has no 'vertex' element")
    data = ply["vertex"].data
    names = data.dtype.names or ()
    for axis in "xyz":
        if axis not in names:
            raise DataError(path, f"PLY vertices have no '{axis}' property (found: {', '.join(names)})")
    try:
        return {name: np.asarray(data[name]) for name in names}
    except (ValueError, EOFError) as exc:  # truncated binary body surfaces lazily with mmap
        raise DataError(path, f"truncated or corrupt PLY vertex data ({_short(exc)})") from None


def ply_coord_color(path: str | Path, vertices: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 3) float32 xyz and (N, 3) uint8 RGB (None if the file has no colour) from PLY vertices."""
    coord = np.stack([vertices["x"], vertices["y"], vertices["z"]], axis=1).astype(np.float32)
    for names in _COLOR_NAMES:
        if all(n in vertices for n in names):
            color = np.stack([vertices[n] for n in names], axis=1)
            if color.dtype.kind == "f":
                # Float colours are either 0..1 or 0..255; anything else is not a colour.
                hi = float(np.nanmax(color)) if color.size else 0.0
                if not np.isfinite(color).all() or color.min(initial=0) < 0 or hi > 255:
                    raise DataError(path, "vertex colours are not in 0..1 or 0..255")
                color = np.rint(color * 255.0) if hi <= 1.0 else np.rint(color)
            elif color.size and (color.min() < 0 or color.max() > 255):
                raise DataError(path, "vertex colours outside 0..255")
            return coord, color.astype(np.uint8)
    return coord, None


def check_coordinates(path: str | Path, coord: np.ndarray) -> None:
    """Raise DataError if the scene is empty or has NaN / infinite coordinates."""
    if coord.shape[0] == 0:
        raise DataError(path, "no points (empty scene)")
    finite = np.isfinite(coord).all(axis=1)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise DataError(path, f"{int((~finite).sum())} point(s) have NaN or infinite coordinates (first: vertex {first})")


def write_ply_vertices(path: str | Path, arrays: dict[str, np.ndarray], faces: np.ndarray | None = None,
                       durable: bool = True) -> None:
    """Write a binary little-endian PLY with the given per-vertex properties (and optional triangles).

    Args:
        path: output file.
        arrays: property name -> (N,) array; dtype decides the PLY type.
        faces: optional (F, 3) int vertex indices.
        durable: write atomically with fsync (False: a plain write, for regenerable files).
    """
    import io

    from plyfile import PlyData, PlyElement

    from pcseg.utils.atomic import atomic_write_bytes

    n = len(next(iter(arrays.values())))
    vertex = np.empty(n, dtype=[(k, v.dtype.str) for k, v in arrays.items()])
    for k, v in arrays.items():
        vertex[k] = v
    elements = [PlyElement.describe(vertex, "vertex")]
    if faces is not None:
        face = np.empty(len(faces), dtype=[("vertex_indices", "i4", (3,))])
        face["vertex_indices"] = faces
        elements.append(PlyElement.describe(face, "face"))
    buf = io.BytesIO()
    PlyData(elements, text=False, byte_order="<").write(buf)
    if durable:
        atomic_write_bytes(path, buf.getvalue())
    else:
        Path(path).write_bytes(buf.getvalue())


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; DataError (with the line) if it is missing or malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"unreadable ({_short(exc)})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc.msg}, column {exc.colno})", line=exc.lineno) from None


def _short(exc: BaseException, limit: int = 160) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."
