"""The ``ovs-nerf`` method specification (entry point ``nerfstudio.method_configs``).

The TrainerConfig is built here explicitly; importing ``nerfstudio.configs.method_configs`` from a plugin
is a circular import when nerfstudio discovers plugins first (docs/nerf3dovs.md, "Registration").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple, Type

import torch
from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from nerf3dovs.data.datamanager import OvsDataManagerConfig
from nerf3dovs.data.dataparser import Ovs3DDataParserConfig
from nerf3dovs.model.ovs_model import OvsModelConfig
from nerf3dovs.model.schedule import GROUPS
from nerf3dovs.pipeline import OvsPipelineConfig


@dataclass
class OvsAdamConfig(AdamOptimizerConfig):
    """Adam with 3D-OVS's betas (0.9, 0.99). The learning rate is set every step by the model's stage
    schedule (``--pipeline.model.lr-*``); ``lr`` here is only the value before the first step."""

    _target: Type = torch.optim.Adam
    betas: Tuple[float, float] = (0.9, 0.99)
    """Adam betas."""


def _optimizers() -> dict:
    model = OvsModelConfig()
    first_lr = {
        "ovs_density": model.lr_grid,
        "ovs_appearance": model.lr_grid,
        "ovs_render": model.lr_network,
        "ovs_feature": model.lr_feature,
        "ovs_select_grid": model.lr_select_grid,
        "ovs_select_basis": model.lr_select_basis,
    }
    return {g: {"optimizer": OvsAdamConfig(lr=first_lr[g], eps=1e-8), "scheduler": None} for g in GROUPS}


def ovs_nerf_trainer_config() -> TrainerConfig:
    """The full 3D-OVS schedule: 30k reconstruction + 15k segmentation iterations."""
    model = OvsModelConfig()
    return TrainerConfig(
        method_name="ovs-nerf",
        steps_per_eval_batch=500,
        steps_per_eval_image=1000,
        steps_per_eval_all_images=1000000,
        steps_per_save=2000,
        max_num_iterations=model.recon_iters + model.seg_iters,
        mixed_precision=False,
        pipeline=OvsPipelineConfig(
            datamanager=OvsDataManagerConfig(dataparser=Ovs3DDataParserConfig()),
            model=model,
        ),
        optimizers=_optimizers(),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis="viewer",
    )


ovs_nerf_method = MethodSpecification(
    config=ovs_nerf_trainer_config(),
    description="3D-OVS open-vocabulary segmentation (TensoRF-VM in NDC + CLIP hierarchy, RDA and FDA losses)",
)
