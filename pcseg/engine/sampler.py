"""A shuffling sampler whose order is a pure function of (seed, epoch): resumable mid-epoch and
shardable across ranks without changing which scenes a global step sees."""

from __future__ import annotations

import math
from typing import Iterator

from torch.utils.data import Sampler

from pcseg.utils.rng import numpy_rng


class KeyedShuffleSampler(Sampler[int]):
    """Permutes ``range(num_samples × loop)`` with ``numpy_rng(seed, "order", epoch)``.

    With ``world_size`` ranks the global order is padded (by wrapping) to a multiple of
    ``world_size × batch_size`` and rank r takes, for every global batch, its own contiguous slice:
    global batch g = concatenation over ranks of their local batch g. ``start_batch`` skips the first
    local batches (resume in the middle of an epoch).
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, shuffle: bool = True, loop: int = 1,
                 rank: int = 0, world_size: int = 1):
        if num_samples <= 0:
            raise ValueError("the dataset is empty")
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.shuffle, self.loop, self.rank, self.world_size = shuffle, loop, rank, world_size
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.num_samples * self.loop / (self.batch_size * self.world_size))

    def global_order(self) -> list[int]:
        n = self.num_samples * self.loop
        order = numpy_rng(self.seed, "order", self.epoch).permutation(n) if self.shuffle else range(n)
        order = [int(i) % self.num_samples for i in order]
        total = self.batches_per_epoch * self.batch_size * self.world_size
        return (order * (total // len(order) + 1))[:total]

    def __iter__(self) -> Iterator[int]:
        order = self.global_order()
        per_global = self.batch_size * self.world_size
        for g in range(self.start_batch, self.batches_per_epoch):
            chunk = order[g * per_global:(g + 1) * per_global]
            yield from chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size
