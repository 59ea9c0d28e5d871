"""Time forward + backward of Res16UNet34C on a surface-like scene, for every installed sparse backend.

The scene is a voxelised room (floor, walls, rotated boxes sampled as surfaces, 2 cm voxels; see
``pcseg.sparse.synthetic``), not a random cube, so kernel maps have the occupancy of real scans.
Each backend runs in its own subprocess, so its peak memory is its own. One iteration is what a
training step does: build the batch (kernel maps are rebuilt for every new batch), forward,
cross-entropy, backward (no optimizer step).

    flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_sparse.py
    .venv/bin/python benchmarks/bench_sparse.py --voxels 20000 --repeats 2     # quick look
    .venv/bin/python benchmarks/bench_sparse.py --device cuda                  # GPU (adds spconv if installed)

Results go to ``benchmarks/results/sparse.md`` and ``sparse.json`` (``--out`` changes the stem).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "sparse"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--voxels", type=int, default=100_000, help="target voxels in the scene (default 100000)")
    p.add_argument("--voxel-size", type=float, default=0.02, help="voxel edge in metres (default 0.02)")
    p.add_argument(
        "--model",
        default="res16unet34c",
        choices=["res16unet34c", "minkunet"],
        help="network to time (default res16unet34c, full size)",
    )
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of the network (default 1.0)")
    p.add_argument(
        "--backends",
        default="all",
        help="comma-separated list (torch, torch:gather, torch:pairs, minkowski, spconv) or 'all' "
        "(every backend available on the device, plus both torch algorithms)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's default)")
    p.add_argument("--repeats", type=int, default=3, help="timed iterations per backend (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first (default 1)")
    p.add_argument("--seed", type=int, default=0, help="scene and weight seed (default 0)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output stem: writes STEM.md and STEM.json")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: time one backend
    return p.parse_args(argv)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _openblas_threads() -> int | None:
    """Threads of the OpenBLAS that MinkowskiEngine links (its GEMMs run there), None if not loaded."""
    import ctypes

    try:
        return int(ctypes.CDLL("libopenblas.so.0").openblas_get_num_threads())
    except (OSError, AttributeError):
        return None


def run_worker(args: argparse.Namespace) -> dict:
    """Time one backend in this process; returns the measurements."""
    import torch
    from tqdm import tqdm

    from pcseg.models import build_model
    from pcseg.sparse import SparseTensor
    from pcseg.sparse.synthetic import room_scene

    if args.threads:
        torch.set_num_threads(args.threads)
    backend, _, algorithm = args.worker.partition(":")
    device = torch.device(args.device)
    coords, feats = room_scene(args.voxels, args.voxel_size, seed=args.seed)
    feats = feats.to(device)
    labels = (coords[:, 3].long() // 25 % 20).to(device)  # any fixed target: only the cost matters
    model = build_model(args.model, 3, 20, width=args.width, init_seed=args.seed).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rss_before = _peak_rss_mib()
    load_before = os.getloadavg()[0]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for it in tqdm(range(args.warmup + args.repeats), desc=args.worker, file=sys.stderr, leave=False):
        model.zero_grad(set_to_none=True)
        sync()
        t0 = time.perf_counter()
        x = SparseTensor.from_batch(coords, feats, backend=backend, algorithm=algorithm or "auto")
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out["logits"], labels)
        sync()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        if it >= args.warmup:
            times.append((t1 - t0, t2 - t1))
    result = {
        "backend": args.worker,
        "voxels": int(coords.shape[0]),
        "forward_s": statistics.median(t[0] for t in times),
        "backward_s": statistics.median(t[1] for t in times),
        "total_s": statistics.median(t[0] + t[1] for t in times),
        "total_all_s": [round(t[0] + t[1], 3) for t in times],
        "threads": torch.get_num_threads(),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "peak_rss_growth_mib": round(_peak_rss_mib() - rss_before, 1),
    }
    if backend == "minkowski":
        result["openblas_threads"] = _openblas_threads()
    if device.type == "cuda":
        result["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return result


def _backends(args: argparse.Namespace) -> list[str]:
    if args.backends != "all":
        return [b.strip() for b in args.backends.split(",") if b.strip()]
    from pcseg.sparse import available_backends

    names = available_backends(args.device)
    out = ["torch:gather", "torch:pairs"]
    return out + [n for n in names if n != "torch"]


def _machine() -> dict:
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_start": os.getloadavg(),
    }
    try:
        from pcseg.sparse.backends.minkowski_backend import import_minkowski

        info["minkowski_engine"] = import_minkowski().__version__
    except Exception:  # noqa: BLE001 - absent is fine here
        info["minkowski_engine"] = None
    return info


def _markdown(report: dict) -> str:
    m, cfg = report["machine"], report["config"]
    lines = [
        "# Sparse backends: Res16UNet34C forward + backward",
        "",
        f"Scene: synthetic room, {report['results'][0]['voxels'] if report['results'] else '?'} voxels at "
        f"{cfg['voxel_size'] * 100:g} cm (surface-like); model {cfg['model']} (width {cfg['width']:g}), "
        f"3 -> 20 classes, train mode; one iteration = build batch + kernel maps, forward, CE loss, backward. "
        f"Median of {cfg['repeats']} after {cfg['warmup']} warm-up.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, device {cfg['device']}, torch {m['torch']}, "
        f"MinkowskiEngine {m['minkowski_engine']}. Load average at start {m['load_average_start'][0]:.2f}, "
        f"at end {m['load_average_end'][0]:.2f} (the machine is shared; see the per-iteration totals).",
        "",
        "Threads: torch intra-op threads (OpenMP; MKL GEMMs); MinkowskiEngine's coordinate manager is created "
        "with the same count (its OpenMP loops) and its GEMMs run in OpenBLAS, whose thread count is shown "
        "in brackets. Load: 1-minute load average before and after the backend's iterations.",
        "",
        "| backend | forward s | backward s | total s | all totals s | vs minkowski | threads | load | "
        "peak RSS MiB | RSS growth MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ref = next((r["total_s"] for r in report["results"] if r["backend"] == "minkowski"), None)
    for r in report["results"]:
        ratio = f"{r['total_s'] / ref:.2f}x" if ref else "-"
        threads = str(r["threads"])
        if r.get("openblas_threads") is not None:
            threads += f" ({r['openblas_threads']})"
        load = "-".join(f"{v:.1f}" for v in r["load_average"]) if "load_average" in r else "-"
        lines.append(
            f"| {r['backend']} | {r['forward_s']:.2f} | {r['backward_s']:.2f} | {r['total_s']:.2f} | "
            f"{', '.join(f'{t:.2f}' for t in r['total_all_s'])} | {ratio} | {threads} | {load} | "
            f"{r['peak_rss_mib']:.0f} | {r['peak_rss_growth_mib']:.0f} |"
        )
    for r in report["failed"]:
        lines.append(f"| {r['backend']} | failed: {r['error']} | | | | | | | | |")
    lines += ["", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)))
        return 0
    from tqdm import tqdm

    from pcseg.utils.atomic import atomic_write_json, atomic_write_text

    report = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "worker"},
        "machine": _machine(),
        "results": [],
        "failed": [],
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    for backend in tqdm(_backends(args), desc="backends"):
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            *(argv if argv is not None else sys.argv[1:]),
            "--worker",
            backend,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            report["failed"].append({"backend": backend, "error": err})
            print(f"{backend}: failed: {err}", file=sys.stderr)
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        report["results"].append(result)
        print(
            f"{backend}: forward {result['forward_s']:.2f} s, backward {result['backward_s']:.2f} s, "
            f"total {result['total_s']:.2f} s, peak RSS {result['peak_rss_mib']:.0f} MiB",
            file=sys.stderr,
        )
    report["machine"]["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out.with_suffix(".json"), report)
    atomic_write_text(args.out.with_suffix(".md"), _markdown(report))
    print(_markdown(report))
    return 0 if report["results"] else 1


if __name__ == "__main__":
    sys.exit(main())
