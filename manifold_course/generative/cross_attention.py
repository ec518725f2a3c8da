r"""Cross-attention: how a text prompt steers an image model, location by location (SYLLABUS 3.7).

Latent diffusion (Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", 2021,
arXiv:2112.10752) conditions its U-Net on a prompt through cross-attention layers. The queries come from the image's
feature map, flattened to $N = HW$ positions, the keys and values from the $M$ token embeddings of the prompt (in
Stable Diffusion v1, CLIP's text encoder gives $M = 77$ tokens of $768$ dimensions):

$$\mathrm{CrossAttn}(X, C) = \mathrm{softmax}\!\Big(\frac{(XW_Q)(CW_K)^\top}{\sqrt d}\Big)(CW_V),$$

with $X$ ($N\times d_x$) the flattened features, $C$ ($M\times d_c$) the prompt, $W_Q$ ($d_x\times d$),
$W_K$ ($d_c\times d$), $W_V$ ($d_c\times d_v$) and $d$ the query/key width. Row $n$ of the softmax is a probability
distribution over the $M$ tokens: how much position $n$ reads from each word. Prompts are padded to a common
length; a **mask** sets the score of a padding token to $-\infty$ *before* the softmax, so that it gets exactly zero
weight and the real tokens still share a total weight of 1. Read per token, column $m$ of the attention matrix,
reshaped to $H\times W$, is that word's **attention map** (Hertz et al., "Prompt-to-Prompt Image Editing with Cross
Attention Control", 2022, arXiv:2208.01626, edit images by editing these maps).

Shapes: ``B`` batch, ``N = H*W`` image positions (row-major: position ``n = h*W + w``), ``M`` prompt tokens.
"""

from __future__ import annotations

import math

import torch


def cross_attention(x_img: torch.Tensor, ctx: torch.Tensor, Wq: torch.Tensor, Wk: torch.Tensor, Wv: torch.Tensor,
                    ctx_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(out, attn)``: ``out`` (B, N, d_v) and the attention weights ``attn`` (B, N, M).

    ``x_img`` (B, N, d_x), ``ctx`` (B, M, d_c), ``Wq`` (d_x, d), ``Wk`` (d_c, d), ``Wv`` (d_c, d_v); ``ctx_mask``
    (B, M) bool, True for a real token and False for padding (every prompt has at least one real token). Scores
    are scaled by $1/\sqrt d$ with $d$ = ``Wq.shape[1]``; masked scores are set to $-\infty$ before the softmax.
    """
    q, k, v = x_img @ Wq, ctx @ Wk, ctx @ Wv                                     # (B,N,d), (B,M,d), (B,M,d_v)
    scores = q @ k.transpose(-1, -2) / math.sqrt(Wq.shape[1])                    # (B, N, M)
    if ctx_mask is not None:
        scores = scores.masked_fill(~ctx_mask.bool()[:, None, :], float("-inf"))
    attn = torch.softmax(scores, dim=-1)
    return attn @ v, attn


def token_attention_maps(attn: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Per-token attention maps (B, M, H, W) from weights ``attn`` (B, H*W, M) over a row-major H x W grid."""
    B, N, M = attn.shape
    if N != H * W:
        raise ValueError(f"attn has {N} query positions, but H * W = {H * W}")
    return attn.transpose(1, 2).reshape(B, M, H, W)


def concept_grid(layout: torch.Tensor, concepts: torch.Tensor, noise: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A synthetic feature map: position ``n`` holds the sum of the embeddings of the concepts present there.

    ``layout`` (H, W, K) is 0/1 (concept k present at (h, w)), ``concepts`` (K, d) the concept embeddings; returns
    (H*W, d) features (row-major), plus Gaussian noise of standard deviation ``noise`` if a generator is given.
    """
    H, W, K = layout.shape
    feats = layout.reshape(H * W, K).to(concepts.dtype) @ concepts
    if noise > 0 and generator is not None:
        feats = feats + noise * torch.randn(feats.shape, generator=generator, dtype=feats.dtype)
    return feats
