"""ovs3d-data on the generated scene: poses, intrinsics, class order, mask binarisation, splits, NDC."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("nerfstudio")
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from nerf3dovs.data import llff  # noqa: E402
from nerf3dovs.data.dataparser import Ovs3DDataParserConfig  # noqa: E402
from nerf3dovs.data.dataset import GT_KEY, OvsDataset  # noqa: E402
from nerf3dovs.errors import OvsDataError  # noqa: E402
from nerf3dovs.model.rendering import ndc_rays, ndc_to_world  # noqa: E402
from nerf3dovs.synthetic import SceneSpec, camera_poses, focal_length  # noqa: E402

SPEC = SceneSpec(num_views=6, width=64, height=48, supersample=1, annotated_every=3)


def _parse(root, split="train", **kw):
    return Ovs3DDataParserConfig(data=root, **kw).setup().get_dataparser_outputs(split)


def test_poses_are_the_recentred_rescaled_generator_poses(ovs_scene):
    out = _parse(ovs_scene, downscale_factor=1)
    truth = camera_poses(SPEC)  # (N, 3, 4) OpenGL c2w in the generator's world
    tf = out.dataparser_transform.double().numpy()
    scale = out.dataparser_scale
    c2w = out.cameras.camera_to_worlds.double().numpy()
    # rotations: R_norm = R_tf @ R_true; centres: c_norm = scale * (R_tf c_true + t_tf)
    np.testing.assert_allclose(c2w[:, :, :3], tf[:, :3] @ truth[:, :, :3], atol=1e-5)
    np.testing.assert_allclose(c2w[:, :, 3], scale * (truth[:, :, 3] @ tf[:, :3].T + tf[:, 3]), atol=1e-5)
    # recentred: mean centre at the origin, mean viewing axis along +z (cameras look down -z)
    np.testing.assert_allclose(c2w[:, :, 3].mean(0), 0.0, atol=1e-5)
    back = c2w[:, :, 2].sum(0)
    np.testing.assert_allclose(back / np.linalg.norm(back), [0, 0, 1], atol=1e-5)
    # rescaled so that the smallest near bound is 1 / 0.75
    assert out.metadata["near_far"][0] == pytest.approx(1 / 0.75)


def test_intrinsics_follow_the_downscale(ovs_scene):
    f = focal_length(SPEC)
    out1 = _parse(ovs_scene, downscale_factor=1)
    assert float(out1.cameras.fx[0]) == pytest.approx(f, rel=1e-6)
    assert float(out1.cameras.cx[0]) == pytest.approx(32.0) and float(out1.cameras.cy[0]) == pytest.approx(24.0)
    out3 = _parse(ovs_scene, downscale_factor=3)  # int(64/3) = 21, int(48/3) = 16
    assert int(out3.cameras.width[0]) == 21 and int(out3.cameras.height[0]) == 16
    assert float(out3.cameras.fx[0]) == pytest.approx(f * 21 / 64, rel=1e-6)
    assert float(out3.cameras.fy[0]) == pytest.approx(f * 16 / 48, rel=1e-6)
    assert float(out3.cameras.cx[0]) == pytest.approx(10.5)
    ds = OvsDataset(out3)
    assert tuple(ds.get_numpy_image(0).shape) == (16, 21, 3)


def test_splits_and_class_order(ovs_scene, tmp_path):
    scene = tmp_path / "s"
    shutil.copytree(ovs_scene, scene)
    names = (scene / "segmentations" / "classes.txt").read_text().split("\n")
    # file order does not matter: 3D-OVS sorts the prompts
    (scene / "segmentations" / "classes.txt").write_text("\n".join(reversed([n for n in names if n])) + "\n\n")
    train = _parse(scene, downscale_factor=1)
    val = _parse(scene, "val", downscale_factor=1)
    assert train.metadata["ovs_classes"] == sorted(n for n in names if n)
    assert len(train.image_filenames) == 6 and train.metadata["ovs_image_indices"] == list(range(6))
    assert val.metadata["ovs_image_indices"] == [0, 3]
    held = _parse(scene, downscale_factor=1, holdout_annotated=True)
    assert held.metadata["ovs_image_indices"] == [1, 2, 4, 5]


def test_masks_binarised_at_exactly_255(ovs_scene, tmp_path):
    scene = tmp_path / "s"
    shutil.copytree(ovs_scene, scene)
    classes = llff.read_class_names(scene / "segmentations")
    mask_path = scene / "segmentations" / "000" / f"{classes[0]}.png"
    mask = np.zeros((48, 64), np.uint8)
    mask[0, 0], mask[0, 1], mask[0, 2] = 255, 254, 128
    Image.fromarray(mask).save(mask_path)
    val = OvsDataset(_parse(scene, "val", downscale_factor=1))
    gt = val[0][GT_KEY]
    assert gt.dtype == torch.bool and tuple(gt.shape) == (48, 64, len(classes))
    assert gt[0, 0, 0] and not gt[0, 1, 0] and not gt[0, 2, 0]
    assert int(gt[..., 0].sum()) == 1


def test_bad_inputs_name_the_file(ovs_scene, tmp_path):
    scene = tmp_path / "s"
    shutil.copytree(ovs_scene, scene)
    np.save(scene / "poses_bounds.npy", np.load(scene / "poses_bounds.npy")[:5])
    with pytest.raises(OvsDataError, match=r"poses_bounds.npy: 5 pose rows for 6 images"):
        _parse(scene)
    shutil.copy(ovs_scene / "poses_bounds.npy", scene / "poses_bounds.npy")
    classes = llff.read_class_names(scene / "segmentations")
    (scene / "segmentations" / "003" / f"{classes[1]}.png").unlink()
    val = OvsDataset(_parse(scene, "val", downscale_factor=1))
    with pytest.raises(OvsDataError, match=f"003/{classes[1]}.png: missing mask"):
        val[1]
    (scene / "segmentations" / "view_a").mkdir()
    with pytest.raises(OvsDataError, match="integer image index"):
        _parse(scene)


def test_ndc_rays_contain_the_mapped_world_points(ovs_scene):
    """Every world point on a camera ray (beyond the near plane) maps onto that ray's NDC ray."""
    out = _parse(ovs_scene, downscale_factor=1)
    ndc = out.metadata["ndc"]
    rays = out.cameras.generate_rays(camera_indices=torch.tensor([[0], [3], [5]]), coords=torch.tensor([[0.5, 0.5], [24.0, 32.0], [47.5, 10.5]]))
    o, d = rays.origins.double(), rays.directions.double()
    o_n, d_n = ndc_rays(o, d, ndc["fx"], ndc["fy"], ndc["width"], ndc["height"], ndc["near"])
    for s in (1.5, 3.0, 7.0):
        x = o + s * d
        z = x[:, 2]
        p = torch.stack([-2 * ndc["fx"] / ndc["width"] * x[:, 0] / z, -2 * ndc["fy"] / ndc["height"] * x[:, 1] / z, 1 + 2 * ndc["near"] / z], -1)
        t = (p[:, 2] - o_n[:, 2]) / d_n[:, 2]
        torch.testing.assert_close(o_n + t[:, None] * d_n, p, atol=1e-9, rtol=0)
        assert bool(((t > 0) & (t < 1)).all())
        torch.testing.assert_close(ndc_to_world(p, ndc["fx"], ndc["fy"], ndc["width"], ndc["height"], ndc["near"]), x, atol=1e-9, rtol=0)
