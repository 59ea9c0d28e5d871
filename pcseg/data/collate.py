"""Batch collation with offsets (docs/contracts.md §3).

Voxels of all scenes are concatenated; ``coords`` gets the batch index as its first column and
``offset`` holds the cumulative voxel counts (Pointcept style). Per-point arrays (``inverse``,
``point_segment``) are concatenated too, with ``inverse`` turned into global voxel rows (-1 kept)
and ``point_offset`` the cumulative point counts. Two-view samples give one batch per view plus the
correspondences in global rows.

``limit_numpoints`` reproduces CPCM's cap: scenes are added in order until the next one would push
the voxel count (both views together) over the limit; that scene and all after it are left out (the
first scene is always kept). Their names are listed in ``dropped``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _collate_views(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    import torch

    counts = np.array([len(s["point_index"]) for s in samples], dtype=np.int64)
    npoints = np.array([len(s["inverse"]) for s in samples], dtype=np.int64)
    voxel_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    coords = np.concatenate([
        np.concatenate([np.full((c, 1), b, dtype=np.int32), s["grid_coord"].astype(np.int32)], axis=1)
        for b, (s, c) in enumerate(zip(samples, counts))
    ]) if samples else np.zeros((0, 4), dtype=np.int32)
    inverse = np.concatenate([np.where(s["inverse"] >= 0, s["inverse"] + start, -1) for s, start in zip(samples, voxel_start)])
    batch = {
        "coords": torch.from_numpy(coords),
        "feat": torch.from_numpy(np.concatenate([s["feat"] for s in samples]).astype(np.float32)),
        "segment": torch.from_numpy(np.concatenate([s["segment"] for s in samples]).astype(np.int64)),
        "coord": torch.from_numpy(np.concatenate([s["coord"] for s in samples]).astype(np.float32)),
        "point_index": torch.from_numpy(np.concatenate([s["point_index"] for s in samples]).astype(np.int64)),
        "offset": torch.from_numpy(np.cumsum(counts)),
        "inverse": torch.from_numpy(inverse.astype(np.int64)),
        "point_offset": torch.from_numpy(np.cumsum(npoints)),
        "scene": [s["scene"] for s in samples],
    }
    if all("point_segment" in s for s in samples):
        batch["point_segment"] = torch.from_numpy(np.concatenate([s["point_segment"] for s in samples]).astype(np.int64))
    return batch


def collate(samples: Sequence[dict[str, Any]], limit_numpoints: int | None = None) -> dict[str, Any]:
    """Collate single-view or two-view samples into a batch of torch tensors."""
    import torch

    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    two_view = "view1" in samples[0]
    kept = list(samples)
    dropped: list[str] = []
    if limit_numpoints is not None:
        total = 0
        kept = []
        for i, s in enumerate(samples):
            n = len(s["view1"]["point_index"]) + len(s["view2"]["point_index"]) if two_view else len(s["point_index"])
            if kept and total + n > limit_numpoints:
                dropped = [r["view1"]["scene"] if two_view else r["scene"] for r in samples[i:]]
                break
            kept.append(s)
            total += n
    if not two_view:
        batch = _collate_views(kept)
        batch["dropped"] = dropped
        return batch
    v1 = _collate_views([s["view1"] for s in kept])
    v2 = _collate_views([s["view2"] for s in kept])
    start1 = np.concatenate([[0], v1["offset"].numpy()[:-1]])
    start2 = np.concatenate([[0], v2["offset"].numpy()[:-1]])
    corr = np.concatenate([s["corr"] + np.array([a, b]) for s, a, b in zip(kept, start1, start2)]).astype(np.int64)
    return {
        "view1": v1,
        "view2": v2,
        "corr": torch.from_numpy(corr.reshape(-1, 2)),
        "corr_offset": torch.from_numpy(np.cumsum([len(s["corr"]) for s in kept]).astype(np.int64)),
        "dropped": dropped,
    }


class Collator:
    """Picklable ``collate_fn`` for ``torch.utils.data.DataLoader`` with a fixed ``limit_numpoints``."""

    def __init__(self, limit_numpoints: int | None = None):
        self.limit_numpoints = limit_numpoints

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate(samples, self.limit_numpoints)
