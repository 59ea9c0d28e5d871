"""The image dataset of ovs-nerf: images resized as the dataparser asks, ground-truth masks for eval views."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np
import numpy.typing as npt
import torch
from nerfstudio.data.datasets.base_dataset import InputDataset
from PIL import Image

from nerf3dovs.data import llff
from nerf3dovs.errors import OvsDataError

GT_KEY = "ovs_gt"
"""Batch key of the (H, W, C) bool one-hot ground truth of an annotated view."""


class OvsDataset(InputDataset):
    """:class:`InputDataset` that (1) resizes photos to the dataparser's ``image_size`` (3D-OVS reads full
    resolution photos and resizes them, so no ``images_8/`` copies are needed) and (2) adds the
    ground-truth masks of annotated views under :data:`GT_KEY`.

    Works unchanged with nerfstudio's own dataparsers (no ``image_size``/masks in their metadata).
    """

    exclude_batch_keys_from_device = ["image", "mask"]

    def get_numpy_image(self, image_idx: int) -> npt.NDArray[np.uint8]:
        size = self.metadata.get("image_size")
        if size is None:
            return super().get_numpy_image(image_idx)
        path = self._dataparser_outputs.image_filenames[image_idx]
        width, height = (int(round(s * self.scale_factor)) for s in size)
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if im.size != (width, height):
                    im = im.resize((width, height), resample=Image.Resampling.LANCZOS)
                return np.asarray(im, dtype=np.uint8).copy()
        except OSError as err:
            raise OvsDataError(path, f"cannot read image ({err})") from None

    def get_metadata(self, data: Dict) -> Dict:
        seg_dirs = self.metadata.get("ovs_seg_dirs")
        classes = self.metadata.get("ovs_classes") or []
        if not seg_dirs or not classes:
            return {}
        folder = seg_dirs[data["image_idx"]]
        if folder is None:
            return {}
        h, w = data["image"].shape[:2]
        masks = llff.read_view_masks(Path(folder), list(classes), (w, h))
        return {GT_KEY: torch.from_numpy(masks)}

    def has_ground_truth(self) -> bool:
        """True when at least one image of this split has masks."""
        seg_dirs = self.metadata.get("ovs_seg_dirs") or []
        return bool(self.metadata.get("ovs_classes")) and any(d is not None for d in seg_dirs)
