"""Plausible wrong answers to the exercises of v2_llm/01_transformer_anatomy; each check must reject them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from manifold_course.nn.gpt import PreNormBlock as _RefBlock

# ---------------------------------------------------------------- causal_attention


def attn_no_scale(q, k, v):
    # forgot the 1 / sqrt(d)
    T = q.shape[-2]
    s = q @ k.transpose(-2, -1)
    s = s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
    return torch.softmax(s, -1) @ v


def attn_mask_after_softmax(q, k, v):
    # zeroes the future weights after the softmax: rows no longer sum to 1
    T = q.shape[-2]
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)
    return (w * torch.tril(torch.ones(T, T))) @ v


def attn_strict_mask(q, k, v):
    # masks the diagonal too: a token may not see itself (and T = 1 gives NaN)
    T = q.shape[-2]
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=-1), float("-inf"))
    return torch.softmax(s, -1) @ v


def attn_upper_mask(q, k, v):
    # keeps the future instead of the past
    T = q.shape[-2]
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~torch.triu(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
    return torch.softmax(s, -1) @ v


def attn_scale_by_d(q, k, v):
    # divides by d instead of sqrt(d)
    T = q.shape[-2]
    s = q @ k.transpose(-2, -1) / q.shape[-1]
    s = s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
    return torch.softmax(s, -1) @ v


# ---------------------------------------------------------------- repeat_kv


def repeat_tiled(x, n_rep):
    # x.repeat tiles [k0, k1, k0, k1]: query head h gets kv head h % G instead of h // n_rep
    return x.repeat(1, n_rep, 1, 1)


def repeat_wrong_axis(x, n_rep):
    # repeats along time
    return torch.repeat_interleave(x, n_rep, dim=2)


# ---------------------------------------------------------------- kv_cache_bytes


def bytes_forgot_two(n_layers, n_kv_heads, head_dim, seq_len, batch, bytes_per_elem):
    # counts the keys only, not the values
    return n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_elem


def bytes_in_bits(n_layers, n_kv_heads, head_dim, seq_len, batch, bytes_per_elem):
    # bits instead of bytes
    return 2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_elem * 8


def bytes_float(n_layers, n_kv_heads, head_dim, seq_len, batch, bytes_per_elem):
    # returns a float (e.g. after dividing by 1024 ** 3 and multiplying back)
    return float(2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_elem)


# ---------------------------------------------------------------- kv_cache_append


def append_new_first(cache_k, cache_v, k_new, v_new):
    # puts the new tokens before the old ones
    return torch.cat([k_new, cache_k], dim=-2), torch.cat([v_new, cache_v], dim=-2)


def append_overwrite(cache_k, cache_v, k_new, v_new):
    # forgets the past: returns the new keys only
    return k_new, v_new


def append_swapped(cache_k, cache_v, k_new, v_new):
    # returns (v, k)
    return torch.cat([cache_v, v_new], dim=-2), torch.cat([cache_k, k_new], dim=-2)


# ---------------------------------------------------------------- rope_rotate


def _angles(positions, d, base):
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    return positions.double()[:, None] * theta


def rope_half_split(x, positions, base=10000.0):
    # pairs (x_i, x_{i + d/2}) (the GPT-NeoX layout) instead of the consecutive pairs (x_{2i}, x_{2i+1}) asked for
    d = x.shape[-1]
    a = _angles(positions, d, base)
    cos, sin = a.cos().to(x.dtype), a.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def rope_wrong_direction(x, positions, base=10000.0):
    # rotates by -angle: still relative, but not the convention
    d = x.shape[-1]
    a = _angles(positions, d, base)
    cos, sin = a.cos().to(x.dtype), a.sin().to(x.dtype)
    y = torch.empty_like(x)
    y[..., 0::2] = x[..., 0::2] * cos + x[..., 1::2] * sin
    y[..., 1::2] = -x[..., 0::2] * sin + x[..., 1::2] * cos
    return y


def rope_wrong_frequencies(x, positions, base=10000.0):
    # theta_i = base^(-i/d) instead of base^(-2i/d)
    d = x.shape[-1]
    theta = base ** (-torch.arange(d // 2, dtype=torch.float64) / d)
    a = positions.double()[:, None] * theta
    cos, sin = a.cos().to(x.dtype), a.sin().to(x.dtype)
    y = torch.empty_like(x)
    y[..., 0::2] = x[..., 0::2] * cos - x[..., 1::2] * sin
    y[..., 1::2] = x[..., 0::2] * sin + x[..., 1::2] * cos
    return y


def rope_mutates(x, positions, base=10000.0):
    # rotates in place
    d = x.shape[-1]
    a = _angles(positions, d, base)
    cos, sin = a.cos().to(x.dtype), a.sin().to(x.dtype)
    e, o = x[..., 0::2].clone(), x[..., 1::2].clone()
    x[..., 0::2] = e * cos - o * sin
    x[..., 1::2] = e * sin + o * cos
    return x


# ---------------------------------------------------------------- alibi_bias


def _slopes(H):
    n0 = 2 ** int(math.floor(math.log2(H)))
    s = [2.0 ** (-8.0 * h / n0) for h in range(1, n0 + 1)]
    extra = [2.0 ** (-8.0 * h / (2 * n0)) for h in range(1, 2 * n0 + 1)][0::2][: H - n0]
    return torch.tensor(s + extra)


def alibi_positive(n_heads, T):
    # + m (i - j): rewards distant tokens
    i = torch.arange(T)
    return _slopes(n_heads)[:, None, None] * (i[:, None] - i[None, :]).float()


def alibi_slopes_from_zero(n_heads, T):
    # slopes 2^(-8h/H) for h = 0..H-1: the first head gets slope 1 and the last misses 1/256
    i = torch.arange(T)
    m = torch.tensor([2.0 ** (-8.0 * h / n_heads) for h in range(n_heads)])
    return -m[:, None, None] * (i[:, None] - i[None, :]).float()


def alibi_naive_slopes(n_heads, T):
    # uses 2^(-8h/H) for every H, ignoring the recipe for H not a power of two
    i = torch.arange(T)
    m = torch.tensor([2.0 ** (-8.0 * h / n_heads) for h in range(1, n_heads + 1)])
    return -m[:, None, None] * (i[:, None] - i[None, :]).float()


# ---------------------------------------------------------------- swiglu


def swiglu_gelu(x, w_gate, w_up, w_down):
    # GELU gate instead of SiLU (that is GeGLU)
    return (F.gelu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


def swiglu_swapped(x, w_gate, w_up, w_down):
    # applies the SiLU to the up projection
    return ((x @ w_gate.T) * F.silu(x @ w_up.T)) @ w_down.T


def swiglu_sigmoid_gate(x, w_gate, w_up, w_down):
    # sigmoid instead of SiLU (the GLU of Dauphin et al.)
    return (torch.sigmoid(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


# ---------------------------------------------------------------- PreNormBlock


class PostNormBlock(_RefBlock):
    # normalises after the residual sum (the original transformer), not before each sub-layer
    def forward(self, x):
        pos = torch.arange(x.shape[1])
        x = self.norm1(x + self.attn(x, pos)[0])
        return self.norm2(x + self.mlp(x))


class NoResidualBlock(_RefBlock):
    # forgets the residual connection around the MLP
    def forward(self, x):
        pos = torch.arange(x.shape[1])
        h = x + self.attn(self.norm1(x), pos)[0]
        return self.mlp(self.norm2(h))


class SameNormBlock(_RefBlock):
    # feeds the MLP the norm of the block input x instead of the norm of the updated stream h (parallel block)
    def forward(self, x):
        pos = torch.arange(x.shape[1])
        h = x + self.attn(self.norm1(x), pos)[0]
        return h + self.mlp(self.norm2(x))


WRONG = {
    "transformer.causal_attention": [attn_no_scale, attn_mask_after_softmax, attn_strict_mask, attn_upper_mask,
                                     attn_scale_by_d],
    "transformer.repeat_kv": [repeat_tiled, repeat_wrong_axis],
    "transformer.kv_cache_bytes": [bytes_forgot_two, bytes_in_bits, bytes_float],
    "transformer.kv_cache_append": [append_new_first, append_overwrite, append_swapped],
    "transformer.rope_rotate": [rope_half_split, rope_wrong_direction, rope_wrong_frequencies, rope_mutates],
    "transformer.alibi_bias": [alibi_positive, alibi_slopes_from_zero, alibi_naive_slopes],
    "transformer.swiglu": [swiglu_gelu, swiglu_swapped, swiglu_sigmoid_gate],
    "transformer.PreNormBlock": [PostNormBlock, NoResidualBlock, SameNormBlock],
}
