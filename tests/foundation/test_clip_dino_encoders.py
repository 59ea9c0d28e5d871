"""Real architectures (tiny random-init open_clip ViT-B-16 and timm ViT/8) behind the encoder interfaces."""

from __future__ import annotations

import pytest
import torch

from pcseg.foundation import WeightsUnavailableError, build_encoder
from pcseg.foundation.interface import DenseEncoder, ImageTextEncoder
from pcseg.foundation.resize import resize_batch
from pcseg.utils.errors import ConfigError, DataError, MissingDependencyError

open_clip = pytest.importorskip("open_clip")
timm = pytest.importorskip("timm")


def test_clip_shapes_and_normalisation(tiny_clip):
    assert isinstance(tiny_clip, ImageTextEncoder)
    assert tiny_clip.embed_dim == 16 and tiny_clip.input_size == (32, 32)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    emb = tiny_clip.encode_images(x)
    assert emb.shape == (3, 16) and emb.dtype == torch.float32
    assert not torch.allclose(emb.norm(dim=1), torch.ones(3))  # image embeddings are not normalised
    txt = tiny_clip.encode_text(["a chair", "wall", "a red apple on a table"])
    assert txt.shape == (3, 16)
    assert torch.allclose(txt.norm(dim=1), torch.ones(3), atol=1e-5)
    assert tiny_clip.encode_text([]).shape == (0, 16)
    with pytest.raises(TypeError):
        tiny_clip.encode_text("a chair")


def test_clip_resizes_foreign_sizes_and_is_batch_invariant(tiny_clip):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 40, 50, generator=gen)
    direct = tiny_clip.encode_images(x)
    assert torch.allclose(direct, tiny_clip.encode_images(resize_batch(x, (32, 32))), atol=1e-6)
    one_by_one = torch.cat([tiny_clip.encode_images(x[i : i + 1]) for i in range(4)])
    assert torch.allclose(direct, one_by_one, atol=1e-5)


def test_clip_random_init_is_keyed(tiny_clip, tiny_clip_spec):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    again = build_encoder(tiny_clip_spec(seed=0))
    other = build_encoder(tiny_clip_spec(seed=1))
    assert again.fingerprint == tiny_clip.fingerprint
    assert torch.equal(again.encode_images(x), tiny_clip.encode_images(x))
    assert other.fingerprint != tiny_clip.fingerprint
    assert not torch.allclose(other.encode_images(x), tiny_clip.encode_images(x))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_clip_checkpoint_round_trip(tmp_path, tiny_clip, tiny_clip_spec, suffix):
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in tiny_clip.model.state_dict().items()}
    if suffix == ".pt":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file(state, str(path))
    loaded = build_encoder(tiny_clip_spec(seed=7), checkpoint=path)  # seed 7 init is overwritten
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(loaded.encode_images(x), tiny_clip.encode_images(x), atol=1e-6)
    assert torch.allclose(loaded.encode_text(["x y"]), tiny_clip.encode_text(["x y"]), atol=1e-6)
    assert "sha256:" in loaded.fingerprint and loaded.fingerprint != tiny_clip.fingerprint


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_clip_loads_openai_style_torchscript_archive(tmp_path, tiny_clip, tiny_clip_spec):
    """OpenAI distributes ViT-B-16.pt as a TorchScript archive; such files load through checkpoint=."""
    spec = tiny_clip_spec()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        scripted = open_clip.create_model("ViT-B-16", pretrained=None, jit=True, **spec["options"]["model_overrides"])
    scripted.load_state_dict(tiny_clip.model.state_dict(), strict=False)
    path = tmp_path / "ViT-B-16.pt"
    torch.jit.save(scripted, str(path))
    loaded = build_encoder(tiny_clip_spec(seed=9), checkpoint=path)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(loaded.encode_images(x), tiny_clip.encode_images(x), atol=1e-6)


def test_clip_bad_checkpoints_are_one_line_data_errors(tmp_path, tiny_clip_spec):
    with pytest.raises(DataError, match="checkpoint file not found"):
        build_encoder(tiny_clip_spec(), checkpoint=tmp_path / "missing.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save({"visual.conv1.weight": torch.zeros(3)}, wrong)
    with pytest.raises(DataError) as info:
        build_encoder(tiny_clip_spec(), checkpoint=wrong)
    assert str(wrong) in str(info.value) and "not a usable ViT-B-16 CLIP checkpoint" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="must be a file"):
        build_encoder(tiny_clip_spec(), checkpoint=tmp_path)
    odd = tmp_path / "weights.ckpt"
    odd.write_bytes(b"x")
    with pytest.raises(DataError, match="unsupported checkpoint type"):
        build_encoder(tiny_clip_spec(), checkpoint=odd)


def test_local_weights_folder_is_used_before_the_hub(tmp_path, tiny_clip, tiny_clip_spec):
    torch.save(tiny_clip.model.state_dict(), tmp_path / "my-clip.pt")
    spec = tiny_clip_spec(seed=5) | {"pretrained": "laion2b_s34b_b88k", "name": "my-clip"}
    enc = build_encoder(spec, weights_dir=tmp_path)  # the hub is offline: this must come from the folder
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(enc.encode_images(x), tiny_clip.encode_images(x), atol=1e-6)


