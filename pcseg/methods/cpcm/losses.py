"""CPCM's consistency losses (cpcm_hpal.md §5.3).

The divergence is the official ``js_divergence_v2``: for probability rows ``p`` and ``q`` with mixture
``m = (p + q) / 2``,

    J(p, q) = mean over rows of Σ_c [ p_c·log(p_c/(m_c + eps) + eps) + q_c·log(q_c/(m_c + eps) + eps) ]

with ``eps = 1e-4`` placed exactly there. It is the sum of the two KL-to-mixture terms, i.e. twice the
textbook Jensen–Shannon divergence, summed over classes and averaged over rows. A stop-gradient on
one side ("sg(p)") is expressed by detaching that side's logits before calling.
"""

from __future__ import annotations

import torch

DEFAULT_EPS = 1e-4


def js_divergence_rows(p: torch.Tensor, q: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """The per-row value of ``J``: Σ_c over classes, no reduction over rows.

    Args:
        p: (K, C) probabilities (rows sum to 1).
        q: (K, C) probabilities.
        eps: the constant inside both the denominator and the log.

    Returns:
        (K,) tensor.
    """
    if p.shape != q.shape:
        raise ValueError(f"js_divergence: shapes differ, {tuple(p.shape)} vs {tuple(q.shape)}")
    m = 0.5 * (p + q)
    per_class = p * torch.log(p / (m + eps) + eps) + q * torch.log(q / (m + eps) + eps)
    return per_class.sum(dim=1)


def js_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = DEFAULT_EPS) -> torch.Tensor | None:
    """``J(p, q)`` of the official code: mean over rows, sum over classes.

    Args:
        p: (K, C) probabilities (rows sum to 1).
        q: (K, C) probabilities.
        eps: the constant inside both the denominator and the log.

    Returns:
        Scalar tensor, or None when K = 0 (an empty set has no mean; never NaN).
    """
    rows = js_divergence_rows(p, q, eps)
    return rows.mean() if rows.numel() else None


def js_divergence_logits(
    logits_a: torch.Tensor, logits_b: torch.Tensor, eps: float = DEFAULT_EPS, reduction: str = "mean"
) -> torch.Tensor | None:
    """``J(softmax(a), softmax(b))``, computed in float32 (safe under autocast).

    Args:
        logits_a: (K, C) scores; detach them beforehand for a stop-gradient target.
        logits_b: (K, C) scores.
        reduction: "mean" (the official J; None when K = 0) or "sum" over rows (0 when K = 0), for
            callers that divide by a count of their own (e.g. a global count across processes).
    """
    rows = js_divergence_rows(torch.softmax(logits_a.float(), dim=1), torch.softmax(logits_b.float(), dim=1), eps)
    if reduction == "sum":
        return rows.sum()
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    return rows.mean() if rows.numel() else None
