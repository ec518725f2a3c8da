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
# # Volume 6, Chapter 2 exercises: Writing your first CUDA kernels (section 6.4)
#
# Seven exercises: the launch arithmetic, four Numba-CUDA kernels that the checker runs under the CUDA simulator
# (vector add with a bounds check, a grid-stride loop, the 2-D matrix add, a shared-memory block reduction), and two
# performance models (memory transactions of a warp, global loads of a tiled matmul). Write the body where it says
# `# YOUR CODE HERE`, run the cell, then run the `check(...)` cell below it.
#
# For the kernel exercises you write a `@cuda.jit` kernel (defined inside the function) **and** the small launcher around it: copy the inputs to
# the device (`cuda.to_device`), allocate the output (`cuda.device_array_like`), launch with
# `kernel[blocks, threads](...)` using the launch configuration the checker passes in, and copy the result back
# (`.copy_to_host()`). The checker always launches **more threads than elements**: a thread that reads or writes
# past the end raises `IndexError` in the simulator (on a real GPU it silently corrupts memory). The simulator runs
# every thread as a Python thread, so the checks use a few hundred threads at most.
#
# The lecture is `chapters/v6_systems/02_cuda_programming.ipynb`. Please write your own code rather than importing
# the course's reference implementations (`manifold_course.systems.cuda_basics`).

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import manifold_course.kernels  # noqa: F401  (must come before numba.cuda: selects the simulator on a CPU)
import numpy as np
from numba import cuda, float32

from manifold_course.grading import check

# %% [markdown]
# ## 1. `launch_config(n, threads_per_block) -> (blocks, threads_per_block)`
#
# The number of blocks that covers `n` elements with `threads_per_block` threads each: $\lceil n/t\rceil$, computed
# in integers as `(n + t - 1) // t`. Both entries are Python ints. Checked: exact values for n = 1, exact multiples
# (no extra block) and n one past a multiple; a property checks that every n is covered with less than one idle
# block.

# %%
def launch_config(n, threads_per_block):
    ### BEGIN SOLUTION
    return (n + threads_per_block - 1) // threads_per_block, threads_per_block
    ### END SOLUTION


# %%
check("cuda_programming.launch_config", launch_config)

# %% [markdown]
# ## 2. `vector_add(a, b, blocks, threads) -> np.ndarray`
#
# Write a kernel `add_kernel(a, b, out)` in which thread `i = cuda.grid(1)` computes `out[i] = a[i] + b[i]`, and a
# launcher that runs it as `add_kernel[blocks, threads]` on float32 arrays `a`, `b` of shape `(n,)` and returns the
# float32 result `(n,)` as a NumPy array. Checked against `a + b` exactly, for n = 1 and n not a multiple of the
# block, always with `blocks * threads > n`.

# %%
def vector_add(a, b, blocks, threads):
    ### BEGIN SOLUTION
    @cuda.jit
    def add_kernel(a, b, out):
        i = cuda.grid(1)                     # blockIdx.x * blockDim.x + threadIdx.x
        if i < out.shape[0]:                 # the last block overhangs the array
            out[i] = a[i] + b[i]
    d_a, d_b = cuda.to_device(a), cuda.to_device(b)
    d_out = cuda.device_array_like(a)
    add_kernel[blocks, threads](d_a, d_b, d_out)
    return d_out.copy_to_host()
    ### END SOLUTION


# %%
check("cuda_programming.vector_add", vector_add)

# %% [markdown]
# ## 3. `scale_grid_stride(x, alpha, blocks, threads) -> np.ndarray`
#
# `alpha * x` for a float32 array `x` of shape `(n,)`, with a kernel launched on exactly `blocks x threads` threads
# whatever `n` is: a **grid-stride loop**. Thread `i = cuda.grid(1)` handles `i, i + G, i + 2G, ...` while below `n`,
# where `G = cuda.gridsize(1)` is the number of threads in the grid. Pass `alpha` as `np.float32(alpha)`. Checked
# with fewer threads than elements (each thread loops) and with more (bounds); tolerance 1e-6.

# %%
def scale_grid_stride(x, alpha, blocks, threads):
    ### BEGIN SOLUTION
    @cuda.jit
    def scale_kernel(x, alpha, out):
        i = cuda.grid(1)
        stride = cuda.gridsize(1)            # gridDim.x * blockDim.x
        while i < x.shape[0]:
            out[i] = alpha * x[i]
            i += stride
    d_out = cuda.device_array_like(x)
    scale_kernel[blocks, threads](cuda.to_device(x), np.float32(alpha), d_out)
    return d_out.copy_to_host()
    ### END SOLUTION


# %%
check("cuda_programming.scale_grid_stride", scale_grid_stride)

