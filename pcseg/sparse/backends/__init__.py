"""Sparse-convolution backends: ``torch`` (always), ``minkowski`` (if installed), ``spconv`` (CUDA only).

A backend is a *context* class built once per batch from the stride-1 coordinates. It owns the
coordinate sets of every stride and their kernel maps, and computes the three convolutions the
U-Nets need from canonical kernels ``(K, C_in, C_out)``:

- ``submanifold_conv(feats, stride, weight)`` 3x3x3, same voxels in and out;
- ``downsample_conv(feats, stride, weight)`` 2x2x2 stride 2, to the voxels at ``2 * stride``;
- ``upsample_conv(feats, stride, weight)`` 2x2x2 transposed, back to the voxels at ``stride // 2``;
- ``coordinates(stride)`` and ``num_rows(stride)``.

Everything else (batch norm, ReLU, point-wise layers, concatenation) acts on feature rows and is the
same code for every backend.
"""

from __future__ import annotations

import torch

from pcseg.utils.errors import PcsegError

#: Every backend name pcseg knows, in order of preference.
BACKENDS = ("torch", "minkowski", "spconv")


class BackendError(PcsegError, ValueError):
    """A backend name is unknown, or the backend cannot run on the requested device."""


def check_backend(name: str, device: torch.device) -> None:
    """Raise a one-line error if ``name`` cannot run on ``device`` (the library check is lazy)."""
    if name not in BACKENDS:
        raise BackendError(f"unknown sparse backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "spconv":
        from pcseg.sparse.backends.spconv_backend import check_spconv_device

        check_spconv_device(device)


def available_backends(device: str | torch.device = "cpu") -> list[str]:
    """Backends that can run on ``device`` in this environment (imports the optional libraries)."""
    device = torch.device(device)
    names = ["torch"]
    from pcseg.sparse.backends.minkowski_backend import import_minkowski
    from pcseg.utils.errors import MissingDependencyError

    try:
        ME = import_minkowski()  # noqa: N806
        if device.type != "cuda" or ME.is_cuda_available():
            names.append("minkowski")
    except MissingDependencyError:
        pass
    if device.type == "cuda":
        from pcseg.sparse.backends.spconv_backend import spconv_available

        if spconv_available():
            names.append("spconv")
    return names


def create_context(
    name: str,
    coords: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    batch_size: int,
    dense_grid_limit: int | None = None,
    algorithm: str = "auto",
):
    """Build the per-batch context of backend ``name`` (coordinates already validated)."""
    check_backend(name, coords.device)
    if name == "torch":
        from pcseg.sparse.backends.torch_backend import TorchContext
        from pcseg.sparse.coordinates import DENSE_GRID_MAX_CELLS

        limit = DENSE_GRID_MAX_CELLS if dense_grid_limit is None else dense_grid_limit
        return TorchContext(coords, lo, hi, batch_size, dense_limit=limit, algorithm=algorithm)
    if name == "minkowski":
        from pcseg.sparse.backends.minkowski_backend import MinkowskiContext

        return MinkowskiContext(coords)
    from pcseg.sparse.backends.spconv_backend import SpconvContext

    return SpconvContext(coords, lo, hi, batch_size)
