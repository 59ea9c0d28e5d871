"""`pcseg eval <run dir or checkpoint>`."""

from __future__ import annotations

import argparse

HELP = "evaluate a trained checkpoint (voxel and point mIoU, per-class table, optional PLY export)"
DESCRIPTION = """\
Evaluate a checkpoint on a split of its dataset (or another prepared dataset with the same classes):

  pcseg eval outputs/supervised_synthetic/20261122-101500             # best.pt of that run, val split
  pcseg eval run/checkpoints/last.pt --split val --export preds/      # also write prediction PLYs
  pcseg eval run data.root=/data/scannet backend=minkowski            # config overrides

Prints the per-class IoU table (voxel level = CPCM protocol; point level = predictions re-projected
onto every original point) and writes eval_<split>.json + confusion matrices next to the checkpoint's run.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a run folder (uses checkpoints/best.pt) or a checkpoint file")
    p.add_argument("overrides", nargs="*", help="config overrides key=value applied to the stored config")
    p.add_argument("--split", default=None, help="split to evaluate (default: the config's data.val_split)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint of a run folder")
    p.add_argument("--export", metavar="DIR", default=None,
                   help="write one prediction PLY per scene (label, palette colour, gt, uncertainty) into DIR")
    p.add_argument("--max-scenes", type=int, default=None, help="evaluate only the first N scenes")


def run(args: argparse.Namespace) -> int:
    from pcseg.engine.evaluation_run import evaluate_checkpoint

    evaluate_checkpoint(args.target, overrides=args.overrides, split=args.split, which=args.checkpoint,
                        export_dir=args.export, max_scenes=args.max_scenes)
    return 0
