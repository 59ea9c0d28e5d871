"""Global ranking, budget, and feature-distance suppression (FDS) — HPAL's ``active_chose`` (§17.3-17.4).

The reference behaviour walks every training point in ascending score order and

1. skips a point that is already labelled;
2. skips it if a point *picked in this round* in the *same scene* lies closer than ``radius`` (0.2 m)
   and has feature cosine similarity above ``cosine`` (0.8);
3. otherwise picks it, until ``budget`` points are picked.

The official loop compares each candidate with every pick so far (O(B^2) Python). Here candidates are
processed in rank-ordered chunks: per scene, a k-d tree finds (a) candidates near earlier picks and
(b) close candidate pairs inside the chunk, cosine similarities are computed for those pairs only,
and the in-order greedy rule ("picked iff no earlier *picked* neighbour") is resolved for the whole
chunk at once by a few vectorised sweeps. The result is the same list, in the same order, as the naive
loop (``tests/active/test_selection.py`` checks this against a literal re-implementation).

Points are addressed by *global ids*: the concatenation of the scenes in pool order, so scene ``s``
owns ids ``offsets[s]:offsets[s+1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from pcseg.utils.errors import ConfigError

#: gather(global_ids (K,)) -> (K, D) array
Gather = Callable[[np.ndarray], np.ndarray]


def budget_from_percent(total_points: int, percent: float) -> int:
    """Points per round: ``round(total * percent / 100)`` with Python's rounding (as HPAL does)."""
    if percent < 0:
        raise ConfigError(f"al.budget_percent must be >= 0, got {percent}")
    return int(round(total_points * percent / 100.0))


def rank_points(scores: np.ndarray) -> np.ndarray:
    """Global ids in ascending score order; ties keep pool order (stable), NaN scores last.

    The official code uses numpy's default (unstable) argsort, whose tie order is arbitrary; a
    stable sort makes the ranking reproducible. :class:`Ranking` gives the same order lazily.
    """
    return np.argsort(np.asarray(scores), kind="stable")


class Ranking:
    """The order of :func:`rank_points`, materialised only as far as it is read.

    A selection walk reads a few budgets' worth of the ranking, not all of it: sorting 20 M scores
    costs seconds, selecting the smallest k with ``np.partition`` and sorting only those costs a
    fraction of that. ``ranking[a:b]`` equals ``rank_points(scores)[a:b]`` exactly (ties at a chunk
    boundary are all taken into the same chunk, so their pool order is kept).

    Args:
        scores: (N,) scores, lower first.
        first_chunk: how many ids to materialise at the first read (at least).
    """

    def __init__(self, scores: np.ndarray, first_chunk: int = 1 << 16):
        self.scores = np.asarray(scores)
        self.first_chunk = int(first_chunk)
        self._parts: list[np.ndarray] = []
        self._have = 0
        self._threshold: float | None = None  # every non-NaN score <= threshold is materialised
        self._complete = False

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    def _extend(self, need: int) -> None:
        while self._have < need and not self._complete:
            finite = ~np.isnan(self.scores)
            if self._threshold is not None:
                finite &= self.scores > self._threshold
            cand = np.flatnonzero(finite)
            k = max(need - self._have, self._have, self.first_chunk)
            vals = self.scores[cand]
            if k < cand.shape[0]:
                v = np.partition(vals, k - 1)[k - 1]
                take = vals <= v
                cand, vals = cand[take], vals[take]
                self._threshold = float(v)
            else:
                self._complete = True
            part = cand[np.argsort(vals, kind="stable")]
            if self._complete:
                part = np.concatenate([part, np.flatnonzero(np.isnan(self.scores))])
            self._parts.append(part.astype(np.int64))
            self._have += part.shape[0]
        if len(self._parts) > 1:
            self._parts = [np.concatenate(self._parts)]

    def __getitem__(self, sl: slice) -> np.ndarray:
        if not isinstance(sl, slice) or sl.step not in (None, 1):
            raise TypeError("a Ranking is read in contiguous slices")
        stop = len(self) if sl.stop is None else min(int(sl.stop), len(self))
        self._extend(stop)
        return self._parts[0][sl] if self._parts else np.zeros(0, dtype=np.int64)


