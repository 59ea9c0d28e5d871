"""The same network with the same weights on the torch and MinkowskiEngine backends."""

from __future__ import annotations

import io

import pytest
import torch

from pcseg.models import build_model
from pcseg.sparse import SparseTensor
from pcseg.sparse.backends.minkowski_backend import apply_collections_shim
from pcseg.sparse.synthetic import batch_of_rooms

apply_collections_shim()  # MinkowskiEngine 0.5.4 cannot be imported on Python >= 3.10 without it
pytest.importorskip("MinkowskiEngine")
pytestmark = pytest.mark.minkowski

SMALL = dict(width=0.25, layers=(1, 1, 1, 2, 1, 1, 1, 1))


def _inputs(in_channels: int, dtype: torch.dtype):
    coords, feats = batch_of_rooms(2, 1500, voxel_size=0.04, seed=5)
    if in_channels == 6:
        feats = torch.cat([feats, coords[:, 1:].float() * 0.04], 1)
    return coords, feats.to(dtype)


def _run(model, coords, feats, backend):
    x_feats = feats.clone().requires_grad_()
    out = model(SparseTensor.from_batch(coords, x_feats, backend=backend))
    g = torch.Generator().manual_seed(1)
    loss = (out["logits"] * torch.randn(out["logits"].shape, generator=g, dtype=feats.dtype)).sum() \
        + (out["feats"] ** 2).mean()
    model.zero_grad()
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    return out["logits"].detach(), out["feats"].detach(), x_feats.grad, grads


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("name,in_channels", [("res16unet34c", 3), ("minkunet", 6)])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_forward_and_backward_agree(name, in_channels, dtype, tol):
    coords, feats = _inputs(in_channels, dtype)
    ref_model = build_model(name, in_channels, 6, **SMALL, init_seed=7).to(dtype)
    mink_model = build_model(name, in_channels, 6, **SMALL, init_seed=0).to(dtype)
    mink_model.load_state_dict(ref_model.state_dict())  # identical weights, one layout
    a = _run(ref_model, coords, feats, "torch")
    b = _run(mink_model, coords, feats, "minkowski")
    assert _rel(a[0], b[0]) < tol and _rel(a[1], b[1]) < tol  # logits, features
    assert _rel(a[2], b[2]) < tol  # input gradient
    for key in a[3]:
        assert _rel(a[3][key], b[3][key]) < tol, key  # every parameter gradient
    # batch-norm running statistics were updated identically
    sa, sb = ref_model.state_dict(), mink_model.state_dict()
    for key in sa:
        if "running" in key:
            assert _rel(sa[key].to(dtype), sb[key].to(dtype)) < tol, key


@pytest.mark.parametrize("save_backend,load_backend", [("minkowski", "torch"), ("torch", "minkowski")])
def test_checkpoint_moves_between_backends(save_backend, load_backend):
    coords, feats = _inputs(3, torch.float32)
    model = build_model("res16unet34c", 3, 5, **SMALL)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    labels = (coords[:, 3] % 3).long()
    for _ in range(2):  # a little training on the saving backend: weights and BN statistics change
        out = model(SparseTensor.from_batch(coords, feats, backend=save_backend))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(out["logits"], labels).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        expected = model(SparseTensor.from_batch(coords, feats, backend=save_backend))["logits"]
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    restored = build_model("res16unet34c", 3, 5, **SMALL, init_seed=99)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    restored.eval()
    with torch.no_grad():
        got = restored(SparseTensor.from_batch(coords, feats, backend=load_backend))["logits"]
    assert _rel(got, expected) < 1e-4


def test_minkowski_gradients_repeatable_with_two_threads():
    """Regression: MinkowskiEngine's multi-threaded kernel-map build made some gradients wrong in
    about 1 run of 3; the adapter builds maps on one OpenMP thread, so every run is identical."""
    coords, feats = _inputs(3, torch.float32)
    model = build_model("res16unet34c", 3, 6, **SMALL, init_seed=7)
    torch.set_num_threads(2)  # restored by the conftest fixture
    reference = _run(model, coords, feats, "torch")
    for _ in range(5):
        got = _run(model, coords, feats, "minkowski")
        assert torch.get_num_threads() == 2  # the adapter restores torch's thread count
        assert _rel(got[2], reference[2]) < 1e-4
        for key in got[3]:
            assert _rel(got[3][key], reference[3][key]) < 1e-4, key
