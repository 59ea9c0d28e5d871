"""Weak labels: which points of each training scene carry a label (docs/contracts.md §2).

A weak-label file is a ``torch.save`` of ``dict[scene -> int64 point indices]`` — the format of the
official CPCM ``percentage*`` files and the ScanNet / Pointcept limited-annotation ``points*`` files,
so ours and theirs are interchangeable — plus a sidecar ``<file>.json`` with provenance.

Samplers (randomness keyed by (seed, scene), so a scene's labels do not depend on the others):

- :func:`sample_class_even` — for every class c present, max(floor(n_c * p), 1) points drawn among
  the points *of class c*. (CPCM's script draws positions in [0, n_c) and never maps them through
  the class's point indices, which gives unbalanced, duplicated, low-index-biased picks; see
  docs/data.md. Use the shipped files to reproduce the paper, this sampler for new experiments.)
- :func:`sample_uniform` — N points uniformly over the labelled points of the scene (ScanNet
  data-efficient "LA" style).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from pcseg.utils.errors import DataError
from pcseg.utils.rng import numpy_rng

FORMAT = "pcseg-weak-labels-v1"


# --------------------------------------------------------------------------- samplers
def sample_class_even(segment: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Class-even sampling: for each class c present (ids >= 0), max(floor(n_c * ratio), 1) points of class c.

    Args:
        segment: (N,) class ids, negative = unlabelled (never picked).
        ratio: fraction in (0, 1].
        rng: random generator.

    Returns:
        (K,) int64 sorted unique point indices.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    segment = np.asarray(segment)
    labelled = np.flatnonzero(segment >= 0)
    if labelled.size == 0:
        return np.zeros(0, dtype=np.int64)
    cls = segment[labelled].astype(np.int64)
    # Random rank of every point within its class: sort by (class, random key).
    order = np.lexsort((rng.random(labelled.size), cls))
    cls_sorted = cls[order]
    classes, start, counts = np.unique(cls_sorted, return_index=True, return_counts=True)
    quota = np.maximum(np.floor(counts * ratio).astype(np.int64), 1)
    rank = np.arange(labelled.size) - np.repeat(start, counts)
    picked = labelled[order[rank < np.repeat(quota, counts)]]
    return np.sort(picked).astype(np.int64)


def sample_uniform(segment: np.ndarray, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """``num_points`` indices drawn uniformly without replacement among labelled points (all if fewer)."""
    if num_points < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    labelled = np.flatnonzero(np.asarray(segment) >= 0)
    if labelled.size <= num_points:
        return labelled.astype(np.int64)
    return np.sort(rng.choice(labelled, size=num_points, replace=False)).astype(np.int64)


def make_weak_labels(dataset, split: str = "train", ratio: float | None = None, points_per_scene: int | None = None,
                     seed: int = 0, progress: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Sample weak labels for every scene of ``split`` of a prepared dataset.

    Exactly one of ``ratio`` (class-even) or ``points_per_scene`` (uniform) must be given.

    Returns:
        (labels, meta): scene -> sorted int64 indices, and the provenance for the sidecar.
    """
    from tqdm import tqdm

    if (ratio is None) == (points_per_scene is None):
        raise ValueError("give exactly one of ratio or points_per_scene")
    labels: dict[str, np.ndarray] = {}
    skipped = []
    for name in tqdm(dataset.split(split), desc="sample labels", unit="scene", disable=not progress):
        scene = dataset.load(name, mmap=True)
        if scene.segment is None:
            skipped.append(name)
            continue
        rng = numpy_rng(seed, name)
        seg = np.asarray(scene.segment)
        labels[name] = sample_class_even(seg, ratio, rng) if ratio is not None else sample_uniform(seg, points_per_scene, rng)
    meta = {
        "format": FORMAT,
        "dataset": str(Path(dataset.root).resolve()),
        "dataset_name": dataset.name,
        "split": split,
        "seed": seed,
        "sampler": "class_even" if ratio is not None else "uniform",
        "ratio": ratio,
        "points_per_scene": points_per_scene,
        "num_scenes": len(labels),
        "num_points": int(sum(len(v) for v in labels.values())),
        "unlabelled_scenes_skipped": skipped,
    }
    return labels, meta


