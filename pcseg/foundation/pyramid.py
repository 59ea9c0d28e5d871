"""Dense CLIP features from crops: the 3D-OVS crop hierarchy and the LERF tile pyramid.

Both work with any ``ImageTextEncoder`` (real CLIP or the oracle) through the same code path: boxes
are computed, cut and resized in batches (``resize_boxes``), encoded in batches, and aggregated.

3D-OVS hierarchy (spec ovs_nerf.md §2), for an image of w × h (already at 1/8 resolution):
    * scale s has patch ``p = min(w, h) // d_s`` (d = 5, 7, 10; at least 1) and stride ``p // 4`` (at
      least 1: 3D-OVS divides by zero below 40 px);
    * windows per axis: ``floor((L - p) / stride) + 1``, plus one when there is a remainder, with the
      last window moved to touch the border, so every pixel is covered at every scale;
    * every side of every window is pushed outward by a jitter drawn uniformly from ``[0, p // 4]``
      and clipped to the image. 3D-OVS leaves this unseeded; here it is keyed by
      ``(seed, scale index, key)`` with key = the image's content digest by default;
    * each crop is resized to the encoder's input size and embedded (un-normalised); a pixel's feature
      is the mean embedding of all crops containing it; output (S, D, h, w) float16.

LERF pyramid (spec ovs_nerf.md §8.4): level i has tile ratio ``r_i = linspace(0.05, 0.5, 7)[i]``,
kernel ``int(H r_i)``, stride ``int(kernel · interp(r_i, [0.05, 0.15], [1, 0.5]))``, zero padding
``kernel // 2``; tiles are L2-normalised; per pixel, embeddings are bilinearly interpolated between tile
centres and linearly between levels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pcseg.foundation.images import as_image_tensor, image_digest
from pcseg.foundation.interface import ImageTextEncoder
from pcseg.foundation.resize import resize_boxes
from pcseg.utils.errors import ConfigError
from pcseg.utils.rng import numpy_rng

# --------------------------------------------------------------------------------------------------
# 3D-OVS crop hierarchy
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OVSHierarchyConfig:
    """Parameters of the 3D-OVS crop hierarchy.

    Attributes:
        patch_divisors: patch size of scale s is ``min(h, w) // patch_divisors[s]``.
        stride_divisor: stride = patch // stride_divisor (at least 1).
        jitter_divisor: each box side moves outward by up to patch // jitter_divisor pixels.
        jitter: False disables the jitter (boxes are the plain windows).
        seed: keys the jitter.
        batch_size: at most this many crops per encoder call (on a CPU also at most
            ``CPU_PIXELS_PER_CALL`` input pixels, see ``crops_per_call``); does not change the result
            beyond float rounding.
    """

    patch_divisors: tuple[int, ...] = (5, 7, 10)
    stride_divisor: int = 4
    jitter_divisor: int = 4
    jitter: bool = True
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if not self.patch_divisors or min(self.patch_divisors) < 1:
            raise ConfigError("patch_divisors must be a non-empty list of integers >= 1")
        if self.stride_divisor < 1 or self.jitter_divisor < 1 or self.batch_size < 1:
            raise ConfigError("stride_divisor, jitter_divisor and batch_size must be >= 1")

    def params(self) -> dict:
        """Everything that determines the output (for cache keys): all fields but batch_size."""
        d = asdict(self)
        d.pop("batch_size")
        d["patch_divisors"] = list(self.patch_divisors)
        return d


@dataclass(frozen=True)
class OVSScale:
    """One scale of the hierarchy: square window size, stride, and maximum jitter per side (pixels)."""

    patch: int
    stride: int
    jitter: int


def ovs_scales(height: int, width: int, config: OVSHierarchyConfig) -> list[OVSScale]:
    """The scales of the hierarchy for an image of height × width."""
    short = min(height, width)
    scales = []
    for divisor in config.patch_divisors:
        patch = max(1, short // divisor)
        stride = max(1, patch // config.stride_divisor)
        jitter = patch // config.jitter_divisor if config.jitter else 0
        scales.append(OVSScale(patch, stride, jitter))
    return scales


def window_starts(length: int, patch: int, stride: int) -> np.ndarray:
    """Start offsets of windows of size ``patch`` along an axis of ``length``; the last touches the end.

    Returns:
        (n,) int64 with n = floor((length - patch) / stride) + 1 (+1 if there is a remainder).
    """
    if not 1 <= patch <= length or stride < 1:
        raise ValueError(f"need 1 <= patch <= length and stride >= 1, got {patch}, {length}, {stride}")
    span = length - patch
    n = span // stride + 1 + (1 if span % stride else 0)
    return np.minimum(np.arange(n, dtype=np.int64) * stride, span)


def ovs_crop_boxes(height: int, width: int, config: OVSHierarchyConfig, key: str = "") -> list[np.ndarray]:
    """The jittered crop boxes of every scale.

    Args:
        height, width: image size in pixels.
        config: hierarchy parameters.
        key: extra RNG key (the image digest in ``extract_ovs_hierarchy``).

    Returns:
        One (n_s, 4) int64 array per scale, rows ``[y0, x0, y1, x1]`` (half-open), row-major over the
        window grid (y outer).
    """
    out = []
    for index, scale in enumerate(ovs_scales(height, width, config)):
        ys = window_starts(height, scale.patch, scale.stride)
        xs = window_starts(width, scale.patch, scale.stride)
        y, x = np.meshgrid(ys, xs, indexing="ij")
        y, x = y.reshape(-1), x.reshape(-1)
        jit = numpy_rng(config.seed, "ovs-jitter", index, key).integers(0, scale.jitter + 1, size=(len(y), 4))
        boxes = np.stack(
            [
                np.maximum(y - jit[:, 0], 0),
                np.maximum(x - jit[:, 1], 0),
                np.minimum(y + scale.patch + jit[:, 2], height),
                np.minimum(x + scale.patch + jit[:, 3], width),
            ],
            axis=1,
        )
        out.append(boxes.astype(np.int64))
    return out


def box_average(
    embeddings: torch.Tensor,
    boxes: np.ndarray,
    height: int,
    width: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Per-pixel mean of the embeddings of all boxes containing the pixel.

    A sweep over the rows with a difference row: ``active`` (D, width) holds +e at x0 and -e at x1 of
    every box spanning the current row; a box enters at row y0 and leaves at y1 (its four corner
    events, sorted by row, are added with one ``index_add_`` per row). The sums along a row are the
    prefix sum of ``active`` along x; scaled by the row's 1/count they are written (and cast) straight
    into the output row. The cost is O(n·D + D·h·w) whatever the overlap, every output value is
    written exactly once, and the working set (two D × width rows) stays in cache, so the sweep runs
    at the speed of writing the output. Sums run in float32 (float64 for float64 input); ``active``
    only ever holds +e/-e pairs of the boxes of one row, so the rounding error stays ~1e-6 relative,
    far below the float16 storage precision.

    Args:
        embeddings: (n, D) float.
        boxes: (n, 4) int ``[y0, x0, y1, x1]`` (half-open, inside the image).
        height, width: output size.
        out: optional writeable (D, height, width) array to write into (any float dtype, e.g. a
            float16 memmap).

    Returns:
        (D, height, width) array (``out`` if given, else float32); pixels covered by no box are 0.
    """
    n, dim = embeddings.shape
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if out is None:
        out = np.empty((dim, height, width), dtype=np.float32)
    if out.shape != (dim, height, width):
        raise ValueError(f"out has shape {out.shape}, expected {(dim, height, width)}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    acc = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
    # Corner events: (row, column, sign, box). Corners on the far border only affect pixels outside.
    y0, x0, y1, x1 = boxes.T
    rows = np.concatenate([y0, y0, y1, y1])
    cols = np.concatenate([x0, x1, x0, x1])
    signs = np.repeat(np.array([1.0, -1.0, -1.0, 1.0]), n)
    which = np.tile(np.arange(n), 4)
    keep = (rows < height) & (cols < width)
    order = np.argsort(rows[keep], kind="stable")
    rows, cols, signs, which = rows[keep][order], cols[keep][order], signs[keep][order], which[keep][order]
    row_start = np.searchsorted(rows, np.arange(height + 1)).tolist()
    count = torch.zeros(height * width, dtype=torch.float64)
    count.index_add_(0, torch.as_tensor(rows * width + cols), torch.as_tensor(signs))
    count = count.view(height, width).cumsum(1).cumsum(0)
    inv = torch.where(count > 0, 1.0 / count.clamp(min=1.0), torch.zeros_like(count)).to(acc)
    sign_t = torch.as_tensor(signs, dtype=acc)
    values = (embeddings.detach().to("cpu", acc)[torch.as_tensor(which)] * sign_t[:, None]).T.contiguous()  # (D, events)
    cols_t = torch.as_tensor(cols)
    target = torch.from_numpy(out)  # shares memory (memmaps too)
    active = torch.zeros(dim, width, dtype=acc)
    row_sums = torch.empty(dim, width, dtype=acc)
    for y in range(height):
        a, b = row_start[y], row_start[y + 1]
        if b > a or y == 0:  # a row without events has the sums of the row above
            active.index_add_(1, cols_t[a:b], values[:, a:b])
            torch.cumsum(active, 1, out=row_sums)
        torch.mul(row_sums, inv[y], out=target[:, y])  # scale and cast into the output row
    return out


# On a CPU an encoder call larger than this many input pixels (16 crops at 224 x 224) runs slower per
# crop: its activations leave the caches (measured, one thread, a 224-px two-layer ViT: 2.4 ms per crop
# at 8-16 crops per call, 3.6 ms at 64, 8 ms at 128). Small inputs (the tests' 32-px model) keep
# gaining up to 64 crops per call, where per-call overhead stops mattering.
CPU_PIXELS_PER_CALL = 16 * 224 * 224


def crops_per_call(batch_size: int, encoder: ImageTextEncoder) -> int:
    """Crops per encoder call: ``batch_size``, capped on a CPU to ``CPU_PIXELS_PER_CALL`` input pixels."""
    if encoder.device.type != "cpu":
        return batch_size
    height, width = encoder.input_size
    return max(1, min(batch_size, CPU_PIXELS_PER_CALL // (height * width)))


def _prepare(image, encoder: ImageTextEncoder, config, key):
    img = as_image_tensor(image)
    if key is None:
        key = image_digest(img)
    img = img.to(encoder.device)
    _, height, width = img.shape
    if config is None:
        config = OVSHierarchyConfig()
    return img, height, width, config, key


def _output(out, shape, dtype):
    if out is None:
        return np.empty(shape, dtype=dtype)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {tuple(shape)}")
    return out


def extract_ovs_hierarchy(
    image: torch.Tensor | np.ndarray,
    encoder: ImageTextEncoder,
    config: OVSHierarchyConfig | None = None,
    *,
    key: str | None = None,
    out: np.ndarray | None = None,
    dtype=np.float16,
    progress: bool = False,
) -> np.ndarray:
    """The 3D-OVS multi-scale dense CLIP features of one image (batched).

    Args:
        image: (3, h, w) float tensor in [0, 1] or (h, w, 3) uint8 array, at the feature resolution
            (3D-OVS: 1/8 of the photo, see ``downsample_image``).
        encoder: any ImageTextEncoder.
        config: hierarchy parameters (default: 3D-OVS's).
        key: jitter key (default: the image's content digest).
        out: optional (S, D, h, w) array to write into (e.g. a memmap).
        dtype: output dtype when ``out`` is None.
        progress: show a tqdm bar over crop batches.

    Returns:
        (S, D, h, w) array of per-pixel mean (un-normalised) crop embeddings.
    """
    img, height, width, config, key = _prepare(image, encoder, config, key)
    all_boxes = ovs_crop_boxes(height, width, config, key)
    result = _output(out, (len(all_boxes), encoder.embed_dim, height, width), dtype)
    total = sum(len(b) for b in all_boxes)
    per_call = crops_per_call(config.batch_size, encoder)
    bar = tqdm(total=total, desc="CLIP crops", unit="crop", disable=not progress, leave=False)
    for s, boxes in enumerate(all_boxes):
        emb = torch.empty(len(boxes), encoder.embed_dim, dtype=torch.float32)
        for start in range(0, len(boxes), per_call):
            chunk = boxes[start : start + per_call]
            crops = resize_boxes(img, chunk, encoder.input_size)
            emb[start : start + len(chunk)] = encoder.encode_images(crops).cpu()
            bar.update(len(chunk))
        box_average(emb, boxes, height, width, out=result[s])
    bar.close()
    return result


def extract_ovs_hierarchy_loop(
    image: torch.Tensor | np.ndarray,
    encoder: ImageTextEncoder,
    config: OVSHierarchyConfig | None = None,
    *,
    key: str | None = None,
    dtype=np.float16,
    encode_chunk: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Reference implementation, one crop at a time as the official script does.

    Same boxes and jitter as ``extract_ovs_hierarchy``; each crop is cut and resized alone (with the
    same per-crop resize as the batched version, so comparisons measure the batching), encoded alone
    (or ``encode_chunk`` crops per encoder call: the official script groups 8), and its embedding is
    added to every pixel of its box (float32 sums and counts). Slow: used by the tests and the
    benchmark to check the batched version.
    """
    if encode_chunk < 1:
        raise ValueError(f"encode_chunk must be >= 1, got {encode_chunk}")
    img, height, width, config, key = _prepare(image, encoder, config, key)
    all_boxes = ovs_crop_boxes(height, width, config, key)
    result = np.empty((len(all_boxes), encoder.embed_dim, height, width), dtype=dtype)
    bar = tqdm(total=sum(len(b) for b in all_boxes), desc="CLIP crops (loop)", disable=not progress, leave=False)
    total = torch.zeros(encoder.embed_dim, height, width)
    count = torch.zeros(1, height, width)
    for s, boxes in enumerate(all_boxes):
        if s:
            total.zero_()
            count.zero_()
        boxes = boxes.tolist()
        for start in range(0, len(boxes), encode_chunk):
            chunk = boxes[start : start + encode_chunk]
            crops = [resize_boxes(img, [box], encoder.input_size) for box in chunk]
            embs = encoder.encode_images(torch.cat(crops) if len(crops) > 1 else crops[0]).cpu()
            for emb, (y0, x0, y1, x1) in zip(embs, chunk):
                total[:, y0:y1, x0:x1] += emb[:, None, None]
                count[:, y0:y1, x0:x1] += 1
            bar.update(len(chunk))
        torch.div(total, count, out=torch.from_numpy(result[s]))
    bar.close()
    return result


# --------------------------------------------------------------------------------------------------
# LERF tile pyramid
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LerfPyramidConfig:
    """Parameters of the LERF pyramid (defaults = LERF's).

    Attributes:
        tile_ratio_range: (smallest, largest) tile size as a fraction of the image height.
        num_levels: number of levels, tile ratios evenly spaced over the range.
        stride_scaler: stride/kernel for tiles >= 15% of the height (100% at 5%, linear between).
        batch_size: at most this many tiles per encoder call (see ``crops_per_call``).
    """

    tile_ratio_range: tuple[float, float] = (0.05, 0.5)
    num_levels: int = 7
    stride_scaler: float = 0.5
    batch_size: int = 64

    def __post_init__(self) -> None:
        lo, hi = self.tile_ratio_range
        if not 0 < lo <= hi <= 1 or self.num_levels < 1 or self.batch_size < 1 or self.stride_scaler <= 0:
            raise ConfigError("bad LERF pyramid parameters")

    def tile_ratios(self) -> list[float]:
        # float32 linspace as LERF (torch.linspace), so int(H * ratio) rounds the same way.
        return torch.linspace(*self.tile_ratio_range, self.num_levels).tolist()

    def params(self) -> dict:
        return {
            "tile_ratio_range": list(self.tile_ratio_range),
            "num_levels": self.num_levels,
            "stride_scaler": self.stride_scaler,
        }


@dataclass
class LerfLevel:
    """One pyramid level.

    Attributes:
        tile_ratio: tile size / image height.
        kernel, stride, padding: tile geometry in pixels (zero padding around the image).
        centers_y, centers_x: (n_rows,), (n_cols,) tile centres in pixel-index units (pixel k's centre is k).
        embeddings: (n_rows + 1, n_cols + 1, D) float16 unit embeddings, last row/column repeated.
    """

    tile_ratio: float
    kernel: int
    stride: int
    padding: int
    centers_y: np.ndarray
    centers_x: np.ndarray
    embeddings: np.ndarray


def lerf_level_geometry(height: int, width: int, tile_ratio: float, stride_scaler: float) -> tuple:
    """(kernel, stride, padding, centers_y, centers_x) of one LERF level."""
    kernel = max(1, int(height * tile_ratio))
    stride = max(1, int(kernel * float(np.interp(tile_ratio, [0.05, 0.15], [1.0, stride_scaler]))))
    padding = kernel // 2
    n_rows = (height + 2 * padding - kernel) // stride + 1
    n_cols = (width + 2 * padding - kernel) // stride + 1
    centers_y = (kernel - 1) / 2 - padding + stride * np.arange(n_rows, dtype=np.float64)
    centers_x = (kernel - 1) / 2 - padding + stride * np.arange(n_cols, dtype=np.float64)
    return kernel, stride, padding, centers_y, centers_x


@dataclass
class LerfPyramid:
    """The levels of one image, with LERF's per-pixel lookups."""

    levels: list[LerfLevel]

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    def interpolate(self, level: int, rows, cols) -> torch.Tensor:
        """Bilinear interpolation between the 4 tile centres around each pixel.

        Args:
            level: level index.
            rows, cols: (N,) pixel coordinates (row = y, col = x; integer pixel indices or floats).

        Returns:
            (N, D) float32 (not re-normalised, as LERF).
        """
        lv = self.levels[level]
        rows = np.asarray(torch.as_tensor(rows).cpu(), dtype=np.float64).reshape(-1)
        cols = np.asarray(torch.as_tensor(cols).cpu(), dtype=np.float64).reshape(-1)
        iy = np.clip(np.searchsorted(lv.centers_y, rows, side="left") - 1, 0, len(lv.centers_y) - 1)
        ix = np.clip(np.searchsorted(lv.centers_x, cols, side="left") - 1, 0, len(lv.centers_x) - 1)
        wy = np.clip((rows - lv.centers_y[iy]) / lv.stride, 0.0, 1.0)[:, None]
        wx = np.clip((cols - lv.centers_x[ix]) / lv.stride, 0.0, 1.0)[:, None]
        e = lv.embeddings
        top = (1 - wx) * e[iy, ix].astype(np.float32) + wx * e[iy, ix + 1].astype(np.float32)
        bottom = (1 - wx) * e[iy + 1, ix].astype(np.float32) + wx * e[iy + 1, ix + 1].astype(np.float32)
        return torch.from_numpy(((1 - wy) * top + wy * bottom).astype(np.float32))

    def _between_levels(self, rows, cols, bins: np.ndarray, weights: np.ndarray) -> torch.Tensor:
        rows = torch.as_tensor(rows).reshape(-1)
        cols = torch.as_tensor(cols).reshape(-1)
        dim = self.levels[0].embeddings.shape[-1]
        out = torch.zeros(len(rows), dim)
        for b in np.unique(bins):
            sel = np.nonzero(bins == b)[0]
            lo = self.interpolate(int(b), rows[sel], cols[sel])
            hi = self.interpolate(int(b) + 1, rows[sel], cols[sel]) if self.num_levels > 1 else lo
            w = torch.as_tensor(weights[sel], dtype=torch.float32)[:, None]
            out[torch.as_tensor(sel)] = torch.lerp(lo, hi, w)
        return out

    def at_scale(self, rows, cols, scale) -> torch.Tensor:
        """Unit embeddings at a normalised scale in [0, 1] (0 = smallest tiles, 1 = largest).

        Args:
            rows, cols: (N,) pixel coordinates.
            scale: float or (N,) in [0, 1].

        Returns:
            (N, D) float32, L2-normalised.
        """
        n = len(torch.as_tensor(rows).reshape(-1))
        s = np.broadcast_to(np.asarray(torch.as_tensor(scale, dtype=torch.float64).cpu()), (n,))
        position = np.clip(s, 0.0, 1.0) * max(self.num_levels - 1, 0)
        bins = np.minimum(np.floor(position), max(self.num_levels - 2, 0)).astype(np.int64)
        emb = self._between_levels(rows, cols, bins, position - bins)
        return F.normalize(emb, dim=-1)

    def random_scales(self, rows, cols, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """LERF's training lookup: a random adjacent level pair and a random blend per pixel.

        Returns:
            (N, D) float32 blended embeddings (not re-normalised, as LERF) and (N, 1) normalised
            scales ``(bin + u) / (num_levels - 1)`` in [0, 1].
        """
        n = len(torch.as_tensor(rows).reshape(-1))
        pairs = max(self.num_levels - 1, 1)
        bins = torch.randint(pairs, (n,), generator=generator).numpy()
        u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
        emb = self._between_levels(rows, cols, bins, u)
        scale = torch.as_tensor((bins + u) / pairs, dtype=torch.float32)[:, None]
        return emb, scale


def extract_lerf_pyramid(
    image: torch.Tensor | np.ndarray,
    encoder: ImageTextEncoder,
    config: LerfPyramidConfig | None = None,
    *,
    progress: bool = False,
) -> LerfPyramid:
    """The LERF multi-scale tile embeddings of one image.

    Args:
        image: (3, H, W) float tensor in [0, 1] or (H, W, 3) uint8 array.
        encoder: any ImageTextEncoder.
        config: pyramid parameters (default: LERF's).
        progress: tqdm bar over levels.

    Returns:
        LerfPyramid with float16 unit embeddings per level.
    """
    config = config or LerfPyramidConfig()
    img = as_image_tensor(image).to(encoder.device)
    _, height, width = img.shape
    levels = []
    for ratio in tqdm(config.tile_ratios(), desc="LERF levels", disable=not progress, leave=False):
        kernel, stride, padding, cy, cx = lerf_level_geometry(height, width, ratio, config.stride_scaler)
        padded = F.pad(img, (padding, padding, padding, padding))  # zeros, as nn.Unfold's padding
        ty, tx = np.meshgrid(stride * np.arange(len(cy)), stride * np.arange(len(cx)), indexing="ij")
        ty, tx = ty.reshape(-1), tx.reshape(-1)
        boxes = np.stack([ty, tx, ty + kernel, tx + kernel], axis=1)
        emb = torch.empty(len(boxes), encoder.embed_dim)
        per_call = crops_per_call(config.batch_size, encoder)
        for start in range(0, len(boxes), per_call):
            chunk = boxes[start : start + per_call]
            crops = resize_boxes(padded, chunk, encoder.input_size)
            emb[start : start + len(chunk)] = encoder.encode_images(crops).cpu()
        grid = F.normalize(emb, dim=-1).reshape(len(cy), len(cx), -1)
        grid = torch.cat([grid, grid[:, -1:]], dim=1)
        grid = torch.cat([grid, grid[-1:]], dim=0)
        levels.append(LerfLevel(ratio, kernel, stride, padding, cy, cx, grid.numpy().astype(np.float16)))
    return LerfPyramid(levels)
