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
# # Volume 6, Chapter 1 exercises: GPU architecture (sections 6.1-6.3)
#
# Eight exercises, from counting to a state machine: the cost of a branch in SIMT warps, the global ids of a 2-D grid,
# the occupancy of an SM, the arithmetic intensity of real operations, the roofline, the memory traffic of a tiled
# matmul, a dot product with fp16 or fp32 accumulation, and the dynamic loss scaler of mixed-precision training. Each
# exercise states its inputs, outputs and what the check verifies; write the body where it says `# YOUR CODE HERE`,
# run the cell, then run the `check(...)` cell below it: it answers at once with a green "passed" or a red message
# that says what to fix. The checks draw fresh random cases each time, including edge cases (partial warps, sizes that
# are not multiples of the tile, a single thread, matrix-vector products).
#
# The lecture is `chapters/v6_systems/01_gpu_architecture.ipynb`. Please write your own code rather than importing the
# course's reference implementations (`manifold_course.systems`): the point is to build them yourself.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import numpy as np
import torch

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: the cost of a branch in SIMT warps (warm-up)
#
# `warp_cost(branch_mask, cost_if, cost_else, warp=32) -> int`. `branch_mask` is a boolean numpy array of length
# $n$ (one entry per thread: does this thread take the `if`?). Threads $0..31$ form warp 0, $32..63$ warp 1, and so
# on; the last warp may be partial. A warp issues the `if` path when at least one of its lanes takes it and the `else`
# path when at least one lane does not, so per warp the cost is $c_{if}$ (uniform, all if), $c_{else}$ (uniform, all
# else) or $c_{if} + c_{else}$ (divergent). Return the total over all warps.
#
# **Checked:** exact integers on uniform and divergent warps, a single diverging lane, a partial last warp, random
# masks, `warp=16`, a single thread.

# %%
def warp_cost(branch_mask, cost_if, cost_else, warp=32):
    # YOUR CODE HERE
    # Hint: loop over warps with range(0, n, warp); a slice past the end of an array is simply shorter.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gpu_architecture.warp_cost", warp_cost)

# %% [markdown]
# ## Exercise 2: global thread ids of a grid
#
# `global_ids(grid, block) -> np.ndarray` of dtype int64 and shape `(n_blocks, threads_per_block)`. `grid` and
# `block` are an int `n` (a 1-D launch, the same as `(n, 1)`) or a pair `(x, y)`. Row `b` is the block with linear
# index `b = blockIdx.y * gridDim.x + blockIdx.x`; column `t` its thread `t = threadIdx.y * blockDim.x + threadIdx.x`.
# The entry is the thread's position in the row-major global array of width `W = gridDim.x * blockDim.x`:
#
# $$\text{col} = \text{blockIdx.x}\cdot\text{blockDim.x} + \text{threadIdx.x},\qquad
#   \text{row} = \text{blockIdx.y}\cdot\text{blockDim.y} + \text{threadIdx.y},\qquad \text{id} = \text{row}\cdot W + \text{col}.$$
#
# In 1-D this is `blockIdx * blockDim + threadIdx`.
#
# **Checked:** equal to the reference on 1-D grids (block sizes 32, 100, 1) and 2-D grids (including a random one),
# and the ids of a `(4, 3) x (7, 2)` launch cover $0..167$ exactly once.

# %%
def global_ids(grid, block):
    # YOUR CODE HERE
    # Hint: divmod(b, gridDim.x) gives (blockIdx.y, blockIdx.x); divmod(t, blockDim.x) gives (threadIdx.y, threadIdx.x).
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gpu_architecture.global_ids", global_ids)

