"""Benchmark: dense 3D-OVS CLIP hierarchy, batched crops vs the official one-crop-at-a-time loop.

Both implementations compute the same crops with the same jitter (``ovs_crop_boxes``); the batched one
cuts and resizes a batch of crops in one computation (strided windows + per-box resize matrices),
encodes them in one call, and averages per pixel with box sums (difference arrays), while the loop
cuts, resizes, encodes and accumulates each crop alone, as 3D-OVS's ``extract_clip_feature.py`` does.
The default image is 504 x 378 (1/8 of a 4032 x 3024 photo): 450 + 936 + 2067 = 3453 CLIP passes.

On CPU the model is a tiny random-init open_clip ViT-B-16 (``tiny``: the tests' 32 px, width 32,
one-layer model with CLIP's 512-d output; ``tiny224``: 224 px input, width 64, two layers). With a
CUDA device, ``--device cuda --runs vit-b16:0`` runs the full ViT-B/16 (random init, or real weights
with ``--encoder clip-vit-b16-openai --checkpoint FILE``).

Run under the heavy-job lock::

    flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_pyramid.py

Writes benchmarks/results/pyramid.json and pyramid.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pcseg.foundation import build_encoder  # noqa: E402
from pcseg.foundation.interface import ImageTextEncoder  # noqa: E402
from pcseg.foundation.pyramid import (  # noqa: E402
    OVSHierarchyConfig,
    extract_ovs_hierarchy,
    extract_ovs_hierarchy_loop,
    ovs_crop_boxes,
)

# The tests' tiny open_clip ViT-B-16 (32 px input, width 32, one layer) with CLIP's 512-d output, so the
# per-pixel accumulation and the stored features have their real size.
TINY = {
    "embed_dim": 512,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
# Same family at CLIP's real 224 px input (196 tokens, width 64, two layers): crops are resized to
# 224 x 224 as for ViT-B/16, and the encoder itself costs ~35 MMAC per crop.
TINY224 = {
    "embed_dim": 512,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
MODELS = {"tiny": TINY, "tiny224": TINY224, "vit-b16": {}}


class TimedEncoder(ImageTextEncoder):
    """Wraps an encoder and adds up the time spent in ``encode_images`` (synchronising CUDA)."""

    def __init__(self, inner: ImageTextEncoder):
        self.inner = inner
        self.name, self.embed_dim, self.device, self.input_size = inner.name, inner.embed_dim, inner.device, inner.input_size
        self.seconds = 0.0
        self.calls = 0

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def encode_images(self, images):
        _sync(self.device)
        t0 = time.perf_counter()
        out = self.inner.encode_images(images)
        _sync(self.device)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out

    def _encode_images(self, images):  # pragma: no cover - encode_images is overridden
        raise NotImplementedError

    def _encode_text(self, texts):
        return self.inner._encode_text(texts)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(model: str, args) -> ImageTextEncoder:
    device = torch.device(args.device)
    if args.encoder:
        return build_encoder(args.encoder, device=device, checkpoint=args.checkpoint)
    spec = {
        "kind": "open_clip",
        "arch": "ViT-B-16",
        "pretrained": "random",
        "options": {"model_overrides": MODELS[model], "precision": args.precision},
    }
    return build_encoder(spec, device=device, checkpoint=args.checkpoint)


def _run(fn, encoder: ImageTextEncoder):
    timed = TimedEncoder(encoder)
    _sync(encoder.device)
    t0 = time.perf_counter()
    out = fn(timed)
    _sync(encoder.device)
    total = time.perf_counter() - t0
    return out, {"total_s": total, "encode_s": timed.seconds, "other_s": total - timed.seconds, "encoder_calls": timed.calls}


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def bench_one(model: str, threads: int, args, image: torch.Tensor, config: OVSHierarchyConfig) -> dict:
    """Time the batched and the loop hierarchy for one model and thread count; check equal output."""
    if threads:
        torch.set_num_threads(threads)
    encoder = _build(model, args)
    print(f"== {model} ({encoder.name}), device {encoder.device}, threads {torch.get_num_threads()}", flush=True)
    load_before = os.getloadavg()[0]
    extract_ovs_hierarchy(image[:, :40, :40], encoder, config, key="warmup", dtype=np.float32)  # warm-up
    fast_runs, fast16_runs = [], []
    for i in range(args.repeats):
        fast, stats = _run(lambda enc: extract_ovs_hierarchy(image, enc, config, key="bench", dtype=np.float32), encoder)
        fast_runs.append(stats)
        _, stats16 = _run(lambda enc: extract_ovs_hierarchy(image, enc, config, key="bench"), encoder)
        fast16_runs.append(stats16)
        print(f"  batched run {i}: {stats['total_s']:.2f} s (encode {stats['encode_s']:.2f} s); "
              f"float16 output {stats16['total_s']:.2f} s", flush=True)
    loop_runs = []
    for i in range(args.loop_repeats):
        loop, stats = _run(lambda enc: extract_ovs_hierarchy_loop(image, enc, config, key="bench", dtype=np.float32), encoder)
        loop_runs.append(stats)
        print(f"  loop run {i}: {stats['total_s']:.2f} s (encode {stats['encode_s']:.2f} s)", flush=True)
    load_after = os.getloadavg()[0]
    fast16, loop16 = fast.astype(np.float16), loop.astype(np.float16)
    result = {
        "model": args.encoder or model,
        "encoder": encoder.name,
        "device": str(encoder.device),
        "threads": torch.get_num_threads(),
        "batched": {"median_total_s": _median(fast_runs, "total_s"), "median_encode_s": _median(fast_runs, "encode_s"),
                    "median_other_s": _median(fast_runs, "other_s"), "runs": fast_runs},
        "batched_float16_output": {"median_total_s": _median(fast16_runs, "total_s"), "runs": fast16_runs},
        "loop": {"median_total_s": _median(loop_runs, "total_s"), "median_encode_s": _median(loop_runs, "encode_s"),
                 "median_other_s": _median(loop_runs, "other_s"), "runs": loop_runs},
        "max_abs_diff_float32": float(np.abs(fast - loop).max()),
        "max_abs_value": float(np.abs(loop).max()),
        "float16_identical_fraction": float((fast16 == loop16).mean()),
        "max_abs_diff_float16": float(np.abs(fast16.astype(np.float32) - loop16.astype(np.float32)).max()),
        "load_average_before_after": [load_before, load_after],
    }
    result["speedup"] = result["loop"]["median_total_s"] / result["batched"]["median_total_s"]
    print(f"  speedup {result['speedup']:.1f}x, max |batched - loop| = {result['max_abs_diff_float32']:.2e}", flush=True)
    del fast, loop, fast16, loop16
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=378, help="image height in pixels (default 378 = 3024 / 8)")
    parser.add_argument("--width", type=int, default=504, help="image width in pixels (default 504 = 4032 / 8)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda[:i] (default cpu)")
    parser.add_argument("--runs", default="tiny:1,tiny:2,tiny224:1",
                        help="comma-separated MODEL:THREADS runs; MODEL is tiny (the tests' 32 px model with a 512-d "
                        "output), tiny224 (224 px input, width 64, 2 layers) or vit-b16 (the full architecture, for "
                        "CUDA); THREADS 0 = torch default (default tiny:1,tiny:2,tiny224:1)")
    parser.add_argument("--encoder", default=None, help="a pcseg encoder name instead of the MODEL (e.g. clip-vit-b16-openai)")
    parser.add_argument("--checkpoint", default=None, help="local CLIP weights for --encoder")
    parser.add_argument("--precision", default="auto", help="open_clip precision: auto (fp16 on CUDA), fp32, fp16")
    parser.add_argument("--batch-size", type=int, default=64, help="crops per encoder call in the batched version")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the batched version (median reported)")
    parser.add_argument("--loop-repeats", type=int, default=1, help="timed runs of the loop (it is slow)")
    parser.add_argument("--seed", type=int, default=0, help="image and jitter seed")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pyramid"),
                        help="output path without extension (.json and .md are written)")
    args = parser.parse_args(argv)

    image = torch.rand(3, args.height, args.width, generator=torch.Generator().manual_seed(args.seed))
    config = OVSHierarchyConfig(seed=args.seed, batch_size=args.batch_size)
    all_boxes = ovs_crop_boxes(args.height, args.width, config, key="bench")
    counts = [len(b) for b in all_boxes]
    covered = int(sum(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).sum() for b in all_boxes))
    print(f"{args.width}x{args.height}: crops per scale {counts} (total {sum(counts)})", flush=True)
    runs = []
    for item in args.runs.split(","):
        model, _, threads = item.partition(":")
        if model not in MODELS:
            parser.error(f"unknown model {model!r} in --runs")
        runs.append(bench_one(model, int(threads or 0), args, image, config))
    result = {
        "image": [args.height, args.width],
        "crops_per_scale": counts,
        "crops_total": sum(counts),
        "crop_pixels_total": covered,
        "batch_size": args.batch_size,
        "runs": runs,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(result))
    print(out.with_suffix(".md").read_text())
    return 0


def _markdown(r: dict) -> str:
    h, w = r["image"]
    what = " (1/8 of a 4032 x 3024 photo, as 3D-OVS)" if (w, h) == (504, 378) else ""
    additions = r["crop_pixels_total"] * 512 / 1e9
    rows = []
    for run in r["runs"]:
        b, lp = run["batched"], run["loop"]
        rows.append(
            f"| {run['model']} | {run['threads']} | {lp['median_total_s']:.1f} ({lp['median_encode_s']:.1f} / "
            f"{lp['median_other_s']:.1f}) | {b['median_total_s']:.2f} ({b['median_encode_s']:.2f} / {b['median_other_s']:.2f}) "
            f"| {run['batched_float16_output']['median_total_s']:.2f} | **{run['speedup']:.1f}x** "
            f"| {run['max_abs_diff_float32']:.1e} / {run['max_abs_value']:.2f} | {100 * run['float16_identical_fraction']:.2f}% "
            f"| {run['load_average_before_after'][0]:.1f} / {run['load_average_before_after'][1]:.1f} |"
        )
    table = "\n".join(rows)
    return f"""# Dense 3D-OVS CLIP hierarchy: batched crops vs one crop at a time

