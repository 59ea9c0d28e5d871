"""Load what ``pcseg viz`` shows: a prepared scene and/or a prediction PLY, weak labels, uncertainty."""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from pcseg.data.classes import ClassMap, get_class_map
from pcseg.data.predictions import PredictionCloud, read_prediction_ply
from pcseg.data.scene import Scene, load_scene_dir, open_dataset
from pcseg.utils.errors import ConfigError, DataError
from pcseg.viz.modes import VizData

# A prediction file's float32 coordinates may differ from the scene's by rounding only.
COORD_TOLERANCE_M = 1e-3


def load_viz_data(
    input_path: str | Path | None = None,
    data_root: str | Path | None = None,
    scene_name: str | None = None,
    pred_path: str | Path | None = None,
    labels_path: str | Path | None = None,
    uncertainty_path: str | Path | None = None,
    class_map_name: str | None = None,
) -> VizData:
    """Assemble the viewer's arrays from the command-line inputs.

    Args:
        input_path: a prepared scene folder (``<dataset>/scenes/<scene>``) or a prediction PLY.
        data_root, scene_name: the other way to name a scene (``--data ROOT --scene NAME``).
        pred_path: prediction PLY of that scene (same points, same order).
        labels_path: weak-label file (``torch.save`` of ``{scene: point indices}``) marking labelled points.
        uncertainty_path: ``.npy`` of N per-point scores.
        class_map_name: built-in class map to use when the inputs do not name one.

    Raises:
        ConfigError: the combination of inputs makes no sense.
        DataError: a file is missing, malformed or does not match the scene.
    """
    override = _class_map_option(class_map_name)
    if input_path is not None and data_root is not None:
        raise ConfigError("give either a scene folder / prediction file or --data ROOT --scene NAME, not both")
    if data_root is not None and not scene_name:
        raise ConfigError("--data needs --scene NAME")
    if scene_name and data_root is None:
        raise ConfigError("--scene needs --data ROOT (or give the scene folder itself)")
    if input_path is None and data_root is None:
        raise ConfigError("nothing to show: give a scene folder, a prediction .ply, or --data ROOT --scene NAME")

    dataset_map: ClassMap | None = None
    scene: Scene | None = None
    cloud: PredictionCloud | None = None
    sources: dict[str, str] = {}
    if data_root is not None:
        dataset = open_dataset(data_root)
        if not dataset.has_scene(scene_name):
            raise DataError(dataset.scene_dir(scene_name), f"no prepared scene {scene_name!r}{_suggest(dataset.root, scene_name)}")
        scene, dataset_map = dataset.load(scene_name), dataset.class_map
        sources["scene"] = str(dataset.scene_dir(scene_name))
    else:
        path = Path(input_path)
        if path.is_dir():
            scene = load_scene_dir(path)
            dataset_map = _dataset_class_map(path)
            sources["scene"] = str(path)
        elif path.is_file():
            if pred_path is not None:
                raise ConfigError("--pred is for a scene; the input is already a prediction file")
            cloud = read_prediction_ply(path)
            sources["prediction"] = str(path)
        else:
            raise DataError(path, "does not exist (expected a prepared scene folder or a prediction .ply)")

    if pred_path is not None:
        cloud = read_prediction_ply(pred_path)
        sources["prediction"] = str(pred_path)
        _check_same_points(Path(pred_path), cloud, scene)

    class_map = override or dataset_map or (cloud.class_map if cloud is not None else None)
    if cloud is not None and class_map is not None and tuple(cloud.class_map.names) != tuple(class_map.names):
        raise DataError(sources["prediction"], f"its classes ({cloud.class_map.name}: {', '.join(cloud.class_map.names[:4])}, ...) "
                                               f"differ from the scene's ({class_map.name}: {', '.join(class_map.names[:4])}, ...)")

    if scene is not None:
        data = VizData(name=scene.name, coord=np.asarray(scene.coord, np.float32), rgb=np.asarray(scene.color),
                       gt=None if scene.segment is None else np.asarray(scene.segment))
    else:
        name = cloud.scene or Path(input_path).stem
        data = VizData(name=name, coord=cloud.coord, rgb=cloud.color, gt=cloud.gt)
    if cloud is not None:
        data.pred = cloud.pred
        if data.gt is None:
            data.gt = cloud.gt
        data.uncertainty, data.selected = cloud.uncertainty, cloud.selected
    if data.gt is not None and class_map is None:
        raise ConfigError(f"the scene has ground truth but no dataset.json names its classes: add --class-map "
                          f"({', '.join(('scannet20', 's3dis13'))})")
    data.class_map = class_map

    if uncertainty_path is not None:
        data.uncertainty = load_uncertainty(uncertainty_path, data.num_points)
        sources["uncertainty"] = str(uncertainty_path)
    if labels_path is not None:
        data.selected = load_labelled_mask(labels_path, data.name, data.num_points)
        sources["labels"] = str(labels_path)
    data.sources = sources
    return data


