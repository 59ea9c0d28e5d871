"""HPAL's semi-supervised mean teacher (cpcm_hpal.md §15).

Per step, for a batch of whole scenes seen twice — ``view1`` strongly augmented (student input) and
``view2`` not augmented at all (teacher input), both holding every point of the scenes:

- ``L_sup``: cross-entropy of the student's *voxel* logits on the labelled voxels of view 1;
- ``L_cons``: ``F.kl_div(log_softmax(s), softmax(t))`` with PyTorch's ``'mean'`` reduction over the
  *points* (student and teacher voxel logits mapped to the original points through each view's
  ``inverse``), i.e. KL(teacher || student) summed over classes and divided by N*C — so the term is
  1/C of a per-point KL, exactly as the official code weighs it;
- ``L_pl``: cross-entropy of the student's point logits on the teacher's argmax where the teacher's
  top probability is >= 0.75 and the point is unlabelled (its view-1 voxel target is ignore);
- loss = L_sup + L_cons + L_pl (weights 1, no ramp-up). A term whose target set is empty is left
  out instead of becoming NaN (the official code returns NaN then).

After every optimiser step the teacher becomes ``keep * teacher + (1 - keep) * student`` over the
whole ``state_dict`` (weights, BN running statistics and ``num_batches_tracked``; integer buffers are
truncated back to integers as ``load_state_dict`` does in the official code), keep = 0.955.
The teacher starts as a copy of the student when the run starts (round 0: random init; later
rounds: the student's best checkpoint of the previous round, passed as ``init_checkpoint``).

The teacher runs in train mode by default, as in the official code (BatchNorm uses batch statistics
and updates the teacher's running statistics before the EMA), but under ``torch.no_grad()``: the
official code builds a graph through the teacher and never uses its gradients, which only costs memory.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pcseg.methods.base import Method, StepContext, StepResult, masked_cross_entropy, sum_losses


def points_from_voxels(voxel_values: torch.Tensor, inverse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Map voxel rows to the original points.

    Args:
        voxel_values: (M, ...) per-voxel values of a collated view.
        inverse: (N,) global voxel row of every point, -1 where the point's voxel was dropped.

    Returns:
        (N, ...) values of every point (rows of dropped points are row 0's, masked out by the mask),
        and the (N,) bool mask of points that have a voxel.
    """
    covered = inverse >= 0
    return voxel_values[inverse.clamp(min=0)], covered


def kl_consistency(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, ctx: StepContext | None = None
) -> torch.Tensor | None:
    """``F.kl_div(log_softmax(student), softmax(teacher), reduction='mean')``: the sum over points and
    classes of p_t (log p_t - log p_s), divided by N*C (N points over all processes, C classes).

    Args:
        student_logits: (N, C) point logits of the student (gradient flows).
        teacher_logits: (N, C) point logits of the teacher (treated as constants).
        ctx: step context for the global point count of distributed runs; None = this process alone.

    Returns:
        Scalar loss, or None when there are no points anywhere.
    """
    n, c = student_logits.shape
    total = ctx.global_count(n) if ctx is not None else n
    if total == 0:
        return None
    if n == 0:
        return student_logits.sum() * 0.0
    log_p_s = F.log_softmax(student_logits.float(), dim=1)
    p_t = F.softmax(teacher_logits.detach().float(), dim=1)
    world = ctx.world_size if ctx is not None else 1
    return F.kl_div(log_p_s, p_t, reduction="sum") / (total * c / world)


def pseudo_labels(
    teacher_prob: torch.Tensor, point_target: torch.Tensor, threshold: float, ignore_index: int = -1
) -> torch.Tensor:
    """Teacher argmax on unlabelled, confident points; ``ignore_index`` elsewhere.

    Args:
        teacher_prob: (N, C) teacher probabilities.
        point_target: (N,) the student view's voxel target mapped to each point (``ignore_index`` =
            unlabelled).
        threshold: minimum top probability (HPAL: 0.75, inclusive).

    Returns:
        (N,) int64 targets.
    """
    conf, arg = teacher_prob.max(dim=1)
    keep = (conf >= threshold) & (point_target == ignore_index)
    return torch.where(keep, arg, torch.full_like(arg, ignore_index))


@torch.no_grad()
def ema_update_(teacher: nn.Module, student: nn.Module, keep: float) -> None:
    """``teacher <- keep * teacher + (1 - keep) * student`` over every ``state_dict`` entry.

    Floating tensors are blended in place; integer buffers (BatchNorm ``num_batches_tracked``) are
    blended in floating point and truncated, as copying the blended value into the integer buffer does.
    """
    s_state = student.state_dict()
    for key, t in teacher.state_dict().items():
        if key not in s_state:
            raise KeyError(f"EMA: teacher entry {key!r} is not in the student")
        s = s_state[key].to(t.device)
        if t.dtype.is_floating_point:
            t.mul_(keep).add_(s.to(t.dtype), alpha=1.0 - keep)
        else:
            t.copy_(t.double() * keep + s.double() * (1.0 - keep))


