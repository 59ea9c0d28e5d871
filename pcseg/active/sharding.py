"""Active learning under torchrun: scenes split over ranks, scores gathered on rank 0.

Each process scores the scenes ``i % world_size == rank`` of the pool; rank 0 receives every shard,
puts the scores back in pool order and runs the one global ranking and selection walk. Scores are a
per-scene function (HMMU/entropy/margin of that scene's probabilities, random keyed by the scene
name), so the gathered vector is the one a single process computes, and the selection is identical.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pcseg.active.scoring import PoolScene, score_pool
from pcseg.active.strategies import Strategy


def shard(num_items: int, rank: int, world_size: int) -> list[int]:
    """Indices of the items rank ``rank`` handles: ``i % world_size == rank``."""
    return list(range(rank, num_items, world_size))


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (in rank order), None on the other ranks; ``[obj]`` without a group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def score_pool_sharded(scenes: Sequence[PoolScene], strategy: Strategy, rank: int, world_size: int,
                       threads: int = 1, progress: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """Score this rank's shard of the pool and gather the whole pool's scores on rank 0.

    Collective: every rank must call it. Returns ``(scores (N_total,) float64, offsets (S+1,) int64)``
    in pool order on rank 0 (exactly what ``score_pool`` returns for the whole pool), None elsewhere.
    """
    mine = shard(len(scenes), rank, world_size)
    part, part_offsets = score_pool([scenes[i] for i in mine], strategy, threads=threads, progress=progress)
    pieces = {i: part[part_offsets[j]: part_offsets[j + 1]] for j, i in enumerate(mine)}
    gathered = gather_to_main(pieces) if world_size > 1 else [pieces]
    if gathered is None:
        return None
    offsets = np.zeros(len(scenes) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([s.num_points for s in scenes])
    scores = np.empty(int(offsets[-1]), dtype=np.float64)
    seen = np.zeros(len(scenes), dtype=np.int64)
    for rank_pieces in gathered:
        for i, values in rank_pieces.items():
            if values.shape[0] != offsets[i + 1] - offsets[i]:
                raise RuntimeError(f"scene {scenes[i].name}: {values.shape[0]} scores gathered for "
                                   f"{offsets[i + 1] - offsets[i]} points (ranks disagree on the pool?)")
            scores[offsets[i]: offsets[i + 1]] = values
            seen[i] += 1
    if not (seen == 1).all():
        bad = [scenes[i].name for i in np.flatnonzero(seen != 1)[:3]]
        raise RuntimeError(f"scenes scored {sorted(set(seen.tolist()))} times across ranks, e.g. {', '.join(bad)}")
    return scores, offsets
