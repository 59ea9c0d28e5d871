"""CPCMMethod.training_step on fake two-view batches and a tiny per-voxel network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pcseg.methods import StepContext, build_method
from pcseg.methods.cpcm.method import CPCMMethod
from pcseg.methods.cpcm.rampup import sigmoid_rampup
from pcseg.methods.cpcm.region_mask import mask_batch

C = 5
EPS = 1e-4


class TinyNet(nn.Module):
    """Per-voxel linear map of [features, coordinates]; remembers every call's input and output."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(in_channels + 3, C)
        self.calls: list[dict[str, torch.Tensor]] = []

    def forward(self, x):
        inp = torch.cat([x.feats, x.coords[:, 1:].float() / 20.0], 1)
        logits = self.linear(inp)
        if logits.requires_grad:
            logits.retain_grad()
        self.calls.append({"coords": x.coords.clone(), "feats": x.feats.clone(), "logits": logits})
        return {"logits": logits, "feats": inp}


def make_view(rng, scenes, points_per_scene, labelled):
    """One collated view: each scene keeps a random 70 % of its points, each on its own voxel."""
    coords, feat, segment, point_index, offset, n = [], [], [], [], [], 0
    for b, name in enumerate(scenes):
        keep = np.sort(rng.choice(points_per_scene, int(0.7 * points_per_scene), replace=False))
        cells = rng.choice(12**3, len(keep), replace=False)
        grid = np.stack(np.unravel_index(cells, (12, 12, 12)), 1)
        coords.append(np.concatenate([np.full((len(keep), 1), b), grid], 1))
        feat.append(rng.uniform(-0.5, 0.5, (len(keep), 3)))
        seg = np.where(np.isin(keep, labelled[name]), keep % C, -1)
        segment.append(seg)
        point_index.append(keep)
        n += len(keep)
        offset.append(n)
    return {
        "coords": torch.tensor(np.concatenate(coords), dtype=torch.int32),
        "feat": torch.tensor(np.concatenate(feat), dtype=torch.float32),
        "segment": torch.tensor(np.concatenate(segment), dtype=torch.int64),
        "point_index": torch.tensor(np.concatenate(point_index)),
        "offset": torch.tensor(offset),
        "scene": list(scenes),
    }


def make_batch(seed=0, scenes=("s0", "s1"), points=60, labelled_count=4, drop_corr_of=None):
    rng = np.random.default_rng(seed)
    labelled = {s: rng.choice(points, labelled_count, replace=False) for s in scenes}
    v1, v2 = make_view(rng, scenes, points, labelled), make_view(rng, scenes, points, labelled)
    corr, corr_offset, start1, start2 = [], [], 0, 0
    for b in range(len(scenes)):
        end1, end2 = int(v1["offset"][b]), int(v2["offset"][b])
        pi1, pi2 = v1["point_index"][start1:end1].numpy(), v2["point_index"][start2:end2].numpy()
        if scenes[b] != drop_corr_of:
            common, r1, r2 = np.intersect1d(pi1, pi2, return_indices=True)
            corr.append(np.stack([r1 + start1, r2 + start2], 1))
        corr_offset.append(sum(len(c) for c in corr))
        start1, start2 = end1, end2
    corr = torch.tensor(np.concatenate(corr) if corr else np.zeros((0, 2)), dtype=torch.int64)
    return {"view1": v1, "view2": v2, "corr": corr, "corr_offset": torch.tensor(corr_offset)}


def ctx(iteration=3, epoch=2, seed=11):
    return StepContext(iteration=iteration, epoch=epoch, max_iterations=100, iters_per_epoch=10, seed=seed)


def ref_js(p, q):
    m = (p + q) / 2
    return float(np.mean(np.sum(p * np.log(p / (m + EPS) + EPS) + q * np.log(q / (m + EPS) + EPS), 1)))


