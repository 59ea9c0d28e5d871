"""FeatureCache: hit, miss, invalidation by content/params/model, corruption and partial files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pcseg.foundation.cache import FeatureCache, cached_dense_features, cached_lerf_pyramid, cached_ovs_hierarchy
from pcseg.foundation.oracle import OracleDenseEncoder, OracleEncoder
from pcseg.foundation.pyramid import LerfPyramidConfig, OVSHierarchyConfig, extract_lerf_pyramid, extract_ovs_hierarchy


class CountingFill:
    def __init__(self, value: float):
        self.value, self.calls = value, 0

    def __call__(self, out: np.ndarray) -> None:
        self.calls += 1
        out[...] = self.value


def _entry(cache: FeatureCache, kind="dense", image="img0", params=None, model="m"):
    return kind, cache.make_key(kind, model, image, params or {"a": 1})


def test_miss_then_hit_returns_a_readonly_memmap(tmp_path):
    cache = FeatureCache(tmp_path)
    kind, key = _entry(cache)
    fill = CountingFill(2.5)
    first = cache.get_or_create(kind, key, (2, 3, 4), np.float16, fill, {"model": "m"})
    second = cache.get_or_create(kind, key, (2, 3, 4), np.float16, fill)
    assert fill.calls == 1
    assert isinstance(second, np.memmap) and not second.flags.writeable
    assert second.dtype == np.float16 and (second == 2.5).all() and (first == second).all()
    meta = json.loads((cache.entry_dir(kind, key) / "meta.json").read_text())
    assert meta["shape"] == [2, 3, 4] and meta["dtype"] == "float16" and meta["model"] == "m"
    assert key in cache.manifest()["entries"]
    # a second cache object (another process) finds it too
    assert FeatureCache(tmp_path).load(kind, key) is not None


def test_keys_change_with_image_params_and_model(tmp_path):
    cache = FeatureCache(tmp_path)
    base = cache.make_key("dense", "model-a", "img", {"p": 1})
    assert base == cache.make_key("dense", "model-a", "img", {"p": 1})
    assert len({
        base,
        cache.make_key("dense", "model-b", "img", {"p": 1}),
        cache.make_key("dense", "model-a", "img2", {"p": 1}),
        cache.make_key("dense", "model-a", "img", {"p": 2}),
        cache.make_key("ovs_hierarchy", "model-a", "img", {"p": 1}),
    }) == 5


def _corrupt_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: _corrupt_byte(d / "data.npy"),  # flipped bits, same size
        lambda d: (d / "data.npy").write_bytes((d / "data.npy").read_bytes()[:-10]),  # partial file
        lambda d: (d / "data.npy").unlink(),  # missing data
        lambda d: (d / "meta.json").write_text("{not json"),  # unreadable metadata
        lambda d: (d / "meta.json").unlink(),  # interrupted before metadata
    ],
    ids=["flipped-byte", "truncated", "missing-data", "bad-meta", "missing-meta"],
)
def test_damaged_entries_are_detected_and_recomputed(tmp_path, damage):
    cache = FeatureCache(tmp_path)
    kind, key = _entry(cache)
    fill = CountingFill(1.0)
    cache.get_or_create(kind, key, (4, 5), np.float32, fill)
    damage(cache.entry_dir(kind, key))
    fresh = FeatureCache(tmp_path)  # a new process: nothing verified yet
    assert fresh.load(kind, key) is None  # never handed out
    again = fresh.get_or_create(kind, key, (4, 5), np.float32, fill)
    assert fill.calls == 2 and (again == 1.0).all()


def test_size_only_verification_still_catches_truncation(tmp_path):
    cache = FeatureCache(tmp_path, verify="size")
    kind, key = _entry(cache)
    cache.get_or_create(kind, key, (8,), np.float32, CountingFill(3.0))
    data = cache.entry_dir(kind, key) / "data.npy"
    data.write_bytes(data.read_bytes()[:-4])
    assert cache.load(kind, key) is None


def test_a_failing_computation_leaves_no_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    kind, key = _entry(cache)

    def broken(out):
        out[0] = 1
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError):
        cache.get_or_create(kind, key, (3,), np.float32, broken)
    assert not cache.entry_dir(kind, key).exists()
    assert list(cache.entry_dir(kind, key).parent.iterdir()) == []  # no temporary left behind
    assert cache.get_or_create(kind, key, (3,), np.float32, CountingFill(4.0))[0] == 4.0


def test_manifest_is_rebuilt_from_entries(tmp_path):
    cache = FeatureCache(tmp_path)
    keys = []
    for i in range(3):
        kind, key = _entry(cache, image=f"img{i}")
        cache.get_or_create(kind, key, (2,), np.float16, CountingFill(i))
        keys.append(key)
    (tmp_path / "manifest.json").write_text("garbage")
    assert cache.manifest()["entries"] == {}
    rebuilt = cache.rebuild_manifest()
    assert sorted(rebuilt["entries"]) == sorted(keys)
    assert all(e["path"].startswith("dense/") for e in rebuilt["entries"].values())


def test_cached_hierarchy_hits_and_invalidates(tmp_path, palette, quadrant, monkeypatch):
    cache = FeatureCache(tmp_path)
    enc = OracleEncoder(palette, embed_dim=8, noise_std=0.05, input_size=(8, 8))
    image, _ = quadrant(20, 24)
    cfg = OVSHierarchyConfig(seed=0)
    feats = cached_ovs_hierarchy(cache, image, enc, cfg)
    assert feats.shape == (3, 8, 20, 24) and feats.dtype == np.float16
    assert np.array_equal(feats, extract_ovs_hierarchy(image, enc, cfg))

    import pcseg.foundation.pyramid as pyramid

    calls = []
    original = pyramid.extract_ovs_hierarchy
    monkeypatch.setattr(pyramid, "extract_ovs_hierarchy", lambda *a, **k: calls.append(1) or original(*a, **k))
    cached_ovs_hierarchy(cache, image, enc, cfg)
    cached_ovs_hierarchy(cache, (image * 255).round().byte().permute(1, 2, 0).numpy(), enc, cfg)  # other pixels
    assert len(calls) == 1
    cached_ovs_hierarchy(cache, image, enc, OVSHierarchyConfig(seed=1))  # other jitter
    cached_ovs_hierarchy(cache, image, OracleEncoder(palette, embed_dim=8, seed=9, input_size=(8, 8)), cfg)
    assert len(calls) == 3
    cached_ovs_hierarchy(cache, image, enc, OVSHierarchyConfig(seed=0, batch_size=7))  # batch size: same key
    assert len(calls) == 3


def test_cached_dense_and_lerf(tmp_path, palette, quadrant):
    cache = FeatureCache(tmp_path)
    image, _ = quadrant(24, 32)
    dense = OracleDenseEncoder(palette, embed_dim=8, patch_size=8)
    tokens = cached_dense_features(cache, image, dense)
    assert tokens.shape == (8, 3, 4)
    assert np.allclose(tokens, dense.encode_dense(image[None])[0].numpy(), atol=1e-3)
    enc = OracleEncoder(palette, embed_dim=8, input_size=(8, 8))
    cfg = LerfPyramidConfig(num_levels=3)
    pyr = cached_lerf_pyramid(cache, image, enc, cfg)
    ref = extract_lerf_pyramid(image, enc, cfg)
    assert all(np.array_equal(a.embeddings, b.embeddings) for a, b in zip(pyr.levels, ref.levels))
    assert all(isinstance(lv.embeddings, np.memmap) for lv in cached_lerf_pyramid(cache, image, enc, cfg).levels)
