"""Ranking, budget and feature-distance suppression against hand-placed points and a literal loop."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.active.selection import PerSceneArrays, Ranking, budget_from_percent, rank_points, select_points
from pcseg.utils.errors import ConfigError


def naive_active_chose(order, offsets, labelled, budget, xyz, feat, radius=0.2, cosine=0.8):
    """The reference walk, written as literally as HPAL's loop: compare with every pick so far."""
    labelled = labelled.copy()
    chosen_scene, chosen_xyz, chosen_feat, picked = [], [], [], []
    for g in order:
        if len(picked) >= budget:
            break
        if labelled[g]:
            continue
        s = int(np.searchsorted(offsets, g, side="right") - 1)
        f = feat[g].astype(np.float64)
        skip = False
        for cs, cx, cf in zip(chosen_scene, chosen_xyz, chosen_feat):
            if cs != s:
                continue
            d = np.sqrt(np.sum((xyz[g] - cx) ** 2))
            with np.errstate(invalid="ignore", divide="ignore"):
                cos = np.sum(f / np.sqrt(np.sum(f**2)) * (cf / np.sqrt(np.sum(cf**2))))
            if d < radius and cos > cosine:
                skip = True
                break
        if skip:
            continue
        chosen_scene.append(s)
        chosen_xyz.append(xyz[g])
        chosen_feat.append(f)
        picked.append(g)
        labelled[g] = True
    return np.array(picked, dtype=np.int64)


def run(order, offsets, labelled, budget, xyz, feat, **kw):
    return select_points(order, offsets, labelled, budget, coords=lambda g: xyz[g], features=lambda g: feat[g], **kw)


def test_budget_uses_python_rounding():
    assert budget_from_percent(1_000_000, 0.02) == 200
    assert budget_from_percent(12_500, 0.02) == 2  # 2.5 rounds to even, like HPAL's round()
    assert budget_from_percent(17_500, 0.02) == 4  # 3.5 -> 4
    with pytest.raises(ConfigError):
        budget_from_percent(10, -1)


def test_rank_is_stable_and_puts_nan_last():
    scores = np.array([0.3, 0.1, np.nan, 0.1, 0.0])
    assert rank_points(scores).tolist() == [4, 1, 3, 0, 2]


@pytest.mark.parametrize("first_chunk", [1, 7, 100, 10_000])
def test_lazy_ranking_equals_the_full_stable_sort(first_chunk):
    rng = np.random.default_rng(first_chunk)
    scores = rng.integers(0, 50, 3000).astype(np.float64)  # many ties
    scores[rng.random(3000) < 0.02] = np.nan
    full = rank_points(scores)
    lazy = Ranking(scores, first_chunk=first_chunk)
    got = np.concatenate([lazy[a : a + 37] for a in range(0, 3000, 37)])
    np.testing.assert_array_equal(got, full)
    assert len(lazy) == 3000 and lazy[2990:5000].shape == (10,)
    # a selection walk over the lazy ranking picks what it picks over the full one
    labelled = rng.random(3000) < 0.1
    a = select_points(full, np.array([0, 3000]), labelled, 500, fds=False)
    b = select_points(Ranking(scores, first_chunk), np.array([0, 3000]), labelled, 500, fds=False)
    np.testing.assert_array_equal(a.gids, b.gids)


def hand_scene():
    # one scene; candidates in rank order 0..5
    xyz = np.array(
        [
            [0.0, 0.0, 0.0],  # 0: picked
            [0.1, 0.0, 0.0],  # 1: 0.1 m from 0, cos 0.96 -> suppressed
            [0.0, 0.15, 0.0],  # 2: 0.15 m from 0, cos ~0.6 -> picked (features differ)
            [0.25, 0.0, 0.0],  # 3: 0.15 m from 1 (suppressed, so it does not count), 0.25 m from 0 -> picked
            [0.0, 0.0, 0.199],  # 4: 0.199 m from 0, cos 1 -> suppressed
            [0.0, 0.0, 0.2],  # 5: exactly 0.2 m from 0 (strict <), 0.05 m from 4 (not picked) -> picked
        ]
    )
    feat = np.array(
        [[1.0, 0.0], [1.0, 0.3], [0.6, 0.8], [1.0, 0.0], [2.0, 0.0], [1.0, 0.0]]
    )
    return xyz, feat