@pytest.fixture()
def empty_hub(tmp_path, monkeypatch):
    """An offline hub with an empty cache, whatever this machine has downloaded."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PCSEG_WEIGHTS_DIR", str(tmp_path / "pcseg-weights"))
    return tmp_path / "pcseg-weights"


@pytest.mark.parametrize(
    "name,expected",
    [
        ("clip-vit-b16-openai", "huggingface.co/timm/vit_base_patch16_clip_224.openai/resolve/main/open_clip_pytorch_model.bin"),
        ("clip-vit-b16-laion2b", "huggingface.co/laion/CLIP-ViT-B-16-laion2B-s34B-b88K/resolve/main/open_clip_pytorch_model.bin"),
        ("dino-vitb8", "huggingface.co/timm/vit_base_patch8_224.dino/resolve/main/model.safetensors"),
        ("dino-vits8", "huggingface.co/timm/vit_small_patch8_224.dino/resolve/main/model.safetensors"),
    ],
)
def test_offline_without_weights_says_what_to_download_and_where(empty_hub, name, expected):
    with pytest.raises(WeightsUnavailableError) as info:
        build_encoder(name)
    message = str(info.value)
    assert isinstance(info.value, MissingDependencyError)
    assert "\n" not in message
    assert expected in message
    assert str(empty_hub / name) in message  # where to put it
    assert "checkpoint=" in message and "HF_HUB_OFFLINE" in message


def test_bad_specs_are_config_errors(tiny_clip_spec):
    with pytest.raises(ConfigError, match="unknown encoder"):
        build_encoder("clip-vit-h14-nonsense")
    with pytest.raises(ConfigError, match="unknown open_clip encoder options"):
        build_encoder(tiny_clip_spec(colour="blue"))
    with pytest.raises(ConfigError, match="unknown open_clip architecture"):
        build_encoder({"kind": "open_clip", "arch": "ViT-Q-99", "pretrained": "random"})
    with pytest.raises(ConfigError, match="no pretrained tag"):
        build_encoder({"kind": "open_clip", "arch": "ViT-B-16", "pretrained": "not-a-tag"})
    with pytest.raises(ConfigError, match="neither a pretrained tag nor a checkpoint"):
        build_encoder({"kind": "open_clip", "arch": "ViT-B-16"})
    with pytest.raises(ConfigError, match="unknown encoder kind"):
        build_encoder({"kind": "sam"})


# ------------------------------------------------------------------------------------------ DINO


def _manual_tokens(enc, images):
    """Reference: run timm's ViT pieces by hand; return (tokens after last block, keys of last layer)."""
    m = enc.model
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = m.patch_embed((images - mean) / std)
    b, h, w, _ = x.shape
    x = m.norm_pre(m.patch_drop(m._pos_embed(x)))
    for blk in m.blocks[:-1]:
        x = blk(x)
    qkv = m.blocks[-1].attn.qkv(m.blocks[-1].norm1(x))
    keys = qkv[..., m.embed_dim : 2 * m.embed_dim]
    x = m.blocks[-1](x)
    grid = lambda t: t[:, m.num_prefix_tokens :].reshape(b, h, w, -1).permute(0, 3, 1, 2)  # noqa: E731
    return grid(x), grid(keys)


def test_dino_facets_match_a_hand_run_of_the_vit(tiny_dino_spec):
    images = torch.rand(2, 3, 24, 40, generator=torch.Generator().manual_seed(6))
    tokens_enc = build_encoder(tiny_dino_spec("tokens"))
    keys_enc = build_encoder(tiny_dino_spec("key"))
    assert isinstance(tokens_enc, DenseEncoder) and tokens_enc.patch_size == 8 and tokens_enc.embed_dim == 32
    with torch.no_grad():
        ref_tokens, ref_keys = _manual_tokens(tokens_enc, images)
    got_tokens = tokens_enc.encode_dense(images)
    got_keys = keys_enc.encode_dense(images)
    assert got_tokens.shape == got_keys.shape == (2, 32, 3, 5)
    assert torch.allclose(got_tokens, ref_tokens, atol=1e-5)
    assert torch.allclose(got_keys, ref_keys, atol=1e-5)
    assert tokens_enc.fingerprint != keys_enc.fingerprint


def test_dino_ignores_a_remainder_smaller_than_a_patch(tiny_dino):
    images = torch.rand(1, 3, 29, 43, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(tiny_dino.encode_dense(images), tiny_dino.encode_dense(images[..., :24, :40]), atol=1e-6)
    with pytest.raises(ValueError, match="smaller than one"):
        tiny_dino.encode_dense(torch.rand(1, 3, 5, 40))


def test_dino_checkpoint_round_trip(tmp_path, tiny_dino, tiny_dino_spec):
    from safetensors.torch import save_file

    path = tmp_path / "dino.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_dino.model.state_dict().items()}, str(path))
    loaded = build_encoder(tiny_dino_spec(seed=3), checkpoint=path)
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    assert torch.allclose(loaded.encode_dense(images), tiny_dino.encode_dense(images), atol=1e-6)
    wrong = tmp_path / "wrong.pth"
    torch.save({"blocks.0.attn.qkv.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(DataError, match="not a usable vit_small_patch8_224 checkpoint"):
        build_encoder(tiny_dino_spec(), checkpoint=wrong)