def _class_map_option(name: str | None) -> ClassMap | None:
    if name is None:
        return None
    try:
        return get_class_map(name)
    except KeyError as exc:
        raise ConfigError(f"--class-map: {exc.args[0]}") from None


def _dataset_class_map(scene_dir: Path) -> ClassMap | None:
    """The class map of the dataset holding ``<root>/scenes/<scene>``, if there is one."""
    scene_dir = scene_dir.resolve()
    if scene_dir.parent.name == "scenes" and (scene_dir.parent.parent / "dataset.json").is_file():
        return open_dataset(scene_dir.parent.parent).class_map
    return None


def _suggest(root: Path, name: str) -> str:
    names = sorted(p.name for p in (root / "scenes").iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if (root / "scenes").is_dir() else []
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return f"; did you mean {', '.join(close)}?"
    return f"; {len(names)} scenes there" + (f", e.g. {', '.join(names[:3])}" if names else "")


def _check_same_points(path: Path, cloud: PredictionCloud, scene: Scene | None) -> None:
    if scene is None:
        raise ConfigError("--pred needs a scene (a scene folder or --data ROOT --scene NAME)")
    if cloud.num_points != scene.num_points:
        raise DataError(path, f"has {cloud.num_points} points but scene {scene.name!r} has {scene.num_points}: "
                              "was it written for another scene?")
    diff = float(np.abs(cloud.coord.astype(np.float64) - np.asarray(scene.coord, np.float64)).max())
    if diff > COORD_TOLERANCE_M:
        raise DataError(path, f"point coordinates differ from scene {scene.name!r} by up to {diff:.3g} m: "
                              "written for another scene or another point order?")


def load_uncertainty(path: str | Path, num_points: int) -> np.ndarray:
    """(N,) float32 scores from a ``.npy`` file."""
    path = Path(path)
    try:
        values = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, "does not exist") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(path, f"not a readable .npy file ({exc})") from None
    values = np.squeeze(values)
    if values.shape != (num_points,):
        raise DataError(path, f"holds an array of shape {values.shape}; expected one score per point ({num_points},)")
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        raise DataError(path, f"holds {values.dtype} values; expected numbers")
    return values.astype(np.float32)


def load_labelled_mask(path: str | Path, scene_name: str, num_points: int) -> np.ndarray:
    """(N,) bool mask of the points a weak-label file (contracts §2) lists for ``scene_name``.

    The file is read by :func:`pcseg.data.weak_labels.load` (``weights_only=True``: no code from the
    file runs). Keys of the official files (``Area_1/office_2.pth``, ``scene0000_00.pth``) match
    our scene names too.
    """
    from pcseg.data import weak_labels

    path = Path(path)
    labels = weak_labels.load(path)
    idx = labels.get(scene_name)
    if idx is None:
        by_scene = {weak_labels.normalise_key(k)[0]: v for k, v in labels.items()}
        idx = by_scene.get(scene_name)
    if idx is None:
        close = difflib.get_close_matches(scene_name, list(labels), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; it has {len(labels)} scenes"
        raise DataError(path, f"no entry for scene {scene_name!r}{hint}")
    bad = (idx < 0) | (idx >= num_points)
    if bad.any():
        raise DataError(path, f"scene {scene_name!r}: {int(bad.sum())} index(es) outside 0..{num_points - 1} "
                              f"(e.g. {idx[bad][:3].tolist()}): is the file for another version of the scene?")
    mask = np.zeros(num_points, dtype=bool)
    mask[idx] = True
    return mask


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no details"
