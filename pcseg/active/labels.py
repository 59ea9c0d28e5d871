"""Label sets of an active-learning run: which points were asked, and what the annotator answered.

A :class:`LabelSet` maps scene -> (point indices, answered labels). It is stored as one ``.npz``
written atomically (flat arrays, so scene names need no escaping), and exported in the weak-label
format of ``pcseg.data.weak_labels`` (scene -> indices, docs/contracts.md §2) so that any round's
labels can be reused with ``pcseg train ... data.weak_labels=<file>``.

A point answered with ``-1`` (the annotator could not tell, or the ground truth is "unannotated")
counts as asked: it is never asked again and trains as ignore.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from pcseg.utils.atomic import atomic_write_bytes
from pcseg.utils.errors import DataError
from pcseg.utils.rng import numpy_rng

FORMAT_VERSION = 1


@dataclass
class LabelSet:
    """scene -> sorted unique point indices and their labels (aligned).

    Attributes:
        indices: scene -> (K,) int64 sorted point indices.
        labels: scene -> (K,) int32 answered class ids (-1 = asked, no usable answer).
    """

    indices: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return int(sum(v.shape[0] for v in self.indices.values()))

    def scene_count(self, scene: str) -> int:
        return int(self.indices.get(scene, np.zeros(0)).shape[0])

    def mask(self, scene: str, num_points: int) -> np.ndarray:
        """(num_points,) bool, True where the point was asked."""
        m = np.zeros(num_points, dtype=bool)
        idx = self.indices.get(scene)
        if idx is not None and idx.size:
            if int(idx.max()) >= num_points:
                raise DataError(scene, f"label set has point index {int(idx.max())} but the scene has {num_points} points")
            m[idx] = True
        return m

    def weak_labels(self) -> dict[str, np.ndarray]:
        """The weak-label dict (scene -> int64 indices) the training data layer reads."""
        return {s: v.astype(np.int64) for s, v in self.indices.items() if v.size}

    def class_histogram(self, num_classes: int) -> np.ndarray:
        """(C+1,) counts of answered classes; the last bin counts -1 answers."""
        hist = np.zeros(num_classes + 1, dtype=np.int64)
        for lab in self.labels.values():
            hist[:num_classes] += np.bincount(lab[lab >= 0], minlength=num_classes)[:num_classes]
            hist[num_classes] += int((lab < 0).sum())
        return hist

    # ------------------------------------------------------------------ updates
    def union(self, answers: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> "LabelSet":
        """A new set with ``answers`` (scene -> (indices, labels)) added.

        Raises:
            ValueError: an answered point is already in the set, or is answered twice — either would
                mean a label was asked twice.
        """
        out = LabelSet(dict(self.indices), dict(self.labels))
        for scene, (idx, lab) in answers.items():
            idx = np.asarray(idx, dtype=np.int64)
            lab = np.asarray(lab, dtype=np.int32)
            if idx.shape != lab.shape:
                raise ValueError(f"scene {scene}: {idx.shape[0]} indices but {lab.shape[0]} labels")
            if np.unique(idx).shape[0] != idx.shape[0]:
                raise ValueError(f"scene {scene}: a point is answered twice")
            old_idx = out.indices.get(scene, np.zeros(0, np.int64))
            if np.intersect1d(old_idx, idx).size:
                raise ValueError(f"scene {scene}: {np.intersect1d(old_idx, idx).size} point(s) were already labelled")
            all_idx = np.concatenate([old_idx, idx])
            all_lab = np.concatenate([out.labels.get(scene, np.zeros(0, np.int32)), lab])
            order = np.argsort(all_idx, kind="stable")
            out.indices[scene], out.labels[scene] = all_idx[order], all_lab[order]
        return out

    # ------------------------------------------------------------------ storage
    def save(self, path: str | Path, meta: dict | None = None) -> None:
        """Write atomically as ``.npz`` (flat arrays)."""
        scenes = sorted(self.indices)
        counts = np.array([self.indices[s].shape[0] for s in scenes], dtype=np.int64)
        buf = io.BytesIO()
        np.savez(
            buf,
            format_version=np.array(FORMAT_VERSION),
            scenes=np.array(scenes, dtype=np.str_),
            counts=counts,
            index=np.concatenate([self.indices[s] for s in scenes]) if scenes else np.zeros(0, np.int64),
            label=np.concatenate([self.labels[s] for s in scenes]) if scenes else np.zeros(0, np.int32),
            meta=np.array(_json(meta or {})),
        )
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "LabelSet":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format_version"]) != FORMAT_VERSION:
                    raise DataError(path, f"label-set format {int(z['format_version'])}, this pcseg reads {FORMAT_VERSION}")
                scenes, counts = [str(s) for s in z["scenes"]], z["counts"]
                index, label = z["index"].astype(np.int64), z["label"].astype(np.int32)
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise DataError(path, f"unreadable label set ({exc})") from None
        if counts.sum() != index.shape[0] or index.shape != label.shape:
            raise DataError(path, "label set is inconsistent (counts do not match the arrays)")
        bounds = np.concatenate([[0], np.cumsum(counts)])
        out = cls()
        for s, a, b in zip(scenes, bounds[:-1], bounds[1:]):
            out.indices[s], out.labels[s] = index[a:b], label[a:b]
        return out

    def save_weak_labels(self, path: str | Path, meta: dict) -> None:
        """Export as a weak-label file (``pcseg.data.weak_labels`` format) for ``pcseg train``."""
        from pcseg.data import weak_labels

        weak_labels.save(path, self.weak_labels(), meta)


def _json(obj: dict) -> str:
    import json

    return json.dumps(obj, sort_keys=True, default=str)


def initial_selection(
    scenes: Iterable[tuple[str, int]],
    seed: int,
    percent: float | None = None,
    points_per_scene: int | None = None,
) -> dict[str, np.ndarray]:
    """HPAL's initial labels: per scene, ``round(N * percent / 100)`` (or a fixed number of) points
    chosen uniformly at random, keyed by ``(seed, scene)`` so the choice does not depend on scene order.

    Args:
        scenes: (name, number of points) pairs.
        seed: run seed.
        percent: percentage of each scene's points (HPAL: 0.02).
        points_per_scene: fixed count instead of ``percent``.

    Returns:
        scene -> sorted int64 point indices (scenes with no pick omitted).
    """
    if (percent is None) == (points_per_scene is None):
        raise ValueError("give exactly one of percent and points_per_scene")
    out: dict[str, np.ndarray] = {}
    for name, n in scenes:
        k = int(points_per_scene) if points_per_scene is not None else int(round(n * float(percent) / 100.0))
        k = min(max(k, 0), n)
        if k == 0:
            continue
        pick = numpy_rng(seed, "al_init", name).permutation(n)[:k]
        out[name] = np.sort(pick).astype(np.int64)
    return out
