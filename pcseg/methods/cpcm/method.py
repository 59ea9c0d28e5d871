"""CPCM: Contextual Point Cloud Modelling (ICCV 2023) as the official code trains it (cpcm_hpal.md §5).

Per step, one shared network runs three times (train mode, BatchNorm statistics updated each time):
view 1, view 2, and view 2 with RegionMask applied to its input features. The loss is

    L = CE(z1, y1) + CE(z2, y2)
        + λ_c·r(e)·J(p1[matched], p2[matched])
        + λ_m·r(e)·[ J(sg(p1)[matched], pm[matched]) + J(sg(p2), pm) ]

where ``J`` is the official divergence (losses.py), ``matched`` are the voxel pairs of the two views
whose representatives are the same original point (``batch["corr"]``), ``sg`` a stop-gradient, and
``r(e)`` the sigmoid ramp-up over the first epochs. With ``lambda_mask = 0`` it is the paper's
"consistency" baseline (no masked pass); with both weights 0 it is the two-view "MinkNet" baseline.

Deliberate departures from the official code (docs/cpcm.md):
- a batch without a labelled voxel gives no CE term instead of NaN;
- ``corr_skip="scene"`` (default): a scene without matched points simply contributes no matched pair,
  and the self term (which needs no correspondence) always counts. ``corr_skip="batch"`` restores the
  official rule: if any scene of the batch has no matched point, the consistency term and both masked
  terms are skipped for the whole batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pcseg.methods.base import Method, StepContext, StepResult, masked_cross_entropy, sum_losses
from pcseg.methods.cpcm.losses import DEFAULT_EPS, js_divergence_logits
from pcseg.methods.cpcm.rampup import sigmoid_rampup
from pcseg.methods.cpcm.region_mask import mask_batch, num_masked_cells

CORR_SKIP_MODES = ("scene", "batch")


class CPCMMethod(Method):
    """Two-view training with the view-consistency and masked-consistency terms.

    Args:
        num_classes: C.
        lambda_consistency: λ_c, weight of J(p1, p2) on matched points (0 = off).
        lambda_mask: λ_m, weight of the two masked terms (0 = off: no masked forward pass).
        mask_grid: G, cells per axis of RegionMask.
        mask_ratio: fraction of the G³ cells masked (0.75).
        rampup_epochs: length of the sigmoid ramp-up of λ_c and λ_m (5; 0 = none).
        eps: the constant of the divergence (1e-4).
        seg_both_views: CE on view 2 as well as view 1 (official ``two_stream_seg_both True``).
        corr_skip: "scene" (fixed) or "batch" (official) handling of scenes without matched points.
        ignore_index: label of unlabelled voxels.
        feature_mode: optional override of the input features (None keeps the data config's).
    """

    num_views = 2

    def __init__(
        self,
        num_classes: int,
        lambda_consistency: float = 0.0,
        lambda_mask: float = 5.0,
        mask_grid: int = 4,
        mask_ratio: float = 0.75,
        rampup_epochs: float = 5.0,
        eps: float = DEFAULT_EPS,
        seg_both_views: bool = True,
        corr_skip: str = "scene",
        ignore_index: int = -1,
        feature_mode: str | None = None,
    ):
        super().__init__(num_classes, ignore_index)
        if lambda_consistency < 0 or lambda_mask < 0:
            raise ValueError(f"loss weights must be >= 0, got lambda_consistency={lambda_consistency}, "
                             f"lambda_mask={lambda_mask}")
        if corr_skip not in CORR_SKIP_MODES:
            raise ValueError(f"corr_skip must be one of {', '.join(CORR_SKIP_MODES)}, got {corr_skip!r}")
        num_masked_cells(mask_grid, mask_ratio)  # validates G and the ratio
        if rampup_epochs < 0:
            raise ValueError(f"rampup_epochs must be >= 0, got {rampup_epochs}")
        self.lambda_consistency = float(lambda_consistency)
        self.lambda_mask = float(lambda_mask)
        self.mask_grid = int(mask_grid)
        self.mask_ratio = float(mask_ratio)
        self.rampup_epochs = float(rampup_epochs)
        self.eps = float(eps)
        self.seg_both_views = bool(seg_both_views)
        self.corr_skip = corr_skip
        self.feature_mode = feature_mode

    @staticmethod
    def _sparse(coords: torch.Tensor, feat: torch.Tensor, backend: str):
        from pcseg.sparse import SparseTensor

        return SparseTensor.from_batch(coords, feat, backend=backend)

    def training_step(self, model: nn.Module, batch: dict[str, Any], ctx: StepContext) -> StepResult:
        view1, view2 = batch["view1"], batch["view2"]
        corr = batch["corr"]
        logs: dict[str, float] = {}

        x2 = self._sparse(view2["coords"], view2["feat"], ctx.backend)
        z1 = model(self._sparse(view1["coords"], view1["feat"], ctx.backend))["logits"]
        z2 = model(x2)["logits"]
        ce1, n1 = masked_cross_entropy(z1, view1["segment"], self.ignore_index, ctx)
        ce2, n2 = (masked_cross_entropy(z2, view2["segment"], self.ignore_index, ctx)
                   if self.seg_both_views else (None, 0))
        for key, value in (("loss_ce1", ce1), ("loss_ce2", ce2)):
            if value is not None:
                logs[key] = float(value.detach())
        logs["labelled_voxels"] = float(n1 + n2)
        terms: list[torch.Tensor | None] = [ce1, ce2]

        ramp = sigmoid_rampup(ctx.epoch, self.rampup_epochs)
        logs["rampup"] = ramp
        logs["matched_points"] = float(corr.shape[0])
        skip_batch = False
        if (self.lambda_consistency > 0 or self.lambda_mask > 0) and self.corr_skip == "batch":
            # Official rule, decided on the global batch so that N processes behave like one.
            scenes_without_match = int((_per_scene_counts(batch["corr_offset"]) == 0).sum())
            skip_batch = ctx.global_count(scenes_without_match) > 0
        logs["unsupervised_skipped"] = float(skip_batch)

        if self.lambda_consistency > 0 and not skip_batch:
            consistency = self._mean_divergence(z1[corr[:, 0]], z2[corr[:, 1]], ctx)
            if consistency is not None:
                logs["loss_consistency"] = float(consistency.detach())
                terms.append(self.lambda_consistency * ramp * consistency)

        if self.lambda_mask > 0:
            masked = mask_batch(view2["coords"], view2["feat"], view2["offset"], view2["scene"],
                                self.mask_grid, self.mask_ratio, ctx.seed, ctx.iteration)
            # The masked pass runs even when its terms are skipped: three BN-updating passes per step, as
            # in the official trainer.
            # Same voxels as view 2: reuse its tensor context (coordinate sets and kernel maps).
            zm = model(x2.replace_feats(masked.feat))["logits"]
            logs["masked_fraction"] = masked.masked_fraction
            if not skip_batch:
                mask_corr = self._mean_divergence(z1.detach()[corr[:, 0]], zm[corr[:, 1]], ctx)
                mask_self = self._mean_divergence(z2.detach(), zm, ctx)
                for key, value in (("loss_mask_corr", mask_corr), ("loss_mask_self", mask_self)):
                    if value is not None:
                        logs[key] = float(value.detach())
                        terms.append(self.lambda_mask * ramp * value)

        loss = sum_losses(terms)
        return StepResult(loss=loss, logs=logs, skipped_supervised=ce1 is None and ce2 is None)

    def _mean_divergence(self, target: torch.Tensor, pred: torch.Tensor, ctx: StepContext) -> torch.Tensor | None:
        """J averaged over the rows of the *global* batch (like the engine's CE), None if it has none.

        With one process this is the official mean over rows. With N processes the local sum is divided
        by (global rows / N), and DDP's gradient averaging completes the global mean. A process without
        rows returns a zero still connected to ``pred`` so it takes part in the gradient all-reduce.
        """
        n = int(pred.shape[0])
        total = ctx.global_count(n)
        if total == 0:
            return None
        if n == 0:
            return pred.sum() * 0.0
        rows_sum = js_divergence_logits(target, pred, self.eps, reduction="sum")
        return rows_sum / (total / ctx.world_size)


def _per_scene_counts(offset: torch.Tensor) -> torch.Tensor:
    """(B,) cumulative counts → (B,) counts per scene."""
    offset = offset.long()
    return torch.diff(offset, prepend=offset.new_zeros(1))
