"""Plain supervised training: cross-entropy on the labelled voxels (full or sparse labels).

With ``num_views=2`` it is the CPCM paper's "MinkNet" baseline: CE on two independently augmented
views of each scene and nothing else (the ``sparse_*`` experiments).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from pcseg.methods.base import Method, StepContext, StepResult, masked_cross_entropy, sum_losses
from pcseg.sparse import SparseTensor


class SupervisedMethod(Method):
    def __init__(self, num_classes: int, num_views: int = 1, ignore_index: int = -1):
        super().__init__(num_classes, ignore_index)
        if num_views not in (1, 2):
            raise ValueError(f"num_views must be 1 or 2, got {num_views}")
        self.num_views = num_views

    def training_step(self, model: nn.Module, batch: dict[str, Any], ctx: StepContext) -> StepResult:
        views = [batch] if self.num_views == 1 else [batch["view1"], batch["view2"]]
        terms, logs, n_total = [], {}, 0
        for i, view in enumerate(views, start=1):
            x = SparseTensor.from_batch(view["coords"], view["feat"], backend=ctx.backend)
            out = model(x)
            ce, n = masked_cross_entropy(out["logits"], view["segment"], self.ignore_index, ctx)
            terms.append(ce)
            n_total += n
            if ce is not None:
                logs[f"loss_ce{i if self.num_views > 1 else ''}"] = float(ce.detach())
        loss = sum_losses(terms)
        logs["labelled_voxels"] = float(n_total)
        return StepResult(loss=loss, logs=logs, skipped_supervised=loss is None)