class PerSceneArrays:
    """Rows of per-scene arrays addressed by global id.

    Args:
        sources: one (N_s, D) array per scene, in pool order, or a loader returning it (e.g. a
            memory-map opener): loaders are called per gather and not kept open, so thousands of
            scenes never hold thousands of file descriptors.
        sizes: N_s per scene (required when ``sources`` holds loaders).
        dtype: dtype of the gathered rows.
    """

    def __init__(self, sources: Sequence[np.ndarray | Callable[[], np.ndarray]], sizes: Sequence[int] | None = None,
                 dtype=np.float64):
        self.sources = list(sources)
        if sizes is None:
            sizes = [np.asarray(a).shape[0] for a in self.sources]  # type: ignore[arg-type]
        self.offsets = np.zeros(len(self.sources) + 1, dtype=np.int64)
        self.offsets[1:] = np.cumsum(sizes)
        self.dtype = dtype

    def _array(self, s: int) -> np.ndarray:
        src = self.sources[s]
        return src() if callable(src) else src

    def __call__(self, gids: np.ndarray) -> np.ndarray:
        gids = np.asarray(gids, dtype=np.int64)
        sid = np.searchsorted(self.offsets, gids, side="right") - 1
        order = np.argsort(sid, kind="stable")
        bounds = np.searchsorted(sid[order], np.arange(len(self.sources) + 1))
        out: np.ndarray | None = None
        for s in np.unique(sid):
            rows = order[bounds[s] : bounds[s + 1]]
            local = gids[rows] - self.offsets[s]
            arr = self._array(int(s))
            if out is None:
                out = np.empty((gids.shape[0], arr.shape[1]), dtype=self.dtype)
            # memmaps read fastest with sorted indices
            srt = np.argsort(local, kind="stable")
            out[rows[srt]] = np.asarray(arr[local[srt]], dtype=self.dtype)
            del arr
        return out if out is not None else np.empty((0, 0), dtype=self.dtype)


@dataclass
class SelectionResult:
    """Picked points in pick order, plus how the walk went.

    Attributes:
        gids: (B',) picked global ids, in the order they were picked (B' <= budget).
        visited: how many ranked points were looked at.
        skipped_labelled: how many of those were already labelled.
        suppressed: how many were suppressed by FDS.
    """

    gids: np.ndarray
    visited: int = 0
    skipped_labelled: int = 0
    suppressed: int = 0
    chunks: int = 0
    stats: dict = field(default_factory=dict)


