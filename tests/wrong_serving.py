"""Plausible wrong answers to the exercises of v6_systems/05_serving_and_quantization; each check must reject them."""

from __future__ import annotations

import math

import torch

from manifold_course.systems.paged_kv import BlockAllocator as _Good

# ---------------------------------------------------------------- quantize_absmax_int8


def absmax_128(x):
    # divides by 128: the code range [-128, 127] is asymmetric, +max overflows to -128 after the cast
    amax = x.abs().max()
    s = torch.where(amax > 0, amax / 128, torch.ones_like(amax))
    return torch.round(x / s).to(torch.int8), s


def absmax_truncate(x):
    # .to(int8) truncates towards zero instead of rounding to nearest
    amax = x.abs().max()
    s = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    return (x / s).to(torch.int8), s


def absmax_max_not_abs(x):
    # max(x) instead of max(|x|): negative values overflow
    amax = x.max()
    s = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    return torch.clamp(torch.round(x / s), -127, 127).to(torch.int8), s


def absmax_zero_nan(x):
    # no guard for the all-zero tensor: 0 / 0
    s = x.abs().max() / 127
    return torch.round(x / s).to(torch.int8), s


# ---------------------------------------------------------------- dequantize


def dequant_plus_zero(q, scale, zero_point=0):
    # adds the zero point instead of subtracting it
    return scale * (q.to(scale.dtype) + zero_point)


def dequant_integer_math(q, scale, zero_point=0):
    # subtracts in int8: the difference overflows / wraps, and the result dtype follows q
    return (q - zero_point) * scale.to(torch.float32)


# ---------------------------------------------------------------- quantize_zero_point


def zp_no_zero_in_range(x, bits=8):
    # uses [min, max] without widening it to include 0
    qmax = 2 ** bits - 1
    lo, hi = x.min(), x.max()
    s = (hi - lo) / qmax
    s = torch.where(s > 0, s, torch.ones_like(s))
    z = torch.clamp(torch.round(-lo / s), 0, qmax)
    return torch.clamp(torch.round(x / s) + z, 0, qmax).to(torch.int32), s, z.to(torch.int32)


def zp_wrong_levels(x, bits=8):
    # divides the range by 2^b instead of 2^b - 1 intervals
    qmax = 2 ** bits - 1
    lo, hi = torch.clamp(x.min(), max=0.0), torch.clamp(x.max(), min=0.0)
    s = (hi - lo) / 2 ** bits
    s = torch.where(s > 0, s, torch.ones_like(s))
    z = torch.clamp(torch.round(-lo / s), 0, qmax)
    return torch.clamp(torch.round(x / s) + z, 0, qmax).to(torch.int32), s, z.to(torch.int32)


def zp_no_clamp(x, bits=8):
    # forgets to clamp: the largest value's code can exceed 2^b - 1 after rounding the zero point
    qmax = 2 ** bits - 1
    lo, hi = torch.clamp(x.min(), max=0.0), torch.clamp(x.max(), min=0.0)
    s = (hi - lo) / qmax
    s = torch.where(s > 0, s, torch.ones_like(s))
    z = torch.round(lo / s)                                           # sign error too
    return (torch.round(x / s) + z).to(torch.int32), s, z.to(torch.int32)


# ---------------------------------------------------------------- per_channel_quantize


def pc_per_column(w, bits=8):
    # one scale per column (input channel) instead of per row
    n = 2 ** (bits - 1) - 1
    amax = w.abs().amax(dim=0, keepdim=True)
    s = torch.where(amax > 0, amax / n, torch.ones_like(amax))
    return torch.clamp(torch.round(w / s), -n, n).to(torch.int8), s


def pc_per_tensor(w, bits=8):
    # a single scale broadcast to (out, 1): per-tensor in disguise
    n = 2 ** (bits - 1) - 1
    amax = w.abs().max()
    s = torch.where(amax > 0, amax / n, torch.ones_like(amax)).expand(w.shape[0], 1).clone()
    return torch.clamp(torch.round(w / s), -n, n).to(torch.int8), s


def pc_levels_2b(w, bits=8):
    # n = 2^b - 1 (unsigned count) instead of 2^(b-1) - 1
    n = 2 ** bits - 1
    amax = w.abs().amax(dim=1, keepdim=True)
    s = torch.where(amax > 0, amax / n, torch.ones_like(amax))
    return torch.clamp(torch.round(w / s), -n, n).to(torch.int8), s


# ---------------------------------------------------------------- ternary_quantize


def ternary_absmax(w, eps=1e-5):
    # absmax scaling instead of absmean: almost everything rounds to 0
    gamma = w.abs().max()
    return torch.clamp(torch.round(w / (gamma + eps)), -1, 1).to(torch.int8), gamma


def ternary_sign(w, eps=1e-5):
    # sign() gives binary {-1, 1} (BitNet 1-bit), never 0
    gamma = w.abs().mean()
    return torch.sign(w).to(torch.int8), gamma


def ternary_no_clip(w, eps=1e-5):
    # forgets the clip: large weights get codes 2, 3, ...
    gamma = w.abs().mean()
    return torch.round(w / (gamma + eps)).to(torch.int8), gamma


# ---------------------------------------------------------------- ste_fake_quant


