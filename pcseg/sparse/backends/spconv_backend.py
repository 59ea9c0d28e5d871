"""The optional ``spconv`` backend (spconv 2.x, CUDA only).

spconv 2.3.8's CPU kernels have a data race (``GatherCPU::scatter_add``): with more than one thread
the forward pass and the input gradients are silently wrong. The backend therefore refuses CPU
tensors outright; use ``torch`` or ``minkowski`` there.

spconv works on non-negative grid indices ``[b, i, j, k]`` in a box of ``spatial_shape`` cells and
stores kernels ``KRSC = (C_out, kx, ky, kz, C_in)``: with the grid axes in ``x, y, z`` order that is
the canonical ``(K, C_in, C_out)`` kernel permuted, with no reordering of offsets. Its stride-2,
kernel-2, padding-0 convolution groups grid cells ``2q, 2q + 1``; to reproduce pcseg's
``floor(c / 2s) * 2s`` parents the grid origin is aligned to a multiple of :data:`MAX_STRIDE`.
The transposed convolution is spconv's inverse convolution over the down-convolution's index pairs.
"""

from __future__ import annotations

import functools

import torch

from pcseg.utils.errors import MissingDependencyError

#: Coarsest tensor stride the spconv grid is aligned for (the U-Nets stop at 16).
MAX_STRIDE = 64

CPU_REFUSAL = (
    "the spconv backend runs on CUDA only: spconv 2.3.8 on the CPU returns silently wrong results with more "
    "than one thread (data race in its scatter-add); move the batch to a CUDA device or use backend='torch' "
    "or backend='minkowski'"
)


def check_spconv_device(device: torch.device | str) -> None:
    """Refuse a non-CUDA device with a one-line error (before spconv is even imported)."""
    from pcseg.sparse.backends import BackendError

    if torch.device(device).type != "cuda":
        raise BackendError(CPU_REFUSAL)


@functools.lru_cache(maxsize=None)
def import_spconv():
    """Import spconv's functional layer or raise MissingDependencyError."""
    try:
        from spconv.core import ConvAlgo
        from spconv.pytorch import functional, ops
    except ImportError as exc:
        raise MissingDependencyError(
            "spconv",
            "the 'spconv' sparse backend",
            f"({type(exc).__name__}: {exc}) Install the wheel matching your CUDA, e.g. "
            "`pip install spconv-cu121` (spconv 2.3.8), or use backend='torch'.",
        ) from exc
    return ConvAlgo, functional, ops


def spconv_available() -> bool:
    try:
        import_spconv()
    except MissingDependencyError:
        return False
    return True


def _krsc(weight: torch.Tensor) -> torch.Tensor:
    """(K, C_in, C_out) canonical kernel -> spconv (C_out, k, k, k, C_in)."""
    k3, c_in, c_out = weight.shape
    k = round(k3 ** (1 / 3))
    return weight.permute(2, 0, 1).reshape(c_out, k, k, k, c_in).contiguous()


class _Level:
    def __init__(self, indices: torch.Tensor, shape: list[int], stride: int):
        self.indices = indices  # (N, 4) int32 [b, i, j, k] grid indices
        self.shape = shape
        self.stride = stride
        self.subm = None  # (pairs, pair_num)
        self.down = None  # (pairs, pair_num, num_coarse)


