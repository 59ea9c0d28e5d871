"""Relevancy against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import torch

from pcseg.foundation.relevancy import (
    CANONICAL_NEGATIVES,
    cosine_maps,
    lerf_relevancy,
    minmax_per_map,
    ovs_relevancy,
    query_relevancy,
)


def test_canonical_negatives():
    assert CANONICAL_NEGATIVES == ("object", "things", "stuff", "texture")


def test_lerf_relevancy_by_hand():
    # feature along x; query along x; negatives along y and at 53 degrees (cos 0.6)
    features = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    query = torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[0.0, 3.0], [0.6, 0.8]])
    rel = lerf_relevancy(features, query, negatives, temperature=0.1)
    # pixel 0: f.q = 1, f.n = (0, 0.6): min over negatives of softmax([1, n]/0.1)[0] = 1 / (1 + e^-4)
    assert math.isclose(rel[0, 0].item(), 1 / (1 + math.exp(-4)), rel_tol=1e-6)
    # pixel 1: f.q = 0, f.n = (1, 0.8): the worst negative is y: 1 / (1 + e^10)
    assert math.isclose(rel[1, 0].item(), 1 / (1 + math.exp(10)), rel_tol=1e-5)


def test_lerf_relevancy_equals_the_literal_pairwise_softmax_formula():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(5, 7, 12, generator=gen)
    pos = torch.randn(3, 12, generator=gen)
    neg = torch.randn(4, 12, generator=gen)
    f = feats / feats.norm(dim=-1, keepdim=True)
    p = pos / pos.norm(dim=-1, keepdim=True)
    n = neg / neg.norm(dim=-1, keepdim=True)
    literal = torch.empty(5, 7, 3)
    for q in range(3):
        pair = [torch.softmax(10 * torch.stack([f @ p[q], f @ n[i]], dim=-1), dim=-1)[..., 0] for i in range(4)]
        literal[..., q] = torch.stack(pair, dim=-1).min(dim=-1).values
    assert torch.allclose(lerf_relevancy(feats, pos, neg), literal, atol=1e-6)


def test_query_relevancy_with_the_oracle_finds_the_class(oracle):
    e = oracle.class_embeddings
    feats = torch.stack([e[0], e[2], 0.5 * (e[0] + e[2])])  # pure red apple, pure blue mug, a mix
    rel = query_relevancy(oracle, feats, ["red apple", "blue mug"])
    assert rel.shape == (3, 2)
    assert rel[0, 0] > 0.9 and rel[0, 1] < 0.5 and rel[1, 1] > 0.9 and rel[1, 0] < 0.5
    assert 0.5 < rel[2, 0] < rel[0, 0]


def test_ovs_relevancy_by_hand():
    # one scale, D = 2, a 1x3 image: features at 0, 45 and 90 degrees; texts along x and y
    feats = np.array([[[[1.0, 1.0, 0.0]], [[0.0, 1.0, 2.0]]]], dtype=np.float16)  # (1, 2, 1, 3)
    text = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    cos = cosine_maps(feats, text)
    c = math.sqrt(0.5)
    assert torch.allclose(cos[0, 0, 0], torch.tensor([1.0, c, 0.0]), atol=1e-3)
    rel = ovs_relevancy(feats, text)
    assert rel.shape == (1, 2, 1, 3)
    assert torch.allclose(rel[0, 0, 0], torch.tensor([1.0, c, 0.0]), atol=1e-3)  # already spans [0, 1]
    assert torch.allclose(rel[0, 1, 0], torch.tensor([0.0, c, 1.0]), atol=1e-3)
    # min-max is per (scale, class) map; a constant map becomes 0
    maps = torch.tensor([[[[2.0, 4.0], [3.0, 6.0]], [[5.0, 5.0], [5.0, 5.0]]]])
    assert torch.allclose(minmax_per_map(maps)[0, 0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))
    assert torch.equal(minmax_per_map(maps)[0, 1], torch.zeros(2, 2))


def test_cosine_maps_reads_memmaps_in_blocks(tmp_path):
    gen = np.random.default_rng(0)
    feats = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float16, shape=(2, 6, 9, 5))
    feats[...] = gen.standard_normal((2, 6, 9, 5))
    text = torch.randn(3, 6)
    whole = cosine_maps(np.asarray(feats), text)
    blocked = cosine_maps(feats, text, max_block_bytes=6 * 5 * 4 * 2)  # two rows per block
    assert torch.allclose(whole, blocked)
    ref = torch.einsum("cd,sdhw->schw", torch.nn.functional.normalize(text, dim=1),
                       torch.nn.functional.normalize(torch.from_numpy(feats.astype(np.float32)), dim=1))
    assert torch.allclose(whole, ref, atol=1e-6)
    assert cosine_maps(torch.from_numpy(feats[0].astype(np.float32)), text).shape == (1, 3, 9, 5)
