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
# # Volume 6, Chapter 5 exercises: Serving and quantisation (sections 6.8-6.9)
#
# Nine pieces of an inference stack: five quantisers (absmax int8, its inverse, zero-point, per-channel, ternary
# BitNet b1.58), the straight-through fake-quantiser of quantisation-aware training, PagedAttention's block
# allocator, the gather of a sequence's keys and values through its block table, and the speed-up model of
# speculative decoding. Write the body where it says `# YOUR CODE HERE`, run the cell, then run the `check(...)` cell
# below it: it answers at once with a green "passed" or a red message that says what to fix. The checks draw fresh
# random cases each time, with edge cases (all-zero tensors, a single value, float64, odd block sizes, $a = 1$).
#
# The lecture is `chapters/v6_systems/05_serving_and_quantization.ipynb`. Please write your own code rather than
# importing the course's reference implementations (`manifold_course/systems/`): the point is to build them yourself.
#
# Conventions: inputs are torch tensors; float outputs keep the dtype of the input; **never modify an input in place**.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import torch

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: absmax int8 (warm-up)
#
# `quantize_absmax_int8(x) -> (q, s)`: the symmetric 8-bit code of a tensor of any shape,
#
# $$s = \frac{\max_i |x_i|}{127},\qquad q = \mathrm{round}(x / s) \in \{-127, \dots, 127\}.$$
#
# `q` is a `torch.int8` tensor of the shape of `x`; `s` is a 0-d tensor of the dtype of `x`. If `x` is all zeros, use
# `s = 1` (no 0 / 0).
#
# **Checked:** codes exactly and the scale to `rtol=1e-6` on several shapes, a single value, values ~1e4 and ~1e-6,
# all zeros, all-negative tensors (the maximum of $|x|$, not of $x$) and float64.

# %%
def quantize_absmax_int8(x):
    ### BEGIN SOLUTION
    # Hint: torch.where(amax > 0, amax / 127, torch.ones_like(amax)) guards the all-zero case; .to(torch.int8) truncates, so round first.
    amax = x.abs().max()                                              # 0-d
    s = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    q = torch.round(x / s).clamp(-127, 127).to(torch.int8)
    return q, s
    ### END SOLUTION


# %%
check("serving.quantize_absmax_int8", quantize_absmax_int8)

# %% [markdown]
# ## Exercise 2: dequantise
#
# `dequantize(q, scale, zero_point=0) -> x_hat` with $\hat x = s\,(q - z)$: `q` an integer tensor, `scale` a float
# tensor (0-d, or `(rows, 1)` for one scale per row: it broadcasts), `zero_point` an int or an integer tensor. The
# result has the dtype of `scale`.
#
# **Checked:** int8 and int32 codes, a zero point of 113 (subtract it, in floating point: int8 arithmetic overflows),
# per-row scales, a float64 scale.

# %%
def dequantize(q, scale, zero_point=0):
    ### BEGIN SOLUTION
    z = torch.as_tensor(zero_point).to(scale.dtype)
    return scale * (q.to(scale.dtype) - z)
    ### END SOLUTION


# %%
check("serving.dequantize", dequantize)

# %% [markdown]
# ## Exercise 3: zero-point (asymmetric) quantisation
#
# `quantize_zero_point(x, bits=8) -> (q, s, z)`. Codes run over $0 .. q_{max}$ with $q_{max} = 2^b - 1$. First widen
# the range to contain 0: $lo = \min(\min_i x_i, 0)$, $hi = \max(\max_i x_i, 0)$. Then
#
# $$s = \frac{hi - lo}{q_{max}},\qquad z = \mathrm{clamp}(\mathrm{round}(-lo / s), 0, q_{max}),\qquad
# q = \mathrm{clamp}(\mathrm{round}(x / s) + z,\ 0,\ q_{max}).$$
#
# Return `q` and `z` as `torch.int32` tensors (`z` 0-d) and `s` as a 0-d tensor of the dtype of `x` (`s = 1` if
# $hi = lo$).
#
# **Checked:** exactly against the reference on post-ReLU tensors, mixed signs, all-positive (the widening matters),
# all-negative, 2 and 4 bits, all zeros and float64.

# %%
def quantize_zero_point(x, bits=8):
    ### BEGIN SOLUTION
    qmax = 2 ** bits - 1
    lo = torch.clamp(x.min(), max=0.0)
    hi = torch.clamp(x.max(), min=0.0)
    s = (hi - lo) / qmax
    s = torch.where(s > 0, s, torch.ones_like(s))
    z = torch.clamp(torch.round(-lo / s), 0, qmax)
    q = torch.clamp(torch.round(x / s) + z, 0, qmax)
    return q.to(torch.int32), s, z.to(torch.int32)
    ### END SOLUTION


