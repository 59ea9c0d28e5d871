"""``SparseTensor``: feature rows on voxel coordinates, tied to a per-batch backend context."""

from __future__ import annotations

import torch

from pcseg.sparse.backends import check_backend, create_context
from pcseg.sparse.coordinates import Packing, find_duplicate
from pcseg.utils.errors import PcsegError


class SparseInputError(PcsegError, ValueError):
    """Coordinates or features handed to :meth:`SparseTensor.from_batch` are malformed."""


class SparseTensor:
    """Features on the voxels of one tensor stride of a batch.

    A tensor is ``(feats, stride, context)``: row ``i`` of ``feats`` belongs to row ``i`` of
    ``context.coordinates(stride)``. The context is shared by every tensor derived from the same
    :meth:`from_batch` call, so coordinate sets and kernel maps are built once per stride and reused
    by every layer. At stride 1 the rows are exactly the rows given to :meth:`from_batch`.

    Attributes:
        feats: (N, C) floating features.
        stride: tensor stride (1, 2, 4, ...): coordinates are multiples of it.
        context: backend state (:mod:`pcseg.sparse.backends`).
    """

    __slots__ = ("feats", "stride", "context")

    def __init__(self, feats: torch.Tensor, stride: int, context):
        self.feats = feats
        self.stride = stride
        self.context = context

    @classmethod
    def from_batch(
        cls,
        coords: torch.Tensor,
        feats: torch.Tensor,
        backend: str = "torch",
        *,
        dense_grid_limit: int | None = None,
        algorithm: str = "auto",
    ) -> "SparseTensor":
        """Wrap a collated batch.

        Args:
            coords: (M, 4) integer ``[b, x, y, z]`` voxel coordinates (stride 1), distinct rows,
                batch index >= 0; moved to ``feats.device``.
            feats: (M, C) floating features.
            backend: ``"torch"``, ``"minkowski"`` or ``"spconv"`` (CUDA only).
            dense_grid_limit: torch backend only: largest voxel grid (cells) looked up through a
                dense table instead of ``searchsorted`` (tests use 0 to force the sorted path).
            algorithm: torch backend only: submanifold convolution as ``"gather"`` (im2col over
                all 27 offsets: gathers and one matrix product), ``"pairs"`` (per-offset pair lists:
                only existing neighbours are multiplied) or ``"auto"`` (pairs on CPU, gather on CUDA).

        Returns:
            A stride-1 tensor whose rows are the given rows.

        Raises:
            SparseInputError: on malformed coordinates or features.
            BackendError: unknown backend, or spconv on a CPU device.
            MissingDependencyError: the backend's library is not installed.
        """
        if not isinstance(coords, torch.Tensor) or not isinstance(feats, torch.Tensor):
            raise SparseInputError("coords and feats must be torch tensors")
        if coords.dim() != 2 or coords.shape[1] != 4:
            raise SparseInputError(f"coords must have shape (M, 4) [b, x, y, z], got {tuple(coords.shape)}")
        if coords.dtype.is_floating_point or coords.dtype == torch.bool or coords.is_complex():
            raise SparseInputError(f"coords must be an integer tensor, got {coords.dtype}")
        if feats.dim() != 2 or feats.shape[0] != coords.shape[0]:
            raise SparseInputError(
                f"feats must have shape (M, C) with M = {coords.shape[0]} coordinate rows, got {tuple(feats.shape)}"
            )
        if not feats.dtype.is_floating_point:
            raise SparseInputError(f"feats must be floating point, got {feats.dtype}")
        if coords.shape[0] == 0:
            raise SparseInputError("empty batch: no voxel coordinates")
        check_backend(backend, feats.device)
        c64 = coords.to(device=feats.device, dtype=torch.int64)
        if int(c64[:, 0].min()) < 0:
            raise SparseInputError("batch indices (coords[:, 0]) must be >= 0")
        if int(c64.abs().max()) >= 2**30:
            raise SparseInputError(
                "voxel coordinates and batch indices must lie within +-2**30 (int32 range)"
            )
        coords = c64.to(torch.int32).contiguous()
        batch_size = int(c64[:, 0].max()) + 1
        lo, hi = c64[:, 1:].min(0).values.cpu(), c64[:, 1:].max(0).values.cpu()
        dup = find_duplicate(Packing.for_bounds(lo, hi, 1, batch_size).pack(coords))
        if dup is not None:
            raise SparseInputError(
                f"duplicate voxel coordinate {coords[dup].tolist()} (row {dup}): voxelise with one row per voxel"
            )
        context = create_context(
            backend, coords, lo, hi, batch_size, dense_grid_limit=dense_grid_limit, algorithm=algorithm
        )
        return cls(feats.contiguous(), 1, context)

    # -- accessors ------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self.context.backend

    @property
    def coords(self) -> torch.Tensor:
        """(N, 4) int32 ``[b, x, y, z]`` of the rows (multiples of ``stride``)."""
        return self.context.coordinates(self.stride)

    F = property(lambda self: self.feats, doc="Alias of ``feats`` (MinkowskiEngine spelling).")
    C = property(lambda self: self.coords, doc="Alias of ``coords`` (MinkowskiEngine spelling).")

    @property
    def device(self) -> torch.device:
        return self.feats.device

    @property
    def dtype(self) -> torch.dtype:
        return self.feats.dtype

    @property
    def num_channels(self) -> int:
        return int(self.feats.shape[1])

    def __len__(self) -> int:
        return int(self.feats.shape[0])

    def replace_feats(self, feats: torch.Tensor) -> "SparseTensor":
        """Same voxels, new (N, C') features."""
        if feats.dim() != 2 or feats.shape[0] != self.feats.shape[0]:
            raise ValueError(
                f"replacement features must have {self.feats.shape[0]} rows, got {tuple(feats.shape)}"
            )
        return SparseTensor(feats, self.stride, self.context)

    def __repr__(self) -> str:
        return (
            f"SparseTensor(rows={len(self)}, channels={self.num_channels}, stride={self.stride}, "
            f"backend={self.backend!r}, dtype={self.dtype}, device={self.device})"
        )


def cat(*tensors: SparseTensor) -> SparseTensor:
    """Concatenate the channels of tensors on the same voxels (same batch context and stride).

    Inside one network every tensor at a stride lives on that stride's single coordinate set, so
    rows already correspond and concatenation is a plain ``torch.cat`` of the feature columns.
    """
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    first = tensors[0]
    for t in tensors[1:]:
        if t.context is not first.context:
            raise ValueError(
                "cat: tensors come from different batches (different SparseTensor.from_batch calls)"
            )
        if t.stride != first.stride:
            raise ValueError(f"cat: tensor strides differ ({first.stride} vs {t.stride})")
    return SparseTensor(torch.cat([t.feats for t in tensors], dim=1), first.stride, first.context)
