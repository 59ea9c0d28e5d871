"""torch backend against dense ``conv3d`` / ``conv_transpose3d`` in float64 (PyTorch3D habit)."""

from __future__ import annotations

import itertools

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
from pcseg.sparse.backends.torch_backend import (
    DownsampleConvFunction,
    PairList,
    SubmanifoldConvFunction,
    SubmanifoldPairsFunction,
    UpsampleConvFunction,
    Workspace,
)

SIZE = 8  # grid edge at stride 1 (even, so stride-2 dense convs cover every voxel)
CASES = list(itertools.product([1, 2], [5, 60, 300], [(1, 1), (3, 5), (16, 8)], [None, 0]))


def _conv(cls, weight):
    layer = cls(weight.shape[1], weight.shape[2]).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


@pytest.mark.parametrize("algorithm", ["gather", "pairs"])
@pytest.mark.parametrize("batch,count,channels,dense_limit", CASES)
def test_submanifold_matches_dense_conv3d(batch, count, channels, dense_limit, algorithm):
    c_in, c_out = channels
    coords = random_coords(1, batch, SIZE, count)
    feats = random_feats(2, len(coords), c_in).requires_grad_()
    weight = random_weight(3, 27, c_in, c_out).requires_grad_()
    x = SparseTensor.from_batch(coords, feats, dense_grid_limit=dense_limit, algorithm=algorithm)
    out = SubmanifoldConv3d(c_in, c_out).double()
    out.weight = torch.nn.Parameter(weight.detach().clone())
    y = out(x)
    ref = dense_submanifold(coords, feats, weight, 1, batch, SIZE)
    torch.testing.assert_close(y.feats, ref, rtol=1e-12, atol=1e-12)
    assert torch.equal(y.coords, coords)
    # gradients against the dense reference's autograd
    g = random_feats(4, len(coords), c_out)
    gf, gw = torch.autograd.grad((y.feats * g).sum(), [feats, out.weight])
    rf, rw = torch.autograd.grad((ref * g).sum(), [feats, weight])
    torch.testing.assert_close(gf, rf, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, rw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch,count,channels,dense_limit", CASES)
def test_downsample_and_upsample_match_dense(batch, count, channels, dense_limit):
    c_in, c_out = channels
    coords = random_coords(5, batch, SIZE, count)
    feats = random_feats(6, len(coords), c_in).requires_grad_()
    w_down = random_weight(7, 8, c_in, c_out).requires_grad_()
    w_up = random_weight(8, 8, c_out, c_in).requires_grad_()
    x = SparseTensor.from_batch(coords, feats, dense_grid_limit=dense_limit)
    down = _conv(DownsampleConv3d, w_down.detach())
    up = _conv(UpsampleConv3d, w_up.detach())
    z = down(x)
    assert z.stride == 2
    # coarse voxels: exactly the distinct floor(c / 2) * 2
    expected = torch.unique(torch.cat([coords[:, :1], coords[:, 1:] // 2 * 2], 1), dim=0)
    assert torch.equal(torch.unique(z.coords, dim=0), expected) and len(z) == len(expected)
    ref_z = dense_downsample(coords, feats, w_down, 1, batch, SIZE, z.coords)
    torch.testing.assert_close(z.feats, ref_z, rtol=1e-12, atol=1e-12)

    coarse_in = random_feats(9, len(z), c_out).requires_grad_()
    u = up(z.replace_feats(coarse_in))
    assert u.stride == 1 and torch.equal(u.coords, coords)
    ref_u = dense_upsample(z.coords, coarse_in, w_up, 2, batch, SIZE // 2, coords)
    torch.testing.assert_close(u.feats, ref_u, rtol=1e-12, atol=1e-12)

    gz = random_feats(10, len(z), c_out)
    gu = random_feats(11, len(coords), c_in)
    got = torch.autograd.grad(
        (z.feats * gz).sum() + (u.feats * gu).sum(), [feats, down.weight, coarse_in, up.weight]
    )
    ref = torch.autograd.grad((ref_z * gz).sum() + (ref_u * gu).sum(), [feats, w_down, coarse_in, w_up])
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["gather", "pairs"])
@pytest.mark.parametrize("stride", [2, 4])
def test_coarse_strides_match_dense(stride, algorithm):
    """Layers at stride s > 1 (coordinates multiples of s) behave like dense convs on the s-grid."""
    batch, size = 2, 8
    coords = random_coords(12, batch, size, 150, stride=stride)
    # reach stride s by downsampling a stride-1 tensor whose voxels are exactly these
    x = SparseTensor.from_batch(coords, random_feats(13, len(coords), 2), algorithm=algorithm)
    level = x
    while level.stride < stride:
        level = _conv(DownsampleConv3d, random_weight(14, 8, 2, 2))(level)
    assert torch.equal(torch.unique(level.coords, dim=0), torch.unique(coords, dim=0))
    feats = random_feats(15, len(level), 4)
    w = random_weight(16, 27, 4, 3)
    y = _conv(SubmanifoldConv3d, w)(level.replace_feats(feats))
    ref = dense_submanifold(level.coords, feats, w, stride, batch, size)
    torch.testing.assert_close(y.feats, ref, rtol=1e-12, atol=1e-12)
    wd = random_weight(17, 8, 4, 2)
    z = _conv(DownsampleConv3d, wd)(level.replace_feats(feats))
    assert z.stride == 2 * stride and bool((z.coords[:, 1:] % (2 * stride) == 0).all())
    ref_z = dense_downsample(level.coords, feats, wd, stride, batch, size, z.coords)
    torch.testing.assert_close(z.feats, ref_z, rtol=1e-12, atol=1e-12)


def test_negative_coordinates_floor_to_parents():
    """Parents are floor(c / 2s) * 2s also below zero; results are translation-equivariant."""
    coords = random_coords(18, 2, 8, 120)
    shift = torch.tensor([0, -8, -4, -12], dtype=torch.int32)  # multiples of 4: same parent grouping
    feats = random_feats(19, len(coords), 3)
    w_s, w_d = random_weight(20, 27, 3, 4), random_weight(21, 8, 3, 4)
    outs = []
    for c in (coords, coords + shift):
        x = SparseTensor.from_batch(c, feats)
        y = _conv(SubmanifoldConv3d, w_s)(x)
        z = _conv(DownsampleConv3d, w_d)(x)
        z2 = _conv(DownsampleConv3d, random_weight(22, 8, 4, 2))(z)
        outs.append((y.feats, z, z2))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=0, atol=0)
    for k in (1, 2):
        a, b = outs[0][k], outs[1][k]
        assert torch.equal(a.coords + shift, b.coords)  # same rows, shifted coordinates
        torch.testing.assert_close(a.feats, b.feats, rtol=0, atol=0)
    neg = outs[1][1].coords
    assert bool((neg[:, 1:] % 2 == 0).all()) and int(neg[:, 1:].min()) < 0


def test_gradcheck_tiny():
    coords = random_coords(23, 2, 4, 10)
    x = SparseTensor.from_batch(coords, random_feats(24, len(coords), 2))
    ctx = x.context
    nbr = ctx.neighbours(1)
    down = ctx.downsample(1)
    n_coarse = down.children.shape[0]
    f = random_feats(25, len(coords), 2).requires_grad_()
    w3 = random_weight(26, 27, 2, 3).requires_grad_()
    w2 = random_weight(27, 8, 2, 3).requires_grad_()
    fc = random_feats(28, n_coarse, 3).requires_grad_()
    w2t = random_weight(29, 8, 3, 2).requires_grad_()
    ws = Workspace()
    pairs = PairList(nbr)
    assert torch.autograd.gradcheck(lambda a, b: SubmanifoldConvFunction.apply(a, b, nbr, ws), (f, w3))
    assert torch.autograd.gradcheck(lambda a, b: SubmanifoldPairsFunction.apply(a, b, pairs, ws), (f, w3))
    assert torch.autograd.gradcheck(
        lambda a, b: DownsampleConvFunction.apply(a, b, down.children, down.slot, ws), (f, w2)
    )
    assert torch.autograd.gradcheck(
        lambda a, b: UpsampleConvFunction.apply(a, b, down.children, down.slot, ws), (fc, w2t)
    )


def test_lookup_paths_agree():
    """Dense int32 grid and sorted-key searchsorted give identical kernel maps."""
    coords = random_coords(30, 3, 12, 400)
    feats = random_feats(31, len(coords), 1)
    a = SparseTensor.from_batch(coords, feats).context
    b = SparseTensor.from_batch(coords, feats, dense_grid_limit=0).context
    assert a._levels[1].packing.num_cells > 0
    assert torch.equal(a.neighbours(1), b.neighbours(1))
    assert torch.equal(a.downsample(1).children, b.downsample(1).children)
    assert torch.equal(a.neighbours(2), b.neighbours(2))


def test_neighbour_table_by_brute_force():
    coords = random_coords(32, 2, 5, 40)
    x = SparseTensor.from_batch(coords, random_feats(33, len(coords), 1))
    nbr = x.context.neighbours(1)
    n = len(coords)
    rows = {tuple(c): i for i, c in enumerate(coords.tolist())}
    from pcseg.sparse.offsets import kernel_offsets

    for i, c in enumerate(coords.tolist()):
        for k, d in enumerate(kernel_offsets(3).tolist()):
            q = (c[0], c[1] + d[0], c[2] + d[1], c[3] + d[2])
            assert int(nbr[i, k]) == rows.get(q, n)


@pytest.mark.parametrize("algorithm", ["gather", "pairs"])
@pytest.mark.parametrize("threads", [1, 2])
def test_bitwise_deterministic(algorithm, threads):
    coords = random_coords(34, 2, 16, 1500)
    torch.set_num_threads(threads)  # restored by the conftest fixture

    def run():
        feats = random_feats(35, len(coords), 8, torch.float32).requires_grad_()
        x = SparseTensor.from_batch(coords, feats, algorithm=algorithm)
        torch.manual_seed(0)
        s = SubmanifoldConv3d(8, 16)
        d = DownsampleConv3d(16, 16)
        u = UpsampleConv3d(16, 8)
        y = u(d(s(x)))
        loss = (y.feats**2).sum()
        loss.backward()
        return [y.feats.detach(), feats.grad, s.weight.grad, d.weight.grad, u.weight.grad]

    for a, b in zip(run(), run()):
        assert torch.equal(a, b)


def test_kernel_maps_cached_per_stride():
    coords = random_coords(36, 1, 8, 100)
    x = SparseTensor.from_batch(coords, random_feats(37, len(coords), 2))
    s1, s2 = SubmanifoldConv3d(2, 2).double(), SubmanifoldConv3d(2, 2).double()
    s2(s1(x))
    nbr = x.context.neighbours(1)
    s1(x)
    assert x.context.neighbours(1) is nbr
    z1 = DownsampleConv3d(2, 2).double()(x)
    z2 = DownsampleConv3d(2, 3).double()(x)
    assert z1.coords is z2.coords


def test_algorithms_agree_and_unknown_is_refused():
    coords = random_coords(38, 2, 10, 500)
    feats = random_feats(39, len(coords), 5)
    conv = _conv(SubmanifoldConv3d, random_weight(40, 27, 5, 7))
    a = conv(SparseTensor.from_batch(coords, feats, algorithm="gather")).feats
    b = conv(SparseTensor.from_batch(coords, feats, algorithm="pairs")).feats
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert SparseTensor.from_batch(coords, feats).context.algorithm == "pairs"  # auto on the CPU
    with pytest.raises(ValueError, match="unknown torch-backend algorithm 'fast'"):
        SparseTensor.from_batch(coords, feats, algorithm="fast")


def test_workspace_never_aliases_outputs():
    """Outputs of consecutive layers stay intact while later layers reuse the scratch buffers."""
    coords = random_coords(41, 1, 10, 400)
    for algorithm in ("gather", "pairs"):
        x = SparseTensor.from_batch(coords, random_feats(42, len(coords), 4), algorithm=algorithm)
        s1, s2 = (
            _conv(SubmanifoldConv3d, random_weight(43, 27, 4, 4)),
            _conv(SubmanifoldConv3d, random_weight(44, 27, 4, 4)),
        )
        y1 = s1(x)
        kept = y1.feats.clone()
        s2(y1)
        _conv(DownsampleConv3d, random_weight(45, 8, 4, 4))(y1)
        assert torch.equal(y1.feats, kept)
