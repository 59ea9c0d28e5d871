"""3D-OVS crop hierarchy and LERF tile pyramid: geometry, coverage, jitter, batched == loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pcseg.foundation.images import as_image_tensor, downsample_image, image_digest
from pcseg.foundation.pyramid import (
    LerfPyramidConfig,
    OVSHierarchyConfig,
    CPU_PIXELS_PER_CALL,
    box_average,
    crops_per_call,
    extract_lerf_pyramid,
    extract_ovs_hierarchy,
    extract_ovs_hierarchy_loop,
    lerf_level_geometry,
    ovs_crop_boxes,
    ovs_scales,
    window_starts,
)
from pcseg.foundation.resize import resize_batch


def test_window_starts_touch_the_border():
    assert window_starts(10, 4, 3).tolist() == [0, 3, 6]  # (10-4)/3 = 2 exactly: 3 windows
    assert window_starts(11, 4, 3).tolist() == [0, 3, 6, 7]  # remainder: one more, moved to the end
    assert window_starts(5, 5, 1).tolist() == [0]
    with pytest.raises(ValueError):
        window_starts(3, 4, 1)


def test_scales_follow_3dovs_and_guard_stride_zero():
    scales = ovs_scales(30, 40, OVSHierarchyConfig())
    assert [(s.patch, s.stride, s.jitter) for s in scales] == [(6, 1, 1), (4, 1, 1), (3, 1, 0)]
    tiny = ovs_scales(7, 9, OVSHierarchyConfig())  # min // 10 == 0: patch and stride clamp to 1
    assert [(s.patch, s.stride) for s in tiny] == [(1, 1), (1, 1), (1, 1)]
    # 3D-OVS at 1/8 of a 4032x3024 photo: about 3.4k CLIP passes per image
    counts = [len(b) for b in ovs_crop_boxes(378, 504, OVSHierarchyConfig())]
    assert counts == [450, 936, 2067]


@pytest.mark.parametrize("height,width", [(30, 40), (7, 9), (5, 5), (64, 17), (41, 100)])
def test_every_pixel_is_covered_at_every_scale(height, width):
    for boxes in ovs_crop_boxes(height, width, OVSHierarchyConfig(seed=3)):
        count = np.zeros((height, width), dtype=int)
        for y0, x0, y1, x1 in boxes:
            count[y0:y1, x0:x1] += 1
        assert count.min() >= 1


def test_jitter_is_bounded_seeded_and_inside_the_image():
    cfg = OVSHierarchyConfig(seed=11)
    plain = ovs_crop_boxes(50, 70, OVSHierarchyConfig(seed=11, jitter=False))
    jittered = ovs_crop_boxes(50, 70, cfg, key="img-a")
    assert [b.tolist() for b in jittered] == [b.tolist() for b in ovs_crop_boxes(50, 70, cfg, key="img-a")]
    assert any((a != b).any() for a, b in zip(jittered, ovs_crop_boxes(50, 70, cfg, key="img-b")))
    assert any((a != b).any() for a, b in zip(jittered, ovs_crop_boxes(50, 70, OVSHierarchyConfig(seed=12), key="img-a")))
    for scale, win, box in zip(ovs_scales(50, 70, cfg), plain, jittered):
        assert (win[:, 2] - win[:, 0] == scale.patch).all() and (win[:, 3] - win[:, 1] == scale.patch).all()
        assert (box[:, :2] >= 0).all() and (box[:, 2] <= 50).all() and (box[:, 3] <= 70).all()
        outward = np.concatenate([win[:, :2] - box[:, :2], box[:, 2:] - win[:, 2:]], axis=1)
        assert outward.min() >= 0 and outward.max() <= scale.jitter
        assert outward.max() == scale.jitter  # the full range is used on a grid this large


def test_box_average_equals_the_naive_loop():
    rng = np.random.default_rng(0)
    h, w = 13, 17
    boxes = []
    for _ in range(40):
        y0, x0 = rng.integers(0, h - 1), rng.integers(0, w - 1)
        boxes.append([y0, x0, rng.integers(y0 + 1, h + 1), rng.integers(x0 + 1, w + 1)])
    boxes = np.array(boxes)
    emb = torch.randn(40, 5, dtype=torch.float64)
    total, count = np.zeros((5, h, w)), np.zeros((h, w))
    for e, (y0, x0, y1, x1) in zip(emb.numpy(), boxes):
        total[:, y0:y1, x0:x1] += e[:, None, None]
        count[y0:y1, x0:x1] += 1
    ref = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    got = box_average(emb, boxes, h, w)
    assert got.dtype == np.float32
    assert np.allclose(got, ref, atol=1e-6)
    assert (count == 0).any()  # uncovered pixels exist here and come out as 0


def test_box_average_casts_into_a_float16_memmap_and_refuses_read_only_output(tmp_path):
    rng = np.random.default_rng(1)
    h, w = 9, 12
    boxes = np.array([[0, 0, 9, 12], [2, 3, 7, 12], [8, 0, 9, 1], [0, 11, 9, 12]])
    emb = torch.from_numpy(rng.normal(size=(4, 6)).astype(np.float32))
    ref = box_average(emb, boxes, h, w)
    total, count = np.zeros((6, h, w)), np.zeros((h, w))
    for e, (y0, x0, y1, x1) in zip(emb.numpy().astype(np.float64), boxes):
        total[:, y0:y1, x0:x1] += e[:, None, None]
        count[y0:y1, x0:x1] += 1
    assert np.abs(ref - total / count).max() < 1e-6
    out = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float16, shape=(6, h, w))
    assert box_average(emb, boxes, h, w, out=out) is out
    assert np.array_equal(np.load(tmp_path / "f.npy"), ref.astype(np.float16))
    with pytest.raises(ValueError, match="read-only"):
        box_average(emb, boxes, h, w, out=np.load(tmp_path / "f.npy", mmap_mode="r"))


def test_crops_per_call_caps_large_inputs_on_the_cpu_only():
    from types import SimpleNamespace

    cpu = torch.device("cpu")
    assert crops_per_call(64, SimpleNamespace(device=cpu, input_size=(32, 32))) == 64
    assert crops_per_call(64, SimpleNamespace(device=cpu, input_size=(224, 224))) == 16
    assert crops_per_call(64, SimpleNamespace(device=cpu, input_size=(2000, 2000))) == 1
    assert crops_per_call(8, SimpleNamespace(device=cpu, input_size=(224, 224))) == 8
    assert CPU_PIXELS_PER_CALL // (224 * 224) == 16
    assert crops_per_call(64, SimpleNamespace(device=torch.device("cuda"), input_size=(224, 224))) == 64


def test_batched_equals_loop_with_the_oracle(oracle, quadrant):
    image, _ = quadrant(24, 31)
    cfg = OVSHierarchyConfig(seed=5, batch_size=32)
    fast = extract_ovs_hierarchy(image, oracle, cfg, dtype=np.float32)
    loop = extract_ovs_hierarchy_loop(image, oracle, cfg, dtype=np.float32)
    assert fast.shape == (3, oracle.embed_dim, 24, 31)
    assert np.abs(fast - loop).max() < 1e-5
    half = extract_ovs_hierarchy(image, oracle, cfg)
    assert half.dtype == np.float16 and np.abs(half.astype(np.float32) - fast).max() < 2e-3


def test_batched_equals_loop_with_tiny_clip_and_any_batch_size(tiny_clip):
    image = torch.rand(3, 21, 26, generator=torch.Generator().manual_seed(0))
    cfg = OVSHierarchyConfig(seed=1, batch_size=64)
    fast = extract_ovs_hierarchy(image, tiny_clip, cfg, dtype=np.float32)
    loop = extract_ovs_hierarchy_loop(image, tiny_clip, cfg, dtype=np.float32)
    scale = np.abs(loop).max()
    assert np.abs(fast - loop).max() < 1e-5 * scale
    small_batches = extract_ovs_hierarchy(image, tiny_clip, OVSHierarchyConfig(seed=1, batch_size=7), dtype=np.float32)
    assert np.abs(small_batches - fast).max() < 1e-5 * scale
    # the official script's grouping (8 crops per encoder call) gives the same loop result
    loop8 = extract_ovs_hierarchy_loop(image, tiny_clip, cfg, dtype=np.float32, encode_chunk=8)
    assert np.abs(loop8 - loop).max() < 1e-5 * scale
    with pytest.raises(ValueError, match="encode_chunk"):
        extract_ovs_hierarchy_loop(image, tiny_clip, cfg, encode_chunk=0)


def test_hierarchy_writes_into_a_given_memmap(tmp_path, oracle, quadrant):
    image, _ = quadrant(20, 20)
    out = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float16, shape=(3, oracle.embed_dim, 20, 20))
    res = extract_ovs_hierarchy(image, oracle, out=out)
    assert res is out
    assert np.array_equal(np.load(tmp_path / "f.npy"), extract_ovs_hierarchy(image, oracle))
    with pytest.raises(ValueError, match="shape"):
        extract_ovs_hierarchy(image, oracle, out=np.zeros((2, 2)))


def test_image_inputs_are_canonicalised():
    rgb = np.random.default_rng(0).integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
    t = as_image_tensor(rgb)
    assert t.shape == (3, 12, 20) and t.dtype == torch.float32
    assert torch.equal(t, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    assert image_digest(rgb) == image_digest(t) != image_digest(t.flip(0))
    small = downsample_image(rgb, 4)
    assert small.shape == (3, 3, 5)
    assert torch.allclose(small, resize_batch(t[None], (3, 5))[0])
    with pytest.raises(ValueError):
        as_image_tensor(np.zeros((4, 4)))


# ---------------------------------------------------------------------------------------------- LERF


def test_lerf_geometry_by_hand():
    kernel, stride, pad, cy, cx = lerf_level_geometry(100, 60, 0.05, 0.5)
    assert (kernel, stride, pad) == (5, 5, 2)
    assert len(cy) == 20 and np.allclose(cy, 5 * np.arange(20))  # centre (k-1)/2 - pad + s i
    kernel, stride, pad, cy, cx = lerf_level_geometry(100, 60, 0.5, 0.5)
    assert (kernel, stride, pad) == (50, 25, 25)
    assert np.allclose(cy, -0.5 + 25 * np.arange(5)) and len(cx) == 3
    kernel, stride, _, _, _ = lerf_level_geometry(100, 60, 0.1, 0.5)
    assert (kernel, stride) == (10, 7)  # stride ratio interpolates 1 -> 0.5 between 5% and 15%


def test_lerf_tiles_match_unfold_and_the_lookups_interpolate(tiny_clip):
    image = torch.rand(3, 40, 30, generator=torch.Generator().manual_seed(2))
    cfg = LerfPyramidConfig(batch_size=16)
    pyr = extract_lerf_pyramid(image, tiny_clip, cfg)
    assert pyr.num_levels == 7
    for lv in pyr.levels:
        tiles = F.unfold(image[None], lv.kernel, padding=lv.padding, stride=lv.stride)  # (1, 3*k*k, L)
        tiles = tiles[0].T.reshape(-1, 3, lv.kernel, lv.kernel)
        ref = F.normalize(tiny_clip.encode_images(resize_batch(tiles, tiny_clip.input_size)), dim=-1)
        n_rows, n_cols = len(lv.centers_y), len(lv.centers_x)
        assert lv.embeddings.shape == (n_rows + 1, n_cols + 1, 16) and lv.embeddings.dtype == np.float16
        grid = torch.from_numpy(lv.embeddings[:n_rows, :n_cols].astype(np.float32)).reshape(-1, 16)
        assert torch.allclose(grid, ref, atol=2e-3)
        assert np.array_equal(lv.embeddings[-1], lv.embeddings[-2]) and np.array_equal(lv.embeddings[:, -1], lv.embeddings[:, -2])
    # at a tile centre the lookup returns that tile; halfway between two centres, their mean
    lv = pyr.levels[2]
    r, c = lv.centers_y[1], lv.centers_x[1]
    got = pyr.interpolate(2, [r], [c])[0]
    assert torch.allclose(got, torch.from_numpy(lv.embeddings[1, 1].astype(np.float32)), atol=1e-6)
    mid = pyr.interpolate(2, [r], [c + lv.stride / 2])[0]
    expect = (lv.embeddings[1, 1].astype(np.float32) + lv.embeddings[1, 2].astype(np.float32)) / 2
    assert torch.allclose(mid, torch.from_numpy(expect), atol=1e-6)
    # normalised scale 0 / 1 picks the first / last level
    rows, cols = torch.tensor([0, 10, 39]), torch.tensor([0, 29, 15])
    assert torch.allclose(pyr.at_scale(rows, cols, 0.0), F.normalize(pyr.interpolate(0, rows, cols), dim=-1), atol=1e-6)
    assert torch.allclose(pyr.at_scale(rows, cols, 1.0), F.normalize(pyr.interpolate(6, rows, cols), dim=-1), atol=1e-6)
    emb, scale = pyr.random_scales(rows, cols, torch.Generator().manual_seed(0))
    emb2, scale2 = pyr.random_scales(rows, cols, torch.Generator().manual_seed(0))
    assert torch.equal(emb, emb2) and torch.equal(scale, scale2)
    assert emb.shape == (3, 16) and scale.shape == (3, 1) and 0 <= scale.min() and scale.max() <= 1
