"""Benchmark: HPAL scoring (HMMU) + selection (global ranking, budget, FDS) at S3DIS scale.

S3DIS subsampled to 4 cm holds about 20 M points in ~270 rooms. This script writes synthetic rooms of
that size (surface-sampled walls/floor/ceiling/furniture boxes, spatially smooth class probabilities
and 96-d features, so that regions and feature suppression behave like real predictions) to a work
folder, then scores and selects one round (0.02 % of all points, HPAL's per-round budget) in a fresh
child process and records wall time per phase and the child's peak resident memory.

    flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_hmmu.py            # 20 M points
    .venv/bin/python benchmarks/bench_hmmu.py --points 2e6 --scenes 20 --out /tmp/x  # quick look

Results: benchmarks/results/hmmu.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synthetic_room(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) float32 points on the surfaces of a box room with a few box-shaped objects."""
    length, width, height = rng.uniform(4, 10), rng.uniform(3, 8), rng.uniform(2.7, 3.5)
    faces = [  # (origin, u, v): rectangles origin + a*u + b*v
        ((0, 0, 0), (length, 0, 0), (0, width, 0)), ((0, 0, height), (length, 0, 0), (0, width, 0)),
        ((0, 0, 0), (length, 0, 0), (0, 0, height)), ((0, width, 0), (length, 0, 0), (0, 0, height)),
        ((0, 0, 0), (0, width, 0), (0, 0, height)), ((length, 0, 0), (0, width, 0), (0, 0, height)),
    ]
    for _ in range(int(rng.integers(4, 12))):  # furniture: the top and two sides of a box
        sx, sy, sz = rng.uniform(0.4, 2.0), rng.uniform(0.4, 1.5), rng.uniform(0.4, 1.8)
        x0, y0 = rng.uniform(0, length - sx), rng.uniform(0, width - sy)
        faces += [((x0, y0, sz), (sx, 0, 0), (0, sy, 0)), ((x0, y0, 0), (sx, 0, 0), (0, 0, sz)),
                  ((x0, y0, 0), (0, sy, 0), (0, 0, sz))]
    o, u, v = (np.array([f[i] for f in faces], dtype=np.float64) for i in range(3))
    area = np.linalg.norm(np.cross(u, v), axis=1)
    face = rng.choice(len(faces), size=n, p=area / area.sum())
    a, b = rng.random((2, n))
    pts = o[face] + a[:, None] * u[face] + b[:, None] * v[face] + rng.normal(0, 0.004, (n, 3))
    return pts.astype(np.float32)


def smooth_field(rng: np.random.Generator, xyz: np.ndarray, channels: int, waves: int, scale: float) -> np.ndarray:
    """(n, channels) sums of random plane waves of wavelength ~ ``scale`` metres (spatially smooth)."""
    k = rng.normal(size=(waves, 3)) * (2 * np.pi / scale)
    phase = rng.uniform(0, 2 * np.pi, waves)
    basis = np.sin(xyz.astype(np.float64) @ k.T + phase)  # (n, waves)
    return basis @ rng.normal(size=(waves, channels)) / np.sqrt(waves)


def generate(out: Path, points: int, scenes: int, classes: int, dim: int, seed: int) -> list[str]:
    manifest = out / "manifest.json"
    spec = {"points": points, "scenes": scenes, "classes": classes, "dim": dim, "seed": seed, "version": 2}
    if manifest.is_file() and json.loads(manifest.read_text()).get("spec") == spec:
        return json.loads(manifest.read_text())["names"]
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(points - scenes * 20_000, np.full(scenes, 1 / scenes)) + 20_000
    names = []
    t0 = time.time()
    for i, n in enumerate(sizes):
        name = f"room_{i:04d}"
        xyz = synthetic_room(rng, int(n))
        logits = 4.0 * smooth_field(rng, xyz, classes, 24, 3.0) + rng.normal(0, 0.7, (n, classes))
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        feats = np.tanh(smooth_field(rng, xyz, dim, 32, 1.5) + rng.normal(0, 0.15, (n, dim)))
        np.save(out / f"{name}.coord.npy", xyz)
        np.save(out / f"{name}.probs.npy", probs.astype(np.float32))
        np.save(out / f"{name}.feats.npy", feats.astype(np.float16))
        names.append(name)
        if (i + 1) % 20 == 0:
            print(f"  generated {i + 1}/{scenes} rooms ({time.time() - t0:.0f}s)", flush=True)
    manifest.write_text(json.dumps({"spec": spec, "names": names}))
    return names


