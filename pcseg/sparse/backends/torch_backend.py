"""The ``torch`` backend: kernel maps + gather/matmul in plain PyTorch (CPU and CUDA, no compilation).

Every convolution, forward and backward, is "gather rows through an index table, then one matrix
product". In this formulation no output row is ever written by two contributions (no scatter-add, no
atomics), so results are bitwise reproducible on CPU and CUDA. The submanifold ``pairs`` algorithm
(:class:`SubmanifoldPairsFunction`, the CPU default) instead accumulates per-offset products with
``index_add_``; every call writes distinct rows in a fixed offset order, so it is reproducible too.

Let ``X`` be the input rows, ``W`` the kernel ``(K, C_in, C_out)`` in the canonical offset order
(:mod:`pcseg.sparse.offsets`), ``G`` the gradient of the output rows, and ``Xp``/``Gp`` the same with a
zero row appended (index ``N`` of a table means "no voxel there").

- Submanifold 3x3x3, neighbour table ``nbr (N, 27)``:
  ``Y = Xp[nbr] (N, 27 C_in) @ W (27 C_in, C_out)``. The neighbour relation is symmetric
  (``nbr[i, k] = j`` iff ``nbr[j, 26 - k] = i``), so ``dX = Gp[nbr] @ W[::-1]^T`` (mirrored offsets) and
  ``dW = Xp[nbr]^T @ G``.
- Stride-2 2x2x2 down, child table ``ch (Nc, 8)`` and ``slot = parent * 8 + offset`` per fine row:
  ``Y = Xp[ch] @ W``; every fine voxel has exactly one parent, so
  ``dX = (G @ [W_0^T | ... | W_7^T]).view(Nc * 8, C_in)[slot]`` and ``dW = Xp[ch]^T @ G``.
- Stride-2 2x2x2 transposed (up), the reverse: ``Y = (X @ [W_0 | ... | W_7]).view(Nc * 8, C_out)[slot]``,
  ``dX = Gp[ch] @ W^T``, ``dW = X^T @ Gp[ch]``.

Large gathers are processed in row chunks so that the im2col buffer stays small
(``CHUNK_ELEMENTS`` values at a time).
"""

from __future__ import annotations

import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from pcseg.sparse.coordinates import (
    DENSE_GRID_MAX_CELLS,
    DownsampleMap,
    KeyLookup,
    Packing,
    downsample_map,
    submanifold_map,
)

#: Submanifold algorithms: "gather" (im2col over all 27 offsets, pure gathers), "pairs" (per-offset
#: pair lists, multiplies only existing neighbours), "auto" (pairs on CPU, gather on CUDA).
ALGORITHMS = ("auto", "gather", "pairs")

#: Values per im2col chunk (float32: 16 MiB).
CHUNK_ELEMENTS = 1 << 22