# %%
check("serving.quantize_zero_point", quantize_zero_point)

# %% [markdown]
# ## Exercise 4: per-channel quantisation
#
# `per_channel_quantize(w, bits=8) -> (q, s)` for a weight matrix `w` of shape `(out, in)`: symmetric absmax with
# **one scale per row** (per output channel), $n = 2^{b-1} - 1$,
#
# $$s_i = \frac{\max_j |w_{ij}|}{n},\qquad q_{ij} = \mathrm{clamp}(\mathrm{round}(w_{ij} / s_i), -n, n).$$
#
# `q` is `torch.int8` of shape `(out, in)`, `s` has shape `(out, 1)` and the dtype of `w`; an all-zero row gets `s = 1`.
#
# **Checked:** exactly, on rows whose scales differ by $e^6$, 3, 4 and 8 bits, a zero row, a single row, a single
# column and float64.

# %%
def per_channel_quantize(w, bits=8):
    ### BEGIN SOLUTION
    n = 2 ** (bits - 1) - 1
    amax = w.abs().amax(dim=1, keepdim=True)                          # (out, 1)
    s = torch.where(amax > 0, amax / n, torch.ones_like(amax))
    return torch.clamp(torch.round(w / s), -n, n).to(torch.int8), s
    ### END SOLUTION


# %%
check("serving.per_channel_quantize", per_channel_quantize)

# %% [markdown]
# ## Exercise 5: ternary weights (BitNet b1.58)
#
# `ternary_quantize(w, eps=1e-5) -> (q, gamma)`: the absmean quantiser of Ma et al. 2024 (arXiv:2402.17764),
#
# $$\gamma = \frac1N\sum_i |w_i|,\qquad q = \mathrm{clamp}\Big(\mathrm{round}\Big(\frac{w}{\gamma + \epsilon}\Big), -1, 1\Big) \in \{-1, 0, 1\}.$$
#
# `q` is `torch.int8` of the shape of `w`; `gamma` is a 0-d tensor of the dtype of `w` (without the $\epsilon$); the
# dequantised weight is $\gamma q$.
#
# **Checked:** exactly, on matrices, small weights, an outlier (clipped to 1), all zeros, one weight and float64.

# %%
def ternary_quantize(w, eps=1e-5):
    ### BEGIN SOLUTION
    gamma = w.abs().mean()
    q = torch.clamp(torch.round(w / (gamma + eps)), -1, 1).to(torch.int8)
    return q, gamma
    ### END SOLUTION


# %%
check("serving.ternary_quantize", ternary_quantize)

# %% [markdown]
# ## Exercise 6: fake quantisation with a straight-through gradient
#
# `ste_fake_quant(x, scale, bits=4) -> y` for quantisation-aware training. With $n = 2^{b-1} - 1$ and the float `scale`
# $s$:
#
# - **forward:** $y = s\,\mathrm{clamp}(\mathrm{round}(x / s), -n, n)$ (same shape and dtype as `x`);
# - **backward:** $\partial y / \partial x = 1$ where $|x| \le n s$ (pretend the rounding is the identity) and $0$
#   outside, where the output is the constant $\pm n s$.
#
# `torch.round` alone has zero gradient almost everywhere. The classic trick: $y = u + (q(u) - u).\mathrm{detach}()$,
# whose value is $q(u)$ and whose gradient is that of $u$.
#
# **Checked:** the forward values against the reference; then, with autograd, the gradient of $\sum_i g_i y_i$ equals
# $g$ inside the clipping range and 0 outside, for 2, 4 and 8 bits.

# %%
def ste_fake_quant(x, scale, bits=4):
    ### BEGIN SOLUTION
    # Hint: clamp first (its gradient is 1 inside, 0 outside), then add the detached rounding error.
    n = 2 ** (bits - 1) - 1
    xc = torch.clamp(x, -n * scale, n * scale)
    return xc + (torch.round(xc / scale) * scale - xc).detach()
    ### END SOLUTION


# %%
check("serving.ste_fake_quant", ste_fake_quant)

