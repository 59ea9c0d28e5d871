"""Validation: voxel-level mIoU (the CPCM protocol) and point-level mIoU on the original points
(predictions re-projected through the voxelisation's inverse map), from the same forward pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from pcseg.metrics import ConfusionMatrix
from pcseg.sparse import SparseTensor


@dataclass
class EvalResult:
    voxel: ConfusionMatrix
    point: ConfusionMatrix

    def scalars(self, prefix: str = "val") -> dict[str, float]:
        return {
            f"{prefix}/miou_voxel": self.voxel.miou(),
            f"{prefix}/miou_point": self.point.miou(),
            f"{prefix}/acc_voxel": self.voxel.accuracy(),
            f"{prefix}/acc_point": self.point.accuracy(),
        }


def move_batch(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) batch dict to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_batch(v, device) for k, v in batch.items()}
    return batch


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[dict[str, Any]],
    num_classes: int,
    backend: str,
    device: torch.device,
    amp: bool = False,
    on_scene=None,
) -> EvalResult:
    """Run ``model`` over validation batches and accumulate voxel and point confusion matrices.

    Args:
        batches: collated single-view batches with ``segment`` (voxel GT), ``inverse`` and ``point_segment``.
        on_scene: optional callback ``(scene_name, point_pred (N,), point_prob (N, C), batch_slice)`` for
            prediction export or uncertainty maps.

    Confusion matrices are summed over ranks when distributed.
    """
    was_training = model.training
    model.eval()
    voxel_cm = ConfusionMatrix(num_classes, device=device)
    point_cm = ConfusionMatrix(num_classes, device=device)
    try:
        for batch in batches:
            batch = move_batch(batch, device)
            x = SparseTensor.from_batch(batch["coords"], batch["feat"], backend=backend)
            with torch.autocast(device_type=device.type, enabled=amp and device.type == "cuda"):
                logits = model(x)["logits"].float()
            pred = logits.argmax(1)
            voxel_cm.update(pred, batch["segment"])
            inverse = batch["inverse"]
            covered = inverse >= 0
            point_pred = torch.full_like(inverse, -1)
            point_pred[covered] = pred[inverse[covered]]
            if "point_segment" in batch:
                # Points whose voxel was dropped have no prediction; validation views drop nothing.
                point_cm.update(point_pred[covered], batch["point_segment"][covered])
            if on_scene is not None:
                prob = torch.softmax(logits, 1)
                offsets = batch["point_offset"].tolist()
                starts = [0, *offsets[:-1]]
                for b, name in enumerate(batch["scene"]):
                    sl = slice(starts[b], offsets[b])
                    inv = inverse[sl]
                    on_scene(name, point_pred[sl].cpu().numpy(), prob[inv.clamp(min=0)].cpu().numpy(), sl)
    finally:
        model.train(was_training)
    voxel_cm.all_reduce_()
    point_cm.all_reduce_()
    return EvalResult(voxel=voxel_cm, point=point_cm)


def format_summary(result: EvalResult, class_names: list[str], title: str) -> str:
    """Per-class IoU table with the voxel (CPCM protocol) and point (re-projected) columns."""
    v, p = result.voxel.summary(class_names), result.point.summary(class_names)
    w = max(len(n) for n in class_names + ["accuracy"])
    pct = lambda x: "     -" if not np.isfinite(x) else f"{100 * x:6.2f}"  # noqa: E731
    lines = [title, f"{'class':<{w}}  {'IoU vox':>7}  {'IoU pt':>7}  {'points':>10}", "-" * (w + 32)]
    for i, n in enumerate(class_names):
        lines.append(f"{n:<{w}}  {pct(v.iou[i]):>7}  {pct(p.iou[i]):>7}  {int(p.support[i]):>10d}")
    lines += ["-" * (w + 32), f"{'mIoU':<{w}}  {pct(v.miou):>7}  {pct(p.miou):>7}",
              f"{'accuracy':<{w}}  {pct(v.accuracy):>7}  {pct(p.accuracy):>7}"]
    return "\n".join(lines)


def save_confusion(path: Path, cm: ConfusionMatrix) -> None:
    from pcseg.utils.atomic import atomic_numpy_save

    atomic_numpy_save(path, cm.matrix.cpu().numpy())