def _cosine(fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; NaN for a zero vector (so it never suppresses, as in HPAL)."""
    fa = np.asarray(fa, dtype=np.float64)
    fb = np.asarray(fb, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        na = np.sqrt(np.einsum("ij,ij->i", fa, fa))
        nb = np.sqrt(np.einsum("ij,ij->i", fb, fb))
        return np.einsum("ij,ij->i", fa, fb) / (na * nb)


def _greedy_in_order(n: int, src: np.ndarray, dst: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """Resolve "node j is picked iff not pre-rejected and no picked node i < j is linked to j".

    Args:
        n: number of nodes (chunk candidates in rank order).
        src, dst: (E,) edges with src < dst (a close, similar pair).
        rejected: (n,) bool, nodes already suppressed by earlier picks.

    Returns:
        (n,) bool picked mask — exactly what a sequential walk over 0..n-1 produces.
    """
    state = np.zeros(n, dtype=np.int8)  # 0 undecided, 1 picked, 2 rejected
    state[rejected] = 2
    if src.size == 0:
        state[state == 0] = 1
        return state == 1
    for _ in range(64):
        undecided = state == 0
        if not undecided.any():
            return state == 1
        # a picked predecessor rejects
        hit = np.zeros(n, dtype=bool)
        hit[dst[state[src] == 1]] = True
        state[undecided & hit] = 2
        # no undecided predecessor left (and none picked): picked
        blocked = np.zeros(n, dtype=bool)
        blocked[dst[state[src] == 0]] = True
        state[(state == 0) & ~blocked] = 1
    # long dependency chains: finish sequentially over the CSR adjacency (rare)
    order = np.argsort(dst, kind="stable")
    s_sorted, d_sorted = src[order], dst[order]
    starts = np.searchsorted(d_sorted, np.arange(n + 1))
    for j in np.flatnonzero(state == 0):
        preds = s_sorted[starts[j] : starts[j + 1]]
        state[j] = 2 if (state[preds] == 1).any() else 1
    return state == 1


def select_points(
    order: np.ndarray | Ranking,
    offsets: np.ndarray,
    labelled: np.ndarray,
    budget: int,
    coords: Gather | None = None,
    features: Gather | None = None,
    radius: float = 0.2,
    cosine: float = 0.8,
    fds: bool = True,
    min_chunk: int = 1024,
    max_chunk: int = 1 << 18,
) -> SelectionResult:
    """Walk the ranking and pick ``budget`` points (HPAL ``active_chose``).

    Args:
        order: (N_total,) global ids in rank order (``rank_points``, or a lazy :class:`Ranking`).
        offsets: (S+1,) cumulative point counts of the scenes.
        labelled: (N_total,) bool, points labelled before this round (never picked again).
        budget: points to pick.
        coords: gather of (K, 3) coordinates (required when ``fds``).
        features: gather of (K, D) features (required when ``fds``).
        radius: FDS distance threshold in metres (strict ``<``).
        cosine: FDS cosine-similarity threshold (strict ``>``).
        fds: apply feature-distance suppression.
        min_chunk, max_chunk: bounds of the candidate chunk size.

    Returns:
        The picks in pick order and walk statistics.
    """
    if not isinstance(order, Ranking):
        order = np.asarray(order, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if labelled.shape[0] != offsets[-1] or order.shape[0] != offsets[-1]:
        raise ValueError("order, labelled and offsets disagree on the number of points")
    if fds and (coords is None or features is None):
        raise ValueError("FDS needs coordinates and features")
    picks: list[np.ndarray] = []
    n_picked, pos, chunks = 0, 0, 0
    skipped_labelled = suppressed = 0
    # this round's picks per scene: coordinates and features (for suppression of later chunks)
    pick_xyz: dict[int, list[np.ndarray]] = {}
    pick_feat: dict[int, list[np.ndarray]] = {}
    chunk = min_chunk
    while n_picked < budget and pos < order.shape[0]:
        remaining = budget - n_picked
        size = int(min(max(chunk, 2 * remaining), max_chunk))
        cand = order[pos : pos + size]
        chunks += 1
        is_lab = labelled[cand]
        cand_free = cand[~is_lab]
        if not fds:
            take = cand_free[:remaining]
            picks.append(take)
            n_picked += take.shape[0]
            if take.shape[0] == remaining and take.shape[0] > 0:
                last = int(np.flatnonzero(cand == take[-1])[0])
                skipped_labelled += int(is_lab[: last + 1].sum())
                pos += last + 1
            else:
                skipped_labelled += int(is_lab.sum())
                pos += cand.shape[0]
            continue

        from scipy.spatial import cKDTree

        k = cand_free.shape[0]
        xyz = np.asarray(coords(cand_free), dtype=np.float64)
        feat = np.asarray(features(cand_free))
        sid = np.searchsorted(offsets, cand_free, side="right") - 1
        rejected = np.zeros(k, dtype=bool)
        src_all, dst_all = [], []
        by_scene = np.argsort(sid, kind="stable")  # rank order kept inside each scene
        bounds = np.searchsorted(sid[by_scene], np.unique(sid), side="left").tolist() + [k]
        for b0, b1 in zip(bounds[:-1], bounds[1:]):
            rows = by_scene[b0:b1]
            s = int(sid[rows[0]])
            tree_c = cKDTree(xyz[rows])
            if s in pick_xyz:
                pxyz = np.concatenate(pick_xyz[s])
                pfeat = np.concatenate(pick_feat[s])
                pairs = tree_c.sparse_distance_matrix(cKDTree(pxyz), radius, output_type="ndarray")
                if pairs.size:
                    ci, pj = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
                    d = np.linalg.norm(xyz[rows[ci]] - pxyz[pj], axis=1)
                    close = (d < radius) & (_cosine(feat[rows[ci]], pfeat[pj]) > cosine)
                    rejected[rows[ci[close]]] = True
            if rows.shape[0] > 1:
                pairs = tree_c.query_pairs(radius, output_type="ndarray")
                if pairs.size:
                    a, b = rows[pairs[:, 0]], rows[pairs[:, 1]]
                    d = np.linalg.norm(xyz[a] - xyz[b], axis=1)
                    close = (d < radius) & (_cosine(feat[a], feat[b]) > cosine)
                    a, b = a[close], b[close]
                    src_all.append(np.minimum(a, b))
                    dst_all.append(np.maximum(a, b))
        src = np.concatenate(src_all) if src_all else np.zeros(0, dtype=np.int64)
        dst = np.concatenate(dst_all) if dst_all else np.zeros(0, dtype=np.int64)
        picked = np.flatnonzero(_greedy_in_order(k, src, dst, rejected))[:remaining]
        take = cand_free[picked]
        picks.append(take)
        n_picked += take.shape[0]
        for s in np.unique(sid[picked]):
            m = picked[sid[picked] == s]
            pick_xyz.setdefault(int(s), []).append(xyz[m])
            pick_feat.setdefault(int(s), []).append(feat[m])
        if take.shape[0] == remaining and take.shape[0] > 0:
            # the walk stops at the last pick: count only what it looked at
            last_free = int(picked[-1])
            last = int(np.flatnonzero(cand == cand_free[last_free])[0])
            skipped_labelled += int(is_lab[: last + 1].sum())
            suppressed += last_free + 1 - take.shape[0]
            pos += last + 1
        else:
            skipped_labelled += int(is_lab.sum())
            suppressed += k - take.shape[0]
            pos += cand.shape[0]
            # heavy suppression: grow the chunk so the next one holds enough survivors
            chunk = min(max_chunk, chunk * 2 if take.shape[0] < remaining // 2 else chunk)
    gids = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    return SelectionResult(gids=gids, visited=pos, skipped_labelled=skipped_labelled, suppressed=suppressed,
                           chunks=chunks)
