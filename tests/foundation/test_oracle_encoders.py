"""The oracle encoders: decode classes from colour, blur with crop size, disagree across views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pcseg.foundation import build_encoder
from pcseg.foundation.oracle import OracleDenseEncoder, OracleEncoder, Palette
from pcseg.foundation.pyramid import OVSHierarchyConfig, extract_ovs_hierarchy
from pcseg.foundation.relevancy import cosine_maps
from pcseg.utils.errors import ConfigError


def _solid(rgb, size=(16, 16), shade=1.0):
    return (torch.tensor(rgb, dtype=torch.float32) / 255.0 * shade).view(1, 3, 1, 1).expand(1, 3, *size).clone()


@pytest.mark.parametrize("shade", [1.0, 0.8, 0.5])
def test_palette_decodes_shaded_colours(palette, shade):
    pal = Palette(palette)
    colours = torch.tensor(pal.rgb, dtype=torch.float32).T[None, :, :, None] / 255.0 * shade  # (1, 3, K, 1)
    probs = pal.probabilities(colours)[0, :, :, 0]  # (K classes, K pixels)
    assert torch.allclose(probs.sum(dim=0), torch.ones(len(pal)))
    assert torch.equal(probs.argmax(dim=0), torch.arange(len(pal)))
    assert probs.diagonal().min() > 0.95


def test_palette_rejects_bad_input():
    with pytest.raises(ConfigError, match="empty"):
        Palette({})
    with pytest.raises(ConfigError, match="0..255"):
        Palette({"a": (300, 0, 0)})
    with pytest.raises(ConfigError, match="temperature"):
        Palette({"a": (1, 2, 3)}, temperature=0)


def test_crop_embedding_is_the_class_mixture_plus_keyed_noise(palette):
    clean = OracleEncoder(palette, embed_dim=32, noise_std=0.0, seed=1, input_size=(16, 16))
    noisy = OracleEncoder(palette, embed_dim=32, noise_std=0.2, seed=1, input_size=(16, 16))
    pal = clean.palette
    red, green = _solid(palette["red apple"]), _solid(palette["green book"], shade=0.7)
    half = torch.cat([red[..., :8], green[..., 8:]], dim=3)
    e = clean.class_embeddings
    # a one-class crop embeds as (almost exactly) its class embedding
    assert F.cosine_similarity(clean.encode_images(red), e[pal.index("red apple")][None]).item() > 0.999
    # a two-class crop embeds as the probability-weighted mean: here about half and half
    got = clean.encode_images(half)[0]
    mix = pal.probabilities(half).mean(dim=(2, 3))[0]
    assert torch.allclose(got, mix @ e, atol=1e-6)
    assert abs(mix[pal.index("red apple")].item() - 0.5) < 0.02 and abs(mix[pal.index("green book")].item() - 0.5) < 0.02
    # noise: a deterministic function of the content, about noise_std in norm
    n1 = noisy.encode_images(half) - clean.encode_images(half)
    assert torch.equal(noisy.encode_images(half), noisy.encode_images(half.clone()))
    shifted = half.clone()
    shifted[..., :2, :] *= 0.9  # same classes, different pixels (another view of the same object)
    n2 = noisy.encode_images(shifted) - clean.encode_images(shifted)
    assert not torch.allclose(n1, n2)
    crops = torch.rand(200, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    noise = noisy.encode_images(crops) - clean.encode_images(crops)
    assert 0.15 < noise.norm(dim=1).mean().item() < 0.25
    # different contents: nearly uncorrelated noise; float-rounding-sized changes: the same noise
    cos = F.normalize(noise, dim=1) @ F.normalize(noise, dim=1).T
    assert cos[~torch.eye(200, dtype=torch.bool)].abs().mean() < 0.25
    wiggled = noisy.encode_images((crops + 1e-6).clamp(0, 1)) - clean.encode_images((crops + 1e-6).clamp(0, 1))
    assert (wiggled - noise).norm(dim=1).max() < 1e-3


def test_text_encoder_matches_the_class_embeddings(palette):
    enc = OracleEncoder(palette, embed_dim=32, seed=4)
    texts = enc.encode_text(["green book", " red apple ", "a purple unicorn", "a purple unicorn", "stuff"])
    assert torch.allclose(texts[0], enc.class_embeddings[enc.palette.index("green book")])
    assert torch.allclose(texts[1], enc.class_embeddings[enc.palette.index("red apple")])
    assert torch.allclose(texts.norm(dim=1), torch.ones(5))
    assert torch.equal(texts[2], texts[3])  # unknown strings: hashed, deterministic
    assert not torch.allclose(texts[2], texts[4])
    other_seed = OracleEncoder(palette, embed_dim=32, seed=5).encode_text(["a purple unicorn"])
    assert not torch.allclose(texts[2], other_seed[0])
    # the class embedding of a name does not depend on which other classes are in the palette
    alone = OracleEncoder({"green book": palette["green book"]}, embed_dim=32, seed=4)
    assert torch.allclose(alone.encode_text(["green book"]), texts[:1])


def test_oracle_is_buildable_from_a_config_mapping(palette):
    enc = build_encoder({"kind": "oracle", "options": {"palette": palette, "embed_dim": 8, "seed": 2}})
    assert isinstance(enc, OracleEncoder) and enc.embed_dim == 8
    dense = build_encoder({"kind": "oracle_dense", "options": {"palette": palette, "embed_dim": 8}})
    assert isinstance(dense, OracleDenseEncoder)
    with pytest.raises(ConfigError, match="no weights"):
        build_encoder({"kind": "oracle", "options": {"palette": palette}}, checkpoint="x.pt")
    with pytest.raises(ConfigError, match="bad options"):
        build_encoder({"kind": "oracle", "options": {"palette": palette, "colour": 1}})


def test_dense_oracle_tokens_separate_classes(palette, quadrant):
    image, labels = quadrant(32, 48)
    enc = OracleDenseEncoder(palette, embed_dim=16, patch_size=8, noise_std=0.05, seed=0)
    tokens = enc.encode_dense(image[None])[0]  # (16, 4, 6)
    assert tokens.shape == (16, 4, 6)
    flat = F.normalize(tokens.reshape(16, -1).T, dim=1)
    patch_labels = labels[4::8, 4::8].reshape(-1)  # patch-centre labels
    pure = F.avg_pool2d(F.one_hot(labels, 4).permute(2, 0, 1).float()[None], 8)[0].amax(dim=0).reshape(-1) == 1
    sim = flat @ flat.T
    same = (patch_labels[:, None] == patch_labels[None, :]) & pure[:, None] & pure[None, :]
    diff = (patch_labels[:, None] != patch_labels[None, :]) & pure[:, None] & pure[None, :]
    assert sim[same].min() > 0.9
    assert sim[diff].max() < 0.6
    # content-keyed noise: identical patches at different places get identical tokens
    assert torch.equal(enc.encode_dense(image[None]), enc.encode_dense(image[None].clone()))


def test_hierarchy_through_the_oracle_recovers_labels_and_blurs_with_scale(oracle, quadrant, palette):
    image, labels = quadrant(30, 40)
    feats = extract_ovs_hierarchy(image, oracle, OVSHierarchyConfig(seed=0), dtype=np.float32)
    text = oracle.encode_text(list(palette))
    cos = cosine_maps(feats, text)  # (3, C, h, w)
    pred = cos.argmax(dim=1)  # (3, h, w)
    accuracy = [(pred[s] == labels).float().mean().item() for s in range(3)]
    true_cos = cos.gather(1, labels[None, None].expand(3, 1, -1, -1))[:, 0]  # (3, h, w)
    assert accuracy[2] > 0.9  # finest scale: the class of (almost) every pixel is recovered
    # larger crops mix classes: agreement with the true class drops as the patch grows
    means = [true_cos[s].mean().item() for s in range(3)]
    assert means[0] < means[1] < means[2]
