"""ovs-nerf pipeline: builds the 2D encoders once and hands them to the datamanager and the model
(the LERF pattern), and tells the datamanager which stage each step belongs to."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Type

import torch
import torch.distributed as dist
from nerfstudio.models.base_model import Model
from nerfstudio.pipelines.base_pipeline import Pipeline, VanillaPipeline, VanillaPipelineConfig
from torch.cuda.amp.grad_scaler import GradScaler
from torch.nn.parallel import DistributedDataParallel as DDP

from nerf3dovs import encoders
from nerf3dovs.data.datamanager import OvsDataManagerConfig
from nerf3dovs.model.ovs_model import OvsModelConfig


@dataclass
class OvsPipelineConfig(VanillaPipelineConfig):
    """ovs-nerf pipeline: encoders + datamanager + model."""

    _target: Type = field(default_factory=lambda: OvsPipeline)
    datamanager: OvsDataManagerConfig = field(default_factory=OvsDataManagerConfig)
    """Rays, CLIP features, relevancies and DINO tokens."""
    model: OvsModelConfig = field(default_factory=OvsModelConfig)
    """TensoRF field, feature head, selection volume, losses and schedule."""
    image_encoder: str = "clip-vit-b16-openai"
    """CLIP-like encoder for the crop hierarchy and the text prompts: a pcseg.foundation name
    (clip-vit-b16-openai = 3D-OVS, clip-vit-b16-laion2b, open_clip:<arch>/<tag>) or 'oracle' (generated scenes)."""
    image_encoder_checkpoint: Optional[Path] = None
    """Local weights file of the image encoder (offline use; see docs/foundation.md for where to get it)."""
    image_encoder_options: str = ""
    """Extra encoder options as a JSON object, e.g. '{"noise_std": 0.1}' for the oracle."""
    dense_encoder: str = "dino-vitb8"
    """DINO-like encoder for the FDA loss (dino-vitb8 = 3D-OVS), 'oracle', or 'none' to disable FDA."""
    dense_encoder_checkpoint: Optional[Path] = None
    """Local weights file of the dense encoder."""
    dense_encoder_options: str = ""
    """Extra dense-encoder options as a JSON object."""
    oracle_palette: Optional[Path] = None
    """palette.json for the oracle encoders; default <scene>/palette.json."""
    encoder_device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the 2D encoders run ('auto' = the training device)."""


class OvsPipeline(VanillaPipeline):
    """VanillaPipeline with encoders passed to the datamanager and the model."""

    config: OvsPipelineConfig

    def __init__(
        self,
        config: OvsPipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: Optional[GradScaler] = None,
    ):
        Pipeline.__init__(self)
        self.config = config
        self.test_mode = test_mode
        dm_cfg = config.datamanager
        data = Path(dm_cfg.data if dm_cfg.data is not None else dm_cfg.dataparser.data)
        enc_device = str(device) if config.encoder_device == "auto" else config.encoder_device
        palette = config.oracle_palette or data / "palette.json"
        self.image_encoder = encoders.build(
            config.image_encoder,
            "image",
            enc_device,
            encoders.parse_options(config.image_encoder_options, "image_encoder_options"),
            config.image_encoder_checkpoint,
            palette,
        )
        self.dense_encoder = None
        if config.dense_encoder != "none" and test_mode == "val":
            self.dense_encoder = encoders.build(
                config.dense_encoder,
                "dense",
                enc_device,
                encoders.parse_options(config.dense_encoder_options, "dense_encoder_options"),
                config.dense_encoder_checkpoint,
                palette,
            )
        self.datamanager = dm_cfg.setup(
            device=device,
            test_mode=test_mode,
            world_size=world_size,
            local_rank=local_rank,
            image_encoder=self.image_encoder,
            dense_encoder=self.dense_encoder,
        )
        self.datamanager.to(device)
        assert self.datamanager.train_dataset is not None, "Missing input dataset"
        self._model = config.model.setup(
            scene_box=self.datamanager.train_dataset.scene_box,
            num_train_data=len(self.datamanager.train_dataset),
            metadata=self.datamanager.train_dataset.metadata,
            device=device,
            grad_scaler=grad_scaler,
            feature_dim=self.image_encoder.embed_dim,
            num_scales=self.datamanager.num_scales,
            text_embeddings=self.datamanager.text_embeddings,
            class_names=self.datamanager.class_names,
            encode_text=lambda prompts: self.image_encoder.encode_text(list(prompts)).float(),
        )
        self.model.to(device)
        self.datamanager.stage_of = self.model.schedule.stage
        self.world_size = world_size
        if world_size > 1:
            self._model = typing.cast(Model, DDP(self._model, device_ids=[local_rank], find_unused_parameters=True))
            dist.barrier(device_ids=[local_rank])

    def get_train_loss_dict(self, step: int):
        self.model.set_step(step)
        ray_bundle, batch = self.datamanager.next_train(step)
        model_outputs = self._model(ray_bundle)
        metrics_dict = self.model.get_metrics_dict(model_outputs, batch)
        loss_dict = self.model.get_loss_dict(model_outputs, batch, metrics_dict)
        return model_outputs, loss_dict, metrics_dict

    @property
    def class_names(self) -> list[str]:
        return list(self.datamanager.class_names)

    def text_embeddings(self) -> torch.Tensor:
        return self.datamanager.text_embeddings
