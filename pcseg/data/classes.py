"""Class maps: names, ids, colours, and the raw-id → benchmark-id mappings.

Every label map in pcseg is explicit about the order it uses (the S3DIS order of CPCM is
alphabetical; mmdetection3d's is not), and every stored ``segment`` array uses ``IGNORE_INDEX``
(-1) for points that are unlabelled or of a class outside the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IGNORE_INDEX = -1


@dataclass(frozen=True)
class ClassMap:
    """An ordered list of benchmark classes with a display palette.

    Attributes:
        name: registry name (``scannet20``, ``s3dis13``, or ``custom``).
        names: class names in id order.
        palette: (C, 3) uint8 RGB colour per class.
        ignore_index: the id stored for unlabelled / out-of-benchmark points.
    """

    name: str
    names: tuple[str, ...]
    palette: np.ndarray = field(repr=False, compare=False)
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if self.palette.shape != (len(self.names), 3):
            raise ValueError(f"palette of {self.name} has shape {self.palette.shape}, expected ({len(self.names)}, 3)")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def index(self, class_name: str) -> int:
        try:
            return self.names.index(class_name)
        except ValueError:
            raise KeyError(f"class {class_name!r} is not in {self.name} ({', '.join(self.names)})") from None

    def colorize(self, labels: np.ndarray, ignore_color=(0, 0, 0)) -> np.ndarray:
        """(N,) ids -> (N, 3) uint8 colours; ignore/out-of-range ids get ``ignore_color``."""
        labels = np.asarray(labels)
        out = np.empty((labels.shape[0], 3), dtype=np.uint8)
        out[:] = np.asarray(ignore_color, dtype=np.uint8)
        ok = (labels >= 0) & (labels < self.num_classes)
        out[ok] = self.palette[labels[ok]]
        return out

    def legend(self, present: np.ndarray | None = None) -> str:
        """A text legend ``id name (r,g,b)``, optionally only for the ids in ``present``."""
        ids = range(self.num_classes) if present is None else sorted(int(i) for i in np.unique(present) if 0 <= i < self.num_classes)
        return "\n".join(f"{i:3d}  {self.names[i]:<16} rgb{tuple(int(c) for c in self.palette[i])}" for i in ids)


# --------------------------------------------------------------------------- ScanNet v2 (20 classes)
# Benchmark classes as NYU40 ids, in the order of the ScanNet benchmark / CPCM loader.
SCANNET20_NYU40_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET20 = ClassMap(
    name="scannet20",
    names=(
        "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
        "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
        "bathtub", "otherfurniture",
    ),
    palette=np.array(
        [
            (174, 199, 232), (152, 223, 138), (31, 119, 180), (255, 187, 120), (188, 189, 34),
            (140, 86, 75), (255, 152, 150), (214, 39, 40), (197, 176, 213), (148, 103, 189),
            (196, 156, 148), (23, 190, 207), (247, 182, 210), (219, 219, 141), (255, 127, 14),
            (158, 218, 229), (44, 160, 44), (112, 128, 144), (227, 119, 194), (82, 84, 163),
        ],
        dtype=np.uint8,
    ),
)

_NYU40_TO_SCANNET20 = np.full(41, IGNORE_INDEX, dtype=np.int64)
for _i, _nyu in enumerate(SCANNET20_NYU40_IDS):
    _NYU40_TO_SCANNET20[_nyu] = _i


def nyu40_to_scannet20(nyu40_ids: np.ndarray) -> np.ndarray:
    """Map NYU40 ids (0 = unannotated, 1..40) to the 20 benchmark ids (others -> IGNORE_INDEX).

    Raises:
        ValueError: if an id is outside 0..40.
    """
    ids = np.asarray(nyu40_ids).astype(np.int64)
    bad = (ids < 0) | (ids > 40)
    if bad.any():
        raise ValueError(f"NYU40 ids must be in 0..40; found {np.unique(ids[bad])[:10].tolist()}")
    return _NYU40_TO_SCANNET20[ids]


# --------------------------------------------------------------------------- S3DIS (13 classes)
# CPCM's order: alphabetical over the 14 raw classes with stairs removed.
S3DIS_RAW_CLASSES = (
    "clutter", "beam", "board", "bookcase", "ceiling", "chair", "column", "door", "floor", "sofa",
    "stairs", "table", "wall", "window",
)
S3DIS13 = ClassMap(
    name="s3dis13",
    names=("clutter", "beam", "board", "bookcase", "ceiling", "chair", "column", "door", "floor", "sofa", "table", "wall", "window"),
    palette=np.array(
        [
            (50, 50, 50), (255, 255, 0), (200, 200, 200), (10, 200, 100), (0, 255, 0), (255, 0, 0),
            (255, 0, 255), (200, 200, 100), (0, 0, 255), (200, 100, 100), (170, 120, 200), (0, 255, 255),
            (100, 100, 255),
        ],
        dtype=np.uint8,
    ),
)
# mmdetection3d's S3DIS order (used by ../shared/fixtures): explicit, since it differs from CPCM's.
S3DIS13_MMDET3D_ORDER = (
    "ceiling", "floor", "wall", "beam", "column", "window", "door", "table", "chair", "sofa", "bookcase", "board", "clutter",
)


def s3dis_class_id(raw_name: str) -> int:
    """S3DIS annotation file class name (e.g. ``chair`` of ``chair_3.txt``) -> s3dis13 id.

    ``stairs`` maps to IGNORE_INDEX (as in CPCM). Unknown names raise KeyError.
    """
    if raw_name == "stairs":
        return IGNORE_INDEX
    return S3DIS13.index(raw_name)


def mmdet3d_s3dis_to_s3dis13(ids: np.ndarray) -> np.ndarray:
    """Convert ids in mmdetection3d's S3DIS order to CPCM's (s3dis13) order."""
    lut = np.array([S3DIS13.index(n) for n in S3DIS13_MMDET3D_ORDER], dtype=np.int64)
    ids = np.asarray(ids).astype(np.int64)
    out = np.full(ids.shape, IGNORE_INDEX, dtype=np.int64)
    ok = (ids >= 0) & (ids < len(lut))
    out[ok] = lut[ids[ok]]
    return out


# --------------------------------------------------------------------------- registry
_REGISTRY: dict[str, ClassMap] = {m.name: m for m in (SCANNET20, S3DIS13)}


def register_class_map(class_map: ClassMap) -> None:
    _REGISTRY[class_map.name] = class_map


def get_class_map(name: str) -> ClassMap:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown class map {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def make_custom_class_map(names: list[str], name: str = "custom") -> ClassMap:
    """A class map for user data: colours from a fixed, well-separated palette (cycled)."""
    base = np.concatenate([SCANNET20.palette, S3DIS13.palette])
    palette = base[np.arange(len(names)) % len(base)]
    return ClassMap(name=name, names=tuple(names), palette=palette)