# %% [markdown]
# ## Exercise 7: PagedAttention's block allocator
#
# A class `BlockAllocator(num_blocks, block_size)` managing a pool of physical blocks `0 .. num_blocks - 1`, each
# holding `block_size` tokens, with one **block table** (a list of physical block ids, in logical order) per sequence:
#
# - `allocate(seq, n_tokens) -> list[int]`: a new sequence with `n_tokens` tokens (its prompt) gets
#   $\lceil n / b\rceil$ free blocks; returns its table. If too few blocks are free, raise `MemoryError` and change
#   nothing.
# - `append(seq) -> (block, slot)`: one more token. Its slot is `length % block_size`; when that is 0 the sequence
#   needs a new block (raise `MemoryError` if none is free), otherwise the token goes into its last block.
# - `free(seq)`: return all its blocks to the pool.
# - `block_table(seq) -> list[int]` and `num_free_blocks() -> int`.
#
# Any free block may be chosen. **Checked:** a scripted random sequence of 60 operations on pools of 12 x 4, 7 x 3,
# 5 x 1 and 20 x 16 slots, against a shadow model: the number of blocks per table, no block in two tables, the slot of
# every append, MemoryError exactly when the pool is too small (with nothing changed), free blocks counted after every
# operation, and every block table.

# %%
class BlockAllocator:
    def __init__(self, num_blocks, block_size):
        ### BEGIN SOLUTION
        self.block_size = block_size
        self.pool = list(range(num_blocks))                          # free physical blocks
        self.tables, self.lengths = {}, {}
        ### END SOLUTION

    def num_free_blocks(self):
        ### BEGIN SOLUTION
        return len(self.pool)
        ### END SOLUTION

    def block_table(self, seq):
        ### BEGIN SOLUTION
        return list(self.tables[seq])
        ### END SOLUTION

    def allocate(self, seq, n_tokens):
        ### BEGIN SOLUTION
        need = -(-n_tokens // self.block_size)                        # ceil(n / b) without floats
        if need > len(self.pool):
            raise MemoryError(f"need {need} blocks, {len(self.pool)} free")
        self.tables[seq] = [self.pool.pop() for _ in range(need)]
        self.lengths[seq] = n_tokens
        return list(self.tables[seq])
        ### END SOLUTION

    def append(self, seq):
        ### BEGIN SOLUTION
        slot = self.lengths[seq] % self.block_size
        if slot == 0:                                                 # last block full (or no block yet)
            if not self.pool:
                raise MemoryError("no free block")
            self.tables[seq].append(self.pool.pop())
        self.lengths[seq] += 1
        return self.tables[seq][-1], slot
        ### END SOLUTION

    def free(self, seq):
        ### BEGIN SOLUTION
        self.pool.extend(self.tables.pop(seq))
        del self.lengths[seq]
        ### END SOLUTION


# %%
check("serving.BlockAllocator", BlockAllocator)

# %% [markdown]
# ## Exercise 8: gather K/V through a block table
#
# `gather_kv(pool, block_table, seq_len) -> kv`: `pool` has shape `(num_blocks, block_size, *feat)` (for a KV cache
# `feat = (H, d)`), `block_table` is a list of physical block ids in the sequence's logical order. Return the
# sequence's first `seq_len` entries, shape `(seq_len, *feat)`, in order: token $t$ is `pool[table[t // b], t % b]`.
#
# **Checked:** exactly, on a half-full last block, full blocks, one token, block size 1, a pool without feature axes
# and float64.

# %%
def gather_kv(pool, block_table, seq_len):
    ### BEGIN SOLUTION
    idx = torch.tensor(list(block_table), dtype=torch.long)
    blocks = pool[idx]                                                # (n_blocks, b, *feat), logical order
    return blocks.reshape(-1, *pool.shape[2:])[:seq_len]
    ### END SOLUTION


# %%
check("serving.gather_kv", gather_kv)

# %% [markdown]
# ## Exercise 9: the speed-up of speculative decoding
#
# `speculative_speedup(a, k, c) -> float`: a draft model proposes `k` tokens, each accepted with probability `a`
# (until the first rejection); the target checks them in one call and always adds one token of its own; a draft call
# costs `c` target calls. The expected wall-clock speed-up over plain decoding (Leviathan et al. 2023,
# arXiv:2211.17192) is
#
# $$\frac{1 - a^{k+1}}{(1 - a)(k c + 1)},$$
#
# with the limit $(k + 1) / (k c + 1)$ at $a = 1$. Return a Python float.
#
# **Checked:** to `rtol=1e-9` at $a = 0.8, k = 4, c = 0.05$, at $a = 0$, at $a = 1$ (no 0 / 0), with a free draft, and
# at random points.

# %%
def speculative_speedup(a, k, c):
    ### BEGIN SOLUTION
    tokens = float(k + 1) if a >= 1 else (1 - a ** (k + 1)) / (1 - a)   # sum_{i=0}^{k} a^i
    return float(tokens / (k * c + 1))
    ### END SOLUTION


# %%
check("serving.speculative_speedup", speculative_speedup)
