"""Active learning under torchrun (2 gloo processes on CPU) selects exactly what one process selects.

tests/active/al_dist_driver.py runs the AL loop with real inference, HMMU scoring, FDS and the
oracle, and a stand-in training that writes round-keyed network weights (the real DDP training is
equal to one process only within float tolerance: tests/engine/test_distributed.py). Scenes are
split over the ranks for inference and scoring; rank 0 gathers, selects, asks and writes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pcseg.active.labels import LabelSet
from pcseg.data.classes import get_class_map
from pcseg.data.scene import Scene, write_dataset_info, write_scene, write_split

DRIVER = Path(__file__).with_name("al_dist_driver.py")
REPO = Path(__file__).resolve().parents[2]


def _dataset(root: Path, sizes=(400, 260, 330, 180, 300)) -> Path:
    """Rooms of clustered points (so the 0.1/0.5/1 m HMMU levels and FDS neighbours matter)."""
    rng = np.random.default_rng(7)
    cmap = get_class_map("scannet20")
    names = []
    for i, n in enumerate(sizes):
        centres = rng.random((6, 3)) * [4.0, 3.0, 2.0]
        coord = (centres[rng.integers(0, 6, n)] + rng.normal(0, 0.15, (n, 3))).astype(np.float32)
        name = f"scene{i:04d}_00"
        write_scene(root, Scene(name=name, coord=coord, color=rng.integers(0, 255, (n, 3)).astype(np.uint8),
                                segment=rng.integers(0, cmap.num_classes, n).astype(np.int32),
                                instance=np.full(n, -1, np.int32)))
        names.append(name)
    write_dataset_info(root, "synthetic", cmap)
    write_split(root, "train", names)
    write_split(root, "val", names[:1])
    return root


def _run(data: Path, run_dir: Path, nproc: int, *overrides: str) -> str:
    # one thread per process in both runs: the network's float sums are then the same computation
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    args = [str(DRIVER), str(data), str(run_dir), *overrides]
    cmd = [sys.executable, *args] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def _selection(path: Path) -> list[tuple[str, int, float]]:
    with np.load(path) as z:
        names = [str(s) for s in z["scenes"]]
        return [(names[s], int(i), float(v)) for s, i, v in zip(z["scene_of"], z["index"], z["score"])]


@pytest.mark.slow
def test_two_gloo_processes_select_exactly_what_one_process_selects(tmp_path):
    data = _dataset(tmp_path / "data")
    common = ("al.strategy=hpal", "al.rounds=3", "al.budget_points=30", "al.init.points_per_scene=3", "seed=4")
    _run(data, tmp_path / "one", 1, *common)
    out = _run(data, tmp_path / "two", 2, *common)
    assert "2 processes" in out
    one, two = tmp_path / "one", tmp_path / "two"

    for k in (0, 1):  # the two HPAL selections, each from another network
        sel_one = _selection(one / "rounds" / f"round_{k:02d}" / "selection.npz")
        sel_two = _selection(two / "rounds" / f"round_{k:02d}" / "selection.npz")
        assert len(sel_one) == 30
        assert sel_two == sel_one  # same points, same pick order, same scores (exact)
        # the network outputs behind them: every scene computed by one of the two ranks, identical
        for s in sorted(p.name for p in (one / "rounds" / f"round_{k:02d}" / "inference").glob("*.npy")):
            a = np.load(one / "rounds" / f"round_{k:02d}" / "inference" / s)
            b = np.load(two / "rounds" / f"round_{k:02d}" / "inference" / s)
            np.testing.assert_array_equal(a, b)
    for k in range(3):
        a, b = LabelSet.load(one / "labels" / f"round_{k:02d}.npz"), LabelSet.load(two / "labels" / f"round_{k:02d}.npz")
        assert a.indices.keys() == b.indices.keys()
        for s in a.indices:
            np.testing.assert_array_equal(a.indices[s], b.indices[s])
            np.testing.assert_array_equal(a.labels[s], b.labels[s])
    assert len(LabelSet.load(two / "labels" / "round_02.npz")) == 5 * 3 + 2 * 30
    # the annotator was asked once per acquisition, by rank 0 only
    assert (two / "asked_rank0.txt").read_text().splitlines() == ["-1 15", "0 30", "1 30"]
    assert not (two / "asked_rank1.txt").exists()
    # one state, written once: no temporaries left, summary from rank 0
    assert not [p for p in two.rglob("*") if ".tmp" in p.name]
    assert (two / "summary.json").is_file()


@pytest.mark.slow
def test_a_failure_on_rank_0_stops_every_rank_with_its_message(tmp_path):
    data = _dataset(tmp_path / "data", sizes=(120, 100))
    _run(data, tmp_path / "run", 1, "al.strategy=random", "al.rounds=1", "al.init.points_per_scene=2")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(DRIVER), str(data),
         str(tmp_path / "run"), "al.strategy=random", "al.rounds=1", "al.init.points_per_scene=2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "already holds an active-learning run" in text  # rank 0's own error
    assert "rank 0 failed: " in text  # ... also reported by rank 1, which did not hang at a barrier


@pytest.mark.slow
def test_pcseg_al_runs_unchanged_under_torchrun_with_ddp_training(tmp_path):
    """The real command: DDP mean-teacher training each round, sharded inference, one selection."""
    data = _dataset(tmp_path / "data")
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "pcseg", "al",
         "hpal_synthetic", f"data.root={data}", f"run_dir={run_dir}", "data.voxel_size=0.05", "data.num_workers=0",
         "model.width=0.125", "trainer.progress=false", "trainer.max_iterations=2", "al.round0_epochs=null",
         "trainer.eval_every=1", "al.rounds=2", "al.budget_points=20", "al.init.points_per_scene=3", "device=cpu"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "world size 2" in proc.stdout and "2 processes" in proc.stdout
    assert proc.stdout.count("pcseg al: done") == 1  # rank 0 alone reports
    assert [len(LabelSet.load(run_dir / "labels" / f"round_{k:02d}.npz")) for k in range(2)] == [15, 35]
    for k in range(2):
        assert (run_dir / "rounds" / f"round_{k:02d}" / "round.json").is_file()
        assert (run_dir / "rounds" / f"round_{k:02d}" / "train" / "checkpoints" / "best.pt").is_file()
    assert not (run_dir / "rounds" / "round_00" / "inference").exists()  # cleaned once the labels were committed
