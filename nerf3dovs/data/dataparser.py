"""``ovs3d-data``: the nerfstudio dataparser for scenes in the 3D-OVS layout.

::

    <scene>/images/*.png|jpg                 photos; the image index is the position in sorted order
    <scene>/poses_bounds.npy                 LLFF poses + near/far bounds, one row per image
    <scene>/segmentations/classes.txt        one text prompt per line (label order = sorted prompts)
    <scene>/segmentations/<index>/<prompt>.png  binary masks (pixel == 255) of annotated views

Splits follow 3D-OVS: ``train`` is every image (the masks are never used for training, which is what
makes the method weakly supervised) and ``val``/``test`` are the annotated views. Poses are converted
to the OpenGL convention, recentred and rescaled as 3D-OVS does; the model maps rays to NDC with the
``ndc`` entry of the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Type

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox

from nerf3dovs.data import llff
from nerf3dovs.errors import OvsDataError


@dataclass
class Ovs3DDataParserConfig(DataParserConfig):
    """Reads a 3D-OVS scene (images/, poses_bounds.npy, segmentations/)."""

    _target: Type = field(default_factory=lambda: Ovs3DDataParser)
    data: Path = Path("data/3dovs/bed")
    """Scene folder (holding images/, poses_bounds.npy and segmentations/)."""
    downscale_factor: int = 8
    """Images are resized to int(W/k) x int(H/k) when loaded (3D-OVS trains features and evaluates at 1/8)."""
    bd_factor: float = 0.75
    """After recentring, scale the world so that the smallest near bound becomes 1/bd_factor."""
    recenter: bool = True
    """Recentre the poses on their average pose (3D-OVS always does)."""
    ndc_near: float = 1.0
    """Depth of the NDC near plane in the normalised world (3D-OVS: 1)."""
    holdout_annotated: bool = False
    """Leave the annotated views out of the train split (3D-OVS trains on all views, masks unused)."""
    eval_views: Literal["annotated", "first"] = "annotated"
    """val/test split: the annotated views, or image 0 only (what 3D-OVS calls split='test')."""


class Ovs3DDataParser(DataParser):
    """Parses a 3D-OVS scene into nerfstudio :class:`DataparserOutputs`.

    Metadata keys (consumed by :class:`nerf3dovs.data.dataset.OvsDataset` and the model):
        ``ovs_classes``: list[str] sorted prompts; ``ovs_seg_dirs``: list[str | None] per image of the
        split; ``ovs_image_indices``: scene image index of each image of the split; ``image_size``:
        (width, height) after downscaling; ``ndc``: dict(fx, fy, width, height, near) of the reference
        camera, which fixes the NDC map.
    """

    config: Ovs3DDataParserConfig

    def __init__(self, config: Ovs3DDataParserConfig):
        super().__init__(config)
        self.downscale_factor = config.downscale_factor

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        root = Path(self.config.data)
        if not root.is_dir():
            raise OvsDataError(root, "scene folder not found")
        images = llff.list_images(root / "images")
        poses, bounds = llff.load_poses_bounds(root / "poses_bounds.npy", len(images))
        factor = max(1, int(self.downscale_factor))

        # hwf of the first camera, rescaled if the photos on disk are not the size the poses were made for
        height, width, focal = (float(v) for v in poses[0, :, 4])
        from PIL import Image

        with Image.open(images[0]) as im:
            img_w, img_h = im.size
        fx = focal * img_w / width
        fy = focal * img_h / height
        out_w, out_h = int(img_w / factor), int(img_h / factor)
        if out_w < 1 or out_h < 1:
            raise OvsDataError(images[0], f"downscale_factor {factor} leaves an empty image ({img_w}x{img_h})")
        fx, fy = fx * out_w / img_w, fy * out_h / img_h

        norm = llff.normalize_poses(llff.llff_to_opengl(poses), bounds, self.config.bd_factor, self.config.recenter)

        seg_dir = root / "segmentations"
        classes: list[str] = []
        annotated: dict[int, Path] = {}
        if seg_dir.is_dir():
            classes = llff.read_class_names(seg_dir)
            annotated = llff.list_annotated_views(seg_dir, len(images))

        indices = self._split_indices(split, len(images), annotated)
        c2w = torch.from_numpy(norm.c2w[indices]).float()
        cameras = Cameras(
            camera_to_worlds=c2w,
            fx=fx,
            fy=fy,
            cx=out_w / 2.0,
            cy=out_h / 2.0,
            width=out_w,
            height=out_h,
            camera_type=CameraType.PERSPECTIVE,
        )
        metadata = {
            "ovs_classes": classes,
            "ovs_seg_dirs": [str(annotated[i]) if i in annotated else None for i in indices],
            "ovs_image_indices": list(indices),
            "image_size": (out_w, out_h),
            "ndc": {"fx": fx, "fy": fy, "width": float(out_w), "height": float(out_h), "near": self.config.ndc_near},
            "near_far": (float(norm.bounds[:, 0].min()), float(norm.bounds[:, 1].max())),
        }
        return DataparserOutputs(
            image_filenames=[images[i] for i in indices],
            cameras=cameras,
            scene_box=SceneBox(aabb=self._world_box(norm, fx, fy, out_w, out_h)),
            metadata=metadata,
            dataparser_transform=torch.from_numpy(norm.transform).float(),
            dataparser_scale=norm.scale,
        )

    def _split_indices(self, split: str, num_images: int, annotated: dict[int, Path]) -> list[int]:
        if split == "train":
            if self.config.holdout_annotated:
                kept = [i for i in range(num_images) if i not in annotated]
                if not kept:
                    raise OvsDataError(Path(self.config.data), "holdout_annotated leaves no training view")
                return kept
            return list(range(num_images))
        if self.config.eval_views == "annotated" and annotated:
            return sorted(annotated)
        return [0]

    @staticmethod
    def _world_box(norm: llff.NormalizedPoses, fx: float, fy: float, w: int, h: int) -> torch.Tensor:
        """Axis-aligned box around every camera frustum between its near and far bound (viewer/export only;
        the NDC model does not use it)."""
        corners = []
        for pose, (near, far) in zip(norm.c2w, norm.bounds):
            for depth in (near, far):
                for u in (0.0, w):
                    for v in (0.0, h):
                        d_cam = np.array([(u - w / 2) / fx, -(v - h / 2) / fy, -1.0]) * depth
                        corners.append(pose[:, :3] @ d_cam + pose[:, 3])
            corners.append(pose[:, 3])
        pts = np.stack(corners)
        return torch.tensor(np.stack([pts.min(0), pts.max(0)]), dtype=torch.float32)


def _specification():
    from nerfstudio.plugins.registry_dataparser import DataParserSpecification

    return DataParserSpecification(
        config=Ovs3DDataParserConfig(),
        description="3D-OVS scenes: images/, LLFF poses_bounds.npy, segmentations/<index>/<prompt>.png masks",
    )


ovs3d_dataparser = _specification()
"""Entry point ``nerfstudio.dataparser_configs: ovs3d-data`` (kept in this light module: nerfstudio loads
it while building its dataparser union, so it must not import datamanagers or method configs)."""
