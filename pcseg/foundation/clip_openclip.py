"""CLIP through open_clip: OpenAI ViT-B/16 (3D-OVS) and LAION-2B ViT-B/16 (LERF), or any open_clip model.

open_clip is imported here only (lazily). Weights come from a local file, the local weights folder,
or open_clip's hub download (see pcseg.foundation.weights); random initialisation only when asked
for (``pretrained="random"``, used by the tests with tiny ``model_overrides``).
"""

from __future__ import annotations

import copy
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from pcseg.foundation.interface import ImageTextEncoder
from pcseg.foundation.weights import (
    WeightsUnavailableError,
    check_checkpoint_path,
    file_digest,
    find_local_weights,
    unavailable,
)
from pcseg.utils.errors import ConfigError, DataError, MissingDependencyError

INSTALL_HINT = (
    "Install it with `pip install open_clip_torch 'timm>=1.0.17'` (after nerfstudio, in a second pip call: "
    "nerfstudio 1.1.5 pins timm==0.6.7 but never imports it); see docs/foundation.md."
)


def _import_open_clip():
    try:
        import open_clip
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("open_clip_torch", "CLIP encoders", INSTALL_HINT) from err
    return open_clip


def _is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in zf.namelist())


def _load_clip_weights(model: torch.nn.Module, path: Path, arch: str) -> None:
    """Load a CLIP checkpoint (open_clip state dict, safetensors, or OpenAI TorchScript) strictly."""
    open_clip = _import_open_clip()
    try:
        if _is_torchscript_archive(path):
            with warnings.catch_warnings():  # torch >= 2.9 marks TorchScript deprecated
                warnings.simplefilter("ignore", FutureWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
            # OpenAI's archives carry a few non-weight entries (and scripted open_clip models their
            # non-persistent attention mask): drop those the model does not store.
            expected = model.state_dict()
            for key in ("input_resolution", "context_length", "vocab_size", "attn_mask"):
                if key not in expected:
                    state.pop(key, None)
            model.load_state_dict(state, strict=True)
        else:
            open_clip.load_checkpoint(model, str(path), strict=True)
    except (RuntimeError, KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(path, f"not a usable {arch} CLIP checkpoint ({first[:300]})") from None


class OpenClipEncoder(ImageTextEncoder):
    """An open_clip model behind the ``ImageTextEncoder`` interface.

    Args:
        model: an open_clip CLIP model (eval mode).
        tokenizer: the matching open_clip tokenizer.
        name: display name.
        weights_id: identity of the weights (tag, file digest, or random seed) for the fingerprint.
        arch_id: identity of the architecture (name + overrides) for the fingerprint.
        precision: "fp32", "fp16" or "bf16".
        device: torch device.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        name: str,
        weights_id: str,
        arch_id: str,
        precision: str,
        device: torch.device,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.device = torch.device(device)
        self.precision = precision
        self._weights_id = weights_id
        self._arch_id = arch_id
        size = model.visual.image_size
        self.input_size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.embed_dim = int(model.visual.output_dim)
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        self._mean_values = tuple(float(v) for v in cfg.get("mean", OPENAI_DATASET_MEAN))
        self._std_values = tuple(float(v) for v in cfg.get("std", OPENAI_DATASET_STD))
        self._dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self._move(self.device)

    @property
    def fingerprint(self) -> str:
        return (
            f"open_clip|{self._arch_id}|weights={self._weights_id}|precision={self.precision}|"
            f"mean={self._mean_values}|std={self._std_values}|size={self.input_size}"
        )

    def _move(self, device: torch.device) -> None:
        self.model.to(device)
        self._mean = torch.tensor(self._mean_values, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(self._std_values, device=device).view(1, 3, 1, 1)

    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        x = ((images - self._mean) / self._std).to(self._dtype)
        return self.model.encode_image(x)

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens)

    @classmethod
    def from_spec(
        cls,
        spec,
        device: torch.device,
        checkpoint: str | Path | None = None,
        weights_dir: str | Path | None = None,
    ) -> "OpenClipEncoder":
        """Build from an ``EncoderSpec`` of kind ``open_clip`` (see pcseg.foundation.registry)."""
        open_clip = _import_open_clip()
        options = dict(spec.options)
        precision = options.pop("precision", "auto")
        quick_gelu = bool(options.pop("quick_gelu", False))
        overrides = copy.deepcopy(dict(options.pop("model_overrides", {}) or {}))
        init_seed = int(options.pop("init_seed", 0))
        if options:
            raise ConfigError(f"unknown open_clip encoder options {sorted(options)}")
        if precision == "auto":
            precision = "fp16" if device.type == "cuda" else "fp32"
        if precision not in ("fp32", "fp16", "bf16"):
            raise ConfigError(f"open_clip precision must be auto, fp32, fp16 or bf16, got {precision!r}")
        arch = spec.arch
        if open_clip.get_model_config(arch) is None:
            raise ConfigError(f"unknown open_clip architecture {arch!r}; see open_clip.list_models()")
        name = spec.display_name

        local: Path | None = None
        if checkpoint is not None:
            local = check_checkpoint_path(checkpoint)
        elif spec.pretrained != "random" and spec.name:
            local = find_local_weights(spec.name, weights_dir)

        build_kwargs: dict[str, Any] = dict(force_quick_gelu=quick_gelu, **overrides)
        if local is not None:
            model = cls._random_model(open_clip, arch, init_seed, build_kwargs)
            _load_clip_weights(model, local, arch)
            weights_id = "sha256:" + file_digest(local)
        elif spec.pretrained == "random":
            model = cls._random_model(open_clip, arch, init_seed, build_kwargs)
            weights_id = f"random-init:{init_seed}"
        elif spec.pretrained:
            tag = spec.pretrained
            if tag not in open_clip.list_pretrained_tags_by_model(arch):
                raise ConfigError(
                    f"open_clip has no pretrained tag {tag!r} for {arch}; "
                    f"known: {open_clip.list_pretrained_tags_by_model(arch)}"
                )
            try:
                model = open_clip.create_model(arch, pretrained=tag, device="cpu", **build_kwargs)
            except Exception as err:  # download / cache failures come in many types
                reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                if spec.source is not None:
                    raise unavailable(name, spec.source, reason, weights_dir) from None
                raise WeightsUnavailableError(
                    f"pretrained weights open_clip {arch}/{tag} could not be loaded ({reason}); download them "
                    "on a machine with internet and pass the file as checkpoint=..."
                ) from None
            weights_id = f"tag:{tag}"
        else:
            raise ConfigError(
                f"encoder {name!r} has neither a pretrained tag nor a checkpoint; pass checkpoint=... or set "
                "pretrained (use 'random' only for tests)"
            )
        if precision in ("fp16", "bf16"):
            open_clip.model.convert_weights_to_lp(model, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)
        context_length = int(getattr(model, "context_length", 77))
        tokenizer = open_clip.get_tokenizer(arch, context_length=context_length)
        arch_id = f"{arch}|quick_gelu={quick_gelu}|overrides={json.dumps(overrides, sort_keys=True)}"
        return cls(
            model,
            tokenizer,
            name=name,
            weights_id=weights_id,
            arch_id=arch_id,
            precision=precision,
            device=device,
        )

    @staticmethod
    def _random_model(open_clip, arch: str, seed: int, build_kwargs: dict) -> torch.nn.Module:
        import logging

        # Keyed initialisation that leaves the global RNG untouched; silence open_clip's
        # "initialized randomly" warning (weights are loaded right after, or random was asked for).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            level = logging.getLogger().level
            logging.getLogger().setLevel(logging.ERROR)
            try:
                return open_clip.create_model(arch, pretrained=None, device="cpu", **build_kwargs)
            finally:
                logging.getLogger().setLevel(level)
