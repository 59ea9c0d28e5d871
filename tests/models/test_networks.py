"""Res16UNet34C and MinkUNet: sizes, architecture details, row alignment, overrides."""

from __future__ import annotations

import pytest
import torch

from pcseg.models import MinkUNet, Res16UNet34C, build_model, count_parameters
from pcseg.sparse import BatchNorm, PointwiseConv3d, SparseTensor
from pcseg.sparse.nn import _SparseConv
from pcseg.sparse.synthetic import batch_of_rooms
from pcseg.utils.errors import ConfigError

SMALL = dict(width=0.125, layers=(1, 1, 1, 1, 1, 1, 1, 1))


def test_full_size_parameter_counts():
    # CPCM: Res16UNet34C, RGB in, ScanNet's 20 classes -> 37.85 M (spec §4)
    res16 = build_model("res16unet34c", 3, 20)
    assert isinstance(res16, Res16UNet34C)
    assert count_parameters(res16) == 37_846_644
    assert round(count_parameters(res16) / 1e6, 2) == 37.85
    # HPAL: MinkUNet, RGB + xyz in, S3DIS's 13 classes -> 21.72 M (spec §13)
    mink = build_model("minkunet", 6, 13)
    assert isinstance(mink, MinkUNet)
    assert count_parameters(mink) == 21_724_461
    assert round(count_parameters(mink) / 1e6, 2) == 21.72


def test_res16unet34c_architecture_details():
    m = build_model("res16unet34c", 3, 20)
    assert m.stem[0].weight.shape == (27, 3, 32)
    assert [len(stage) for stage in m.encoder] == [2, 3, 4, 6]
    assert [len(stage) for stage in m.decoder] == [2, 2, 2, 2]
    assert [stage[0].weight.shape for stage in m.down] == [
        (8, 32, 32),
        (8, 32, 32),
        (8, 64, 64),
        (8, 128, 128),
    ]
    assert [stage[0].weight.shape for stage in m.up] == [
        (8, 256, 256),
        (8, 256, 128),
        (8, 128, 96),
        (8, 96, 96),
    ]
    # concatenated widths entering each decoder stage: 256+128, 128+64, 96+32, 96+32
    assert [stage[0].conv1.in_channels for stage in m.decoder] == [384, 192, 128, 128]
    assert (
        isinstance(m.head, PointwiseConv3d) and m.head.weight.shape == (1, 96, 20) and m.head.bias is not None
    )
    assert m.feature_dim == 96
    biases = [
        name for name, mod in m.named_modules() if isinstance(mod, _SparseConv) and mod.bias is not None
    ]
    assert biases == ["head"]
    # bn momentum 0.02 on stem/transition/shortcut BNs, default 0.1 inside blocks; BN init 1 / 0
    assert m.stem[1].momentum == 0.02 and m.down[2][1].momentum == 0.02 and m.up[0][1].momentum == 0.02
    assert m.encoder[0][0].shortcut is None and m.encoder[1][0].shortcut[1].momentum == 0.02
    assert m.encoder[1][0].norm1.momentum == 0.1 and m.decoder[3][1].norm2.momentum == 0.1
    for mod in m.modules():
        if isinstance(mod, BatchNorm):
            assert torch.all(mod.weight == 1) and torch.all(mod.bias == 0)


def test_minkunet_architecture_details():
    m = build_model("minkunet", 6, 13)
    assert (
        len(m.stem) == 6 and m.stem[0].weight.shape == (27, 6, 32) and m.stem[3].weight.shape == (27, 32, 32)
    )
    assert all(len(stage) == 2 for stage in [*m.encoder, *m.decoder])
    assert isinstance(m.head, torch.nn.Linear) and m.head.weight.shape == (13, 96)
    assert all(mod.momentum == 0.1 for mod in m.modules() if isinstance(mod, BatchNorm))


def _scene(in_channels=3, voxels=600, seed=0, dtype=torch.float64):
    coords, feats = batch_of_rooms(2, voxels, voxel_size=0.05, seed=seed)
    if in_channels == 6:
        feats = torch.cat([feats, coords[:, 1:].float() * 0.05], 1)
    return coords, feats.to(dtype)


