"""Image inputs of the pyramids: one canonical form, downsampling, and a content digest."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from pcseg.foundation.resize import resize_batch


def as_image_tensor(image: torch.Tensor | np.ndarray, device: str | torch.device | None = None) -> torch.Tensor:
    """Canonical image: (3, H, W) float32 RGB in [0, 1].

    Args:
        image: (3, H, W) torch tensor (float in [0, 1] or uint8), or (H, W, 3) numpy array (uint8, or
            float in [0, 1]).
        device: target device (default: keep the tensor's, CPU for numpy).

    Returns:
        (3, H, W) float32 tensor.
    """
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"numpy images must be (H, W, 3), got {image.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    elif isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"tensor images must be (3, H, W), got {tuple(image.shape)}")
        tensor = image
    else:
        raise TypeError(f"image must be a torch.Tensor or numpy array, got {type(image).__name__}")
    if tensor.dtype == torch.uint8:
        tensor = tensor.float() / 255.0
    elif tensor.is_floating_point():
        tensor = tensor.float()
    else:
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {tensor.dtype}")
    if device is not None:
        tensor = tensor.to(device)
    return tensor.contiguous()


def downsample_image(image: torch.Tensor | np.ndarray, factor: int) -> torch.Tensor:
    """Resize to (H // factor, W // factor) as 3D-OVS does before its CLIP hierarchy (bicubic, antialiased).

    Returns:
        (3, H // factor, W // factor) float32 in [0, 1].
    """
    img = as_image_tensor(image)
    if factor < 1:
        raise ValueError(f"downsample factor must be >= 1, got {factor}")
    h, w = img.shape[1] // factor, img.shape[2] // factor
    if h < 1 or w < 1:
        raise ValueError(f"image of {tuple(img.shape[1:])} px is smaller than the downsample factor {factor}")
    return resize_batch(img[None], (h, w))[0]


def image_digest(image: torch.Tensor | np.ndarray) -> str:
    """sha256 (hex) of the canonical image's shape and float32 pixel values.

    The same picture given as uint8 array or float tensor has the same digest.
    """
    img = as_image_tensor(image).cpu()
    h = hashlib.sha256()
    h.update(repr(tuple(img.shape)).encode())
    h.update(img.numpy().tobytes())
    return h.hexdigest()
