"""Building the 2D encoders of ovs-nerf from the pipeline config (thin adapter over ``pcseg.foundation``).

A spec is anything ``pcseg.foundation.build_encoder`` accepts (``clip-vit-b16-openai``, ``dino-vitb8``,
``open_clip:<arch>/<tag>``, ...) plus ``oracle``: the deterministic stand-ins for generated scenes,
built from the scene's ``palette.json`` (class prompt -> RGB).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from nerf3dovs.errors import OvsConfigError, OvsDataError


def parse_options(text: str, what: str) -> dict[str, Any]:
    """Options given on the command line as a JSON object (``'{"noise_std": 0.1}'``); '' = none."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise OvsConfigError(f"{what} must be a JSON object, got {text!r} ({err.msg})") from None
    if not isinstance(value, dict):
        raise OvsConfigError(f"{what} must be a JSON object, got {text!r}")
    return value


def read_palette(path: Path) -> dict[str, tuple[int, int, int]]:
    """``palette.json``: ``{"prompt": [r, g, b], ...}`` with 0-255 values."""
    if not path.is_file():
        raise OvsDataError(path, "missing palette (the oracle encoders decode classes from colours with it)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise OvsDataError(path, f"cannot read palette JSON ({err})") from None
    if not isinstance(data, dict) or not data:
        raise OvsDataError(path, "palette must be a non-empty JSON object {prompt: [r, g, b]}")
    out = {}
    for name, rgb in data.items():
        if not (isinstance(rgb, list) and len(rgb) == 3 and all(isinstance(v, (int, float)) and 0 <= v <= 255 for v in rgb)):
            raise OvsDataError(path, f"palette entry {name!r} must be [r, g, b] with values in 0..255")
        out[str(name)] = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    return out


def build(
    spec: str,
    kind: str,
    device: str,
    options: dict[str, Any],
    checkpoint: Optional[Path],
    palette_path: Optional[Path],
):
    """Build one encoder.

    Args:
        spec: encoder name/short form, or ``oracle``.
        kind: ``"image"`` (CLIP-like) or ``"dense"`` (DINO-like) — selects the oracle flavour and checks
            what the spec produced.
        device: torch device string.
        options: extra encoder options (merged into the spec's ``options``).
        checkpoint: local weights file, if any.
        palette_path: ``palette.json`` for the oracle.
    """
    try:
        from pcseg.foundation import DenseEncoder, ImageTextEncoder, build_encoder
    except ImportError as err:  # pragma: no cover - pcseg ships with nerf3dovs
        raise OvsConfigError(f"pcseg.foundation is required for ovs-nerf encoders ({err})") from None
    if spec == "oracle":
        if palette_path is None:
            raise OvsConfigError("the oracle encoder needs a palette (--pipeline.oracle-palette or <scene>/palette.json)")
        mapping = {"kind": "oracle" if kind == "image" else "oracle_dense",
                   "options": {"palette": read_palette(palette_path), **options}}
        encoder = build_encoder(mapping, device=device)
    elif options:
        encoder = build_encoder({"base": spec, "options": options}, device=device, checkpoint=checkpoint)
    else:
        encoder = build_encoder(spec, device=device, checkpoint=checkpoint)
    expected = ImageTextEncoder if kind == "image" else DenseEncoder
    if not isinstance(encoder, expected):
        raise OvsConfigError(f"encoder {spec!r} is not a {'CLIP-like image/text' if kind == 'image' else 'DINO-like dense'} encoder")
    return encoder
