"""Relevancy of text queries against dense CLIP features.

Two definitions are in use:

* LERF (spec ovs_nerf.md §8.5): for a positive query q and canonical negatives n_i,
  ``rel = min_i softmax([f·q, f·n_i] / T)[0]`` with T = 0.1: a pairwise softmax against each negative,
  keeping the most pessimistic one. Since the pairwise softmax is ``sigmoid((f·q - f·n_i) / T)`` and the
  sigmoid is increasing, this equals ``sigmoid((f·q - max_i f·n_i) / T)``, which is how it is computed.
* 3D-OVS (spec §2): ``R[s, c] = cos(f_s, t_c)`` per pixel, min-max normalised to [0, 1] per (scale,
  class) over the pixels of one image (absolute CLIP confidence is discarded).

Features and text embeddings are L2-normalised here, whatever the caller passes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pcseg.foundation.interface import ImageTextEncoder

CANONICAL_NEGATIVES: tuple[str, ...] = ("object", "things", "stuff", "texture")


def lerf_relevancy(
    features: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """LERF relevancy of every feature for every positive query.

    Args:
        features: (..., D) CLIP-space features (any norm).
        positives: (P, D) text embeddings of the queries.
        negatives: (N, D) text embeddings of the negatives (N >= 1).
        temperature: softmax temperature (LERF: 0.1).

    Returns:
        (..., P) relevancy in (0, 1); 0.5 means "as close to the query as to the closest negative".
    """
    if negatives.shape[0] < 1:
        raise ValueError("lerf_relevancy needs at least one negative")
    f = F.normalize(features.float(), dim=-1)
    pos = f @ F.normalize(positives.float().to(f.device), dim=-1).T  # (..., P)
    neg = f @ F.normalize(negatives.float().to(f.device), dim=-1).T  # (..., N)
    hardest = neg.max(dim=-1, keepdim=True).values  # (..., 1)
    return torch.sigmoid((pos - hardest) / temperature)


def query_relevancy(
    encoder: ImageTextEncoder,
    features: torch.Tensor,
    queries: Sequence[str],
    negatives: Sequence[str] = CANONICAL_NEGATIVES,
    temperature: float = 0.1,
) -> torch.Tensor:
    """``lerf_relevancy`` with the texts encoded by ``encoder``: (..., D) features → (..., len(queries))."""
    return lerf_relevancy(features, encoder.encode_text(list(queries)), encoder.encode_text(list(negatives)), temperature)


def _scale_block(features, s: int | None, rows: slice) -> torch.Tensor:
    """One scale's rows as a float32 tensor (D, r, w); works for numpy arrays/memmaps and tensors."""
    block = features[s, :, rows] if s is not None else features[:, rows]
    if isinstance(block, torch.Tensor):
        return block.float()
    return torch.from_numpy(np.asarray(block, dtype=np.float32))


def cosine_maps(
    features: np.ndarray | torch.Tensor,
    text: torch.Tensor,
    max_block_bytes: int = 64 << 20,
) -> torch.Tensor:
    """Cosine similarity of every pixel feature with every text embedding.

    Args:
        features: (S, D, h, w) or (D, h, w), float16/32 numpy array, memory map or tensor; read in row
            blocks of at most ``max_block_bytes`` (as float32), so a memory map need not fit in RAM.
        text: (C, D) text embeddings.

    Returns:
        (S, C, h, w) float32 (S = 1 for 3D input), on the device of ``text`` for tensor features on
        that device, else CPU.
    """
    squeeze = features.ndim == 3
    num_scales = 1 if squeeze else features.shape[0]
    dim, height, width = features.shape[-3:]
    device = features.device if isinstance(features, torch.Tensor) else torch.device("cpu")
    t = F.normalize(text.float().to(device), dim=-1)  # (C, D)
    out = torch.empty(num_scales, t.shape[0], height, width, device=device)
    rows_per_block = max(1, int(max_block_bytes // max(1, dim * width * 4)))
    for s in range(num_scales):
        for r0 in range(0, height, rows_per_block):
            rows = slice(r0, min(height, r0 + rows_per_block))
            block = _scale_block(features, None if squeeze else s, rows).to(device)  # (D, r, w)
            block = F.normalize(block, dim=0)
            out[s, :, rows] = torch.einsum("cd,drw->crw", t, block)
    return out


def minmax_per_map(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each (…, h, w) map to [0, 1] over its pixels; a constant map becomes 0."""
    flat = maps.reshape(*maps.shape[:-2], -1)
    lo = flat.min(dim=-1, keepdim=True).values
    hi = flat.max(dim=-1, keepdim=True).values
    span = hi - lo
    out = torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(flat))
    return out.reshape(maps.shape)


def ovs_relevancy(features: np.ndarray | torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """3D-OVS relevancy maps of one image.

    Args:
        features: (S, D, h, w) hierarchy features (e.g. the cached float16 memory map).
        text: (C, D) class text embeddings.

    Returns:
        (S, C, h, w) float32 in [0, 1]: cosine relevancy, min-max normalised per (scale, class).
    """
    return minmax_per_map(cosine_maps(features, text))
