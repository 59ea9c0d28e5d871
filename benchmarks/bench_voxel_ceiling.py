"""Benchmark: the best mIoU any voxel classifier can reach at a given voxel size (the voxelisation ceiling).

A network predicts one label per voxel. On the voxel protocol (CPCM) the ground truth of a voxel is the
label of its representative point; on the point protocol every original point inherits its voxel's
prediction, so points of thin objects that share a voxel with a wall are wrong whatever the network
does. This script voxelises the validation rooms exactly as evaluation does (the same
`SegmentationDataset` view: no augmentation, first point as representative) and scores the oracle
that predicts each voxel's majority label, for several voxel sizes (the majority is the best per-voxel
choice for accuracy; for mIoU it is the practical upper reference). Seconds per size on 2 cores.

    .venv/bin/python benchmarks/bench_voxel_ceiling.py --data data/synthetic/scannet
    .venv/bin/python benchmarks/bench_voxel_ceiling.py --data /data/scannet --sizes 0.02 0.05

Results: benchmarks/results/voxel_ceiling.{md,json} (or --results PATH).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def majority_labels(inverse: np.ndarray, labels: np.ndarray, num_voxels: int, num_classes: int) -> np.ndarray:
    """(V,) most frequent non-ignored label per voxel (0 for a voxel holding only ignored points).

    Args:
        inverse: (N,) voxel row of every point (-1 = point not in any voxel).
        labels: (N,) point labels, -1 = ignore.
    """
    keep = (labels >= 0) & (inverse >= 0)
    counts = np.zeros((num_voxels, num_classes), dtype=np.int64)
    np.add.at(counts, (inverse[keep], labels[keep]), 1)
    return counts.argmax(axis=1)


def ceiling(root: Path, voxel_size: float, split: str) -> dict:
    """Voxel and point confusion matrices of the majority-label oracle on ``split`` at ``voxel_size``."""
    from pcseg.data.dataset import SegmentationDataset
    from pcseg.metrics import ConfusionMatrix

    ds = SegmentationDataset(root=root, split=split, voxel_size=voxel_size, augment=None, weak_labels=None,
                             retain_labels=False, num_views=1, seed=0, return_point_segment=True)
    names = list(ds.data.class_map.names)
    voxel_cm, point_cm = ConfusionMatrix(len(names)), ConfusionMatrix(len(names))
    voxels = []
    for i in range(len(ds)):
        view = ds[i]
        pred = majority_labels(view["inverse"], view["point_segment"], len(view["segment"]), len(names))
        voxel_cm.update(torch.from_numpy(pred), torch.from_numpy(view["segment"]))
        point_cm.update(torch.from_numpy(pred[np.maximum(view["inverse"], 0)]), torch.from_numpy(view["point_segment"]))
        voxels.append(len(view["segment"]))
    return {"voxel_size": voxel_size, "scenes": len(ds), "voxels_per_scene_mean": float(np.mean(voxels)),
            "miou_voxel": voxel_cm.miou(), "miou_point": point_cm.miou(),
            "iou_voxel": dict(zip(names, voxel_cm.iou().tolist())), "iou_point": dict(zip(names, point_cm.iou().tolist()))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO / "data" / "synthetic" / "scannet",
                   help="a prepared dataset folder (default: data/synthetic/scannet)")
    p.add_argument("--split", default="val", help="split to score (default: val)")
    p.add_argument("--sizes", type=float, nargs="+", default=[0.1, 0.075, 0.05, 0.02],
                   help="voxel edges in metres (default: 0.1 0.075 0.05 0.02)")
    p.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "voxel_ceiling",
                   help="results path without extension (.md and .json are written)")
    args = p.parse_args(argv)
    if not (args.data / "dataset.json").is_file():
        sys.exit(f"bench_voxel_ceiling: {args.data} is not a prepared dataset (no dataset.json); "
                 f"run `.venv/bin/pcseg prepare synthetic --out {args.data.parent}` first")
    rows = [ceiling(args.data, size, args.split) for size in args.sizes]
    from pcseg.utils.atomic import atomic_write_json, atomic_write_text

    atomic_write_json(args.results.with_suffix(".json"), {"data": str(args.data), "split": args.split, "rows": rows})
    lines = ["# Voxelisation ceiling", "",
             f"Written by `benchmarks/bench_voxel_ceiling.py` on `{args.data}` [{args.split}]: mIoU (%) of the "
             "oracle that predicts every voxel's majority label, with the evaluation's own voxelisation. "
             "Every point of a voxel gets the voxel's one label and a network cannot see which point represents "
             "the voxel, so this is the practical upper reference for a network at that voxel size.", "",
             "| voxel | voxels / scene | mIoU voxel | mIoU point | worst class (point IoU) |", "|---|---|---|---|---|"]
    for r in rows:
        worst = min((v, k) for k, v in r["iou_point"].items() if v == v)
        lines.append(f"| {100 * r['voxel_size']:g} cm | {r['voxels_per_scene_mean']:.0f} | {100 * r['miou_voxel']:.2f} | "
                     f"{100 * r['miou_point']:.2f} | {worst[1]} {100 * worst[0]:.1f} |")
    atomic_write_text(args.results.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