class MeanTeacherMethod(Method):
    """Mean teacher with a strongly augmented student view and an un-augmented teacher view.

    Args:
        num_classes: C.
        ema_keep_rate: teacher keep rate per step (HPAL ``ema_keep_rate`` 0.955).
        pseudo_threshold: teacher confidence for pseudo-labels (HPAL 0.75).
        consistency_weight, pseudo_weight: weights of L_cons and L_pl (HPAL: 1 and 1).
        teacher_train_mode: run the teacher in train mode (BN batch statistics), as HPAL does.
        feature_mode: input features (HPAL: ``rgb_xyz`` = [RGB/255, xyz]); None keeps the data config's.
        eval_teacher: evaluate/export the teacher instead of the student (HPAL reports the student).
    """

    num_views = 2

    def __init__(
        self,
        num_classes: int,
        ema_keep_rate: float = 0.955,
        pseudo_threshold: float = 0.75,
        consistency_weight: float = 1.0,
        pseudo_weight: float = 1.0,
        teacher_train_mode: bool = True,
        feature_mode: str | None = "rgb_xyz",
        eval_teacher: bool = False,
        ignore_index: int = -1,
    ):
        super().__init__(num_classes, ignore_index)
        if not 0.0 <= ema_keep_rate <= 1.0:
            raise ValueError(f"ema_keep_rate must lie in [0, 1], got {ema_keep_rate}")
        self.ema_keep_rate = float(ema_keep_rate)
        self.pseudo_threshold = float(pseudo_threshold)
        self.consistency_weight = float(consistency_weight)
        self.pseudo_weight = float(pseudo_weight)
        self.teacher_train_mode = bool(teacher_train_mode)
        self.feature_mode = feature_mode
        self.eval_teacher = bool(eval_teacher)
        self.teacher: nn.Module | None = None

    # ------------------------------------------------------------------ data
    @staticmethod
    def view_augment(augment: Any) -> list[Any]:
        """Per-view augmentation: view 1 (student) the configured strong augmentation, view 2 (teacher)
        none. A two-element list is taken as already per view (``data.augment: [hpal_strong, none]``)."""
        if isinstance(augment, (list, tuple)) or type(augment).__name__ == "ListConfig":
            if len(augment) != 2:
                raise ValueError(f"mean teacher: per-view augmentation needs 2 entries, got {len(augment)}")
            return list(augment)
        return [augment, None]

    # ------------------------------------------------------------------ engine hooks
    def setup(self, model: nn.Module) -> None:
        student = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        teacher = copy.deepcopy(student)
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.teacher = teacher

    def after_optimizer_step(self, model: nn.Module, ctx: StepContext) -> None:
        if self.teacher is None:
            raise RuntimeError("MeanTeacherMethod.setup(model) was not called")
        ema_update_(self.teacher, model, self.ema_keep_rate)

    def eval_model(self, model: nn.Module) -> nn.Module:
        if self.eval_teacher and self.teacher is not None:
            return self.teacher
        return model

    # ------------------------------------------------------------------ the step
    def training_step(self, model: nn.Module, batch: dict[str, Any], ctx: StepContext) -> StepResult:
        from pcseg.sparse import SparseTensor

        if self.teacher is None:
            raise RuntimeError("MeanTeacherMethod.setup(model) was not called")
        v_s, v_t = batch["view1"], batch["view2"]
        if v_s["inverse"].shape != v_t["inverse"].shape or not torch.equal(
            v_s["point_offset"].cpu(), v_t["point_offset"].cpu()
        ):
            raise ValueError("mean teacher: the two views must hold the same points (same scenes, same point counts)")

        out_s = model(SparseTensor.from_batch(v_s["coords"], v_s["feat"], backend=ctx.backend))
        self.teacher.train(self.teacher_train_mode)
        with torch.no_grad():
            out_t = self.teacher(SparseTensor.from_batch(v_t["coords"], v_t["feat"], backend=ctx.backend))
        logits_s, logits_t = out_s["logits"], out_t["logits"].detach()

        l_sup, n_lab = masked_cross_entropy(logits_s, v_s["segment"], self.ignore_index, ctx)

        s_pt, cov_s = points_from_voxels(logits_s, v_s["inverse"])
        t_pt, cov_t = points_from_voxels(logits_t, v_t["inverse"])
        y_pt, _ = points_from_voxels(v_s["segment"], v_s["inverse"])
        both = cov_s & cov_t
        s_pt, t_pt, y_pt = s_pt[both], t_pt[both], y_pt[both]

        l_cons = kl_consistency(s_pt, t_pt, ctx)
        target_pl = pseudo_labels(F.softmax(t_pt.float(), dim=1), y_pt, self.pseudo_threshold, self.ignore_index)
        l_pl, n_pl = masked_cross_entropy(s_pt, target_pl, self.ignore_index, ctx)

        terms = [
            l_sup,
            None if l_cons is None else self.consistency_weight * l_cons,
            None if l_pl is None else self.pseudo_weight * l_pl,
        ]
        logs = {"labelled_voxels": float(n_lab), "pseudo_points": float(n_pl), "points": float(int(both.sum()))}
        for name, value in (("loss_sup", l_sup), ("loss_cons", l_cons), ("loss_pl", l_pl)):
            if value is not None:
                logs[name] = float(value.detach())
        return StepResult(loss=sum_losses(terms), logs=logs, skipped_supervised=l_sup is None)