def test_fds_on_hand_placed_points():
    xyz, feat = hand_scene()
    offsets = np.array([0, 6])
    order = np.arange(6)
    res = run(order, offsets, np.zeros(6, bool), 10, xyz, feat)
    assert res.gids.tolist() == [0, 2, 3, 5]
    assert res.suppressed == 2 and res.visited == 6
    # without FDS the first points in rank order are taken
    assert select_points(order, offsets, np.zeros(6, bool), 3, fds=False).gids.tolist() == [0, 1, 2]


def test_fds_only_same_scene_and_only_this_rounds_picks_suppress():
    xyz, feat = hand_scene()
    # the same six points again as scene 2: nothing in scene 1 suppresses them
    xyz2, feat2 = np.concatenate([xyz, xyz]), np.concatenate([feat, feat])
    offsets = np.array([0, 6, 12])
    order = np.array([0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11])
    res = run(order, offsets, np.zeros(12, bool), 100, xyz2, feat2)
    assert sorted(res.gids.tolist()) == [0, 2, 3, 5, 6, 8, 9, 11]
    # point 0 labelled in an earlier round: it is skipped but does not suppress point 1
    lab = np.zeros(6, bool)
    lab[0] = True
    res = run(np.arange(6), np.array([0, 6]), lab, 10, xyz, feat)
    # (1 then suppresses 2 and 3; 4 is 0.22 m from 1; 5 sits on 4)
    assert res.gids.tolist() == [1, 4] and res.skipped_labelled == 1


def test_zero_feature_never_suppresses():
    xyz = np.zeros((3, 3))
    feat = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    res = run(np.arange(3), np.array([0, 3]), np.zeros(3, bool), 3, xyz, feat)
    assert res.gids.tolist() == [0, 1, 2]


def test_budget_is_exact_and_walk_stops_at_the_last_pick():
    xyz, feat = hand_scene()
    res = run(np.arange(6), np.array([0, 6]), np.zeros(6, bool), 2, xyz, feat)
    assert res.gids.tolist() == [0, 2]
    assert res.visited == 3 and res.suppressed == 1
    # more budget than candidates: stops short, no duplicates
    res = run(np.arange(6), np.array([0, 6]), np.zeros(6, bool), 50, xyz, feat)
    assert len(set(res.gids.tolist())) == len(res.gids) == 4


@pytest.mark.parametrize("seed,min_chunk", [(0, 16), (1, 64), (2, 1024), (3, 7)])
def test_vectorised_fds_equals_naive_loop(seed, min_chunk):
    rng = np.random.default_rng(seed)
    n_scenes = 4
    sizes = rng.integers(200, 600, size=n_scenes)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n = int(offsets[-1])
    # dense clusters so suppression chains are common; few feature prototypes so cosines are often > 0.8
    xyz = np.concatenate([rng.random((k, 3)) * [1.0, 0.6, 0.3] for k in sizes])
    protos = rng.normal(size=(5, 8))
    feat = (protos[rng.integers(0, 5, n)] + rng.normal(scale=0.5, size=(n, 8))).astype(np.float32)
    scores = rng.random(n)
    order = rank_points(scores)
    labelled = rng.random(n) < 0.05
    budget = 150
    expected = naive_active_chose(order, offsets, labelled, budget, xyz, feat)
    res = run(order, offsets, labelled, budget, xyz, feat, min_chunk=min_chunk)
    np.testing.assert_array_equal(res.gids, expected)
    assert res.suppressed > 0


def test_per_scene_arrays_gather(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    b = np.arange(100, 106, dtype=np.float32).reshape(2, 3)
    np.save(tmp_path / "b.npy", b)
    gather = PerSceneArrays([a, np.load(tmp_path / "b.npy", mmap_mode="r")])
    got = gather(np.array([5, 0, 4, 3]))
    np.testing.assert_array_equal(got, np.stack([b[1], a[0], b[0], a[3]]))
    lazy = PerSceneArrays([lambda: a, lambda: np.load(tmp_path / "b.npy", mmap_mode="r")], sizes=[4, 2])
    np.testing.assert_array_equal(lazy(np.array([5, 0, 4, 3])), got)
