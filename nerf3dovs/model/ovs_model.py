"""ovs-nerf model: TensoRF-VM (NDC for forward-facing scenes) + CLIP-feature head + selection volume.

One model covers both 3D-OVS stages; :class:`StageSchedule` decides from the global step what is trained
and rendered (reconstruction: RGB; segmentation: features and scale selection with density frozen;
joint: plus RGB with appearance unfrozen). See docs/nerf3dovs.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Type

import numpy as np
import torch
import torch.nn.functional as F
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.base_model import Model, ModelConfig
from torch.nn import Parameter

from nerf3dovs.data.dataset import GT_KEY
from nerf3dovs.errors import OvsConfigError
from nerf3dovs.model import losses
from nerf3dovs.model.field import Activation, OvsField
from nerf3dovs.model.rendering import aabb_ray_bounds, composite_weights, ndc_rays, ndc_to_world, uniform_samples
from nerf3dovs.model.schedule import GROUPS, StageSchedule
from nerf3dovs.model.vm import resolution_from_voxels, voxel_schedule


# Distinct display colours for class ids (tab10 followed by tab20's light shades), as uint8 RGB.
CLASS_COLOURS = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
        (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
        (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
        (219, 219, 141), (158, 218, 229),
    ],
    dtype=np.uint8,
)


def class_colours(num_classes: int) -> np.ndarray:
    """(C, 3) uint8 display colours (cycled beyond 20 classes)."""
    return CLASS_COLOURS[np.arange(num_classes) % len(CLASS_COLOURS)]


@dataclass
class OvsModelConfig(ModelConfig):
    """ovs-nerf model. Defaults are the 3D-OVS paper/code values (spec ovs_nerf.md §3-§5)."""

    _target: Type = field(default_factory=lambda: OvsModel)
    enable_collider: bool = False
    """Rays are bounded by the NDC range or the scene box inside the model; no nerfstudio collider."""
    eval_num_rays_per_chunk: int = 4096
    """Rays per chunk when rendering whole images (3D-OVS chunk_size 4096)."""

    # ---------------------------------------------------------------- schedule
    recon_iters: int = 30000
    """Reconstruction-stage length (3D-OVS train.py n_iters); 0 skips it (e.g. when loading a stage-1 run)."""
    seg_iters: int = 15000
    """Segmentation-stage length: the LR-decay horizon of the stage (3D-OVS train_seg.py n_iters)."""
    joint_start_iter: int = 5000
    """Segmentation iterations before the RGB loss starts and appearance is unfrozen (3D-OVS joint_start_iter)."""

    # ---------------------------------------------------------------- geometry and sampling
    ndc: Literal["auto", "on", "off"] = "auto"
    """Sample in normalised device coordinates: 'auto' = when the dataparser provides NDC intrinsics
    (ovs3d-data); 'off' samples the scene box in world space (nerfstudio's own dataparsers)."""
    ndc_aabb: Tuple[Tuple[float, float, float], Tuple[float, float, float]] = ((-2.0, -2.0, -1.0), (2.0, 2.0, 1.0))
    """Grid box in NDC (3D-OVS: [-2, 2] x [-2, 2] x [-1, 1])."""
    ndc_near_far: Tuple[float, float] = (0.0, 1.0)
    """Ray-parameter range in NDC: t in [0, 1] spans the near plane to infinity (3D-OVS samples [-0.5, 1.5],
    whose samples outside [0, 1] all fall outside the box; 241 samples here = its 482 over [-0.5, 1.5])."""
    num_samples: int = 241
    """Uniform samples per ray (3D-OVS: |grid resolution| / step_ratio over its range)."""
    distance_scale: float = 25.0
    """Density multiplier in alpha = 1 - exp(-sigma * delta * distance_scale) (TensoRF)."""
    weight_threshold: float = 1e-4
    """Appearance, features and selection are evaluated only at samples with weight above this."""
    background_color: Literal["black", "white"] = "black"
    """Colour behind the field (3D-OVS/NDC: black, i.e. no compositing)."""

    # ---------------------------------------------------------------- TensoRF
    density_components: Tuple[int, int, int] = (16, 4, 4)
    """Density VM components per plane pair (xy|z, xz|y, yz|x)."""
    appearance_components: Tuple[int, int, int] = (48, 12, 12)
    """Appearance VM components per plane pair."""
    appearance_dim: int = 27
    """Shared appearance code size (TensoRF data_dim_color)."""
    mlp_width: int = 128
    """RGB shader width (MLP_Fea, featureC)."""
    n_voxel_init: int = 2097156
    """Initial voxel count (128^3)."""
    n_voxel_final: int = 262144000
    """Final voxel count (640^3), reached log-linearly at the upsampling steps."""
    upsample_steps: Tuple[int, ...] = (2000, 3000, 4000, 5500)
    """Reconstruction steps at which the density/appearance grids are upsampled."""
    init_scale: float = 0.1
    """Std of the VM parameter initialisation."""
    alpha_mask_steps: Tuple[int, ...] = (2500,)
    """Reconstruction steps at which the occupancy (alpha) mask is rebuilt; samples in empty cells are then
    skipped (TensoRF/3D-OVS update_AlphaMask_list)."""
    alpha_mask_threshold: float = 1e-4
    """A cell is occupied when the alpha of a half-voxel step (after a 3x3x3 max-dilation) exceeds this."""
    tv_weight_density: float = 1.0
    """TV weight on density planes (times 1e-2 per plane and decayed with the LR factor, as TensoRF)."""
    tv_weight_appearance: float = 1.0
    """TV weight on appearance planes (same convention); reconstruction stage only."""
    seed: int = 20230417
    """Seed of the parameter initialisation (3D-OVS seeds torch with 20230417)."""

    # ---------------------------------------------------------------- segmentation fields
    feature_hidden: int = 128
    """Width of the CLIP-feature head (27 -> 128 -> 128 -> D)."""
    feature_activation: Activation = "none"
    """Non-linearity of the feature head. 3D-OVS: none (the head is affine; rendered after accumulation)."""
    selection_components: Tuple[int, int, int] = (16, 4, 4)
    """Selection-volume VM components per plane pair."""
    selection_softmax: Literal["after_accumulation", "per_sample"] = "after_accumulation"
    """3D-OVS quirk kept by default: softmax over scales of the *rendered* sigmoid scores. 'per_sample'
    softmaxes each sample's logits and renders the probabilities."""

    # ---------------------------------------------------------------- losses
    feature_weight: float = 1.0
    """Weight of the cosine feature-distillation loss."""
    relevancy_weight: float = 1.0
    """RDA weight (3D-OVS: 1; 0.1 for office_desk)."""
    dino_pos_weight: float = 200.0
    """FDA positive-pair weight."""
    dino_neg_weight: float = 0.2
    """FDA negative-pair weight (3D-OVS per scene 0.18-0.35)."""
    dino_shift: float = 0.7
    """Subtracted from DINO cosine similarities."""
    fda_temperature: float = 0.2
    """Softmax temperature of the class distributions in FDA."""
    rda_normalize_feature: bool = False
    """3D-OVS quirk kept by default (False): RDA's prediction softmax(<F, t>) uses the raw rendered feature."""
    rda_feature_temperature: float = 1.0
    """Temperature of RDA's prediction softmax (3D-OVS: 1 = none)."""
    rda_target_temperature: float = 1.0
    """Temperature of RDA's target softmax over selected relevancies (3D-OVS: 1 = none)."""
    rgb_weight: float = 1.0
    """RGB MSE weight in the joint phase (the reconstruction stage always uses 1)."""

    # ---------------------------------------------------------------- learning rates (applied every step)
    lr_grid: float = 0.02
    """Reconstruction: density and appearance VM learning rate (lr_init)."""
    lr_network: float = 1e-4
    """Reconstruction: appearance basis + RGB shader learning rate (lr_basis)."""
    lr_joint_grid: float = 5e-3
    """Joint phase: appearance VM learning rate."""
    lr_joint_network: float = 5e-5
    """Joint phase: basis + shader learning rate."""
    lr_feature: float = 1e-4
    """Segmentation: feature head learning rate."""
    lr_select_grid: float = 0.02
    """Segmentation: selection VM learning rate."""
    lr_select_basis: float = 1e-4
    """Segmentation: selection basis learning rate."""
    lr_decay_ratio: float = 0.1
    """Every LR decays to this fraction over its stage (per-step factor ratio^(1/stage length))."""
    lr_reset_on_upsample: bool = True
    """Restart reconstruction LRs and Adam state at each upsampling (TensoRF lr_upsample_reset)."""


class OvsModel(Model):
    """See module docstring. Extra setup kwargs (from :class:`OvsPipeline`): ``feature_dim``,
    ``num_scales``, ``text_embeddings`` (C, D) of the training classes, ``class_names``, ``encode_text``
    (callable list[str] -> (T, D) for viewer prompts)."""

    config: OvsModelConfig

    def populate_modules(self):
        # no super().populate_modules(): no collider; never build LPIPS (it downloads AlexNet)
        cfg = self.config
        meta = self.kwargs.get("metadata", {}) or {}
        ndc_meta = meta.get("ndc")
        if cfg.ndc == "on" and ndc_meta is None:
            raise OvsConfigError("ndc='on' needs a dataparser that provides NDC intrinsics (ovs3d-data)")
        self.use_ndc = ndc_meta is not None and cfg.ndc != "off"
        self.ndc_params = dict(ndc_meta) if self.use_ndc else None
        if self.use_ndc:
            aabb = torch.tensor(cfg.ndc_aabb, dtype=torch.float32)
        else:
            aabb = self.scene_box.aabb.detach().clone().float()
        self.register_buffer("aabb", aabb, persistent=False)
        self.schedule = StageSchedule(
            recon_iters=cfg.recon_iters,
            seg_iters=cfg.seg_iters,
            joint_start_iter=cfg.joint_start_iter,
            upsample_steps=tuple(cfg.upsample_steps),
            lr_grid=cfg.lr_grid,
            lr_network=cfg.lr_network,
            lr_joint_grid=cfg.lr_joint_grid,
            lr_joint_network=cfg.lr_joint_network,
            lr_feature=cfg.lr_feature,
            lr_select_grid=cfg.lr_select_grid,
            lr_select_basis=cfg.lr_select_basis,
            lr_decay_ratio=cfg.lr_decay_ratio,
            lr_reset_on_upsample=cfg.lr_reset_on_upsample,
        )
        ups = sorted(s for s in cfg.upsample_steps if 0 < s < cfg.recon_iters)
        self._upsample_steps = ups
        self._voxel_counts = [cfg.n_voxel_init] + voxel_schedule(cfg.n_voxel_init, cfg.n_voxel_final, len(ups))
        feature_dim = int(self.kwargs.get("feature_dim", 512))
        num_scales = int(self.kwargs.get("num_scales", 3))
        gen = torch.Generator().manual_seed(cfg.seed)
        self.field = OvsField(
            resolution=resolution_from_voxels(cfg.n_voxel_init, aabb),
            density_components=cfg.density_components,
            appearance_components=cfg.appearance_components,
            selection_components=cfg.selection_components,
            appearance_dim=cfg.appearance_dim,
            mlp_width=cfg.mlp_width,
            feature_dim=feature_dim,
            feature_hidden=cfg.feature_hidden,
            feature_activation=cfg.feature_activation,
            num_scales=num_scales,
            init_scale=cfg.init_scale,
            generator=gen,
        )
        text = self.kwargs.get("text_embeddings")
        if text is None:
            text = torch.zeros(0, feature_dim)
        self.class_names: List[str] = list(self.kwargs.get("class_names", []))
        self.register_buffer("text_embeddings", F.normalize(torch.as_tensor(text).float(), dim=-1), persistent=False)
        self._encode_text = self.kwargs.get("encode_text")
        self.viewer_prompts: List[str] = list(self.class_names)
        self.register_buffer("viewer_text", self.text_embeddings.clone(), persistent=False)
        self._mask_steps = sorted(s for s in cfg.alpha_mask_steps if 0 < s < cfg.recon_iters)
        self.register_buffer("alpha_mask", torch.zeros(0, 0, 0, dtype=torch.bool))
        self.step = 0
        self._setup_viewer()

    # ------------------------------------------------------------------ viewer
    def _setup_viewer(self) -> None:
        try:
            from nerfstudio.viewer.viewer_elements import ViewerText
        except Exception:  # viewer stack unavailable: rendering and training do not need it
            self.prompt_box = None
            return
        self.prompt_box = ViewerText(
            "OVS prompts", "; ".join(self.class_names), cb_hook=self._on_prompts, hint="prompts separated by ';'"
        )

    def _on_prompts(self, element) -> None:
        self.set_viewer_prompts([p.strip() for p in str(element.value).split(";") if p.strip()])

    def set_viewer_prompts(self, prompts: Sequence[str]) -> None:
        """Prompts whose relevancy/segmentation the viewer shows (training always uses the scene classes)."""
        prompts = list(prompts)
        if not prompts or self._encode_text is None:
            self.viewer_prompts = list(self.class_names)
            self.viewer_text = self.text_embeddings.clone()
            return
        emb = self._encode_text(prompts)
        self.viewer_prompts = prompts
        self.viewer_text = F.normalize(torch.as_tensor(emb).float(), dim=-1).to(self.text_embeddings.device)

    # ------------------------------------------------------------------ schedule
    def resolution_at(self, step: int) -> List[int]:
        """Grid resolution in effect at ``step`` (after the upsamplings with step <= ``step``)."""
        done = sum(1 for s in self._upsample_steps if s <= step)
        return resolution_from_voxels(self._voxel_counts[done], self.aabb.cpu())

    def set_step(self, step: int) -> None:
        """Freeze/unfreeze parameter groups for ``step`` (called before every training iteration)."""
        self.step = step
        trainable = self.schedule.trainable(step)
        for group, params in self.field.param_groups().items():
            for p in params:
                p.requires_grad_(trainable[group])

    @property
    def stage(self) -> str:
        return self.schedule.stage(self.step)

    def update_to_step(self, step: int) -> None:
        """Bring grid sizes, the alpha-mask shape and freezing to ``step`` before a checkpoint is loaded."""
        res = self.resolution_at(step)
        self.field.density.resize_(res)
        self.field.appearance.resize_(res)
        self.field.selection.resize_(res)
        done = [s for s in self._mask_steps if s <= step]
        if done:
            self.alpha_mask = torch.zeros(self.resolution_at(done[-1]), dtype=torch.bool, device=self.alpha_mask.device)
        self.set_step(step)

    @torch.no_grad()
    def update_alpha_mask(self, chunk: int = 1 << 18) -> None:
        """Occupancy of every voxel centre of the current grid: alpha of a half-voxel step > threshold,
        dilated by a 3x3x3 max filter (TensoRF's updateAlphaMask, without its bbox shrink)."""
        res = self.field.density.resolution
        axes = [torch.linspace(-1.0, 1.0, r, device=self.aabb.device) for r in res]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
        voxel = ((self.aabb[1] - self.aabb[0]) / (torch.tensor(res, device=self.aabb.device) - 1)).mean()
        delta = 0.5 * float(voxel)
        sigma = torch.cat([self.field.sigma(grid[i : i + chunk]) for i in range(0, len(grid), chunk)])
        alpha = 1.0 - torch.exp(-sigma * delta * self.config.distance_scale)
        alpha = F.max_pool3d(alpha.view(1, 1, *res), kernel_size=3, stride=1, padding=1).view(*res)
        self.alpha_mask = alpha > self.config.alpha_mask_threshold

    def _mask_lookup(self, xyz: torch.Tensor) -> torch.Tensor:
        """(N, 3) normalised coordinates -> (N,) bool occupancy (nearest cell); all True before the first mask."""
        if self.alpha_mask.numel() == 0:
            return torch.ones(xyz.shape[0], dtype=torch.bool, device=xyz.device)
        res = torch.tensor(self.alpha_mask.shape, device=xyz.device)
        idx = ((xyz + 1.0) * 0.5 * (res - 1)).round().long()
        idx = torch.minimum(idx.clamp(min=0), res - 1)
        return self.alpha_mask[idx[:, 0], idx[:, 1], idx[:, 2]]

    def _before_iteration(self, step: int, optimizers) -> None:
        clear: set[str] = set()
        if step in self._upsample_steps:
            res = self.resolution_at(step)
            self.field.density.resize_(res)
            self.field.appearance.resize_(res)
            self.field.selection.resize_(res)
            clear |= {"ovs_density", "ovs_appearance", "ovs_select_grid"}
            if self.config.lr_reset_on_upsample:
                clear |= {"ovs_render"}
        if step in self._mask_steps:
            self.update_alpha_mask()
        if step == self.schedule.seg_start:
            self.field.reinit_selection_(torch.Generator().manual_seed(self.config.seed + 1))
            clear |= {"ovs_select_grid"}
        if step in self.schedule.restarts():
            clear |= set(GROUPS)
        self.set_step(step)
        if optimizers is None:
            return
        self._sync_optimizers(optimizers)
        for group, opt in optimizers.optimizers.items():
            if group in clear:
                opt.state.clear()
            lr = self.schedule.learning_rate(group, step) if group in GROUPS else None
            if lr is not None:
                for pg in opt.param_groups:
                    pg["lr"] = lr

    def _sync_optimizers(self, optimizers) -> None:
        """Point the optimisers at the current Parameter objects (grids are replaced when resized, also
        when a checkpoint is loaded after the optimisers were built); state moves along when shapes fit."""
        for group, params in self.field.param_groups().items():
            opt = optimizers.optimizers.get(group)
            if opt is None:
                continue
            old = opt.param_groups[0]["params"]
            if len(old) == len(params) and all(a is b for a, b in zip(old, params)):
                continue
            for a, b in zip(old, params):
                state = opt.state.pop(a, None)
                if state and all(not torch.is_tensor(v) or v.dim() == 0 or v.shape == b.shape for v in state.values()):
                    opt.state[b] = state
            opt.param_groups[0]["params"] = list(params)
            if hasattr(optimizers, "parameters"):
                optimizers.parameters[group] = list(params)

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        optimizers = training_callback_attributes.optimizers

        def before(step: int) -> None:
            self._before_iteration(step, optimizers)

        return [TrainingCallback(where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], func=before)]

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        return self.field.param_groups()

    # ------------------------------------------------------------------ rendering
    def _ray_samples(self, ray_bundle: RayBundle) -> Dict[str, torch.Tensor]:
        origins = ray_bundle.origins.reshape(-1, 3)
        dirs = ray_bundle.directions.reshape(-1, 3)
        jitter = None
        if self.training and ray_bundle.metadata is not None and "ovs_jitter" in ray_bundle.metadata:
            jitter = ray_bundle.metadata["ovs_jitter"].reshape(-1)
        if self.use_ndc:
            p = self.ndc_params
            o, d = ndc_rays(origins, dirs, p["fx"], p["fy"], p["width"], p["height"], p["near"])
            near, far = self.config.ndc_near_far
            t_near = torch.full_like(o[:, 0], near)
            t_far = torch.full_like(o[:, 0], far)
            hit = torch.ones_like(t_near, dtype=torch.bool)
        else:
            o, d = origins, dirs
            t_near, t_far = aabb_ray_bounds(o, d, self.aabb)
            hit = t_far > t_near
            t_far = torch.where(hit, t_far, t_near)
        t = uniform_samples(t_near, t_far, self.config.num_samples, jitter)
        step = ((t_far - t_near) / self.config.num_samples)[:, None].expand_as(t)
        pts = o[:, None, :] + t[..., None] * d[:, None, :]
        lo, hi = self.aabb[0], self.aabb[1]
        inside = ((pts >= lo) & (pts <= hi)).all(-1) & hit[:, None]
        xyz = (pts - lo) / (hi - lo) * 2.0 - 1.0
        viewdirs = F.normalize(d, dim=-1)
        return {"o": o, "d": d, "t": t, "delta": step, "pts": pts, "xyz": xyz, "inside": inside, "viewdirs": viewdirs,
                "origins": origins}

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, torch.Tensor]:
        cfg = self.config
        s = self._ray_samples(ray_bundle)
        n_rays, n_samp = s["t"].shape
        stage = self.stage if self.training else "eval"
        want_rgb = stage in ("recon", "joint", "eval")
        want_feat = stage in ("seg", "joint", "eval")

        flat_inside = s["inside"].reshape(-1).clone()
        if self.alpha_mask.numel():
            cand = flat_inside.nonzero(as_tuple=True)[0]
            flat_inside[cand] = self._mask_lookup(s["xyz"].reshape(-1, 3)[cand])
        xyz_in = s["xyz"].reshape(-1, 3)[flat_inside]
        sigma = torch.zeros(n_rays * n_samp, device=xyz_in.device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.field.density.planes[0].requires_grad):
            if xyz_in.shape[0]:
                sigma = sigma.index_put((flat_inside.nonzero(as_tuple=True)[0],), self.field.sigma(xyz_in))
            weights = composite_weights(sigma.view(n_rays, n_samp) * cfg.distance_scale, s["delta"])
        acc = weights.sum(-1, keepdim=True)
        outputs: Dict[str, torch.Tensor] = {"accumulation": acc}

        # expected surface point in the sampling frame -> world; depth = distance from the ray origin
        w_det = weights.detach()
        mean_pt = (w_det[..., None] * s["pts"].detach()).sum(1) / acc.detach().clamp(min=1e-6)
        if self.use_ndc:
            p = self.ndc_params
            world = ndc_to_world(_clamp_ndc(mean_pt), p["fx"], p["fy"], p["width"], p["height"], p["near"])
        else:
            world = mean_pt
        outputs["ovs_point"] = world
        outputs["depth"] = (world - s["origins"]).norm(dim=-1, keepdim=True)

        valid = (w_det > cfg.weight_threshold).reshape(-1)
        ray_of = torch.arange(n_rays, device=valid.device).repeat_interleave(n_samp)[valid]
        xyz_v = s["xyz"].reshape(-1, 3)[valid]
        w_v = weights.reshape(-1)[valid]
        need_code = (want_rgb or want_feat) and xyz_v.shape[0] > 0
        code = self.field.appearance_code(xyz_v) if need_code else None

        if want_rgb:
            rgb = torch.zeros(n_rays, 3, device=acc.device)
            if code is not None:
                c = self.field.rgb(code, s["viewdirs"][ray_of])
                rgb = rgb.index_add(0, ray_of, w_v[:, None] * c)
            if cfg.background_color == "white":
                rgb = rgb + (1.0 - acc)
            outputs["rgb"] = rgb

        if want_feat:
            head = self.field.feature_head
            code_sum = torch.zeros(n_rays, cfg.appearance_dim, device=acc.device)
            if code is not None:
                code_sum = code_sum.index_add(0, ray_of, w_v[:, None] * code)
            if head.is_affine:
                feat = head.render_from_accumulated(code_sum, acc)
            else:
                feat = torch.zeros(n_rays, head.net[-1].out_features, device=acc.device)
                if code is not None:
                    feat = feat.index_add(0, ray_of, w_v[:, None] * head(code))
            outputs["ovs_feature"] = feat
            num_scales = self.field.selection_basis.out_features
            sel = torch.zeros(n_rays, num_scales, device=acc.device)
            if xyz_v.shape[0]:
                logits = self.field.selection_logits(xyz_v)
                if cfg.selection_softmax == "after_accumulation":
                    sel = sel.index_add(0, ray_of, w_v[:, None] * torch.sigmoid(logits))
                else:
                    sel = sel.index_add(0, ray_of, w_v[:, None] * torch.softmax(logits, dim=-1))
            if cfg.selection_softmax == "after_accumulation":
                sel = torch.softmax(sel, dim=-1)
            else:
                sel = sel / acc.clamp(min=1e-6)
            outputs["ovs_selection"] = sel
        return outputs

    # ------------------------------------------------------------------ losses and metrics
    def get_metrics_dict(self, outputs, batch) -> Dict[str, torch.Tensor]:
        metrics: Dict[str, torch.Tensor] = {}
        n_feat = int(batch.get("ovs_num_feature_rays", 0))
        if "rgb" in outputs and "image" in batch:
            gt = batch["image"].to(outputs["rgb"].device)
            pred = outputs["rgb"][: gt.shape[0]]
            mse = F.mse_loss(pred, gt[..., :3])
            metrics["psnr"] = -10.0 * torch.log10(mse.clamp(min=1e-10))
        if "ovs_feature" in outputs and "ovs_clip" in batch and n_feat:
            with torch.no_grad():
                target = (outputs["ovs_selection"][:n_feat, :, None] * batch["ovs_clip"]).sum(1)
                metrics["feature_cosine"] = F.cosine_similarity(outputs["ovs_feature"][:n_feat], target, dim=-1).mean()
                metrics["selection_entropy"] = losses.entropy(outputs["ovs_selection"][:n_feat]).mean()
        return metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, torch.Tensor]:
        cfg = self.config
        loss: Dict[str, torch.Tensor] = {}
        stage = self.stage if self.training else "eval"
        n_feat = int(batch.get("ovs_num_feature_rays", 0))
        if "rgb" in outputs and "image" in batch:
            gt = batch["image"].to(outputs["rgb"].device)[..., :3]
            pred = outputs["rgb"][: gt.shape[0]]
            weight = cfg.rgb_weight if stage == "joint" else 1.0
            loss["rgb_loss"] = weight * F.mse_loss(pred, gt)
        if stage == "recon" and self.training:
            tv = self.schedule.tv_factor(self.step) * 1e-2
            if cfg.tv_weight_density > 0:
                loss["tv_density"] = cfg.tv_weight_density * tv * self.field.density.tv_loss()
            if cfg.tv_weight_appearance > 0:
                loss["tv_appearance"] = cfg.tv_weight_appearance * tv * self.field.appearance.tv_loss()
        if "ovs_feature" in outputs and n_feat and "ovs_clip" in batch:
            feat = outputs["ovs_feature"][:n_feat]
            sel = outputs["ovs_selection"][:n_feat]
            text = self.text_embeddings
            loss["feature_loss"] = cfg.feature_weight * losses.feature_loss(feat, batch["ovs_clip"], sel)
            if cfg.relevancy_weight > 0 and text.shape[0] > 1:
                loss["rda_loss"] = cfg.relevancy_weight * losses.rda_loss(
                    feat,
                    text,
                    batch["ovs_relevancy"],
                    sel,
                    normalize_feature=cfg.rda_normalize_feature,
                    feature_temperature=cfg.rda_feature_temperature,
                    target_temperature=cfg.rda_target_temperature,
                )
            if "ovs_dino" in batch and (cfg.dino_pos_weight > 0 or cfg.dino_neg_weight > 0) and text.shape[0] > 1:
                dino = batch["ovs_dino"]
                n_patch, per_patch = dino.shape[0], dino.shape[1]
                patch_feat = outputs["ovs_feature"][n_feat : n_feat + n_patch * per_patch].reshape(n_patch, per_patch, -1)
                l_pos, l_neg = losses.fda_loss(patch_feat, text, dino, cfg.fda_temperature, cfg.dino_shift)
                loss["fda_pos_loss"] = cfg.dino_pos_weight * l_pos
                loss["fda_neg_loss"] = cfg.dino_neg_weight * l_neg
        if not loss:
            # e.g. an eval batch before anything renders RGB: keep the trainer's sum well defined
            loss["zero"] = outputs["accumulation"].sum() * 0.0
        return loss

    # ------------------------------------------------------------------ whole images
    def labels_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        """(N, D) rendered features -> (N,) argmax of cosine to the training classes (3D-OVS inference)."""
        if self.text_embeddings.shape[0] == 0:
            return torch.zeros(feat.shape[0], dtype=torch.long, device=feat.device)
        return (F.normalize(feat, dim=-1) @ self.text_embeddings.t()).argmax(-1)

    @torch.no_grad()
    def get_outputs_for_camera_ray_bundle(self, camera_ray_bundle: RayBundle) -> Dict[str, torch.Tensor]:
        """Render an image chunk by chunk, reducing the D-dim feature per chunk to: ``ovs_label`` (argmax
        over the scene classes), ``segmentation`` (its colours), ``relevancy_<i>`` (cosine to viewer
        prompt i, in [-1, 1]), ``viewer_segmentation`` (argmax over the viewer prompts) and ``selection``."""
        height, width = camera_ray_bundle.origins.shape[:2]
        flat = camera_ray_bundle.reshape((-1,))
        chunks: Dict[str, List[torch.Tensor]] = {}
        colours = torch.from_numpy(class_colours(max(1, len(self.class_names)))).float() / 255.0
        vcolours = torch.from_numpy(class_colours(max(1, len(self.viewer_prompts)))).float() / 255.0
        for start in range(0, len(flat), self.config.eval_num_rays_per_chunk):
            bundle = flat[start : start + self.config.eval_num_rays_per_chunk].to(self.device)
            out = self.forward(bundle)
            feat = out.pop("ovs_feature")
            label = self.labels_from_features(feat)
            out["ovs_label"] = label[:, None].float()
            out["segmentation"] = colours.to(label.device)[label]
            if self.viewer_text.shape[0]:
                rel = F.normalize(feat, dim=-1) @ self.viewer_text.t()
                for i in range(rel.shape[1]):
                    out[f"relevancy_{i}"] = rel[:, i : i + 1]
                out["viewer_segmentation"] = vcolours.to(rel.device)[rel.argmax(-1)]
            out["selection"] = out.pop("ovs_selection")
            for k, v in out.items():
                chunks.setdefault(k, []).append(v.cpu() if v.device != camera_ray_bundle.origins.device else v)
        return {k: torch.cat(v).view(height, width, -1) for k, v in chunks.items()}

    def get_image_metrics_and_images(
        self, outputs: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, torch.Tensor]]:
        from pcseg.metrics import view_iou_and_accuracy

        gt_rgb = batch["image"][..., :3].to(outputs["rgb"].device)
        metrics: Dict[str, Any] = {}
        mse = F.mse_loss(outputs["rgb"], gt_rgb)
        metrics["psnr"] = float(-10.0 * torch.log10(mse.clamp(min=1e-10)))
        images = {"img": torch.cat([gt_rgb, outputs["rgb"]], dim=1), "segmentation": outputs["segmentation"]}
        if GT_KEY in batch and len(self.class_names):
            gt = batch[GT_KEY].cpu().numpy().astype(bool)
            pred = outputs["ovs_label"][..., 0].long().cpu().numpy()
            iou, acc = view_iou_and_accuracy(pred, gt)
            metrics["miou"] = float(np.mean(iou))
            metrics["accuracy"] = acc
            for name, value in zip(self.class_names, iou):
                metrics[f"iou/{name}"] = float(value)
            colours = torch.from_numpy(class_colours(len(self.class_names))).float() / 255.0
            gt_label = torch.from_numpy(gt.argmax(-1))
            gt_img = colours[gt_label] * torch.from_numpy(gt.any(-1))[..., None].float()
            images["segmentation"] = torch.cat([gt_img.to(outputs["segmentation"].device), outputs["segmentation"]], dim=1)
        return metrics, images


def _clamp_ndc(points: torch.Tensor) -> torch.Tensor:
    """Keep NDC depth below 1 (infinity) so the inverse map stays finite for rays that see nothing."""
    return torch.cat([points[:, :2], points[:, 2:].clamp(max=1.0 - 1e-4)], dim=-1)
