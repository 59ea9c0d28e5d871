"""Benchmark: ovs-nerf on the generated 3D-OVS scene with the oracle encoders, versus the per-view 2D argmax
of the same CLIP-hierarchy features.

1. Render the generated table-top scene (24 forward-facing views, 160 x 120, 7 classes, masks of every
   4th view) in the 3D-OVS layout.
2. Reconstruction stage once (``ns-train ovs-nerf`` stopped at ``--recon-iters``), then for every oracle
   noise level the segmentation stage continues from that checkpoint (``--load-dir``), so the
   geometry is shared and only the 2D features differ.
3. ``pcseg-ovs-export`` renders and scores the segmentation of the annotated views (3D-OVS protocol:
   per-view, per-class IoU averaged over views and classes; exact-row pixel accuracy; the same numbers
   ``ns-eval`` reports, which tests/nerf3dovs/test_train_eval.py checks).
4. The 2D baseline scores the argmax of the very same cached features at the same views: per scale
   and for the mean of the three (normalised) scales.
5. Time per 1k iterations of each stage (nerfstudio's "Train Total (time)", setup excluded) and the
   peak resident memory of each ``ns-train`` process (``wait4``), CPU.

Every finished stage leaves a marker in ``--out`` (recon.json, seg_<noise>.json): a rerun skips it.
Run under the heavy-job lock::

    flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_ovs.py

Writes benchmarks/results/ovs.json, ovs.md and ovs.png (per annotated view: RGB | GT | then, per noise
level, best 2D argmax | ovs-nerf 3D).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def model_args(a: argparse.Namespace, patches: int) -> list[str]:
    """CPU-sized ovs-nerf settings shared by the two stages (the schedule must be identical)."""
    return [
        "--pipeline.model.recon-iters", str(a.recon_iters),
        "--pipeline.model.seg-iters", str(a.seg_iters),
        "--pipeline.model.joint-start-iter", str(a.joint_start),
        "--pipeline.model.num-samples", str(a.samples),
        "--pipeline.model.n-voxel-init", str(a.voxels_init**3),
        "--pipeline.model.n-voxel-final", str(a.voxels_final**3),
        "--pipeline.model.upsample-steps", *[str(int(a.recon_iters * f)) for f in (0.15, 0.3)],
        "--pipeline.model.alpha-mask-steps", *[str(int(a.recon_iters * f)) for f in (0.1, 0.31, 0.6)],
        "--pipeline.model.ndc-aabb", "-1.5", "-1.5", "-1.0", "1.5", "1.5", "1.0",
        "--pipeline.model.eval-num-rays-per-chunk", "4096",
        "--pipeline.model.lr-feature", str(a.lr_feature),
        "--pipeline.model.lr-select-basis", str(a.lr_feature),
        "--pipeline.datamanager.train-num-rays-per-batch", str(a.rays),
        "--pipeline.datamanager.feature-rays-per-batch", str(a.feature_rays),
        "--pipeline.datamanager.fda-patches", str(patches),
        "--pipeline.datamanager.fda-patch-rays", str(a.patch_rays),
        "--pipeline.datamanager.fda-ray-stride", str(a.patch_stride),
        "--pipeline.datamanager.fda-dino-input", "crop",
    ]


def encoder_args(a: argparse.Namespace, noise: float, cache: Path, fda: bool) -> list[str]:
    return [
        "--pipeline.image-encoder", "oracle",
        "--pipeline.image-encoder-options", json.dumps({"embed_dim": a.dim, "noise_std": noise}),
        "--pipeline.dense-encoder", "oracle" if fda else "none",
        "--pipeline.datamanager.feature-cache", str(cache),
    ]


def parse_weights(text: str) -> tuple[float, float]:
    """'POS:NEG' -> (dino_pos_weight, dino_neg_weight)."""
    try:
        pos, neg = (float(x) for x in text.split(":"))
    except ValueError:
        raise SystemExit(f"--fda-weights expects POS:NEG (e.g. 200:0.2), got {text!r}") from None
    return pos, neg


def run_tag(noise: float, fda: tuple[float, float] | None) -> str:
    """Stage name: noise4, noise4_fda (3D-OVS weights 200:0.2), noise4_fda_p2_n0.002 (other weights)."""
    tag = f"noise{noise:g}"
    if fda is None:
        return tag
    return tag + ("_fda" if fda == (200.0, 0.2) else f"_fda_p{fda[0]:g}_n{fda[1]:g}")


def fda_args(fda: tuple[float, float] | None) -> list[str]:
    if fda is None:
        return []
    return ["--pipeline.model.dino-pos-weight", f"{fda[0]:g}", "--pipeline.model.dino-neg-weight", f"{fda[1]:g}"]


def ns_train(args: list[str], log: Path) -> dict:
    """Run ns-train as a child process; returns wall time and peak RSS (MiB) of that child."""
    cmd = [str(VENV_BIN / "ns-train"), *args]
    t0 = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"ns-train failed ({proc.returncode}); see {log}\n{' '.join(cmd)}")
    return {"wall_s": time.time() - t0, "peak_rss_mib": usage.ru_maxrss / 1024.0, "cpu_s": usage.ru_utime + usage.ru_stime,
            "threads": torch_threads()}


def torch_threads() -> int:
    """Intra-op threads the ns-train child uses: OMP_NUM_THREADS when set, else torch's default (all cores)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


