"""The 3D-OVS losses against closed forms and brute-force references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nerf3dovs.model import losses


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


def _js_ref(p, q):
    m = [(a + b) / 2 for a, b in zip(p, q)]
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


def test_js_closed_forms():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    js = losses.js_divergence(p, q)
    assert js[0].item() == pytest.approx(math.log(2), abs=1e-9)  # disjoint supports: ln 2
    assert js[1].item() == pytest.approx(0.0, abs=1e-12) and js[2].item() == pytest.approx(0.0, abs=1e-12)
    g = torch.Generator().manual_seed(0)
    a = torch.softmax(torch.randn(5, 4, generator=g, dtype=torch.float64), -1)
    b = torch.softmax(torch.randn(5, 4, generator=g, dtype=torch.float64), -1)
    ref = torch.tensor([_js_ref(x.tolist(), y.tolist()) for x, y in zip(a, b)], dtype=torch.float64)
    torch.testing.assert_close(losses.js_divergence(a, b), ref)
    torch.testing.assert_close(losses.js_divergence(a, b), losses.js_divergence(b, a))


def test_feature_loss_is_minus_cosine_to_the_selected_scale():
    g = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # (1, S=3, D=3) unit
    sel = torch.tensor([[0.0, 1.0, 0.0]])
    assert losses.feature_loss(torch.tensor([[0.0, 5.0, 0.0]]), g, sel).item() == pytest.approx(-1.0)
    assert losses.feature_loss(torch.tensor([[2.0, 0.0, 0.0]]), g, sel).item() == pytest.approx(0.0, abs=1e-7)
    sel = torch.tensor([[0.5, 0.5, 0.0]])  # target (0.5, 0.5, 0) -> cos with (1, 0, 0) = 1/sqrt(2)
    assert losses.feature_loss(torch.tensor([[1.0, 0.0, 0.0]]), g, sel).item() == pytest.approx(-1 / math.sqrt(2))


def test_rda_matches_hand_computation_and_uses_raw_features_by_default():
    feat = torch.tensor([[2.0, 0.0]], dtype=torch.float64)  # |F| = 2: raw vs normalised differ
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    rel = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]], dtype=torch.float64)  # (1, S=3, C=2)
    sel = torch.tensor([[0.25, 0.5, 0.25]], dtype=torch.float64)
    # P = softmax(<F, t>) = softmax(2, 0); Q = softmax(sum_k S_k R_k) = softmax(0.375, 0.625)
    p = [math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)]
    q = [math.exp(0.375) / (math.exp(0.375) + math.exp(0.625)), math.exp(0.625) / (math.exp(0.375) + math.exp(0.625))]
    assert losses.rda_loss(feat, text, rel, sel).item() == pytest.approx(_js_ref(p, q), rel=1e-9)
    p_norm = [math.e / (math.e + 1), 1 / (math.e + 1)]
    got = losses.rda_loss(feat, text, rel, sel, normalize_feature=True).item()
    assert got == pytest.approx(_js_ref(p_norm, q), rel=1e-9)
    p_temp = [math.exp(4) / (math.exp(4) + 1), 1 / (math.exp(4) + 1)]
    got = losses.rda_loss(feat, text, rel, sel, feature_temperature=0.5).item()
    assert got == pytest.approx(_js_ref(p_temp, q), rel=1e-9)


def _fda_ref(features, text, dino, temperature, shift):
    pos_sum = neg_sum = 0.0
    pos_n = neg_n = 0
    for n in range(features.shape[0]):
        probs = torch.softmax(F.normalize(features[n], dim=-1) @ text.t() / temperature, -1).tolist()
        d = F.normalize(dino[n], dim=-1)
        for j in range(features.shape[1]):
            for k in range(features.shape[1]):
                c = float(d[j] @ d[k]) - shift
                js = _js_ref(probs[j], probs[k])
                if c > 0:
                    pos_sum += c * js
                    pos_n += 1
                elif c < 0:
                    neg_sum += c * js
                    neg_n += 1
    return pos_sum / max(pos_n, 1), neg_sum / max(neg_n, 1)


def test_fda_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 6, 5, generator=g, dtype=torch.float64)
    text = F.normalize(torch.randn(3, 5, generator=g, dtype=torch.float64), dim=-1)
    dino = torch.randn(2, 6, 4, generator=g, dtype=torch.float64)
    pos, neg = losses.fda_loss(feats, text, dino, temperature=0.2, shift=0.1)
    ref_pos, ref_neg = _fda_ref(feats, text, dino, 0.2, 0.1)
    assert pos.item() == pytest.approx(ref_pos, rel=1e-6) and neg.item() == pytest.approx(ref_neg, rel=1e-6)
    assert pos.item() >= 0 >= neg.item()


def test_fda_sign_conventions_pull_similar_and_push_dissimilar_pairs():
    text = torch.eye(2, dtype=torch.float64)
    # patch of two rays with different class distributions
    feats = torch.tensor([[[1.0, 0.2], [0.2, 1.0]]], dtype=torch.float64, requires_grad=True)

    def js_between(f):
        p = torch.softmax(F.normalize(f[0], dim=-1) @ text.t() / 0.2, -1)
        return losses.js_divergence(p[0], p[1]).item()

    before = js_between(feats)
    same = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]], dtype=torch.float64)  # DINO-identical: cos - 0.7 > 0
    pos, neg = losses.fda_loss(feats, text, same, 0.2, 0.7)
    assert neg.item() == 0.0  # no dissimilar pair: 0, not NaN
    (200.0 * pos).backward()
    with torch.no_grad():
        pulled = feats - 1e-3 * feats.grad
    assert js_between(pulled) < before

    feats.grad = None
    other = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)  # orthogonal: cos - 0.7 < 0 off-diagonal
    pos, neg = losses.fda_loss(feats, text, other, 0.2, 0.7)
    assert neg.item() < 0.0
    (0.2 * neg).backward()
    with torch.no_grad():
        pushed = feats - 1e-1 * feats.grad
    assert js_between(pushed) > before


def test_fda_chunked_pairwise_equals_dense():
    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(37, 4, generator=g, dtype=torch.float64), -1)
    dense = losses.js_divergence(probs[:, None, :], probs[None, :, :])
    torch.testing.assert_close(losses._pairwise_js(probs, chunk_elems=50), dense)
