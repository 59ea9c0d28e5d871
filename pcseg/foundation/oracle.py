"""Deterministic stand-ins for CLIP and DINO on generated scenes, with known right answers.

A generated scene paints every class with a known colour (its palette entry), shaded. The oracle
decodes each pixel's class from its colour, so features carry exactly the class information a perfect
foundation model would, plus controlled imperfections:

* scale-dependent blur: a crop embeds as the class-probability-weighted mean of fixed unit class
  embeddings, so a large crop straddling objects mixes their embeddings, exactly the failure that
  3D-OVS's scale selection has to work around;
* view inconsistency: noise that is a pseudo-random function of the crop's pixel content, so two views
  of the same object give different noise, while the same pixels always give the same features.

``OracleEncoder.encode_text`` maps a class name to that class's embedding, so relevancy and argmax
segmentation can be scored against ground truth. Everything is keyed by ``seed`` (pcseg.utils.rng).
"""

from __future__ import annotations

import json
import math
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pcseg.foundation.interface import DenseEncoder, ImageTextEncoder
from pcseg.utils.errors import ConfigError
from pcseg.utils.rng import numpy_rng



class Palette:
    """Class name → RGB colour, and the soft decoding of pixels back to classes.

    A pixel's class probabilities are ``softmax_k(-d_k / temperature)`` with
    ``d_k = |chroma(pixel) - chroma(colour_k)|² + brightness_weight · (log lum(pixel) - log lum(colour_k))²``,
    where ``chroma = (rgb + eps) / (r + g + b + 3 eps)`` is invariant to shading (a multiplicative
    factor) and the small brightness term separates colours of equal hue (white vs. grey walls). Classes
    that differ only in brightness therefore blur together under strong shading.

    Args:
        colors: class name → (r, g, b) in 0..255. Order is kept: class index k = position.
        temperature: softmax temperature on d (smaller = harder assignment).
        brightness_weight: weight of the log-luminance term.
        eps: added to each channel (in [0, 1] units) so the chroma of dark pixels is stable.
    """

    def __init__(
        self,
        colors: Mapping[str, Sequence[int]],
        temperature: float = 0.002,
        brightness_weight: float = 0.01,
        eps: float = 0.02,
    ):
        if not colors:
            raise ConfigError("oracle palette is empty")
        names = [str(n) for n in colors]
        if len(set(names)) != len(names):
            raise ConfigError("oracle palette has duplicate class names")
        rgb = np.asarray([list(colors[n]) for n in colors], dtype=np.float64)
        if rgb.ndim != 2 or rgb.shape[1] != 3 or (rgb < 0).any() or (rgb > 255).any():
            raise ConfigError("oracle palette colours must be (r, g, b) triples in 0..255")
        if temperature <= 0 or brightness_weight < 0 or eps <= 0:
            raise ConfigError("oracle palette needs temperature > 0, brightness_weight >= 0, eps > 0")
        self.names: tuple[str, ...] = tuple(names)
        self.rgb = rgb.astype(np.uint8)
        self.temperature = float(temperature)
        self.brightness_weight = float(brightness_weight)
        self.eps = float(eps)
        chroma, log_lum = self._descriptors_np(rgb / 255.0)
        self._chroma = torch.as_tensor(chroma, dtype=torch.float32)  # (K, 3)
        self._log_lum = torch.as_tensor(log_lum, dtype=torch.float32)  # (K,)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def _descriptors_np(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shifted = rgb + self.eps
        total = shifted.sum(axis=-1, keepdims=True)
        return shifted / total, np.log(total[..., 0] / 3.0)

    def to_dict(self) -> dict[str, list[int]]:
        return {n: [int(v) for v in c] for n, c in zip(self.names, self.rgb)}

    def params(self) -> dict:
        return {
            "colors": self.to_dict(),
            "temperature": self.temperature,
            "brightness_weight": self.brightness_weight,
            "eps": self.eps,
        }

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Soft class assignment of every pixel.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1].

        Returns:
            (B, K, H, W) float32 probabilities (sum to 1 over K).
        """
        x = images.float() + self.eps
        total = x.sum(dim=1, keepdim=True)  # (B, 1, H, W)
        chroma = x / total
        log_lum = torch.log(total / 3.0)
        ref_chroma = self._chroma.to(images.device)
        ref_lum = self._log_lum.to(images.device)
        d_chroma = ((chroma[:, None] - ref_chroma[None, :, :, None, None]) ** 2).sum(dim=2)  # (B, K, H, W)
        d_lum = (log_lum - ref_lum[None, :, None, None]) ** 2
        dist = d_chroma + self.brightness_weight * d_lum
        return torch.softmax(-dist / self.temperature, dim=1)

    def decode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → (B, H, W) int64 most likely class index."""
        return self.probabilities(images).argmax(dim=1)


