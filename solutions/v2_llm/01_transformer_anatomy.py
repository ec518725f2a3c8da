# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Volume 2, Chapter 1 exercises: Transformer anatomy (sections 2.1-2.4)
#
# Eight pieces of a modern decoder-only transformer: causal attention, the head sharing of grouped-query attention,
# the size of a KV cache and how it grows, rotary position embeddings, ALiBi biases, the SwiGLU feed-forward block,
# and a whole Pre-Norm block. Each exercise states its inputs, outputs and what the check verifies; write the body of
# the function where it says `# YOUR CODE HERE`, run the cell, then run the `check(...)` cell below it: it answers at
# once with a green "passed" or a red message that says what to fix. The checks draw fresh random cases each time,
# including edge cases (one token, one head, sizes that are not powers of two, large scores, float64).
#
# The lecture is `chapters/v2_llm/01_transformer_anatomy.ipynb`. Please write your own code rather than importing the
# course's reference implementations (`manifold_course.nn.attention`, `.positions`, `.feedforward`): the point is to
# build them yourself. Exercise 8 is the one place where you use the course's modules, for the parts you built in
# exercises 1-7.
#
# Conventions: inputs are torch tensors; shapes use `B` batch, `H` query heads, `G` key/value heads, `T` time,
# `d` head width, `D` model width, `F` hidden width; outputs keep the dtype of the inputs; **never modify an input in
# place** (the checks notice).

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: causal attention from scratch
#
# `causal_attention(q, k, v) -> Tensor` with `q`, `k`, `v` of shape `(..., T, d)` (any leading axes, e.g.
# `(B, H, T, d)`):
#
# $$S = \frac{q k^\top}{\sqrt d},\qquad S_{ij} \leftarrow -\infty \text{ for } j > i,\qquad
# \text{out} = \mathrm{softmax}_j(S)\, v .$$
#
# The mask goes in **before** the softmax, so each row's weights sum to one over the keys $j \le i$.
#
# **Checked:** against the reference on `(2, 3, 7, 8)`, `T = 1`, `T = 13` with `d = 5`, a 3-D input, large scores
# (entries ~ 8; the softmax must not overflow) and float64; then against
# `torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)`.

# %%
def causal_attention(q, k, v):
    ### BEGIN SOLUTION
    # Hint: torch.tril(torch.ones(T, T, dtype=torch.bool)) is True where j <= i; use masked_fill(~mask, -inf).
    T, d = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)                     # (..., T, T)
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v                            # (..., T, d)
    ### END SOLUTION


# %%
check("transformer.causal_attention", causal_attention)

# %% [markdown]
# ## Exercise 2: sharing key/value heads (GQA)
#
# In grouped-query attention, `G` key/value heads serve `H = G * n_rep` query heads: query head `h` uses kv head
# `h // n_rep`, so consecutive query heads share one kv head. `repeat_kv(x, n_rep) -> Tensor` turns `x` of shape
# `(B, G, T, d)` into `(B, G * n_rep, T, d)` in that order: `[k0, k0, k1, k1, ...]` for `n_rep = 2`.
#
# **Checked:** exactly (no tolerance) on `G = 2 -> 6` heads, MQA (`G = 1`), `n_rep = 1` and `T = 1`.

# %%
def repeat_kv(x, n_rep):
    ### BEGIN SOLUTION
    # Hint: x.repeat(1, n_rep, 1, 1) gives [k0, k1, k0, k1]: the wrong order. Look at torch.repeat_interleave.
    B, G, T, d = x.shape
    return x[:, :, None, :, :].expand(B, G, n_rep, T, d).reshape(B, G * n_rep, T, d)
    ### END SOLUTION


# %%
check("transformer.repeat_kv", repeat_kv)

