"""Reader for user data: a folder of labelled PLY point clouds (format in docs/data.md).

```
<raw>/<scene>.ply                 or   <raw>/<split>/<scene>.ply   (train/, val/, test/, ...)
classes file                      one class name per line; line i (blank lines and #comments skipped) = id i
```
Each PLY needs vertex properties ``x y z``, optionally ``red green blue`` (uint8 or float 0..1),
``label`` (integer class id, -1 = unlabelled; absent = an unlabelled scene) and ``instance``
(integer, -1 = none). Point order is kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcseg.data.classes import IGNORE_INDEX, ClassMap, make_custom_class_map
from pcseg.data.rawio import check_coordinates, ply_coord_color, read_ply_vertices
from pcseg.data.scene import Scene
from pcseg.utils.errors import DataError

LABEL_PROPERTY = "label"
INSTANCE_PROPERTY = "instance"


def read_classes_file(path: str | Path, name: str = "custom") -> ClassMap:
    """A class-names file -> :class:`ClassMap` (ids in line order)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(path, "classes file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"unreadable classes file ({exc})") from None
    names: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text in names:
            raise DataError(path, f"class {text!r} is listed twice", line=lineno)
        names.append(text)
    if not names:
        raise DataError(path, "no class names")
    return make_custom_class_map(names, name=name)


def find_scenes(raw: str | Path) -> dict[str, tuple[str | None, Path]]:
    """{scene name: (split folder name or None, ply path)} for ``<raw>/*.ply`` and ``<raw>/<split>/*.ply``."""
    raw = Path(raw)
    if not raw.is_dir():
        raise DataError(raw, "raw folder does not exist")
    found: dict[str, tuple[str | None, Path]] = {}
    candidates = [(None, p) for p in sorted(raw.glob("*.ply"))]
    for sub in sorted(p for p in raw.iterdir() if p.is_dir() and not p.name.startswith(".")):
        candidates += [(sub.name, p) for p in sorted(sub.glob("*.ply"))]
    for split, path in candidates:
        if path.stem in found:
            raise DataError(path, f"scene name {path.stem!r} also used by {found[path.stem][1]}")
        found[path.stem] = (split, path)
    if not found:
        raise DataError(raw, "no .ply files found (expected <raw>/<scene>.ply or <raw>/<split>/<scene>.ply)")
    return found


def _integer_property(path: Path, values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype.kind == "f":
        if not np.isfinite(values).all() or (values != np.round(values)).any():
            raise DataError(path, f"'{what}' values must be integers")
    elif values.dtype.kind not in "iu":
        raise DataError(path, f"'{what}' property has type {values.dtype}, expected an integer")
    return values.astype(np.int64)


def read_scene(path: str | Path, class_map: ClassMap) -> Scene:
    """Read one labelled (or unlabelled) PLY into a :class:`Scene` named after the file."""
    path = Path(path)
    vertices = read_ply_vertices(path)
    coord, color = ply_coord_color(path, vertices)
    check_coordinates(path, coord)
    meta: dict = {"dataset": "custom", "source_files": [str(path)], "warnings": []}
    if color is None:
        color = np.zeros_like(coord, dtype=np.uint8)
        meta["warnings"].append(f"{path}: no red/green/blue vertex colours; colours set to 0")
    segment = instance = None
    if LABEL_PROPERTY in vertices:
        labels = _integer_property(path, vertices[LABEL_PROPERTY], LABEL_PROPERTY)
        bad = (labels < IGNORE_INDEX) | (labels >= class_map.num_classes)
        if bad.any():
            values = np.unique(labels[bad])[:5].tolist()
            raise DataError(path, f"label value(s) {values} outside the class map (0..{class_map.num_classes - 1}, -1 = unlabelled)")
        segment = labels.astype(np.int32)
    if INSTANCE_PROPERTY in vertices:
        inst = _integer_property(path, vertices[INSTANCE_PROPERTY], INSTANCE_PROPERTY)
        if (inst < IGNORE_INDEX).any() or (inst > np.iinfo(np.int32).max).any():
            raise DataError(path, "instance ids must be >= -1 and fit in int32")
        instance = inst.astype(np.int32)
    return Scene(path.stem, coord, color, segment, instance, meta)


def prepare_custom(
    raw: str | Path, classes_file: str | Path, out: str | Path, splits_dir: str | Path | None = None, name: str = "custom",
    workers: int = 1, overwrite: bool = False, progress: bool = True,
):
    """Prepare a folder of labelled PLY files (see the module doc) into ``out``. Returns a PrepareReport.

    Splits: ``splits_dir`` (``<split>.txt`` lists) if given, else the sub-folder names, else all
    scenes in ``train``.
    """
    from pcseg.data.prepare import SceneJob, finish_dataset, prepare_scenes

    raw, out = Path(raw), Path(out)
    class_map = read_classes_file(classes_file)
    scenes = find_scenes(raw)
    if splits_dir is not None:
        splits: dict[str, list[str]] = {}
        for path in sorted(Path(splits_dir).glob("*.txt")):
            splits[path.stem] = [s.strip() for s in path.read_text().splitlines() if s.strip()]
        if not splits:
            raise DataError(splits_dir, "no split lists (<split>.txt) found")
    else:
        splits = {}
        for scene, (split, _) in scenes.items():
            splits.setdefault(split or "train", []).append(scene)
    listed = list(dict.fromkeys(s for names in splits.values() for s in names))
    jobs = [SceneJob(s, read_scene, (scenes[s][1], class_map)) for s in listed if s in scenes]
    report = prepare_scenes(out, jobs, workers=workers, overwrite=overwrite, progress=progress, desc=f"prepare {name}")
    report.missing = {split: [s for s in names if s not in scenes] for split, names in splits.items()}
    finish_dataset(out, name, class_map, splits, report, source=str(raw.resolve()), classes_file=str(Path(classes_file).resolve()))
    return report
