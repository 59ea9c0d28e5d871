"""Score every training point of a round and select the queries (HPAL §17.2-17.4) in bounded memory.

Inputs per scene are arrays or memory-mapped ``.npy`` files: coordinates (N, 3), probabilities
(N, C) and point features (N, D). Scenes are scored one at a time (HMMU is per scene), only the
(N_total,) float64 score vector is global, and the features are read only for the candidates the
selection walk looks at. For S3DIS at 4 cm (~20 M points) this peaks around 1 GB
(benchmarks/results/hmmu.md).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pcseg.active.selection import PerSceneArrays, Ranking, SelectionResult, select_points
from pcseg.active.strategies import Strategy

#: loads an array lazily (e.g. ``np.load(path, mmap_mode="r")``)
ArraySource = Callable[[], np.ndarray]


@dataclass
class PoolScene:
    """One training scene as the selection sees it.

    Arrays are given as loaders (called when needed, not kept open) so that a pool of thousands of
    scenes never holds thousands of memory maps; a plain array works too.

    Attributes:
        name: scene name.
        coord: (N, 3) coordinates, or a loader of them.
        labelled: (N,) bool, points labelled before this round.
        probs: loader of the (N, C) probabilities (None for strategies without a network).
        feats: loader of the (N, D) features (needed with FDS).
    """

    name: str
    coord: np.ndarray | ArraySource
    labelled: np.ndarray
    probs: ArraySource | None = None
    feats: ArraySource | None = None

    @property
    def num_points(self) -> int:
        return int(self.labelled.shape[0])

    def load_coord(self) -> np.ndarray:
        return self.coord() if callable(self.coord) else self.coord


@dataclass
class Selection:
    """This round's queries, in pick order.

    Attributes:
        scenes: scene names of the pool, in pool order.
        scene_index: (B,) index into ``scenes`` of each pick.
        point_index: (B,) point index inside its scene.
        score: (B,) the strategy's score of each pick.
        result: walk statistics.
    """

    scenes: list[str]
    scene_index: np.ndarray
    point_index: np.ndarray
    score: np.ndarray
    result: SelectionResult

    def by_scene(self) -> dict[str, np.ndarray]:
        """scene -> picked point indices (pick order), only scenes with picks."""
        out: dict[str, np.ndarray] = {}
        for s in np.unique(self.scene_index):
            out[self.scenes[int(s)]] = self.point_index[self.scene_index == s].astype(np.int64)
        return out


def score_pool(scenes: Sequence[PoolScene], strategy: Strategy, threads: int = 1, progress: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Scores of all points of all scenes.

    Returns:
        scores (N_total,) float64 in pool order, and offsets (S+1,) int64.
    """
    offsets = np.zeros(len(scenes) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([s.num_points for s in scenes])
    scores = np.empty(int(offsets[-1]), dtype=np.float64)

    def one(i: int) -> None:
        sc = scenes[i]
        probs = None
        if strategy.needs_probs:
            if sc.probs is None:
                raise ValueError(f"strategy {strategy.name} needs probabilities for scene {sc.name}")
            probs = np.asarray(sc.probs(), dtype=np.float32)
            if probs.shape[0] != sc.num_points:
                raise ValueError(f"scene {sc.name}: {probs.shape[0]} probability rows for {sc.num_points} points")
        coord = np.asarray(sc.load_coord())
        if coord.shape[0] != sc.num_points:
            raise ValueError(f"scene {sc.name}: {coord.shape[0]} coordinates for {sc.num_points} points")
        s = strategy.score(sc.name, coord, probs)
        scores[offsets[i] : offsets[i + 1]] = s

    indices = range(len(scenes))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="scoring", leave=False)
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, indices))
    else:
        for i in indices:
            one(i)
    return scores, offsets


def select_from_pool(
    scenes: Sequence[PoolScene],
    strategy: Strategy,
    budget: int,
    fds: bool,
    radius: float = 0.2,
    cosine: float = 0.8,
    threads: int = 1,
    progress: bool = False,
) -> Selection:
    """Score the pool, rank globally and walk the ranking with the budget (and FDS)."""
    t0 = time.perf_counter()
    scores, offsets = score_pool(scenes, strategy, threads=threads, progress=progress)
    sel = select_from_scores(scenes, scores, offsets, budget, fds, radius=radius, cosine=cosine)
    sel.result.stats.update(seconds_scoring=time.perf_counter() - t0 - sel.result.stats["seconds_selection"])
    return sel


def select_from_scores(
    scenes: Sequence[PoolScene],
    scores: np.ndarray,
    offsets: np.ndarray,
    budget: int,
    fds: bool,
    radius: float = 0.2,
    cosine: float = 0.8,
) -> Selection:
    """Rank already computed scores globally and walk the ranking with the budget (and FDS).

    Split from scoring so that scores computed elsewhere (e.g. scene shards scored by several
    processes and gathered) go through the very same ranking and walk.

    Args:
        scenes: the whole pool, in pool order (FDS reads coordinates/features of any scene).
        scores: (N_total,) float64 scores in pool order (lower = asked first).
        offsets: (S+1,) int64 start of every scene in ``scores``.
    """
    t1 = time.perf_counter()
    order = Ranking(scores, first_chunk=max(4 * budget, 1 << 16))
    labelled = np.concatenate([np.asarray(s.labelled, dtype=bool) for s in scenes]) if scenes else np.zeros(0, bool)
    coords = features = None
    if fds:
        missing = [s.name for s in scenes if s.feats is None]
        if missing:
            raise ValueError(f"FDS needs point features; none for {', '.join(missing[:3])}")
        sizes = [s.num_points for s in scenes]
        coords = PerSceneArrays([s.coord for s in scenes], sizes, dtype=np.float64)
        features = PerSceneArrays([s.feats for s in scenes], sizes, dtype=np.float32)  # type: ignore[misc]
    res = select_points(order, offsets, labelled, budget, coords=coords, features=features, radius=radius,
                        cosine=cosine, fds=fds)
    del order
    res.stats.update(seconds_selection=time.perf_counter() - t1)
    sid = np.searchsorted(offsets, res.gids, side="right") - 1
    return Selection(
        scenes=[s.name for s in scenes],
        scene_index=sid.astype(np.int64),
        point_index=(res.gids - offsets[sid]).astype(np.int64),
        score=scores[res.gids],
        result=res,
    )


def npy_loader(path: str | Path) -> ArraySource:
    """A loader that memory-maps ``path`` when called."""
    return lambda: np.load(path, mmap_mode="r")