# %% [markdown]
# ## Exercise 3: occupancy
#
# `occupancy(threads_per_block, regs_per_thread, smem_per_block, limits=A100_SM) -> float`, the fraction of an SM's
# warp slots that resident blocks fill. `limits` has the attributes `max_threads` (2048 resident threads per SM),
# `max_blocks` (32 resident blocks), `registers` (65 536 32-bit registers), `shared_bytes` (164 KB on an A100),
# `max_threads_per_block` (1024) and `warp` (32). With $w = \lceil \text{threads}/32\rceil$ warps per block (a partial
# warp still holds 32 lanes of registers), the number of resident blocks is the smallest of
#
# - `max_blocks`; `max_threads // (32 w)`; `registers // (32 w * regs_per_thread)`;
# - `shared_bytes // smem_per_block` (only when `smem_per_block > 0`),
#
# and the occupancy is `blocks * w / (max_threads / 32)`. A block larger than `max_threads_per_block`, or one that does
# not fit at all, gives `0.0`. (This is a simplified model: the hardware also allocates registers and shared memory in
# chunks.)
#
# **Checked:** known A100 values (full occupancy, register-limited, shared-memory-limited, a 97-thread block, tiny
# blocks limited by `max_blocks`, a block that does not fit), H100 limits and a custom SM.

# %%
from manifold_course.systems.simt import A100_SM  # the A100's per-SM limits (a small dataclass of numbers)


def occupancy(threads_per_block, regs_per_thread, smem_per_block, limits=A100_SM):
    # YOUR CODE HERE
    # Hint: compute the four block limits, take the min, then convert blocks to warps.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gpu_architecture.occupancy", occupancy)

# %% [markdown]
# ## Exercise 4: arithmetic intensity
#
# `arithmetic_intensity(op, shape, dtype_bytes) -> float`, FLOPs per byte moved to and from memory, with these
# conventions (one add, multiply, compare, exp or divide = 1 FLOP; a multiply-add = 2; every input read once, every
# output written once):
#
# | `op` | `shape` | FLOPs | elements moved |
# |---|---|---|---|
# | `"vector_add"` | `(n,)` | $n$ | $3n$ |
# | `"matmul"` | `(M, N, K)`: $(M,K)\times(K,N)$ | $2MNK$ | $MK + KN + MN$ |
# | `"softmax"` (rows) | `(R, C)` | $5RC$ | $2RC$ |
# | `"layer_norm"` (rows, with gain and bias) | `(R, D)` | $7RD$ | $2RD + 2D$ |
#
# Bytes = elements $\times$ `dtype_bytes`.
#
# **Checked:** to `rtol=1e-9` on each op: fp32 and fp16 vector adds, a square matmul, a matrix-vector product, a random
# matmul, softmax and two LayerNorms (one with a single row, where the gain and bias reads matter).

# %%
def arithmetic_intensity(op, shape, dtype_bytes):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gpu_architecture.arithmetic_intensity", arithmetic_intensity)

# %% [markdown]
# ## Exercise 5: the roofline
#
# `roofline(I, peak_flops, bandwidth) -> float`: the attainable FLOP/s of a kernel of intensity `I` (FLOP/byte) on a
# machine with peak `peak_flops` (FLOP/s) and memory bandwidth `bandwidth` (bytes/s):
# $P(I) = \min(P_{peak},\ I\cdot BW)$. Return a Python float.
#
# **Checked:** a vector add and a compute-bound op on an H100, exactly at the A100's ridge point, $I = 0$, random values.

# %%
def roofline(I, peak_flops, bandwidth):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gpu_architecture.roofline", roofline)

# %% [markdown]
# ## Exercise 6: memory traffic of a tiled matmul
#
# `tiled_matmul_traffic(M, N, K, tile, dtype_bytes) -> int`: the bytes a matmul $C = AB$, $A$ of shape $(M, K)$, $B$ of
# shape $(K, N)$, moves when it computes $C$ in `tile x tile` output tiles: each output tile keeps its accumulator in
# fast memory, streams the whole $(t, K)$ row panel of A and $(K, t)$ column panel of B, and writes its tile of C once.
# Tiles at the right and bottom edges may be smaller (use ceilings). Every element of A is then read once per tile
# column, every element of B once per tile row:
#
# $$\text{bytes} = b\,\big(MK\lceil N/t\rceil + KN\lceil M/t\rceil + MN\big).$$
#
# **Checked:** exact integers; tile 1 (the naive $2MNK + MN$ elements), ragged tiles, a tile larger than the matrix,
# $M = 1$.

