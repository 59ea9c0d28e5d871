"""SparseTensor construction, errors a user can cause, offsets, voxel_to_point."""

from __future__ import annotations

import sys

import pytest
import torch
from sparse_reference import random_coords, random_feats

from pcseg.sparse import (
    BackendError,
    DownsampleConv3d,
    SparseInputError,
    SparseTensor,
    SubmanifoldConv3d,
    UpsampleConv3d,
    available_backends,
    cat,
    voxel_to_point,
)
from pcseg.sparse.offsets import kernel_offsets, minkowski_permutation, mirror_permutation
from pcseg.utils.errors import MissingDependencyError, PcsegError


def _batch(n=50):
    coords = random_coords(1, 2, 6, n)
    return coords, random_feats(2, len(coords), 3, torch.float32)


def test_rows_and_coordinates_kept_at_stride_one():
    coords, feats = _batch()
    x = SparseTensor.from_batch(coords.long(), feats)
    assert x.stride == 1 and x.backend == "torch" and len(x) == len(coords)
    assert x.coords.dtype == torch.int32 and torch.equal(x.coords, coords)
    assert x.feats is feats or torch.equal(x.feats, feats)
    assert "stride=1" in repr(x)


@pytest.mark.parametrize(
    "coords,feats,match",
    [
        (torch.zeros(3, 3, dtype=torch.int32), torch.zeros(3, 1), r"shape \(M, 4\)"),
        (torch.zeros(3, 4), torch.zeros(3, 1), "integer"),
        (torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0]]), torch.zeros(3, 1), "M = 2"),
        (torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0]]), torch.zeros(2, 1, dtype=torch.int64), "floating"),
        (torch.tensor([[0, 0, 0, 0], [-1, 1, 0, 0]]), torch.zeros(2, 1), "batch indices"),
        (
            torch.tensor([[0, 1, 2, 3], [0, 5, 5, 5], [0, 1, 2, 3]]),
            torch.zeros(3, 1),
            r"duplicate voxel coordinate \[0, 1, 2, 3\] \(row 2\)",
        ),
        (torch.zeros(0, 4, dtype=torch.int32), torch.zeros(0, 1), "empty"),
        (torch.tensor([[0, 2**31 - 1, 0, 0]]), torch.zeros(1, 1), "int32 range"),
    ],
)
def test_malformed_input_is_one_line_error(coords, feats, match):
    with pytest.raises(SparseInputError, match=match) as info:
        SparseTensor.from_batch(coords, feats)
    assert isinstance(info.value, PcsegError) and "\n" not in str(info.value)


def test_unknown_backend():
    coords, feats = _batch()
    with pytest.raises(BackendError, match="unknown sparse backend 'mink'.*torch, minkowski, spconv"):
        SparseTensor.from_batch(coords, feats, backend="mink")


def test_spconv_refused_on_cpu_without_importing_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "spconv", None)  # importing spconv would fail: the check must come first
    coords, feats = _batch()
    with pytest.raises(BackendError) as info:
        SparseTensor.from_batch(coords, feats, backend="spconv")
    msg = str(info.value)
    assert "CUDA only" in msg and "silently wrong" in msg and "backend='torch'" in msg
    assert "spconv" not in available_backends("cpu")


def test_spconv_missing_on_cuda_names_the_install(monkeypatch):
    from pcseg.sparse.backends import spconv_backend

    monkeypatch.setitem(sys.modules, "spconv", None)
    spconv_backend.import_spconv.cache_clear()
    try:
        spconv_backend.check_spconv_device(torch.device("cuda"))  # the device is fine...
        with pytest.raises(MissingDependencyError, match="pip install spconv-cu"):  # ...the library is not
            spconv_backend.import_spconv()
    finally:
        spconv_backend.import_spconv.cache_clear()


def test_missing_minkowski_names_setup_script(monkeypatch):
    from pcseg.sparse.backends import minkowski_backend

    monkeypatch.setitem(sys.modules, "MinkowskiEngine", None)
    minkowski_backend.import_minkowski.cache_clear()
    try:
        coords, feats = _batch()
        with pytest.raises(MissingDependencyError, match="scripts/setup.sh"):
            SparseTensor.from_batch(coords, feats, backend="minkowski")
        assert available_backends("cpu") == ["torch"]
    finally:
        minkowski_backend.import_minkowski.cache_clear()


def test_cat_and_stride_errors():
    coords, feats = _batch()
    x = SparseTensor.from_batch(coords, feats)
    y = SparseTensor.from_batch(coords, feats)
    assert cat(x, x).num_channels == 6
    with pytest.raises(ValueError, match="different batches"):
        cat(x, y)
    z = DownsampleConv3d(3, 3)(x)
    with pytest.raises(ValueError, match="strides differ"):
        cat(x, z)
    with pytest.raises(ValueError, match="cannot upsample from tensor stride 1"):
        UpsampleConv3d(3, 3)(x)
    with pytest.raises(ValueError, match="expected 4 input channels, got 3"):
        SubmanifoldConv3d(4, 2)(x)
    with pytest.raises(ValueError, match="no voxels at tensor stride 4"):
        x.context.coordinates(4)


def test_offset_orders():
    k3 = kernel_offsets(3)
    assert k3.shape == (27, 3) and k3[0].tolist() == [-1, -1, -1] and k3[1].tolist() == [-1, -1, 0]
    assert k3[13].tolist() == [0, 0, 0] and k3[9].tolist() == [0, -1, -1]
    assert torch.equal(k3[mirror_permutation(3)], -k3)
    k2 = kernel_offsets(2)
    assert k2.tolist() == [
        [0, 0, 0],
        [0, 0, 1],
        [0, 1, 0],
        [0, 1, 1],
        [1, 0, 0],
        [1, 0, 1],
        [1, 1, 0],
        [1, 1, 1],
    ]
    for k in (2, 3):
        p = minkowski_permutation(k)
        assert torch.equal(p[p], torch.arange(k**3))  # its own inverse
        me_order = kernel_offsets(k)[p]  # MinkowskiEngine enumerates x fastest
        assert me_order[1].tolist()[0] == me_order[0].tolist()[0] + 1
        flat = (me_order - me_order.min()) @ torch.tensor([1, k, k * k])
        assert torch.equal(flat, torch.arange(k**3))


def test_voxel_to_point():
    feats = torch.arange(12.0).view(4, 3).requires_grad_()
    inverse = torch.tensor([2, -1, 0, 2, 3])
    out = voxel_to_point(feats, inverse, fill_value=-7.0)
    assert out.tolist() == [[6, 7, 8], [-7, -7, -7], [0, 1, 2], [6, 7, 8], [9, 10, 11]]
    out.sum().backward()
    assert feats.grad[:, 0].tolist() == [1, 0, 2, 1]
    assert torch.equal(voxel_to_point(feats, torch.tensor([1, 0])), feats[[1, 0]])
    with pytest.raises(ValueError, match=r"\[-1, 4\].*4 voxels"):
        voxel_to_point(feats, torch.tensor([0, 4, -1]))
    with pytest.raises(ValueError, match="1-D integer"):
        voxel_to_point(feats, torch.tensor([0.0]))
