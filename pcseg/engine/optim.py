"""Optimiser and learning-rate schedules.

Schedules are closed-form functions of the iteration, so a resumed run gets exactly the learning
rates it would have had (no scheduler state to save).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from pcseg.utils.errors import ConfigError


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: Any, world_size: int = 1) -> torch.optim.Optimizer:
    """SGD as both papers use it (momentum 0.9, dampening 0.1; CPCM weight decay 1e-3).

    The base learning rate is multiplied by the number of processes when
    ``scale_lr_by_world_size`` (CPCM's convention: lr = 0.01 × GPUs).
    """
    if cfg.name != "sgd":
        raise ConfigError(f"optim.name={cfg.name!r}: only 'sgd' is supported")
    lr = base_lr(cfg, world_size)
    return torch.optim.SGD(
        params, lr=lr, momentum=cfg.momentum, dampening=cfg.dampening,
        weight_decay=cfg.weight_decay, nesterov=bool(cfg.get("nesterov", False)),
    )


def base_lr(cfg: Any, world_size: int = 1) -> float:
    return float(cfg.lr) * (world_size if cfg.get("scale_lr_by_world_size", False) else 1)


def lr_at(iteration: int, max_iterations: int, base: float, schedule: Any) -> float:
    """Learning rate for step ``iteration`` (0-based).

    poly:     base · (1 − t / (max_iter + 1)) ** power       (CPCM PolyLR, stepped every iteration)
    cosine:   eta_min + (base − eta_min) · (1 + cos(π t / T_max)) / 2, periodic past T_max
              (PyTorch's CosineAnnealingLR keeps oscillating, which HPAL relies on: T_max 5000 over 60k steps)
    constant: base
    """
    name = schedule.name
    if name == "poly":
        return base * max(0.0, 1.0 - iteration / (max_iterations + 1)) ** float(schedule.power)
    if name == "cosine":
        eta_min = float(schedule.get("eta_min", 0.0))
        return eta_min + (base - eta_min) * (1 + math.cos(math.pi * iteration / float(schedule.t_max))) / 2
    if name == "constant":
        return base
    raise ConfigError(f"optim.schedule.name={name!r}: expected poly, cosine or constant")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
