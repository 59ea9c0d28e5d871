"""DINO ViT-B/8 and ViT-S/8 through timm, behind the ``DenseEncoder`` interface.

Two facets (what a "DINO feature" means differs between the papers):

* ``tokens`` (3D-OVS ``DINO_extractor``): output tokens of the last block, before the final norm, CLS
  dropped → (B, 768, H/8, W/8) for ViT-B/8.
* ``key`` (LERF's extractor): the attention keys of the last layer, heads concatenated, CLS dropped →
  (B, 384, H/8, W/8) for ViT-S/8.

Any input size works (timm ``dynamic_img_size``: position embeddings are interpolated bicubically).
timm is imported here only (lazily).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

from pcseg.foundation.interface import DenseEncoder
from pcseg.foundation.weights import (
    WeightsUnavailableError,
    check_checkpoint_path,
    file_digest,
    find_local_weights,
    unavailable,
)
from pcseg.utils.errors import ConfigError, DataError, MissingDependencyError

FACETS = ("tokens", "key")
INSTALL_HINT = (
    "Install it with `pip install 'timm>=1.0.17'` (after nerfstudio, in a second pip call: nerfstudio 1.1.5 "
    "pins timm==0.6.7 but never imports it); see docs/foundation.md."
)


def _import_timm():
    try:
        import timm
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("timm", "DINO encoders", INSTALL_HINT) from err
    return timm


class TimmDinoEncoder(DenseEncoder):
    """A timm VisionTransformer as a dense patch-token encoder.

    Args:
        model: timm VisionTransformer built with ``dynamic_img_size=True`` (eval mode).
        facet: "tokens" or "key" (module docstring).
        name: display name.
        weights_id: identity of the weights for the fingerprint.
        arch_id: identity of the architecture for the fingerprint.
        device: torch device.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        facet: str,
        name: str,
        weights_id: str,
        arch_id: str,
        device: torch.device,
    ):
        if facet not in FACETS:
            raise ConfigError(f"DINO facet must be one of {FACETS}, got {facet!r}")
        self.model = model.eval()
        self.facet = facet
        self.name = name
        self.device = torch.device(device)
        self._weights_id = weights_id
        self._arch_id = arch_id
        patch = model.patch_embed.patch_size
        self.patch_size = int(patch[0] if isinstance(patch, (tuple, list)) else patch)
        self.embed_dim = int(model.embed_dim)
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        self._mean_values = tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406)))
        self._std_values = tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225)))
        self._move(self.device)

    @property
    def fingerprint(self) -> str:
        return (
            f"timm_dino|{self._arch_id}|weights={self._weights_id}|facet={self.facet}|"
            f"mean={self._mean_values}|std={self._std_values}"
        )

    def _move(self, device: torch.device) -> None:
        self.model.to(device)
        self._mean = torch.tensor(self._mean_values, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(self._std_values, device=device).view(1, 3, 1, 1)

    def _encode_dense(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self._mean) / self._std
        b, _, height, width = x.shape
        h, w = height // self.patch_size, width // self.patch_size
        last = len(self.model.blocks) - 1
        if self.facet == "tokens":
            (tokens,) = self.model.forward_intermediates(
                x, indices=[last], norm=False, output_fmt="NCHW", intermediates_only=True
            )
            return tokens
        captured: list[torch.Tensor] = []
        handle = self.model.blocks[last].attn.qkv.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            self.model.forward_intermediates(x, indices=[last], stop_early=True, intermediates_only=True)
        finally:
            handle.remove()
        qkv = captured[0]  # (B, N, 3 * D): [q | k | v], each heads x head_dim
        keys = qkv[..., self.embed_dim : 2 * self.embed_dim]
        keys = keys[:, self.model.num_prefix_tokens :]  # drop CLS (and registers)
        return keys.transpose(1, 2).reshape(b, self.embed_dim, h, w)

    @classmethod
    def from_spec(
        cls,
        spec,
        device: torch.device,
        checkpoint: str | Path | None = None,
        weights_dir: str | Path | None = None,
    ) -> "TimmDinoEncoder":
        """Build from an ``EncoderSpec`` of kind ``timm_dino`` (see pcseg.foundation.registry)."""
        timm = _import_timm()
        options = dict(spec.options)
        facet = options.pop("facet", "tokens")
        overrides = copy.deepcopy(dict(options.pop("model_overrides", {}) or {}))
        init_seed = int(options.pop("init_seed", 0))
        if options:
            raise ConfigError(f"unknown timm_dino encoder options {sorted(options)}")
        if facet not in FACETS:
            raise ConfigError(f"DINO facet must be one of {FACETS}, got {facet!r}")
        arch = spec.arch
        base_arch = arch.split(".")[0]
        if not timm.is_model(base_arch):
            raise ConfigError(f"unknown timm model {arch!r}")
        name = spec.display_name
        kwargs: dict[str, Any] = dict(num_classes=0, dynamic_img_size=True, **overrides)

        local: Path | None = None
        if checkpoint is not None:
            local = check_checkpoint_path(checkpoint)
        elif spec.pretrained != "random" and spec.name:
            local = find_local_weights(spec.name, weights_dir)

        if local is not None:
            try:
                model = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=str(local)), **kwargs)
            except (RuntimeError, KeyError, ValueError, OSError) as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise DataError(local, f"not a usable {arch} checkpoint ({first[:300]})") from None
            weights_id = "sha256:" + file_digest(local)
        elif spec.pretrained == "random":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(init_seed)
                model = timm.create_model(arch, pretrained=False, **kwargs)
            weights_id = f"random-init:{init_seed}"
        elif spec.pretrained == "hub":
            try:
                model = timm.create_model(arch, pretrained=True, **kwargs)
            except Exception as err:  # download / cache failures come in many types
                reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                if spec.source is not None:
                    raise unavailable(name, spec.source, reason, weights_dir) from None
                raise WeightsUnavailableError(
                    f"pretrained weights for timm model {arch} could not be loaded ({reason}); download them on "
                    "a machine with internet and pass the file as checkpoint=..."
                ) from None
            weights_id = f"hub:{arch}"
        else:
            raise ConfigError(
                f"encoder {name!r} needs pretrained='hub', a checkpoint, or pretrained='random' (tests only)"
            )
        arch_id = f"{arch}|overrides={json.dumps(overrides, sort_keys=True)}"
        return cls(model, facet=facet, name=name, weights_id=weights_id, arch_id=arch_id, device=device)