def ref_ce(logits, target):
    keep = target >= 0
    z = logits[keep]
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(z)), target[keep]]))


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("lambda_c,lambda_m", [(2.0, 5.0), (0.0, 10.0), (1.0, 0.0), (0.0, 0.0)])
def test_loss_equals_reference_formula(lambda_c, lambda_m):
    batch = make_batch()
    net = TinyNet()
    method = CPCMMethod(C, lambda_consistency=lambda_c, lambda_mask=lambda_m, mask_grid=4)
    res = method.training_step(net, batch, ctx())
    assert len(net.calls) == (3 if lambda_m > 0 else 2)
    z1, z2 = (net.calls[i]["logits"].detach().numpy().astype(np.float64) for i in range(2))
    y1, y2 = batch["view1"]["segment"].numpy(), batch["view2"]["segment"].numpy()
    c = batch["corr"].numpy()
    r = sigmoid_rampup(2, 5)
    expected = ref_ce(z1, y1) + ref_ce(z2, y2)
    expected += lambda_c * r * ref_js(softmax(z1[c[:, 0]]), softmax(z2[c[:, 1]]))
    if lambda_m > 0:
        zm = net.calls[2]["logits"].detach().numpy().astype(np.float64)
        pm = softmax(zm)
        expected += lambda_m * r * (ref_js(softmax(z1[c[:, 0]]), pm[c[:, 1]]) + ref_js(softmax(z2), pm))
    assert float(res.loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert res.logs["rampup"] == pytest.approx(0.165, abs=1e-3)
    assert res.logs["matched_points"] == len(c) > 0
    assert not res.skipped_supervised


def test_masked_pass_sees_view2_geometry_with_region_mask_features():
    batch = make_batch(seed=1)
    net = TinyNet()
    CPCMMethod(C, lambda_mask=5.0, mask_grid=4).training_step(net, batch, ctx(iteration=9, seed=4))
    v2 = batch["view2"]
    masked_call = net.calls[2]
    assert torch.equal(masked_call["coords"], v2["coords"])
    expected = mask_batch(v2["coords"], v2["feat"], v2["offset"], v2["scene"], 4, 0.75, seed=4, iteration=9)
    assert expected.mask.any() and not expected.mask.all()
    assert torch.equal(masked_call["feats"], expected.feat)
    assert torch.equal(net.calls[1]["feats"], v2["feat"])  # the unmasked view 2 is untouched


def test_masked_terms_do_not_send_gradients_into_their_targets():
    batch = make_batch(seed=2, labelled_count=0)  # no CE: only the unsupervised terms
    for view in ("view1", "view2"):
        assert (batch[view]["segment"] == -1).all()
    net = TinyNet()
    res = CPCMMethod(C, lambda_consistency=0.0, lambda_mask=5.0).training_step(net, batch, ctx())
    assert res.skipped_supervised and res.loss is not None and torch.isfinite(res.loss)
    res.loss.backward()
    z1, z2, zm = (call["logits"] for call in net.calls)
    assert z1.grad is None and z2.grad is None  # sg(p1), sg(p2)
    assert zm.grad is not None and zm.grad.abs().sum() > 0
    # The view-consistency term is not detached: both views get gradients.
    net2 = TinyNet()
    CPCMMethod(C, lambda_consistency=2.0, lambda_mask=0.0).training_step(net2, batch, ctx()).loss.backward()
    assert all(call["logits"].grad.abs().sum() > 0 for call in net2.calls)


def test_no_labels_and_no_unsupervised_term_gives_none_not_nan():
    batch = make_batch(seed=3, labelled_count=0)
    res = CPCMMethod(C, lambda_consistency=0.0, lambda_mask=0.0).training_step(TinyNet(), batch, ctx())
    assert res.loss is None and res.skipped_supervised and "loss_ce1" not in res.logs


def test_scene_without_matches_drops_only_its_matched_terms_unless_official_batch_skip():
    batch = make_batch(seed=4, drop_corr_of="s1")
    counts = torch.diff(batch["corr_offset"], prepend=torch.zeros(1, dtype=torch.int64))
    assert counts[0] > 0 and counts[1] == 0
    fixed = CPCMMethod(C, lambda_consistency=2.0, lambda_mask=5.0, corr_skip="scene").training_step(
        TinyNet(), batch, ctx())
    assert {"loss_consistency", "loss_mask_corr", "loss_mask_self"} <= set(fixed.logs)
    assert fixed.logs["unsupervised_skipped"] == 0.0
    net = TinyNet()
    official = CPCMMethod(C, lambda_consistency=2.0, lambda_mask=5.0, corr_skip="batch").training_step(
        net, batch, ctx())
    assert official.logs["unsupervised_skipped"] == 1.0
    assert not {"loss_consistency", "loss_mask_corr", "loss_mask_self"} & set(official.logs)
    assert len(net.calls) == 3  # the masked pass still runs (BN statistics), as in the official trainer
    assert float(official.loss) == pytest.approx(official.logs["loss_ce1"] + official.logs["loss_ce2"], rel=1e-6)
    # With every scene matched, both modes agree.
    full = make_batch(seed=4)
    a = CPCMMethod(C, lambda_consistency=2.0, corr_skip="scene").training_step(TinyNet(), full, ctx())
    b = CPCMMethod(C, lambda_consistency=2.0, corr_skip="batch").training_step(TinyNet(), full, ctx())
    assert float(a.loss) == pytest.approx(float(b.loss), rel=1e-6)


def test_distributed_normalisation_matches_one_process():
    """Two fake ranks with half the matched rows each reproduce the single-process gradient."""
    batch = make_batch(seed=5)
    method = CPCMMethod(C, lambda_consistency=2.0, lambda_mask=0.0, seg_both_views=False)
    z1 = torch.randn(batch["view1"]["coords"].shape[0], C, requires_grad=True)
    z2 = torch.randn(batch["view2"]["coords"].shape[0], C, requires_grad=True)
    corr = batch["corr"]
    single = method._mean_divergence(z1[corr[:, 0]], z2[corr[:, 1]], ctx())
    halves = [corr[: len(corr) // 3], corr[len(corr) // 3:]]
    total = len(corr)
    grads = []
    for part in halves:
        rank_ctx = StepContext(iteration=0, epoch=0, max_iterations=1, iters_per_epoch=1, seed=0, world_size=2,
                               count_reducer=lambda n, total=total: total)
        loss = method._mean_divergence(z1[part[:, 0]], z2[part[:, 1]], rank_ctx)
        grads.append(torch.autograd.grad(loss, (z1, z2)))
    g_single = torch.autograd.grad(single, (z1, z2))
    for i in range(2):  # DDP averages the ranks' gradients
        assert torch.allclose((grads[0][i] + grads[1][i]) / 2, g_single[i], atol=1e-7)


def test_build_from_config_and_bad_values():
    m = build_method({"name": "cpcm", "lambda_consistency": 2, "lambda_mask": 10, "mask_grid": 8}, 13)
    assert isinstance(m, CPCMMethod) and m.num_views == 2 and m.mask_grid == 8
    with pytest.raises(ValueError, match="corr_skip"):
        CPCMMethod(C, corr_skip="never")
    with pytest.raises(ValueError, match="loss weights"):
        CPCMMethod(C, lambda_mask=-1)
    assert math.isclose(sigmoid_rampup(0), 0.006737946999085467)


def test_masked_pass_on_shared_view2_context_equals_a_fresh_tensor():
    """The masked pass reuses view 2's tensor context (kernel maps); a real network must give the same
    logits as on a freshly built tensor of the masked features."""
    from pcseg.models import build_model
    from pcseg.sparse import SparseTensor

    batch = make_batch(seed=6)
    torch.manual_seed(0)
    model = build_model("res16unet34c", 3, C, width=0.125, layers=[1] * 8).eval()
    outputs = []
    model.register_forward_hook(lambda _m, _i, out: outputs.append(out["logits"].detach()))
    CPCMMethod(C, lambda_mask=5.0, mask_grid=4).training_step(model, batch, ctx(iteration=5, seed=2))
    assert len(outputs) == 3
    v2 = batch["view2"]
    masked = mask_batch(v2["coords"], v2["feat"], v2["offset"], v2["scene"], 4, 0.75, seed=2, iteration=5)
    with torch.no_grad():
        fresh = model(SparseTensor.from_batch(v2["coords"], masked.feat, backend="torch"))["logits"]
    assert torch.allclose(outputs[2], fresh, atol=1e-5)
    assert not torch.allclose(outputs[2], outputs[1], atol=1e-3)  # the mask changed the prediction
