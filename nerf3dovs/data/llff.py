"""LLFF ``poses_bounds.npy`` and the 3D-OVS ``segmentations/`` folder, in plain numpy.

``poses_bounds.npy`` holds one row of 17 floats per image: a 3x5 matrix flattened row-major, then the
near and far depth bounds. The 3x5 matrix is ``[c0 c1 c2 t hwf]`` where ``c0, c1, c2`` are the camera's
down, right and backward axes in world coordinates, ``t`` the camera centre and ``hwf`` = (height,
width, focal) in pixels of the original images. This module converts to the OpenGL/nerfstudio camera
convention (right, up, backward), recentres on the average pose and rescales so that the nearest
bound becomes ``1 / bd_factor`` (3D-OVS: ``bd_factor = 0.75``), as spec ovs_nerf.md §1.2 describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerf3dovs.errors import OvsDataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def list_images(folder: Path) -> list[Path]:
    """The images of ``folder`` in sorted file-name order (the 3D-OVS image index is this position)."""
    if not folder.is_dir():
        raise OvsDataError(folder, "missing image folder (a 3D-OVS scene has its photos in images/)")
    files = sorted(p for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise OvsDataError(folder, "no .png/.jpg images in this folder")
    return files


def load_poses_bounds(path: Path, num_images: int) -> tuple[np.ndarray, np.ndarray]:
    """Read ``poses_bounds.npy``.

    Args:
        path: the file.
        num_images: number of images of the scene; the file must have one row per image.

    Returns:
        ``(poses, bounds)``: (N, 3, 5) float64 LLFF matrices and (N, 2) float64 near/far bounds.
    """
    if not path.is_file():
        raise OvsDataError(path, "missing poses file (LLFF poses_bounds.npy with one 17-float row per image)")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises several types for corrupt files
        raise OvsDataError(path, f"cannot read as a .npy array ({type(err).__name__}: {err})") from None
    if arr.ndim != 2 or arr.shape[1] != 17:
        raise OvsDataError(path, f"expected an (N, 17) array, found shape {tuple(arr.shape)}")
    if arr.shape[0] != num_images:
        raise OvsDataError(path, f"{arr.shape[0]} pose rows for {num_images} images in images/")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise OvsDataError(path, "contains NaN or infinite values")
    poses = arr[:, :15].reshape(-1, 3, 5)
    bounds = arr[:, 15:17]
    if (bounds <= 0).any() or (bounds[:, 1] <= bounds[:, 0]).any():
        raise OvsDataError(path, "near/far bounds must be positive with near < far")
    if (poses[:, :, 4] <= 0).any():
        raise OvsDataError(path, "the hwf column (height, width, focal) must be positive")
    return poses, bounds


def llff_to_opengl(poses: np.ndarray) -> np.ndarray:
    """(N, 3, 5) LLFF [down, right, back, t, hwf] -> (N, 3, 4) camera-to-world [right, up, back, t]."""
    return np.stack([poses[:, :, 1], -poses[:, :, 0], poses[:, :, 2], poses[:, :, 3]], axis=-1)


def opengl_to_llff(c2w: np.ndarray, hwf: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Inverse of :func:`llff_to_opengl`, producing the rows of ``poses_bounds.npy``.

    Args:
        c2w: (N, 3, 4) camera-to-world matrices, axes (right, up, back).
        hwf: (3,) or (N, 3) height, width, focal in pixels.
        bounds: (N, 2) near and far depth bounds.

    Returns:
        (N, 17) float64 array.
    """
    n = c2w.shape[0]
    hwf = np.broadcast_to(np.asarray(hwf, dtype=np.float64), (n, 3))
    llff = np.stack([-c2w[:, :, 1], c2w[:, :, 0], c2w[:, :, 2], c2w[:, :, 3], hwf], axis=-1)
    return np.concatenate([llff.reshape(n, 15), np.asarray(bounds, dtype=np.float64)], axis=1)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def average_pose(c2w: np.ndarray) -> np.ndarray:
    """(3, 4) pose at the mean camera centre, looking along the summed backward axes, up = summed up axes."""
    centre = c2w[:, :, 3].mean(0)
    back = _normalize(c2w[:, :, 2].sum(0))
    up = c2w[:, :, 1].sum(0)
    right = _normalize(np.cross(up, back))
    up = np.cross(back, right)
    return np.stack([right, up, back, centre], axis=1)