# %% [markdown]
# ## Exercise 3: the size of a KV cache
#
# `kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, batch, bytes_per_elem) -> int`: the bytes needed to store
# the keys **and** the values of every layer for `seq_len` tokens of `batch` sequences,
#
# $$2 \cdot L \cdot G \cdot d \cdot T \cdot B \cdot \text{bytes per element}.$$
#
# **Checked:** exactly, as a Python `int`, on LLaMA-2-7B (32 layers, 32 kv heads of width 128, 4096 tokens, fp16:
# 2 bytes), LLaMA-2-70B (80 layers, 8 kv heads), an MQA model with batch 8, a small float32 model and random shapes.

# %%
def kv_cache_bytes(n_layers, n_kv_heads, head_dim, seq_len, batch, bytes_per_elem):
    ### BEGIN SOLUTION
    return 2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_elem
    ### END SOLUTION


# %%
check("transformer.kv_cache_bytes", kv_cache_bytes)

# %% [markdown]
# ## Exercise 4: appending to the KV cache
#
# `kv_cache_append(cache_k, cache_v, k_new, v_new) -> (k, v)`: the cache holds `(B, G, T_old, d)` keys and values
# of past tokens (`T_old` may be 0); append the new ones `(B, G, T_new, d)` **after** them along the time axis and
# return the two extended tensors `(B, G, T_old + T_new, d)`, keys first. Do not modify the inputs.
#
# **Checked:** exactly on one new token, an empty cache, several new tokens and batch 1.

# %%
def kv_cache_append(cache_k, cache_v, k_new, v_new):
    ### BEGIN SOLUTION
    return torch.cat([cache_k, k_new], dim=-2), torch.cat([cache_v, v_new], dim=-2)
    ### END SOLUTION


# %%
check("transformer.kv_cache_append", kv_cache_append)

# %% [markdown]
# ## Exercise 5: rotary position embedding (RoPE)
#
# `rope_rotate(x, positions, base) -> Tensor`, `x` of shape `(..., T, d)` with `d` even, `positions` of shape `(T,)`
# (integers, not necessarily in order). Rotate each **consecutive pair** $(x_{2i}, x_{2i+1})$ of the token at position
# $p$ by the angle $\phi = p\,\theta_i$ with $\theta_i = \text{base}^{-2i/d}$, $i = 0, \dots, d/2 - 1$:
#
# $$y_{2i} = x_{2i}\cos\phi - x_{2i+1}\sin\phi,\qquad y_{2i+1} = x_{2i}\sin\phi + x_{2i+1}\cos\phi .$$
#
# **Checked:** against the reference on 4-D and 2-D inputs, `d = 2`, large positions with base 500, float64 with
# positions out of order; then the property that makes RoPE useful: $\langle \mathrm{rope}(q, m),
# \mathrm{rope}(k, n)\rangle$ is the same for $(m, n) = (9, 4)$ and $(105, 100)$.

# %%
def rope_rotate(x, positions, base=10000.0):
    ### BEGIN SOLUTION
    # Hint: x[..., 0::2] and x[..., 1::2] are the two members of every pair; the angles form a (T, d/2) table.
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)          # (d/2,)
    angle = positions.to(torch.float64)[:, None] * theta                        # (T, d/2)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    a, b = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)      # (..., T, d/2, 2)
    return rotated.flatten(-2)                                                  # interleave back: (..., T, d)
    ### END SOLUTION


# %%
check("transformer.rope_rotate", rope_rotate)

# %% [markdown]
# ## Exercise 6: ALiBi biases
#
# `alibi_bias(n_heads, T) -> Tensor` of shape `(H, T, T)`: head $h$ adds $-m_h\,(i - j)$ to the score of query
# $i$ and key $j$. For $H$ a power of two the slopes are $m_h = 2^{-8h/H}$, $h = 1, \dots, H$ (for $H = 8$:
# $1/2, 1/4, \dots, 1/256$). For other $H$, follow Press et al.: take the $H_0$ slopes of the largest power of two
# $H_0 < H$, then append every other slope of the $2H_0$-head list, $2^{-8/(2H_0)\cdot 1}, 2^{-8/(2H_0) \cdot 3},
# \dots$, until there are $H$.
#
# **Checked:** on the entries with $j \le i$ only (the causal mask hides the others, so put whatever the formula
# gives there) for $H \in \{8, 4, 6, 1, 12, 2\}$ and $T = 1..7$; a flipped sign gets its own message.

