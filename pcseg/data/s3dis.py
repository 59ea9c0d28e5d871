"""S3DIS raw reader (``Stanford3dDataset_v1.2_Aligned_Version`` layout).

```
<raw>/Area_<k>/<room>/Annotations/<class>_<n>.txt      one object per file: lines "x y z r g b"
```
A room becomes the scene ``Area_<k>_<room>`` (e.g. ``Area_1_office_2``): all annotation files of the
room concatenated in natural order of (class, n), every raw point kept (no quantisation). Classes use
CPCM's alphabetical ``s3dis13`` order; ``stairs`` is ignored (-1). Instance id = the annotation
file's position in that order (0..K-1).

Real S3DIS files contain a few corrupt lines (``Area_5/hallway_6/Annotations/ceiling_1.txt`` line
180389 holds ``185\\x00187``). A line whose stray control character has exactly one reading as six
numbers (the byte replaced by a space, or deleted) is repaired; any other bad line is skipped. Both
are reported as ``file:line: problem``; only a file that is broken throughout fails its room.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pcseg.data.classes import IGNORE_INDEX, S3DIS_RAW_CLASSES, s3dis_class_id
from pcseg.data.rawio import check_coordinates
from pcseg.data.scene import Scene
from pcseg.utils.errors import DataError

AREA_PATTERN = re.compile(r"^Area_(\d+)$")
ANNOTATION_PATTERN = re.compile(r"^([A-Za-z]+)_?(\d*)\.txt$")
# Control bytes (except tab / CR / LF) never occur in a valid line.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")
# A file with more bad lines than this is broken, not merely blemished: fail the room.
MAX_BAD_LINES = 1000
MAX_BAD_FRACTION = 0.01


def scene_name(area: str, room: str) -> str:
    """``("Area_1", "office_2") -> "Area_1_office_2"``."""
    return f"{area}_{room}"


def find_rooms(raw: str | Path) -> list[tuple[str, str, Path]]:
    """All (area, room, room folder) under ``raw`` that have an ``Annotations`` folder, sorted."""
    raw = Path(raw)
    if not raw.is_dir():
        raise DataError(raw, "raw S3DIS folder does not exist")
    areas = sorted((p for p in raw.iterdir() if p.is_dir() and AREA_PATTERN.match(p.name)), key=lambda p: int(p.name[5:]))
    if not areas:
        raise DataError(raw, "no Area_<k> folders found (expected Stanford3dDataset_v1.2_Aligned_Version layout)")
    rooms = []
    for area in areas:
        for room in sorted(p for p in area.iterdir() if p.is_dir() and (p / "Annotations").is_dir()):
            rooms.append((area.name, room.name, room))
    if not rooms:
        raise DataError(raw, "no <Area>/<room>/Annotations folders found")
    return rooms


def area_number(area: str) -> int:
    m = AREA_PATTERN.match(area)
    if not m:
        raise ValueError(f"not an S3DIS area name: {area!r}")
    return int(m.group(1))


def _parse_six(text: str) -> tuple[float, ...] | None:
    parts = text.split()
    if len(parts) != 6:
        return None
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        return None
    return values if _valid_row(values) else None


def _valid_row(values) -> bool:
    return all(np.isfinite(values)) and all(0.0 <= c <= 255.0 for c in values[3:])


def _describe(line: str) -> str:
    shown = line.strip()
    return repr(shown if len(shown) <= 60 else shown[:57] + "...")


def _parse_lines_slowly(path: Path, raw: bytes) -> tuple[np.ndarray, list[str]]:
    """Line-by-line parse with repair/skip; returns (n, 6) rows and ``file:line: problem`` warnings."""
    rows: list[tuple[float, ...]] = []
    warnings: list[str] = []
    lines = raw.decode("latin-1").split("\n")
    nonblank = 0
    bad = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        nonblank += 1
        values = _parse_six(line)
        if values is not None:
            rows.append(values)
            continue
        readings = set()
        if _CONTROL.search(line):
            for candidate in (_CONTROL.sub(" ", line), _CONTROL.sub("", line)):
                parsed = _parse_six(candidate)
                if parsed is not None:
                    readings.add(parsed)
        if len(readings) == 1:
            rows.append(readings.pop())
            warnings.append(f"{path}:{lineno}: repaired stray control character in {_describe(line)}")
        else:
            bad += 1
            why = "ambiguous stray character" if len(readings) > 1 else "not six numbers (x y z r g b with 0<=rgb<=255)"
            warnings.append(f"{path}:{lineno}: skipped malformed line {_describe(line)} ({why})")
    if bad > MAX_BAD_LINES or (nonblank and bad > MAX_BAD_FRACTION * nonblank and bad > 1):
        first = next(w for w in warnings if "skipped" in w)
        raise DataError(path, f"{bad} of {nonblank} lines are malformed; first: {first.split(': ', 1)[1]}")
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    return arr, warnings


def read_annotation_file(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """One ``<class>_<n>.txt``: (n, 6) float64 rows ``x y z r g b`` and the list of line warnings."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"unreadable ({exc.strerror or exc})") from None
    if not _CONTROL.search(raw.decode("latin-1")):
        # Fast path: the C parser of numpy; any trouble falls back to the line-by-line reader.
        try:
            import warnings as _w

            with _w.catch_warnings():
                _w.simplefilter("ignore")
                arr = np.loadtxt(path, dtype=np.float64, ndmin=2, encoding="latin-1")
            if arr.size == 0:
                return np.zeros((0, 6)), []
            if arr.shape[1] == 6 and np.isfinite(arr).all() and arr[:, 3:].min() >= 0 and arr[:, 3:].max() <= 255:
                return arr, []
        except ValueError:
            pass
    return _parse_lines_slowly(path, raw)


