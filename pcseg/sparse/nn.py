"""Sparse layers. Each owns its parameters in one backend-independent layout.

Convolution kernels are ``weight: (K, C_in, C_out)`` with ``K = k**3`` offsets in the canonical order
of :mod:`pcseg.sparse.offsets`; the backend of the input tensor decides how the product is computed.
Batch norm, ReLU and point-wise layers act on the feature rows directly and are identical for every
backend, so one ``state_dict`` serves them all.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pcseg.sparse.tensor import SparseTensor


class _SparseConv(nn.Module):
    kernel_size: int = 1

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.empty(self.kernel_size**3, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Uniform in ``+-1/sqrt(fan_in)`` (fan_in = K * C_in), the default of both reference engines."""
        bound = 1.0 / math.sqrt(self.weight.shape[0] * self.in_channels)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound, generator=generator)

    def _check(self, x: SparseTensor) -> None:
        if not isinstance(x, SparseTensor):
            raise TypeError(f"{type(self).__name__} expects a pcseg SparseTensor, got {type(x).__name__}")
        if x.num_channels != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: expected {self.in_channels} input channels, got {x.num_channels}"
            )

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, bias={self.bias is not None}"


class SubmanifoldConv3d(_SparseConv):
    """3x3x3 submanifold convolution: output on the input voxels, ``y_u = sum_d W_d^T x_{u + d s}``."""

    kernel_size = 3

    def forward(self, x: SparseTensor) -> SparseTensor:
        self._check(x)
        out = x.context.submanifold_conv(x.feats, x.stride, self.weight)
        if self.bias is not None:
            out = out + self.bias
        return SparseTensor(out, x.stride, x.context)


class DownsampleConv3d(_SparseConv):
    """2x2x2 convolution with stride 2: voxel ``u`` at stride 2s sums its children ``u + d s``, d in {0,1}^3."""

    kernel_size = 2

    def forward(self, x: SparseTensor) -> SparseTensor:
        self._check(x)
        out = x.context.downsample_conv(x.feats, x.stride, self.weight)
        if self.bias is not None:
            out = out + self.bias
        return SparseTensor(out, 2 * x.stride, x.context)


class UpsampleConv3d(_SparseConv):
    """2x2x2 transposed convolution with stride 2, onto the batch's existing voxels at stride s/2.

    Each fine voxel ``v`` receives ``W_d^T x_u`` from its parent ``u = floor(v / s) * s`` with
    ``d = (v - u) / (s / 2)``.
    """

    kernel_size = 2

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Transposed layers use fan = K * C_out (as MinkowskiEngine and torchsparse do)."""
        bound = 1.0 / math.sqrt(self.weight.shape[0] * self.out_channels)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: SparseTensor) -> SparseTensor:
        self._check(x)
        out = x.context.upsample_conv(x.feats, x.stride, self.weight)
        if self.bias is not None:
            out = out + self.bias
        return SparseTensor(out, x.stride // 2, x.context)


class PointwiseConv3d(_SparseConv):
    """1x1x1 convolution (a linear map of each row); weight ``(1, C_in, C_out)``."""

    kernel_size = 1

    def forward(self, x: SparseTensor) -> SparseTensor:
        self._check(x)
        out = x.feats @ self.weight[0]
        if self.bias is not None:
            out = out + self.bias
        return SparseTensor(out, x.stride, x.context)


class BatchNorm(nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` over the rows of a sparse tensor (statistics over all voxels of the batch)."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        return x.replace_feats(super().forward(x.feats))


class ReLU(nn.Module):
    """Row-wise ReLU."""

    def forward(self, x: SparseTensor) -> SparseTensor:
        return x.replace_feats(torch.relu(x.feats))
