r"""ConvNeXt: a ResNet modernised with Transformer design choices, plus patches and receptive fields.

Z. Liu, H. Mao, C.-Y. Wu, C. Feichtenhofer, T. Darrell, S. Xie, "A ConvNet for the 2020s", CVPR 2022
(arXiv:2201.03545). The block: depthwise 7x7 convolution (one filter per channel, $Ck^2$ weights instead of
$C^2k^2$) -> LayerNorm over channels at every pixel ("channels last") -> Linear $C \to 4C$ -> GELU ->
Linear $4C \to C$ (the *inverted bottleneck*, narrow-wide-narrow like a Transformer's MLP) -> add the input.
The stem is a *patchify* layer, a $p \times p$ convolution with stride $p$, which is what a Vision Transformer
does to cut an image into tokens (A. Dosovitskiy et al., "An image is worth 16x16 words", ICLR 2021,
arXiv:2010.11929). The official block also has a learnable per-channel "layer scale" and stochastic depth;
both are left out here.

Receptive field of a stack of convolutions with kernels $k_l$ and strides $s_l$:
$r_0 = 1$, $r_l = r_{l-1} + (k_l - 1)\prod_{i<l}s_i$.
Shapes: ``B`` batch, ``C`` channels, ``H``/``W`` height/width, ``p`` patch side, ``N`` tokens.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from manifold_course.nn.residual import ResBlock

Tensor = torch.Tensor


class ConvNeXtBlock(nn.Module):
    """dwconv7x7 -> LayerNorm (channels last, eps 1e-6) -> Linear(C, 4C) -> GELU -> Linear(4C, C) -> + input.

    Attribute names follow the official code. $8C^2 + 57C$ parameters. (B, C, H, W) -> same."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)   # depthwise: 49C + C
        self.norm = nn.LayerNorm(dim, eps=1e-6)                                    # 2C
        self.pwconv1 = nn.Linear(dim, 4 * dim)                                     # 4C^2 + 4C
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)                                     # 4C^2 + C

    def forward(self, x: Tensor) -> Tensor:                                        # (B, C, H, W)
        h = self.dwconv(x)
        h = h.permute(0, 2, 3, 1)                                                  # (B, H, W, C): channels last
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))                     # per-pixel MLP C -> 4C -> C
        return x + h.permute(0, 3, 1, 2)                                           # (B, C, H, W)


def convnext_block_param_count(dim: int) -> int:
    """$(49C + C) + 2C + (4C^2 + 4C) + (4C^2 + C) = 8C^2 + 57C$."""
    return 8 * dim**2 + 57 * dim


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of every pixel of a (B, C, H, W) tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def patchify(x: Tensor, p: int) -> Tensor:
    """Cut images into non-overlapping p x p patches: (B, C, H, W) -> (B, N, C p^2) with N = (H/p)(W/p).

    Tokens run over patches row by row; a token lists its patch as (C, p, p) flattened, the order of ``F.unfold``."""
    B, C, H, W = x.shape
    h, w = H // p, W // p
    t = x.reshape(B, C, h, p, w, p)                          # (B, C, h, p, w, p)
    t = t.permute(0, 2, 4, 1, 3, 5)                          # (B, h, w, C, p, p)
    return t.reshape(B, h * w, C * p * p)                    # (B, N, C p^2)


def unpatchify(tokens: Tensor, p: int, H: int, W: int) -> Tensor:
    """Inverse of :func:`patchify`: (B, N, C p^2) -> (B, C, H, W)."""
    B, N, D = tokens.shape
    C, h, w = D // (p * p), H // p, W // p
    t = tokens.reshape(B, h, w, C, p, p)                     # (B, h, w, C, p, p)
    t = t.permute(0, 3, 1, 4, 2, 5)                          # (B, C, h, p, w, p)
    return t.reshape(B, C, H, W)


def receptive_field(layers: list[tuple[int, int]]) -> int:
    r"""Receptive field (in input pixels along one axis) of a stack of (kernel, stride) layers:
    $r_l = r_{l-1} + (k_l - 1)\prod_{i<l}s_i$, $r_0 = 1$."""
    r, jump = 1, 1                                           # jump: input pixels between neighbouring outputs
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r


# ---------------------------------------------------------------- tiny classifiers for the 8 x 8 digits


class TinyResNet(nn.Module):
    """conv3x3(1 -> C) + BN + ReLU -> ``depth`` ResBlocks -> global average pool -> Linear(C, 10). (B, 1, 8, 8) -> (B, 10)."""

    def __init__(self, channels: int = 16, depth: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())
        self.blocks = nn.Sequential(*[ResBlock(channels) for _ in range(depth)])
        self.head = nn.Linear(channels, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.stem(x))                        # (B, C, 8, 8)
        return self.head(h.mean(dim=(2, 3)))                 # global average pool -> (B, C) -> (B, 10)


class TinyConvNeXt(nn.Module):
    """patchify p x p (conv stride p) + LayerNorm -> ``depth`` ConvNeXt blocks -> pool -> LayerNorm -> Linear(C, 10)."""

    def __init__(self, dim: int = 16, depth: int = 2, patch: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, dim, kernel_size=patch, stride=patch), LayerNorm2d(dim, eps=1e-6))
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.stem(x))                        # (B, C, 8/p, 8/p)
        return self.head(self.norm(h.mean(dim=(2, 3))))      # (B, 10)


def tiny_resnet_param_count(C: int, depth: int) -> int:
    """stem 9C + 2C, blocks depth (18C^2 + 4C), head 10C + 10."""
    return 11 * C + depth * (18 * C**2 + 4 * C) + 10 * C + 10


def tiny_convnext_param_count(C: int, depth: int, patch: int) -> int:
    """stem p^2 C + C + 2C, blocks depth (8C^2 + 57C), final LayerNorm 2C, head 10C + 10."""
    return patch**2 * C + 3 * C + depth * (8 * C**2 + 57 * C) + 2 * C + 10 * C + 10


def conv_flops(model: nn.Module, x: Tensor) -> int:
    """Multiply-accumulates of every Conv2d and Linear on input ``x`` (one image), counted with forward hooks."""
    total = 0

    def hook(m: nn.Module, inp: tuple[Tensor], out: Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:                                                # nn.Linear on (..., in) -> (..., out)
            total += out.numel() // out.shape[0] * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()
        model(x[:1])
    for h in handles:
        h.remove()
    return total

