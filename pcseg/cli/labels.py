"""``pcseg labels {make,import,stats}``: weak-label index files (which points carry a label)."""

from __future__ import annotations

import argparse

HELP = "make, import and inspect weak-label files (scene -> labelled point indices)"
DESCRIPTION = """\
Weak labels are a torch.save'd dict scene -> int64 point indices (the format of the official CPCM
and ScanNet limited-annotation files) with a <file>.json provenance sidecar. Points not listed are
ignored (-1) in training.

  pcseg labels make   --data data/scannet --ratio 0.001 --seed 0 --out labels/scannet_0.1pct.pth
  pcseg labels make   --data data/scannet --points-per-scene 20 --seed 0 --out labels/la20.pth
  pcseg labels import percentage0.001evenc --data data/scannet --out labels/cpcm_0.1pct.pth
  pcseg labels stats  labels/scannet_0.1pct.pth --data data/scannet
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="<action>")
    sub.required = True
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("make", help="sample weak labels from a prepared dataset", formatter_class=fmt,
                       description="--ratio p: class-even sampling, max(floor(n_c * p), 1) points of every class c present\n"
                       "(drawn among the points of class c: the corrected CPCM protocol, see docs/data.md).\n"
                       "--points-per-scene N: N points uniformly over the labelled points (ScanNet LA style).\n"
                       "Randomness is keyed by (seed, scene name): a scene's labels do not depend on the others.")
    p.add_argument("--data", required=True, help="prepared dataset folder")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--ratio", type=float, help="fraction of points per class, e.g. 0.001 for 0.1 %%")
    group.add_argument("--points-per-scene", type=int, help="labelled points per scene, uniform over labelled points")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--split", default="train", help="split to label (default: train)")
    p.add_argument("--out", required=True, help="output file (a .json provenance sidecar is written next to it)")

    p = sub.add_parser("import", help="import an official index file (CPCM percentage*, ScanNet/Pointcept points*)",
                       formatter_class=fmt,
                       description="Read an official file (new- or old-style torch.save), map its keys to our scene names\n"
                       "(Area_k/room.pth -> Area_k_room), check every index against the prepared scenes, remove\n"
                       "duplicates, and write it in pcseg's format with provenance.")
    p.add_argument("file", help="the official index file")
    p.add_argument("--data", required=True, help="prepared dataset folder the indices refer to")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--split", action="append", default=None,
                   help="keep only scenes of this split (repeatable; default: every split of the dataset)")

    p = sub.add_parser("stats", help="per-class counts of a weak-label file")
    p.add_argument("file", help="weak-label file")
    p.add_argument("--data", required=True, help="prepared dataset folder")


def run(args: argparse.Namespace) -> int:
    from pcseg.data import weak_labels as wl
    from pcseg.data.scene import open_dataset
    from pcseg.utils.errors import ConfigError

    data = open_dataset(args.data)
    if args.action == "make":
        if args.ratio is not None and not 0 < args.ratio <= 1:
            raise ConfigError("--ratio must be in (0, 1]")
        if args.points_per_scene is not None and args.points_per_scene < 1:
            raise ConfigError("--points-per-scene must be at least 1")
        labels, meta = wl.make_weak_labels(data, args.split, ratio=args.ratio, points_per_scene=args.points_per_scene,
                                           seed=args.seed, progress=True)
        wl.save(args.out, labels, meta)
        print(f"wrote {args.out}: {meta['num_points']} points in {meta['num_scenes']} scenes ({meta['sampler']}, seed {args.seed})")
        if meta["unlabelled_scenes_skipped"]:
            print(f"skipped {len(meta['unlabelled_scenes_skipped'])} unlabelled scene(s)")
        print(wl.format_stats(wl.label_stats(labels, data)))
        return 0
    if args.action == "import":
        result = wl.import_official(args.file, data, splits=args.split)
        for w in result.warnings:
            print(f"warning: {w}")
        if not result.labels:
            raise ConfigError(f"{args.file}: none of its scenes is in {args.data}")
        meta = {"sampler": "imported", "source": str(args.file), "key_style": result.key_style, "dataset": str(data.root.resolve()),
                "dataset_name": data.name, "duplicates_removed": result.duplicates_removed,
                "unknown_scenes_dropped": len(result.unknown_scenes)}
        wl.save(args.out, result.labels, meta)
        print(f"wrote {args.out}: {sum(len(v) for v in result.labels.values())} points in {len(result.labels)} scenes")
        return 0
    if args.action == "stats":
        labels = wl.load(args.file)
        print(wl.format_stats(wl.label_stats(labels, data)))
        meta = wl.load_meta(args.file)
        if meta:
            shown = {k: meta[k] for k in ("sampler", "ratio", "points_per_scene", "seed", "split", "source") if meta.get(k) is not None}
            print("provenance: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        return 0
    raise ConfigError(f"unknown action {args.action!r}")
