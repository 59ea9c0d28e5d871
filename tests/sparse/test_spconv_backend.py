"""spconv adapter against the torch backend (skipped where spconv is not installed).

The backend refuses CPU tensors (spconv 2.3.8's CPU kernels race with more than one thread). Its
layout and offset conventions are still checked on the CPU here with ONE thread, through the
private escape hatch, so that a machine without a GPU can validate the adapter; the CUDA test
runs the public path.
"""

from __future__ import annotations

import pytest
import torch
from sparse_reference import random_coords, random_feats, random_weight

from pcseg.sparse import DownsampleConv3d, SparseTensor, SubmanifoldConv3d, UpsampleConv3d

spconv = pytest.importorskip("spconv")


def _layer(cls, w):
    layer = cls(w.shape[1], w.shape[2]).to(w.device)
    with torch.no_grad():
        layer.weight.copy_(w)
    return layer


def _run(x: SparseTensor) -> dict[str, torch.Tensor]:
    dev = x.device
    s = _layer(SubmanifoldConv3d, random_weight(3, 27, 4, 6, torch.float32).to(dev))
    d = _layer(DownsampleConv3d, random_weight(4, 8, 6, 5, torch.float32).to(dev))
    d2 = _layer(DownsampleConv3d, random_weight(5, 8, 5, 5, torch.float32).to(dev))
    u2 = _layer(UpsampleConv3d, random_weight(6, 8, 5, 5, torch.float32).to(dev))
    u = _layer(UpsampleConv3d, random_weight(7, 8, 5, 3, torch.float32).to(dev))
    y = s(x)
    z = d(y)
    v = u(u2(d2(z)))
    loss = (v.feats**2).sum() + (y.feats * random_feats(9, len(y), 6, torch.float32).to(dev)).sum()
    loss.backward()
    order = torch.argsort((z.coords.long() * torch.tensor([1 << 40, 1 << 26, 1 << 13, 1], device=dev)).sum(1))
    return dict(
        y=y.feats,
        zc=z.coords[order],
        z=z.feats[order],
        v=v.feats,
        gx=x.feats.grad,
        gs=s.weight.grad,
        gd=d.weight.grad,
        gu=u.weight.grad,
    )


def _compare(a, b):
    for key in a:
        ra, rb = a[key].double().cpu(), b[key].double().cpu()
        assert float((ra - rb).abs().max() / ra.abs().max().clamp_min(1e-30)) < 1e-5, key


@pytest.mark.parametrize("low", [0, -7])
def test_adapter_conventions_on_cpu_single_thread(low, monkeypatch):
    import spconv.pytorch.cppcore as cppcore
    import spconv.pytorch.ops as ops

    from pcseg.sparse.backends.spconv_backend import SpconvContext

    torch.set_num_threads(1)  # the only setting in which spconv's CPU kernels are correct
    monkeypatch.setattr(cppcore, "get_current_stream", lambda: 0)  # CPU-only torch has no stream
    monkeypatch.setattr(ops, "get_current_stream", lambda: 0)
    coords = random_coords(1, 2, 10, 300, low=low)
    ref = _run(
        SparseTensor.from_batch(coords, random_feats(2, len(coords), 4, torch.float32).requires_grad_())
    )
    c = coords.to(torch.int32)
    lo, hi = c[:, 1:].long().min(0).values, c[:, 1:].long().max(0).values
    ctx = SpconvContext(c, lo, hi, 2, _allow_cpu_for_tests=True)
    got = _run(SparseTensor(random_feats(2, len(coords), 4, torch.float32).requires_grad_(), 1, ctx))
    _compare(ref, got)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="spconv backend runs on CUDA only")
def test_spconv_matches_torch_backend_on_cuda():
    coords = random_coords(1, 2, 10, 300, low=-3).cuda()
    ref = _run(
        SparseTensor.from_batch(
            coords, random_feats(2, len(coords), 4, torch.float32).cuda().requires_grad_()
        )
    )
    got = _run(
        SparseTensor.from_batch(
            coords, random_feats(2, len(coords), 4, torch.float32).cuda().requires_grad_(), backend="spconv"
        )
    )
    _compare(ref, got)