class Workspace:
    """Scratch buffers reused by every layer of a batch.

    A fresh 100k x 27 x 96 gather buffer is mostly page faults on the CPU (measured: ``index_select``
    into a new tensor 0.73 s, into a reused one 0.08 s), so gathers land in these buffers, grown on
    demand. Nothing returned to autograd ever aliases them.
    """

    def __init__(self):
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
        """A (rows, cols) tensor with ``like``'s dtype and device (contents undefined)."""
        key = (name, like.dtype, like.device)
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < rows * cols:
            buf = torch.empty(max(rows * cols, 1), dtype=like.dtype, device=like.device)
            self._buffers[key] = buf
        return buf[: rows * cols].view(rows, cols)

    def padded(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """``x`` with one zero row appended (the target of "no neighbour" entries)."""
        out = self.get(name, x.shape[0] + 1, x.shape[1], x)
        out[:-1].copy_(x)
        out[-1].zero_()
        return out


def _chunk_rows(k: int, c: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(1, k * c))


def _gathered(ws: Workspace, src: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``src[index]`` as (R, K * C), written into the workspace."""
    r, k = index.shape
    c = src.shape[1]
    cols = ws.get("cols", r * k, c, src)
    torch.index_select(src, 0, index.reshape(-1), out=cols)
    return cols.view(r, k * c)


def gather_matmul(
    ws: Workspace, src: torch.Tensor, index: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """``src[index].view(R, K * C) @ weight``, chunked over rows.

    Args:
        ws: scratch buffers.
        src: (S, C) rows (usually with the zero padding row at the end).
        index: (R, K) int64 rows of ``src``.
        weight: (K * C, D).

    Returns:
        (R, D), a new tensor.
    """
    r, k = index.shape
    out = src.new_empty((r, weight.shape[1]))
    step = _chunk_rows(k, src.shape[1])
    for a in range(0, r, step):
        b = min(r, a + step)
        torch.mm(_gathered(ws, src, index[a:b]), weight, out=out[a:b])
    return out


def gather_t_matmul(
    ws: Workspace, src: torch.Tensor, index: torch.Tensor, other: torch.Tensor
) -> torch.Tensor:
    """``src[index].view(R, K * C).T @ other`` -> (K * C, D), chunked over rows (fixed summation order)."""
    r, k = index.shape
    acc = src.new_zeros((k * src.shape[1], other.shape[1]))
    step = _chunk_rows(k, src.shape[1])
    for a in range(0, r, step):
        b = min(r, a + step)
        acc.addmm_(_gathered(ws, src, index[a:b]).t(), other[a:b])
    return acc


def dense_t_gather_matmul(
    ws: Workspace, dense: torch.Tensor, src: torch.Tensor, index: torch.Tensor
) -> torch.Tensor:
    """``dense.T @ src[index].view(R, K * D)`` -> (C, K * D), chunked over rows."""
    r, k = index.shape
    acc = src.new_zeros((dense.shape[1], k * src.shape[1]))
    step = _chunk_rows(k, src.shape[1])
    for a in range(0, r, step):
        b = min(r, a + step)
        acc.addmm_(dense[a:b].t(), _gathered(ws, src, index[a:b]))
    return acc


class SubmanifoldConvFunction(Function):
    """3x3x3 submanifold convolution through a neighbour table, im2col form (see module docstring)."""

    @staticmethod
    def forward(ctx, feats: torch.Tensor, weight: torch.Tensor, neighbours: torch.Tensor, ws: Workspace):
        k, c_in, c_out = weight.shape
        ctx.save_for_backward(feats, weight, neighbours)
        ctx.ws = ws
        return gather_matmul(ws, ws.padded("pad", feats), neighbours, weight.reshape(k * c_in, c_out))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        feats, weight, neighbours = ctx.saved_tensors
        ws: Workspace = ctx.ws
        k, c_in, c_out = weight.shape
        grad_out = grad_out.contiguous()
        grad_feats = grad_weight = None
        if ctx.needs_input_grad[0]:
            mirrored = weight.flip(0).transpose(1, 2).reshape(k * c_out, c_in)
            grad_feats = gather_matmul(ws, ws.padded("pad", grad_out), neighbours, mirrored)
        if ctx.needs_input_grad[1]:
            grad_weight = gather_t_matmul(ws, ws.padded("pad", feats), neighbours, grad_out).view(
                k, c_in, c_out
            )
        return grad_feats, grad_weight, None, None


class PairList:
    """Per-offset (output row, input row) pairs of a submanifold neighbour table.

    Attributes:
        out_rows, in_rows: lists of 27 (n_k,) int64 tensors (entry 13, the centre, is every row).
    """

    def __init__(self, neighbours: torch.Tensor):
        n, k = neighbours.shape
        present = neighbours < n
        kk, rows = present.t().nonzero(as_tuple=True)  # sorted by offset, then by row
        counts = present.sum(0).tolist()
        self.out_rows = list(torch.split(rows, counts))
        self.in_rows = list(torch.split(neighbours[rows, kk], counts))
        self.centre = k // 2
        self.num_rows = n


class SubmanifoldPairsFunction(Function):
    """3x3x3 submanifold convolution over per-offset pair lists: only existing neighbours are multiplied.

    ``Y = X W_c + sum_k index_add(out_k, X[in_k] W_k)``; ``dX`` mirrors it with ``W_k^T`` and
    ``dW_k = X[in_k]^T G[out_k]``. Within one ``index_add_`` call every target row is distinct (a
    voxel has one neighbour per offset), so no row is ever accumulated concurrently and the result
    does not depend on the number of threads; calls follow a fixed offset order.
    """

    @staticmethod
    def forward(ctx, feats: torch.Tensor, weight: torch.Tensor, pairs: PairList, ws: Workspace):
        ctx.save_for_backward(feats, weight)
        ctx.pairs, ctx.ws = pairs, ws
        c = pairs.centre
        out = feats @ weight[c]
        for k, (o, i) in enumerate(zip(pairs.out_rows, pairs.in_rows)):
            n = o.numel()
            if k == c or n == 0:
                continue
            rows = torch.index_select(feats, 0, i, out=ws.get("rows", n, feats.shape[1], feats))
            prod = torch.mm(rows, weight[k], out=ws.get("prod", n, weight.shape[2], feats))
            out.index_add_(0, o, prod)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        feats, weight = ctx.saved_tensors
        pairs: PairList = ctx.pairs
        ws: Workspace = ctx.ws
        c = pairs.centre
        grad_out = grad_out.contiguous()
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_feats = grad_out @ weight[c].t() if need_x else None
        grad_weight = torch.empty_like(weight) if need_w else None
        if need_w:
            torch.mm(feats.t(), grad_out, out=grad_weight[c])
        c_in, c_out = weight.shape[1], weight.shape[2]
        for k, (o, i) in enumerate(zip(pairs.out_rows, pairs.in_rows)):
            if k == c:
                continue
            n = o.numel()
            if n == 0:
                if need_w:
                    grad_weight[k].zero_()
                continue
            g = torch.index_select(grad_out, 0, o, out=ws.get("grad_rows", n, c_out, grad_out))
            if need_x:
                prod = torch.mm(g, weight[k].t(), out=ws.get("prod", n, c_in, grad_out))
                grad_feats.index_add_(0, i, prod)
            if need_w:
                rows = torch.index_select(feats, 0, i, out=ws.get("rows", n, c_in, feats))
                torch.mm(rows.t(), g, out=grad_weight[k])
        return grad_feats, grad_weight, None, None


class DownsampleConvFunction(Function):
    """Stride-2 2x2x2 convolution: fine rows -> coarse rows."""

    @staticmethod
    def forward(ctx, feats, weight, children, slot, ws):
        k, c_in, c_out = weight.shape
        ctx.save_for_backward(feats, weight, children, slot)
        ctx.ws = ws
        return gather_matmul(ws, ws.padded("pad", feats), children, weight.reshape(k * c_in, c_out))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        feats, weight, children, slot = ctx.saved_tensors
        ws: Workspace = ctx.ws
        k, c_in, c_out = weight.shape
        grad_out = grad_out.contiguous()
        grad_feats = grad_weight = None
        if ctx.needs_input_grad[0]:
            per_slot = grad_out @ weight.permute(2, 0, 1).reshape(c_out, k * c_in)
            grad_feats = per_slot.view(-1, c_in).index_select(0, slot)
        if ctx.needs_input_grad[1]:
            grad_weight = gather_t_matmul(ws, ws.padded("pad", feats), children, grad_out).view(
                k, c_in, c_out
            )
        return grad_feats, grad_weight, None, None, None


class UpsampleConvFunction(Function):
    """Stride-2 2x2x2 transposed convolution: coarse rows -> fine rows."""

    @staticmethod
    def forward(ctx, feats, weight, children, slot, ws):
        k, c_in, c_out = weight.shape
        ctx.save_for_backward(feats, weight, children, slot)
        ctx.ws = ws
        per_slot = feats @ weight.permute(1, 0, 2).reshape(c_in, k * c_out)
        return per_slot.view(-1, c_out).index_select(0, slot)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        feats, weight, children, slot = ctx.saved_tensors
        ws: Workspace = ctx.ws
        k, c_in, c_out = weight.shape
        grad_out = grad_out.contiguous()
        grad_feats = grad_weight = None
        padded = ws.padded("pad", grad_out)
        if ctx.needs_input_grad[0]:
            grad_feats = gather_matmul(ws, padded, children, weight.transpose(1, 2).reshape(k * c_out, c_in))
        if ctx.needs_input_grad[1]:
            flat = dense_t_gather_matmul(ws, feats, padded, children)  # (C_in, K * C_out)
            grad_weight = flat.view(c_in, k, c_out).permute(1, 0, 2).contiguous()
        return grad_feats, grad_weight, None, None, None


class _Level:
    """The voxels of one stride and the kernel maps built on them (lazily, once)."""

    def __init__(self, coords: torch.Tensor, packing: Packing):
        self.coords = coords
        self.packing = packing
        self._keys: torch.Tensor | None = None
        self.neighbours: torch.Tensor | None = None
        self.pairs: PairList | None = None
        self.down: DownsampleMap | None = None

    @property
    def keys(self) -> torch.Tensor:
        if self._keys is None:
            self._keys = self.packing.pack(self.coords)
        return self._keys


class TorchContext:
    """Coordinate sets and kernel maps of one batch, shared by every layer (torch backend).

    Args:
        coords: (M, 4) int32 ``[b, x, y, z]`` at stride 1, distinct rows, on the features' device.
        keys: (M,) int64 keys of ``coords`` under ``packing``.
        packing: stride-1 packing.
        dense_limit: largest grid for the dense lookup table.
    """

    backend = "torch"

    def __init__(
        self,
        coords: torch.Tensor,
        lo: torch.Tensor,
        hi: torch.Tensor,
        batch_size: int,
        dense_limit: int = DENSE_GRID_MAX_CELLS,
        algorithm: str = "auto",
    ):
        if algorithm not in ALGORITHMS:
            raise ValueError(
                f"unknown torch-backend algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}"
            )
        if algorithm == "auto":
            algorithm = "pairs" if coords.device.type == "cpu" else "gather"
        self.algorithm = algorithm
        self.workspace = Workspace()
        self.device = coords.device
        self.batch_size = batch_size
        self.dense_limit = dense_limit
        self._lo, self._hi = lo, hi
        self._levels: dict[int, _Level] = {1: _Level(coords, self._packing(1))}

    def _packing(self, stride: int) -> Packing:
        return Packing.for_bounds(self._lo, self._hi, stride, self.batch_size)

    def _level(self, stride: int) -> _Level:
        try:
            return self._levels[stride]
        except KeyError:
            raise ValueError(
                f"no voxels at tensor stride {stride} in this batch (strides built: {sorted(self._levels)});"
                " coarser strides exist only after a stride-2 convolution"
            ) from None

    # -- coordinates ------------------------------------------------------------------------
    def coordinates(self, stride: int) -> torch.Tensor:
        return self._level(stride).coords

    def num_rows(self, stride: int) -> int:
        return int(self._level(stride).coords.shape[0])

    # -- kernel maps ------------------------------------------------------------------------
    def neighbours(self, stride: int) -> torch.Tensor:
        """(N, 27) neighbour table at ``stride`` (``N`` = missing)."""
        level = self._level(stride)
        if level.neighbours is None:
            lookup = KeyLookup(level.keys, level.packing.num_cells, self.dense_limit)
            level.neighbours = submanifold_map(level.packing, level.keys, lookup)
        return level.neighbours

    def pairs(self, stride: int) -> PairList:
        """Per-offset pair lists at ``stride`` (built from the neighbour table)."""
        level = self._level(stride)
        if level.pairs is None:
            level.pairs = PairList(self.neighbours(stride))
        return level.pairs

    def downsample(self, stride: int) -> DownsampleMap:
        """Parent map from ``stride`` to ``2 * stride``; creates the coarse level on first use."""
        level = self._level(stride)
        if level.down is None:
            coarse = self._packing(2 * stride)
            level.down = downsample_map(level.coords, level.packing, coarse)
            existing = self._levels.get(2 * stride)
            if existing is None:
                self._levels[2 * stride] = _Level(level.down.coarse_coords, coarse)
        return level.down

    # -- operations -------------------------------------------------------------------------
    def submanifold_conv(self, feats: torch.Tensor, stride: int, weight: torch.Tensor) -> torch.Tensor:
        if self.algorithm == "pairs":
            return SubmanifoldPairsFunction.apply(feats, weight, self.pairs(stride), self.workspace)
        return SubmanifoldConvFunction.apply(feats, weight, self.neighbours(stride), self.workspace)

    def downsample_conv(self, feats: torch.Tensor, stride: int, weight: torch.Tensor) -> torch.Tensor:
        down = self.downsample(stride)
        return DownsampleConvFunction.apply(feats, weight, down.children, down.slot, self.workspace)

    def upsample_conv(self, feats: torch.Tensor, stride: int, weight: torch.Tensor) -> torch.Tensor:
        if stride % 2 or stride // 2 not in self._levels:
            raise ValueError(
                f"cannot upsample from tensor stride {stride}: no finer voxels at stride {stride // 2}"
            )
        down = self.downsample(stride // 2)
        return UpsampleConvFunction.apply(feats, weight, down.children, down.slot, self.workspace)