# --------------------------------------------------------------------------- files
def save(path: str | Path, labels: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> None:
    """Write ``labels`` (torch.save of a dict of int64 numpy arrays) and ``<path>.json`` (provenance)."""
    from pcseg.utils.atomic import atomic_torch_save, atomic_write_json

    clean = {str(k): np.ascontiguousarray(np.asarray(v, dtype=np.int64).reshape(-1)) for k, v in labels.items()}
    atomic_torch_save(clean, path)
    info = dict(meta or {})
    info.setdefault("format", FORMAT)
    info["num_scenes"] = len(clean)
    info["num_points"] = int(sum(len(v) for v in clean.values()))
    atomic_write_json(sidecar_path(path), info)


def sidecar_path(path: str | Path) -> Path:
    return Path(f"{path}.json")


def _numpy_safe_globals() -> list:
    """What numpy arrays need to unpickle under ``weights_only=True`` (no arbitrary code)."""
    import numpy.core.multiarray as ma

    out: list = [ma._reconstruct, np.ndarray, np.dtype]
    try:
        out.append(ma.scalar)
    except AttributeError:  # pragma: no cover
        pass
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return out


def read_index_file(path: str | Path) -> dict[Any, Any]:
    """Unpickle an index file (new-style zip or old-style ``torch.save``) without running code from it."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError) as exc:
        msg = " ".join(str(exc).split())
        if "Weights only load failed" in msg:
            msg = "it holds Python objects other than index arrays, which pcseg refuses to unpickle"
        raise DataError(path, f"not a readable index file (torch.save of a dict of index arrays): {msg[:200]}") from None
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict of scene -> indices, got {type(obj).__name__}")
    return obj


def _as_indices(path: Path, key: Any, value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == bool:  # boolean mask (HPAL style) -> indices
        return np.flatnonzero(arr.reshape(-1)).astype(np.int64)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0)):
        raise DataError(path, f"entry {key!r}: indices must be integers, got dtype {arr.dtype}")
    return arr.reshape(-1).astype(np.int64)


def load(path: str | Path) -> dict[str, np.ndarray]:
    """Read a weak-label file: scene -> int64 indices (as stored; no validation against a dataset)."""
    path = Path(path)
    raw = read_index_file(path)
    return {str(k): _as_indices(path, k, v) for k, v in raw.items()}


def load_meta(path: str | Path) -> dict[str, Any]:
    """The provenance sidecar of a weak-label file ({} if absent)."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        return json.loads(side.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(side, f"not valid JSON ({exc.msg})", line=exc.lineno) from None


# --------------------------------------------------------------------------- official files
S3DIS_CPCM_KEY = re.compile(r"^(Area_\d+)/(.+?)(?:\.pth)?$")
SCANNET_KEY = re.compile(r"^(scene\d{4}_\d{2})(?:\.pth)?$")


def normalise_key(key: str) -> tuple[str, str]:
    """Official key -> (our scene name, key style). ``Area_1/office_2.pth`` -> ``Area_1_office_2``."""
    key = str(key).strip()
    m = S3DIS_CPCM_KEY.match(key)
    if m:
        return f"{m.group(1)}_{m.group(2)}", "cpcm-s3dis"
    m = SCANNET_KEY.match(Path(key).name)
    if m:
        return m.group(1), "scannet"
    return (key[:-4] if key.endswith(".pth") else key), "other"


@dataclass
class ImportResult:
    labels: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)
    duplicates_removed: int = 0
    unknown_scenes: list[str] = field(default_factory=list)
    key_style: str = "other"


