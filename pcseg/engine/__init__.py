"""The training engine: optimiser, schedule, loop, evaluation, checkpoints, logging.

`train(cfg)` runs a whole training from a composed hydra config (docs/contracts.md §6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep `import pcseg.engine` light
    from pcseg.engine.trainer import RunResult


def train(cfg, weak_labels=None) -> "RunResult":
    """See :func:`pcseg.engine.trainer.train`."""
    from pcseg.engine.trainer import train as _train

    return _train(cfg, weak_labels=weak_labels)


__all__ = ["train"]