def measure(out: Path, names: list[str], budget_percent: float, init_percent: float, threads: int,
            strategy_name: str) -> dict:
    """Runs in a fresh process: score + select one round, report times and peak RSS."""
    from pcseg.active.scoring import PoolScene, npy_loader, select_from_pool
    from pcseg.active.selection import budget_from_percent
    from pcseg.active.strategies import build_strategy
    from pcseg.utils.rng import numpy_rng

    t0 = time.time()
    pool = []
    for name in names:
        n = np.load(out / f"{name}.coord.npy", mmap_mode="r").shape[0]
        labelled = np.zeros(n, dtype=bool)
        labelled[numpy_rng(0, "init", name).permutation(n)[: round(n * init_percent / 100)]] = True
        pool.append(PoolScene(name, npy_loader(out / f"{name}.coord.npy"), labelled, probs=npy_loader(out / f"{name}.probs.npy"),
                              feats=npy_loader(out / f"{name}.feats.npy")))
    total = sum(p.num_points for p in pool)
    budget = budget_from_percent(total, budget_percent)
    strategy = build_strategy(strategy_name, workers=1)
    t_setup = time.time() - t0

    load_before = os.getloadavg()[0]
    c1 = time.process_time()
    t1 = time.time()
    sel = select_from_pool(pool, strategy, budget, fds=strategy.fds_default, threads=threads)
    t_total = time.time() - t1
    cpu_total = time.process_time() - c1
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {
        "strategy": strategy_name, "points": total, "scenes": len(names), "budget": budget,
        "picked": int(sel.point_index.shape[0]), "visited": sel.result.visited,
        "suppressed": sel.result.suppressed, "skipped_labelled": sel.result.skipped_labelled,
        "chunks": sel.result.chunks, "threads": threads,
        "seconds_setup": t_setup, "seconds_scoring": sel.result.stats["seconds_scoring"],
        "seconds_ranking_and_fds": sel.result.stats["seconds_selection"],
        "seconds_score_and_select": t_total, "cpu_seconds_score_and_select": cpu_total, "peak_rss_gb": rss_gb,
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=float, default=20e6, help="total points (default 20 M = S3DIS at 4 cm)")
    p.add_argument("--scenes", type=int, default=270, help="number of rooms (S3DIS: 272)")
    p.add_argument("--classes", type=int, default=13, help="classes (S3DIS: 13)")
    p.add_argument("--dim", type=int, default=96, help="feature dimension (HPAL MinkUNet: 96)")
    p.add_argument("--budget-percent", type=float, default=0.02, help="per-round budget, %% of all points")
    p.add_argument("--init-percent", type=float, default=0.02, help="already labelled, %% per room")
    p.add_argument("--threads", type=int, default=2, help="scenes scored in parallel (threads)")
    p.add_argument("--strategies", default="hpal,random", help="comma-separated strategies to time")
    p.add_argument("--work", type=Path, default=Path("/tmp/pcseg-bench-hmmu"), help="folder for the synthetic rooms")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="results folder")
    p.add_argument("--measure", help=argparse.SUPPRESS)
    args = p.parse_args()
    names_file = args.work / "manifest.json"
    if args.measure:
        names = json.loads(names_file.read_text())["names"]
        res = measure(args.work, names, args.budget_percent, args.init_percent, args.threads, args.measure)
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    t0 = time.time()
    names = generate(args.work, int(args.points), args.scenes, args.classes, args.dim, seed=0)
    print(f"data ready in {time.time() - t0:.0f}s: {len(names)} rooms in {args.work}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    runs = []
    for strat in args.strategies.split(","):
        cmd = [sys.executable, __file__, "--measure", strat, "--work", str(args.work), "--threads", str(args.threads),
               "--budget-percent", str(args.budget_percent), "--init-percent", str(args.init_percent)]
        # pin the child to 2 cores: the target is "<= 60 s on 2 cores"
        if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 2:
            cmd = ["taskset", "-c", "0,1", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            return 1
        res = json.loads(line[0][len("RESULT "):])
        print(json.dumps(res, indent=1), flush=True)
        runs.append(res)

    env_info = {"cpu": platform.processor() or platform.machine(), "cores_used": args.threads,
                "python": platform.python_version(), "numpy": np.__version__,
                "commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                         capture_output=True, text=True).stdout.strip()}
    try:
        import scipy

        env_info["scipy"] = scipy.__version__
    except ImportError:
        pass
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hmmu.json").write_text(json.dumps({"runs": runs, "environment": env_info}, indent=1) + "\n")
    lines = [
        "# HMMU scoring + FDS selection at S3DIS scale",
        "",
        f"`benchmarks/bench_hmmu.py` (commit {env_info['commit']}): {runs[0]['points'] / 1e6:.1f} M synthetic points "
        f"in {runs[0]['scenes']} rooms, {args.classes} classes, {args.dim}-d float16 features, budget "
        f"{args.budget_percent} % of all points per round ({runs[0]['budget']} points), "
        f"{args.init_percent} % per room already labelled. One fresh process per row, "
        f"{args.threads} cores (taskset), probabilities/features memory-mapped from disk (page cache warm).",
        "",
        "| strategy | scoring s | ranking + walk s | total s (wall) | CPU s (all threads) | peak RSS GB | visited | suppressed by FDS | picked | machine load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(f"| {r['strategy']} | {r['seconds_scoring']:.1f} | {r['seconds_ranking_and_fds']:.1f} | "
                     f"{r['seconds_score_and_select']:.1f} | {r['cpu_seconds_score_and_select']:.1f} | {r['peak_rss_gb']:.2f} | {r['visited']} | "
                     f"{r['suppressed']} | {r['picked']} | {r['load_average_1min'][0]:.1f} -> {r['load_average_1min'][1]:.1f} |")
    lines += ["", "Target: <= 60 s and <= 8 GB for 20 M points on 2 cores. 'total' = scoring + ranking + budget "
              "walk (with FDS for hpal); peak RSS of the whole process (Python, numpy, scipy included). The machine "
              "is shared: wall times grow with its load; CPU seconds do not (on an idle 2-core machine the wall time "
              "is about CPU s / 2 for the threaded scoring).", ""]
    (args.out / "hmmu.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