# %%
def alibi_bias(n_heads, T):
    ### BEGIN SOLUTION
    def slopes_pow2(n):
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    h0 = 1
    while h0 * 2 <= n_heads:
        h0 *= 2
    slopes = slopes_pow2(h0) + slopes_pow2(2 * h0)[0::2][: n_heads - h0]
    i = torch.arange(T, dtype=torch.float32)
    distance = i[:, None] - i[None, :]                                          # (T, T): i - j
    return -torch.tensor(slopes)[:, None, None] * distance                      # (H, T, T)
    ### END SOLUTION


# %%
check("transformer.alibi_bias", alibi_bias)

# %% [markdown]
# ## Exercise 7: SwiGLU
#
# `swiglu(x, w_gate, w_up, w_down) -> Tensor`, `x` of shape `(..., D)`, weights in `nn.Linear`'s layout (out, in):
# `w_gate` and `w_up` of shape `(F, D)`, `w_down` of shape `(D, F)`:
#
# $$y = \big(\mathrm{SiLU}(x W_{gate}^\top) \odot x W_{up}^\top\big) W_{down}^\top,\qquad \mathrm{SiLU}(z) = z\,\sigma(z).$$
#
# **Checked:** against the reference on `(4, 6)` with `F = 16`, a 3-D input, `F = 1`, `(7, 12)` and float64.

# %%
def swiglu(x, w_gate, w_up, w_down):
    ### BEGIN SOLUTION
    gate = x @ w_gate.T                                                         # (..., F)
    return (gate * torch.sigmoid(gate) * (x @ w_up.T)) @ w_down.T               # (..., D)
    ### END SOLUTION


# %%
check("transformer.swiglu", swiglu)

# %% [markdown]
# ## Exercise 8: a Pre-Norm transformer block
#
# Complete `forward` of the block below (the `__init__` is given: keep it, the check loads the reference block's
# weights into yours by these names). For `x` of shape `(B, T, D)` at positions `0..T-1`:
#
# $$h = x + \mathrm{Attn}(\mathrm{RMSNorm}_1(x)),\qquad \text{out} = h + \mathrm{SwiGLU}(\mathrm{RMSNorm}_2(h)).$$
#
# `self.attn(z, positions)` is the course's grouped-query attention with RoPE (the pieces of exercises 1, 2 and 5);
# it returns a pair `(output, (k, v))`: keep the output. `positions` is `torch.arange(T)`.
#
# **Checked:** your module gets the reference's weights (with the norm gains moved away from 1) and must give the
# reference's output on inputs `(2, 5, D)`, `(1, 1, D)` and `(3, 7, D)`, for `(D, H)` = `(16, 4)`, `(24, 3)`, `(8, 1)`.

# %%
from manifold_course.nn.attention import GroupedQueryAttention
from manifold_course.nn.feedforward import SwiGLU
from manifold_course.nn.norms import RMSNorm


class PreNormBlock(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.norm1 = RMSNorm(d_model)
        self.attn = GroupedQueryAttention(d_model, n_heads, pos="rope")
        self.norm2 = RMSNorm(d_model)
        self.mlp = SwiGLU(d_model)

    def forward(self, x):
        ### BEGIN SOLUTION
        positions = torch.arange(x.shape[1])
        h = x + self.attn(self.norm1(x), positions)[0]                          # x + Attn(N(x))
        return h + self.mlp(self.norm2(h))                                      # h + MLP(N(h))
        ### END SOLUTION


# %%
check("transformer.PreNormBlock", PreNormBlock)

# %% [markdown]
# ## Done
#
# Run `manifold-course progress` to see your results. Next: chapter 2.5-2.7 (pre-training dynamics) trains this
# block stacked into the course's GPT (`manifold_course.nn.gpt`).
