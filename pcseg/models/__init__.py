"""Segmentation networks: Res16UNet34C (CPCM) and MinkUNet (HPAL), one class for every backend.

```python
from pcseg.models import build_model
model = build_model("res16unet34c", in_channels=3, num_classes=20)
out = model(SparseTensor.from_batch(coords, feats, backend="torch"))   # {"logits", "feats"}
```

Overrides (small networks for tests and CPU runs): ``planes`` (8 widths, or 9 with the stem width
first like HPAL's channel list ``cs``), ``layers`` (8 block
counts), ``init_dim`` (stem width), ``width`` (multiplier applied to ``init_dim`` and every plane),
``bn_momentum`` (stem/transition/shortcut BNs), ``block_bn_momentum`` (BNs inside blocks),
``init_seed`` (keyed initialisation).
"""

from __future__ import annotations

from typing import Any

from pcseg.models.unet import ResidualBlock, SparseResUNet, UNetConfig
from pcseg.sparse.mapping import voxel_to_point
from pcseg.utils.errors import ConfigError

#: Paper configurations. Res16UNet34C: MinkowskiEngine's Res16UNet34C as CPCM uses it (spec §4);
#: MinkUNet: torchsparse 1.2's MinkUNet (cr = 1) as HPAL uses it (spec §13).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "res16unet34c": dict(
        init_dim=32,
        planes=(32, 64, 128, 256, 256, 128, 96, 96),
        layers=(2, 3, 4, 6, 2, 2, 2, 2),
        stem_convs=1,
        head="conv",
        bn_momentum=0.02,
        block_bn_momentum=0.1,
        init="kaiming_fan_out",
    ),
    "minkunet": dict(
        init_dim=32,
        planes=(32, 64, 128, 256, 256, 128, 96, 96),
        layers=(2, 2, 2, 2, 2, 2, 2, 2),
        stem_convs=2,
        head="linear",
        bn_momentum=0.1,
        block_bn_momentum=0.1,
        init="uniform",
    ),
}

_OVERRIDES = {"planes", "layers", "init_dim", "width", "bn_momentum", "block_bn_momentum", "init_seed"}


class Res16UNet34C(SparseResUNet):
    """MinkowskiEngine Res16UNet34C as CPCM trains it (37.85 M parameters at 3 -> 20)."""


class MinkUNet(SparseResUNet):
    """torchsparse MinkUNet as HPAL trains it (21.7 M parameters at 6 -> 13)."""


_CLASSES = {"res16unet34c": Res16UNet34C, "minkunet": MinkUNet}


def available_models() -> list[str]:
    return sorted(MODEL_DEFAULTS)


def build_model(name: str, in_channels: int, num_classes: int, **overrides: Any) -> SparseResUNet:
    """Build a network by name.

    Args:
        name: ``"res16unet34c"`` or ``"minkunet"``.
        in_channels: input feature channels (3 for CPCM's RGB, 6 for HPAL's RGB + xyz).
        num_classes: logits per voxel.
        **overrides: see the module docstring.

    Raises:
        ConfigError: unknown name or override, or malformed values.
    """
    key = name.lower()
    if key not in MODEL_DEFAULTS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(available_models())}")
    unknown = set(overrides) - _OVERRIDES
    if unknown:
        raise ConfigError(
            f"unknown override(s) {sorted(unknown)} for model {name!r}; allowed: {sorted(_OVERRIDES)}"
        )
    spec = dict(MODEL_DEFAULTS[key])
    if overrides.get("planes") is not None:
        value = tuple(int(v) for v in overrides["planes"])
        if len(value) not in (8, 9) or min(value) < 1:
            raise ConfigError(
                f"{name}: planes needs 8 positive integers (or 9: stem width first, as HPAL's channel "
                f"list cs), got {list(overrides['planes'])}"
            )
        if len(value) == 9:
            spec["init_dim"], value = value[0], value[1:]
        spec["planes"] = value
    if overrides.get("layers") is not None:
        value = tuple(int(v) for v in overrides["layers"])
        if len(value) != 8 or min(value) < 0:
            raise ConfigError(f"{name}: layers needs 8 non-negative integers, got {list(overrides['layers'])}")
        spec["layers"] = value
    if overrides.get("init_dim") is not None:
        spec["init_dim"] = int(overrides["init_dim"])
    for field in ("bn_momentum", "block_bn_momentum"):
        if overrides.get(field) is not None:
            value = float(overrides[field])
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}: {field} must be in [0, 1], got {value}")
            spec[field] = value
    width = 1.0 if overrides.get("width") is None else float(overrides["width"])
    if width <= 0:
        raise ConfigError(f"{name}: width multiplier must be > 0, got {width}")
    if width != 1.0:
        spec["init_dim"] = max(1, round(spec["init_dim"] * width))
        spec["planes"] = tuple(max(1, round(p * width)) for p in spec["planes"])
    if in_channels < 1 or num_classes < 1:
        raise ConfigError(
            f"{name}: in_channels and num_classes must be >= 1, got {in_channels}, {num_classes}"
        )
    cfg = UNetConfig(in_channels=int(in_channels), num_classes=int(num_classes), **spec)
    return _CLASSES[key](cfg, init_seed=int(overrides.get("init_seed") or 0))


def count_parameters(model) -> int:
    """Number of trainable parameter values."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "MODEL_DEFAULTS",
    "MinkUNet",
    "Res16UNet34C",
    "ResidualBlock",
    "SparseResUNet",
    "UNetConfig",
    "available_models",
    "build_model",
    "count_parameters",
    "voxel_to_point",
]
