"""The two encoder interfaces every 2D foundation model in pcseg implements.

``ImageTextEncoder`` is CLIP-like: whole images (crops) → one embedding each, text → unit embeddings
in the same space. ``DenseEncoder`` is DINO-like: images → a grid of patch tokens.

Both are thin, stateless-at-inference wrappers: the device is a constructor argument (never a hidden
``.cuda()``), inputs are float RGB in [0, 1] with channels first, outputs are float32 on the
encoder's device. Subclasses implement the underscored hooks; the public methods validate inputs,
move them to the device and run under ``torch.no_grad``.
"""

from __future__ import annotations

import abc
from typing import Sequence

import torch

from pcseg.foundation.resize import resize_batch


def _check_images(images: torch.Tensor, who: str) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{who}: images must be a torch.Tensor (B, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{who}: images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{who}: images must be float in [0, 1], got dtype {images.dtype}")


class ImageTextEncoder(abc.ABC):
    """CLIP-like encoder: images → (B, D) embeddings, text → (T, D) unit embeddings.

    Attributes:
        name: short human-readable identity, e.g. ``"open_clip/ViT-B-16/openai"``.
        embed_dim: D, the size of both image and text embeddings.
        device: where the model runs and where outputs are returned.
        input_size: (height, width) the model expects; the pyramids resize every crop to it.
    """

    name: str
    embed_dim: int
    device: torch.device
    input_size: tuple[int, int]

    @property
    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever the outputs could change (architecture, weights, precision).

        Feature caches key on it, so two encoders with the same fingerprint must give the same outputs.
        """

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Embed a batch of images (crops).

        Args:
            images: (B, 3, H, W) float RGB in [0, 1]. Images not at ``input_size`` are resized to it
                (bicubic, antialiased, aspect ratio not kept), the same resize the pyramids use.

        Returns:
            (B, D) float32 embeddings on ``device``, **not** normalised (3D-OVS averages raw
            embeddings over crops).
        """
        _check_images(images, f"{self.name}.encode_images")
        images = images.to(self.device, torch.float32)
        if tuple(images.shape[-2:]) != tuple(self.input_size):
            images = resize_batch(images, self.input_size)
        with torch.no_grad():
            out = self._encode_images(images)
        return out.float()

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed text prompts (used verbatim: no template is added).

        Args:
            texts: T strings.

        Returns:
            (T, D) float32, L2-normalised, on ``device``.
        """
        if isinstance(texts, str):
            raise TypeError(f"{self.name}.encode_text expects a list of strings, got a single string")
        texts = [str(t) for t in texts]
        if not texts:
            return torch.zeros(0, self.embed_dim, device=self.device)
        with torch.no_grad():
            out = self._encode_text(texts).float()
        return torch.nn.functional.normalize(out, dim=-1)

    @abc.abstractmethod
    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, *input_size) float32 in [0, 1] on device → (B, D)."""

    @abc.abstractmethod
    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        """T strings → (T, D), any scale (normalised by the caller)."""

    def to(self, device: str | torch.device) -> "ImageTextEncoder":
        """Move the encoder to ``device`` (in place) and return it."""
        self.device = torch.device(device)
        self._move(self.device)
        return self

    def _move(self, device: torch.device) -> None:  # pragma: no cover - trivial default
        """Move model tensors; subclasses holding modules override this."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, embed_dim={self.embed_dim}, device={self.device})"


class DenseEncoder(abc.ABC):
    """DINO-like encoder: images → a (D, H/patch, W/patch) grid of patch tokens per image.

    Attributes:
        name: short identity, e.g. ``"timm/vit_base_patch8_224.dino/tokens"``.
        embed_dim: D.
        patch_size: token stride in pixels.
        device: where the model runs and where outputs are returned.
    """

    name: str
    embed_dim: int
    patch_size: int
    device: torch.device

    @property
    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Changes whenever the outputs could change (see ``ImageTextEncoder.fingerprint``)."""

    def encode_dense(self, images: torch.Tensor) -> torch.Tensor:
        """Patch tokens of a batch of images.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1]. H and W should be multiples of ``patch_size``;
                otherwise the bottom/right remainder (< patch_size pixels) is ignored.

        Returns:
            (B, D, H // patch_size, W // patch_size) float32 on ``device``.
        """
        _check_images(images, f"{self.name}.encode_dense")
        p = self.patch_size
        h, w = images.shape[-2] // p, images.shape[-1] // p
        if h == 0 or w == 0:
            raise ValueError(
                f"{self.name}.encode_dense: images of {tuple(images.shape[-2:])} px are smaller than one "
                f"{p}x{p} patch"
            )
        images = images[..., : h * p, : w * p].to(self.device, torch.float32)
        with torch.no_grad():
            out = self._encode_dense(images)
        return out.float()

    @abc.abstractmethod
    def _encode_dense(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, h*p, w*p) float32 in [0, 1] on device → (B, D, h, w)."""

    def to(self, device: str | torch.device) -> "DenseEncoder":
        """Move the encoder to ``device`` (in place) and return it."""
        self.device = torch.device(device)
        self._move(self.device)
        return self

    def _move(self, device: torch.device) -> None:  # pragma: no cover - trivial default
        """Move model tensors; subclasses holding modules override this."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, embed_dim={self.embed_dim}, "
            f"patch_size={self.patch_size}, device={self.device})"
        )
