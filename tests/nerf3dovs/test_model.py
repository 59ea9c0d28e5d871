"""Model parts: VM grid, affine feature head, stage schedule, upsampling with live optimizers, alpha mask."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("nerfstudio")

from nerf3dovs.model.field import FeatureHead  # noqa: E402
from nerf3dovs.model.schedule import GROUPS, StageSchedule  # noqa: E402
from nerf3dovs.model.vm import VMGrid, resolution_from_voxels, voxel_schedule  # noqa: E402


def test_vm_resize_is_exact_for_linear_fields_and_replaces_parameters():
    grid = VMGrid((2, 1, 1), (5, 4, 3), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # plane = a + b*u + c*v, line = 1: bilinear interpolation reproduces it exactly
        for k, plane in enumerate(grid.planes):
            h, w = plane.shape[-2:]
            v, u = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
            plane.copy_((0.3 * k + u - 0.5 * v).expand_as(plane))
        for line in grid.lines:
            line.fill_(1.0)
    xyz = torch.rand(100, 3) * 2 - 1
    before = grid.features(xyz)
    old = [id(p) for p in grid.parameters()]
    grid.resize_((9, 7, 6))
    assert [tuple(p.shape[-2:]) for p in grid.planes] == [(7, 9), (6, 9), (6, 7)]
    assert all(id(p) not in old for p in grid.parameters())
    torch.testing.assert_close(grid.features(xyz), before, atol=1e-5, rtol=0)
    torch.testing.assert_close(grid.summed(xyz), before.sum(-1), atol=1e-5, rtol=0)


def test_resolution_and_voxel_schedule():
    aabb = torch.tensor([[-2.0, -2.0, -1.0], [2.0, 2.0, 1.0]])
    assert resolution_from_voxels(128**3, aabb) == [161, 161, 80]  # 3D-OVS N_voxel_init in its NDC box
    counts = voxel_schedule(128**3, 640**3, 4)
    assert counts[-1] == 640**3 and all(a < b for a, b in zip(counts, counts[1:]))
    ratios = [b / a for a, b in zip([128**3] + counts, counts)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-6)  # log-linear


def test_affine_head_rendered_after_accumulation_equals_per_sample_sum():
    head = FeatureHead(6, 8, 5, "none")
    codes = torch.randn(4, 7, 6)
    w = torch.rand(4, 7) * 0.2
    explicit = (w[..., None] * head(codes)).sum(1)
    fast = head.render_from_accumulated((w[..., None] * codes).sum(1), w.sum(1, keepdim=True))
    torch.testing.assert_close(fast, explicit, atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError):
        FeatureHead(6, 8, 5, "relu").render_from_accumulated(codes[:, 0], w[:, :1])


def _schedule(**kw):
    base = dict(recon_iters=100, seg_iters=50, joint_start_iter=20, upsample_steps=(10, 30), lr_grid=0.02, lr_network=1e-4,
                lr_joint_grid=5e-3, lr_joint_network=5e-5, lr_feature=1e-4, lr_select_grid=0.02, lr_select_basis=1e-4)
    base.update(kw)
    return StageSchedule(**base)


def test_stage_schedule_learning_rates_follow_3dovs():
    s = _schedule()
    assert [s.stage(t) for t in (0, 99, 100, 119, 120)] == ["recon", "recon", "seg", "seg", "joint"]
    lr = s.learning_rate
    assert lr("ovs_density", 0) == pytest.approx(0.02)
    assert lr("ovs_density", 9) == pytest.approx(0.02 * 0.1 ** (9 / 100))
    assert lr("ovs_density", 10) == pytest.approx(0.02)  # restart at an upsampling
    assert lr("ovs_render", 35) == pytest.approx(1e-4 * 0.1 ** (5 / 100))
    assert lr("ovs_density", 100) == 0.0 and lr("ovs_density", 140) == 0.0  # density frozen in segmentation
    assert lr("ovs_appearance", 110) == 0.0 and lr("ovs_feature", 50) == 0.0
    assert lr("ovs_feature", 119) == pytest.approx(1e-4 * 0.1 ** (19 / 50))
    assert lr("ovs_feature", 120) == pytest.approx(1e-4)  # new Adam at the joint start
    assert lr("ovs_select_grid", 149) == pytest.approx(0.02 * 0.1 ** (29 / 50))
    assert lr("ovs_appearance", 120) == pytest.approx(5e-3) and lr("ovs_render", 121) == pytest.approx(5e-5 * 0.1 ** (1 / 50))
    assert s.restarts() == [10, 30, 100, 120]
    assert _schedule(lr_reset_on_upsample=False).learning_rate("ovs_density", 35) == pytest.approx(0.02 * 0.1 ** 0.35)
    assert s.trainable(105) == {"ovs_density": False, "ovs_appearance": False, "ovs_render": False, "ovs_feature": True,
                                "ovs_select_grid": True, "ovs_select_basis": True}
    assert s.tv_factor(50) == pytest.approx(0.1**0.5)
    with pytest.raises(KeyError):
        lr("fields", 0)


@pytest.fixture()
def tiny_model(ovs_scene):
    from nerf3dovs.data.dataparser import Ovs3DDataParserConfig
    from nerf3dovs.model.ovs_model import OvsModelConfig

    out = Ovs3DDataParserConfig(data=ovs_scene, downscale_factor=2).setup().get_dataparser_outputs("train")
    cfg = OvsModelConfig(recon_iters=6, seg_iters=4, joint_start_iter=2, n_voxel_init=12**3, n_voxel_final=18**3,
                         upsample_steps=(2,), alpha_mask_steps=(4,), num_samples=16, appearance_components=(4, 2, 2),
                         density_components=(4, 2, 2), selection_components=(2, 1, 1), appearance_dim=6, mlp_width=16,
                         feature_hidden=8)
    text = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    model = cfg.setup(scene_box=out.scene_box, num_train_data=6, metadata=out.metadata, feature_dim=8, num_scales=3,
                      text_embeddings=text, class_names=["a", "b", "c"])
    return model, out


def _step(model, optimizers, bundle, step):
    model._before_iteration(step, optimizers)
    out = model(bundle)
    batch = {"image": torch.rand(len(bundle), 3), "ovs_num_feature_rays": len(bundle),
             "ovs_clip": torch.nn.functional.normalize(torch.randn(len(bundle), 3, 8), dim=-1),
             "ovs_relevancy": torch.rand(len(bundle), 3, 3)}
    loss = model.get_loss_dict(out, batch)
    total = sum(loss.values())
    optimizers.zero_grad_all()
    total.backward()
    optimizers.optimizer_step_all()
    return out, loss, total


def test_training_steps_through_upsampling_mask_and_stages(tiny_model):
    from nerfstudio.engine.optimizers import Optimizers

    from nerf3dovs.config import OvsAdamConfig

    model, out = tiny_model
    model.train()
    opt = Optimizers({g: {"optimizer": OvsAdamConfig(lr=1e-3), "scheduler": None} for g in GROUPS}, model.get_param_groups())
    rays = out.cameras.generate_rays(camera_indices=torch.zeros(32, 1, dtype=torch.long),
                                     coords=torch.rand(32, 2) * torch.tensor([24.0, 32.0]))
    keep = None  # keep the previous graph alive, as nerfstudio's trainer does
    seen = []
    for step in range(10):
        o, loss, keep = _step(model, opt, rays, step)
        seen.append((model.stage, sorted(k for k in loss)))
        for g in GROUPS:
            assert opt.optimizers[g].param_groups[0]["lr"] == pytest.approx(model.schedule.learning_rate(g, step))
            assert all(a is b for a, b in zip(opt.optimizers[g].param_groups[0]["params"], model.get_param_groups()[g]))
    assert seen[0] == ("recon", ["rgb_loss", "tv_appearance", "tv_density"])
    assert seen[6] == ("seg", ["feature_loss", "rda_loss"])
    assert seen[9] == ("joint", ["feature_loss", "rda_loss", "rgb_loss"])
    assert model.field.density.resolution == model.resolution_at(9) != model.resolution_at(0)
    assert model.alpha_mask.shape == tuple(model.resolution_at(4))
    # density never trains in segmentation: a seg step leaves it unchanged
    before = [p.detach().clone() for p in model.field.density.parameters()]
    _step(model, opt, rays, 7)
    assert all(torch.equal(a, b) for a, b in zip(before, model.field.density.parameters()))


def test_checkpoint_after_upsampling_loads_into_a_fresh_model(tiny_model, ovs_scene):
    model, out = tiny_model
    model._before_iteration(2, None)  # upsample
    model._before_iteration(4, None)  # alpha mask
    state = {k: v.clone() for k, v in model.state_dict().items()}
    from nerf3dovs.model.ovs_model import OvsModelConfig

    fresh = OvsModelConfig(**{f: getattr(model.config, f) for f in model.config.__dataclass_fields__ if f != "_target"})
    other = fresh.setup(scene_box=out.scene_box, num_train_data=6, metadata=out.metadata, feature_dim=8, num_scales=3,
                        text_embeddings=torch.randn(3, 8), class_names=["a", "b", "c"])
    other.update_to_step(5)
    other.load_state_dict(state)
    for k, v in state.items():
        assert torch.equal(other.state_dict()[k], v)


def test_rendered_images_have_labels_and_relevancies(tiny_model):
    model, out = tiny_model
    model.eval()
    cam = out.cameras[0:1]
    res = model.get_outputs_for_camera(cam)
    h, w = int(cam.height), int(cam.width)
    assert res["rgb"].shape == (h, w, 3) and res["segmentation"].shape == (h, w, 3)
    assert res["ovs_label"].shape == (h, w, 1) and int(res["ovs_label"].max()) < 3
    assert {"relevancy_0", "relevancy_1", "relevancy_2", "selection", "depth", "ovs_point"} <= set(res)
    assert "ovs_feature" not in res  # the D-dim feature image is reduced per chunk
    torch.testing.assert_close(res["selection"].sum(-1), torch.ones(h, w))
    rel = res["relevancy_1"]
    assert float(rel.min()) >= -1.0 - 1e-5 and float(rel.max()) <= 1.0 + 1e-5
    assert math.isfinite(float(res["depth"].sum()))
