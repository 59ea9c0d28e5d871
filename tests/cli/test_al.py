"""`pcseg al` end to end on a tiny dataset, and resume after real SIGKILLs at several phases.

Every run is a real `python -m pcseg.cli.main al ...` process with the real engine, data layer and a
very narrow MinkUNet. The killed run must end with exactly the label sets, selections and per-round
records of an uninterrupted run: nothing lost, nothing asked twice, nothing selected differently.
"""

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

from pcseg.data.classes import get_class_map
from pcseg.data.scene import Scene, write_dataset_info, write_scene, write_split

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def block_scene(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 2 x 2 x 1 m box: floor (class 1), two walls (0), a 'table' block (6); colour follows class."""
    part = rng.choice(4, size=n, p=[0.35, 0.25, 0.2, 0.2])
    xyz = rng.random((n, 3)) * [2.0, 2.0, 1.0]
    xyz[part == 0, 2] = 0.0                                   # floor
    xyz[part == 1, 0] = 0.0                                   # wall x = 0
    xyz[part == 2, 1] = 0.0                                   # wall y = 0
    t = part == 3
    xyz[t] = rng.random((int(t.sum()), 3)) * [0.6, 0.6, 0.05] + [0.8, 0.8, 0.5]
    seg = np.array([1, 0, 0, 6])[part].astype(np.int32)
    palette = np.array([[200, 200, 200], [120, 80, 40], [40, 120, 200]])
    color = np.clip(palette[np.array([1, 0, 0, 2])[part]] + rng.normal(0, 10, (n, 3)), 0, 255).astype(np.uint8)
    return (xyz + rng.normal(0, 0.005, (n, 3))).astype(np.float32), color, seg


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("al_data")
    rng = np.random.default_rng(0)
    names = []
    for i in range(4):
        xyz, color, seg = block_scene(rng, 1500)
        name = f"scene{i:04d}_00"
        write_scene(root, Scene(name, xyz, color, seg, np.full(len(seg), -1, np.int32)))
        names.append(name)
    write_dataset_info(root, "synthetic", get_class_map("scannet20"))
    write_split(root, "train", names[:3])
    write_split(root, "val", names[3:])
    return root


def al_command(dataset: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pcseg.cli.main", "al", "hpal_synthetic", f"data.root={dataset}", f"run_dir={run_dir}",
            "al.rounds=2", "al.budget_points=30", "al.init.points_per_scene=5", "al.threads=1",
            "trainer.epochs=2", "trainer.eval_every=1", "trainer.progress=false", "model.width=0.125",
            "model.planes=[32,64,128,256,256,128,96,96]", "data.num_workers=0", "data.batch_size=2",
            "data.voxel_size=0.1", "seed=3", *extra]


def env(delay: float = 0.0) -> dict[str, str]:
    e = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if delay:
        e["PCSEG_AL_TEST_DELAY"] = str(delay)
    return e


def run_to_end(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def kill_at(cmd: list[str], run_dir: Path, round_index: int, phase: str, delay: float, timeout: float = 300) -> None:
    """Start the run and SIGKILL it as soon as status.json shows ``phase`` of ``round_index``."""
    proc = subprocess.Popen(cmd, env=env(delay), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    t0 = time.time()
    status = run_dir / "status.json"
    try:
        while time.time() - t0 < timeout:
            if proc.poll() is not None:
                raise AssertionError(f"run ended before phase {phase} of round {round_index}: "
                                     f"{proc.stderr.read().decode()[-2000:]}")
            try:
                st = json.loads(status.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                st = {}
            if st.get("round") == round_index and st.get("phase") == phase:
                time.sleep(delay / 2)  # land inside the phase, not on its first line
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                return
            time.sleep(0.02)
        raise AssertionError(f"phase {phase} of round {round_index} never came")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def run_state(run_dir: Path) -> dict:
    """Everything the run decided: label sets, selections, answers, per-round label counts."""
    out = {}
    for f in sorted((run_dir / "labels").glob("round_*.npz")) + sorted((run_dir / "rounds").glob("*/selection.npz")) \
            + sorted((run_dir / "rounds").glob("*/answers.npz")):
        with np.load(f) as z:
            out[str(f.relative_to(run_dir))] = {k: z[k].tolist() for k in z.files if k != "meta"}
    for f in sorted((run_dir / "rounds").glob("*/round.json")):
        rec = json.loads(f.read_text())
        out[str(f.relative_to(run_dir))] = (rec["labelled_points"], rec["class_histogram"])
    return out


def test_al_runs_rounds_and_resumes_after_sigkill_at_every_phase(dataset, tmp_path):
    ref_dir = tmp_path / "reference"
    run_to_end(al_command(dataset, ref_dir))
    ref = run_state(ref_dir)
    summary = json.loads((ref_dir / "summary.json").read_text())
    assert [r["labelled_points"] for r in summary["rounds"]] == [15, 45]  # 3 scenes x 5, then +30
    assert all(r["miou_point"] is not None for r in summary["rounds"])
    for k in range(2):
        assert (ref_dir / "rounds" / f"round_{k:02d}" / "train" / "checkpoints" / "best.pt").is_file()
    assert not (ref_dir / "rounds" / "round_00" / "inference").exists()  # removed once labels were committed

    run_dir = tmp_path / "killed"
    cmd = al_command(dataset, run_dir)
    # training, inference (between scenes), scoring, writing the selection, writing the label set
    kills = [(0, "training"), (0, "inference"), (0, "selecting"), (0, "committing_labels"), (1, "training")]
    first = True
    for round_index, phase in kills:
        kill_at(cmd if first else [*cmd, "resume=true"], run_dir, round_index, phase, delay=1.0)
        first = False
        # nothing half-written is ever visible under a final name
        for npz in run_dir.rglob("*.npz"):
            np.load(npz).files  # noqa: B018 - raises on a truncated file
    run_to_end([*cmd, "resume=true"])
    assert run_state(run_dir) == ref
    assert not list(run_dir.rglob("*.tmp")), "stale temporaries left behind"
    assert json.loads((run_dir / "status.json").read_text())["phase"] == "done"
    status = subprocess.run([sys.executable, "-m", "pcseg.cli.main", "al", "--status", "hpal_synthetic",
                             f"run_dir={run_dir}"], env=env(), capture_output=True, text=True, cwd=REPO)
    assert status.returncode == 0 and "phase done" in status.stdout and "| 1 | 45 |" in status.stdout


def test_al_cli_errors_are_one_line(dataset, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pcseg.cli.main", "al", "supervised_synthetic"], env=env(),
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "has no `al` section" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(al_command(dataset, tmp_path / "none", "resume=true"), env=env(), capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 2 and "no active-learning run to resume" in proc.stderr


def test_al_trainer_switches_the_round_method():
    from pcseg.cli.al import compose_al_config

    cfg = compose_al_config("hpal_synthetic", ["al.trainer=cpcm"])
    assert cfg.method.name == "cpcm" and cfg.data.augment == "hpal_strong"  # strong augmentation for both views
    cfg = compose_al_config("hpal_synthetic", [])
    assert cfg.method.name == "mean_teacher" and list(cfg.data.augment) == ["hpal_strong", "none"]
    from pcseg.utils.errors import ConfigError

    with pytest.raises(ConfigError, match="al.trainer"):
        compose_al_config("hpal_synthetic", ["al.trainer=cpcm", "method=supervised"])
