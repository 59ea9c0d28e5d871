"""Build the training and validation loaders from the config (the engine's only contact with pcseg.data)."""

from __future__ import annotations

import functools
from typing import Any

from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from pcseg.engine.distributed import DistInfo
from pcseg.engine.sampler import KeyedShuffleSampler

FEATURE_CHANNELS = {"rgb": 3, "rgb_xyz": 6}


def feature_channels(mode: str) -> int:
    from pcseg.utils.errors import ConfigError

    try:
        return FEATURE_CHANNELS[mode]
    except KeyError:
        raise ConfigError(f"data.feature_mode={mode!r}: expected one of {', '.join(FEATURE_CHANNELS)}") from None


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def build_train_loader(cfg: Any, num_views: int, feature_mode: str, dist: DistInfo, weak_labels: Any = None,
                       view_augment: list[Any] | None = None):
    """Training loader: keyed shuffle (resumable, rank-sharded), augmented views, weak-label mask.

    Args:
        weak_labels: overrides ``cfg.data.weak_labels`` (a path or an in-memory dict scene → indices).
        view_augment: per-view augmentation configs (defaults to ``cfg.data.augment`` for every view).
    """
    from pcseg.data.collate import collate
    from pcseg.data.dataset import SegmentationDataset

    d = cfg.data
    dataset = SegmentationDataset(
        root=d.root,
        split=d.train_split,
        voxel_size=d.voxel_size,
        feature_mode=feature_mode,
        augment=[_plain(a) for a in view_augment] if view_augment else _plain(d.augment),
        weak_labels=weak_labels if weak_labels is not None else d.weak_labels,
        retain_labels=d.retain_labels,
        num_views=num_views,
        seed=cfg.seed,
    )
    sampler = KeyedShuffleSampler(len(dataset), d.batch_size, seed=cfg.seed, shuffle=True, loop=d.get("loop", 1),
                                  rank=dist.rank, world_size=dist.world_size)
    loader = DataLoader(
        dataset, batch_size=d.batch_size, sampler=sampler, num_workers=d.num_workers,
        collate_fn=functools.partial(collate, limit_numpoints=d.get("limit_numpoints")),
        persistent_workers=False, drop_last=False,
    )
    return dataset, sampler, loader


def build_val_loader(cfg: Any, feature_mode: str, dist: DistInfo, split: str | None = None):
    """Validation loader: no augmentation, every point kept, full labels; scenes sharded over ranks."""
    from pcseg.data.collate import collate
    from pcseg.data.dataset import SegmentationDataset

    d = cfg.data
    dataset = SegmentationDataset(
        root=d.root,
        split=split or d.val_split,
        voxel_size=d.voxel_size,
        feature_mode=feature_mode,
        augment=None,
        weak_labels=None,
        retain_labels=False,
        num_views=1,
        seed=cfg.seed,
    )
    indices = list(range(len(dataset)))
    cap = cfg.trainer.get("eval_max_scenes")
    if cap:
        indices = indices[: int(cap)]
    indices = indices[dist.rank::dist.world_size]
    loader = DataLoader(
        dataset, batch_size=d.val_batch_size, sampler=indices, num_workers=d.num_workers,
        collate_fn=collate, persistent_workers=False,
    )
    return dataset, loader