class SpconvContext:
    """Index pairs of every stride of one batch, built by spconv (CUDA).

    Args:
        coords: (M, 4) int32 ``[b, x, y, z]`` at stride 1 on a CUDA device, distinct rows.
        lo, hi: (3,) int64 coordinate bounds; batch_size: B.
    """

    backend = "spconv"

    def __init__(
        self,
        coords: torch.Tensor,
        lo: torch.Tensor,
        hi: torch.Tensor,
        batch_size: int,
        _allow_cpu_for_tests: bool = False,
    ):
        if not _allow_cpu_for_tests:
            check_spconv_device(coords.device)
        self._algo, self._functional, self._ops = import_spconv()
        self.device = coords.device
        self.batch_size = batch_size
        self._origin = torch.div(lo, MAX_STRIDE, rounding_mode="floor") * MAX_STRIDE
        span = (hi - self._origin + 1).tolist()
        # multiples of MAX_STRIDE: the box halves exactly at every level down to MAX_STRIDE
        shape = [-(-int(n) // MAX_STRIDE) * MAX_STRIDE for n in span]
        if batch_size * shape[0] * shape[1] * shape[2] >= 2**31:
            from pcseg.sparse.backends import BackendError

            raise BackendError(
                f"spconv backend: a voxel box of {shape} x {batch_size} scenes exceeds 2**31 cells "
                "(spconv's 32-bit grid); use backend='torch' or 'minkowski' for scenes this large"
            )
        grid = coords.clone()
        grid[:, 1:] -= self._origin.to(coords.device, torch.int32)
        self._levels: dict[int, _Level] = {1: _Level(grid.contiguous(), shape, 1)}
        self._coords: dict[int, torch.Tensor] = {1: coords}

    def _level(self, stride: int) -> _Level:
        try:
            return self._levels[stride]
        except KeyError:
            raise ValueError(
                f"no voxels at tensor stride {stride} in this batch (strides built: {sorted(self._levels)})"
            ) from None

    def coordinates(self, stride: int) -> torch.Tensor:
        if stride not in self._coords:
            level = self._level(stride)
            c = level.indices.clone()
            c[:, 1:] = c[:, 1:] * stride + self._origin.to(c.device, torch.int32)
            self._coords[stride] = c
        return self._coords[stride]

    def num_rows(self, stride: int) -> int:
        return int(self._level(stride).indices.shape[0])

    def _pairs(self, level: _Level, ksize: int, stride: int, padding: int, subm: bool):
        return self._ops.get_indice_pairs(
            level.indices,
            self.batch_size,
            level.shape,
            self._algo.Native,
            [ksize] * 3,
            [stride] * 3,
            [padding] * 3,
            [1] * 3,
            [0] * 3,
            subm=subm,
            transpose=False,
        )

    def _down(self, stride: int):
        level = self._level(stride)
        if level.down is None:
            if 2 * stride > MAX_STRIDE:
                raise ValueError(f"spconv backend: strides beyond {MAX_STRIDE} are not supported")
            out_indices, pairs, pair_num = self._pairs(level, 2, 2, 0, subm=False)
            level.down = (pairs, pair_num, int(out_indices.shape[0]))
            if 2 * stride not in self._levels:
                self._levels[2 * stride] = _Level(
                    out_indices.contiguous(), [n // 2 for n in level.shape], 2 * stride
                )
        return level.down

    def submanifold_conv(self, feats: torch.Tensor, stride: int, weight: torch.Tensor) -> torch.Tensor:
        level = self._level(stride)
        if level.subm is None:
            _, pairs, pair_num = self._pairs(level, 3, 1, 1, subm=True)
            level.subm = (pairs, pair_num)
        pairs, pair_num = level.subm
        return self._functional.SubMConvFunction.apply(
            feats.contiguous(), _krsc(weight), pairs, pair_num, feats.shape[0], self._algo.Native
        )

    def downsample_conv(self, feats: torch.Tensor, stride: int, weight: torch.Tensor) -> torch.Tensor:
        pairs, pair_num, num_out = self._down(stride)
        return self._functional.SparseConvFunction.apply(
            feats.contiguous(), _krsc(weight), pairs, pair_num, num_out, self._algo.Native
        )

    def upsample_conv(self, feats: torch.Tensor, stride: int, weight: torch.Tensor) -> torch.Tensor:
        if stride % 2 or stride // 2 not in self._levels:
            raise ValueError(
                f"cannot upsample from tensor stride {stride}: no finer voxels at stride {stride // 2}"
            )
        pairs, pair_num, _ = self._down(stride // 2)
        return self._functional.SparseInverseConvFunction.apply(
            feats.contiguous(), _krsc(weight), pairs, pair_num, self.num_rows(stride // 2), self._algo.Native
        )