# %%
def tiled_matmul_traffic(M, N, K, tile, dtype_bytes):
    # YOUR CODE HERE
    # Hint: -(-a // b) is an exact integer ceiling.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gpu_architecture.tiled_matmul_traffic", tiled_matmul_traffic)

# %% [markdown]
# ## Exercise 7: a dot product with fp16 or fp32 accumulation
#
# `mixed_precision_dot(a, b, in_dtype, acc_dtype) -> float` with `a`, `b` float64 tensors of shape `(n,)`:
#
# 1. round the inputs to `in_dtype` (`torch.float16`, `torch.bfloat16`, `torch.float32` or `torch.float64`);
# 2. compute each product $a_i b_i$ and round it to `acc_dtype` (`torch.float16`, `torch.float32` or `torch.float64`;
#    at least as precise as `in_dtype`);
# 3. accumulate **left to right**, rounding the running sum to `acc_dtype` after every addition, starting from 0.
#
# Return a Python float. Careful: `torch.sum` / `torch.dot` on a CPU accumulate half precision in fp32 internally (and
# use a tree order), so they do not show fp16 accumulation; write the loop (or use `np.add.accumulate` with
# `np.float16` / `np.float32`, which adds left to right).
#
# **Checked:** against the reference, to 2e-3 relative for fp16 accumulation, 1e-5 for fp32, 1e-12 for float64: n = 4096
# products in $[0, 1)$ (where fp16 accumulation goes badly wrong), Gaussian inputs, bf16 inputs, $n = 1$.

# %%
def mixed_precision_dot(a, b, in_dtype, acc_dtype):
    # YOUR CODE HERE
    # Hint: a.to(in_dtype).double() holds the rounded values exactly; a 0-d tensor keeps its dtype through + and *.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gpu_architecture.mixed_precision_dot", mixed_precision_dot)

# %% [markdown]
# ## Exercise 8: the dynamic loss scaler
#
# `DynamicLossScaler(init_scale, growth_interval)`, a class with an attribute `scale` (a float, `init_scale` at first)
# and a method `update(found_inf) -> bool`, called once per training step after the backward pass of the scaled loss
# $S\cdot L$ (gradients are then divided by $S$):
#
# - `found_inf` True (a gradient is inf or NaN): halve `scale`, reset the count of clean steps to 0, return False (skip
#   the optimiser step);
# - otherwise: count the clean step; when the count reaches `growth_interval`, double `scale` and reset the count;
#   return True.
#
# This is `torch.amp.GradScaler`'s rule (growth factor 2, backoff 0.5).
#
# **Checked:** driven through seeded sequences of thousands of clean and overflowing steps (two overflows first, runs
# shorter and longer than the interval, intervals 1, 3, random and 2000); after every step the returned bool and
# `scale` must equal the reference's.

# %%
class DynamicLossScaler:
    def __init__(self, init_scale=2.0**16, growth_interval=2000):
        # YOUR CODE HERE
        # Hint: besides scale, keep the growth interval and a count of clean steps in a row.
        raise NotImplementedError("Exercise: replace this line with your code")

    def update(self, found_inf):
        # YOUR CODE HERE
        raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("gpu_architecture.DynamicLossScaler", DynamicLossScaler)

# %% [markdown]
# ## Where next
#
# Section 6.4 writes real CUDA kernels (Numba, under the CUDA simulator on a CPU) with the global index of Exercise 2;
# 6.5 moves up to Triton, where a program owns a whole tile and the traffic of Exercise 6 is yours to control.
