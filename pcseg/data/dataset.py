"""``SegmentationDataset``: prepared scenes -> augmented, voxelised training / evaluation samples.

Samples follow docs/contracts.md §3. All randomness of sample ``i`` in epoch ``e`` comes from
``numpy_rng(seed, e, i, view)``, so a sample is the same whatever the number of data-loader
workers, their order, or whether the run was resumed.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pcseg.data import weak_labels as wl
from pcseg.data.augment import AugmentConfig, augment_config
from pcseg.data.scene import PreparedDataset, open_dataset
from pcseg.data.views import FEATURE_MODES, correspondences, feature_channels, make_view
from pcseg.data.voxelize import MODES
from pcseg.utils.errors import ConfigError, DataError
from pcseg.utils.rng import numpy_rng


class SegmentationDataset:
    """Voxelised samples of one split of a prepared dataset.

    Args:
        root: prepared dataset folder (or an open :class:`PreparedDataset`).
        split: split name (``train``, ``val``, ...).
        voxel_size: voxel edge in metres (CPCM: 0.02 ScanNet, 0.05 S3DIS; HPAL: 0.05).
        feature_mode: ``"rgb"`` (RGB/255 - 0.5) or ``"rgb_xyz"`` ([RGB/255, xyz]).
        augment: augmentation: a preset name, a dict, an AugmentConfig, None (no augmentation), or a
            list of those, one per view (HPAL: ``["none", "hpal_strong"]``).
        weak_labels: weak-label file or dict scene -> indices; points not listed become -1. None =
            full labels.
        retain_labels: voxelisation, crop and dropout keep every labelled point's voxel.
        num_views: 1, or 2 (two independently augmented views plus their correspondences).
        seed: base seed of the keyed randomness.
        representative: ``"first"`` (array order) or ``"random"`` point per voxel.
        return_point_segment: include the full per-point ground truth (default: when split != "train").
        scenes: optional explicit scene list (overrides the split file).
    """

    def __init__(
        self,
        root: str | Path | PreparedDataset,
        split: str,
        voxel_size: float,
        feature_mode: str = "rgb",
        augment: Any = None,
        weak_labels: str | Path | dict[str, np.ndarray] | None = None,
        retain_labels: bool = False,
        num_views: int = 1,
        seed: int = 0,
        representative: str = "first",
        return_point_segment: bool | None = None,
        scenes: Sequence[str] | None = None,
    ):
        self.data = root if isinstance(root, PreparedDataset) else open_dataset(root)
        self.split = split
        self.scenes = list(scenes) if scenes is not None else self.data.split(split)
        if voxel_size <= 0:
            raise ConfigError(f"voxel_size must be > 0, got {voxel_size}")
        if feature_mode not in FEATURE_MODES:
            raise ConfigError(f"feature_mode must be one of {FEATURE_MODES}, got {feature_mode!r}")
        if num_views not in (1, 2):
            raise ConfigError(f"num_views must be 1 or 2, got {num_views}")
        if representative not in MODES:
            raise ConfigError(f"representative must be one of {MODES}, got {representative!r}")
        self.voxel_size = float(voxel_size)
        self.feature_mode = feature_mode
        self.num_views = num_views
        self.seed = int(seed)
        self.retain_labels = bool(retain_labels)
        self.representative = representative
        self.return_point_segment = (split != "train") if return_point_segment is None else bool(return_point_segment)
        if isinstance(augment, (list, tuple)):
            if len(augment) != num_views:
                raise ConfigError(f"{len(augment)} augmentation configs for {num_views} view(s)")
            self.augment: list[AugmentConfig] = [augment_config(a) for a in augment]
        else:
            self.augment = [augment_config(augment)] * num_views
        self.weak_label_source = str(weak_labels) if isinstance(weak_labels, (str, Path)) else None
        self.weak_labels = wl.load(weak_labels) if isinstance(weak_labels, (str, Path)) else weak_labels
        self.scenes_without_weak_labels: list[str] = []
        if self.weak_labels is not None:
            self.scenes_without_weak_labels = [s for s in self.scenes if s not in self.weak_labels]
            if len(self.scenes_without_weak_labels) == len(self.scenes) and self.scenes and self.weak_label_source:
                raise DataError(self.weak_label_source or "weak labels",
                                f"no entry for any scene of split {split!r} (e.g. {self.scenes[0]}): labels of another dataset?")
            if self.scenes_without_weak_labels:
                warnings.warn(f"{len(self.scenes_without_weak_labels)} of {len(self.scenes)} {split} scenes have no weak labels "
                              f"(e.g. {self.scenes_without_weak_labels[0]}); they train without labelled points", stacklevel=2)
        self.epoch = 0

    # ------------------------------------------------------------------ protocol
    def __len__(self) -> int:
        return len(self.scenes)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (call before iterating each epoch)."""
        self.epoch = int(epoch)

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.data.class_map.names

    @property
    def in_channels(self) -> int:
        return feature_channels(self.feature_mode)

    def training_target(self, name: str, segment: np.ndarray | None, num_points: int) -> np.ndarray:
        """(N,) int64 per-point target: full labels, or only the weak-label points (others -1)."""
        if segment is None:
            return np.full(num_points, -1, dtype=np.int64)
        segment = np.asarray(segment, dtype=np.int64)
        if self.weak_labels is None:
            return segment.copy()
        target = np.full(num_points, -1, dtype=np.int64)
        idx = self.weak_labels.get(name)
        if idx is None or len(idx) == 0:
            return target
        idx = np.asarray(idx, dtype=np.int64)
        if idx.min() < 0 or idx.max() >= num_points:
            where = self.weak_label_source or "weak labels"
            raise DataError(where, f"scene {name}: indices outside 0..{num_points - 1} (labels made for another preparation?)")
        target[idx] = segment[idx]
        return target

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.scenes):
            raise IndexError(f"sample {index} out of range (0..{len(self.scenes) - 1})")
        name = self.scenes[index]
        scene = self.data.load(name)
        target = self.training_target(name, scene.segment, scene.num_points)
        views = []
        for v in range(self.num_views):
            rng = numpy_rng(self.seed, self.epoch, index, v)
            view = make_view(name, scene.coord, scene.color, target, self.voxel_size, self.augment[v], rng,
                             retain_labels=self.retain_labels, representative=self.representative, feature_mode=self.feature_mode)
            if self.return_point_segment:
                full = scene.segment if scene.segment is not None else np.full(scene.num_points, -1)
                view["point_segment"] = np.asarray(full, dtype=np.int64)
            views.append(view)
        if self.num_views == 1:
            return views[0]
        return {"view1": views[0], "view2": views[1], "corr": correspondences(views[0], views[1])}
