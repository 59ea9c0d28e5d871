"""`pcseg al <experiment> [key=value ...]`: active-learning rounds (HPAL)."""

from __future__ import annotations

import argparse

HELP = "active learning: rounds of train -> score -> select -> annotate (HPAL)"
DESCRIPTION = """\
Run active-learning rounds from an experiment config (configs/experiment/hpal_*.yaml) with hydra
overrides. Every round trains (method al.trainer, warm-started from the previous round), scores all
training points (al.strategy), selects al.budget_percent % of them globally and asks the annotator.

  pcseg al hpal_synthetic
  pcseg al hpal_synthetic al.strategy=random seed=1            # a baseline
  pcseg al hpal_s3dis data.root=/data/s3dis_4cm backend=minkowski
  pcseg al hpal_synthetic resume=true                          # continue after a crash or a kill
  pcseg al hpal_synthetic al.annotator=export                  # ask a person: stops after writing queries
  pcseg al hpal_synthetic al.annotator=export resume=true      # ... after answers.csv was filled in
  pcseg al hpal_synthetic al.trainer=cpcm                      # active selection + CPCM weak supervision

AL keys (configs/al/default.yaml): al.strategy (hpal|hmmu|margin|entropy|random), al.rounds,
al.budget_percent / al.budget_points, al.init.percent / al.init.points_per_scene / al.init.file,
al.hmmu.levels / al.hmmu.weights, al.fds.enabled / al.fds.radius / al.fds.cosine,
al.annotator (oracle|export), al.answers, al.trainer (mean_teacher|cpcm|supervised),
al.checkpoint (best|last), al.warm_start, al.keep_inference, al.threads.
Per-round training keys are the usual ones (trainer.epochs, model.width, optim.lr, ...).

The run folder (run_dir, default outputs/<name>/<strategy>-seed<seed>) holds every round's label
set, selection, answers, metrics and checkpoints; summary.md has mIoU per round. All writes are
atomic: `resume=true` continues a killed run without losing, duplicating or re-asking any label.

Several processes (CPU: gloo, GPUs: NCCL), unchanged otherwise:

  torchrun --nproc_per_node=2 -m pcseg al hpal_synthetic

Training is distributed data parallel; inference and scoring split the training scenes over the
processes, rank 0 alone selects (the same points as one process), asks the annotator and writes the
run folder, which every process must see (one machine or a shared filesystem).

Exit status: 0 all rounds done, 3 waiting for a person's answers (al.annotator=export), 2 error.
"""

WAITING_EXIT_CODE = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", help="experiment name (see --list)")
    p.add_argument("overrides", nargs="*", help="hydra overrides key=value (al.*, trainer.*, data.*, seed, run_dir, resume)")
    p.add_argument("--list", action="store_true", help="list the experiments that have an `al` section and exit")
    p.add_argument("--cfg", action="store_true", help="print the composed config (with the round's method) and exit")
    p.add_argument("--status", action="store_true", help="print the run's status and per-round summary and exit")


def compose_al_config(experiment: str, overrides: list[str]):
    """Compose the experiment; if ``al.trainer`` names another method than the experiment's, recompose
    with ``method=<al.trainer>`` so the round trains that method with its own defaults."""
    from omegaconf import OmegaConf, open_dict

    from pcseg.engine.config import compose_config
    from pcseg.utils.errors import ConfigError

    cfg = compose_config(experiment, overrides)
    if cfg.get("al") is None:
        raise ConfigError(f"experiment {experiment!r} has no `al` section; active-learning experiments: "
                          f"{', '.join(al_experiments()) or 'none'}")
    trainer = str(cfg.al.get("trainer") or cfg.method.name)
    if trainer != cfg.method.name:
        if any(o.split("=", 1)[0].lstrip("+~") == "method" for o in overrides):
            raise ConfigError(f"al.trainer={trainer} disagrees with the method override; give only al.trainer")
        cfg = compose_config(experiment, [*overrides, f"method={trainer}"])
        augment = cfg.data.get("augment")
        if OmegaConf.is_list(augment) and trainer != "mean_teacher":
            # [student, teacher] is the mean teacher's pairing; other methods augment every view alike
            with open_dict(cfg):
                cfg.data.augment = augment[0]
    return cfg


def al_experiments() -> list[str]:
    from pcseg.engine.config import list_experiments
    from pcseg.paths import config_dir

    out = []
    for name in list_experiments():
        text = (config_dir() / "experiment" / f"{name}.yaml").read_text()
        if "/al:" in text or "\nal:" in text:
            out.append(name)
    return out


def run(args: argparse.Namespace) -> int:
    import json

    from omegaconf import OmegaConf

    if args.list or not args.experiment:
        print("\n".join(al_experiments()))
        return 0 if args.list else 2
    cfg = compose_al_config(args.experiment, args.overrides)
    if args.cfg:
        print(OmegaConf.to_yaml(cfg, resolve=True))
        return 0
    from pathlib import Path

    from pcseg.active.loop import ActiveLearningRun, default_run_dir

    if args.status:
        run_dir = Path(cfg.run_dir).expanduser().resolve() if cfg.get("run_dir") else default_run_dir(cfg)
        status = run_dir / "status.json"
        if not status.is_file():
            print(f"no active-learning run in {run_dir}")
            return 2
        st = json.loads(status.read_text())
        extra = {k: v for k, v in st.items() if k not in ("round", "phase", "time")}
        print(f"{run_dir}: round {st.get('round')}, phase {st.get('phase')}" + (f" {extra}" if extra else ""))
        summary = run_dir / "summary.md"
        if summary.is_file():
            print(summary.read_text())
        return 0
    from pcseg.engine.distributed import process_group_scope

    with process_group_scope():
        al_run = ActiveLearningRun(cfg, args.experiment)  # joins torchrun's process group, if any
        outcome = al_run.run(resume=bool(cfg.get("resume", False)))
    return WAITING_EXIT_CODE if outcome.status == "waiting" else 0
