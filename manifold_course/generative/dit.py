r"""Diffusion Transformers: patches as tokens, adaLN-Zero conditioning, and spacetime patches for video.

DiT (W. Peebles, S. Xie, "Scalable Diffusion Models with Transformers", 2022, arXiv:2212.09748) replaces the
U-Net of a diffusion model with a plain Transformer over patches: an image (C, H, W) is cut into
$N = \frac{H}{p}\cdot\frac{W}{p}$ patches of $p\times p$ pixels, each flattened to a token of $p^2C$ numbers and
projected to width $D$. The time step (and class) enter through *adaptive LayerNorm*: a small network maps the
conditioning vector $c$ to a shift $\beta(c)$, a scale $\gamma(c)$ and a gate $\alpha(c)$ per sub-layer,

$$h = x + \alpha(c)\odot F\big((1+\gamma(c))\odot\mathrm{LN}(x)+\beta(c)\big),$$

(written $\gamma\odot\mathrm{LN}+\beta$ in the syllabus; DiT's code stores $\gamma - 1$). In *adaLN-Zero* the last layer
of that network starts at zero, so $\alpha = 0$ and every block is the identity map at initialisation, for any $c$.

A video (T, C, H, W) is cut into *spacetime patches* of $p_t$ frames $\times\, p_h \times p_w$ pixels:
$N = \frac{T}{p_t}\cdot\frac{H}{p_h}\cdot\frac{W}{p_w}$ tokens. OpenAI's Sora report (2024, a web page, not a paper)
says only that Sora is a diffusion transformer on spacetime patches of a compressed latent video; everything more
specific is speculation.

Conventions: patches are ordered row-major over the patch grid (time, then rows, then columns), and the numbers
inside a token are ordered (frame, row, column, channel) within the patch, the order of DiT's ``unpatchify``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .denoiser import timestep_embedding


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """Images (B, C, H, W) -> tokens (B, (H/p)(W/p), p*p*C)."""
    B, C, H, W = x.shape
    if H % p or W % p:
        raise ValueError(f"the patch size {p} must divide the image size {H}x{W}")
    x = x.reshape(B, C, H // p, p, W // p, p)                          # (B, C, h, p, w, q)
    x = x.permute(0, 2, 4, 3, 5, 1)                                    # (B, h, w, p, q, C)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(tokens: torch.Tensor, image_shape: tuple[int, int, int], p: int) -> torch.Tensor:
    """Tokens (B, N, p*p*C) -> images (B, C, H, W) for ``image_shape = (C, H, W)``; inverse of :func:`patchify`."""
    C, H, W = image_shape
    B = tokens.shape[0]
    x = tokens.reshape(B, H // p, W // p, p, p, C)                     # (B, h, w, p, q, C)
    x = x.permute(0, 5, 1, 3, 2, 4)                                    # (B, C, h, p, w, q)
    return x.reshape(B, C, H, W)


def spacetime_patchify(video: torch.Tensor, pt: int, ph: int, pw: int) -> torch.Tensor:
    """Videos (B, T, C, H, W) -> tokens (B, (T/pt)(H/ph)(W/pw), pt*ph*pw*C)."""
    B, T, C, H, W = video.shape
    if T % pt or H % ph or W % pw:
        raise ValueError(f"the patch ({pt}, {ph}, {pw}) must divide the video size (T, H, W) = ({T}, {H}, {W})")
    x = video.reshape(B, T // pt, pt, C, H // ph, ph, W // pw, pw)     # (B, t, pt, C, h, ph, w, pw)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)                              # (B, t, h, w, pt, ph, pw, C)
    return x.reshape(B, spacetime_token_count(T, H, W, pt, ph, pw), pt * ph * pw * C)


def spacetime_unpatchify(tokens: torch.Tensor, video_shape: tuple[int, int, int, int], pt: int, ph: int,
                         pw: int) -> torch.Tensor:
    """Tokens (B, N, pt*ph*pw*C) -> videos (B, T, C, H, W) for ``video_shape = (T, C, H, W)``."""
    T, C, H, W = video_shape
    B = tokens.shape[0]
    x = tokens.reshape(B, T // pt, H // ph, W // pw, pt, ph, pw, C)    # (B, t, h, w, pt, ph, pw, C)
    x = x.permute(0, 1, 4, 7, 2, 5, 3, 6)                              # (B, t, pt, C, h, ph, w, pw)
    return x.reshape(B, T, C, H, W)


def spacetime_token_count(T: int, H: int, W: int, pt: int, ph: int, pw: int) -> int:
    r"""$N = \frac{T}{p_t}\cdot\frac{H}{p_h}\cdot\frac{W}{p_w}$ (the patch must divide the video)."""
    if T % pt or H % ph or W % pw:
        raise ValueError(f"the patch ({pt}, {ph}, {pw}) must divide (T, H, W) = ({T}, {H}, {W})")
    return (T // pt) * (H // ph) * (W // pw)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (B, N, D) with per-sample shift, scale (B, D): x * (1 + scale) + shift."""
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class SelfAttention(nn.Module):
    """Multi-head self-attention without a mask: ``qkv`` (D -> 3D) and ``proj`` (D -> D)."""

    def __init__(self, d: int, n_heads: int):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"the width {d} must be a multiple of the number of heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)  # (3, B, H, N, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D // self.n_heads), dim=-1)          # (B, H, N, N)
        return self.proj((w @ v).transpose(1, 2).reshape(B, N, D))