def ste_round_only(x, scale, bits=4):
    # plain rounding: right values, zero gradient everywhere
    n = 2 ** (bits - 1) - 1
    return torch.clamp(torch.round(x / scale), -n, n) * scale


def ste_no_clip_gradient(x, scale, bits=4):
    # gradient 1 everywhere, also outside the clipping range
    n = 2 ** (bits - 1) - 1
    q = torch.clamp(torch.round(x / scale), -n, n) * scale
    return x + (q - x).detach()


def ste_no_clamp(x, scale, bits=4):
    # forgets to clip the values at +-n s
    return x + (torch.round(x / scale) * scale - x).detach()


def ste_detached(x, scale, bits=4):
    # the whole result detached: no gradient at all
    n = 2 ** (bits - 1) - 1
    return (torch.clamp(torch.round(x / scale), -n, n) * scale).detach()


# ---------------------------------------------------------------- BlockAllocator


class AllocFloorBlocks(_Good):
    # floor(n / b) blocks instead of ceil: the partial last block is forgotten
    def allocate(self, seq, n_tokens):
        need = n_tokens // self.block_size
        if need > len(self.free_blocks):
            raise MemoryError
        self.tables[seq] = [self._take() for _ in range(need)]
        self.lengths[seq] = n_tokens
        return list(self.tables[seq])


class AllocLeakOnFree(_Good):
    # free forgets to return the blocks to the pool
    def free(self, seq):
        del self.tables[seq], self.lengths[seq]


class AllocNewBlockEveryAppend(_Good):
    # opens a new block for every appended token
    def append(self, seq):
        if not self.free_blocks:
            raise MemoryError
        self.tables[seq].append(self._take())
        self.lengths[seq] += 1
        return self.tables[seq][-1], 0


class AllocPartialOnFailure(_Good):
    # takes blocks one by one and runs out half-way: a failed allocation leaks what it took
    def allocate(self, seq, n_tokens):
        table = []
        for _ in range(math.ceil(n_tokens / self.block_size)):
            if not self.free_blocks:
                raise MemoryError
            table.append(self._take())
        self.tables[seq], self.lengths[seq] = table, n_tokens
        return list(table)


class AllocOffByOneSlot(_Good):
    # the new token's slot is computed after incrementing the length
    def append(self, seq):
        block, slot = super().append(seq)
        return block, self.lengths[seq] % self.block_size


# ---------------------------------------------------------------- gather_kv


def gather_in_physical_order(pool, block_table, seq_len):
    # sorts the table: blocks in physical order, not in the sequence's logical order
    idx = torch.as_tensor(sorted(block_table), dtype=torch.long)
    return pool[idx].reshape(-1, *pool.shape[2:])[:seq_len]


def gather_no_trim(pool, block_table, seq_len):
    # returns the whole last block, unused slots included
    idx = torch.as_tensor(list(block_table), dtype=torch.long)
    return pool[idx].reshape(-1, *pool.shape[2:])


def gather_contiguous(pool, block_table, seq_len):
    # ignores the table: assumes the sequence starts at block 0
    return pool.reshape(-1, *pool.shape[2:])[:seq_len]


# ---------------------------------------------------------------- speculative_speedup


def spec_k_not_k_plus_1(a, k, c):
    # (1 - a^k) / (1 - a): forgets the token the target always adds
    return (1 - a ** k) / (1 - a) / (k * c + 1) if a < 1 else k / (k * c + 1)


def spec_no_draft_cost(a, k, c):
    # ignores the draft cost c
    return (1 - a ** (k + 1)) / (1 - a) if a < 1 else float(k + 1)


def spec_no_limit(a, k, c):
    # no special case at a = 1: 0 / 0
    return (1 - a ** (k + 1)) / ((1 - a) * (k * c + 1)) if a != 1 else float("nan")


def spec_tensor(a, k, c):
    # returns a tensor, not a float
    a = torch.tensor(a, dtype=torch.float64)
    return torch.where(a < 1, (1 - a ** (k + 1)) / (1 - a), torch.tensor(k + 1.0, dtype=torch.float64)) / (k * c + 1)


WRONG = {
    "serving.quantize_absmax_int8": [absmax_128, absmax_truncate, absmax_max_not_abs, absmax_zero_nan],
    "serving.dequantize": [dequant_plus_zero, dequant_integer_math],
    "serving.quantize_zero_point": [zp_no_zero_in_range, zp_wrong_levels, zp_no_clamp],
    "serving.per_channel_quantize": [pc_per_column, pc_per_tensor, pc_levels_2b],
    "serving.ternary_quantize": [ternary_absmax, ternary_sign, ternary_no_clip],
    "serving.ste_fake_quant": [ste_round_only, ste_no_clip_gradient, ste_no_clamp, ste_detached],
    "serving.BlockAllocator": [AllocFloorBlocks, AllocLeakOnFree, AllocNewBlockEveryAppend, AllocPartialOnFailure,
                               AllocOffByOneSlot],
    "serving.gather_kv": [gather_in_physical_order, gather_no_trim, gather_contiguous],
    "serving.speculative_speedup": [spec_k_not_k_plus_1, spec_no_draft_cost, spec_no_limit, spec_tensor],
}
