"""Checks for chapter v6_systems/05_serving_and_quantization (Volume 6, sections 6.8-6.9).

Quantisers are compared with the reference codes exactly (integer dtype included) and their scales to float
tolerance; the straight-through estimator is also checked through autograd; the block allocator is driven by a
scripted random sequence of operations while a shadow model checks its invariants.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.grading.compare import float_problem as _float_problem
from manifold_course.grading.probes import gradient_judge, input_gradients, transcript, transcript_judge
from manifold_course.systems import batching, paged_kv, quantize

CHAPTER = "v6_systems/05_serving_and_quantization"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F32, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale + shift, dtype=dtype)


# ---------------------------------------------------------------- 6.9 uniform quantisation


def _absmax_cases(rng):
    yield Case((_t(rng, 5, 7),), label="x (5, 7)")
    yield Case((_t(rng, 1),), label="a single value: it maps to +-127")
    yield Case((_t(rng, 3, 4, 5, scale=1e4),), label="x (3, 4, 5) with values ~1e4")
    yield Case((_t(rng, 37, scale=1e-6),), label="tiny values ~1e-6", rtol=1e-5, atol=1e-12)
    yield Case((torch.zeros(4, 3),), label="all zeros: the scale is 1 (no 0 / 0)")
    yield Case((torch.relu(_t(rng, 6, 9)),), label="non-negative x: the scale still uses max |x|")
    yield Case((-torch.as_tensor(rng.random(10), dtype=F32) - 1.0,), label="all negative: max |x| comes from the most negative value")
    yield Case((_t(rng, 8, 13, dtype=F64),), label="float64: the scale keeps the input dtype", rtol=1e-12, atol=0.0)


def _dequant_cases(rng):
    q = torch.as_tensor(rng.integers(-127, 128, (4, 6)), dtype=torch.int8)
    yield Case((q, torch.tensor(0.031)), label="int8 codes, per-tensor scale, zero point 0")
    q = torch.as_tensor(rng.integers(0, 256, (3, 5)), dtype=torch.int32)
    yield Case((q, torch.tensor(0.02), torch.tensor(113, dtype=torch.int32)), label="int32 codes with zero point 113")
    q = torch.as_tensor(rng.integers(-7, 8, (5, 8)), dtype=torch.int8)
    yield Case((q, torch.as_tensor(rng.uniform(0.01, 2.0, (5, 1)), dtype=F32)), label="per-row scales (5, 1)")
    q = torch.as_tensor(rng.integers(0, 16, (2, 3)), dtype=torch.int32)
    yield Case((q, torch.tensor(0.5, dtype=F64), 3), label="float64 scale, Python int zero point", rtol=1e-12, atol=0.0)
    yield Case((torch.tensor([5], dtype=torch.int8), torch.tensor(1e-3)), label="a single code")


def _zp_cases(rng):
    yield Case((torch.relu(_t(rng, 6, 11)), 8), label="post-ReLU x (min 0), 8 bits")
    yield Case((_t(rng, 40, scale=2.0, shift=0.5), 8), label="mixed signs, 8 bits")
    yield Case((torch.as_tensor(rng.uniform(3.0, 5.0, (4, 4)), dtype=F32), 8),
               label="all positive (min 3): the range is widened to include 0")
    yield Case((-torch.as_tensor(rng.uniform(1.0, 2.0, 9), dtype=F32), 4), label="all negative, 4 bits")
    yield Case((_t(rng, 3, 7), 2), label="2 bits: codes 0..3")
    yield Case((torch.zeros(5), 8), label="all zeros: scale 1, zero point 0")
    yield Case((_t(rng, 50, dtype=F64, scale=3.0), 8), label="float64", rtol=1e-12, atol=0.0)


def _pc_cases(rng):
    w = _t(rng, 6, 10) * torch.as_tensor(np.exp(rng.uniform(-3, 3, (6, 1))), dtype=F32)
    yield Case((w, 8), label="rows with scales from e^-3 to e^3, 8 bits")
    yield Case((_t(rng, 5, 9), 4), label="4 bits: codes -7..7")
    w = _t(rng, 4, 7)
    w[2] = 0.0
    yield Case((w, 8), label="an all-zero row: its scale is 1")
    yield Case((_t(rng, 1, 13), 8), label="one row (1, 13)")
    yield Case((_t(rng, 11, 1), 3), label="one column (11, 1), 3 bits: every value is its row's max")
    yield Case((_t(rng, 7, 33, dtype=F64), 8), label="float64", rtol=1e-12, atol=0.0)


def _ternary_cases(rng):
    yield Case((_t(rng, 8, 16),), label="w (8, 16)")
    yield Case((_t(rng, 3, 5, 7, scale=1e-3),), label="small weights: gamma scales with them")
    w = _t(rng, 4, 9)
    w[0, 0] = 50.0
    yield Case((w,), label="an outlier: clipped to +1")
    yield Case((torch.zeros(3, 3),), label="all zeros: codes 0, gamma 0 (eps avoids 0 / 0)")
    yield Case((_t(rng, 1),), label="a single weight")
    yield Case((_t(rng, 6, 21, dtype=F64),), label="float64", rtol=1e-12, atol=0.0)


def _ste_cases(rng):
    yield Case((_t(rng, 7, 5), 0.25, 4), label="x (7, 5), s = 0.25, 4 bits: some values clipped at +-1.75")
    yield Case((_t(rng, 30), 0.1, 8), label="8 bits: nothing clipped")
    yield Case((_t(rng, 4, 4, scale=3.0), 1.0, 2), label="2 bits: levels -1, 0, 1")
    yield Case((torch.tensor([0.0]), 0.5, 4), label="x = 0")
    yield Case((_t(rng, 3, 6, dtype=F64, scale=2.0), 0.3, 3), label="float64, 3 bits", rtol=1e-12, atol=1e-12)


def _alloc_cases(rng):
    for nb, bs, label in ((12, 4, "12 blocks of 4 slots"), (7, 3, "7 blocks of 3 slots (odd sizes)"),
                          (5, 1, "blocks of one slot"), (20, 16, "20 blocks of 16 slots")):
        yield Case((nb, bs, int(rng.integers(2**31))), label=label)     # the last: the seed of the operation script


def _run_allocator_script(alloc, num_blocks: int, block_size: int, script_seed: int) -> str | None:
    """Drive an allocator through 60 random operations (allocate, append, free), checking each answer."""
    rng = np.random.default_rng(script_seed)
    tables: dict[int, list[int]] = {}
    lengths: dict[int, int] = {}
    next_id = 0

    def expect_free() -> str | None:
        used = sum(len(t) for t in tables.values())
        got = alloc.num_free_blocks()
        if got != num_blocks - used:
            return f"num_free_blocks() = {got}, but {used} of {num_blocks} blocks are in use, so {num_blocks - used} are free"
        return None

    if (msg := expect_free()):
        return "new allocator: " + msg
    for step in range(60):
        op = rng.choice(["allocate", "append", "append", "free"]) if tables else "allocate"
        if step == 0:
            op = "allocate0"
        if op in ("allocate", "allocate0"):
            n = 0 if op == "allocate0" else int(rng.integers(1, 3 * block_size + 2))
            need = math.ceil(n / block_size)
            free_before = num_blocks - sum(len(t) for t in tables.values())
            seq = next_id
            if need > free_before:
                try:
                    alloc.allocate(seq, n)
                except MemoryError:
                    if (msg := expect_free()):
                        return f"after a refused allocate({seq}, {n}): " + msg + " (a failed allocation must change nothing)"
                    continue
                return f"allocate({seq}, {n}) needs {need} blocks but only {free_before} are free: raise MemoryError"
            next_id += 1
            table = list(alloc.allocate(seq, n))
            if len(table) != need:
                return f"allocate({seq}, {n}) with block_size {block_size} returned {len(table)} blocks, expected ceil({n} / {block_size}) = {need}"
            taken = {b for t in tables.values() for b in t}
            if any(not isinstance(b, (int, np.integer)) or not 0 <= b < num_blocks for b in table):
                return f"allocate returned {table}: block ids must be ints in 0..{num_blocks - 1}"
            if len(set(table)) != len(table) or taken & set(table):
                return f"allocate({seq}, {n}) returned {table}, which reuses a block already in use"
            tables[seq], lengths[seq] = table, n
        elif op == "append":
            seq = int(rng.choice(list(tables)))
            t = lengths[seq]
            used = sum(len(x) for x in tables.values())
            if t % block_size == 0 and used == num_blocks:
                try:
                    alloc.append(seq)
                except MemoryError:
                    continue
                return f"append({seq}) needs a new block but the pool is full: raise MemoryError"
            out = alloc.append(seq)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return f"append({seq}) should return (physical_block, slot), got {out!r}"
            block, slot = int(out[0]), int(out[1])
            if slot != t % block_size:
                return f"append({seq}) on a sequence of {t} tokens: the slot should be {t} % {block_size} = {t % block_size}, got {slot}"
            if t % block_size == 0:
                taken = {b for x in tables.values() for b in x}
                if block in taken or not 0 <= block < num_blocks:
                    return f"append({seq}) opened block {block}, which is already in use (or out of range)"
                tables[seq].append(block)
            elif block != tables[seq][-1]:
                return (f"append({seq}) on a sequence of {t} tokens should write into its last block "
                        f"{tables[seq][-1]} (it still has room), got block {block}")
            lengths[seq] = t + 1
        else:
            seq = int(rng.choice(list(tables)))
            alloc.free(seq)
            del tables[seq], lengths[seq]
        if (msg := expect_free()):
            return f"after {op}: " + msg
        for seq, table in tables.items():
            got = [int(b) for b in alloc.block_table(seq)]
            if got != table:
                return f"block_table({seq}) = {got}, expected {table}"
    return None


_ALLOC_METHODS = ("allocate", "append", "free", "block_table", "num_free_blocks")


def _gather_cases(rng):
    def pool(nb, bs, *feat, dtype=F32):
        return _t(rng, nb, bs, *feat, dtype=dtype)
    yield Case((pool(8, 4, 2, 3), [5, 0, 7], 10), label="pool (8, 4, 2, 3), table [5, 0, 7], 10 tokens (last block half full)")
    yield Case((pool(6, 5, 3), [2, 4], 10), label="seq_len = 2 full blocks")
    yield Case((pool(5, 3, 2), [4], 1), label="one token")
    yield Case((pool(9, 1, 4), [int(b) for b in rng.permutation(9)[:7]], 7), label="block_size 1")
    yield Case((pool(7, 6), [3, 1, 6], 13), label="pool without feature axes: output (13,)")
    yield Case((pool(10, 7, 2, 5, dtype=F64), [9, 2, 0], 15), label="float64, block_size 7")


def _spec_cases(rng):
    yield Case((0.8, 4, 0.05), label="a = 0.8, k = 4, c = 0.05")
    yield Case((0.0, 3, 0.1), label="a = 0: every draft rejected, 1 / (k c + 1)")
    yield Case((1.0, 5, 0.02), label="a = 1: the limit (k + 1) / (k c + 1), no 0 / 0")
    yield Case((0.6, 1, 0.0), label="k = 1, free draft (c = 0): 1 + a")
    for _ in range(3):
        a, k, c = float(rng.uniform(0.3, 0.95)), int(rng.integers(2, 12)), float(rng.uniform(0.01, 0.5))
        yield Case((a, k, c), label=f"a = {a:.3f}, k = {k}, c = {c:.3f}")


def _judge_float(got, expected, case) -> str | None:
    return _float_problem(got) or compare(got, expected, 1e-9, 1e-12)


EXERCISES = [
    Exercise("serving.quantize_absmax_int8", "Absmax int8 quantisation", cases=_absmax_cases,
             reference=quantize.quantize_absmax_int8, rtol=1e-6, atol=1e-12),
    Exercise("serving.dequantize", "Dequantisation s (q - z)", cases=_dequant_cases, reference=quantize.dequantize,
             rtol=1e-6, atol=1e-9),
    Exercise("serving.quantize_zero_point", "Zero-point (asymmetric) quantisation", cases=_zp_cases,
             reference=quantize.quantize_zero_point, rtol=1e-6, atol=1e-12),
    Exercise("serving.per_channel_quantize", "Per-channel (per-row) absmax quantisation", cases=_pc_cases,
             reference=quantize.per_channel_quantize, rtol=1e-6, atol=1e-12),
    Exercise("serving.ternary_quantize", "Ternary BitNet b1.58 weights", cases=_ternary_cases,
             reference=quantize.ternary_quantize, rtol=1e-6, atol=1e-12),
    Exercise("serving.ste_fake_quant", "Fake quantisation with a straight-through gradient", cases=_ste_cases,
             reference=quantize.ste_fake_quant, adapter=input_gradients({0: "x"}),
             judge=gradient_judge(1e-6, 1e-7, hint="inside the clipping range [-n s, n s] the gradient passes straight "
                                  "through (d output / d x = 1), outside it is 0: use x + (q - x).detach()",
                                  not_differentiable="the output is not connected to x in the autograd graph "
                                  "(torch.round has zero gradient, and .detach() on the whole result cuts the graph): "
                                  "use x + (q - x).detach()")),
    Exercise("serving.BlockAllocator", "PagedAttention's block allocator", cases=_alloc_cases,
             known_good=paged_kv.BlockAllocator,
             adapter=transcript(_run_allocator_script, _ALLOC_METHODS, 2, expected=(MemoryError,)),
             judge=transcript_judge(_run_allocator_script, _ALLOC_METHODS, "BlockAllocator(num_blocks, block_size)",
                                    expected=(MemoryError,))),
    Exercise("serving.gather_kv", "Gather a sequence's K/V through its block table", cases=_gather_cases,
             reference=paged_kv.gather_kv, rtol=0.0, atol=0.0),
    Exercise("serving.speculative_speedup", "Speculative decoding speed-up", cases=_spec_cases,
             reference=batching.speculative_speedup, judge=_judge_float),
]
