"""Run these tests on one intra-op thread.

The inputs are tiny: on a busy 2-core machine, OpenMP's thread hand-off costs far more than the
work (a float64 batch norm of 1000 x 8 took 55 ms with 2 threads, 0.1 ms with 1).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
