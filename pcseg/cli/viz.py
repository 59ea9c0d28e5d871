"""`pcseg viz`: look at a scene or a prediction file in an Open3D window, or render it to a PNG."""

from __future__ import annotations

import argparse

HELP = "view a scene / prediction PLY (RGB, ground truth, prediction, errors, uncertainty, labelled points)"
DESCRIPTION = """\
Show a prepared scene or a prediction file in an Open3D window, or render it headless to a PNG:

  pcseg viz data/scannet/scenes/scene0000_00                       # RGB / ground truth of a scene
  pcseg viz --data data/scannet --scene scene0000_00 --pred preds/scene0000_00.ply --color error
  pcseg viz preds/scene0000_00.ply                                # a prediction PLY on its own
  pcseg viz data/s3dis/scenes/Area_5_office_1 --labels labels/s3dis_0.1pct.pth --color labelled
  pcseg viz preds/scene0000_00.ply --png pred.png --view top      # headless, no window

Colourings (keys in the window: digit or letter):
  1 R  rgb          the scan's own colours
  2 G  gt           ground truth, class palette (ScanNet20 / S3DIS13); ignore = black
  3 P  pred         prediction, class palette
  4 E  error        grey = correct, red = wrong, black = ignore (no ground truth)
  5 U  uncertainty  per-point score with the viridis colormap (dark blue = low, yellow = high)
  6 L  labelled     labelled / selected points as spheres over a dimmed scene
The legend (class id, name, rgb, point count of the classes present) is printed at start and on
every switch. The prediction PLY format is described in docs/viz.md.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="?", default=None,
                   help="a prepared scene folder (<dataset>/scenes/<scene>) or a prediction .ply file")
    p.add_argument("--data", metavar="ROOT", default=None, help="prepared dataset root (use with --scene)")
    p.add_argument("--scene", metavar="NAME", default=None, help="scene name inside --data")
    p.add_argument("--pred", metavar="FILE", default=None,
                   help="prediction PLY of the scene (same points in the same order); adds the pred/error modes "
                        "and its uncertainty/selected fields if present")
    p.add_argument("--labels", metavar="FILE", default=None,
                   help="weak-label index file (torch.save dict scene -> point indices) whose points of this "
                        "scene are shown in the labelled mode")
    p.add_argument("--uncertainty", metavar="FILE", default=None,
                   help=".npy file with one score per point, for the uncertainty mode")
    p.add_argument("--class-map", metavar="NAME", default=None,
                   help="class map (scannet20, s3dis13) for a scene folder outside a prepared dataset "
                        "(default: the dataset's dataset.json, else the prediction file's header)")
    p.add_argument("--color", choices=("rgb", "gt", "pred", "error", "uncertainty", "labelled"), default=None,
                   help="colouring shown first (and the one rendered with --png); default: pred if there is a "
                        "prediction, else gt, else rgb")
    p.add_argument("--png", metavar="FILE", default=None,
                   help="render headless to this PNG file instead of opening a window")
    p.add_argument("--width", type=int, default=1024, help="image / window width in pixels (default 1024)")
    p.add_argument("--height", type=int, default=768, help="image / window height in pixels (default 768)")
    p.add_argument("--view", choices=("iso", "top"), default="iso",
                   help="camera: iso = oblique from above the -x/-y corner, top = straight down, +y up (default iso)")
    p.add_argument("--max-height", type=float, default=None, metavar="M",
                   help="hide points more than M metres above the lowest point (e.g. 2.0 opens rooms whose "
                        "ceiling hides the inside; default: show everything)")
    p.add_argument("--point-size", type=float, default=None, metavar="PX",
                   help="point size in pixels (default: from the point spacing, so surfaces look closed)")
    p.add_argument("--background", choices=("white", "black"), default="white",
                   help="background colour (default white; on black, ignore points, drawn black, disappear)")
    p.add_argument("--backend", choices=("auto", "open3d", "open3d-offscreen", "numpy"), default="auto",
                   help="--png renderer: auto tries Open3D's hidden-window renderer (EGL), then Open3D's "
                        "OffscreenRenderer (Vulkan/EGL, in a child process), then pcseg's numpy splatting "
                        "with a warning (default auto)")


def run(args: argparse.Namespace) -> int:
    from pcseg.utils.errors import ConfigError
    from pcseg.viz.inputs import load_viz_data
    from pcseg.viz.modes import available_modes, default_mode, unavailable_reason
    from pcseg.viz.viewer import ViewSettings, render_png

    for name in ("width", "height"):
        if not 16 <= getattr(args, name) <= 8192:
            raise ConfigError(f"--{name} must be between 16 and 8192 pixels")
    if args.point_size is not None and not 0.5 <= args.point_size <= 50:
        raise ConfigError("--point-size must be between 0.5 and 50 pixels")
    data = load_viz_data(args.input, args.data, args.scene, pred_path=args.pred, labels_path=args.labels,
                         uncertainty_path=args.uncertainty, class_map_name=args.class_map)
    if args.max_height is not None:
        if args.max_height <= 0:
            raise ConfigError("--max-height must be positive (metres above the lowest point)")
        data = data.below_height(args.max_height)
        if data.num_points == 0:
            raise ConfigError(f"--max-height {args.max_height:g}: no point left to show")
    mode = args.color or default_mode(data)
    reason = unavailable_reason(data, mode)
    if reason is not None:
        raise ConfigError(f"--color {mode}: {reason}")
    class_map = f", classes {data.class_map.name}" if data.class_map is not None else ""
    print(f"pcseg viz: {data.name}: {data.num_points} points{class_map}; colourings: {', '.join(available_modes(data))}")
    background = (255, 255, 255) if args.background == "white" else (0, 0, 0)
    settings = ViewSettings(width=args.width, height=args.height, view=args.view, point_size=args.point_size,
                            background=background)
    if args.png:
        report = render_png(data, mode, args.png, settings, backend=args.backend)
        print(report.legend)
        if report.note:
            print(f"  note: {report.note}")
        print(f"pcseg viz: wrote {report.path} ({args.width}x{args.height}, {args.view} view, "
              f"point size {report.point_size:g} px, renderer {report.backend})")
        return 0
    from pcseg.viz.window import open_window

    open_window(data, mode, settings)
    return 0
