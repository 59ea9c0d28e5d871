"""Run a round's model over the training scenes: per-point class probabilities and features (HPAL §17.1).

The student of the chosen checkpoint runs in eval mode on the un-augmented voxelisation of every
training scene; voxel outputs are mapped to the original points through the inverse map. Each scene
is written as two ``.npy`` files (probabilities float32 (N, C), features float16 (N, D) by default)
atomically, so an interrupted inference resumes with the scenes that are missing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from pcseg.utils.atomic import atomic_numpy_save, remove_stale_temporaries


def probs_path(folder: Path, scene: str) -> Path:
    return folder / f"{scene}.probs.npy"


def feats_path(folder: Path, scene: str) -> Path:
    return folder / f"{scene}.feats.npy"


def scene_done(folder: Path, scene: str) -> bool:
    return probs_path(folder, scene).is_file() and feats_path(folder, scene).is_file()


def load_round_model(cfg: Any, checkpoint: Path, num_classes: int, device: torch.device):
    """The network of a round's checkpoint (student weights), in eval mode, and its feature mode."""
    from pcseg.engine.checkpoint import load_checkpoint, load_model_weights
    from pcseg.engine.data import feature_channels
    from pcseg.engine.trainer import build_network

    state = load_checkpoint(checkpoint)
    feature_mode = state.get("feature_mode") or cfg.data.feature_mode
    model = build_network(cfg, feature_channels(feature_mode), num_classes).to(device)
    load_model_weights(model, state, checkpoint)
    model.eval()
    return model, feature_mode


@torch.no_grad()
def infer_scenes(
    cfg: Any,
    checkpoint: Path,
    out_dir: Path,
    scenes: Sequence[str],
    num_classes: int,
    feats_dtype: str = "float16",
    device: torch.device | None = None,
    progress: bool = True,
    pause_s: float = 0.0,
    rank: int = 0,
    world_size: int = 1,
) -> int:
    """Write probabilities and features of every scene in ``scenes`` not yet in ``out_dir``.

    Args:
        cfg: the round's composed config (data, model, backend).
        checkpoint: the round's checkpoint (``model`` = student).
        out_dir: folder for ``<scene>.probs.npy`` / ``<scene>.feats.npy``.
        scenes: the training split's scene names (the order of the dataset).
        num_classes: C.
        feats_dtype: storage dtype of the features (float16 halves the disk/memory of FDS).
        pause_s: test hook: sleep this long after each written scene (widens the window for kill tests).
        rank: this process's rank; with ``world_size`` > 1 it computes only the scenes ``i % world_size
            == rank`` (each scene's output depends on that scene alone, so the split changes nothing)
            and leaves the clean-up of stale temporaries to the caller's rank 0 (another rank's
            temporary may be in flight).
        world_size: number of processes sharing the scenes.

    Returns:
        Number of scenes computed now by this process.
    """
    from torch.utils.data import DataLoader

    from pcseg.data.collate import collate
    from pcseg.engine.data import build_val_loader
    from pcseg.engine.distributed import DistInfo
    from pcseg.engine.evaluate import move_batch
    from pcseg.sparse import SparseTensor

    out_dir.mkdir(parents=True, exist_ok=True)
    if world_size == 1:
        remove_stale_temporaries(out_dir)
    todo = [i for i, s in enumerate(scenes) if i % world_size == rank and not scene_done(out_dir, s)]
    if not todo:
        return 0
    device = device or torch.device("cpu")
    model, feature_mode = load_round_model(cfg, checkpoint, num_classes, device)
    dataset, _ = build_val_loader(cfg, feature_mode, DistInfo(), split=cfg.data.train_split)
    if list(dataset.scenes) != list(scenes):
        raise RuntimeError("the inference dataset's scenes differ from the active-learning pool (split changed?)")
    loader = DataLoader(dataset, batch_size=1, sampler=todo, num_workers=int(cfg.data.get("num_workers", 0)),
                        collate_fn=collate)
    it: Any = loader
    if progress:
        from tqdm import tqdm

        it = tqdm(loader, desc=f"inference (rank {rank})" if world_size > 1 else "inference", total=len(todo),
                  leave=False)
    for batch in it:
        batch = move_batch(batch, device)
        out = model(SparseTensor.from_batch(batch["coords"], batch["feat"], backend=cfg.backend))
        prob = torch.softmax(out["logits"].float(), dim=1)
        feats = out["feats"].float()
        inverse = batch["inverse"]
        name = batch["scene"][0]
        covered = inverse >= 0
        p = torch.full((inverse.shape[0], prob.shape[1]), float("nan"))
        f = torch.zeros((inverse.shape[0], feats.shape[1]))
        p[covered.cpu()] = prob[inverse[covered]].cpu()
        f[covered.cpu()] = feats[inverse[covered]].cpu()
        # features first: a scene counts as done once its probabilities exist next to them
        atomic_numpy_save(feats_path(out_dir, name), f.numpy().astype(feats_dtype))
        atomic_numpy_save(probs_path(out_dir, name), p.numpy().astype(np.float32))
        if pause_s:
            time.sleep(pause_s)
    return len(todo)
