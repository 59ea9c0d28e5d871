"""Benchmark: CPCM vs the paper's two baselines on the synthetic rooms, at ≈0.1 % and ≈0.01 % labels.

For each ratio, `sparse_synthetic*` (two-view CE), `consistency_synthetic*` (+ J between views) and
`cpcm_synthetic*` (+ RegionMask consistency) are trained with the same label file, backbone, optimiser
and schedule, for several seeds (the seed changes initialisation, augmentation and masks, never the
labels). The fully supervised ceiling is `sparse_synthetic` with every label (`data.weak_labels=null`).
Every run is evaluated once, after its last epoch (no best-epoch selection on the reported rooms).

The script is resumable: runs whose `result.json` exists are read, interrupted ones continue
(`resume=auto`). Run it in chunks under the heavy lock, then once more to write the report:

    .venv/bin/pcseg prepare synthetic --out /tmp/cpcm_bench_data --scenes 32   # 24 train + 8 val, as measured
    flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_cpcm.py --ratios 0.01pct
    flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_cpcm.py --ratios 0.1pct --ceiling
    .venv/bin/python benchmarks/bench_cpcm.py --report-only

Results: benchmarks/results/cpcm.{md,json} (mean ± std mIoU per method and ratio, the ceiling, wall
time per run, the exact commands).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
METHODS = ("sparse", "consistency", "cpcm")
RATIOS = {"0.1pct": "", "0.01pct": "_0.01pct"}  # label-file stem -> experiment suffix
CEILING = "ceiling"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("/tmp/cpcm_bench_data/scannet"),
                   help="prepared synthetic dataset (the scannet/ folder of `pcseg prepare synthetic`)")
    p.add_argument("--runs", type=Path, default=REPO / "benchmarks" / "out" / "cpcm",
                   help="folder of the run directories (one per experiment and seed)")
    p.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "cpcm",
                   help="results path without extension (.md and .json are written)")
    p.add_argument("--ratios", nargs="*", default=list(RATIOS), choices=list(RATIOS),
                   help="label ratios to train in this invocation (none: `--ratios --ceiling` trains the ceiling only)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                   help="methods to train in this invocation")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds per method and ratio")
    p.add_argument("--ceiling", action="store_true", help="also train the fully supervised ceiling (seed 0)")
    p.add_argument("--report-only", action="store_true", help="train nothing; write the report of finished runs")
    p.add_argument("--extra", nargs="*", default=[], help="overrides added to every run (smoke tests only)")
    return p.parse_args(argv)


def run_plan(args: argparse.Namespace) -> list[dict]:
    """Every run of the full protocol (whatever this invocation trains), in report order."""
    plan = []
    for ratio, suffix in RATIOS.items():
        for method in METHODS:
            for seed in args.seeds:
                plan.append({"method": method, "ratio": ratio, "seed": seed, "experiment": f"{method}_synthetic{suffix}",
                             "overrides": []})
    plan.append({"method": CEILING, "ratio": "100pct", "seed": 0, "experiment": "sparse_synthetic",
                 "overrides": ["data.weak_labels=null"]})
    for run in plan:
        run["run_dir"] = args.runs / f"{run['method']}_{run['ratio']}" / f"seed{run['seed']}"
        run["command"] = [".venv/bin/pcseg", "train", run["experiment"], f"data.root={args.data}",
                          f"seed={run['seed']}", f"run_dir={run['run_dir']}", "resume=auto",
                          "trainer.progress=false", *run["overrides"], *args.extra]
    return plan


def selected(run: dict, args: argparse.Namespace) -> bool:
    if run["method"] == CEILING:
        return args.ceiling
    return run["ratio"] in args.ratios and run["method"] in args.methods and run["seed"] in args.seeds


def train(run: dict) -> None:
    log = run["run_dir"].parent / f"seed{run['seed']}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with log.open("a") as f:
        proc = subprocess.run(run["command"], cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f"bench_cpcm: {run['experiment']} seed {run['seed']} failed (exit {proc.returncode}); see {log}")
    (run["run_dir"] / "wall_seconds.txt").write_text(f"{time.time() - start:.1f}\n")


def read(run: dict) -> dict | None:
    result = run["run_dir"] / "result.json"
    if not result.is_file():
        return None
    r = json.loads(result.read_text())
    wall = run["run_dir"] / "wall_seconds.txt"
    return {"miou_voxel": 100 * r["last_eval"]["val/miou_voxel"], "miou_point": 100 * r["last_eval"]["val/miou_point"],
            "train_seconds": r["seconds"], "wall_seconds": float(wall.read_text()) if wall.is_file() else None,
            "iterations": r["iterations"], "skipped_batches": r["skipped_batches"]}


def label_counts(data: Path) -> dict[str, int]:
    counts = {}
    for ratio in RATIOS:
        meta = data / "labels" / f"{ratio}.pth.json"
        if meta.is_file():
            counts[ratio] = int(json.loads(meta.read_text())["num_points"])
    return counts


def mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def report(plan: list[dict], args: argparse.Namespace) -> None:
    from pcseg.utils.atomic import atomic_write_json, atomic_write_text

    rows, per_run = {}, []
    for run in plan:
        r = read(run)
        if r is None:
            continue
        per_run.append({k: str(v) if isinstance(v, Path) else v for k, v in run.items() if k != "command"}
                       | r | {"command": shlex.join(run["command"])})
        rows.setdefault((run["method"], run["ratio"]), []).append(r)
    summary = {}
    for (method, ratio), rs in rows.items():
        v, p = mean_std([r["miou_voxel"] for r in rs]), mean_std([r["miou_point"] for r in rs])
        summary[f"{method}/{ratio}"] = {"method": method, "ratio": ratio, "seeds": len(rs), "miou_voxel_mean": v[0],
                                        "miou_voxel_std": v[1], "miou_point_mean": p[0], "miou_point_std": p[1],
                                        "wall_seconds_mean": float(np.mean([r["wall_seconds"] or r["train_seconds"]
                                                                            for r in rs]))}
    labels = label_counts(args.data)
    split_sizes = {k: len((args.data / "splits" / f"{k}.txt").read_text().split()) for k in ("train", "val")}
    atomic_write_json(args.results.with_suffix(".json"),
                      {"data": str(args.data), "labelled_points": labels, "summary": summary, "runs": per_run})

    lines = ["# CPCM vs baselines on the synthetic rooms", "",
             f"Written by `benchmarks/bench_cpcm.py`. {split_sizes['train']} training rooms, {split_sizes['val']} "
             "validation rooms (the reported ones), "
             "20 classes (ScanNet map). mIoU in %, mean ± std over seeds, of the final model (one evaluation "
             "after the last epoch; no best-epoch selection). Voxel mIoU is the CPCM protocol; point mIoU maps "
             "every original point to its voxel.", ""]
    lines += ["| ratio | labelled points (train) | method | seeds | mIoU voxel | mIoU point | wall s / run |",
              "|---|---|---|---|---|---|---|"]
    for ratio in [*RATIOS, "100pct"]:
        for method in [*METHODS, CEILING]:
            s = summary.get(f"{method}/{ratio}")
            if s is None:
                continue
            n = labels.get(ratio, "all")
            lines.append(f"| {ratio} | {n} | {method} | {s['seeds']} | {s['miou_voxel_mean']:.2f} ± "
                         f"{s['miou_voxel_std']:.2f} | {s['miou_point_mean']:.2f} ± {s['miou_point_std']:.2f} | "
                         f"{s['wall_seconds_mean']:.0f} |")
    for ratio in RATIOS:
        a, b = summary.get(f"cpcm/{ratio}"), summary.get(f"sparse/{ratio}")
        if a and b:
            lines += ["", f"CPCM − sparse at {ratio}: {a['miou_voxel_mean'] - b['miou_voxel_mean']:+.2f} mIoU (voxel), "
                          f"{a['miou_point_mean'] - b['miou_point_mean']:+.2f} (point)."]
    lines += ["", "## Runs", "", "| experiment | seed | mIoU voxel | mIoU point | steps | wall s |", "|---|---|---|---|---|---|"]
    for r in per_run:
        wall = r["wall_seconds"] if r["wall_seconds"] is not None else r["train_seconds"]
        lines.append(f"| {r['experiment']}{' (all labels)' if r['method'] == CEILING else ''} | {r['seed']} | "
                     f"{r['miou_voxel']:.2f} | {r['miou_point']:.2f} | {r['iterations']} | {wall:.0f} |")
    lines += ["", "## Commands", "", "```"] + [r["command"] for r in per_run] + ["```", ""]
    atomic_write_text(args.results.with_suffix(".md"), "\n".join(lines))
    print(f"bench_cpcm: {len(per_run)}/{len(plan)} runs finished; wrote {args.results}.md/.json")


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    args = parse_args(argv)
    args.data = args.data.resolve()
    if not (args.data / "dataset.json").is_file():
        sys.exit(f"bench_cpcm: {args.data} is not a prepared dataset; run "
                 f"`.venv/bin/pcseg prepare synthetic --out {args.data.parent} --scenes 32` first")
    plan = run_plan(args)
    if not args.report_only:
        todo = [r for r in plan if selected(r, args) and read(r) is None]
        for run in tqdm(todo, desc="cpcm benchmark runs"):
            tqdm.write(f"bench_cpcm: {shlex.join(run['command'])}")
            train(run)
    report(plan, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
