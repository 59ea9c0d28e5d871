"""`pcseg eval`: evaluate a stored checkpoint with its own config (plus overrides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from pcseg.data.scene import open_dataset
from pcseg.engine.checkpoint import load_checkpoint, load_model_weights
from pcseg.engine.data import build_val_loader, feature_channels
from pcseg.engine.distributed import DistInfo
from pcseg.engine.evaluate import evaluate, format_summary, save_confusion
from pcseg.engine.trainer import build_network, resolve_device
from pcseg.utils.atomic import atomic_write_json
from pcseg.utils.errors import DataError


def find_checkpoint(target: str | Path, which: str = "best") -> Path:
    target = Path(target)
    if target.is_dir():
        path = target / "checkpoints" / f"{which}.pt"
        if not path.is_file():
            raise DataError(target, f"no checkpoints/{which}.pt in this folder (is it a pcseg run folder?)")
        return path
    if not target.is_file():
        raise DataError(target, "neither a run folder nor a checkpoint file")
    return target


def evaluate_checkpoint(target: str | Path, overrides: list[str] | None = None, split: str | None = None,
                        which: str = "best", export_dir: str | Path | None = None, max_scenes: int | None = None):
    path = find_checkpoint(target, which)
    state = load_checkpoint(path)
    cfg = OmegaConf.create(state["config"])
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    if max_scenes:
        cfg.trainer.eval_max_scenes = max_scenes
    dist = DistInfo()
    device = resolve_device(cfg.device, dist)
    info = open_dataset(cfg.data.root)
    class_names = list(info.class_map.names)
    if class_names != list(state.get("class_names", class_names)):
        raise DataError(cfg.data.root, "this dataset's classes differ from the ones the checkpoint was trained on")
    feature_mode = state.get("feature_mode", cfg.data.feature_mode)
    model = build_network(cfg, feature_channels(feature_mode), info.num_classes).to(device)
    load_model_weights(model, state, path)
    split = split or cfg.data.val_split
    _, loader = build_val_loader(cfg, feature_mode, dist, split=split)

    on_scene = None
    if export_dir is not None:
        from pcseg.data.predictions import write_prediction_ply

        export_dir = Path(export_dir)

        def on_scene(name, point_pred, point_prob, _sl):
            scene = info.load(name)
            p = np.sort(point_prob, axis=1)
            margin = p[:, -1] - p[:, -2] if p.shape[1] > 1 else np.ones(len(p))
            write_prediction_ply(export_dir / f"{name}.ply", scene.coord, point_pred, info.class_map,
                                 gt=scene.segment, uncertainty=(1.0 - margin).astype(np.float32), color=scene.color,
                                 scene=name)

    ev = evaluate(model, loader, info.num_classes, cfg.backend, device, amp=False, on_scene=on_scene)
    table = format_summary(ev, class_names, f"{path} on {cfg.data.root} [{split}]")
    print(table)
    out_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    atomic_write_json(out_dir / f"eval_{split}.json", {
        "checkpoint": str(path), "voxel": ev.voxel.summary(class_names).as_dict(),
        "point": ev.point.summary(class_names).as_dict(),
    })
    save_confusion(out_dir / f"confusion_{split}_voxel.npy", ev.voxel)
    save_confusion(out_dir / f"confusion_{split}_point.npy", ev.point)
    if export_dir is not None:
        print(f"pcseg eval: predictions written to {export_dir} (view with `pcseg viz {export_dir}/<scene>.ply`)")
    return ev
