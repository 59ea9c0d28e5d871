"""Fixtures of the foundation-model tests: tiny random-init real architectures and oracle palettes.

Nothing here touches the network (HF_HUB_OFFLINE=1). The tiny models keep the real architectures
(open_clip ViT-B-16 with a small custom config; timm ViT with 8-px patches) at toy widths.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before any huggingface_hub import

import pytest
import torch

TINY_CLIP_OVERRIDES = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_DINO_OVERRIDES = {"embed_dim": 32, "depth": 2, "num_heads": 2}

PALETTE = {
    "red apple": (210, 35, 35),
    "green book": (40, 170, 60),
    "blue mug": (40, 80, 210),
    "white wall": (225, 225, 215),
}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors on a shared 2-core machine: one intra-op thread avoids OpenMP spin waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny_clip_spec(seed: int = 0, **extra) -> dict:
    return {
        "kind": "open_clip",
        "arch": "ViT-B-16",
        "pretrained": "random",
        "options": {"model_overrides": TINY_CLIP_OVERRIDES, "init_seed": seed, **extra},
    }


def _tiny_dino_spec(facet: str = "tokens", seed: int = 0) -> dict:
    return {
        "kind": "timm_dino",
        "arch": "vit_small_patch8_224",
        "pretrained": "random",
        "options": {"facet": facet, "model_overrides": TINY_DINO_OVERRIDES, "init_seed": seed},
    }


@pytest.fixture(scope="session")
def tiny_clip_spec():
    """Factory: spec of a tiny random-init open_clip ViT-B-16 (``seed``, extra options)."""
    return _tiny_clip_spec


@pytest.fixture(scope="session")
def tiny_dino_spec():
    """Factory: spec of a tiny random-init timm ViT with 8-px patches (``facet``, ``seed``)."""
    return _tiny_dino_spec


@pytest.fixture(scope="session")
def tiny_clip():
    pytest.importorskip("open_clip")
    from pcseg.foundation import build_encoder

    return build_encoder(_tiny_clip_spec())


@pytest.fixture(scope="session")
def tiny_dino():
    pytest.importorskip("timm")
    from pcseg.foundation import build_encoder

    return build_encoder(_tiny_dino_spec())


@pytest.fixture()
def palette() -> dict:
    return dict(PALETTE)


@pytest.fixture()
def oracle(palette):
    from pcseg.foundation.oracle import OracleEncoder

    return OracleEncoder(palette, embed_dim=24, noise_std=0.05, seed=3, input_size=(16, 16))


@pytest.fixture()
def quadrant():
    """Factory: (image (3, H, W) in [0, 1], labels (H, W)): left red, right green, bottom third blue, shaded."""
    return _quadrant_image


def _quadrant_image(height: int = 30, width: int = 40):
    from pcseg.foundation.oracle import Palette

    pal = Palette(PALETTE)
    labels = torch.zeros(height, width, dtype=torch.long)
    labels[:, width // 2 :] = pal.index("green book")
    labels[2 * height // 3 :, :] = pal.index("blue mug")
    rgb = torch.as_tensor(pal.rgb, dtype=torch.float32)[labels] / 255.0  # (H, W, 3)
    shade = torch.linspace(0.7, 1.0, width)[None, :, None]
    return (rgb * shade).permute(2, 0, 1).contiguous(), labels
