"""A sparse residual U-Net with four stride-2 levels, the shape shared by Res16UNet34C and MinkUNet.

::

    stem (1 or 2 submanifold convs) ------------------------------------------------ cat -> blocks -> head
      down 2^3/2 -> blocks[0] ---------------------------------------------- cat -> blocks[7]  ^
        down -> blocks[1] ------------------------------------------ cat -> blocks[6]  ^ up
          down -> blocks[2] ---------------------------------- cat -> blocks[5]  ^ up
            down -> blocks[3] -> up 2^3/2 -> (stride 8) ----^ blocks[4] ^ up

Every stride-2 (transposed) convolution is followed by BN + ReLU; a decoder stage concatenates the
upsampled features (first) with the encoder skip at the same stride (second), as both reference
networks do. All convolutions are bias-free except the head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from pcseg.sparse import (
    BatchNorm,
    DownsampleConv3d,
    PointwiseConv3d,
    ReLU,
    SparseTensor,
    SubmanifoldConv3d,
    UpsampleConv3d,
    cat,
)
from pcseg.sparse.nn import _SparseConv


class ResidualBlock(nn.Module):
    """``relu(bn(conv3(relu(bn(conv3(x))))) + shortcut(x))``; the shortcut is a 1x1 conv + BN when
    the channel count changes (ME's BasicBlock / torchsparse's ResidualBlock)."""

    def __init__(self, in_channels: int, out_channels: int, bn_momentum: float, shortcut_bn_momentum: float):
        super().__init__()
        self.conv1 = SubmanifoldConv3d(in_channels, out_channels)
        self.norm1 = BatchNorm(out_channels, momentum=bn_momentum)
        self.conv2 = SubmanifoldConv3d(out_channels, out_channels)
        self.norm2 = BatchNorm(out_channels, momentum=bn_momentum)
        self.relu = ReLU()
        self.shortcut = (
            None
            if in_channels == out_channels
            else nn.Sequential(
                PointwiseConv3d(in_channels, out_channels),
                BatchNorm(out_channels, momentum=shortcut_bn_momentum),
            )
        )

    def forward(self, x: SparseTensor) -> SparseTensor:
        y = self.norm2(self.conv2(self.relu(self.norm1(self.conv1(x)))))
        skip = x if self.shortcut is None else self.shortcut(x)
        return y.replace_feats(torch.relu(y.feats + skip.feats))


def _conv_bn_relu(conv: nn.Module, channels: int, momentum: float) -> nn.Sequential:
    return nn.Sequential(conv, BatchNorm(channels, momentum=momentum), ReLU())


def _blocks(in_channels: int, out_channels: int, count: int, bn_momentum: float, shortcut_momentum: float):
    layers = [
        ResidualBlock(in_channels if i == 0 else out_channels, out_channels, bn_momentum, shortcut_momentum)
        for i in range(count)
    ]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class UNetConfig:
    """Shape of a :class:`SparseResUNet`.

    Attributes:
        in_channels: input feature channels.
        num_classes: output logits.
        init_dim: stem width.
        planes: 8 widths: encoder stages 1-4, decoder stages 1-4 (the last is the feature width).
        layers: 8 residual-block counts, same order (0 is allowed).
        stem_convs: 1 (Res16UNet) or 2 (MinkUNet) 3x3x3 convolutions in the stem.
        head: ``"conv"`` (1x1 sparse conv with bias) or ``"linear"`` (``nn.Linear``; same maths).
        bn_momentum: momentum of the stem, transition (down/up) and shortcut batch norms.
        block_bn_momentum: momentum of the batch norms inside residual blocks.
        init: ``"kaiming_fan_out"`` (MinkowskiEngine ResNetBase) or ``"uniform"`` (torchsparse default).
    """

    in_channels: int
    num_classes: int
    init_dim: int
    planes: tuple[int, ...]
    layers: tuple[int, ...]
    stem_convs: int
    head: str
    bn_momentum: float
    block_bn_momentum: float
    init: str


class SparseResUNet(nn.Module):
    """Residual sparse U-Net; ``forward(x) -> {"logits": (M, num_classes), "feats": (M, planes[-1])}``.

    The rows of both outputs are the rows of the stride-1 input ``x``, for every backend.
    """

    def __init__(self, cfg: UNetConfig, init_seed: int = 0):
        super().__init__()
        if len(cfg.planes) != 8 or len(cfg.layers) != 8:
            raise ValueError(f"planes and layers need 8 entries each, got {cfg.planes} and {cfg.layers}")
        if cfg.stem_convs not in (1, 2) or cfg.head not in ("conv", "linear"):
            raise ValueError(
                f"stem_convs must be 1 or 2 and head 'conv' or 'linear', got {cfg.stem_convs}, {cfg.head}"
            )
        self.config = cfg
        p, n, m, mb = cfg.planes, cfg.layers, cfg.bn_momentum, cfg.block_bn_momentum
        stem = [*_conv_bn_relu(SubmanifoldConv3d(cfg.in_channels, cfg.init_dim), cfg.init_dim, m)]
        if cfg.stem_convs == 2:
            stem += [*_conv_bn_relu(SubmanifoldConv3d(cfg.init_dim, cfg.init_dim), cfg.init_dim, m)]
        self.stem = nn.Sequential(*stem)

        self.down = nn.ModuleList()
        self.encoder = nn.ModuleList()
        width = cfg.init_dim
        skip_widths = [cfg.init_dim]
        for i in range(4):
            self.down.append(_conv_bn_relu(DownsampleConv3d(width, width), width, m))
            self.encoder.append(_blocks(width, p[i], n[i], mb, m))
            width = p[i] if n[i] > 0 else width
            skip_widths.append(width)
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for j in range(4):
            self.up.append(_conv_bn_relu(UpsampleConv3d(width, p[4 + j]), p[4 + j], m))
            cat_width = p[4 + j] + skip_widths[3 - j]
            self.decoder.append(_blocks(cat_width, p[4 + j], n[4 + j], mb, m))
            width = p[4 + j] if n[4 + j] > 0 else cat_width
        self.feature_dim = width
        if cfg.head == "conv":
            self.head: nn.Module = PointwiseConv3d(width, cfg.num_classes, bias=True)
        else:
            self.head = nn.Linear(width, cfg.num_classes)
        self.reset_parameters(init_seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int = 0) -> None:
        """Initialise every parameter from a generator keyed by ``seed`` (identical on every backend)."""
        from pcseg.utils.rng import torch_generator

        g = torch_generator(seed, "model-init")
        for module in self.modules():
            if isinstance(module, _SparseConv):
                if self.config.init == "kaiming_fan_out":
                    std = math.sqrt(2.0 / (module.weight.shape[0] * module.out_channels))
                    module.weight.normal_(0.0, std, generator=g)
                    if module.bias is not None:
                        bound = 1.0 / math.sqrt(module.weight.shape[0] * module.in_channels)
                        module.bias.uniform_(-bound, bound, generator=g)
                else:
                    module.reset_parameters(generator=g)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                module.weight.uniform_(-bound, bound, generator=g)
                module.bias.uniform_(-bound, bound, generator=g)
            elif isinstance(module, BatchNorm):
                module.reset_parameters()  # weight 1, bias 0, running stats cleared

    def forward(self, x: SparseTensor) -> dict[str, torch.Tensor]:
        if not isinstance(x, SparseTensor):
            raise TypeError(f"{type(self).__name__} expects a pcseg SparseTensor, got {type(x).__name__}")
        if x.stride != 1:
            raise ValueError(f"{type(self).__name__} expects a stride-1 input, got stride {x.stride}")
        out = self.stem(x)
        skips = [out]
        for down, blocks in zip(self.down, self.encoder):
            out = blocks(down(out))
            skips.append(out)
        skips.pop()  # the deepest level is not a skip
        for up, blocks in zip(self.up, self.decoder):
            out = blocks(cat(up(out), skips.pop()))
        feats = out.feats
        logits = self.head(out).feats if isinstance(self.head, PointwiseConv3d) else self.head(feats)
        return {"logits": logits, "feats": feats}
