"""``pcseg-ovs-export``: render the segmentation of every annotated view of a trained ovs-nerf run to PNG,
score it with the 3D-OVS protocol, and export a labelled point cloud (pcseg prediction PLY, docs/viz.md)
that ``pcseg viz`` shows.

Output folder::

    <out>/segmentations/<index>_pred.png    colour-coded argmax over the scene classes
    <out>/segmentations/<index>_label.png   class ids as 8-bit grey (255 = none)
    <out>/segmentations/<index>_gt.png      ground truth colours (annotated views)
    <out>/segmentations/<index>_rgb.png     rendered RGB
    <out>/results.txt                       3D-OVS style: per-view per-class IoU, mIoU, accuracy
    <out>/metrics.json                      the same numbers, machine readable
    <out>/<scene>_ovs.ply                   labelled points (x, y, z, red, green, blue, label, gt, ...)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

DESCRIPTION = __doc__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pcseg-ovs-export",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--load-config", type=Path, required=True,
                        help="config.yml of a trained ovs-nerf run (outputs/<scene>/ovs-nerf/<timestamp>/config.yml)")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for PNGs, results and the PLY")
    parser.add_argument("--cloud-views", choices=["annotated", "all"], default="all",
                        help="views whose rendered surface points form the point cloud (default: all training views)")
    parser.add_argument("--point-stride", type=int, default=2,
                        help="keep every k-th pixel in both directions for the point cloud (default 2)")
    parser.add_argument("--min-accumulation", type=float, default=0.5,
                        help="drop pixels whose rendered opacity is below this (default 0.5)")
    parser.add_argument("--frame", choices=["original", "normalized"], default="original",
                        help="point coordinates in the scene's original pose frame (undoing the dataparser's "
                             "recentring/scaling) or in the normalised training frame (default original)")
    parser.add_argument("--eval-num-rays-per-chunk", type=int, default=None,
                        help="rays per render chunk (default: the run's setting)")
    parser.add_argument("--no-cloud", action="store_true", help="only render and score the annotated views")
    return parser


def write_labelled_cloud(path: Path, xyz: np.ndarray, label: np.ndarray, class_names: list[str], palette: np.ndarray,
                         scene: str, rgb: np.ndarray, gt: np.ndarray | None = None,
                         uncertainty: np.ndarray | None = None) -> None:
    """Write a pcseg prediction PLY (format v1, docs/viz.md) with plyfile only (atomic rename)."""
    from plyfile import PlyData, PlyElement

    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("label", "<i4")]
    if gt is not None:
        fields.append(("gt", "<i4"))
    if uncertainty is not None:
        fields.append(("uncertainty", "<f4"))
    fields += [("orig_red", "u1"), ("orig_green", "u1"), ("orig_blue", "u1")]
    v = np.empty(len(xyz), dtype=fields)
    v["x"], v["y"], v["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    colour = np.where(label[:, None] >= 0, palette[np.clip(label, 0, None)], 0)
    v["red"], v["green"], v["blue"] = colour[:, 0], colour[:, 1], colour[:, 2]
    v["label"] = label
    if gt is not None:
        v["gt"] = gt
    if uncertainty is not None:
        v["uncertainty"] = uncertainty
    v["orig_red"], v["orig_green"], v["orig_blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    safe_scene = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in scene)
    comments = ["pcseg_prediction 1", f"pcseg_class_map ovs_{safe_scene}", "pcseg_ignore_index -1", f"pcseg_scene {scene}"]
    comments += [f"pcseg_class {i} {r} {g} {b} {name}" for i, (name, (r, g, b)) in enumerate(zip(class_names, palette.tolist()))]
    tmp = path.with_name(f".{path.name}.tmp")
    PlyData([PlyElement.describe(v, "vertex")], byte_order="<", comments=comments).write(str(tmp))
    os.replace(tmp, path)


def to_original_frame(points: np.ndarray, transform: np.ndarray, scale: float) -> np.ndarray:
    """Undo ``normalised = scale * (R x + t)``: (N, 3) normalised points -> original world points."""
    rot, trans = transform[:, :3], transform[:, 3]
    return (points / scale - trans) @ rot


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # nerfstudio checkpoints hold pickled objects
    import torch
    from nerfstudio.utils.eval_utils import eval_setup

    from nerf3dovs.data.dataset import GT_KEY
    from nerf3dovs.model.ovs_model import class_colours
    from pcseg.metrics import view_iou_and_accuracy

    if not args.load_config.is_file():
        print(f"pcseg-ovs-export: {args.load_config}: no such config file", file=sys.stderr)
        return 2
    if args.point_stride < 1:
        print("pcseg-ovs-export: --point-stride must be >= 1", file=sys.stderr)
        return 2
    config, pipeline, ckpt, step = eval_setup(args.load_config, args.eval_num_rays_per_chunk, test_mode="test")
    model = pipeline.model
    names = list(model.class_names)
    palette = class_colours(len(names))
    out = args.output_dir
    seg_dir = out / "segmentations"
    seg_dir.mkdir(parents=True, exist_ok=True)
    dm = pipeline.datamanager
    eval_ds = dm.eval_dataset
    meta = eval_ds.metadata
    indices = meta.get("ovs_image_indices") or list(range(len(eval_ds)))

    from tqdm import tqdm

    per_view = []
    for i in tqdm(range(len(eval_ds)), desc="annotated views"):
        data = eval_ds[i]
        camera = eval_ds.cameras[i : i + 1].to(model.device)
        outputs = model.get_outputs_for_camera(camera)
        label = outputs["ovs_label"][..., 0].long().cpu().numpy()
        rgb = (outputs["rgb"].clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        idx = indices[i]
        _save_png(seg_dir / f"{idx:03d}_pred.png", palette[label])
        _save_png(seg_dir / f"{idx:03d}_label.png", label.astype(np.uint8))
        _save_png(seg_dir / f"{idx:03d}_rgb.png", rgb)
        if GT_KEY in data:
            gt = data[GT_KEY].numpy().astype(bool)
            iou, acc = view_iou_and_accuracy(label, gt)
            gt_img = palette[gt.argmax(-1)] * gt.any(-1)[..., None]
            _save_png(seg_dir / f"{idx:03d}_gt.png", gt_img.astype(np.uint8))
            mse = float(((outputs["rgb"].clamp(0, 1).cpu() - data["image"][..., :3].float()) ** 2).mean())
            psnr = -10.0 * float(np.log10(max(mse, 1e-10)))
            per_view.append({"view": int(idx), "iou": [float(x) for x in iou], "accuracy": acc, "psnr": psnr})

    results = {"checkpoint": str(ckpt), "step": int(step), "classes": names, "views": per_view}
    if per_view:
        ious = np.array([v["iou"] for v in per_view])
        results["miou"] = float(ious.mean())
        results["accuracy"] = float(np.mean([v["accuracy"] for v in per_view]))
        results["class_iou"] = {n: float(x) for n, x in zip(names, ious.mean(0))}
        results["psnr"] = float(np.mean([v["psnr"] for v in per_view]))
        lines = [f"classes: {', '.join(names)}"]
        for v in per_view:
            lines.append(f"view {v['view']}: IoU " + " ".join(f"{x:.4f}" for x in v["iou"]) + f"  accuracy {v['accuracy']:.4f}")
        lines.append(f"mIoU: {results['miou']:.4f}")
        lines.append(f"accuracy: {results['accuracy']:.4f}")
        (out / "results.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("\n".join(lines[-2:]))
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    if not args.no_cloud:
        ds = dm.train_dataset if args.cloud_views == "all" else eval_ds
        gt_source = eval_ds if args.cloud_views == "annotated" else None
        pts, labs, cols, gts, unc = [], [], [], [], []
        k = args.point_stride
        for i in tqdm(range(len(ds)), desc="point cloud"):
            camera = ds.cameras[i : i + 1].to(model.device)
            outputs = model.get_outputs_for_camera(camera)
            keep = outputs["accumulation"][..., 0].cpu().numpy() >= args.min_accumulation
            sub = np.zeros_like(keep)
            sub[::k, ::k] = True
            keep &= sub
            pts.append(outputs["ovs_point"].cpu().numpy()[keep])
            labs.append(outputs["ovs_label"][..., 0].long().cpu().numpy()[keep])
            rgb = (outputs["rgb"].clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
            cols.append(rgb[keep])
            with torch.no_grad():
                rel = torch.stack([outputs[f"relevancy_{c}"][..., 0] for c in range(len(model.viewer_prompts))], -1)
                top2 = rel.topk(2, dim=-1).values if rel.shape[-1] > 1 else torch.cat([rel, rel], -1)
            unc.append((1.0 - (top2[..., 0] - top2[..., 1])).cpu().numpy()[keep])
            if gt_source is not None:
                gt = gt_source[i][GT_KEY].numpy().astype(bool)
                g = np.where(gt.sum(-1) == 1, gt.argmax(-1), -1)
                gts.append(g[keep])
        xyz = np.concatenate(pts).astype(np.float64)
        if len(xyz) == 0:
            print("pcseg-ovs-export: no pixel reached --min-accumulation; nothing to export", file=sys.stderr)
            return 1
        if args.frame == "original":
            tf = dm.train_dataparser_outputs.dataparser_transform.cpu().numpy().astype(np.float64)
            xyz = to_original_frame(xyz, tf, float(dm.train_dataparser_outputs.dataparser_scale))
        scene = Path(str(config.data or dm.config.dataparser.data)).name or "scene"
        ply = out / f"{scene}_ovs.ply"
        write_labelled_cloud(ply, xyz.astype(np.float32), np.concatenate(labs).astype(np.int32), names, palette, scene,
                             np.concatenate(cols), np.concatenate(gts).astype(np.int32) if gts else None,
                             np.concatenate(unc).astype(np.float32))
        print(f"wrote {len(xyz)} points to {ply}")
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except Exception as err:  # one line for errors a user caused
        from nerf3dovs.errors import OvsError

        # pcseg.foundation raises pcseg.utils.errors types (nerf3dovs may not import pcseg.utils)
        if isinstance(err, OvsError) or any(c.__name__ == "PcsegError" for c in type(err).__mro__):
            print(f"pcseg-ovs-export: {err}", file=sys.stderr)
            return 2
        raise


def entrypoint() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entrypoint()
