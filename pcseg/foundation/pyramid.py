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
from pcseg.foundation.resize import resize_batch, resize_boxes
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
        batch_size: crops per encoder call (does not change the result beyond float rounding).
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
    channel_chunk: int = 64,
) -> np.ndarray:
    """Per-pixel mean of the embeddings of all boxes containing the pixel.

    Box sums use 2D difference arrays: +e at (y0, x0) and (y1, x1), -e at (y0, x1) and (y1, x0) (corners
    on the far image border are dropped: they only affect pixels outside), then cumulative sums along
    both axes, a chunk of channels at a time. The cost is O(n·D + D·h·w) whatever the overlap, with no
    per-box loop. Sums run in float32 (float64 for float64 input); a prefix sum only ever holds the
    sum of the boxes covering one row segment, so the rounding error stays ~1e-6 relative, far below
    the float16 storage precision. A float32 ``out`` is computed in place (no extra buffer or copy).

    Args:
        embeddings: (n, D) float.
        boxes: (n, 4) int ``[y0, x0, y1, x1]``.
        height, width: output size.
        out: optional (D, height, width) array to write into (any float dtype, e.g. a float16 memmap).
        channel_chunk: channels per pass (bounds extra memory to chunk·h·w·4 bytes).

    Returns:
        (D, height, width) array (``out`` if given, else float32); pixels covered by no box are 0.
    """
    n, dim = embeddings.shape
    boxes = np.asarray(boxes, dtype=np.int64)
    if out is None:
        out = np.empty((dim, height, width), dtype=np.float32)
    if out.shape != (dim, height, width):
        raise ValueError(f"out has shape {out.shape}, expected {(dim, height, width)}")
    acc = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
    y0, x0, y1, x1 = boxes.T
    ys = np.concatenate([y0, y1, y0, y1])
    xs = np.concatenate([x0, x1, x1, x0])
    keep = (ys < height) & (xs < width)
    corners = torch.as_tensor((ys * width + xs)[keep])
    signs = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=acc).repeat_interleave(n)[torch.as_tensor(keep)]
    which = torch.as_tensor(np.tile(np.arange(n), 4)[keep])  # box of each kept corner
    count = torch.zeros(height * width, dtype=torch.float64).index_add_(0, corners, signs.double())
    count = count.view(height, width).cumsum(1).cumsum(0)
    inv = torch.where(count > 0, 1.0 / count.clamp(min=1.0), torch.zeros_like(count)).to(acc)
    values = embeddings.detach().to("cpu", acc)[which].T.contiguous() * signs  # (D, kept corners)
    target = torch.from_numpy(out) if out.flags.writeable else None  # shares memory (memmaps too)
    in_place = target is not None and target.dtype == acc
    chunk = min(channel_chunk, dim)
    buf = None if in_place else torch.empty(chunk, height, width, dtype=acc)
    for c0 in range(0, dim, chunk):
        c1 = min(dim, c0 + chunk)
        block = target[c0:c1] if in_place else buf[: c1 - c0]
        block.zero_()
        block.view(c1 - c0, -1).index_add_(1, corners, values[c0:c1])
        block.cumsum_(2)
        for y in range(1, height):  # prefix sum over rows: one vectorised add per row beats cumsum_(1)
            block[:, y].add_(block[:, y - 1])
        block.mul_(inv)
        if in_place:
            continue
        if target is not None:
            target[c0:c1].copy_(block)  # torch's float16 cast is vectorised (numpy's and mixed-dtype mul are not)
        else:
            out[c0:c1] = block.numpy()
    return out


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
    bar = tqdm(total=total, desc="CLIP crops", unit="crop", disable=not progress, leave=False)
    for s, boxes in enumerate(all_boxes):
        emb = torch.empty(len(boxes), encoder.embed_dim, dtype=torch.float32)
        for start in range(0, len(boxes), config.batch_size):
            chunk = boxes[start : start + config.batch_size]
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
    progress: bool = False,
) -> np.ndarray:
    """Reference implementation, one crop at a time as the official script does.

    Same boxes and jitter as ``extract_ovs_hierarchy``; each crop is cut, resized and encoded alone,
    and its embedding is added to every pixel of its box (float32 sums and counts). Slow: used by the
    tests and the benchmark to check the batched version.
    """
    img, height, width, config, key = _prepare(image, encoder, config, key)
    all_boxes = ovs_crop_boxes(height, width, config, key)
    result = np.empty((len(all_boxes), encoder.embed_dim, height, width), dtype=dtype)
    bar = tqdm(total=sum(len(b) for b in all_boxes), desc="CLIP crops (loop)", disable=not progress, leave=False)
    for s, boxes in enumerate(all_boxes):
        total = torch.zeros(encoder.embed_dim, height, width)
        count = torch.zeros(1, height, width)
        for y0, x0, y1, x1 in boxes.tolist():
            crop = resize_batch(img[None, :, y0:y1, x0:x1], encoder.input_size)
            emb = encoder.encode_images(crop)[0].cpu()
            total[:, y0:y1, x0:x1] += emb[:, None, None]
            count[:, y0:y1, x0:x1] += 1
            bar.update(1)
        result[s] = (total / count).numpy().astype(dtype)
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
        batch_size: tiles per encoder call.
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
        for start in range(0, len(boxes), config.batch_size):
            chunk = boxes[start : start + config.batch_size]
            crops = resize_boxes(padded, chunk, encoder.input_size)
            emb[start : start + len(chunk)] = encoder.encode_images(crops).cpu()
        grid = F.normalize(emb, dim=-1).reshape(len(cy), len(cx), -1)
        grid = torch.cat([grid, grid[:, -1:]], dim=1)
        grid = torch.cat([grid, grid[-1:]], dim=0)
        levels.append(LerfLevel(ratio, kernel, stride, padding, cy, cx, grid.numpy().astype(np.float16)))
    return LerfPyramid(levels)
