"""Benchmark: HPAL vs random vs entropy selection on the synthetic rooms, several seeds.

Every (strategy, seed) pair is one `pcseg al hpal_synthetic` run with the same initial labels (keyed by
the seed) and the same per-round budget; round 0 is trained once per seed and shared by the other
strategies (``al.round0_from``: identical labels, identical training). The script is resumable:
run it again and finished runs are read, interrupted ones continue (``resume=true``).

    flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_al.py            # the full protocol
    flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_al.py --run-seeds 1   # one chunk (then 2, ...)
    .venv/bin/python benchmarks/bench_al.py --seeds 0 --out /tmp/x al.rounds=2 al.round0_epochs=1 trainer.epochs=1  # smoke

Results: benchmarks/results/al.{md,json,png} (mIoU after every round, mean ± std over seeds, and the
per-seed numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def prepare(data: Path, scenes: int) -> Path:
    root = data / "scannet"
    if not (root / "dataset.json").is_file():
        subprocess.run([sys.executable, "-m", "pcseg.cli.main", "prepare", "synthetic", "--out", str(data),
                        "--scenes", str(scenes), "--no-progress"], check=True, cwd=REPO)
    return root


def run_al(root: Path, run_dir: Path, strategy: str, seed: int, args: argparse.Namespace,
           round0_from: Path | None, log: Path) -> float:
    cmd = [sys.executable, "-m", "pcseg.cli.main", "al", "hpal_synthetic", f"data.root={root}", f"run_dir={run_dir}",
           f"seed={seed}", f"al.strategy={strategy}", "trainer.progress=false", *args.overrides]
    if round0_from is not None:
        cmd.append(f"al.round0_from={round0_from}")
    if (run_dir / "al.json").is_file():
        cmd.append("resume=true")
    if (run_dir / "status.json").is_file() and json.loads((run_dir / "status.json").read_text()).get("phase") == "done":
        return 0.0
    t0 = time.time()
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ})
    if proc.returncode != 0:
        raise SystemExit(f"{strategy} seed {seed} failed (exit {proc.returncode}); see {log}")
    return time.time() - t0


def collect(runs: Path, strategies: list[str], seeds: list[int]) -> dict:
    table: dict = {}
    for strat in strategies:
        for seed in seeds:
            summary = runs / f"{strat}-seed{seed}" / "summary.json"
            if not summary.is_file():
                continue
            for rec in json.loads(summary.read_text())["rounds"]:
                row = table.setdefault(rec["round"], {"labelled_percent": rec["labelled_percent"], "runs": {},
                                                      "seconds": {}})
                row["runs"].setdefault(strat, {})[seed] = rec["miou_point"]
                if not rec.get("copied_from"):  # a shared round 0 is counted once
                    row["seconds"].setdefault(strat, {})[seed] = rec.get("seconds", 0.0)
    return table


def write_results(table: dict, strategies: list[str], seeds: list[int], args: argparse.Namespace, seconds: float,
                  out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    from pcseg.engine.config import compose_config

    cfg = compose_config("hpal_synthetic", list(args.overrides))
    info_path = args.data / "scannet" / "dataset.json"
    sizes = json.loads(info_path.read_text()).get("split_sizes", {}) if info_path.is_file() else {}
    n_train, n_val = sizes.get("train", "?"), sizes.get("val", "?")
    lines = ["# Active learning on the synthetic rooms: HPAL vs random vs entropy", "",
             f"`benchmarks/bench_al.py`: generated rooms (`pcseg prepare synthetic`, {args.data}: "
             f"{n_train} train / {n_val} val), experiment `hpal_synthetic`"
             + (f" with {' '.join(args.overrides)}" if args.overrides else "")
             + f": mean teacher, MinkUNet width {cfg.model.width}, {cfg.data.voxel_size} m voxels, [RGB, xyz] input, "
             f"batch {cfg.data.batch_size}, {cfg.al.rounds} rounds; initial labels {cfg.al.init.percent} % of every "
             f"training room, then {cfg.al.budget_percent} % of all training points per round chosen globally; "
             f"round 0 {cfg.al.round0_epochs or cfg.trainer.epochs} epochs from scratch, later rounds "
             f"{cfg.trainer.epochs} epochs warm-started from the previous best. Seeds {', '.join(map(str, seeds))}: the "
             "seed keys the initial labels, the network initialisation and the augmentation; all strategies of a seed "
             "share round 0 (`al.round0_from`).",
             "", "Validation mIoU (%, every point of the val rooms, best checkpoint of the round), mean ± std over "
             "seeds; the last columns are the paired difference to random (same seed):", ""]
    header = "| round | labelled % | " + " | ".join(strategies) + " | " + " | ".join(
        f"{s} − random" for s in strategies if s != "random") + " |"
    lines += [header, "|" + "---|" * (2 + len(strategies) + len([s for s in strategies if s != "random"]))]
    summary: dict = {}
    for rnd in sorted(table):
        row = table[rnd]
        cells, means = [], {}
        for s in strategies:
            vals = [100 * row["runs"].get(s, {}).get(seed) for seed in seeds
                    if row["runs"].get(s, {}).get(seed) is not None]
            if vals:
                means[s] = (float(np.mean(vals)), float(np.std(vals)), len(vals))
                cells.append(f"{means[s][0]:.2f} ± {means[s][1]:.2f}" + (f" (n={len(vals)})" if len(vals) < len(seeds) else ""))
            else:
                cells.append("-")
        diffs = []
        for s in strategies:
            if s == "random":
                continue
            paired = [100 * (row["runs"][s][seed] - row["runs"]["random"][seed]) for seed in seeds
                      if row["runs"].get(s, {}).get(seed) is not None and row["runs"].get("random", {}).get(seed) is not None]
            diffs.append(f"{np.mean(paired):+.2f} ± {np.std(paired):.2f}" if paired else "-")
        lines.append(f"| {rnd} | {row['labelled_percent']:.3f} | " + " | ".join(cells) + " | " + " | ".join(diffs) + " |")
        summary[rnd] = {"labelled_percent": row["labelled_percent"], "mean_std_n": means, "per_seed": row["runs"]}
    lines += ["", "Per seed (mIoU %):", "", "| strategy | seed | " + " | ".join(f"round {r}" for r in sorted(table)) + " |",
              "|---|---|" + "---|" * len(table)]
    for s in strategies:
        for seed in seeds:
            vals = [table[r]["runs"].get(s, {}).get(seed) for r in sorted(table)]
            lines.append(f"| {s} | {seed} | " + " | ".join("-" if v is None else f"{100 * v:.2f}" for v in vals) + " |")
    train_s = sum(v for row in table.values() for per in row.get("seconds", {}).values() for v in per.values())
    lines += ["", f"Compute: {train_s / 60:.1f} min of round time in all (training + evaluation of every round, round 0 "
              "once per seed; inference, scoring and selection add about 20 s per acquisition), on a 2-core CPU "
              "shared with other work. mIoU is noisy at this size: compare the paired differences with their std.",
              ""]
    (out / "al.md").write_text("\n".join(lines))
    (out / "al.json").write_text(json.dumps({"config": vars(args), "rounds": summary}, indent=1, default=str) + "\n")
    plot(summary, strategies, out / "al.png")
    print("\n".join(lines))


def plot(summary: dict, strategies: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for s in strategies:
        xs, ys, es = [], [], []
        for rnd in sorted(summary):
            m = summary[rnd]["mean_std_n"].get(s)
            if m:
                xs.append(summary[rnd]["labelled_percent"])
                ys.append(m[0])
                es.append(m[1])
        if xs:
            xs, ys, es = map(np.array, (xs, ys, es))
            ax.plot(xs, ys, marker="o", label=s)
            ax.fill_between(xs, ys - es, ys + es, alpha=0.2)
    ax.set_xlabel("labelled points (% of training points)")
    ax.set_ylabel("val mIoU (%)")
    ax.set_title("Active learning on synthetic rooms (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("/tmp/al_bench_data"),
                   help="synthetic dataset folder (`pcseg prepare synthetic --out` of it; prepared if empty)")
    p.add_argument("--scenes", type=int, default=32, help="rooms to generate if --data is empty (a quarter are val)")
    p.add_argument("--runs", type=Path, default=Path("/tmp/pcseg-bench-al/runs"), help="folder of the AL runs")
    p.add_argument("--strategies", default="hpal,random,entropy", help="comma-separated strategies")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds of the protocol (reported)")
    p.add_argument("--run-seeds", default=None, help="run only these seeds now (comma-separated; default: all of "
                   "--seeds), so the protocol can be done in chunks between other people's heavy runs; the "
                   "results always report every finished run of --seeds")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="results folder")
    p.add_argument("--report-only", action="store_true", help="only collect finished runs and write the results")
    p.add_argument("overrides", nargs="*", help="hydra overrides for every run (the protocol is the hpal_synthetic "
                   "experiment: rounds, budgets, epochs, width, voxels; e.g. al.rounds=3 trainer.epochs=2)")
    args = p.parse_args()
    strategies = args.strategies.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.time()
    if not args.report_only:
        root = prepare(args.data, args.scenes)
        args.runs.mkdir(parents=True, exist_ok=True)
        log = args.runs / "bench_al.log"
        run_seeds = [int(s) for s in args.run_seeds.split(",")] if args.run_seeds else seeds
        for seed in run_seeds:
            first = args.runs / f"{strategies[0]}-seed{seed}"
            for i, strat in enumerate(strategies):
                dt = run_al(root, args.runs / f"{strat}-seed{seed}", strat, seed, args, first if i else None, log)
                print(f"{strat} seed {seed}: {dt / 60:.1f} min", flush=True)
                write_results(collect(args.runs, strategies, seeds), strategies, seeds, args, time.time() - t0, args.out)
    write_results(collect(args.runs, strategies, seeds), strategies, seeds, args, time.time() - t0, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
