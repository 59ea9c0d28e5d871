import math

import pytest
import torch
from omegaconf import OmegaConf

from pcseg.engine.optim import build_optimizer, lr_at
from pcseg.engine.sampler import KeyedShuffleSampler


def test_poly_schedule_matches_cpcm_formula():
    sched = OmegaConf.create({"name": "poly", "power": 0.9})
    assert lr_at(0, 100, 0.01, sched) == pytest.approx(0.01)
    assert lr_at(50, 100, 0.01, sched) == pytest.approx(0.01 * (1 - 50 / 101) ** 0.9)
    assert lr_at(100, 100, 0.01, sched) > 0  # max_iter + 1 in the denominator: never exactly 0


def test_cosine_schedule_oscillates_like_torch():
    sched = OmegaConf.create({"name": "cosine", "t_max": 10, "eta_min": 0.0})
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    for t in range(35):
        assert lr_at(t, 1000, 0.1, sched) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-9)
        opt.step()
        ref.step()


def test_optimizer_is_cpcm_sgd_with_world_size_scaling():
    cfg = OmegaConf.create({"name": "sgd", "lr": 0.01, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-3,
                            "scale_lr_by_world_size": True})
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg, world_size=2)
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["dampening"], g["weight_decay"]) == (0.02, 0.9, 0.1, 1e-3)


def test_sampler_is_keyed_by_epoch_and_resumable():
    s = KeyedShuffleSampler(10, batch_size=3, seed=5)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start_batch=2)
    assert list(s) == full[6:]
    s.set_epoch(3)
    assert list(s) != full
    assert len(full) == 12 and s.batches_per_epoch == 4  # padded by wrapping to whole batches


def test_sampler_shards_equal_the_single_process_order():
    one = KeyedShuffleSampler(9, batch_size=4, seed=1)
    one.set_epoch(0)
    ranks = [KeyedShuffleSampler(9, batch_size=2, seed=1, rank=r, world_size=2) for r in range(2)]
    for r in ranks:
        r.set_epoch(0)
    a, b = list(ranks[0]), list(ranks[1])
    merged = []
    for g in range(ranks[0].batches_per_epoch):
        merged += a[2 * g:2 * g + 2] + b[2 * g:2 * g + 2]
    assert merged == list(one)
    assert math.ceil(9 / 4) == one.batches_per_epoch
