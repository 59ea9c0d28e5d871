"""The training loop: one function, `train(cfg)`, for every method and for each active-learning round.

Per step: learning rate from the closed-form schedule → ``method.training_step`` → backward →
optimiser step → ``method.after_optimizer_step`` (EMA teachers) → logs. Per epoch: ``last.pt``,
validation every ``eval_every`` epochs, ``best.pt`` when the selection metric improves. All writes are
atomic and happen on rank 0; randomness is keyed, so ``resume=true`` after a kill reproduces the
uninterrupted run's loss sequence exactly (on CPU).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from pcseg.data.scene import open_dataset
from pcseg.engine import distributed as distm
from pcseg.engine.checkpoint import load_checkpoint, load_model_weights, save_checkpoint, unwrap
from pcseg.engine.config import resolve_run_dir, to_container
from pcseg.engine.data import build_train_loader, build_val_loader, feature_channels
from pcseg.engine.evaluate import EvalResult, evaluate, format_summary, move_batch, save_confusion
from pcseg.engine.logger import RunLogger
from pcseg.engine.optim import base_lr, build_optimizer, lr_at, set_lr
from pcseg.methods import StepContext, build_method
from pcseg.utils.atomic import atomic_write_json, atomic_write_text
from pcseg.utils.errors import ConfigError, PcsegError
from pcseg.utils.rng import seed_everything


@dataclass
class RunResult:
    run_dir: Path
    best_metric: float
    last_eval: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    skipped_batches: int = 0
    seconds: float = 0.0

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "best.pt"

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"


def resolve_device(spec: str, dist: distm.DistInfo) -> torch.device:
    spec = str(spec)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={spec} but no CUDA device is available (use device=cpu)")
        if dist.enabled:
            return torch.device("cuda", dist.local_rank)
    return torch.device(spec)


def build_network(cfg: DictConfig, in_channels: int, num_classes: int) -> torch.nn.Module:
    from pcseg.models import build_model

    overrides = {k: v for k, v in to_container(cfg.model).items() if k != "name"}
    return build_model(cfg.model.name, in_channels=in_channels, num_classes=num_classes, **overrides)


def resume_requested(resume: Any, last_checkpoint: Path) -> bool:
    """``resume``: true (continue; the checkpoint must exist), false (new run), or ``"auto"`` (continue
    if ``last_checkpoint`` exists, else start: what a requeued Slurm job wants)."""
    if isinstance(resume, str):
        if resume.lower() == "auto":
            return last_checkpoint.exists()
        raise ConfigError(f"resume must be true, false or auto, got {resume!r}")
    return bool(resume)


def train(cfg: DictConfig, weak_labels: Any = None) -> RunResult:
    """Train (or resume) the run described by ``cfg``; returns where it went and how it did.

    Args:
        cfg: a composed config (pcseg.engine.config.compose_config).
        weak_labels: optional in-memory label set (scene → point indices) overriding ``cfg.data.weak_labels``
            (the active-learning loop passes each round's labels this way).
    """
    t_start = time.time()
    dist = distm.init_distributed(cfg.device)
    device = resolve_device(cfg.device, dist)
    if cfg.trainer.get("deterministic", True):
        torch.use_deterministic_algorithms(True, warn_only=True)
    seed_everything(int(cfg.seed) + dist.rank)

    run_dir = resolve_run_dir(cfg) if dist.is_main else None
    run_dir = Path(distm.broadcast_object(str(run_dir) if run_dir else None))
    ckpt_dir = run_dir / "checkpoints"
    resume_state = None
    if resume_requested(cfg.resume, ckpt_dir / "last.pt"):
        resume_state = load_checkpoint(ckpt_dir / "last.pt", map_location="cpu")
    elif (ckpt_dir / "last.pt").exists():
        raise ConfigError(f"{run_dir} already holds a run: pass resume=true to continue it, or another run_dir")

    dataset_info = open_dataset(cfg.data.root)
    class_names = list(dataset_info.class_map.names)
    num_classes = dataset_info.num_classes

    method = build_method(cfg.method, num_classes)
    feature_mode = method.feature_mode or cfg.data.feature_mode
    model = build_network(cfg, feature_channels(feature_mode), num_classes).to(device)
    if cfg.get("init_checkpoint") and resume_state is None:
        state = load_checkpoint(cfg.init_checkpoint)
        load_model_weights(model, state, cfg.init_checkpoint)
    if resume_state is not None:
        load_model_weights(model, resume_state, ckpt_dir / "last.pt")
    method.setup(model)
    method.to(device)
    if dist.enabled:
        if cfg.trainer.get("sync_bn"):
            # Our own synchronised BN: torch's SyncBatchNorm refuses CPU tensors and sparse-tensor inputs.
            from pcseg.engine.sync_bn import convert_to_distributed_bn

            model = convert_to_distributed_bn(model)
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False
        )

    train_set, sampler, train_loader = build_train_loader(cfg, method.num_views, feature_mode, dist, weak_labels)
    _, val_loader = build_val_loader(cfg, feature_mode, dist)
    iters_per_epoch = sampler.batches_per_epoch
    max_iterations = int(cfg.trainer.max_iterations or cfg.trainer.epochs * iters_per_epoch)
    epochs = math.ceil(max_iterations / iters_per_epoch)

    optimizer = build_optimizer(model.parameters(), cfg.optim, dist.world_size)
    lr0 = base_lr(cfg.optim, dist.world_size)
    use_amp = bool(cfg.trainer.amp) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    epoch, batch_in_epoch, iteration, best, skipped = 0, 0, 0, -math.inf, 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        method.load_state_dict(resume_state.get("method", {}))
        if resume_state.get("scaler"):
            scaler.load_state_dict(resume_state["scaler"])
        epoch, batch_in_epoch = int(resume_state["epoch"]), int(resume_state["batch_in_epoch"])
        iteration, best = int(resume_state["iteration"]), float(resume_state["best_metric"])
        skipped = int(resume_state.get("skipped_batches", 0))

    logger = RunLogger(run_dir, enabled=dist.is_main, resume_iteration=iteration if resume_state else None)
    if dist.is_main:
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        print(f"pcseg: run {run_dir}  ({'resumed at step ' + str(iteration) if resume_state else 'new'}; "
              f"{len(train_set)} train scenes, {iters_per_epoch} steps/epoch, {max_iterations} steps, "
              f"device {device}, backend {cfg.backend}, world size {dist.world_size})", flush=True)

    def checkpoint(path_name: str, ep: int, bie: int) -> None:
        if not dist.is_main:
            return
        save_checkpoint(ckpt_dir / path_name, {
            "model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(), "method": method.state_dict(),
            "scaler": scaler.state_dict() if use_amp else None, "epoch": ep, "batch_in_epoch": bie,
            "iteration": iteration, "best_metric": best, "skipped_batches": skipped, "config": to_container(cfg),
            "class_names": class_names, "feature_mode": feature_mode,
        })

    def count_reducer(n: int) -> int:
        return int(distm.all_reduce_sum(torch.tensor([n], dtype=torch.int64, device=device)).item())

    last_eval: dict[str, float] = {}
    progress = bool(cfg.trainer.progress) and dist.is_main
    every_iters = int(cfg.trainer.get("checkpoint_every_iters") or 0)
    model.train()
    while iteration < max_iterations:
        sampler.set_epoch(epoch, start_batch=batch_in_epoch)
        train_set.set_epoch(epoch)
        bar = _progress(train_loader, progress, f"epoch {epoch + 1}/{epochs}", iters_per_epoch, batch_in_epoch)
        for batch in bar:
            ctx = StepContext(iteration=iteration, epoch=epoch, max_iterations=max_iterations,
                              iters_per_epoch=iters_per_epoch, seed=int(cfg.seed), backend=cfg.backend, device=device,
                              world_size=dist.world_size, count_reducer=count_reducer)
            lr = lr_at(iteration, max_iterations, lr0, cfg.optim.schedule)
            set_lr(optimizer, lr)
            batch = move_batch(batch, device)
            with torch.autocast(device_type=device.type, enabled=use_amp):
                result = method.training_step(model, batch, ctx)
            loss = result.loss
            if dist.enabled and count_reducer(int(loss is not None)) > 0 and loss is None:
                # Another process has a loss: this one must still join DDP's gradient all-reduce.
                loss = sum((p * 0.0).sum() for p in model.parameters())
            if loss is None:
                skipped += 1  # nothing to learn from (e.g. no labelled voxel survived): no NaN, no step
            else:
                if not torch.isfinite(loss):
                    raise PcsegError(f"the loss became {float(loss)} at step {iteration} (lr {lr:.3g}); "
                                     f"lower optim.lr or check the data")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                method.after_optimizer_step(unwrap(model), ctx)
            iteration += 1
            batch_in_epoch += 1
            loss_value = float(result.loss.detach()) if result.loss is not None else float("nan")
            if dist.enabled:  # log the global loss: the sum over ranks of each rank's share
                loss_value = float(distm.all_reduce_sum(torch.tensor([0.0 if loss is None else float(loss.detach())],
                                                                     dtype=torch.float64)).item()) / dist.world_size
            if iteration % int(cfg.trainer.log_every) == 0 or iteration == 1:
                logger.log(iteration, {"train/loss": loss_value, "train/lr": lr, "train/skipped_batches": skipped,
                                       **{f"train/{k}": v for k, v in result.logs.items()}}, epoch=epoch)
            if progress:
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
            if every_iters and iteration % every_iters == 0:
                checkpoint("last.pt", epoch, batch_in_epoch)
            if iteration >= max_iterations:
                break
        end_of_epoch = batch_in_epoch >= iters_per_epoch
        if end_of_epoch:
            epoch, batch_in_epoch = epoch + 1, 0
        final = iteration >= max_iterations
        if (end_of_epoch and epoch % int(cfg.trainer.eval_every) == 0) or final:
            ev = evaluate(method.eval_model(model), val_loader, num_classes, cfg.backend, device, amp=use_amp)
            last_eval = ev.scalars()
            logger.log(iteration, last_eval, epoch=epoch)
            metric = last_eval.get(cfg.trainer.best_metric)
            if metric is None:
                raise ConfigError(f"trainer.best_metric={cfg.trainer.best_metric!r}: choose from {', '.join(last_eval)}")
            improved = metric > best or not (ckpt_dir / "best.pt").exists()
            if improved:
                best = metric
            checkpoint("last.pt", epoch, batch_in_epoch)
            if improved:
                checkpoint("best.pt", epoch, batch_in_epoch)
                _write_eval_files(run_dir, ev, class_names, "best", dist)
            if dist.is_main:
                print(f"pcseg: step {iteration}: val mIoU voxel {100 * last_eval['val/miou_voxel']:.2f} / point "
                      f"{100 * last_eval['val/miou_point']:.2f}{'  (best)' if improved else ''}", flush=True)
        elif end_of_epoch or final:
            checkpoint("last.pt", epoch, batch_in_epoch)

    seconds = time.time() - t_start
    result = RunResult(run_dir=run_dir, best_metric=best, last_eval=last_eval, iterations=iteration,
                       skipped_batches=skipped, seconds=seconds)
    if dist.is_main:
        summary_path = run_dir / "summary_best.txt"
        table = summary_path.read_text() if summary_path.exists() else ""
        print(table, flush=True)
        print(f"pcseg: done in {seconds:.0f}s; {iteration} steps, {skipped} batch(es) without labels skipped; "
              f"best {cfg.trainer.best_metric} = {100 * best:.2f}; checkpoints in {ckpt_dir}", flush=True)
        atomic_write_json(run_dir / "result.json", {
            "best_metric": best, "best_metric_name": cfg.trainer.best_metric, "last_eval": last_eval,
            "iterations": iteration, "skipped_batches": skipped, "seconds": seconds,
        })
        logger.text("summary", table, iteration)
    logger.close()
    distm.barrier()
    return result


def _write_eval_files(run_dir: Path, ev: EvalResult, class_names: list[str], tag: str, dist: distm.DistInfo) -> None:
    if not dist.is_main:
        return
    table = format_summary(ev, class_names, f"validation ({tag} checkpoint)")
    atomic_write_text(run_dir / f"summary_{tag}.txt", table + "\n")
    save_confusion(run_dir / f"confusion_{tag}_voxel.npy", ev.voxel)
    save_confusion(run_dir / f"confusion_{tag}_point.npy", ev.point)
    atomic_write_json(run_dir / f"eval_{tag}.json", {
        "voxel": ev.voxel.summary(class_names).as_dict(), "point": ev.point.summary(class_names).as_dict(),
    })


def _progress(loader, enabled: bool, desc: str, total: int, initial: int):
    if not enabled:
        return loader
    from tqdm import tqdm

    return tqdm(loader, desc=desc, total=total, initial=initial, leave=False, dynamic_ncols=True,
                file=sys.stderr, disable=not sys.stderr.isatty())


def read_result(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "result.json").read_text())
