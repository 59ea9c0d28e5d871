"""Overrides that shrink any training config to a few seconds on 2 cores (shared by engine/method tests).

A plain module rather than conftest: several test folders have their own conftest.py, so
``from conftest import ...`` resolves to whichever was imported first.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tiny_train_overrides(root: Path, run_dir: Path, **extra) -> list[str]:
    """Overrides that make any training config run in about a second per step on 2 cores."""
    base = {
        "data.root": str(root), "data.voxel_size": 0.2, "data.num_workers": 0, "data.batch_size": 2,
        "model.width": 0.125, "trainer.max_iterations": 4, "trainer.eval_every": 1, "trainer.progress": False,
        "trainer.log_every": 1, "run_dir": str(run_dir),
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]
