"""Plausible wrong answers to the exercises of v6_systems/01_gpu_architecture; each check must reject them."""

from __future__ import annotations

import math

import numpy as np
import torch

# ---------------------------------------------------------------- warp_cost


def warp_cost_max_not_sum(branch_mask, cost_if, cost_else, warp=32):
    # a divergent warp pays the longer path only (as if both paths ran in parallel)
    m = np.asarray(branch_mask, dtype=bool)
    total = 0
    for s in range(0, m.size, warp):
        w = m[s:s + warp]
        total += max(cost_if * w.any(), cost_else * (~w).any())
    return int(total)


def warp_cost_per_thread(branch_mask, cost_if, cost_else, warp=32):
    # counts every thread's own path: the CPU view, not the SIMT one
    m = np.asarray(branch_mask, dtype=bool)
    return int(m.sum() * cost_if + (~m).sum() * cost_else)


def warp_cost_drops_partial_warp(branch_mask, cost_if, cost_else, warp=32):
    # n // warp full warps only: the ragged last warp is forgotten
    m = np.asarray(branch_mask, dtype=bool)
    total = 0
    for s in range(0, (m.size // warp) * warp, warp):
        w = m[s:s + warp]
        total += cost_if * w.any() + cost_else * (~w).any()
    return int(total)


def warp_cost_one_warp(branch_mask, cost_if, cost_else, warp=32):
    # treats all threads as a single warp
    m = np.asarray(branch_mask, dtype=bool)
    return int(cost_if * m.any() + cost_else * (~m).any())


# ---------------------------------------------------------------- global_ids


def global_ids_block_major(grid, block):
    # id = blockIdx * threads_per_block + threadIdx: right in 1-D, wrong for the 2-D row-major layout
    gx, gy = (grid, 1) if isinstance(grid, int) else grid
    bx, by = (block, 1) if isinstance(block, int) else block
    n_b, n_t = gx * gy, bx * by
    return (np.arange(n_b)[:, None] * n_t + np.arange(n_t)[None, :]).astype(np.int64)


def global_ids_swapped(grid, block):
    # threadIdx * gridDim + blockIdx: a strided order (and wrong)
    gx, gy = (grid, 1) if isinstance(grid, int) else grid
    bx, by = (block, 1) if isinstance(block, int) else block
    n_b, n_t = gx * gy, bx * by
    return (np.arange(n_t)[None, :] * n_b + np.arange(n_b)[:, None]).astype(np.int64)


def global_ids_width_from_block(grid, block):
    # row * blockDim.x + col: forgets that a row of the global array spans gridDim.x blocks
    gx, gy = (grid, 1) if isinstance(grid, int) else grid
    bx, by = (block, 1) if isinstance(block, int) else block
    out = np.zeros((gx * gy, bx * by), dtype=np.int64)
    for b in range(gx * gy):
        for t in range(bx * by):
            col = (b % gx) * bx + t % bx
            row = (b // gx) * by + t // bx
            out[b, t] = row * bx + col
    return out


# ---------------------------------------------------------------- occupancy


def occupancy_ignores_registers(threads_per_block, regs_per_thread, smem_per_block, limits=None):
    from manifold_course.systems.simt import A100_SM

    L = limits or A100_SM
    w = -(-threads_per_block // 32)
    blocks = min(L.max_blocks, L.max_threads // (w * 32),
                 L.shared_bytes // smem_per_block if smem_per_block else 10**9)
    return blocks * w / (L.max_threads // 32)


def occupancy_no_warp_rounding(threads_per_block, regs_per_thread, smem_per_block, limits=None):
    # counts registers per thread, not per 32-lane warp
    from manifold_course.systems.simt import A100_SM

    L = limits or A100_SM
    if threads_per_block > L.max_threads_per_block:
        return 0.0
    blocks = min(L.max_blocks, L.max_threads // threads_per_block,
                 L.registers // (threads_per_block * regs_per_thread),
                 L.shared_bytes // smem_per_block if smem_per_block else 10**9)
    return blocks * threads_per_block / L.max_threads


def occupancy_ignores_block_limit(threads_per_block, regs_per_thread, smem_per_block, limits=None):
    from manifold_course.systems.simt import A100_SM

    L = limits or A100_SM
    if threads_per_block > L.max_threads_per_block:
        return 0.0
    w = -(-threads_per_block // 32)
    blocks = min(L.max_threads // (w * 32), L.registers // (w * 32 * regs_per_thread),
                 L.shared_bytes // smem_per_block if smem_per_block else 10**9)
    return blocks * w / (L.max_threads // 32)


# ---------------------------------------------------------------- arithmetic_intensity


def ai_forgets_output(op, shape, dtype_bytes):
    # counts the reads only
    if op == "vector_add":
        (n,) = shape
        return n / (2 * n * dtype_bytes)
    if op == "matmul":
        M, N, K = shape
        return 2 * M * N * K / ((M * K + K * N) * dtype_bytes)
    if op == "softmax":
        return 5 / dtype_bytes
    R, D = shape
    return 7 * R * D / ((R * D + 2 * D) * dtype_bytes)


def ai_matmul_mnk_flops(op, shape, dtype_bytes):
    # a multiply-add counted as one FLOP
    from manifold_course.systems.roofline import arithmetic_intensity

    if op == "matmul":
        M, N, K = shape
        return M * N * K / ((M * K + K * N + M * N) * dtype_bytes)
    return arithmetic_intensity(op, shape, dtype_bytes)


def ai_ignores_dtype(op, shape, dtype_bytes):
    # FLOPs per element instead of per byte
    from manifold_course.systems.roofline import arithmetic_intensity

    return arithmetic_intensity(op, shape, 1)


# ---------------------------------------------------------------- roofline


def roofline_max(I, peak_flops, bandwidth):
    return max(peak_flops, I * bandwidth)


def roofline_no_cap(I, peak_flops, bandwidth):
    return I * bandwidth


def roofline_divides(I, peak_flops, bandwidth):
    return min(peak_flops, bandwidth / I if I else peak_flops)


def roofline_tensor(I, peak_flops, bandwidth):
    return torch.minimum(torch.tensor(peak_flops), torch.tensor(I * bandwidth))


# ---------------------------------------------------------------- tiled_matmul_traffic


def traffic_floor_division(M, N, K, tile, dtype_bytes):
    return dtype_bytes * (M * K * max(1, N // tile) + K * N * max(1, M // tile) + M * N)


def traffic_forgets_c(M, N, K, tile, dtype_bytes):
    return dtype_bytes * (M * K * math.ceil(N / tile) + K * N * math.ceil(M / tile))


def traffic_float_approx(M, N, K, tile, dtype_bytes):
    # 2MNK / tile: the asymptote, not the count
    return int(dtype_bytes * (2 * M * N * K / tile + M * N))


def traffic_forgets_bytes(M, N, K, tile, dtype_bytes):
    return M * K * math.ceil(N / tile) + K * N * math.ceil(M / tile) + M * N


# ---------------------------------------------------------------- mixed_precision_dot


def dot_torch_sum(a, b, in_dtype, acc_dtype):
    # torch's sum: on CPU half precision is accumulated in fp32 internally, so fp16 accumulation is never seen
    return float((a.to(in_dtype).to(acc_dtype) * b.to(in_dtype).to(acc_dtype)).sum())


def dot_no_input_rounding(a, b, in_dtype, acc_dtype):
    # accumulates correctly but forgets to round the inputs to in_dtype
    import numpy as _np

    acc = {torch.float16: _np.float16, torch.float32: _np.float32, torch.float64: _np.float64}[acc_dtype]
    p = (a.double().numpy() * b.double().numpy()).astype(acc)
    return float(_np.add.accumulate(p, dtype=acc)[-1])


def dot_float64(a, b, in_dtype, acc_dtype):
    # exact float64 dot of the rounded inputs: ignores the accumulation dtype
    return float(a.to(in_dtype).double() @ b.to(in_dtype).double())


def dot_returns_tensor(a, b, in_dtype, acc_dtype):
    return a.to(in_dtype).to(acc_dtype) @ b.to(in_dtype).to(acc_dtype)


# ---------------------------------------------------------------- DynamicLossScaler


class ScalerNoReset:
    # forgets to reset the clean-step count on overflow
    def __init__(self, init_scale=2.0**16, growth_interval=2000):
        self.scale, self.interval, self.count = float(init_scale), growth_interval, 0

    def update(self, found_inf):
        if found_inf:
            self.scale *= 0.5
            return False
        self.count += 1
        if self.count % self.interval == 0:
            self.scale *= 2.0
        return True


class ScalerNeverSkips:
    # halves the scale but still applies the step with inf gradients
    def __init__(self, init_scale=2.0**16, growth_interval=2000):
        self.scale, self.interval, self.count = float(init_scale), growth_interval, 0

    def update(self, found_inf):
        if found_inf:
            self.scale *= 0.5
            self.count = 0
            return True
        self.count += 1
        if self.count == self.interval:
            self.scale *= 2.0
            self.count = 0
        return True


class ScalerOffByOne:
    # grows after interval + 1 clean steps
    def __init__(self, init_scale=2.0**16, growth_interval=2000):
        self.scale, self.interval, self.count = float(init_scale), growth_interval, 0

    def update(self, found_inf):
        if found_inf:
            self.scale *= 0.5
            self.count = 0
            return False
        if self.count == self.interval:
            self.scale *= 2.0
            self.count = 0
        self.count += 1
        return True


class ScalerBackwards:
    # doubles on overflow, halves on growth: the signs swapped
    def __init__(self, init_scale=2.0**16, growth_interval=2000):
        self.scale, self.interval, self.count = float(init_scale), growth_interval, 0

    def update(self, found_inf):
        if found_inf:
            self.scale *= 2.0
            self.count = 0
            return False
        self.count += 1
        if self.count == self.interval:
            self.scale *= 0.5
            self.count = 0
        return True


WRONG = {
    "gpu_architecture.warp_cost": [warp_cost_max_not_sum, warp_cost_per_thread, warp_cost_drops_partial_warp,
                                   warp_cost_one_warp],
    "gpu_architecture.global_ids": [global_ids_block_major, global_ids_swapped, global_ids_width_from_block],
    "gpu_architecture.occupancy": [occupancy_ignores_registers, occupancy_no_warp_rounding,
                                   occupancy_ignores_block_limit],
    "gpu_architecture.arithmetic_intensity": [ai_forgets_output, ai_matmul_mnk_flops, ai_ignores_dtype],
    "gpu_architecture.roofline": [roofline_max, roofline_no_cap, roofline_divides, roofline_tensor],
    "gpu_architecture.tiled_matmul_traffic": [traffic_floor_division, traffic_forgets_c, traffic_float_approx,
                                              traffic_forgets_bytes],
    "gpu_architecture.mixed_precision_dot": [dot_torch_sum, dot_no_input_rounding, dot_float64, dot_returns_tensor],
    "gpu_architecture.DynamicLossScaler": [ScalerNoReset, ScalerNeverSkips, ScalerOffByOne, ScalerBackwards],
}
