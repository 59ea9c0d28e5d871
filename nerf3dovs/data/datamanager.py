"""ovs-nerf datamanager: RGB rays (reconstruction), CLIP-feature rays and block-centred FDA patches
(segmentation), with features read from the memory-mapped ``pcseg.foundation`` feature cache.

Per training step (all draws keyed by ``(seed, step)``, so a resumed run sees the same rays):

* reconstruction: ``train_num_rays_per_batch`` uniform pixels of all training images, target RGB;
* segmentation: ``feature_rays_per_batch`` uniform cells of the CLIP-feature grid of the feature views
  (rays through the cell centres), each with its three CLIP scales ``[S, D]`` (L2-normalised per scale),
  its relevancies ``[S, C]`` and its RGB (cell mean); then ``fda_patches`` patches of
  ``fda_patch_rays^2`` rays through the centres of ``fda_ray_stride``-pixel blocks with the DINO tokens of
  the same blocks. The bundle is the feature rays followed by the patch rays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Literal, Optional, Tuple, Type, Union

import numpy as np
import torch
import torch.nn.functional as F
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.configs.dataparser_configs import AnnotatedDataParserUnion
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.utils.rich_utils import CONSOLE

from nerf3dovs.data.dataparser import Ovs3DDataParserConfig
from nerf3dovs.data.dataset import OvsDataset
from nerf3dovs.data.sampling import (
    block_centres,
    keyed_generator,
    patch_coordinates,
    sample_patch_origins,
    sample_pixels,
)
from nerf3dovs.errors import OvsConfigError


@dataclass
class OvsDataManagerConfig(VanillaDataManagerConfig):
    """Rays and 2D supervision for ovs-nerf."""

    _target: Type = field(default_factory=lambda: OvsDataManager)
    dataparser: AnnotatedDataParserUnion = field(default_factory=Ovs3DDataParserConfig)
    """Scene reader: ovs3d-data for 3D-OVS scenes, or any nerfstudio dataparser (then no masks/mIoU)."""
    train_num_rays_per_batch: int = 4096
    """RGB rays per step in the reconstruction stage (3D-OVS batch_size)."""
    eval_num_rays_per_batch: int = 4096
    """Rays per eval batch."""
    feature_rays_per_batch: int = 4096
    """CLIP-feature rays per step in the segmentation stage (3D-OVS batch_size)."""
    feature_downscale: int = 1
    """CLIP hierarchy grid = training images downscaled by this integer (ovs3d-data already loads images at
    1/8, the 3D-OVS feature resolution; use 8 with full-resolution images)."""
    feature_view_fraction: float = 1.0
    """Fraction of views with CLIP features (3D-OVS clip_input; the paper's 0.5 only saved RAM, which the
    memory-mapped cache makes unnecessary). Feature rays and FDA patches come from these views."""
    hierarchy_seed: int = 0
    """Seed of the crop jitter of the CLIP hierarchy (3D-OVS leaves it unseeded)."""
    relevancy_normalization: Literal["minmax", "none"] = "minmax"
    """3D-OVS quirk kept by default: min-max normalise each (scale, class) relevancy map over the image's
    pixels; 'none' uses the raw cosine."""
    fda_patches: int = 8
    """FDA patches per step (3D-OVS patch_num); 0 disables FDA."""
    fda_patch_rays: int = 32
    """Rays per patch side (3D-OVS: 32 = a 256 px crop of the 1/5 image pooled 8 x 8)."""
    fda_ray_stride: float = 5.0
    """Block size in training-image pixels per patch ray (3D-OVS: 8 px at 1/5 = 5 px at 1/8)."""
    fda_dino_input: Literal["crop", "image"] = "crop"
    """'crop': run the dense encoder on each patch's crop online (3D-OVS); 'image': run it once per view on
    the whole image (cached) and cut token windows (much faster without a GPU; tokens see more context)."""
    feature_cache: Path = Path("outputs/ovs_feature_cache")
    """Root of the feature cache (content-keyed: shared between runs and scenes)."""
    classes: Tuple[str, ...] = ()
    """Class prompts; empty = segmentations/classes.txt of the scene (sorted)."""
    seed: int = 20230417
    """Seed of the ray sampling (3D-OVS seeds torch and numpy with 20230417)."""


class OvsDataManager(VanillaDataManager[OvsDataset]):
    """See module docstring. Setup kwargs (from the pipeline): ``image_encoder`` (CLIP-like),
    ``dense_encoder`` (DINO-like, optional)."""

    config: OvsDataManagerConfig

    def __init__(
        self,
        config: OvsDataManagerConfig,
        device: Union[torch.device, str] = "cpu",
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        image_encoder=None,
        dense_encoder=None,
        **kwargs,
    ):
        self.image_encoder = image_encoder
        self.dense_encoder = dense_encoder
        self.stage_of: Callable[[int], str] = lambda step: "recon"
        self.class_names: List[str] = []
        self.text_embeddings: Optional[torch.Tensor] = None
        self._ready = False
        from pcseg.foundation.pyramid import OVSHierarchyConfig

        self.num_scales = len(OVSHierarchyConfig().patch_divisors)
        super().__init__(config, device, test_mode, world_size, local_rank, **kwargs)
        self.prepare_text()

    # ------------------------------------------------------------------ text
    def prepare_text(self) -> None:
        """Class names (config or classes.txt) and their L2-normalised text embeddings (C, D)."""
        if self.text_embeddings is not None:
            return
        names = list(self.config.classes) or list(self.train_dataparser_outputs.metadata.get("ovs_classes") or [])
        if len(names) < 2:
            raise OvsConfigError(
                "ovs-nerf needs at least two class prompts: segmentations/classes.txt in the scene or "
                "--pipeline.datamanager.classes 'prompt a' 'prompt b' ..."
            )
        if self.image_encoder is None:
            raise OvsConfigError("OvsDataManager needs an image_encoder (CLIP-like) from the pipeline")
        self.class_names = names
        self.text_embeddings = F.normalize(self.image_encoder.encode_text(names).float().cpu(), dim=-1)

    # ------------------------------------------------------------------ setup
    def setup_train(self):
        """Load training images (uint8) and, when training, the feature cache and relevancy maps."""
        self.prepare_text()
        if self.test_mode != "val":
            return  # evaluation/export: no training rays needed
        ds = self.train_dataset
        CONSOLE.print(f"Loading {len(ds)} training images...")
        imgs = [ds.get_image_uint8(i)[..., :3] for i in range(len(ds))]
        shapes = {tuple(im.shape[:2]) for im in imgs}
        if len(shapes) != 1:
            raise OvsConfigError(f"ovs-nerf needs training images of one size, found {sorted(shapes)}")
        self.images = torch.stack(imgs)  # (N, H, W, 3) uint8, CPU
        self.height, self.width = self.images.shape[1:3]
        self.cameras = ds.cameras.to(self.device)
        n = len(ds)
        self.all_ids = torch.arange(n)
        self.heights = torch.full((n,), self.height, dtype=torch.long)
        self.widths = torch.full((n,), self.width, dtype=torch.long)
        self._setup_features()
        self._ready = True

    def _setup_features(self) -> None:
        from pcseg.foundation.cache import FeatureCache, cached_dense_features, cached_ovs_hierarchy
        from pcseg.foundation.images import downsample_image
        from pcseg.foundation.pyramid import OVSHierarchyConfig

        cfg = self.config
        k = int(cfg.feature_downscale)
        if k < 1:
            raise OvsConfigError(f"feature_downscale must be >= 1, got {k}")
        n = self.images.shape[0]
        count = max(1, int(round(n * cfg.feature_view_fraction)))
        order = torch.randperm(n, generator=keyed_generator(cfg.seed, 0, 17))
        self.feature_views = torch.sort(order[:count]).values  # image index of each feature view
        cache = FeatureCache(cfg.feature_cache)
        hier_cfg = OVSHierarchyConfig(seed=cfg.hierarchy_seed)
        self.clip_maps: List[np.ndarray] = []
        rel_maps = []
        rgb_maps = []
        text = self.text_embeddings
        from tqdm import tqdm

        for idx in tqdm(self.feature_views.tolist(), desc="CLIP hierarchy (cached)", leave=False):
            image = self.images[idx].numpy()
            small = downsample_image(image, k) if k > 1 else image
            feats = cached_ovs_hierarchy(cache, small, self.image_encoder, hier_cfg)
            self.clip_maps.append(feats)
            rel_maps.append(self._relevancy(feats, text))
            rgb = self.images[idx].permute(2, 0, 1)[None].float() / 255.0
            h, w = feats.shape[-2:]
            rgb_maps.append(F.adaptive_avg_pool2d(rgb[..., : h * k, : w * k], (h, w))[0].permute(1, 2, 0))
        self.feat_h, self.feat_w = self.clip_maps[0].shape[-2:]
        self.relevancy_maps = torch.stack(rel_maps)  # (F, S, C, h, w) float16
        self.feature_rgb = torch.stack(rgb_maps)  # (F, h, w, 3) float32
        self.num_scales = int(self.clip_maps[0].shape[0])
        self.feature_dim = int(self.clip_maps[0].shape[1])

        self.dino_maps: List[np.ndarray] = []
        if cfg.fda_patches > 0 and self.dense_encoder is not None:
            extent = int(math.ceil(cfg.fda_patch_rays * cfg.fda_ray_stride))
            if extent > min(self.height, self.width):
                raise OvsConfigError(
                    f"FDA patches of {cfg.fda_patch_rays} rays x {cfg.fda_ray_stride} px = {extent} px do not fit "
                    f"in {self.width}x{self.height} training images; lower fda_patch_rays or fda_ray_stride"
                )
            if cfg.fda_dino_input == "image":
                p = self.dense_encoder.patch_size
                th = max(1, int(round(self.height / cfg.fda_ray_stride)))
                tw = max(1, int(round(self.width / cfg.fda_ray_stride)))
                from pcseg.foundation.resize import resize_batch

                for idx in tqdm(self.feature_views.tolist(), desc="dense tokens (cached)", leave=False):
                    img = self.images[idx].permute(2, 0, 1)[None].float() / 255.0
                    img = resize_batch(img, (th * p, tw * p))[0]
                    img_u8 = (img.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
                    self.dino_maps.append(cached_dense_features(cache, img_u8, self.dense_encoder))
                self.token_stride = (self.height / th, self.width / tw)

    def _relevancy(self, feats: np.ndarray, text: torch.Tensor) -> torch.Tensor:
        """(S, D, h, w) features -> (S, C, h, w) float16 relevancy maps of one view."""
        from pcseg.foundation.relevancy import cosine_maps, ovs_relevancy

        if self.config.relevancy_normalization == "minmax":
            rel = ovs_relevancy(feats, text)
        else:
            rel = cosine_maps(feats, text)
        return torch.as_tensor(rel).cpu().to(torch.float16)

    # ------------------------------------------------------------------ batches
    def _rays(self, image_ids: torch.Tensor, coords: torch.Tensor, generator: torch.Generator) -> RayBundle:
        bundle = self.cameras.generate_rays(
            camera_indices=image_ids.to(self.device)[:, None], coords=coords.to(self.device)
        )
        jitter = torch.rand(len(image_ids), 1, generator=generator)
        bundle.metadata = dict(bundle.metadata or {})
        bundle.metadata["ovs_jitter"] = jitter.to(self.device)
        return bundle

    def _gather_clip(self, view: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """(B,) feature-view ids and cell indices -> (B, S, D) float32 L2-normalised per scale."""
        out = torch.empty(len(view), self.num_scales, self.feature_dim)
        for v in torch.unique(view).tolist():
            sel = (view == v).nonzero(as_tuple=True)[0]
            vals = self.clip_maps[v][:, :, row[sel].numpy(), col[sel].numpy()]  # (S, D, n) from the memmap
            out[sel] = torch.from_numpy(np.ascontiguousarray(vals, dtype=np.float32)).permute(2, 0, 1)
        return F.normalize(out, dim=-1)

    def _dino_for_patches(self, view: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Dense tokens (N, P*P, E) of the patches and their ray coordinates (N, P*P, 2)."""
        cfg = self.config
        rays = cfg.fda_patch_rays
        if cfg.fda_dino_input == "crop":
            from pcseg.foundation.resize import resize_batch

            extent = int(math.ceil(rays * cfg.fda_ray_stride))
            crops = torch.stack(
                [
                    self.images[int(self.feature_views[v]), int(y) : int(y) + extent, int(x) : int(x) + extent]
                    for v, y, x in zip(view, y0, x0)
                ]
            ).permute(0, 3, 1, 2).float() / 255.0
            p = self.dense_encoder.patch_size
            crops = resize_batch(crops, (rays * p, rays * p))
            tokens = self.dense_encoder.encode_dense(crops)  # (N, E, P, P)
            coords = patch_coordinates(y0, x0, rays, cfg.fda_ray_stride)
            return tokens.flatten(2).transpose(1, 2).cpu(), coords
        # 'image': token windows; y0/x0 are token offsets here
        sy, sx = self.token_stride
        tok = []
        for v, ty, tx in zip(view.tolist(), y0.tolist(), x0.tolist()):
            window = self.dino_maps[v][:, ty : ty + rays, tx : tx + rays]
            tok.append(torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32)).flatten(1).t())
        idx = torch.arange(rays, dtype=torch.float32)
        gy, gx = torch.meshgrid(idx, idx, indexing="ij")
        cy = (y0[:, None].float() + gy.reshape(1, -1) + 0.5) * sy
        cx = (x0[:, None].float() + gx.reshape(1, -1) + 0.5) * sx
        return torch.stack(tok), torch.stack([cy, cx], dim=-1)

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        if not self._ready:
            raise RuntimeError("OvsDataManager.next_train needs a training setup (test_mode='val')")
        self.train_count += 1
        stage = self.stage_of(step)
        cfg = self.config
        if stage == "recon":
            gen = keyed_generator(cfg.seed, step, 0)
            img, row, col = sample_pixels(gen, cfg.train_num_rays_per_batch, self.all_ids, self.heights, self.widths)
            coords = torch.stack([row.float() + 0.5, col.float() + 0.5], dim=-1)
            rgb = self.images[img, row, col].float() / 255.0
            bundle = self._rays(img, coords, gen)
            batch = {"image": rgb.to(self.device), "indices": torch.stack([img, row, col], -1)}
            return bundle, batch

        gen = keyed_generator(cfg.seed, step, 1)
        nviews = len(self.feature_views)
        fh = torch.full((nviews,), self.feat_h, dtype=torch.long)
        fw = torch.full((nviews,), self.feat_w, dtype=torch.long)
        view, row, col = sample_pixels(gen, cfg.feature_rays_per_batch, torch.arange(nviews), fh, fw)
        img = self.feature_views[view]
        coords = block_centres(row, col, float(cfg.feature_downscale))
        batch: Dict = {
            "image": self.feature_rgb[view, row, col].to(self.device),
            "ovs_clip": self._gather_clip(view, row, col).to(self.device),
            "ovs_relevancy": self.relevancy_maps[view, :, :, row, col].float().to(self.device),
            "ovs_num_feature_rays": int(len(view)),
        }
        all_img, all_coords = [img], [coords]
        if cfg.fda_patches > 0 and self.dense_encoder is not None:
            if cfg.fda_dino_input == "crop":
                extent = int(math.ceil(cfg.fda_patch_rays * cfg.fda_ray_stride))
                pview, y0, x0 = sample_patch_origins(gen, cfg.fda_patches, torch.arange(nviews), self.height, self.width, extent)
            else:
                th, tw = self.dino_maps[0].shape[-2:]
                pview, y0, x0 = sample_patch_origins(gen, cfg.fda_patches, torch.arange(nviews), th, tw, cfg.fda_patch_rays)
            tokens, pcoords = self._dino_for_patches(pview, y0, x0)
            batch["ovs_dino"] = tokens.to(self.device)
            per = pcoords.shape[1]
            all_img.append(self.feature_views[pview].repeat_interleave(per))
            all_coords.append(pcoords.reshape(-1, 2))
        bundle = self._rays(torch.cat(all_img), torch.cat(all_coords), gen)
        return bundle, batch

    def get_train_rays_per_batch(self) -> int:
        return self.config.train_num_rays_per_batch

    def get_param_groups(self) -> Dict[str, List[torch.nn.Parameter]]:
        return {}