def _annotation_sort_key(path: Path) -> tuple[str, int, str]:
    m = ANNOTATION_PATTERN.match(path.name)
    if m is None:
        return (path.name, 0, path.name)
    return (m.group(1), int(m.group(2) or 0), path.name)


def read_room(area: str, room: str, room_dir: str | Path) -> Scene:
    """Read ``<room_dir>/Annotations/*.txt`` into a :class:`Scene` named ``Area_k_room``.

    Line-level problems are kept in ``scene.meta["warnings"]``.
    """
    ann_dir = Path(room_dir) / "Annotations"
    if not ann_dir.is_dir():
        raise DataError(ann_dir, "missing Annotations folder")
    files = sorted((p for p in ann_dir.iterdir() if p.suffix == ".txt" and p.is_file()), key=_annotation_sort_key)
    if not files:
        raise DataError(ann_dir, "no annotation files (<class>_<n>.txt)")
    coords, colors, segments, instances = [], [], [], []
    warnings: list[str] = []
    for instance_id, path in enumerate(files):
        m = ANNOTATION_PATTERN.match(path.name)
        if m is None:
            raise DataError(path, "annotation file name is not <class>_<n>.txt")
        raw_class = m.group(1)
        try:
            class_id = s3dis_class_id(raw_class)
        except KeyError:
            raise DataError(path, f"unknown class {raw_class!r} (S3DIS classes: {', '.join(S3DIS_RAW_CLASSES)})") from None
        rows, file_warnings = read_annotation_file(path)
        warnings.extend(file_warnings)
        if rows.shape[0] == 0:
            warnings.append(f"{path}: empty annotation file")
            continue
        coords.append(rows[:, :3])
        colors.append(rows[:, 3:])
        segments.append(np.full(rows.shape[0], class_id, dtype=np.int32))
        instances.append(np.full(rows.shape[0], instance_id, dtype=np.int32))
    if not coords:
        raise DataError(ann_dir, "no points in any annotation file (empty room)")
    with np.errstate(over="ignore"):
        coord = np.concatenate(coords).astype(np.float32)
    check_coordinates(ann_dir, coord)  # values too large for float32 become inf here
    color = np.clip(np.rint(np.concatenate(colors)), 0, 255).astype(np.uint8)
    segment = np.concatenate(segments)
    meta = {
        "dataset": "s3dis",
        "area": area,
        "room": room,
        "source_files": [str(ann_dir)],
        "num_objects": len(files),
        "num_ignored": int((segment == IGNORE_INDEX).sum()),
        "warnings": warnings,
    }
    return Scene(scene_name(area, room), coord, color, segment, np.concatenate(instances), meta)


def prepare_s3dis(
    raw: str | Path, out: str | Path, val_area: int = 5, workers: int = 1, overwrite: bool = False, progress: bool = True,
    name: str = "s3dis", **info,
):
    """Prepare a raw S3DIS folder into ``out``; splits ``area<k>``, ``train`` (all but ``val_area``), ``val``.

    Returns a PrepareReport (line-level repairs and skips are in its warnings).
    """
    from pcseg.data.classes import S3DIS13
    from pcseg.data.prepare import SceneJob, finish_dataset, prepare_scenes

    raw, out = Path(raw), Path(out)
    rooms = find_rooms(raw)
    jobs = [SceneJob(scene_name(a, r), read_room, (a, r, d)) for a, r, d in rooms]
    report = prepare_scenes(out, jobs, workers=workers, overwrite=overwrite, progress=progress, desc=f"prepare {name}")
    splits: dict[str, list[str]] = {}
    for a, r, _ in rooms:
        splits.setdefault(f"area{area_number(a)}", []).append(scene_name(a, r))
    splits["train"] = [scene_name(a, r) for a, r, _ in rooms if area_number(a) != val_area]
    splits["val"] = [scene_name(a, r) for a, r, _ in rooms if area_number(a) == val_area]
    if not splits["val"]:
        report.warnings.append(f"no rooms in Area_{val_area}: the val split is empty")
    finish_dataset(out, name, S3DIS13, splits, report, source=str(raw.resolve()), val_area=val_area, **info)
    return report
