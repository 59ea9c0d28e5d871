"""The training engine: optimiser, schedule, loop, evaluation, checkpoints, logging.

`train(cfg)` runs a whole training from a composed hydra config (docs/contracts.md §6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep `import pcseg.engine` light
    from pcseg.engine.trainer import RunResult


def train(cfg) -> "RunResult":
    from pcseg.engine.trainer import train as _train

    return _train(cfg)


__all__ = ["train"]