@pytest.mark.parametrize("name,in_channels", [("res16unet34c", 3), ("minkunet", 6)])
def test_outputs_follow_input_rows_under_permutation(name, in_channels):
    coords, feats = _scene(in_channels)
    model = build_model(name, in_channels, 7, **SMALL).double()
    out = model(SparseTensor.from_batch(coords, feats))
    assert out["logits"].shape == (len(coords), 7) and out["feats"].shape == (len(coords), model.feature_dim)
    perm = torch.randperm(len(coords), generator=torch.Generator().manual_seed(0))
    out_p = model(SparseTensor.from_batch(coords[perm], feats[perm]))
    # train-mode BN sums rows in another order: equal up to float64 rounding
    torch.testing.assert_close(out_p["logits"], out["logits"][perm], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out_p["feats"], out["feats"][perm], rtol=1e-9, atol=1e-9)
    model.eval()
    e1 = model(SparseTensor.from_batch(coords, feats))["logits"]
    e2 = model(SparseTensor.from_batch(coords[perm], feats[perm]))["logits"]
    torch.testing.assert_close(e2, e1[perm], rtol=1e-12, atol=1e-12)


def test_scenes_in_a_batch_do_not_interact():
    """A scene's outputs in eval mode do not depend on what else is in the batch."""
    coords, feats = _scene()
    model = build_model("res16unet34c", 3, 4, **SMALL).double().eval()
    both = model(SparseTensor.from_batch(coords, feats))["logits"]
    first = coords[:, 0] == 0
    alone = model(SparseTensor.from_batch(coords[first], feats[first]))["logits"]
    torch.testing.assert_close(alone, both[first], rtol=1e-12, atol=1e-12)


def test_overrides_and_initialisation():
    m = build_model("res16unet34c", 3, 5, width=0.5)
    assert m.config.init_dim == 16 and m.config.planes == (16, 32, 64, 128, 128, 64, 48, 48)
    m = build_model("minkunet", 6, 5, planes=(8,) * 8, layers=(0, 1, 0, 1, 1, 0, 1, 1), init_dim=4)
    assert m.feature_dim == 8 and [len(s) for s in m.encoder] == [0, 1, 0, 1]
    out = m(SparseTensor.from_batch(*_scene(6, 200, dtype=torch.float32)))
    assert out["feats"].shape[1] == 8
    a = build_model("res16unet34c", 3, 5, **SMALL, init_seed=3).state_dict()
    b = build_model("res16unet34c", 3, 5, **SMALL, init_seed=3).state_dict()
    c = build_model("res16unet34c", 3, 5, **SMALL, init_seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stem.0.weight"], c["stem.0.weight"])
    assert build_model("res16unet34c", 3, 5, bn_momentum=0.3).stem[1].momentum == 0.3
    # HPAL's 9-entry channel list (stem width first), as configs/model/minkunet.yaml writes it
    cs = build_model("minkunet", 6, 13, planes=[32, 32, 64, 128, 256, 256, 128, 96, 96])
    assert cs.config.init_dim == 32 and cs.config.planes == (32, 64, 128, 256, 256, 128, 96, 96)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(name="unet"), "unknown model 'unet'"),
        (dict(planes=(8, 8)), "planes needs 8 positive integers"),
        (dict(layers=(1,) * 7 + (-1,)), "layers needs 8"),
        (dict(width=0), "width multiplier"),
        (dict(depth=3), r"unknown override\(s\) \['depth'\]"),
        (dict(bn_momentum=2.0), "bn_momentum must be in"),
    ],
)
def test_bad_overrides_are_config_errors(kwargs, match):
    name = kwargs.pop("name", "res16unet34c")
    with pytest.raises(ConfigError, match=match):
        build_model(name, 3, 5, **kwargs)


def test_stride_one_input_required():
    coords, feats = _scene(voxels=200, dtype=torch.float32)
    model = build_model("res16unet34c", 3, 4, **SMALL)
    x = SparseTensor.from_batch(coords, feats)
    coarse = model.down[0](model.stem(x))
    with pytest.raises(ValueError, match="stride-1 input"):
        model(coarse)


def test_small_network_learns_a_scene():
    """A few SGD steps fit the labels of one small scene (gradients reach every layer)."""
    coords, feats = _scene(voxels=400, dtype=torch.float32)
    labels = (coords[:, 3] > coords[:, 3].float().median()).long() + 2 * (feats[:, 0] > 0).long()
    model = build_model("res16unet34c", 3, 4, **SMALL)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        out = model(SparseTensor.from_batch(coords, feats))
        loss = torch.nn.functional.cross_entropy(out["logits"], labels)
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    assert losses[-1] < 0.6 * losses[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
