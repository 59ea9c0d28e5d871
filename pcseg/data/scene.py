"""The prepared scene format: one folder of ``.npy`` arrays per scene (see docs/contracts.md §1).

```
<root>/dataset.json                 name, class map, ignore index, format version
<root>/splits/<split>.txt           scene names, one per line
<root>/scenes/<scene>/coord.npy     float32 (N, 3) metres
                      color.npy     uint8   (N, 3) RGB
                      segment.npy   int32   (N,)   class id or -1 (absent for unlabelled scenes)
                      instance.npy  int32   (N,)   instance id or -1
                      meta.json     scene name, point count, provenance
```
Scenes are written atomically (a crash leaves either no folder or a complete one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pcseg.data.classes import IGNORE_INDEX, ClassMap, get_class_map, make_custom_class_map
from pcseg.utils.atomic import atomic_directory, atomic_write_json, atomic_write_text
from pcseg.utils.errors import DataError

FORMAT_VERSION = 1
SCENE_ARRAYS = ("coord", "color", "segment", "instance")


@dataclass
class Scene:
    """One scan.

    Attributes:
        name: scene name (folder name).
        coord: (N, 3) float32 xyz in metres.
        color: (N, 3) uint8 RGB.
        segment: (N,) int32 class ids, -1 = ignore; None for unlabelled scenes.
        instance: (N,) int32 instance ids, -1 = none; None if unknown.
        meta: free-form provenance (source files, counts).
    """

    name: str
    coord: np.ndarray
    color: np.ndarray
    segment: np.ndarray | None = None
    instance: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_points(self) -> int:
        return int(self.coord.shape[0])

    def validate(self, where: str | Path | None = None) -> "Scene":
        """Check shapes, dtypes and finiteness; raise DataError naming ``where`` (or the scene)."""
        where = where if where is not None else self.name
        n = self.coord.shape[0] if self.coord.ndim == 2 else -1
        if self.coord.ndim != 2 or self.coord.shape[1] != 3:
            raise DataError(where, f"coordinates must have shape (N, 3), got {self.coord.shape}")
        if n == 0:
            raise DataError(where, "scene has no points")
        if not np.isfinite(self.coord).all():
            bad = int((~np.isfinite(self.coord)).any(1).sum())
            raise DataError(where, f"{bad} point(s) have NaN or infinite coordinates")
        if self.color.shape != (n, 3):
            raise DataError(where, f"colors have shape {self.color.shape}, expected ({n}, 3)")
        for key in ("segment", "instance"):
            arr = getattr(self, key)
            if arr is not None and arr.shape != (n,):
                raise DataError(where, f"{key} has shape {arr.shape}, expected ({n},)")
        return self


def write_scene(root: str | Path, scene: Scene) -> Path:
    """Validate and atomically write ``scene`` to ``<root>/scenes/<name>/``; returns that folder."""
    scene.validate()
    final = Path(root) / "scenes" / scene.name
    with atomic_directory(final) as tmp:
        np.save(tmp / "coord.npy", np.ascontiguousarray(scene.coord, dtype=np.float32))
        np.save(tmp / "color.npy", np.ascontiguousarray(scene.color, dtype=np.uint8))
        if scene.segment is not None:
            np.save(tmp / "segment.npy", np.ascontiguousarray(scene.segment, dtype=np.int32))
        if scene.instance is not None:
            np.save(tmp / "instance.npy", np.ascontiguousarray(scene.instance, dtype=np.int32))
        meta = dict(scene.meta)
        meta.update(scene=scene.name, num_points=scene.num_points, has_labels=scene.segment is not None,
                    format_version=FORMAT_VERSION)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return final


def scene_is_complete(folder: str | Path) -> bool:
    """True if a scene folder was fully written (atomic writes make meta.json the last word)."""
    folder = Path(folder)
    return (folder / "meta.json").is_file() and (folder / "coord.npy").is_file()


def load_scene_dir(folder: str | Path, mmap: bool = False) -> Scene:
    """Read one scene folder. ``mmap=True`` memory-maps the arrays (no copy into RAM)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "scene folder does not exist")
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise DataError(meta_path, "missing: the scene was not completely written (re-run `pcseg prepare`)") from None
    except json.JSONDecodeError as exc:
        raise DataError(meta_path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    arrays: dict[str, np.ndarray | None] = {}
    for key in SCENE_ARRAYS:
        path = folder / f"{key}.npy"
        if not path.exists():
            if key in ("coord", "color"):
                raise DataError(path, "missing")
            arrays[key] = None
            continue
        try:
            arrays[key] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(path, f"unreadable .npy file ({exc})") from None
    scene = Scene(name=meta.get("scene", folder.name), meta=meta, **arrays)  # type: ignore[arg-type]
    return scene.validate(folder) if not mmap else scene


class PreparedDataset:
    """A prepared dataset folder (``dataset.json`` + ``splits/`` + ``scenes/``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        info_path = self.root / "dataset.json"
        if not info_path.is_file():
            raise DataError(self.root, "not a prepared dataset (no dataset.json): run `pcseg prepare ...` first")
        try:
            self.info: dict[str, Any] = json.loads(info_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(info_path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if self.info.get("format_version") != FORMAT_VERSION:
            raise DataError(info_path, f"format_version {self.info.get('format_version')!r}, this pcseg reads {FORMAT_VERSION}")
        self.class_map = class_map_from_info(self.info, info_path)

    @property
    def name(self) -> str:
        return str(self.info.get("name", self.root.name))

    @property
    def num_classes(self) -> int:
        return self.class_map.num_classes

    def splits(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "splits").glob("*.txt"))

    def split(self, name: str) -> list[str]:
        path = self.root / "splits" / f"{name}.txt"
        if not path.is_file():
            raise DataError(path, f"no split {name!r} (available: {', '.join(self.splits()) or 'none'})")
        return [s.strip() for s in path.read_text().splitlines() if s.strip()]

    def scene_dir(self, name: str) -> Path:
        return self.root / "scenes" / name

    def has_scene(self, name: str) -> bool:
        return scene_is_complete(self.scene_dir(name))

    def load(self, name: str, mmap: bool = False) -> Scene:
        return load_scene_dir(self.scene_dir(name), mmap=mmap)

    def num_points(self, name: str) -> int:
        meta = json.loads((self.scene_dir(name) / "meta.json").read_text())
        return int(meta["num_points"])


def class_map_from_info(info: dict[str, Any], where: str | Path = "dataset.json") -> ClassMap:
    name = info.get("class_map")
    if not name:
        raise DataError(where, "no 'class_map' entry")
    try:
        cmap = get_class_map(name)
    except KeyError:
        names = info.get("class_names")
        if not names:
            raise DataError(where, f"unknown class map {name!r} and no 'class_names' list") from None
        return make_custom_class_map(list(names), name=name)
    if list(info.get("class_names", cmap.names)) != list(cmap.names):
        raise DataError(where, f"class_names disagree with the built-in class map {name!r}")
    return cmap


def open_dataset(root: str | Path) -> PreparedDataset:
    return PreparedDataset(root)


def write_dataset_info(root: str | Path, name: str, class_map: ClassMap, **extra: Any) -> None:
    info = dict(format_version=FORMAT_VERSION, name=name, class_map=class_map.name,
                class_names=list(class_map.names), ignore_index=IGNORE_INDEX, **extra)
    atomic_write_json(Path(root) / "dataset.json", info)


def write_split(root: str | Path, split: str, scenes: list[str]) -> None:
    atomic_write_text(Path(root) / "splits" / f"{split}.txt", "".join(f"{s}\n" for s in scenes))
