"""The sigmoid-shaped ramp-up of CPCM's unsupervised weights (cpcm_hpal.md §5.3)."""

from __future__ import annotations

import math


def sigmoid_rampup(epoch: float, length: float = 5.0) -> float:
    """``exp(−5·(1 − min(e, L)/L)²)``, the official ``sigmoid_rampup``.

    Args:
        epoch: the 0-based epoch index (held constant within an epoch by the caller).
        length: L, the ramp-up length in epochs; 0 disables the ramp-up (always 1).

    Returns:
        The weight multiplier in (0, 1]: 0.0067, 0.041, 0.165, 0.449, 0.819, 1 for e = 0..5 with L = 5.
    """
    if length < 0:
        raise ValueError(f"ramp-up length must be >= 0, got {length}")
    if length == 0:
        return 1.0
    progress = min(max(float(epoch), 0.0), length) / length
    return math.exp(-5.0 * (1.0 - progress) ** 2)
