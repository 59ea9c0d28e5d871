"""TensoRF vector-matrix (VM) decomposition with a separate component count per plane.

A VM tensor of resolution (X, Y, Z) stores three planes and three lines. Plane k spans axes
``PLANE_AXES[k]`` and is paired with the line along the remaining axis ``LINE_AXES[k]``; component c of
pair k contributes ``plane_k[c](u, v) * line_k[c](w)``. 3D-OVS uses 16 components on the xy plane (z
line: depth in NDC) and 4 on each of the two others ([16, 4, 4] for density, [48, 12, 12] for
appearance).

Coordinates are normalised to [-1, 1] over the grid's box and sampled with bilinear interpolation,
``align_corners=True`` (the grid values sit on the box corners).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

PLANE_AXES = ((0, 1), (0, 2), (1, 2))
LINE_AXES = (2, 1, 0)


def resolution_from_voxels(num_voxels: int, aabb: torch.Tensor) -> list[int]:
    """Per-axis resolution of cubic voxels filling ``aabb`` with about ``num_voxels`` voxels.

    Args:
        num_voxels: target voxel count.
        aabb: (2, 3) box min and max.
    """
    size = (aabb[1] - aabb[0]).double()
    voxel = (size.prod() / num_voxels) ** (1.0 / 3.0)
    return [max(2, int(v)) for v in (size / voxel).tolist()]


def voxel_schedule(n_init: int, n_final: int, num_steps: int) -> list[int]:
    """Voxel counts after each of ``num_steps`` upsamplings, log-linear from ``n_init`` to ``n_final``."""
    if num_steps == 0:
        return []
    a, b = math.log(n_init), math.log(n_final)
    return [int(round(math.exp(a + (b - a) * (i + 1) / num_steps))) for i in range(num_steps)]


class VMGrid(nn.Module):
    """Three plane/line pairs with per-pair component counts.

    Args:
        components: (3,) components of pairs (xy|z, xz|y, yz|x).
        resolution: (3,) grid resolution along x, y, z.
        init_scale: parameters start as ``init_scale * N(0, 1)``.
        generator: optional torch.Generator for a keyed initialisation.
    """

    def __init__(
        self,
        components: Sequence[int],
        resolution: Sequence[int],
        init_scale: float = 0.1,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if len(components) != 3 or min(components) < 1:
            raise ValueError(f"VMGrid needs 3 positive component counts, got {tuple(components)}")
        self.components = tuple(int(c) for c in components)
        self.resolution = [int(r) for r in resolution]
        self.planes = nn.ParameterList()
        self.lines = nn.ParameterList()
        for k, comps in enumerate(self.components):
            a, b = PLANE_AXES[k]
            w = LINE_AXES[k]
            plane = torch.randn(1, comps, self.resolution[b], self.resolution[a], generator=generator) * init_scale
            line = torch.randn(1, comps, self.resolution[w], 1, generator=generator) * init_scale
            self.planes.append(nn.Parameter(plane))
            self.lines.append(nn.Parameter(line))

    @property
    def out_dim(self) -> int:
        return sum(self.components)

    def _pair_products(self, xyz: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3) in [-1, 1] -> per pair (N, comps_k) plane * line products."""
        out = []
        n = xyz.shape[0]
        for k in range(3):
            a, b = PLANE_AXES[k]
            w = LINE_AXES[k]
            plane_uv = torch.stack([xyz[:, a], xyz[:, b]], dim=-1).view(1, n, 1, 2)
            line_uv = torch.stack([torch.zeros_like(xyz[:, w]), xyz[:, w]], dim=-1).view(1, n, 1, 2)
            p = F.grid_sample(self.planes[k], plane_uv, mode="bilinear", align_corners=True)
            line = F.grid_sample(self.lines[k], line_uv, mode="bilinear", align_corners=True)
            out.append((p * line).view(-1, n).t())
        return out

    def features(self, xyz: torch.Tensor) -> torch.Tensor:
        """Per-component products, concatenated.

        Args:
            xyz: (N, 3) coordinates normalised to [-1, 1].

        Returns:
            (N, sum(components)).
        """
        return torch.cat(self._pair_products(xyz), dim=-1)

    def summed(self, xyz: torch.Tensor) -> torch.Tensor:
        """Sum of all component products (the TensoRF density feature): (N, 3) -> (N,)."""
        return sum(p.sum(-1) for p in self._pair_products(xyz))

    @torch.no_grad()
    def resize_(self, resolution: Sequence[int]) -> None:
        """Resample every plane and line to ``resolution`` (bilinear, corners aligned).

        The planes and lines become *new* Parameter objects (autograd caches the shape of a leaf, so
        resizing ``.data`` in place breaks the next backward pass); optimisers holding the old ones must
        be re-pointed (``OvsModel`` does this before each step).
        """
        self.resolution = [int(r) for r in resolution]
        for k in range(3):
            a, b = PLANE_AXES[k]
            w = LINE_AXES[k]
            plane = F.interpolate(self.planes[k].detach(), size=(self.resolution[b], self.resolution[a]), mode="bilinear", align_corners=True)
            line = F.interpolate(self.lines[k].detach(), size=(self.resolution[w], 1), mode="bilinear", align_corners=True)
            self.planes[k] = nn.Parameter(plane, requires_grad=self.planes[k].requires_grad)
            self.lines[k] = nn.Parameter(line, requires_grad=self.lines[k].requires_grad)

    def tv_loss(self) -> torch.Tensor:
        """Total variation of the planes: mean squared difference of neighbouring texels, summed over the
        three planes (the TensoRF regulariser, applied to planes only)."""
        total = self.planes[0].new_zeros(())
        for plane in self.planes:
            dh = (plane[:, :, 1:, :] - plane[:, :, :-1, :]).pow(2).mean()
            dw = (plane[:, :, :, 1:] - plane[:, :, :, :-1]).pow(2).mean()
            total = total + 2.0 * (dh + dw)
        return total
