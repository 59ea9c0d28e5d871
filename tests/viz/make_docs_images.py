"""Regenerate docs/images/viz_modes.png: the six colourings of `pcseg viz` on the generated test room.

    .venv/bin/python tests/viz/make_docs_images.py [--out docs/images/viz_modes.png]

It prepares the room as a dataset, writes a prediction PLY and a weak-label file, renders each mode
through the real CLI (`pcseg viz ... --png`), and tiles the six images with captions.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _room_module():
    spec = importlib.util.spec_from_file_location("viz_room", HERE / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    import torch
    from PIL import Image, ImageDraw

    from pcseg.cli.main import main as pcseg
    from pcseg.data.classes import SCANNET20
    from pcseg.data.predictions import write_prediction_ply
    from pcseg.data.scene import write_dataset_info, write_scene, write_split

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE.parents[1] / "docs" / "images" / "viz_modes.png"))
    parser.add_argument("--tile", default="400x300", help="size of each tile, WxH")
    args = parser.parse_args()
    width, height = (int(v) for v in args.tile.split("x"))

    room = _room_module()
    scene = room.make_room(seed=0, density=2500.0)
    pred, unc = room.realistic_prediction(scene)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        write_dataset_info(root, "synthetic", SCANNET20)
        write_split(root, "val", [scene.name])
        write_scene(root, scene)
        ply = write_prediction_ply(Path(tmp) / "room0.ply", scene.coord, pred, SCANNET20, gt=scene.segment,
                                   uncertainty=unc, color=scene.color, scene=scene.name)
        labelled = np.concatenate([np.flatnonzero(scene.segment == c)[:4] for c in room.PRESENT])
        torch.save({scene.name: labelled.astype(np.int64)}, Path(tmp) / "labels.pth")
        tiles = []
        for mode in ("rgb", "gt", "pred", "error", "uncertainty", "labelled"):
            png = Path(tmp) / f"{mode}.png"
            rc = pcseg(["viz", "--data", str(root), "--scene", scene.name, "--pred", str(ply), "--labels",
                        str(Path(tmp) / "labels.pth"), "--color", mode, "--png", str(png),
                        "--width", str(width), "--height", str(height)])
            if rc != 0:
                raise SystemExit(f"pcseg viz failed for {mode}")
            image = Image.open(png).convert("RGB")
            ImageDraw.Draw(image).text((8, 6), mode, fill=(0, 0, 0))
            tiles.append(image)
    sheet = Image.new("RGB", (3 * width, 2 * height), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % 3) * width, (i // 3) * height))
    draw = ImageDraw.Draw(sheet)
    for x in (width, 2 * width):
        draw.line([(x, 0), (x, 2 * height)], fill=(200, 200, 200))
    draw.line([(0, height), (3 * width, height)], fill=(200, 200, 200))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
