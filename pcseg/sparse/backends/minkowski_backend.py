"""The ``minkowski`` backend: MinkowskiEngine 0.5.4's coordinate manager and convolution functions.

pcseg modules own their kernels in the canonical layout ``(K, C_in, C_out)`` (x-slowest offsets,
:mod:`pcseg.sparse.offsets`); this adapter permutes them to MinkowskiEngine's x-fastest order on
every call (an index_select, so gradients flow back into the canonical tensor) and calls
``MinkowskiConvolutionFunction`` / ``MinkowskiConvolutionTransposeFunction`` directly on features and
coordinate-map keys. Rows at stride 1 are the caller's rows; rows at coarser strides follow
MinkowskiEngine's own coordinate maps.

MinkowskiEngine is imported only through :func:`import_minkowski`, which applies the Python >= 3.10
shim (``collections.Sequence`` was removed) and turns an absent or broken install into a
:class:`~pcseg.utils.errors.MissingDependencyError` with the install hint.
"""

from __future__ import annotations

import collections
import collections.abc
import functools
import warnings

import torch

from pcseg.sparse.offsets import minkowski_permutation
from pcseg.utils.errors import MissingDependencyError

INSTALL_HINT = (
    "Run scripts/setup.sh: it builds MinkowskiEngine 0.5.4 from the PyPI sdist (CPU, or CUDA when a GPU "
    "is visible) and caches the wheel; or use backend='torch', which needs nothing."
)


def apply_collections_shim() -> None:
    """MinkowskiEngine 0.5.4 does ``from collections import Sequence`` (gone since Python 3.10)."""
    for name in ("Sequence", "Mapping", "MutableMapping", "Iterable", "Callable"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


@functools.lru_cache(maxsize=None)
def import_minkowski():
    """Import MinkowskiEngine (with the collections shim) or raise MissingDependencyError."""
    apply_collections_shim()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*compiled with CPU_ONLY.*")
            import MinkowskiEngine as ME  # noqa: N817 - the library's own alias
            from MinkowskiEngineBackend._C import ConvolutionMode
    except ImportError as exc:
        raise MissingDependencyError(
            "MinkowskiEngine",
            "the 'minkowski' sparse backend",
            f"({type(exc).__name__}: {exc}) {INSTALL_HINT}",
        ) from exc
    ME.ConvolutionMode = ConvolutionMode  # not re-exported by 0.5.4's __init__
    return ME


def minkowski_available() -> bool:
    """True when MinkowskiEngine imports (it is never imported by ``import pcseg``)."""
    try:
        import_minkowski()
    except MissingDependencyError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _permutation(kernel_size: int, device: torch.device) -> torch.Tensor:
    return minkowski_permutation(kernel_size).to(device)


class MinkowskiContext:
    """One MinkowskiEngine coordinate manager per batch; maps keyed by tensor stride.

    Args:
        coords: (M, 4) int32 ``[b, x, y, z]``, distinct rows, on the features' device.
    """

    backend = "minkowski"

    def __init__(self, coords: torch.Tensor):
        ME = import_minkowski()  # noqa: N806
        self._ME = ME
        self.device = coords.device
        if coords.is_cuda and not ME.is_cuda_available():
            raise MissingDependencyError(
                "MinkowskiEngine with CUDA",
                "the 'minkowski' backend on a CUDA device",
                "This MinkowskiEngine was compiled with CPU_ONLY; rebuild it on a GPU machine "
                "(PCSEG_ME_BUILD=cuda scripts/setup.sh) or keep the tensors on the CPU.",
            )
        map_type = ME.CoordinateMapType.GPU if coords.is_cuda else ME.CoordinateMapType.CPU
        # The manager calls omp_set_num_threads(num_threads): pass torch's own count so that creating
        # it does not change torch's intra-op parallelism behind the caller's back.
        self.manager = ME.CoordinateManager(
            D=3, coordinate_map_type=map_type, num_threads=torch.get_num_threads()
        )
        key, (unique_map, _) = self.manager.insert_and_map(coords.contiguous(), [1, 1, 1], "")
        # Distinct input rows are inserted in order, so map row i is input row i.
        if unique_map.numel() != coords.shape[0] or not torch.equal(
            unique_map.cpu(), torch.arange(coords.shape[0], dtype=unique_map.dtype)
        ):
            raise RuntimeError(
                "MinkowskiEngine reordered distinct input coordinates; cannot keep rows aligned"
            )
        self._keys = {1: key}
        self._coords: dict[int, torch.Tensor] = {1: coords}
        self._generators = {
            "subm": ME.KernelGenerator(kernel_size=3, stride=1, dilation=1, dimension=3),
            "down": ME.KernelGenerator(kernel_size=2, stride=2, dilation=1, dimension=3),
            "up": ME.KernelGenerator(kernel_size=2, stride=2, dilation=1, is_transpose=True, dimension=3),
        }

    def _key(self, stride: int):
        try:
            return self._keys[stride]
        except KeyError:
            raise ValueError(
                f"no voxels at tensor stride {stride} in this batch (strides built: {sorted(self._keys)})"
            ) from None

    def coordinates(self, stride: int) -> torch.Tensor:
        if stride not in self._coords:
            self._coords[stride] = self.manager.get_coordinates(self._key(stride)).to(self.device)
        return self._coords[stride]

    def num_rows(self, stride: int) -> int:
        return int(self.manager.size(self._key(stride)))

    def _kernel(self, weight: torch.Tensor, kernel_size: int) -> torch.Tensor:
        return weight.index_select(0, _permutation(kernel_size, weight.device))

    def submanifold_conv(self, feats: torch.Tensor, stride: int, weight: torch.Tensor) -> torch.Tensor:
        ME = self._ME  # noqa: N806
        key = self._key(stride)
        return ME.MinkowskiConvolutionFunction.apply(
            feats.contiguous(),
            self._kernel(weight, 3),
            self._generators["subm"],
            ME.ConvolutionMode.DEFAULT,
            key,
            key,
            self.manager,
        )

    def downsample_conv(self, feats: torch.Tensor, stride: int, weight: torch.Tensor) -> torch.Tensor:
        ME = self._ME  # noqa: N806
        in_key = self._key(stride)
        out_key = self._keys.get(2 * stride)
        if out_key is None:
            out_key = ME.CoordinateMapKey(4)  # set by MinkowskiEngine: floor(c / 2s) * 2s
        out = ME.MinkowskiConvolutionFunction.apply(
            feats.contiguous(),
            self._kernel(weight, 2),
            self._generators["down"],
            ME.ConvolutionMode.DEFAULT,
            in_key,
            out_key,
            self.manager,
        )
        self._keys[2 * stride] = out_key
        return out

    def upsample_conv(self, feats: torch.Tensor, stride: int, weight: torch.Tensor) -> torch.Tensor:
        ME = self._ME  # noqa: N806
        if stride % 2 or stride // 2 not in self._keys:
            raise ValueError(
                f"cannot upsample from tensor stride {stride}: no finer voxels at stride {stride // 2}"
            )
        return ME.MinkowskiConvolutionTransposeFunction.apply(
            feats.contiguous(),
            self._kernel(weight, 2),
            self._generators["up"],
            ME.ConvolutionMode.DEFAULT,
            self._key(stride),
            self._keys[stride // 2],
            self.manager,
        )
