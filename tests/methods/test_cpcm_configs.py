"""CPCM experiment configs: paper values (cpcm_hpal.md §5.4), like-for-like baselines, and a 2-step run of
every CPCM config on a tiny generated dataset."""

from __future__ import annotations

import json
import math

import pytest
from omegaconf import OmegaConf

from train_overrides import tiny_train_overrides
from pcseg.engine.config import compose_config, list_experiments

# (experiment, dataset, λ_c, G, λ_m, jitter, weak-label file, consistency-baseline λ_c) — spec §5.4
PAPER = [
    ("scannet", "scannet", 0.0, 4, 5.0, True, "0.1pct.pth", 1.0),
    ("scannet_0.01pct", "scannet", 0.0, 8, 10.0, False, "0.01pct.pth", 5.0),
    ("s3dis", "s3dis", 2.0, 4, 5.0, False, "0.1pct.pth", 1.0),
    ("s3dis_0.01pct", "s3dis", 2.0, 8, 10.0, False, "0.01pct.pth", 5.0),
    ("synthetic", "synthetic", 0.0, 4, 5.0, False, "0.1pct.pth", 1.0),
    ("synthetic_0.01pct", "synthetic", 0.0, 8, 10.0, False, "0.01pct.pth", 5.0),
]
SUFFIXES = [p[0] for p in PAPER]


@pytest.mark.parametrize("suffix,dataset,lc,grid,lm,jitter,labels,lc_cons", PAPER)
def test_paper_hyper_parameters(suffix, dataset, lc, grid, lm, jitter, labels, lc_cons):
    cpcm = compose_config(f"cpcm_{suffix}")
    m = cpcm.method
    assert (m.name, m.lambda_consistency, m.mask_grid, m.lambda_mask, m.mask_ratio) == ("cpcm", lc, grid, lm, 0.75)
    assert (m.eps, m.seg_both_views, m.corr_skip) == (1e-4, True, "scene")
    assert cpcm.data.name == dataset and cpcm.data.augment.jitter is jitter
    assert cpcm.data.weak_labels == f"{cpcm.data.root}/labels/{labels}"
    assert cpcm.data.retain_labels is True  # the fix; data.retain_labels=false is the official behaviour
    assert (cpcm.optim.lr, cpcm.optim.weight_decay, cpcm.optim.momentum, cpcm.optim.dampening) == (
        0.1 if dataset == "synthetic" else 0.01, 0.001, 0.9, 0.1)
    assert cpcm.optim.scale_lr_by_world_size and cpcm.data.batch_size == 2
    if dataset != "synthetic":
        assert cpcm.trainer.epochs == 180 and m.rampup_epochs == 5
        assert cpcm.data.voxel_size == {"scannet": 0.02, "s3dis": 0.05}[dataset]
        assert cpcm.model.width == 1.0
    sparse = compose_config(f"sparse_{suffix}")
    assert sparse.method.name == "supervised" and sparse.method.num_views == 2
    cons = compose_config(f"consistency_{suffix}")
    assert (cons.method.name, cons.method.lambda_consistency, cons.method.lambda_mask) == ("cpcm", lc_cons, 0.0)
    assert cons.method.rampup_epochs == m.rampup_epochs


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_baselines_differ_from_cpcm_only_in_the_method(suffix):
    """Same data, labels, network, optimiser and schedule (the comparison of the paper's table)."""
    def plain(name):
        cfg = OmegaConf.to_container(compose_config(name), resolve=True)
        cfg["data"]["augment"].pop("jitter")  # ScanNet 0.1 % CPCM alone turns colour jitter on (§5.4)
        return {k: cfg[k] for k in ("data", "model", "optim", "trainer", "seed", "backend")}

    ref = plain(f"cpcm_{suffix}")
    for baseline in ("sparse", "consistency"):
        assert plain(f"{baseline}_{suffix}") == ref, baseline


def test_every_cpcm_family_config_is_listed():
    names = set(list_experiments())
    for suffix in SUFFIXES:
        assert {f"cpcm_{suffix}", f"sparse_{suffix}", f"consistency_{suffix}"} <= names


@pytest.fixture(scope="module")
def tiny_roots(tiny_synthetic, tmp_path_factory):
    """The shared tiny dataset seen through folders of links plus our own labels/ (never written into it)."""
    from pcseg.data import weak_labels as wl
    from pcseg.data.scene import open_dataset

    roots = {}
    for layout in ("scannet", "s3dis"):
        src = tiny_synthetic / layout
        root = tmp_path_factory.mktemp(f"cpcm_{layout}")
        for entry in src.iterdir():
            (root / entry.name).symlink_to(entry)
        data = open_dataset(root)
        for ratio, name in ((0.001, "0.1pct.pth"), (0.0001, "0.01pct.pth")):
            labels, meta = wl.make_weak_labels(data, "train", ratio=ratio, seed=0)
            wl.save(root / "labels" / name, labels, meta)
        roots[layout] = root
    return roots


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_two_step_run_of_each_cpcm_config(suffix, tiny_roots, tmp_path):
    from pcseg.engine import train

    layout = "s3dis" if suffix.startswith("s3dis") else "scannet"
    run = tmp_path / "run"
    overrides = tiny_train_overrides(tiny_roots[layout], run, **{
        "trainer.max_iterations": 2, "model.layers": "[1,1,1,1,1,1,1,1]", "data.limit_numpoints": "null",
    })
    cfg = compose_config(f"cpcm_{suffix}", overrides)
    assert cfg.data.weak_labels == str(tiny_roots[layout] / "labels" / cfg.data.weak_labels.split("/")[-1])
    result = train(cfg)
    assert result.iterations == 2 and result.skipped_batches == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "train/loss" in r]
    assert steps and all(math.isfinite(r["train/loss"]) for r in steps)
    first = steps[0]
    # Every term of the CPCM loss was computed on real two-view batches.
    for key in ("train/loss_ce1", "train/loss_ce2", "train/loss_mask_corr", "train/loss_mask_self"):
        assert key in first, key
    assert ("train/loss_consistency" in first) == (cfg.method.lambda_consistency > 0)
    assert first["train/matched_points"] > 0 and 0 < first["train/masked_fraction"] < 1
    assert first["train/rampup"] == pytest.approx(math.exp(-5))
    assert 0 <= result.last_eval["val/miou_voxel"] <= 1
    assert (run / "checkpoints" / "last.pt").exists()