def _as_palette(palette: Palette | Mapping[str, Sequence[int]]) -> Palette:
    return palette if isinstance(palette, Palette) else Palette(palette)


def _unit_rows(rng_keys: list[tuple], seed: int, dim: int) -> np.ndarray:
    rows = np.stack([numpy_rng(seed, *keys).standard_normal(dim) for keys in rng_keys])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class _ContentNoise:
    """Noise vectors that are a deterministic, continuous, pseudo-random function of pixel content.

    Random Fourier features of the flattened content: component d is
    ``sqrt(2) cos(frequency * <u, r_d> / sqrt(L) + b_d)`` with fixed Gaussian directions r_d and phases
    b_d, scaled so the expected norm is ``std``. Same content gives the same noise; contents whose rms
    difference exceeds about 1 / frequency (here 1/100, i.e. 2.5 grey levels) give nearly
    uncorrelated noise (another view of the same object disagrees); float rounding differences
    (1e-6) change the noise only by about 1e-4 of its size, so batched and one-at-a-time code paths,
    or CPU and GPU, agree. (A hash of the quantised content would flip completely on a rounding
    difference at a quantisation boundary.)
    """

    frequency = 100.0

    def __init__(self, seed: int, tag: str, dim: int, std: float):
        self.seed, self.tag, self.dim, self.std = seed, tag, dim, float(std)
        self._params: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _projection(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if length not in self._params:
            rng = numpy_rng(self.seed, self.tag, "projection", length)
            directions = rng.standard_normal((length, self.dim)) * (self.frequency / math.sqrt(length))
            phases = rng.uniform(0.0, 2.0 * math.pi, size=self.dim)
            self._params[length] = (
                torch.as_tensor(directions, dtype=torch.float32),
                torch.as_tensor(phases, dtype=torch.float32),
            )
        directions, phases = self._params[length]
        return directions.to(device), phases.to(device)

    def __call__(self, content: torch.Tensor) -> torch.Tensor:
        """(N, L) content in [0, 1] → (N, dim) noise vectors of expected norm ``std``."""
        directions, phases = self._projection(content.shape[1], content.device)
        angles = content.float() @ directions + phases
        return (self.std * math.sqrt(2.0 / self.dim)) * torch.cos(angles)


class OracleEncoder(ImageTextEncoder):
    """CLIP-like oracle: crop → class-mixture embedding + content-keyed noise; text → class embedding.

    Args:
        palette: a ``Palette`` or a mapping class name → (r, g, b).
        embed_dim: D.
        noise_std: expected norm of the noise added to each crop embedding (class embeddings have norm 1).
        seed: keys the class embeddings, the unknown-text vectors and the noise.
        input_size: (h, w) crops are resized to before decoding (small: the oracle needs no detail).
        device: torch device.
    """

    def __init__(
        self,
        palette: Palette | Mapping[str, Sequence[int]],
        embed_dim: int = 512,
        noise_std: float = 0.1,
        seed: int = 0,
        input_size: Sequence[int] | int = (32, 32),
        device: str | torch.device = "cpu",
    ):
        self.palette = _as_palette(palette)
        if embed_dim < 2:
            raise ConfigError("oracle embed_dim must be >= 2")
        if noise_std < 0:
            raise ConfigError("oracle noise_std must be >= 0")
        size = (int(input_size), int(input_size)) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
        if len(size) != 2 or min(size) < 1:
            raise ConfigError(f"oracle input_size must be (h, w) >= 1, got {input_size}")
        self.name = "oracle"
        self.embed_dim = int(embed_dim)
        self.input_size = size
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        self.device = torch.device(device)
        emb = _unit_rows([("oracle-class", n) for n in self.palette.names], self.seed, self.embed_dim)
        self.class_embeddings = torch.as_tensor(emb, dtype=torch.float32, device=self.device)  # (K, D)
        self._noise = _ContentNoise(self.seed, "oracle-clip-noise", self.embed_dim, self.noise_std)

    @property
    def fingerprint(self) -> str:
        params = {
            "palette": self.palette.params(),
            "embed_dim": self.embed_dim,
            "noise_std": self.noise_std,
            "seed": self.seed,
            "input_size": list(self.input_size),
            "version": 2,
        }
        return "oracle|" + json.dumps(params, sort_keys=True)

    def class_mixture(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → (B, K) mean class probabilities over each image's pixels."""
        return self.palette.probabilities(images.to(self.device)).mean(dim=(2, 3))

    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        mix = self.class_mixture(images)  # (B, K)
        clean = mix @ self.class_embeddings  # (B, D)
        if self.noise_std == 0:
            return clean
        return clean + self._noise(images.reshape(images.shape[0], -1))

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            key = text.strip()
            if key in self.palette.names:
                rows.append(self.class_embeddings[self.palette.index(key)].cpu().numpy())
            else:
                rows.append(_unit_rows([("oracle-text", key)], self.seed, self.embed_dim)[0])
        return torch.as_tensor(np.stack(rows), dtype=torch.float32, device=self.device)

    def _move(self, device: torch.device) -> None:
        self.class_embeddings = self.class_embeddings.to(device)


class OracleDenseEncoder(DenseEncoder):
    """DINO-like oracle: token = class-mixture embedding of the patch + small content-keyed noise.

    Tokens of same-class patches are similar and tokens of different classes are not, which is the
    property 3D-OVS's FDA loss uses DINO for.

    Args:
        palette: a ``Palette`` or a mapping class name → (r, g, b).
        embed_dim: D.
        patch_size: token stride in pixels.
        noise_std: expected norm of each token's noise (class embeddings have norm 1).
        seed: keys class embeddings and noise (independent of ``OracleEncoder``'s).
        device: torch device.
    """

    def __init__(
        self,
        palette: Palette | Mapping[str, Sequence[int]],
        embed_dim: int = 64,
        patch_size: int = 8,
        noise_std: float = 0.02,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        self.palette = _as_palette(palette)
        if embed_dim < 2 or patch_size < 1 or noise_std < 0:
            raise ConfigError("oracle_dense needs embed_dim >= 2, patch_size >= 1, noise_std >= 0")
        self.name = "oracle_dense"
        self.embed_dim = int(embed_dim)
        self.patch_size = int(patch_size)
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        self.device = torch.device(device)
        emb = _unit_rows([("oracle-dense-class", n) for n in self.palette.names], self.seed, self.embed_dim)
        self.class_embeddings = torch.as_tensor(emb, dtype=torch.float32, device=self.device)
        self._noise = _ContentNoise(self.seed, "oracle-dense-noise", self.embed_dim, self.noise_std)

    @property
    def fingerprint(self) -> str:
        params = {
            "palette": self.palette.params(),
            "embed_dim": self.embed_dim,
            "patch_size": self.patch_size,
            "noise_std": self.noise_std,
            "seed": self.seed,
            "version": 2,
        }
        return "oracle_dense|" + json.dumps(params, sort_keys=True)

    def _encode_dense(self, images: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        b, _, height, width = images.shape
        h, w = height // p, width // p
        mix = F.avg_pool2d(self.palette.probabilities(images), p)  # (B, K, h, w)
        tokens = torch.einsum("bkhw,kd->bdhw", mix, self.class_embeddings)
        if self.noise_std == 0:
            return tokens
        patches = F.unfold(images, kernel_size=p, stride=p)  # (B, 3*p*p, h*w)
        noise = self._noise(patches.transpose(1, 2).reshape(b * h * w, -1))  # (B*h*w, D)
        return tokens + noise.reshape(b, h, w, -1).permute(0, 3, 1, 2)

    def _move(self, device: torch.device) -> None:
        self.class_embeddings = self.class_embeddings.to(device)
