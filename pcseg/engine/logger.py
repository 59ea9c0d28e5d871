"""Run logging: scalars to TensorBoard and to ``metrics.jsonl`` (rank 0 only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pcseg.utils.atomic import atomic_write_text


class RunLogger:
    """Writes scalars to ``<run_dir>/tb`` (TensorBoard) and appends JSON lines to ``metrics.jsonl``.

    Steps are logged 1-based (after the step). On resume from a checkpoint taken after ``t`` steps,
    lines logged after it (by the killed run) are dropped and TensorBoard purges its events from step
    ``t + 1`` on, so the logs hold one value per step.
    """

    def __init__(self, run_dir: Path, enabled: bool = True, resume_iteration: int | None = None):
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self._tb = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume_iteration is not None and self.path.exists():
            kept = [ln for ln in self.path.read_text().splitlines()
                    if ln.strip() and json.loads(ln).get("iteration", 0) <= resume_iteration]
            atomic_write_text(self.path, "".join(f"{ln}\n" for ln in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter

            purge = resume_iteration + 1 if resume_iteration is not None else None
            self._tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge)
        except ImportError:  # tensorboard is a dependency, but never lose a run over logging
            self._tb = None

    def log(self, iteration: int, scalars: dict[str, Any], **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"iteration": iteration, **fields, **{k: float(v) for k, v in scalars.items()}}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, float(v), iteration)

    def text(self, tag: str, text: str, iteration: int) -> None:
        if self.enabled and self._tb is not None:
            self._tb.add_text(tag, f"```\n{text}\n```", iteration)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
