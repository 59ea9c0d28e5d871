"""Segmentation metrics: the one implementation used by training, evaluation, active learning and the
NeRF evaluation (nerf3dovs imports this leaf module; it depends on torch and numpy only).

IoU_c = TP / (TP + FP + FN) accumulated over a whole split (the CPCM/HPAL protocol); mIoU is the mean
over classes that occur in the ground truth or the prediction (a class absent from both is NaN and
skipped, unlike HPAL's quirk of scoring it 1). Distributed runs sum confusion matrices across ranks
(``all_reduce_``), never average per-rank mIoUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


class ConfusionMatrix:
    """A ``(C, C)`` int64 confusion matrix, rows = ground truth, columns = prediction."""

    def __init__(self, num_classes: int, ignore_index: int = -1, device: str | torch.device = "cpu"):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add predictions.

        Args:
            pred: (N,) predicted class ids in [0, C).
            target: (N,) ground-truth ids in [0, C) or ``ignore_index``.
        """
        pred = torch.as_tensor(pred).reshape(-1).to(self.matrix.device, torch.int64)
        target = torch.as_tensor(target).reshape(-1).to(self.matrix.device, torch.int64)
        if pred.shape != target.shape:
            raise ValueError(f"pred and target differ in size: {tuple(pred.shape)} vs {tuple(target.shape)}")
        keep = target != self.ignore_index
        pred, target = pred[keep], target[keep]
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= self.num_classes):
            raise ValueError(f"target ids outside [0, {self.num_classes}) besides ignore={self.ignore_index}")
        if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= self.num_classes):
            raise ValueError(f"predicted ids outside [0, {self.num_classes})")
        idx = target * self.num_classes + pred
        self.matrix += torch.bincount(idx, minlength=self.num_classes**2).reshape(self.num_classes, -1)

    def merge(self, other: "ConfusionMatrix") -> None:
        self.matrix += other.matrix.to(self.matrix.device)

    def all_reduce_(self) -> "ConfusionMatrix":
        """Sum the matrix over all ranks of the default process group (no-op when not distributed)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM)
        return self

    def reset(self) -> None:
        self.matrix.zero_()

    # ------------------------------------------------------------------ results
    def iou(self) -> np.ndarray:
        """(C,) per-class IoU; NaN for a class with no ground truth and no prediction."""
        m = self.matrix.double().cpu()
        tp = m.diag()
        denom = m.sum(0) + m.sum(1) - tp
        iou = torch.where(denom > 0, tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))
        return iou.numpy()

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def accuracy(self) -> float:
        """Overall (point or voxel) accuracy over non-ignored entries."""
        total = int(self.matrix.sum())
        return float(self.matrix.diag().sum()) / total if total else float("nan")

    def class_accuracy(self) -> np.ndarray:
        m = self.matrix.double().cpu()
        support = m.sum(1)
        return torch.where(support > 0, m.diag() / support.clamp(min=1), torch.full_like(support, float("nan"))).numpy()

    def summary(self, class_names: Sequence[str] | None = None) -> "SegmentationReport":
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")
        return SegmentationReport(
            class_names=names,
            iou=self.iou(),
            class_accuracy=self.class_accuracy(),
            support=self.matrix.sum(1).cpu().numpy(),
            miou=self.miou(),
            accuracy=self.accuracy(),
        )


@dataclass
class SegmentationReport:
    class_names: list[str]
    iou: np.ndarray
    class_accuracy: np.ndarray
    support: np.ndarray
    miou: float
    accuracy: float

    def as_dict(self) -> dict:
        return {
            "miou": self.miou,
            "accuracy": self.accuracy,
            "per_class": {
                n: {"iou": _f(i), "accuracy": _f(a), "support": int(s)}
                for n, i, a, s in zip(self.class_names, self.iou, self.class_accuracy, self.support)
            },
        }

    def table(self, title: str = "") -> str:
        """A plain-text per-class table (what the CLI prints at the end of a run)."""
        w = max([len(n) for n in self.class_names] + [10])
        lines = [title] if title else []
        lines.append(f"{'class':<{w}}  {'IoU':>7}  {'acc':>7}  {'support':>10}")
        lines.append("-" * (w + 30))
        for n, i, a, s in zip(self.class_names, self.iou, self.class_accuracy, self.support):
            lines.append(f"{n:<{w}}  {_pct(i):>7}  {_pct(a):>7}  {int(s):>10d}")
        lines.append("-" * (w + 30))
        lines.append(f"{'mIoU':<{w}}  {_pct(self.miou):>7}")
        lines.append(f"{'accuracy':<{w}}  {_pct(self.accuracy):>7}")
        return "\n".join(lines)


def _f(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _pct(x: float) -> str:
    return "   -" if not np.isfinite(x) else f"{100 * x:6.2f}"


def view_iou_and_accuracy(pred: np.ndarray, gt_onehot: np.ndarray) -> tuple[np.ndarray, float]:
    """The 3D-OVS per-view metric (sklearn ``jaccard_score(average=None)`` and ``accuracy_score`` on
    one-hot multilabel matrices).

    Args:
        pred: (H, W) predicted class ids.
        gt_onehot: (H, W, C) binary ground-truth masks (a pixel may have zero or several ones).

    Returns:
        per-class IoU (C,), with 0 where a class is in neither GT nor prediction (sklearn's
        ``zero_division`` default), and exact-row accuracy: the fraction of pixels whose one-hot
        prediction equals the GT row (pixels with an all-zero or multi-hot GT row always count as wrong).
    """
    c = gt_onehot.shape[-1]
    gt = gt_onehot.reshape(-1, c).astype(bool)
    pr = np.zeros_like(gt)
    pr[np.arange(gt.shape[0]), pred.reshape(-1)] = True
    inter = (gt & pr).sum(0)
    union = (gt | pr).sum(0)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    acc = float((gt == pr).all(1).mean())
    return iou, acc