def import_official(path: str | Path, dataset, splits: Iterable[str] | None = None) -> ImportResult:
    """Read an official index file and validate it against a prepared dataset.

    Keys are mapped to our scene names; scenes the dataset does not have are dropped (reported);
    indices are checked to lie in [0, num_points); duplicates (the CPCM files have some) are removed.

    Raises:
        DataError: unreadable file, non-integer or out-of-range indices (naming the scene).
    """
    path = Path(path)
    raw = read_index_file(path)
    available: set[str] = set()
    for split in (splits or dataset.splits()):
        available.update(dataset.split(split))
    result = ImportResult(labels={})
    styles = set()
    for key, value in raw.items():
        scene, style = normalise_key(str(key))
        styles.add(style)
        if scene not in available:
            result.unknown_scenes.append(scene)
            continue
        idx = _as_indices(path, key, value)
        n = dataset.num_points(scene)
        bad = (idx < 0) | (idx >= n)
        if bad.any():
            raise DataError(path, f"scene {scene}: {int(bad.sum())} index(es) outside 0..{n - 1} (e.g. {int(idx[bad][0])}); "
                                  "the file does not match this preparation")
        uniq = np.unique(idx)
        result.duplicates_removed += len(idx) - len(uniq)
        result.labels[scene] = uniq.astype(np.int64)
    result.key_style = next(iter(styles)) if len(styles) == 1 else ("mixed" if styles else "other")
    if result.unknown_scenes:
        result.warnings.append(f"{len(result.unknown_scenes)} scene(s) of the file are not in the dataset's splits and were dropped "
                               f"(e.g. {result.unknown_scenes[0]})")
    if result.duplicates_removed:
        result.warnings.append(f"{result.duplicates_removed} duplicate index(es) removed (the official CPCM sampler produces them)")
    if "cpcm-s3dis" in styles:
        result.warnings.append("CPCM's S3DIS indices refer to CPCM's own 1 cm-quantised point order, not to the raw S3DIS points "
                               "that `pcseg prepare s3dis` keeps: the indices are in range but label other points than CPCM's. "
                               "Use them only with data prepared exactly like CPCM, or sample new labels with `pcseg labels make`.")
    return result


# --------------------------------------------------------------------------- statistics
def label_stats(labels: dict[str, np.ndarray], dataset) -> dict[str, Any]:
    """Per-class counts of the labelled points (and scene coverage) for a prepared dataset."""
    num_classes = dataset.num_classes
    per_class = np.zeros(num_classes, dtype=np.int64)
    scenes_with_class = np.zeros(num_classes, dtype=np.int64)
    unlabelled = 0
    duplicates = 0
    total_points = 0
    per_scene = []
    missing = []
    for scene, idx in labels.items():
        if not dataset.has_scene(scene):
            missing.append(scene)
            continue
        s = dataset.load(scene, mmap=True)
        n = s.num_points
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise DataError(dataset.scene_dir(scene), f"weak-label indices outside 0..{n - 1}")
        uniq = np.unique(idx)
        duplicates += len(idx) - len(uniq)
        total_points += n
        per_scene.append(len(uniq))
        if s.segment is None:
            unlabelled += len(uniq)
            continue
        seg = np.asarray(s.segment)[uniq]
        unlabelled += int((seg < 0).sum())
        counts = np.bincount(seg[seg >= 0], minlength=num_classes)
        per_class += counts
        scenes_with_class += counts > 0
    total = int(sum(per_scene))
    return {
        "class_names": list(dataset.class_map.names),
        "per_class": per_class.tolist(),
        "scenes_with_class": scenes_with_class.tolist(),
        "num_scenes": len(per_scene),
        "total": total,
        "ignore_points": unlabelled,
        "duplicates": duplicates,
        "per_scene_mean": float(np.mean(per_scene)) if per_scene else 0.0,
        "per_scene_min": int(min(per_scene)) if per_scene else 0,
        "per_scene_max": int(max(per_scene)) if per_scene else 0,
        "fraction_of_points": total / total_points if total_points else 0.0,
        "missing_scenes": missing,
    }


def format_stats(stats: dict[str, Any]) -> str:
    """A readable table of :func:`label_stats`."""
    lines = [f"{stats['total']} labelled points in {stats['num_scenes']} scenes "
             f"({100 * stats['fraction_of_points']:.4f} % of their points; per scene mean {stats['per_scene_mean']:.1f}, "
             f"min {stats['per_scene_min']}, max {stats['per_scene_max']})"]
    if stats["ignore_points"]:
        lines.append(f"{stats['ignore_points']} of them fall on ignore (-1) points")
    if stats["duplicates"]:
        lines.append(f"{stats['duplicates']} duplicate indices")
    if stats["missing_scenes"]:
        lines.append(f"{len(stats['missing_scenes'])} scene(s) not in the dataset (e.g. {stats['missing_scenes'][0]})")
    total = max(stats["total"] - stats["ignore_points"], 1)
    lines.append(f"{'id':>3}  {'class':<16} {'points':>9} {'share':>7} {'scenes':>7}")
    for i, (name, n, sc) in enumerate(zip(stats["class_names"], stats["per_class"], stats["scenes_with_class"])):
        lines.append(f"{i:>3}  {name:<16} {n:>9} {100 * n / total:>6.2f}% {sc:>7}")
    return "\n".join(lines)
