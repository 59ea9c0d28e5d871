"""pcseg.foundation: the shared 2D foundation-model core (CLIP / DINO and a deterministic oracle).

Used by both halves of the product: the NeRF method (``nerf3dovs``) distils these features, the point
side lifts them onto scans. Imports neither nerfstudio nor MinkowskiEngine nor any other part of
pcseg except ``pcseg.utils``; open_clip and timm are imported only when a real model is built.

Modules (see docs/foundation.md):
    interface   ImageTextEncoder, DenseEncoder (the two encoder interfaces)
    registry    build_encoder(spec, device, checkpoint=None), KNOWN_ENCODERS
    oracle      Palette, OracleEncoder, OracleDenseEncoder (generated scenes)
    pyramid     3D-OVS crop hierarchy, LERF tile pyramid
    cache       FeatureCache (content-keyed, verified, memory-mapped)
    relevancy   LERF relevancy with canonical negatives, 3D-OVS min-max relevancy
    lifting     Camera, projection, depth-tested visibility, 2D→3D feature averaging
"""

from __future__ import annotations

from pcseg.foundation.interface import DenseEncoder, ImageTextEncoder
from pcseg.foundation.registry import KNOWN_ENCODERS, EncoderSpec, build_encoder
from pcseg.foundation.weights import WeightsUnavailableError, default_weights_dir

__all__ = [
    "DenseEncoder",
    "EncoderSpec",
    "ImageTextEncoder",
    "KNOWN_ENCODERS",
    "WeightsUnavailableError",
    "build_encoder",
    "default_weights_dir",
]
