"""Stateless, keyed randomness.

Every random draw in pcseg is a pure function of (seed, *keys) — for example (seed, epoch, sample
index) for data augmentation or (seed, iteration) for a training-step mask. Nothing depends on how
many draws happened before, so a run resumed from a checkpoint, a run with a different number of
data-loader workers and a distributed run all see exactly the same random numbers.
"""

from __future__ import annotations

import random

import numpy as np


def _key(keys: tuple) -> list[int]:
    out: list[int] = []
    for k in keys:
        if isinstance(k, str):
            out.extend(k.encode("utf-8"))
            out.append(0x10FFFF)  # separator so ("ab", "c") != ("a", "bc")
        else:
            k = int(k)
            if k < 0:
                raise ValueError(f"rng keys must be non-negative integers or strings, got {k}")
            out.append(k)
    return out


def numpy_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A numpy Generator determined only by ``seed`` and ``keys``."""
    return np.random.default_rng(np.random.SeedSequence(_key((seed, *keys))))


def torch_generator(seed: int, *keys: int | str, device: str = "cpu"):
    """A ``torch.Generator`` determined only by ``seed`` and ``keys``."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence(_key((seed, *keys))).generate_state(1, np.uint64)[0]) >> 1)
    return g


def seed_everything(seed: int) -> None:
    """Seed the global generators (for third-party code that uses them; pcseg itself uses keyed RNGs)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
