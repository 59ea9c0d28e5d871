"""The mean-teacher loss pieces against hand computations (cpcm_hpal.md §15)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pcseg.methods import StepContext, build_method
from pcseg.methods.mean_teacher import MeanTeacherMethod, ema_update_, kl_consistency, pseudo_labels

# F.kl_div's 'mean' reduction warns that it divides by N*C: that is exactly the official behaviour we test.
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")


def test_kl_is_pytorch_mean_reduction_over_points_and_classes():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    ours = kl_consistency(s, t)
    official = F.kl_div(F.log_softmax(s, 1), F.softmax(t, 1))  # default reduction='mean'
    p_t = F.softmax(t, 1)
    by_hand = (p_t * (p_t.log() - F.log_softmax(s, 1))).sum() / (7 * 4)
    assert torch.allclose(ours, official, atol=1e-7) and torch.allclose(ours, by_hand, atol=1e-7)
    # = per-point KL(teacher || student) averaged over points, divided by C
    per_point = (p_t * (p_t.log() - F.log_softmax(s, 1))).sum(1).mean()
    assert torch.allclose(ours * 4, per_point, atol=1e-6)
    assert kl_consistency(torch.zeros(0, 4), torch.zeros(0, 4)) is None


def test_kl_gradient_reaches_only_the_student():
    s = torch.randn(5, 3, requires_grad=True)
    t = torch.randn(5, 3, requires_grad=True)
    kl_consistency(s, t).backward()
    assert s.grad is not None and t.grad is None


def test_pseudo_labels_threshold_is_inclusive_and_skips_labelled_points():
    prob = torch.tensor([[0.75, 0.25], [0.74, 0.26], [0.1, 0.9], [0.2, 0.8]])
    target = torch.tensor([-1, -1, -1, 0])
    assert pseudo_labels(prob, target, 0.75).tolist() == [0, -1, 1, -1]


class TinyNet(nn.Module):
    """Per-voxel linear layer + BatchNorm: enough to check views, losses and the EMA."""

    def __init__(self, cin=4, c=3):
        super().__init__()
        self.lin = nn.Linear(cin, c)
        self.bn = nn.BatchNorm1d(c)

    def forward(self, x):
        return {"logits": self.bn(self.lin(x.feats)), "feats": x.feats}


def test_ema_covers_the_whole_state_dict_including_bn_buffers():
    torch.manual_seed(0)
    student, teacher = TinyNet(), TinyNet()
    with torch.no_grad():
        student.bn.running_mean.fill_(2.0)
        teacher.bn.running_mean.fill_(1.0)
    student.bn.num_batches_tracked.fill_(100)
    teacher.bn.num_batches_tracked.fill_(10)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ema_update_(teacher, student, 0.955)
    for k, v in teacher.state_dict().items():
        if v.dtype.is_floating_point:
            assert torch.allclose(v, 0.955 * before[k] + 0.045 * student.state_dict()[k], atol=1e-7), k
    assert torch.allclose(teacher.bn.running_mean, torch.full((3,), 0.955 + 0.09))
    # 0.955 * 10 + 0.045 * 100 = 14.05 -> 14 (copy into an int64 buffer truncates)
    assert int(teacher.bn.num_batches_tracked) == 14


def two_view_batch(feat_student, feat_teacher, segment, inverse_s, inverse_t):
    m_s, m_t = feat_student.shape[0], feat_teacher.shape[0]
    n = inverse_s.shape[0]

    def view(feat, m, inverse, seg):
        coords = torch.zeros(m, 4, dtype=torch.int32)
        coords[:, 1] = torch.arange(m, dtype=torch.int32)
        return {"coords": coords, "feat": feat, "segment": seg, "inverse": inverse,
                "point_offset": torch.tensor([n]), "offset": torch.tensor([m])}

    seg_t = torch.full((m_t,), -1, dtype=torch.int64)
    return {"view1": view(feat_student, m_s, inverse_s, segment), "view2": view(feat_teacher, m_t, inverse_t, seg_t)}


def ctx():
    return StepContext(iteration=0, epoch=0, max_iterations=10, iters_per_epoch=10, seed=0)


def make_method(**kw):
    pytest.importorskip("pcseg.sparse")
    return MeanTeacherMethod(num_classes=3, **kw)


def test_training_step_matches_hand_computed_loss_and_teacher_sees_the_plain_view():
    torch.manual_seed(1)
    student = TinyNet()
    method = make_method(teacher_train_mode=False)
    method.setup(student)
    with torch.no_grad():  # make the teacher differ from the student
        method.teacher.lin.weight.mul_(3.0)
    # 4 student voxels, 3 teacher voxels, 6 points; views voxelise the points differently
    fs, ft = torch.randn(4, 4), torch.randn(3, 4)
    segment = torch.tensor([2, -1, -1, 0])
    inv_s = torch.tensor([0, 0, 1, 2, 3, 3])
    inv_t = torch.tensor([0, 1, 1, 2, 2, 0])
    batch = two_view_batch(fs, ft, segment, inv_s, inv_t)
    res = method.training_step(student, batch, ctx())

    student.train()
    s_vox = student.bn(student.lin(fs))
    method.teacher.eval()
    with torch.no_grad():
        t_vox = method.teacher.bn(method.teacher.lin(ft))  # the teacher's input is view 2
    s_pt, t_pt, y_pt = s_vox[inv_s], t_vox[inv_t], segment[inv_s]
    l_sup = F.cross_entropy(s_vox[segment >= 0], segment[segment >= 0])
    l_cons = F.kl_div(F.log_softmax(s_pt, 1), F.softmax(t_pt, 1))
    p_t = F.softmax(t_pt, 1)
    keep = (p_t.max(1).values >= 0.75) & (y_pt == -1)
    terms = [l_sup, l_cons]
    if keep.any():
        terms.append(F.cross_entropy(s_pt[keep], p_t.argmax(1)[keep]))
    assert torch.allclose(res.loss, sum(terms), atol=1e-5)
    assert res.logs["labelled_voxels"] == 2 and res.logs["points"] == 6
    assert res.logs["pseudo_points"] == float(keep.sum())


def test_pseudo_labels_are_used_when_the_teacher_is_confident():
    torch.manual_seed(2)
    student = TinyNet()
    method = make_method(teacher_train_mode=False)
    method.setup(student)
    with torch.no_grad():  # a teacher that is sure of class 1 everywhere, with BN as identity
        method.teacher.lin.weight.zero_()
        method.teacher.lin.bias.copy_(torch.tensor([0.0, 10.0, 0.0]))
    f = torch.randn(3, 4)
    batch = two_view_batch(f, f.clone(), torch.tensor([0, -1, -1]), torch.arange(3), torch.arange(3))
    res = method.training_step(student, batch, ctx())
    assert res.logs["pseudo_points"] == 2.0  # the labelled point gets no pseudo-label
    student.train()
    s = student.bn(student.lin(f))
    expected_pl = F.cross_entropy(s[1:], torch.tensor([1, 1]))
    assert math.isclose(res.logs["loss_pl"], float(expected_pl.detach()), rel_tol=1e-5)


def test_no_nan_when_no_label_and_no_pseudo_label():
    student = TinyNet()
    method = make_method()
    method.setup(student)
    with torch.no_grad():  # an unsure teacher: uniform probabilities
        method.teacher.lin.weight.zero_()
        method.teacher.lin.bias.zero_()
    f = torch.randn(4, 4)
    batch = two_view_batch(f, f.clone(), torch.full((4,), -1), torch.arange(4), torch.arange(4))
    res = method.training_step(student, batch, ctx())
    assert res.skipped_supervised and "loss_sup" not in res.logs and "loss_pl" not in res.logs
    assert res.loss is not None and torch.isfinite(res.loss)  # the consistency term alone
    assert res.logs["pseudo_points"] == 0.0


def test_teacher_runs_in_train_mode_by_default_and_updates_its_bn_statistics():
    student = TinyNet()
    method = make_method()
    method.setup(student)
    f = torch.randn(4, 4)
    batch = two_view_batch(f, f.clone() + 1.0, torch.full((4,), -1), torch.arange(4), torch.arange(4))
    method.training_step(student, batch, ctx())
    assert int(method.teacher.bn.num_batches_tracked) == 1
    method_eval = make_method(teacher_train_mode=False)
    method_eval.setup(student)
    copied = int(method_eval.teacher.bn.num_batches_tracked)
    method_eval.training_step(student, batch, ctx())
    assert int(method_eval.teacher.bn.num_batches_tracked) == copied


def test_after_optimizer_step_applies_ema_with_keep_rate():
    torch.manual_seed(3)
    student = TinyNet()
    method = make_method()
    method.setup(student)
    t0 = {k: v.clone() for k, v in method.teacher.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    method.after_optimizer_step(student, ctx())
    w = method.teacher.lin.weight
    assert torch.allclose(w, 0.955 * t0["lin.weight"] + 0.045 * student.lin.weight, atol=1e-7)
    assert not any(p.requires_grad for p in method.teacher.parameters())
    # the teacher is part of the method's state (saved in checkpoints)
    assert any(k.startswith("teacher.") for k in method.state_dict())


def test_views_must_hold_the_same_points():
    student = TinyNet()
    method = make_method()
    method.setup(student)
    f = torch.randn(3, 4)
    batch = two_view_batch(f, f, torch.full((3,), -1), torch.arange(3), torch.arange(3))
    batch["view2"]["inverse"] = torch.arange(2)
    batch["view2"]["point_offset"] = torch.tensor([2])
    with pytest.raises(ValueError, match="same points"):
        method.training_step(student, batch, ctx())


def test_registered_and_configurable():
    m = build_method({"name": "mean_teacher", "ema_keep_rate": 0.9, "pseudo_threshold": 0.8}, 5)
    assert isinstance(m, MeanTeacherMethod) and m.num_views == 2 and m.feature_mode == "rgb_xyz"
    assert m.ema_keep_rate == 0.9 and m.pseudo_threshold == 0.8
    assert MeanTeacherMethod.view_augment({"elastic": 1}) == [{"elastic": 1}, None]
    assert MeanTeacherMethod.view_augment(["hpal_strong", "none"]) == ["hpal_strong", "none"]


def test_real_two_view_batch_from_the_hpal_experiment(tmp_path):
    """The experiment's data settings give a strongly augmented student view and an untouched teacher
    view of the same points, and a step of the real network on them is finite."""
    pytest.importorskip("pcseg.data.dataset")
    import numpy as np

    from pcseg.data.classes import get_class_map
    from pcseg.data.collate import collate
    from pcseg.data.dataset import SegmentationDataset
    from pcseg.data.scene import Scene, write_dataset_info, write_scene, write_split
    from pcseg.engine.config import compose_config
    from pcseg.engine.trainer import build_network

    rng = np.random.default_rng(0)
    for i in range(2):
        n = 400
        write_scene(tmp_path, Scene(f"s{i}", (rng.random((n, 3)) * 2).astype(np.float32),
                                    rng.integers(0, 255, (n, 3)).astype(np.uint8),
                                    rng.integers(0, 20, n).astype(np.int32), np.full(n, -1, np.int32)))
    write_dataset_info(tmp_path, "synthetic", get_class_map("scannet20"))
    write_split(tmp_path, "train", ["s0", "s1"])
    cfg = compose_config("hpal_synthetic", [f"data.root={tmp_path}", "model.width=0.125"])
    method = build_method(cfg.method, 20)
    ds = SegmentationDataset(tmp_path, "train", cfg.data.voxel_size, method.feature_mode,
                             augment=method.view_augment(list(cfg.data.augment)), weak_labels={"s0": np.array([1, 2])},
                             num_views=method.num_views, seed=0)
    sample = ds[0]
    v1, v2 = sample["view1"], sample["view2"]
    assert (v1["inverse"] >= 0).all() and (v2["inverse"] >= 0).all()  # every point in both views
    coord = ds.data.load("s0").coord
    # the teacher view is the raw scene shifted to a zero minimum; the student view is not
    np.testing.assert_allclose(v2["coord"], coord[v2["point_index"]] - coord.min(0), atol=1e-5)
    assert not np.allclose(v1["coord"], coord[v1["point_index"]] - coord.min(0), atol=1e-2)
    np.testing.assert_allclose(v2["feat"][:, 3:], v2["coord"], atol=1e-6)  # rgb_xyz features
    batch = collate([ds[0], ds[1]])
    model = build_network(cfg, 6, 20)
    method.setup(model)
    res = method.training_step(model, batch, ctx())
    assert res.loss is not None and torch.isfinite(res.loss)
    assert res.logs["points"] == 800 and res.logs["labelled_voxels"] <= 2