class AdaLNZeroBlock(nn.Module):
    r"""A DiT block: $x \leftarrow x + \alpha_1 \odot \mathrm{Attn}(\mathrm{mod}(\mathrm{LN}(x); \beta_1, \gamma_1))$,
    then $x \leftarrow x + \alpha_2 \odot \mathrm{MLP}(\mathrm{mod}(\mathrm{LN}(x); \beta_2, \gamma_2))$, with
    $(\beta_1, \gamma_1, \alpha_1, \beta_2, \gamma_2, \alpha_2) = \mathrm{Linear}(\mathrm{SiLU}(c))$ split in six, in
    that order, and that Linear initialised to zero. Input x (B, N, D), conditioning c (B, D).
    """

    def __init__(self, d: int, n_heads: int = 4, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(d, n_heads)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * d, d))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        nn.init.zeros_(self.adaLN_modulation[1].weight)                # adaLN-Zero: alpha = beta = gamma = 0
        nn.init.zeros_(self.adaLN_modulation[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)   # each (B, D)
        x = x + gate1[:, None, :] * self.attn(modulate(self.norm1(x), shift1, scale1))
        return x + gate2[:, None, :] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class TinyDiT(nn.Module):
    r"""A small DiT denoiser for flattened images: ``forward(x (B, C*H*W), t (B,)) -> (B, C*H*W)``.

    Patch embedding (``Linear(p^2 C, D)``) plus a learned position embedding, ``depth`` adaLN-Zero blocks conditioned
    on $c = \mathrm{MLP}(\mathrm{emb}(t\cdot s))$ (the sinusoidal :func:`timestep_embedding`, ``time_scale`` $s$), and
    a final adaptive LayerNorm and linear layer, both zero-initialised as in DiT, so the untrained network outputs 0.
    Works as a flow-matching velocity (t in [0, 1], ``time_scale = 1000``) or an epsilon-network.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 8, 8), patch: int = 2, d: int = 64, depth: int = 2,
                 n_heads: int = 4, time_scale: float = 1000.0):
        super().__init__()
        C, H, W = image_shape
        self.image_shape, self.patch, self.d, self.time_scale = tuple(image_shape), patch, d, time_scale
        n_tokens = (H // patch) * (W // patch)
        self.embed = nn.Linear(patch * patch * C, d)
        self.pos = nn.Parameter(0.02 * torch.randn(1, n_tokens, d))
        self.t_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(AdaLNZeroBlock(d, n_heads) for _ in range(depth))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.out = nn.Linear(d, patch * patch * C)
        for layer in (self.ada_out[1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        t = torch.as_tensor(t, dtype=x.dtype)
        if t.ndim == 0:
            t = t.expand(B)
        c = self.t_mlp(timestep_embedding(t * self.time_scale, self.d).to(x.dtype))      # (B, D)
        h = self.embed(patchify(x.reshape(B, *self.image_shape), self.patch)) + self.pos  # (B, N, D)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.ada_out(c).chunk(2, dim=-1)
        h = self.out(modulate(self.norm_out(h), shift, scale))                            # (B, N, p^2 C)
        return unpatchify(h, self.image_shape, self.patch).reshape(x.shape)
