"""The 3D-OVS TensoRF field: density and appearance VM tensors, RGB shader, CLIP-feature head, and the
three-scale selection volume (spec ovs_nerf.md §3, §4.1). Pure torch (``grid_sample``), CPU or CUDA."""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from nerf3dovs.model.vm import VMGrid

Activation = Literal["none", "relu", "silu"]


def _act(name: Activation) -> nn.Module:
    return {"none": nn.Identity(), "relu": nn.ReLU(), "silu": nn.SiLU()}[name]


class FeatureHead(nn.Module):
    """Appearance code -> CLIP-sized feature: Linear(in, h) -> Linear(h, h) -> Linear(h, out).

    3D-OVS has no non-linearity between the layers (``activation="none"``), so the head is one affine
    map and can be applied after volume rendering (:meth:`render_from_accumulated`), which is exact and
    saves evaluating a ``D``-dimensional output per sample.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, activation: Activation = "none"):
        super().__init__()
        self.activation = activation
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), _act(activation), nn.Linear(hidden, hidden), _act(activation), nn.Linear(hidden, out_dim)
        )

    @property
    def is_affine(self) -> bool:
        return self.activation == "none"

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)

    def render_from_accumulated(self, code_sum: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
        """``sum_i w_i head(c_i)`` from ``sum_i w_i c_i`` and ``sum_i w_i`` (affine heads only).

        For ``head(c) = A c + b``: ``sum w_i (A c_i + b) = head(sum w_i c_i) - b (1 - sum w_i)``.

        Args:
            code_sum: (N, in_dim) weighted sum of appearance codes.
            acc: (N, 1) accumulated weight.
        """
        if not self.is_affine:
            raise RuntimeError("render_from_accumulated needs an affine head (activation='none')")
        bias = self.net(torch.zeros_like(code_sum[:1]))
        return self.net(code_sum) - bias * (1.0 - acc)


class OvsField(nn.Module):
    """All learnable 3D parts of ovs-nerf.

    Args:
        resolution: (3,) grid resolution.
        density_components, appearance_components, selection_components: VM components per plane pair.
        appearance_dim: size of the shared appearance code (TensoRF ``data_dim_color`` = 27).
        mlp_width: RGB shader width (128).
        feature_dim: CLIP embedding size D.
        feature_hidden: feature head width (128).
        feature_activation: non-linearity of the feature head (3D-OVS: none).
        num_scales: CLIP hierarchy scales S (3).
        init_scale: VM parameter init std (0.1).
        generator: keyed initialisation.
    """

    def __init__(
        self,
        resolution: Sequence[int],
        density_components: Sequence[int] = (16, 4, 4),
        appearance_components: Sequence[int] = (48, 12, 12),
        selection_components: Sequence[int] = (16, 4, 4),
        appearance_dim: int = 27,
        mlp_width: int = 128,
        feature_dim: int = 512,
        feature_hidden: int = 128,
        feature_activation: Activation = "none",
        num_scales: int = 3,
        init_scale: float = 0.1,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.init_scale = init_scale
        self.density = VMGrid(density_components, resolution, init_scale, generator)
        self.appearance = VMGrid(appearance_components, resolution, init_scale, generator)
        self.basis = nn.Linear(self.appearance.out_dim, appearance_dim, bias=False)
        self.shader = nn.Sequential(
            nn.Linear(appearance_dim + 3, mlp_width),
            nn.ReLU(),
            nn.Linear(mlp_width, mlp_width),
            nn.ReLU(),
            nn.Linear(mlp_width, 3),
        )
        nn.init.constant_(self.shader[-1].bias, 0.0)
        self.feature_head = FeatureHead(appearance_dim, feature_hidden, feature_dim, feature_activation)
        self.selection = VMGrid(selection_components, resolution, init_scale, generator)
        self.selection_basis = nn.Linear(self.selection.out_dim, num_scales, bias=True)

    # ---------------------------------------------------------------- per-point queries
    def sigma(self, xyz: torch.Tensor) -> torch.Tensor:
        """(N, 3) normalised coordinates -> (N,) density ``relu(sum of density VM components)``."""
        return torch.relu(self.density.summed(xyz))

    def appearance_code(self, xyz: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N, appearance_dim) shared appearance code ``basis(VM_app(x))``."""
        return self.basis(self.appearance.features(xyz))

    def rgb(self, code: torch.Tensor, viewdirs: torch.Tensor) -> torch.Tensor:
        """(N, appearance_dim), (N, 3) unit directions -> (N, 3) colour in (0, 1)."""
        return torch.sigmoid(self.shader(torch.cat([code, viewdirs], dim=-1)))

    def selection_logits(self, xyz: torch.Tensor) -> torch.Tensor:
        """(N, 3) -> (N, S) pre-sigmoid scale scores."""
        return self.selection_basis(self.selection.features(xyz))

    # ---------------------------------------------------------------- parameter groups
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "ovs_density": list(self.density.parameters()),
            "ovs_appearance": list(self.appearance.parameters()),
            "ovs_render": list(self.basis.parameters()) + list(self.shader.parameters()),
            "ovs_feature": list(self.feature_head.parameters()),
            "ovs_select_grid": list(self.selection.parameters()),
            "ovs_select_basis": list(self.selection_basis.parameters()),
        }

    @torch.no_grad()
    def reinit_selection_(self, generator: torch.Generator | None = None) -> None:
        """Fresh ``init_scale * N(0, 1)`` selection planes/lines at the current resolution (3D-OVS creates
        the selection volume at the start of the segmentation stage at the reconstructed grid's size)."""
        self.selection.resize_(self.density.resolution)
        for p in self.selection.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * self.init_scale)
