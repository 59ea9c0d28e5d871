"""MinkowskiEngine adapter: same results as the dense reference and as the torch backend."""

from __future__ import annotations

import pytest
import torch
from sparse_reference import (
    dense_downsample,
    dense_submanifold,
    dense_upsample,
    random_coords,
    random_feats,
    random_weight,
)

from pcseg.sparse import DownsampleConv3d, SparseTensor, SubmanifoldConv3d, UpsampleConv3d
from pcseg.sparse.backends.minkowski_backend import apply_collections_shim
from pcseg.sparse.offsets import minkowski_permutation

apply_collections_shim()  # MinkowskiEngine 0.5.4 cannot be imported on Python >= 3.10 without it
ME = pytest.importorskip("MinkowskiEngine")
pytestmark = pytest.mark.minkowski

SIZE = 8


def _layer(cls, weight):
    layer = cls(weight.shape[1], weight.shape[2]).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def test_native_minkowski_layer_with_converted_kernel_matches_dense():
    """The documented conversion, checked on MinkowskiEngine's own module (not through pcseg)."""
    coords = random_coords(1, 2, SIZE, 120)
    feats = random_feats(2, len(coords), 3)
    w = random_weight(3, 27, 3, 4)
    conv = ME.MinkowskiConvolution(3, 4, kernel_size=3, dimension=3).double()
    with torch.no_grad():
        conv.kernel.copy_(w[minkowski_permutation(3)])
    out = conv(ME.SparseTensor(feats, coordinates=coords))
    # MinkowskiEngine may return rows in its own order: evaluate the reference on its coordinates
    rows = {tuple(c): i for i, c in enumerate(coords.tolist())}
    perm = torch.tensor([rows[tuple(c)] for c in out.C.tolist()])
    ref = dense_submanifold(coords, feats, w, 1, 2, SIZE)[perm]
    torch.testing.assert_close(out.F, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("batch,count,c_in,c_out", [(1, 40, 1, 2), (2, 200, 4, 3), (3, 400, 8, 8)])
def test_layers_match_dense_and_torch_backend(batch, count, c_in, c_out):
    coords = random_coords(4, batch, SIZE, count)
    results = {}
    for backend in ("torch", "minkowski"):
        feats = random_feats(5, len(coords), c_in).requires_grad_()
        x = SparseTensor.from_batch(coords, feats, backend=backend)
        s = _layer(SubmanifoldConv3d, random_weight(6, 27, c_in, c_out))
        d = _layer(DownsampleConv3d, random_weight(7, 8, c_out, c_out))
        u = _layer(UpsampleConv3d, random_weight(8, 8, c_out, c_in))
        y = s(x)
        z = d(y)
        v = u(z)
        assert torch.equal(v.coords, coords)  # stride-1 rows are the input rows
        loss = (y.feats * random_feats(9, len(y), c_out)).sum() + (v.feats**2).sum() + z.feats.sum()
        loss.backward()
        order = torch.argsort((z.coords.long() * torch.tensor([1 << 30, 1 << 20, 1 << 10, 1])).sum(1))
        results[backend] = dict(
            y=y.feats,
            z=z.feats[order],
            zc=z.coords[order],
            v=v.feats,
            gx=feats.grad,
            gs=s.weight.grad,
            gd=d.weight.grad,
            gu=u.weight.grad,
        )
        if backend == "minkowski":
            ref_y = dense_submanifold(coords, feats.detach(), s.weight.detach(), 1, batch, SIZE)
            torch.testing.assert_close(y.feats.detach(), ref_y, rtol=1e-10, atol=1e-10)
            ref_z = dense_downsample(coords, y.feats.detach(), d.weight.detach(), 1, batch, SIZE, z.coords)
            torch.testing.assert_close(z.feats.detach(), ref_z, rtol=1e-10, atol=1e-10)
            ref_v = dense_upsample(z.coords, z.feats.detach(), u.weight.detach(), 2, batch, SIZE // 2, coords)
            torch.testing.assert_close(v.feats.detach(), ref_v, rtol=1e-10, atol=1e-10)
    a, b = results["torch"], results["minkowski"]
    assert torch.equal(a["zc"], b["zc"])  # the same coarse voxels (rows in each engine's own order)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-10, atol=1e-10, msg=key)


def test_negative_coordinates_agree_with_torch_backend():
    coords = random_coords(10, 2, SIZE, 150, low=-5)
    feats = random_feats(11, len(coords), 2)
    outs = {}
    for backend in ("torch", "minkowski"):
        x = SparseTensor.from_batch(coords, feats, backend=backend)
        z = _layer(DownsampleConv3d, random_weight(12, 8, 2, 3))(x)
        z2 = _layer(DownsampleConv3d, random_weight(13, 8, 3, 3))(z)
        v = _layer(UpsampleConv3d, random_weight(14, 8, 3, 2))(z)
        order = torch.argsort((z2.coords.long() * torch.tensor([1 << 40, 1 << 26, 1 << 13, 1])).sum(1))
        outs[backend] = (z2.coords[order], z2.feats[order], v.feats)
    for a, b in zip(outs["torch"], outs["minkowski"]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
