"""Build encoders by name or spec: ``build_encoder("clip-vit-b16-openai", device="cuda")``.

A spec is one of:
    * a known name (``KNOWN_ENCODERS``): ``clip-vit-b16-openai`` (3D-OVS), ``clip-vit-b16-laion2b``
      (LERF), ``dino-vitb8`` (3D-OVS FDA: last-block tokens), ``dino-vits8`` (LERF: last-layer keys);
    * a short form ``"open_clip:<arch>/<tag>"`` or ``"timm_dino:<timm model name>"``;
    * an ``EncoderSpec`` or a mapping with the same fields (what a hydra/dataclass config holds), e.g.
      ``{"kind": "oracle", "options": {"palette": {"chair": [200, 40, 40], ...}, "embed_dim": 32}}``.

Random initialisation must be asked for explicitly (``pretrained="random"``, used by tests with tiny
model overrides); a missing pretrained model is an error, never a silent random one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from pcseg.foundation.interface import DenseEncoder, ImageTextEncoder
from pcseg.foundation.weights import WeightsSource
from pcseg.utils.errors import ConfigError

KINDS = ("open_clip", "timm_dino", "oracle", "oracle_dense")


@dataclass(frozen=True)
class EncoderSpec:
    """What to build.

    Attributes:
        kind: one of ``open_clip``, ``timm_dino``, ``oracle``, ``oracle_dense``.
        arch: open_clip model name (``ViT-B-16``) or timm model name (``vit_base_patch8_224``);
            unused by the oracles.
        pretrained: open_clip tag (``openai``, ``laion2b_s34b_b88k``), ``"hub"`` for timm's default
            pretrained tag, ``"random"`` for random initialisation, or None (then a checkpoint is needed).
        name: the name used in messages, fingerprints and the local weights folder.
        source: where to download the weights by hand (for the error message).
        options: kind-specific keyword arguments of the encoder class (see each class), e.g.
            ``precision``, ``quick_gelu``, ``model_overrides``, ``init_seed`` (open_clip);
            ``facet``, ``model_overrides``, ``init_seed`` (timm_dino); ``palette``, ``embed_dim``,
            ``noise_std``, ``seed`` (oracles).
    """

    kind: str
    arch: str = ""
    pretrained: str | None = None
    name: str = ""
    source: WeightsSource | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown encoder kind {self.kind!r}; expected one of {KINDS}")

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.kind in ("oracle", "oracle_dense"):
            return self.kind
        return f"{self.kind}:{self.arch}" + (f"/{self.pretrained}" if self.pretrained else "")


KNOWN_ENCODERS: dict[str, EncoderSpec] = {
    # 3D-OVS: OpenAI CLIP ViT-B/16 (QuickGELU activations, as trained by OpenAI).
    "clip-vit-b16-openai": EncoderSpec(
        kind="open_clip",
        arch="ViT-B-16",
        pretrained="openai",
        name="clip-vit-b16-openai",
        source=WeightsSource(
            hf_repo="timm/vit_base_patch16_clip_224.openai",
            hf_filename="open_clip_pytorch_model.bin",
            url="https://openaipublic.azureedge.net/clip/models/"
            "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
        ),
        options={"quick_gelu": True},
    ),
    # LERF: OpenCLIP ViT-B/16 trained on LAION-2B.
    "clip-vit-b16-laion2b": EncoderSpec(
        kind="open_clip",
        arch="ViT-B-16",
        pretrained="laion2b_s34b_b88k",
        name="clip-vit-b16-laion2b",
        source=WeightsSource(
            hf_repo="laion/CLIP-ViT-B-16-laion2B-s34B-b88K", hf_filename="open_clip_pytorch_model.bin"
        ),
    ),
    # 3D-OVS FDA loss: DINO ViT-B/8, output tokens of the last block before the final norm (768-d).
    "dino-vitb8": EncoderSpec(
        kind="timm_dino",
        arch="vit_base_patch8_224.dino",
        pretrained="hub",
        name="dino-vitb8",
        source=WeightsSource(
            hf_repo="timm/vit_base_patch8_224.dino",
            hf_filename="model.safetensors",
            url="https://dl.fbaipublicfiles.com/dino/dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth",
        ),
        options={"facet": "tokens"},
    ),
    # LERF: DINO ViT-S/8, key facet of the last layer (6 heads x 64 = 384-d).
    "dino-vits8": EncoderSpec(
        kind="timm_dino",
        arch="vit_small_patch8_224.dino",
        pretrained="hub",
        name="dino-vits8",
        source=WeightsSource(
            hf_repo="timm/vit_small_patch8_224.dino",
            hf_filename="model.safetensors",
            url="https://dl.fbaipublicfiles.com/dino/dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth",
        ),
        options={"facet": "key"},
    ),
}


def parse_spec(spec: str | EncoderSpec | Mapping[str, Any]) -> EncoderSpec:
    """Turn a name, short form, mapping or EncoderSpec into an EncoderSpec."""
    if isinstance(spec, EncoderSpec):
        return spec
    if isinstance(spec, str):
        if spec in KNOWN_ENCODERS:
            return KNOWN_ENCODERS[spec]
        kind, sep, rest = spec.partition(":")
        if sep and kind == "open_clip" and rest:
            arch, _, tag = rest.partition("/")
            return EncoderSpec(kind="open_clip", arch=arch, pretrained=tag or None)
        if sep and kind == "timm_dino" and rest:
            return EncoderSpec(kind="timm_dino", arch=rest, pretrained="hub")
        raise ConfigError(
            f"unknown encoder {spec!r}; use one of {sorted(KNOWN_ENCODERS)}, 'open_clip:<arch>/<tag>', "
            "'timm_dino:<timm model name>' or a mapping with 'kind'"
        )
    if isinstance(spec, Mapping):
        data = dict(spec)
        base_name = data.pop("base", None)
        base = parse_spec(base_name) if base_name else None
        unknown = set(data) - {"kind", "arch", "pretrained", "name", "options"}
        if unknown:
            raise ConfigError(f"encoder spec has unknown keys {sorted(unknown)}")
        if base is not None:
            options = {**base.options, **dict(data.pop("options", None) or {})}
            return EncoderSpec(
                kind=data.get("kind", base.kind),
                arch=data.get("arch", base.arch),
                pretrained=data.get("pretrained", base.pretrained),
                name=data.get("name", base.name),
                source=base.source,
                options=options,
            )
        if "kind" not in data:
            raise ConfigError("encoder spec mapping needs a 'kind' (or a 'base' known encoder name)")
        return EncoderSpec(
            kind=data["kind"],
            arch=data.get("arch", ""),
            pretrained=data.get("pretrained"),
            name=data.get("name", ""),
            options=dict(data.get("options") or {}),
        )
    raise ConfigError(f"cannot build an encoder from {type(spec).__name__}")


def build_encoder(
    spec: str | EncoderSpec | Mapping[str, Any],
    device: str | torch.device = "cpu",
    checkpoint: str | Path | None = None,
    weights_dir: str | Path | None = None,
) -> ImageTextEncoder | DenseEncoder:
    """Build an encoder on ``device``.

    Args:
        spec: a known name, short form, ``EncoderSpec`` or mapping (module docstring).
        device: torch device string or object.
        checkpoint: local weights file; takes precedence over hub tags.
        weights_dir: folder searched for ``<name>.<ext>`` before the hub (default
            ``$PCSEG_WEIGHTS_DIR`` or ``~/.cache/pcseg/weights``).

    Returns:
        An ``ImageTextEncoder`` (open_clip, oracle) or a ``DenseEncoder`` (timm_dino, oracle_dense).

    Raises:
        WeightsUnavailableError: pretrained weights neither local nor downloadable (says what to
            download and where to put it).
        DataError: the checkpoint file is missing or does not fit the architecture.
        MissingDependencyError: open_clip / timm not installed.
        ConfigError: bad spec.
    """
    spec = parse_spec(spec)
    device = torch.device(device)
    if spec.kind == "open_clip":
        from pcseg.foundation.clip_openclip import OpenClipEncoder

        return OpenClipEncoder.from_spec(spec, device=device, checkpoint=checkpoint, weights_dir=weights_dir)
    if spec.kind == "timm_dino":
        from pcseg.foundation.dino_timm import TimmDinoEncoder

        return TimmDinoEncoder.from_spec(spec, device=device, checkpoint=checkpoint, weights_dir=weights_dir)
    if checkpoint is not None:
        raise ConfigError(f"the {spec.kind} encoder has no weights; do not pass a checkpoint")
    from pcseg.foundation.oracle import OracleDenseEncoder, OracleEncoder

    cls = OracleEncoder if spec.kind == "oracle" else OracleDenseEncoder
    try:
        return cls(device=device, **dict(spec.options))
    except TypeError as err:
        raise ConfigError(f"bad options for the {spec.kind} encoder: {err}") from None