def to_homogeneous(m34: np.ndarray) -> np.ndarray:
    """(..., 3, 4) -> (..., 4, 4) by appending the row [0, 0, 0, 1]."""
    bottom = np.broadcast_to(np.array([0.0, 0.0, 0.0, 1.0]), m34.shape[:-2] + (1, 4))
    return np.concatenate([m34, bottom], axis=-2)


@dataclass
class NormalizedPoses:
    """Camera poses after the 3D-OVS LLFF normalisation.

    Attributes:
        c2w: (N, 3, 4) camera-to-world, OpenGL axes, in the normalised world.
        bounds: (N, 2) near/far in normalised units.
        transform: (3, 4) the rigid map applied to original world points before scaling.
        scale: the scale applied after ``transform`` (normalised = scale * (transform @ x)).
    """

    c2w: np.ndarray
    bounds: np.ndarray
    transform: np.ndarray
    scale: float


def normalize_poses(c2w: np.ndarray, bounds: np.ndarray, bd_factor: float = 0.75, recenter: bool = True) -> NormalizedPoses:
    """Recentre on the average pose and rescale so the smallest near bound becomes ``1 / bd_factor``.

    Args:
        c2w: (N, 3, 4) OpenGL camera-to-world matrices in the original world.
        bounds: (N, 2) near/far bounds in original units.
        bd_factor: 3D-OVS uses 0.75 (nearest depth ends at about 1.33, outside the NDC near plane 1).
        recenter: apply the inverse average pose (3D-OVS always does).
    """
    transform = np.linalg.inv(to_homogeneous(average_pose(c2w)))[:3] if recenter else np.eye(4)[:3]
    poses = transform @ to_homogeneous(c2w)
    scale = 1.0 / (float(bounds.min()) * bd_factor)
    poses[:, :, 3] *= scale
    return NormalizedPoses(c2w=poses, bounds=bounds * scale, transform=transform, scale=scale)


# ---------------------------------------------------------------------------- segmentations/


def read_class_names(seg_dir: Path) -> list[str]:
    """``segmentations/classes.txt``: one prompt per line, stripped, sorted alphabetically (3D-OVS order)."""
    path = seg_dir / "classes.txt"
    if not path.is_file():
        raise OvsDataError(path, "missing class list (one text prompt per line)")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise OvsDataError(path, "the class list is empty")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise OvsDataError(path, f"duplicate class prompts: {dupes}")
    return sorted(names)


def list_annotated_views(seg_dir: Path, num_images: int) -> dict[int, Path]:
    """Map image index -> folder for every integer-named folder of ``segmentations/``."""
    views: dict[int, Path] = {}
    for child in sorted(seg_dir.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if not child.name.isdigit():
            raise OvsDataError(child, "segmentation folders must be named by the integer image index (e.g. 00, 12)")
        idx = int(child.name)
        if idx >= num_images:
            raise OvsDataError(child, f"image index {idx} but the scene has only {num_images} images")
        if idx in views:
            raise OvsDataError(child, f"two folders name image {idx} ({views[idx].name} and {child.name})")
        views[idx] = child
    return views


def read_view_masks(view_dir: Path, class_names: list[str], size: tuple[int, int]) -> np.ndarray:
    """One annotated view's masks as a one-hot stack.

    Masks are read as 8-bit grey, resized with nearest neighbour to ``size`` and binarised as
    ``pixel == 255`` exactly (3D-OVS: anti-aliased edge values below 255 are background).

    Args:
        view_dir: ``segmentations/<index>/`` holding ``<prompt>.png`` for every class.
        class_names: the (sorted) prompts.
        size: (width, height) of the evaluation images.

    Returns:
        (H, W, C) bool.
    """
    from PIL import Image

    width, height = size
    out = np.zeros((height, width, len(class_names)), dtype=bool)
    for c, name in enumerate(class_names):
        path = view_dir / f"{name}.png"
        if not path.is_file():
            raise OvsDataError(path, f"missing mask for class '{name}' (every class of classes.txt needs one)")
        try:
            with Image.open(path) as im:
                im = im.convert("L")
                if im.size != (width, height):
                    im = im.resize((width, height), resample=Image.Resampling.NEAREST)
                out[:, :, c] = np.asarray(im) == 255
        except OSError as err:
            raise OvsDataError(path, f"cannot read mask image ({err})") from None
    return out