def train_loop_seconds(run_dir: Path) -> float:
    """nerfstudio's 'Train Total (time)' scalar: the training loop without setup."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return float(acc.Scalars("Train Total (time)")[-1].value)


def baseline_2d(scene: Path, a: argparse.Namespace, noise: float, cache: Path) -> dict:
    """Per-view argmax of the cached hierarchy features at the annotated views (the 2D baseline)."""
    import torch

    from nerf3dovs import encoders
    from nerf3dovs.data.dataparser import Ovs3DDataParserConfig
    from nerf3dovs.data.dataset import GT_KEY, OvsDataset
    from pcseg.foundation.cache import FeatureCache, cached_ovs_hierarchy
    from pcseg.foundation.pyramid import OVSHierarchyConfig
    from pcseg.foundation.relevancy import cosine_maps
    from pcseg.metrics import view_iou_and_accuracy

    enc = encoders.build("oracle", "image", "cpu", {"embed_dim": a.dim, "noise_std": noise}, None, scene / "palette.json")
    parser = Ovs3DDataParserConfig(data=scene, downscale_factor=1).setup()
    val = OvsDataset(parser.get_dataparser_outputs("val"))
    classes = val.metadata["ovs_classes"]
    text = enc.encode_text(classes)
    fc = FeatureCache(cache)
    scores: dict[str, list] = {"scale_0": [], "scale_1": [], "scale_2": [], "mean_of_scales": []}
    preds = {}
    for i in range(len(val)):
        data = val[i]
        img = val.get_numpy_image(i)
        feats = cached_ovs_hierarchy(fc, img, enc, OVSHierarchyConfig(seed=0))
        gt = data[GT_KEY].numpy()
        cos = cosine_maps(feats, text)  # (S, C, h, w)
        f = torch.nn.functional.normalize(torch.from_numpy(np.asarray(feats, dtype=np.float32)), dim=1).mean(0)
        mean_pred = torch.einsum("dhw,cd->chw", torch.nn.functional.normalize(f, dim=0), text).argmax(0).numpy()
        for name, pred in [(f"scale_{s}", cos[s].argmax(0).numpy()) for s in range(cos.shape[0])] + [("mean_of_scales", mean_pred)]:
            iou, acc = view_iou_and_accuracy(pred, gt)
            scores[name].append((iou, acc))
            preds.setdefault(name, []).append(pred)
    out = {}
    for name, vals in scores.items():
        ious = np.stack([v[0] for v in vals])
        out[name] = {"miou": float(ious.mean()), "accuracy": float(np.mean([v[1] for v in vals])),
                     "class_iou": {c: float(x) for c, x in zip(classes, ious.mean(0))}}
    best = max(out, key=lambda k: out[k]["miou"])
    return {"variants": out, "best": best, "best_preds": preds[best], "classes": classes,
            "views": val.metadata["ovs_image_indices"]}


def latest_run(root: Path) -> Path:
    runs = sorted(p for p in root.glob("*/ovs-nerf/*") if (p / "config.yml").is_file())
    if not runs:
        raise SystemExit(f"no ovs-nerf run under {root}")
    return runs[-1]


def views_png(path: Path, scene: Path, views: list[int], columns: list[tuple[str, list[np.ndarray]]],
              classes: list[str], max_rows: int = 3) -> None:
    """Per annotated view: RGB | ground truth | the given label maps (e.g. best 2D and 3D per noise level)."""
    from PIL import Image

    from nerf3dovs.model.ovs_model import class_colours

    pal = class_colours(len(classes))
    images = sorted((scene / "images").iterdir())
    seg_dirs = {int(d.name): d for d in (scene / "segmentations").iterdir() if d.is_dir()}
    rows = []
    for k, v in enumerate(views[:max_rows]):
        rgb = np.asarray(Image.open(images[v]).convert("RGB"))
        masks = np.stack([np.asarray(Image.open(seg_dirs[v] / f"{c}.png").convert("L")) == 255 for c in classes], -1)
        gt = pal[masks.argmax(-1)] * masks.any(-1)[..., None].astype(np.uint8)
        cells = [rgb, gt] + [pal[labels[k]] for _, labels in columns]
        sep = np.full((rgb.shape[0], 2, 3), 255, np.uint8)
        rows.append(np.concatenate([c for cell in cells for c in (cell, sep)][:-1], axis=1))
    grid = np.concatenate(rows, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.Resampling.NEAREST).save(path)


def read_label_pngs(export_dir: Path, views: list[int]) -> list[np.ndarray]:
    """Class ids of the rendered segmentation (``<view>_label.png``) of an export."""
    from PIL import Image

    return [np.asarray(Image.open(export_dir / "segmentations" / f"{v:03d}_label.png")).astype(np.int64) for v in views]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "ovs",
                   help="work folder (scene, feature cache, runs, stage markers); finished stages are skipped on rerun")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="where ovs.json/.md/.png go")
    p.add_argument("--views", type=int, default=24, help="views of the generated scene (every 4th annotated)")
    p.add_argument("--width", type=int, default=160, help="image width of the generated scene")
    p.add_argument("--height", type=int, default=120, help="image height of the generated scene")
    p.add_argument("--noise", type=float, nargs="*", default=[4.0, 8.0, 16.0],
                   help="oracle CLIP noise levels (expected norm of the per-crop noise; class embeddings have norm 1), "
                        "segmentation stage without FDA; none = skip these stages")
    p.add_argument("--fda-noise", type=float, nargs="*", default=[4.0, 8.0],
                   help="noise levels at which the segmentation stage also runs with FDA, once per --fda-weights "
                        "entry; none = skip these stages (with --noise none too, only the reconstruction runs)")
    p.add_argument("--fda-weights", nargs="+", default=["200:0.2"], metavar="POS:NEG",
                   help="FDA loss weights (dino_pos_weight:dino_neg_weight) of the FDA runs; 200:0.2 = 3D-OVS")
    p.add_argument("--keep-results", action="store_true",
                   help="start from the existing <results>/ovs.json: stages not run in this invocation keep their "
                        "earlier numbers (listed in ovs.md), stages run now replace theirs; ovs.png is only rewritten "
                        "when a run without FDA is part of this invocation")
    p.add_argument("--dim", type=int, default=64, help="oracle CLIP embedding size")
    p.add_argument("--recon-iters", type=int, default=1000, help="reconstruction-stage iterations")
    p.add_argument("--seg-iters", type=int, default=400, help="segmentation-stage iterations (per noise level)")
    p.add_argument("--joint-start", type=int, default=150, help="segmentation iterations before the joint RGB phase")
    p.add_argument("--lr-feature", type=float, default=1e-3,
                   help="feature head and selection basis LR (3D-OVS: 1e-4 over 15k iterations; the short "
                        "schedule needs larger Adam steps)")
    p.add_argument("--rays", type=int, default=512, help="RGB rays per reconstruction step")
    p.add_argument("--feature-rays", type=int, default=512, help="feature rays per segmentation step")
    p.add_argument("--patches", type=int, default=2, help="FDA patches per segmentation step of the FDA runs")
    p.add_argument("--patch-rays", type=int, default=16, help="rays per FDA patch side")
    p.add_argument("--patch-stride", type=float, default=4.0, help="pixels per FDA patch ray (block size)")
    p.add_argument("--samples", type=int, default=64, help="samples per ray")
    p.add_argument("--voxels-init", type=int, default=48, help="initial grid side (voxels^3)")
    p.add_argument("--voxels-final", type=int, default=96, help="final grid side (voxels^3)")
    a = p.parse_args()

    sys.path.insert(0, str(ROOT))
    from nerf3dovs.synthetic import SceneSpec, write_scene

    a.out.mkdir(parents=True, exist_ok=True)
    a.results.mkdir(parents=True, exist_ok=True)
    scene = a.out / "scene"
    cache = a.out / "cache"
    if not (scene / "poses_bounds.npy").is_file():
        write_scene(scene, SceneSpec(num_views=a.views, width=a.width, height=a.height))
    common = ["--machine.device-type", "cpu", "--vis", "tensorboard", "--steps-per-eval-batch", "1000000",
              "--steps-per-eval-image", "1000000", "--steps-per-eval-all-images", "1000000", "--logging.steps-per-log", "50"]
    data = ["--data", str(scene), "ovs3d-data", "--downscale-factor", "1"]
    report: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": os.cpu_count(),
                                "python": platform.python_version(), "device": "cpu (no GPU lent to this task)"},
              "argv": sys.argv[1:],
                    "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}}

    recon_root = a.out / "recon"
    marker = a.out / "recon.json"
    if not marker.is_file():
        stats = ns_train(["ovs-nerf", *common, "--output-dir", str(recon_root), "--experiment-name", "recon",
                          "--max-num-iterations", str(a.recon_iters), "--steps-per-save", str(a.recon_iters),
                          *encoder_args(a, (a.noise + a.fda_noise + [4.0])[0], cache, False), *model_args(a, 0), *data], a.out / "recon.log")
        stats["loop_s"] = train_loop_seconds(latest_run(recon_root))
        marker.write_text(json.dumps(stats))
    report["recon"] = json.loads(marker.read_text())
    recon_run = latest_run(recon_root)
    print(f"reconstruction: {report['recon']}", flush=True)

    report["noise"] = {}
    earlier: dict = {}
    if a.keep_results and (a.results / "ovs.json").is_file():
        earlier = json.loads((a.results / "ovs.json").read_text()).get("noise", {})
    columns: list[tuple[str, list[np.ndarray]]] = []
    base = None
    weights = [parse_weights(w) for w in a.fda_weights]
    runs = [(n, None) for n in a.noise] + [(n, w) for w in weights for n in a.fda_noise]
    for noise, fda in runs:
        tag = run_tag(noise, fda)
        root = a.out / f"seg_{tag}"
        export_dir = a.out / f"export_{tag}"
        marker = a.out / f"seg_{tag}.json"
        if not marker.is_file():
            stats = ns_train(["ovs-nerf", *common, "--output-dir", str(root), "--experiment-name", tag,
                              "--load-dir", str(recon_run / "nerfstudio_models"),
                              "--max-num-iterations", str(a.seg_iters), "--steps-per-save", str(a.seg_iters),
                              *encoder_args(a, noise, cache, fda is not None), *model_args(a, a.patches if fda is not None else 0),
                              *fda_args(fda), *data],
                             a.out / f"seg_{tag}.log")
            stats["loop_s"] = train_loop_seconds(latest_run(root))
            subprocess.run([str(VENV_BIN / "pcseg-ovs-export"), "--load-config", str(latest_run(root) / "config.yml"),
                            "--output-dir", str(export_dir), "--no-cloud"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            marker.write_text(json.dumps(stats))
        stats = json.loads(marker.read_text())
        res3d = json.loads((export_dir / "metrics.json").read_text())
        base = baseline_2d(scene, a, noise, cache)
        best = base["variants"][base["best"]]
        entry = {
            "noise": noise,
            "fda": fda is not None,
            "fda_weights": list(fda) if fda else None,
            "seg_stage": stats,
            "nerf_3d": {"miou": res3d["miou"], "accuracy": res3d["accuracy"], "psnr": res3d["psnr"],
                        "class_iou": res3d["class_iou"]},
            "baseline_2d": base["variants"],
            "best_2d": base["best"],
            "gain_miou_points": 100.0 * (res3d["miou"] - best["miou"]),
        }
        report["noise"][tag] = entry
        if fda is None:
            columns += [(f"2D {tag}", base["best_preds"]), (f"3D {tag}", read_label_pngs(export_dir, base["views"]))]
        print(f"{tag}: 3D mIoU {100 * res3d['miou']:.1f} vs best 2D ({base['best']}) {100 * best['miou']:.1f} "
              f"-> gain {entry['gain_miou_points']:+.1f} points", flush=True)

    if base is None:
        print("no segmentation stage requested: reconstruction only, results not written")
        return 0
    kept = {t: dict(e, from_earlier_run=True) for t, e in earlier.items() if t not in report["noise"]}
    if kept:
        merged = {**kept, **report["noise"]}
        order = sorted(merged, key=lambda t: (merged[t]["fda"], merged[t].get("fda_weights") not in (None, [200.0, 0.2]),
                                              merged[t]["noise"]))
        report["noise"] = {t: merged[t] for t in order}
        report["kept_from_earlier_run"] = sorted(kept)
    if columns:
        views_png(a.results / "ovs.png", scene, base["views"], columns, base["classes"])
    (a.results / "ovs.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(a.results / "ovs.md", report)
    print(f"wrote {a.results / 'ovs.md'}")
    return 0


def fda_label(entry: dict) -> str:
    """'off', '200 / 0.2 (3D-OVS)' or 'POS / NEG' for the FDA column."""
    if not entry["fda"]:
        return "off"
    pos, neg = entry.get("fda_weights") or (200.0, 0.2)
    return f"{pos:g} / {neg:g}" + (" (3D-OVS)" if (pos, neg) == (200.0, 0.2) else "")


def write_markdown(path: Path, r: dict) -> None:
    s = r["settings"]
    rec = r["recon"]
    lines = [
        "# ovs-nerf on the generated 3D-OVS scene (oracle encoders, CPU)",
        "",
        f"Scene: {s['views']} views of {s['width']}x{s['height']} px, 7 classes, masks of every 4th view "
        f"(the scored views). Oracle CLIP: {s['dim']}-d; noise = expected norm of the content-keyed noise added "
        f"to each crop embedding (class embeddings have norm 1), so views of the same object disagree. "
        f"Reconstruction {s['recon_iters']} iterations ({s['rays']} rays), then per noise level a segmentation "
        f"stage of {s['seg_iters']} iterations from the same reconstruction ({s['feature_rays']} feature rays; the FDA "
        f"runs add {s['patches']} patches of {s['patch_rays']}^2 rays; joint RGB phase from {s['joint_start']}; "
        f"feature-head/selection-basis LR {s['lr_feature']:g}), {s['samples']} samples/ray, grid "
        f"{s['voxels_init']}^3 -> {s['voxels_final']}^3 voxels. Loss weights: 3D-OVS defaults except where the FDA "
        f"column names other FDA weights.",
        "Produced by `flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_ovs.py"
        + "".join(f" {x}" for x in r.get("argv", [])) + "` "
        f"({r['machine']['device']}).",
        "",
        "2D baseline: per-view argmax of the cosine between the *same* cached CLIP-hierarchy features and the "
        "class text embeddings, per scale and for the mean of the L2-normalised scales; 'best 2D' is the best "
        "of the four *chosen on the scored views* (favours the baseline). 3D: `pcseg-ovs-export` renders the "
        "annotated views (same metric as `ns-eval`).",
        "",
        "## Segmentation of the annotated views (3D-OVS protocol, %)",
        "",
        "| oracle noise | FDA weights pos / neg | 2D argmax scale 0 | scale 1 | scale 2 | mean of scales | **ovs-nerf (3D)** | gain vs best 2D | 3D accuracy | best 2D accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tag, e in r["noise"].items():
        b = e["baseline_2d"]
        lines.append(
            f"| {e['noise']:g} | {fda_label(e)} | {100 * b['scale_0']['miou']:.1f} | {100 * b['scale_1']['miou']:.1f} | {100 * b['scale_2']['miou']:.1f} "
            f"| {100 * b['mean_of_scales']['miou']:.1f} | **{100 * e['nerf_3d']['miou']:.1f}** | {e['gain_miou_points']:+.1f} "
            f"| {100 * e['nerf_3d']['accuracy']:.1f} | {100 * b[e['best_2d']]['accuracy']:.1f} |"
        )
    if any(e["fda"] for e in r["noise"].values()):
        lines += ["", "FDA weights pos / neg = `dino_pos_weight` / `dino_neg_weight` (3D-OVS: 200 / 0.2). Why the 3D-OVS "
                  "weights collapse this scene to wall/table and what the scaled weights change: docs/nerf3dovs.md §8."]
    lines += ["", "Per-class IoU (%), 3D vs best 2D:", ""]
    for tag, e in r["noise"].items():
        b = e["baseline_2d"][e["best_2d"]]["class_iou"]
        lines.append(f"- {tag}: " + ", ".join(f"{c} {100 * v:.0f}/{100 * b[c]:.0f}" for c, v in e["nerf_3d"]["class_iou"].items()))
    lines += [
        "",
        f"## Cost (CPU, {r['machine']['threads']} cores)",
        "",
        "| stage | iterations | torch threads | loop time | s per 1k iterations | peak RSS (MiB) | process wall (s) |",
        "|---|---|---|---|---|---|---|",
        f"| reconstruction | {s['recon_iters']} | {rec.get('threads', 2)} | {rec['loop_s']:.0f} s | {1000 * rec['loop_s'] / s['recon_iters']:.0f} "
        f"| {rec['peak_rss_mib']:.0f} | {rec['wall_s']:.0f} |",
    ]
    for tag, e in r["noise"].items():
        st = e["seg_stage"]
        lines.append(f"| segmentation ({tag}) | {s['seg_iters']} | {st.get('threads', 2)} | {st['loop_s']:.0f} s | {1000 * st['loop_s'] / s['seg_iters']:.0f} "
                     f"| {st['peak_rss_mib']:.0f} | {st['wall_s']:.0f} |")
    lines += ["", "Loop time = nerfstudio's 'Train Total (time)' (training loop only); process wall also counts imports, "
              "the CLIP hierarchy of every view when not yet cached, and the checkpoint I/O. Peak RSS of the ns-train "
              "process (wait4). The machine is shared: other jobs ran at the same time, so times are upper bounds "
              "(one torch thread is faster than two when another process occupies a core).", ""]
    if r.get("kept_from_earlier_run"):
        lines += [f"Stages kept from an earlier run of this script with the same settings (`--keep-results`; "
                  f"that run trained from its own reconstruction with the same settings and seed, 2 torch threads): "
                  f"{', '.join(r['kept_from_earlier_run'])}.", ""]
    lines += ["`ovs.png`: per annotated view, RGB | ground truth | then per noise level (runs without FDA): best 2D argmax | ovs-nerf 3D.", ""]
    lines += [f"PSNR of the rendered annotated views: " + ", ".join(f"{t}: {e['nerf_3d']['psnr']:.1f} dB" for t, e in r["noise"].items()), ""]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
