"""The two-stage schedule of one ``ns-train ovs-nerf`` run, as pure functions of the global step.

Steps ``[0, recon_iters)`` reconstruct the radiance field (3D-OVS ``train.py``); from ``recon_iters`` on
the segmentation stage runs (3D-OVS ``train_seg.py``) with density frozen, and from
``recon_iters + joint_start_iter`` the appearance is fine-tuned jointly with an RGB loss.

Learning rates follow 3D-OVS: every group decays by ``ratio ** (1 / horizon)`` per step (horizon =
``recon_iters`` in the reconstruction stage, ``seg_iters`` in the segmentation stage) and restarts from
its base value whenever its optimiser is rebuilt: at each grid upsampling (reconstruction), at the
start of the segmentation stage and at the start of the joint phase (3D-OVS builds a new Adam there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

Stage = Literal["recon", "seg", "joint"]

GROUPS = ("ovs_density", "ovs_appearance", "ovs_render", "ovs_feature", "ovs_select_grid", "ovs_select_basis")
"""Parameter groups of the model (each needs an entry in the method's ``optimizers``)."""


@dataclass(frozen=True)
class StageSchedule:
    """Stage boundaries and learning rates (copied from the model config)."""

    recon_iters: int
    seg_iters: int
    joint_start_iter: int
    upsample_steps: Sequence[int]
    lr_grid: float
    lr_network: float
    lr_joint_grid: float
    lr_joint_network: float
    lr_feature: float
    lr_select_grid: float
    lr_select_basis: float
    lr_decay_ratio: float = 0.1
    lr_reset_on_upsample: bool = True

    @property
    def seg_start(self) -> int:
        return self.recon_iters

    @property
    def joint_start(self) -> int:
        return self.recon_iters + self.joint_start_iter

    def stage(self, step: int) -> Stage:
        if step < self.seg_start:
            return "recon"
        if step < self.joint_start:
            return "seg"
        return "joint"

    def trainable(self, step: int) -> dict[str, bool]:
        """Which parameter groups learn at ``step``."""
        stage = self.stage(step)
        recon = stage == "recon"
        joint = stage == "joint"
        return {
            "ovs_density": recon,
            "ovs_appearance": recon or joint,
            "ovs_render": recon or joint,
            "ovs_feature": not recon,
            "ovs_select_grid": not recon,
            "ovs_select_basis": not recon,
        }

    def restarts(self) -> list[int]:
        """Steps at which optimiser state is rebuilt (Adam moments cleared, LR back to base)."""
        steps = [self.seg_start, self.joint_start]
        if self.lr_reset_on_upsample:
            steps += [s for s in self.upsample_steps if 0 < s < self.recon_iters]
        return sorted(set(steps))

    def _last_restart(self, step: int, candidates: Sequence[int]) -> int:
        return max([0] + [s for s in candidates if s <= step])

    def learning_rate(self, group: str, step: int) -> float:
        """Learning rate of ``group`` at ``step`` (0 for a frozen group)."""
        if group not in GROUPS:
            raise KeyError(f"unknown parameter group {group!r}; expected one of {GROUPS}")
        if not self.trainable(step)[group]:
            return 0.0
        stage = self.stage(step)
        if stage == "recon":
            ups = self.upsample_steps if self.lr_reset_on_upsample else ()
            start = self._last_restart(step, [s for s in ups if s < self.recon_iters])
            base = self.lr_grid if group in ("ovs_density", "ovs_appearance") else self.lr_network
            horizon = max(1, self.recon_iters)
        else:
            start = self.joint_start if stage == "joint" else self.seg_start
            horizon = max(1, self.seg_iters)
            base = {
                "ovs_appearance": self.lr_joint_grid,
                "ovs_render": self.lr_joint_network,
                "ovs_feature": self.lr_feature,
                "ovs_select_grid": self.lr_select_grid,
                "ovs_select_basis": self.lr_select_basis,
            }[group]
        return base * self.lr_decay_ratio ** ((step - start) / horizon)

    def tv_factor(self, step: int) -> float:
        """TensoRF decays its TV weights with the LR factor over the reconstruction (never reset)."""
        return self.lr_decay_ratio ** (min(step, self.recon_iters) / max(1, self.recon_iters))
