"""`pcseg train <experiment> [key=value ...]`."""

from __future__ import annotations

import argparse

HELP = "train a network (supervised, CPCM, ...) from a hydra experiment config"
DESCRIPTION = """\
Train a network from an experiment config (configs/experiment/<experiment>.yaml) with hydra-style
overrides, e.g.

  pcseg train supervised_synthetic
  pcseg train cpcm_scannet data.root=/data/scannet trainer.epochs=10 backend=minkowski
  pcseg train cpcm_synthetic run_dir=outputs/mine resume=true      # continue after a crash
  torchrun --nproc_per_node=2 -m pcseg.cli.main train cpcm_scannet  # several GPUs / processes

Common keys: seed, backend (torch|minkowski|spconv), device (auto|cpu|cuda), run_dir, resume,
init_checkpoint, data.root, data.weak_labels, data.batch_size, model.width, optim.lr,
trainer.epochs, trainer.max_iterations, trainer.eval_every. `--cfg` prints the composed config.
Outputs go to run_dir (default outputs/<name>/<timestamp>): checkpoints/{last,best}.pt,
metrics.jsonl, tb/ (TensorBoard), summary_best.txt (per-class IoU), confusion matrices.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", help="experiment name (see --list)")
    p.add_argument("overrides", nargs="*", help="hydra overrides key=value (see configs/)")
    p.add_argument("--list", action="store_true", help="list the available experiments and exit")
    p.add_argument("--cfg", action="store_true", help="print the composed config and exit")


def run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from pcseg.engine.config import compose_config, list_experiments

    if args.list or not args.experiment:
        print("\n".join(list_experiments()))
        return 0 if args.list else 2
    cfg = compose_config(args.experiment, args.overrides)
    if args.cfg:
        print(OmegaConf.to_yaml(cfg, resolve=True))
        return 0
    from pcseg.engine import train
    from pcseg.engine.distributed import process_group_scope

    with process_group_scope():
        train(cfg)  # joins torchrun's process group, if any
    return 0
