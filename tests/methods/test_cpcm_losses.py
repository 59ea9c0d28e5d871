"""CPCM's divergence and ramp-up (cpcm_hpal.md §5.3) against closed-form values."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.spatial.distance import jensenshannon

from pcseg.methods.cpcm.losses import js_divergence, js_divergence_logits, js_divergence_rows
from pcseg.methods.cpcm.rampup import sigmoid_rampup

EPS = 1e-4


def test_js_divergence_closed_form_with_eps_as_written():
    p = torch.tensor([[0.7, 0.3], [1.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[0.2, 0.8], [0.0, 1.0]], dtype=torch.float64)
    row0 = (0.7 * math.log(0.7 / (0.45 + EPS) + EPS) + 0.3 * math.log(0.3 / (0.55 + EPS) + EPS)
            + 0.2 * math.log(0.2 / (0.45 + EPS) + EPS) + 0.8 * math.log(0.8 / (0.55 + EPS) + EPS))
    # Disjoint one-hots: only the two non-zero entries count, each log(1/(0.5 + eps) + eps) ≈ ln 2.
    row1 = 2 * math.log(1 / (0.5 + EPS) + EPS)
    rows = js_divergence_rows(p, q)
    assert rows.tolist() == pytest.approx([row0, row1], rel=1e-12)
    assert float(js_divergence(p, q)) == pytest.approx((row0 + row1) / 2, rel=1e-12)  # mean over points
    # It is twice the textbook Jensen–Shannon divergence (natural log), up to the eps terms.
    assert row0 == pytest.approx(2 * jensenshannon([0.7, 0.3], [0.2, 0.8]) ** 2, abs=1e-3)
    assert row1 == pytest.approx(2 * math.log(2), abs=1e-3)


def test_js_divergence_symmetric_near_zero_for_equal_and_empty_is_none():
    torch.manual_seed(0)
    a, b = torch.randn(50, 20), torch.randn(50, 20)
    assert float(js_divergence_logits(a, b)) == pytest.approx(float(js_divergence_logits(b, a)), rel=1e-6)
    assert abs(float(js_divergence_logits(a, a))) < 5e-3  # eps leaves a tiny residue, never exactly 0
    assert float(js_divergence_logits(a, b)) > 0.05
    empty = torch.zeros(0, 20)
    assert js_divergence_logits(empty, empty) is None  # no NaN from an empty mean
    assert float(js_divergence_logits(empty, empty, reduction="sum")) == 0.0
    assert float(js_divergence_logits(a, b, reduction="sum")) == pytest.approx(50 * float(js_divergence_logits(a, b)))
    with pytest.raises(ValueError, match="shapes differ"):
        js_divergence(torch.rand(3, 2), torch.rand(3, 4))


def test_no_gradient_into_the_detached_target():
    torch.manual_seed(1)
    target_logits = torch.randn(10, 5, requires_grad=True)
    pred_logits = torch.randn(10, 5, requires_grad=True)
    js_divergence_logits(target_logits.detach(), pred_logits).backward()
    assert target_logits.grad is None
    assert pred_logits.grad is not None and pred_logits.grad.abs().sum() > 0
    # Without the stop-gradient both sides receive gradients (the view-consistency term).
    js_divergence_logits(target_logits, pred_logits).backward()
    assert target_logits.grad is not None and target_logits.grad.abs().sum() > 0


def test_sigmoid_rampup_values():
    values = [sigmoid_rampup(e, 5) for e in range(7)]
    assert values == pytest.approx([0.0067, 0.041, 0.165, 0.449, 0.819, 1.0, 1.0], abs=6e-4)
    assert values[0] == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(3, 0) == 1.0
    with pytest.raises(ValueError):
        sigmoid_rampup(1, -1)
