r"""Scaled dot-product attention, causal and sliding-window masks, MHA / MQA / GQA and the KV cache.

Shapes: ``B`` batch, ``H`` query heads, ``G`` key/value heads (``n_kv_heads``), ``T`` time, ``d`` head width,
``D`` model width.

**Attention** (A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017, arXiv:1706.03762):
$\mathrm{Attn}(Q, K, V) = \mathrm{softmax}\big(Q K^\top/\sqrt d + \text{bias} + \text{mask}\big)\,V$.
The $1/\sqrt d$ keeps the score variance near 1 when q and k have unit-variance entries (a dot product of d such
numbers has variance d); without it the softmax saturates and its gradient vanishes. A *causal* mask sets the
score of query i and key j > i to $-\infty$ *before* the softmax, so every row still sums to one over the
allowed keys; a *sliding window* of width w also removes keys with $j \le i - w$ (Mistral 7B, arXiv:2310.06825).

**Heads.** Multi-head attention (MHA) has H query, key and value heads. Multi-query attention (MQA; N. Shazeer,
"Fast Transformer Decoding: One Write-Head is All You Need", 2019, arXiv:1911.02150) keeps H query heads but a
single key/value head; grouped-query attention (GQA; J. Ainslie et al., "GQA: Training Generalized Multi-Query
Transformer Models from Multi-Head Checkpoints", EMNLP 2023, arXiv:2305.13245) uses G key/value heads, each
shared by H/G consecutive query heads. One module covers all three through ``n_kv_heads`` in {H, G, 1}.

**KV cache.** In autoregressive decoding the keys and values of past tokens never change, so they are stored:
$\text{bytes} = 2 \cdot L \cdot G \cdot d \cdot T \cdot B \cdot \text{bytes per element}$ (the 2 is K and V).
GQA and MQA shrink it by H/G and H.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from manifold_course.nn.positions import alibi_bias_positions, alibi_slopes, rope_rotate


def attention_mask(Tq: int, Tk: int, window: int | None = None) -> torch.Tensor:
    r"""(Tq, Tk) bool, True where query i may see key j. Queries are the *last* Tq of the Tk positions.

    Query i sits at absolute position $p = T_k - T_q + i$; it sees keys $j \le p$ and, with a window w, $j > p - w$.
    """
    p = torch.arange(Tk - Tq, Tk)[:, None]                                 # (Tq, 1) absolute query positions
    j = torch.arange(Tk)[None, :]                                          # (1, Tk)
    allowed = j <= p
    if window is not None:
        allowed = allowed & (j > p - window)
    return allowed


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                                 return_weights: bool = False):
    r"""softmax(q k^T / sqrt(d) + bias, masked) v for q (..., Tq, d), k and v (..., Tk, d).

    ``mask`` is bool and broadcastable to (..., Tq, Tk), True = keep; ``bias`` is added to the scores.
    Returns (..., Tq, d_v), and the weights (..., Tq, Tk) too when ``return_weights``.
    """
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)                        # (..., Tq, Tk)  S = Q K^T / sqrt(d)
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))                  # mask BEFORE the softmax
    weights = torch.softmax(scores, dim=-1)                                # rows sum to 1 over allowed keys
    out = weights @ v                                                      # (..., Tq, d_v)
    return (out, weights) if return_weights else out


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention for q, k, v (..., T, d); matches ``F.scaled_dot_product_attention(q, k, v, is_causal=True)``."""
    T = q.shape[-2]
    return scaled_dot_product_attention(q, k, v, mask=attention_mask(T, T))


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, G, T, d) -> (B, G * n_rep, T, d): kv head g serves query heads g * n_rep .. g * n_rep + n_rep - 1."""
    if n_rep == 1:
        return x
    return torch.repeat_interleave(x, n_rep, dim=1)                        # [k0, k0, k1, k1, ...], not [k0, k1, k0, k1]


def kv_cache_bytes(n_layers: int, n_kv_heads: int, head_dim: int, seq_len: int, batch: int = 1,
                   bytes_per_elem: int = 2) -> int:
    r"""Size of a KV cache in bytes: $2 \cdot L \cdot G \cdot d \cdot T \cdot B \cdot$ bytes per element (K and V)."""
    return 2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_elem


def kv_cache_append(cache_k: torch.Tensor, cache_v: torch.Tensor, k_new: torch.Tensor,
                    v_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Append new keys / values (B, G, T_new, d) to the cache (B, G, T_old, d) along time; inputs unchanged."""
    return torch.cat([cache_k, k_new], dim=-2), torch.cat([cache_v, v_new], dim=-2)   # (B, G, T_old + T_new, d)


def cache_nbytes(kv_cache: list) -> int:
    """Bytes held by the tensors of a GPT KV cache (a list of (k, v) pairs, one per layer)."""
    return sum(t.numel() * t.element_size() for pair in kv_cache for t in pair)


class GroupedQueryAttention(nn.Module):
    """MHA (n_kv_heads = n_heads), GQA (1 < n_kv_heads < n_heads) or MQA (n_kv_heads = 1), with optional RoPE / ALiBi.

    ``forward(x, positions, cache=None)``: x (B, T, D), positions (T,) absolute positions of the new tokens.
    ``cache`` is None or a pair (k, v) of past keys / values (B, G, T_old, d), stored *after* RoPE; the method
    returns ``(y, (k, v))`` with the extended pair so that the caller can keep it.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int | None = None, pos: str = "rope",
                 rope_base: float = 10000.0, rope_scale: float = 1.0, window: int | None = None):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if d_model % n_heads or n_heads % n_kv_heads:
            raise ValueError(f"need n_heads | d_model and n_kv_heads | n_heads, got D={d_model}, H={n_heads}, "
                             f"G={n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, d_model // n_heads
        self.pos, self.rope_base, self.rope_scale, self.window = pos, rope_base, rope_scale, window
        self.wq = nn.Linear(d_model, n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=False)   # G heads only: the cache saving
        self.wv = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(n_heads * self.head_dim, d_model, bias=False)
        if pos == "alibi":
            self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, cache: tuple | None = None):
        B, T, _ = x.shape
        H, G, d = self.n_heads, self.n_kv_heads, self.head_dim
        q = self.wq(x).view(B, T, H, d).transpose(1, 2)                   # (B, H, T, d)
        k = self.wk(x).view(B, T, G, d).transpose(1, 2)                   # (B, G, T, d)
        v = self.wv(x).view(B, T, G, d).transpose(1, 2)                   # (B, G, T, d)
        if self.pos == "rope":
            q = rope_rotate(q, positions, self.rope_base, self.rope_scale)
            k = rope_rotate(k, positions, self.rope_base, self.rope_scale)
        if cache is not None:
            k, v = kv_cache_append(cache[0], cache[1], k, v)               # (B, G, T_old + T, d)
        Tk = k.shape[-2]
        mask = attention_mask(T, Tk, self.window).to(x.device)            # (T, Tk)
        bias = None
        if self.pos == "alibi":
            bias = alibi_bias_positions(self.slopes, positions, torch.arange(Tk, device=x.device))  # (H, T, Tk)
        y = scaled_dot_product_attention(q, repeat_kv(k, H // G), repeat_kv(v, H // G), mask=mask, bias=bias)
        y = y.transpose(1, 2).reshape(B, T, H * d)                         # (B, T, H*d)
        return self.wo(y), (k, v)