# %% [markdown]
# ## 4. `matrix_add(A, B, block) -> np.ndarray`
#
# The matrix addition the course outline promised: float32 matrices `A`, `B` of shape `(rows, cols)`, blocks of
# `block = (bx, by)` threads, where **x runs along the columns** (the fastest-varying thread index walks along a
# row of a row-major matrix, so a warp's loads coalesce). Compute the 2-D grid
# `(ceil(cols / bx), ceil(rows / by))`, get `col, row = cuda.grid(2)` in the kernel, and check both bounds. Returns
# `A + B`, float32 `(rows, cols)`. Checked exactly on shapes that are not multiples of the block, wide ones
# (swapping rows and columns fails) and 1 x 1.

# %%
def matrix_add(A, B, block):
    ### BEGIN SOLUTION
    @cuda.jit
    def matrix_add_kernel(A, B, C):
        col, row = cuda.grid(2)              # x (fastest) = column
        if row < C.shape[0] and col < C.shape[1]:
            C[row, col] = A[row, col] + B[row, col]
    rows, cols = A.shape
    bx, by = block
    grid = ((cols + bx - 1) // bx, (rows + by - 1) // by)
    d_C = cuda.device_array_like(A)
    matrix_add_kernel[grid, block](cuda.to_device(A), cuda.to_device(B), d_C)
    return d_C.copy_to_host()
    ### END SOLUTION


# %%
check("cuda_programming.matrix_add", matrix_add)

# %% [markdown]
# ## 5. `block_sum(x, threads) -> np.ndarray`
#
# The per-block sums of a float32 array `x` of shape `(n,)`, with `blocks = ceil(n / threads)` blocks of `threads`
# threads (a power of two, at most 1024). Returns float32 `(blocks,)`: entry `b` is
# `x[b*threads : (b+1)*threads].sum()`. In the kernel:
#
# 1. `s = cuda.shared.array(1024, float32)` (the size must be a constant); thread `t = cuda.threadIdx.x` writes its
#    element into `s[t]` (0.0 past the end), then `cuda.syncthreads()`;
# 2. a tree: for `stride = blockDim/2, blockDim/4, ..., 1`, threads `t < stride` do `s[t] += s[t + stride]`, with
#    `cuda.syncthreads()` after each level;
# 3. thread 0 writes `s[0]` to `partial[cuda.blockIdx.x]`.
#
# Checked to 1e-5 against the reference (fp32 rounding of a different order), including a partial last block.
# Careful: a missing `cuda.syncthreads()` is a race; the simulator may not catch it, a GPU will.

# %%
def block_sum(x, threads):
    ### BEGIN SOLUTION
    @cuda.jit
    def block_sum_kernel(x, partial):
        s = cuda.shared.array(1024, float32)
        t = cuda.threadIdx.x
        i = cuda.grid(1)
        s[t] = x[i] if i < x.shape[0] else float32(0.0)
        cuda.syncthreads()
        stride = cuda.blockDim.x // 2
        while stride > 0:
            if t < stride:
                s[t] += s[t + stride]
            cuda.syncthreads()
            stride //= 2
        if t == 0:
            partial[cuda.blockIdx.x] = s[0]
    blocks = (x.shape[0] + threads - 1) // threads
    d_partial = cuda.device_array(blocks, dtype=np.float32)
    block_sum_kernel[blocks, threads](cuda.to_device(x), d_partial)
    return d_partial.copy_to_host()
    ### END SOLUTION


# %%
check("cuda_programming.block_sum", block_sum)

# %% [markdown]
# ## 6. `warp_transactions(addresses, sector_bytes=32) -> int`
#
# The simplified coalescing model: a warp's load of 32 byte `addresses` (an int array of shape `(32,)`) costs one
# memory transaction per distinct `sector_bytes`-byte sector it touches (`address // sector_bytes`). Returns an int.
# Checked: stride 1 (4), stride 2 (8), stride 32 (32), a misaligned start, a broadcast (1), fp64, 128-byte lines,
# random addresses.

# %%
def warp_transactions(addresses, sector_bytes=32):
    ### BEGIN SOLUTION
    return int(np.unique(np.asarray(addresses) // sector_bytes).size)
    ### END SOLUTION


# %%
check("cuda_programming.warp_transactions", warp_transactions)

# %% [markdown]
# ## 7. `tiled_matmul_global_reads(M, N, K, tile) -> int`
#
# Global-memory element loads of the shared-memory tiled matmul $C = AB$, $A$ of shape $(M, K)$, $B$ of shape
# $(K, N)$, blocks of `tile x tile` threads each owning a tile of $C$, counting only in-bounds loads. Each element of
# $A$ is loaded once by every block in its block row, i.e. $\lceil N/t\rceil$ times; each element of $B$
# $\lceil M/t\rceil$ times. Returns an int; at `tile = 1` it is the naive $2MNK$. Checked exactly, with ragged tiles.

# %%
def tiled_matmul_global_reads(M, N, K, tile):
    ### BEGIN SOLUTION
    return M * K * math.ceil(N / tile) + K * N * math.ceil(M / tile)
    ### END SOLUTION


# %%
check("cuda_programming.tiled_matmul_global_reads", tiled_matmul_global_reads)
