"""The 3D-OVS segmentation losses (spec ovs_nerf.md §4.4), as pure functions of tensors.

Notation: B rays, D feature channels, S CLIP scales (3), C classes.

* feature distillation: ``-mean cos(F, normalize(sum_k S_k G_k))``;
* RDA (relevancy-distribution alignment): ``mean JS(softmax(<F, t>) || softmax(sum_k S_k R_k))``;
* FDA (feature-distribution alignment): on patches, pairwise JS between class distributions, weighted
  by DINO cosine minus a shift: positive pairs (similar DINO) are pulled together, negative pairs are
  pushed apart (their term is ``sum min(D, 0) * JS`` which minimisation makes more negative).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-10


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) over the last axis of probability vectors."""
    return -(p * torch.log(p.clamp(min=_EPS))).sum(-1)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence ``KL(p||m)/2 + KL(q||m)/2``, ``m = (p + q)/2``, over the last axis.

    Computed as ``H(m) - (H(p) + H(q))/2`` (the same quantity; 0 <= JS <= ln 2).

    Args:
        p, q: (..., C) probability vectors (broadcastable).

    Returns:
        (...,) divergences in nats.
    """
    return entropy(0.5 * (p + q)) - 0.5 * (entropy(p) + entropy(q))


def feature_loss(rendered: torch.Tensor, clip_scales: torch.Tensor, selection: torch.Tensor) -> torch.Tensor:
    """Cosine distillation to the selected CLIP feature.

    Args:
        rendered: (B, D) rendered feature F(r) (any norm).
        clip_scales: (B, S, D) L2-normalised CLIP features G_k of the ray's pixel.
        selection: (B, S) scale weights S(r) (rows sum to 1).

    Returns:
        scalar ``-mean_r cos(F(r), sum_k S_k G_k)``.
    """
    target = (selection.unsqueeze(-1) * clip_scales).sum(1)
    return -F.cosine_similarity(rendered, target, dim=-1, eps=1e-8).mean()


def rda_loss(
    rendered: torch.Tensor,
    text: torch.Tensor,
    relevancy: torch.Tensor,
    selection: torch.Tensor,
    normalize_feature: bool = False,
    feature_temperature: float = 1.0,
    target_temperature: float = 1.0,
) -> torch.Tensor:
    """Relevancy-distribution alignment.

    Args:
        rendered: (B, D) rendered feature.
        text: (C, D) L2-normalised text embeddings.
        relevancy: (B, S, C) per-scale relevancy of the ray's pixel (3D-OVS: min-max normalised to [0, 1]).
        selection: (B, S) scale weights.
        normalize_feature: L2-normalise F before the dot product (3D-OVS code: False — the prediction is
            ``softmax(<F, t>)`` with the raw rendered feature).
        feature_temperature: divides the logits of P (3D-OVS: 1, i.e. none).
        target_temperature: divides the selected relevancies before their softmax (3D-OVS: 1).

    Returns:
        scalar ``mean_r JS(P_r || Q_r)``.
    """
    feat = F.normalize(rendered, dim=-1) if normalize_feature else rendered
    p = torch.softmax(feat @ text.t() / feature_temperature, dim=-1)
    target = (selection.unsqueeze(-1) * relevancy).sum(1)
    q = torch.softmax(target / target_temperature, dim=-1)
    return js_divergence(p, q).mean()


def _pairwise_js(probs: torch.Tensor, chunk_elems: int = 1 << 24) -> torch.Tensor:
    """(P, C) probabilities -> (P, P) pairwise JS, built in row chunks to bound the (rows, P, C) tensor."""
    n, c = probs.shape
    h = entropy(probs)
    rows = max(1, chunk_elems // max(1, n * c))
    out = []
    for i in range(0, n, rows):
        m = 0.5 * (probs[i : i + rows, None, :] + probs[None, :, :])
        out.append(entropy(m) - 0.5 * (h[i : i + rows, None] + h[None, :]))
    return torch.cat(out, dim=0)


def fda_loss(
    features: torch.Tensor,
    text: torch.Tensor,
    dino: torch.Tensor,
    temperature: float = 0.2,
    shift: float = 0.7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature-distribution alignment on patches.

    For each patch, ``P_j = softmax(<normalize(F_j), t> / temperature)``, ``D_jl = cos(d_j, d_l) - shift``
    (no gradient) and ``J_jl = JS(P_j || P_l)``. Sums and counts run over all patches together.

    Args:
        features: (N, P, D) rendered features of N patches of P rays.
        text: (C, D) normalised text embeddings.
        dino: (N, P, E) DINO tokens aligned with the rays.
        temperature: softmax temperature of the class distribution (3D-OVS: 0.2).
        shift: subtracted from the DINO cosine (3D-OVS: 0.7).

    Returns:
        ``(L_pos, L_neg)``: ``sum max(D, 0) J / #{D > 0}`` (>= 0; minimise to make similar pairs agree) and
        ``sum min(D, 0) J / #{D < 0}`` (<= 0; minimise to make dissimilar pairs disagree). A term with no
        pair is 0, never NaN.
    """
    probs = torch.softmax(F.normalize(features, dim=-1) @ text.t() / temperature, dim=-1)  # (N, P, C)
    with torch.no_grad():
        d = F.normalize(dino.float(), dim=-1)
        corr = d @ d.transpose(1, 2) - shift  # (N, P, P)
    pos_sum = features.new_zeros(())
    neg_sum = features.new_zeros(())
    pos_n = 0
    neg_n = 0
    for n in range(features.shape[0]):
        js = _pairwise_js(probs[n])
        pos = corr[n].clamp(min=0.0)
        neg = corr[n].clamp(max=0.0)
        pos_sum = pos_sum + (pos * js).sum()
        neg_sum = neg_sum + (neg * js).sum()
        pos_n += int((corr[n] > 0).sum())
        neg_n += int((corr[n] < 0).sum())
    l_pos = pos_sum / pos_n if pos_n else pos_sum * 0.0
    l_neg = neg_sum / neg_n if neg_n else neg_sum * 0.0
    return l_pos, l_neg
