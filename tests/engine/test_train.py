"""End-to-end engine tests on a tiny generated dataset (real data layer, sparse backend and model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from train_overrides import REPO, tiny_train_overrides
from pcseg.engine import train
from pcseg.engine.config import compose_config
from pcseg.engine.logger import read_metrics


def _losses(run_dir: Path) -> dict[int, float]:
    return {r["iteration"]: r["train/loss"] for r in read_metrics(run_dir) if "train/loss" in r}


def test_supervised_run_writes_everything(tiny_synthetic, tmp_path):
    run = tmp_path / "run"
    cfg = compose_config("supervised_synthetic", tiny_train_overrides(tiny_synthetic / "scannet", run))
    res = train(cfg)
    assert res.iterations == 4 and res.skipped_batches == 0
    for name in ("config.yaml", "checkpoints/last.pt", "checkpoints/best.pt", "metrics.jsonl", "summary_best.txt",
                 "confusion_best_voxel.npy", "confusion_best_point.npy", "result.json", "eval_best.json"):
        assert (run / name).exists(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    losses = _losses(run)
    assert sorted(losses) == [1, 2, 3, 4] and all(np.isfinite(v) for v in losses.values())
    table = (run / "summary_best.txt").read_text()
    assert "IoU vox" in table and "wall" in table
    cm = np.load(run / "confusion_best_point.npy")
    # point-level evaluation covers every labelled point of the validation room
    val = tiny_synthetic / "scannet"
    seg = np.load(next((val / "scenes").glob(f"{(val / 'splits' / 'val.txt').read_text().split()[0]}")) / "segment.npy")
    assert cm.sum() == int((seg >= 0).sum())
    # an existing run is never silently overwritten
    from pcseg.utils.errors import ConfigError

    with pytest.raises(ConfigError, match="resume=true"):
        train(cfg)


def test_batches_without_labels_are_skipped_not_nan(tiny_synthetic, tmp_path):
    root = tiny_synthetic / "scannet"
    labels = {name: np.zeros(0, dtype=np.int64) for name in (root / "splits" / "train.txt").read_text().split()}
    run = tmp_path / "run"
    cfg = compose_config("supervised_synthetic", tiny_train_overrides(root, run, **{"trainer.max_iterations": 2}))
    res = train(cfg, weak_labels=labels)
    assert res.skipped_batches == 2
    first = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in first["model"].values() if v.is_floating_point())


def _run_cli(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "pcseg.cli.main", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# batch 1 over 2 train rooms: 2 steps per epoch, a checkpoint after every step (odd steps are mid-epoch)
RESUME_RUN = {"trainer.max_iterations": 8, "trainer.checkpoint_every_iters": 1, "trainer.eval_every": 100,
              "data.batch_size": 1}


def test_resume_after_kill_reproduces_the_loss_sequence(tiny_synthetic, tmp_path):
    root = tiny_synthetic / "scannet"
    extra = RESUME_RUN
    full = tmp_path / "full"
    assert _run_cli(["train", "supervised_synthetic", *tiny_train_overrides(root, full, **extra)]).wait() == 0
    reference = _losses(full)
    assert sorted(reference) == list(range(1, 9))

    killed = tmp_path / "killed"
    proc = _run_cli(["train", "supervised_synthetic", *tiny_train_overrides(root, killed, **extra)])
    deadline = time.time() + 300
    while time.time() < deadline and len(_losses(killed)) < 5:  # kill mid-run, after the step-4 checkpoint
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 5 <= len(_losses(killed)) < 8, "the run must be killed part-way"
    # The kill races the checkpoint writes of steps 5 and 6: any complete checkpoint from step 4 on is valid,
    # and the atomic write means last.pt is never a torn file.
    killed_at = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)["iteration"]
    assert 4 <= killed_at < 8

    resumed = _run_cli(["train", "supervised_synthetic", *tiny_train_overrides(root, killed, **extra), "resume=true"])
    out = resumed.communicate()[0]
    assert resumed.returncode == 0, out
    assert f"resumed at step {killed_at}" in out
    after = _losses(killed)
    assert sorted(after) == list(range(1, 9)), "one loss per step, none duplicated"
    assert after == pytest.approx(reference, rel=0, abs=0), "bitwise-identical losses after resume"
    ref_w = torch.load(full / "checkpoints" / "last.pt", weights_only=True)["model"]
    res_w = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)


class _Interrupted(Exception):
    pass


def test_resume_from_a_mid_epoch_checkpoint_is_exact(tiny_synthetic, tmp_path, monkeypatch):
    """Deterministic twin of the kill test: the run dies right after the step-5 checkpoint, which lies in the
    middle of epoch 3 (2 steps per epoch), so the resumed sampler must skip the epoch's first batch."""
    import pcseg.engine.trainer as trainer_module

    root = tiny_synthetic / "scannet"
    extra = RESUME_RUN
    full = tmp_path / "full"
    train(compose_config("supervised_synthetic", tiny_train_overrides(root, full, **extra)))
    reference = _losses(full)

    real_save = trainer_module.save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        if state["iteration"] == 5:
            raise _Interrupted

    run = tmp_path / "interrupted"
    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)
    with pytest.raises(_Interrupted):
        train(compose_config("supervised_synthetic", tiny_train_overrides(root, run, **extra)))
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert (state["iteration"], state["epoch"], state["batch_in_epoch"]) == (5, 2, 1)

    train(compose_config("supervised_synthetic", [*tiny_train_overrides(root, run, **extra), "resume=true"]))
    after = _losses(run)
    assert sorted(after) == list(range(1, 9))
    assert after == pytest.approx(reference, rel=0, abs=0)
    ref_w = torch.load(full / "checkpoints" / "last.pt", weights_only=True)["model"]
    res_w = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)


def test_eval_cli_reports_and_exports(tiny_synthetic, tmp_path, capsys):
    from pcseg.cli.main import main

    root = tiny_synthetic / "scannet"
    run = tmp_path / "run"
    train(compose_config("supervised_synthetic", tiny_train_overrides(root, run, **{"trainer.max_iterations": 1})))
    export = tmp_path / "preds"
    assert main(["eval", str(run), "--export", str(export)]) == 0
    out = capsys.readouterr().out
    assert "mIoU" in out and "IoU pt" in out
    plys = list(export.glob("*.ply"))
    assert len(plys) == 1
    from pcseg.data.predictions import read_prediction_ply

    cloud = read_prediction_ply(plys[0])
    scene = np.load(root / "scenes" / plys[0].stem / "coord.npy")
    assert cloud.coord.shape == scene.shape
    data = json.loads((run / "eval_val.json").read_text())
    assert 0.0 <= data["point"]["miou"] <= 1.0
