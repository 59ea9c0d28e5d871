"""``pcseg prepare {scannet,s3dis,custom,synthetic}``: raw scans -> the prepared dataset format."""

from __future__ import annotations

import argparse
import os
import sys
import time

HELP = "convert raw ScanNet / S3DIS / your own PLY scans (or generate synthetic rooms) to pcseg's format"
DESCRIPTION = """\
Convert a raw dataset into pcseg's prepared format (one folder of .npy arrays per scene, split
lists, dataset.json; see docs/data.md). Scenes already prepared are skipped, so an interrupted run
can simply be started again; scenes that fail are listed at the end and the exit status is 1.

  pcseg prepare scannet   --raw ScanNet/ --out data/scannet
  pcseg prepare s3dis     --raw Stanford3dDataset_v1.2_Aligned_Version/ --out data/s3dis
  pcseg prepare custom    --raw my_scans/ --classes classes.txt --out data/mine
  pcseg prepare synthetic --out data/synthetic          (96 train + 8 val rooms, about a minute)
"""


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=_default_workers(),
                   help="worker processes reading and writing scenes (default: the CPUs available, at most 8)")
    p.add_argument("--overwrite", action="store_true", help="prepare every scene again, even those already done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset", metavar="<dataset>")
    sub.required = True
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("scannet", help="ScanNet v2 as distributed (scans/, scans_test/, label tsv)", formatter_class=fmt,
                       description="Read scans/<scene>/<scene>_vh_clean_2.ply, the .segs.json over-segmentation and the\n"
                       ".aggregation.json annotation; map raw categories -> NYU40 -> the 20 benchmark classes (others\n"
                       "ignored, -1); keep instance ids and the vertex order. scans_test/ scenes are prepared unlabelled.")
    p.add_argument("--raw", required=True, help="raw ScanNet folder (holds scans/ and scannetv2-labels.combined.tsv)")
    p.add_argument("--out", required=True, help="output folder for the prepared dataset")
    p.add_argument("--splits", default=None, metavar="DIR",
                   help="folder of split lists (scannetv2_<split>.txt or <split>.txt); default: the official "
                   "train/val/test lists (1201/312/100) shipped with pcseg")
    p.add_argument("--label-map", default=None, metavar="TSV", help="label tsv (default: <raw>/scannetv2-labels.combined.tsv)")
    _common(p)

    p = sub.add_parser("s3dis", help="S3DIS (Stanford3dDataset_v1.2 Aligned Version)", formatter_class=fmt,
                       description="Read Area_<k>/<room>/Annotations/<class>_<n>.txt; 13 classes (stairs ignored), one instance\n"
                       "per annotation file. Scenes are named Area_<k>_<room>. Malformed lines are repaired when the\n"
                       "repair is unambiguous, otherwise skipped, and reported as file:line.")
    p.add_argument("--raw", required=True, help="folder holding Area_1 ... Area_6")
    p.add_argument("--out", required=True, help="output folder for the prepared dataset")
    p.add_argument("--val-area", type=int, default=5, help="area used as the val split; train = the others (default: 5)")
    _common(p)

    p = sub.add_parser("custom", help="your own labelled scans: a folder of PLY files with a per-vertex 'label'", formatter_class=fmt,
                       description="Read <raw>/<scene>.ply or <raw>/<split>/<scene>.ply with vertex properties x y z,\n"
                       "red green blue, label (class id, -1 = unlabelled) and optionally instance. See docs/data.md.")
    p.add_argument("--raw", required=True, help="folder of .ply files (or of <split>/ sub-folders of .ply files)")
    p.add_argument("--classes", required=True, metavar="FILE", help="class names, one per line; line i = class id i")
    p.add_argument("--out", required=True, help="output folder for the prepared dataset")
    p.add_argument("--splits", default=None, metavar="DIR", help="folder of <split>.txt scene lists (default: sub-folder names, "
                   "or everything in 'train')")
    p.add_argument("--name", default="custom", help="dataset name written to dataset.json (default: custom)")
    _common(p)

    from pcseg.data.synthetic.generate import DEFAULT_NUM_SCENES, MAX_DEFAULT_VAL

    p = sub.add_parser("synthetic", help="generate synthetic indoor rooms (raw ScanNet + S3DIS layouts) and prepare them",
                       formatter_class=fmt,
                       description="Generate furnished rooms with exact labels, write them in the raw ScanNet and S3DIS\n"
                       "layouts (<out>/raw_scannet, <out>/raw_s3dis) and prepare both with the real readers\n"
                       "(<out>/scannet: scannet20, the quick-start dataset; <out>/s3dis: s3dis13). Deterministic by seed.")
    p.add_argument("--out", required=True, help="output folder (e.g. data/synthetic)")
    p.add_argument("--scenes", type=int, default=DEFAULT_NUM_SCENES,
                   help=f"number of rooms (default: {DEFAULT_NUM_SCENES} = 96 train + 8 val, ≈0.9 GB; "
                        f"the benchmarks use 32 = 24 + 8)")
    p.add_argument("--val-scenes", type=int, default=None,
                   help=f"number of val rooms, the last ones (default: a quarter of --scenes, at most {MAX_DEFAULT_VAL})")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    _common(p)


def _print_report(name: str, report, seconds: float) -> None:
    print(f"{name}: {report.summary()}  [{seconds:.1f}s]")


def run(args: argparse.Namespace) -> int:
    from pcseg.utils.errors import ConfigError

    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    progress = not args.no_progress
    t0 = time.time()
    if args.dataset == "scannet":
        from pcseg.data.scannet import prepare_scannet

        report = prepare_scannet(args.raw, args.out, splits_dir=args.splits, label_map_path=args.label_map, workers=args.workers,
                                 overwrite=args.overwrite, progress=progress)
        _print_report("scannet", report, time.time() - t0)
        return 0 if report.ok else 1
    if args.dataset == "s3dis":
        from pcseg.data.s3dis import prepare_s3dis

        report = prepare_s3dis(args.raw, args.out, val_area=args.val_area, workers=args.workers, overwrite=args.overwrite,
                               progress=progress)
        _print_report("s3dis", report, time.time() - t0)
        return 0 if report.ok else 1
    if args.dataset == "custom":
        from pcseg.data.custom import prepare_custom

        report = prepare_custom(args.raw, args.classes, args.out, splits_dir=args.splits, name=args.name, workers=args.workers,
                                overwrite=args.overwrite, progress=progress)
        _print_report(args.name, report, time.time() - t0)
        return 0 if report.ok else 1
    if args.dataset == "synthetic":
        from pcseg.data.synthetic.generate import generate_dataset

        if args.scenes < 2:
            raise ConfigError("--scenes must be at least 2 (one train and one val room)")
        rep = generate_dataset(args.out, num_scenes=args.scenes, seed=args.seed, num_val=args.val_scenes, workers=args.workers,
                               progress=progress, overwrite=args.overwrite)
        print(f"synthetic: generated {rep.generated} room(s), reused {rep.reused}, failed {len(rep.failed)}")
        for name, msg in sorted(rep.failed.items()):
            print(f"  {name}: {msg}", file=sys.stderr)
        _print_report("  scannet", rep.scannet, 0.0)
        _print_report("  s3dis", rep.s3dis, time.time() - t0)
        return 0 if rep.ok else 1
    raise ConfigError(f"unknown dataset {args.dataset!r}")
