"""Sparse 3D convolution for the segmentation U-Nets.

```python
from pcseg.sparse import SparseTensor, available_backends
x = SparseTensor.from_batch(coords, feats, backend="torch")   # coords (M, 4) int32 [b, x, y, z]
```

Backends: ``torch`` (pure PyTorch, always there, deterministic), ``minkowski`` (MinkowskiEngine,
if installed) and ``spconv`` (CUDA only). Layers in :mod:`pcseg.sparse.nn` store kernels as
``(K, C_in, C_out)`` in one canonical offset order (:mod:`pcseg.sparse.offsets`), so a model's
``state_dict`` is the same whichever backend runs it. See docs/sparse.md.
"""

from __future__ import annotations

from pcseg.sparse.backends import BACKENDS, BackendError, available_backends
from pcseg.sparse.mapping import voxel_to_point
from pcseg.sparse.nn import (
    BatchNorm,
    DownsampleConv3d,
    PointwiseConv3d,
    ReLU,
    SubmanifoldConv3d,
    UpsampleConv3d,
)
from pcseg.sparse.tensor import SparseInputError, SparseTensor, cat

__all__ = [
    "BACKENDS",
    "BackendError",
    "BatchNorm",
    "DownsampleConv3d",
    "PointwiseConv3d",
    "ReLU",
    "SparseInputError",
    "SparseTensor",
    "SubmanifoldConv3d",
    "UpsampleConv3d",
    "available_backends",
    "cat",
    "voxel_to_point",
]