Command: `flock /tmp/pcseg-heavy.lock .venv/bin/python benchmarks/bench_pyramid.py` (raw numbers in pyramid.json).

Image {w} x {h}{what}, crops per scale {r['crops_per_scale']} =
{r['crops_total']} CLIP passes, jitter seed 0; batch size {r['batch_size']}; CPU, {r['cpu_count']} cores shared with
other developers' jobs (load averages in the last column); torch {r['torch']}, numpy {r['numpy']},
python {r['python']}. Models: random-init open_clip ViT-B-16 variants with CLIP's 512-d output:
`tiny` = the tests' model (32 px input, width 32, 1 layer), `tiny224` = 224 px input (the real crop
size), width 64, 2 layers.

Times in seconds, median of the runs, (time in the encoder / everything else); both versions write
float32 features (the equality check), the batched one is also timed with the default float16 output.

| model | threads | loop: official one crop at a time | batched (this package) | batched, float16 out | speed-up | max abs diff / max abs value | float16 bit-identical | load before / after |
|---|---|---|---|---|---|---|---|---|
{table}

Equal output: same crops, same jitter; the remaining differences are float32 rounding (summation
order of the box sums, batched vs single-image GEMMs), below float16 resolution for all but a
fraction of values, which then differ by one float16 ulp.

Where the time goes: the loop spends most of its non-encoder time adding each crop's 512-d embedding
to every pixel of its box ({additions:.3g} G additions per image at D = 512); the batched version replaces that with
difference-array box sums (a few passes over the output per scale), encodes 64 crops per call, and
resizes crops with `F.interpolate` box by box on the CPU (measured faster there than the batched
matrix resize, which is the default on CUDA). With `tiny224` the encoder itself (~35 MMAC per crop,
compute-bound already at batch 1 on one core) dominates both versions, which bounds the CPU speed-up;
on a GPU the full ViT-B/16 at batch 1 is launch-bound, which is where batching pays most (no GPU was
available to measure it: `--device cuda --runs vit-b16:0`).
"""


if __name__ == "__main__":
    raise SystemExit(main())
