"""The method interface (docs/contracts.md §5) and the pieces every method shares."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from pcseg.data.classes import IGNORE_INDEX
from pcseg.utils.errors import ConfigError


@dataclass(frozen=True)
class StepContext:
    """Where the training is when a step runs.

    Attributes:
        iteration: global optimiser step, 0-based.
        epoch: epoch index, 0-based (constant within an epoch: ramp-ups use it).
        max_iterations: total steps of the run (schedules, ramp-ups).
        iters_per_epoch: steps per epoch.
        seed: the run seed; step randomness is keyed by (seed, iteration) via pcseg.utils.rng.
        backend: sparse backend name for building SparseTensors.
        device: torch device of the model.
        world_size: number of processes training together (torch.distributed).
        count_reducer: sums an integer over all processes (identity when not distributed); the engine
            provides it so losses can be normalised by global counts.
    """

    iteration: int
    epoch: int
    max_iterations: int
    iters_per_epoch: int
    seed: int
    backend: str = "torch"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    world_size: int = 1
    count_reducer: Callable[[int], int] | None = None

    def global_count(self, n: int) -> int:
        """``n`` summed over all processes (every process must call this the same number of times)."""
        return int(self.count_reducer(n)) if self.count_reducer is not None else int(n)

    @property
    def epoch_float(self) -> float:
        return self.iteration / max(self.iters_per_epoch, 1)


@dataclass
class StepResult:
    """What one training step produced.

    Attributes:
        loss: scalar tensor to back-propagate, or None when the batch had nothing to learn from
            (the engine then skips backward/step and counts the batch).
        logs: scalar values to log (floats).
        skipped_supervised: True if the supervised term was skipped because no labelled voxel survived.
    """

    loss: torch.Tensor | None
    logs: dict[str, float] = field(default_factory=dict)
    skipped_supervised: bool = False


class Method(nn.Module):
    """Base class. Subclasses implement ``training_step``; extra learnable or EMA state lives in
    ``nn.Module`` attributes so ``state_dict`` covers it (the engine saves it in checkpoints)."""

    #: how many augmented views of each scene the training dataset must produce (1 or 2)
    num_views: int = 1
    #: input feature mode the method expects, or None to keep the data config's
    feature_mode: str | None = None

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def setup(self, model: nn.Module) -> None:
        """Called once by the engine after the model is built and (maybe) loaded (e.g. copy a teacher)."""

    def training_step(self, model: nn.Module, batch: dict[str, Any], ctx: StepContext) -> StepResult:
        raise NotImplementedError

    def after_optimizer_step(self, model: nn.Module, ctx: StepContext) -> None:
        """Hook after ``optimizer.step()`` (EMA teacher updates)."""

    def eval_model(self, model: nn.Module) -> nn.Module:
        """The network to evaluate and to save as the run's result (the student by default)."""
        return model


def masked_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX, ctx: StepContext | None = None
) -> tuple[torch.Tensor | None, int]:
    """Mean cross-entropy over the non-ignored rows, or None if there are none (never NaN).

    With ``ctx`` in a distributed run the mean is over the labelled rows of *all* processes (the sum
    is divided by global count / world size, and DDP averages gradients over processes), so N
    processes compute exactly what one process computes with the same global batch. A process whose
    share has no labelled row then returns a zero loss still connected to ``logits`` (its gradient
    all-reduce must take part); only when no process has one is the result None.

    Args:
        logits: (M, C) scores.
        target: (M,) int64 class ids or ``ignore_index``.
        ctx: the step context (for the global count); None = this process alone.

    Returns:
        (loss or None, number of local rows that contributed).
    """
    valid = target != ignore_index
    n = int(valid.sum())
    total = ctx.global_count(n) if ctx is not None else n
    if total == 0:
        return None, 0
    if n == 0:
        return logits.sum() * 0.0, 0
    world = ctx.world_size if ctx is not None else 1
    loss_sum = nn.functional.cross_entropy(logits[valid].float(), target[valid], reduction="sum")
    return loss_sum / (total / world), n


def sum_losses(terms: list[torch.Tensor | None]) -> torch.Tensor | None:
    """Sum the non-None terms; None if all are None."""
    present = [t for t in terms if t is not None]
    if not present:
        return None
    total = present[0]
    for t in present[1:]:
        total = total + t
    return total


# --------------------------------------------------------------------------- registry
# name -> "module:Class"; imported lazily so that `pcseg.methods` stays light.
_METHODS: dict[str, str] = {
    "supervised": "pcseg.methods.supervised:SupervisedMethod",
    "cpcm": "pcseg.methods.cpcm.method:CPCMMethod",
    "mean_teacher": "pcseg.methods.mean_teacher:MeanTeacherMethod",
}


def register_method(name: str, target: str) -> None:
    _METHODS[name] = target


def build_method(cfg: Any, num_classes: int) -> Method:
    """Build a method from its config node (``name`` + the method's own keys)."""
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in _METHODS:
        raise ConfigError(f"method.name={name!r} is not one of {', '.join(sorted(_METHODS))}")
    module, cls_name = _METHODS[name].split(":")
    cls: Callable[..., Method] = getattr(importlib.import_module(module), cls_name)
    try:
        return cls(num_classes=num_classes, **cfg)
    except TypeError as exc:
        raise ConfigError(f"method {name}: {exc}") from None
