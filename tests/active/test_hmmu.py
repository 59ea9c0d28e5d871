"""HMMU on hand-built scenes whose regions and margins can be worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest

from pcseg.active.hmmu import grid_subsample, hmmu_scores, nearest_centre, region_mean, top2_margin
from pcseg.active.strategies import ACQUISITION, build_strategy


def margin(p):
    s = np.sort(np.asarray(p, dtype=np.float64))
    return s[-1] - s[-2]


def test_top2_margin_rows():
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [0.1, 0.3, 0.6]])
    np.testing.assert_allclose(top2_margin(p), [0.5, 0.0, 0.3])
    assert np.isnan(top2_margin(np.array([[np.nan, np.nan]])))[0]


def test_top2_margin_equals_a_full_sort_with_ties_and_nan():
    rng = np.random.default_rng(5)
    p = rng.integers(0, 4, size=(500, 7)).astype(np.float32) / 4  # many ties
    p[3] = np.nan
    ref = np.sort(p.astype(np.float64), axis=1)
    expected = ref[:, -1] - ref[:, -2]
    got = top2_margin(p)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], atol=0)
    np.testing.assert_allclose(top2_margin(np.array([[0.2, 0.8]])), [0.6], atol=1e-12)


def test_grid_subsample_uses_floor_origin_and_barycentres():
    pts = np.array([[-0.05, 0.0, 0.0], [-0.01, 0.0, 0.0], [0.02, 0.0, 0.0], [0.08, 0.04, 0.0]])
    centres, cell = grid_subsample(pts, 0.1)
    # origin = floor(-0.05 / 0.1) * 0.1 = -0.1: cells [-0.1, 0) and [0, 0.1)
    assert cell.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(centres, [[-0.03, 0, 0], [0.05, 0.02, 0]])


def test_region_mean_drops_nan_rows_and_gives_nan_to_empty_regions():
    probs = np.array([[0.6, 0.4], [np.nan, np.nan], [0.2, 0.8], [1.0, 0.0]])
    out = region_mean(probs, np.array([0, 0, 1, 1]), 3)
    np.testing.assert_allclose(out[0], [0.6, 0.4])  # the NaN member is left out, not averaged as 0
    np.testing.assert_allclose(out[1], [0.6, 0.4])
    assert np.isnan(out[2]).all()


def three_clumps():
    """Clumps A (5 pts), B (2 pts), C (3 pts) 1 cm wide around x = 0.05, 0.35, 0.75.

    Level 1 (0.1 m): one region per clump. Level 2 (0.5 m): {A, B} (cell 0) and {C} (cell 1).
    Level 3 (1.0 m): one region. Probabilities differ per point.
    """
    rng = np.random.default_rng(3)
    centres = {"A": 0.05, "B": 0.35, "C": 0.75}
    counts = {"A": 5, "B": 2, "C": 3}
    coords, probs, names = [], [], []
    for name, x in centres.items():
        for _ in range(counts[name]):
            coords.append([x + rng.uniform(-0.005, 0.005), 0.05 + rng.uniform(-0.005, 0.005), 0.05])
            p = rng.dirichlet(np.ones(4))
            probs.append(p)
            names.append(name)
    return np.array(coords), np.array(probs), np.array(names)


def test_hmmu_matches_hand_computation_with_unweighted_region_means():
    coord, probs, names = three_clumps()
    mean = {n: probs[names == n].mean(0) for n in "ABC"}
    ab = (mean["A"] + mean["B"]) / 2  # level 2 averages the level-1 regions, not the points
    top = (ab + mean["C"]) / 2
    expected = np.array(
        [
            margin(p) + 0.1 * margin(mean[n]) + 0.01 * margin(ab if n in "AB" else mean["C"]) + 0.001 * margin(top)
            for p, n in zip(probs, names)
        ]
    )
    res = hmmu_scores(coord, probs, return_details=True)
    np.testing.assert_allclose(res.score, expected, rtol=0, atol=1e-12)
    assert [len(m) for m in res.margins] == [10, 3, 2, 1]
    # the plain call returns the same numbers
    np.testing.assert_allclose(hmmu_scores(coord, probs), expected, atol=1e-12)


def test_hmmu_weights_are_configurable():
    coord, probs, names = three_clumps()
    mean = {n: probs[names == n].mean(0) for n in "ABC"}
    s = hmmu_scores(coord, probs, levels=(0.1,), weights=(0.0, 1.0))
    np.testing.assert_allclose(s, [margin(mean[n]) for n in names], atol=1e-12)
    with pytest.raises(ValueError, match="weights"):
        hmmu_scores(coord, probs, levels=(0.1, 0.5), weights=(1.0, 0.1))


def test_centre_that_wins_no_member_gets_nan_and_never_reaches_a_point():
    # 1-D along x with one 1 m level. Cell [0,1): x=0.99 -> centre 0.99. Cell [1,2): x=1.01, 1.99 ->
    # centre 1.5, but 1.01 is nearer 0.99 and 1.99 nearer 2.0, so centre 1.5 gets no member.
    # Cell [2,3): x=2.0 -> centre 2.0.
    coord = np.array([[0.99, 0, 0], [1.01, 0, 0], [1.99, 0, 0], [2.0, 0, 0]])
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5], [0.8, 0.2]])
    res = hmmu_scores(coord, probs, levels=(1.0, 10.0), weights=(1.0, 0.1, 0.01), return_details=True)
    np.testing.assert_allclose(res.centres[0][:, 0], [0.99, 1.5, 2.0])
    assert res.regions[0].tolist() == [0, 0, 2, 2]
    assert np.isnan(res.margins[1][1])
    # level 2 (10 m): one region averaging only the two finite level-1 regions
    r0, r2 = probs[:2].mean(0), probs[2:].mean(0)
    top = (r0 + r2) / 2
    expected = [margin(p) + 0.1 * margin(r0 if i < 2 else r2) + 0.01 * margin(top) for i, p in enumerate(probs)]
    assert np.isfinite(res.score).all()
    np.testing.assert_allclose(res.score, expected, atol=1e-12)


def test_nearest_centre_differs_from_cell_membership_near_borders():
    pts = np.array([[0.0, 0, 0], [0.09, 0, 0], [0.11, 0, 0]])
    centres, cell = grid_subsample(pts, 0.1)
    assert cell.tolist() == [0, 0, 1]
    # 0.09 is nearer 0.11 (cell 1's centre) than 0.045 (its own cell's centre)
    assert nearest_centre(pts, centres).tolist() == [0, 1, 1]


def test_hmmu_vectorised_equals_a_region_loop_on_random_rooms():
    rng = np.random.default_rng(0)
    coord = rng.random((3000, 3)) * [3.0, 2.0, 1.0]
    probs = rng.dirichlet(np.ones(5) * 0.5, size=3000)
    from scipy.spatial import cKDTree

    # literal per-level / per-region loop (the reference behaviour)
    score_levels, probs_levels, projs = [top2_margin(probs)], [probs], []
    pts = coord
    for g in (0.1, 0.5, 1.0):
        sub, _ = grid_subsample(pts, g)
        proj = cKDTree(sub).query(pts, k=1)[1]
        sc, pr = [], []
        for r in range(len(sub)):
            members = probs_levels[-1][proj == r]
            members = members[~np.isnan(members).any(1)]
            with np.errstate(invalid="ignore"):
                mean = members.mean(0) if len(members) else np.full(probs.shape[1], np.nan)
            pr.append(mean)
            sc.append(margin(mean))
        score_levels.append(np.array(sc))
        probs_levels.append(np.array(pr))
        projs.append(proj)
        pts = sub
    for lvl in range(len(projs) - 1, -1, -1):
        score_levels[lvl] = score_levels[lvl] + 0.1 * score_levels[lvl + 1][projs[lvl]]
    np.testing.assert_allclose(hmmu_scores(coord, probs), score_levels[0], rtol=0, atol=1e-12)


def test_baseline_strategies():
    probs = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.4, 0.3, 0.3]])
    coord = np.zeros((3, 3))
    ent = build_strategy("entropy").score("s", coord, probs)
    # mean over classes of p*log(p + 1e-12): ascending = most uncertain first
    np.testing.assert_allclose(ent, np.mean(probs * np.log(probs + 1e-12), axis=1))
    assert np.argsort(ent).tolist() == [2, 0, 1]
    np.testing.assert_allclose(build_strategy("margin").score("s", coord, probs), [0.0, 1.0, 0.1], atol=1e-12)
    r1 = build_strategy("random", seed=4, round_index=2).score("scene_a", coord, None)
    r2 = build_strategy("random", seed=4, round_index=2).score("scene_a", coord, None)
    r3 = build_strategy("random", seed=4, round_index=3).score("scene_a", coord, None)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1, r3)
    assert set(ACQUISITION) == {"hpal", "hmmu", "margin", "entropy", "random"}
    assert build_strategy("hpal").fds_default and not build_strategy("hmmu").fds_default
