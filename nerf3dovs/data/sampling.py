"""Ray sampling of ovs-nerf: keyed random pixels and the block-centred FDA patches (spec §4.2, §10.3).

Pixel convention (nerfstudio): pixel (row y, col x) covers [y, y+1) x [x, x+1); its ray passes through
(y + 0.5, x + 0.5). A block of ``s x s`` pixels starting at (y0, x0) has its centre at (y0 + s/2, x0 + s/2).
"""

from __future__ import annotations

import numpy as np
import torch


def keyed_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` that depends only on ``(seed, *keys)`` (resumed runs draw the same rays)."""
    state = np.random.SeedSequence([int(seed)] + [int(k) for k in keys]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) >> 1)


def sample_pixels(
    generator: torch.Generator, num: int, image_ids: torch.Tensor, heights: torch.Tensor, widths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Uniform random pixels: an image uniformly among ``image_ids``, then a pixel uniformly in it.

    Args:
        generator: keyed generator.
        num: number of pixels.
        image_ids: (K,) candidate image indices.
        heights, widths: (N_images,) grid size of every image.

    Returns:
        ``(image (num,), row (num,), col (num,))`` int64.
    """
    pick = torch.randint(len(image_ids), (num,), generator=generator)
    img = image_ids[pick]
    u = torch.rand(num, generator=generator)
    v = torch.rand(num, generator=generator)
    row = (u * heights[img]).long()
    col = (v * widths[img]).long()
    row = torch.minimum(row, heights[img] - 1)
    col = torch.minimum(col, widths[img] - 1)
    return img, row, col


def block_centres(row: torch.Tensor, col: torch.Tensor, block: float) -> torch.Tensor:
    """Image-pixel coordinates (y, x) of the centres of cells (row, col) of a grid with ``block``-pixel
    cells: ``(block * row + block / 2, block * col + block / 2)``. Shape (N, 2) float32."""
    return torch.stack([row.float() * block + block / 2.0, col.float() * block + block / 2.0], dim=-1)


def patch_coordinates(y0: torch.Tensor, x0: torch.Tensor, rays: int, stride: float) -> torch.Tensor:
    """Ray coordinates of FDA patches: ``rays x rays`` block centres with ``stride``-pixel blocks.

    Patch n covers pixels [y0_n, y0_n + rays * stride) x [x0_n, x0_n + rays * stride); ray (i, j) goes
    through (y0_n + stride * i + stride / 2, x0_n + stride * j + stride / 2) — the centre of the block
    that 3D-OVS average-pools into one ray (and that one DINO token covers).

    Args:
        y0, x0: (N,) top-left pixel of each patch.
        rays: rays per side P.
        stride: block size in pixels.

    Returns:
        (N, P * P, 2) float32 (y, x), row-major within a patch.
    """
    idx = torch.arange(rays, dtype=torch.float32) * stride + stride / 2.0
    gy, gx = torch.meshgrid(idx, idx, indexing="ij")
    offs = torch.stack([gy.reshape(-1), gx.reshape(-1)], dim=-1)
    return offs[None] + torch.stack([y0.float(), x0.float()], dim=-1)[:, None, :]


def sample_patch_origins(
    generator: torch.Generator, num: int, image_ids: torch.Tensor, height: int, width: int, extent: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random patch positions: image uniform among ``image_ids``, top-left uniform with the patch inside.

    Args:
        extent: patch side in pixels (``rays * stride`` rounded up).

    Returns:
        ``(image (num,), y0 (num,), x0 (num,))`` int64.
    """
    if extent > height or extent > width:
        raise ValueError(f"FDA patch of {extent} px does not fit in {height}x{width} images")
    img = image_ids[torch.randint(len(image_ids), (num,), generator=generator)]
    y0 = torch.randint(height - extent + 1, (num,), generator=generator)
    x0 = torch.randint(width - extent + 1, (num,), generator=generator)
    return img, y0, x0
