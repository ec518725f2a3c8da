r"""CUDA programming basics: launch arithmetic, memory-transaction counting, and four small Numba-CUDA kernels.

A CUDA kernel runs as a *grid* of *blocks* of *threads*. Thread ``threadIdx`` of block ``blockIdx`` (blocks of
``blockDim`` threads) owns the global index

$$i = \text{blockIdx}\cdot\text{blockDim} + \text{threadIdx}\qquad(\text{``cuda.grid(1)''}),$$

and a launch that covers $n$ elements with $t$ threads per block needs $\lceil n/t\rceil = (n+t-1)//t$ blocks; the
last block overhangs by up to $t-1$ threads, which a bounds check ``if i < n`` keeps idle. A *grid-stride loop*
(``i += gridDim * blockDim``) lets a fixed grid cover any $n$.

**Memory model (simplified, documented).** Global memory is served in 32-byte *sectors*; a warp's load is split into
as many transactions as distinct sectors its 32 addresses touch (NVIDIA, *CUDA C++ Best Practices Guide*,
"Coalesced Access to Global Memory"; caches, 128-byte lines and alignment subtleties ignored). 32 consecutive fp32
loads touch $128/32 = 4$ sectors; a stride of 32 elements touches 32 sectors, 8 times the traffic.

**Tiled matmul reads.** The naive kernel loads $2K$ elements per output ($2MNK$ in all). With ``tile x tile``
shared-memory tiles each element of $A$ is loaded once per block *column* and each element of $B$ once per block
*row*: $MK\lceil N/t\rceil + KN\lceil M/t\rceil$ loads, equal to $2MNK$ at $t=1$ (Kirk & Hwu, *Programming Massively
Parallel Processors*, ch. 5).

The kernels are the references of the exercises of chapter ``v6_systems/02_cuda_programming``; on a CPU they run
under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set by importing :mod:`manifold_course.kernels`), which
runs every thread as a Python thread: keep launches to about a thousand threads.
"""

from __future__ import annotations

import math

import manifold_course.kernels  # noqa: F401  (chooses GPU or simulator mode before numba.cuda is imported)

import numpy as np
from numba import cuda, float32

WARP_SIZE = 32
SECTOR_BYTES = 32      # unit of a global-memory transaction (L2 <-> SM) on Volta and later
LINE_BYTES = 128       # an L1 cache line: 4 sectors
MAX_BLOCK_SUM_THREADS = 1024   # shared-memory slots of block_sum_kernel (a compile-time size on a GPU)


# ------------------------------------------------------------------ launch arithmetic
def launch_config(n: int, threads_per_block: int) -> tuple[int, int]:
    """``(blocks, threads_per_block)`` covering ``n`` elements: ``blocks = ceil(n / t)``, slack < one block."""
    return (n + threads_per_block - 1) // threads_per_block, threads_per_block


def grid_stride_owner(n: int, blocks: int, threads: int) -> np.ndarray:
    """Which global thread handles each of ``n`` elements in a grid-stride loop: ``owner[j] = j mod (blocks*threads)``."""
    return np.arange(n, dtype=np.int64) % (blocks * threads)      # (n,)


# ------------------------------------------------------------------ coalescing
def warp_addresses(stride: int, elem_bytes: int = 4, base: int = 0, warp: int = WARP_SIZE) -> np.ndarray:
    """Byte addresses loaded by the lanes of one warp when lane ``l`` reads element ``base + l * stride``."""
    return (base + np.arange(warp, dtype=np.int64) * stride) * elem_bytes    # (warp,)


def warp_transactions(addresses: np.ndarray, sector_bytes: int = SECTOR_BYTES) -> int:
    """Memory transactions of one warp-wide load: the number of distinct ``sector_bytes`` sectors touched."""
    return int(np.unique(np.asarray(addresses, dtype=np.int64) // sector_bytes).size)


# ------------------------------------------------------------------ tiled matmul
def tiled_matmul_global_reads(M: int, N: int, K: int, tile: int) -> int:
    r"""Global-memory element loads of the shared-memory tiled matmul $C_{M\times N} = A_{M\times K} B_{K\times N}$.

    $MK\lceil N/t\rceil + KN\lceil M/t\rceil$ (only in-bounds loads; overhanging threads load zeros).
    ``tile = 1`` is the naive kernel: $2MNK$.
    """
    return M * K * math.ceil(N / tile) + K * N * math.ceil(M / tile)


def global_reads_per_thread(K: int, tile: int) -> int:
    """Loads of one interior thread: one A and one B element per step along K, ``2 * ceil(K / tile)`` (naive: 2K)."""
    return 2 * math.ceil(K / tile)


# ------------------------------------------------------------------ kernels (references of the exercises)
@cuda.jit
def add_kernel(a, b, out):           # a, b, out: (n,) float32 device arrays
    i = cuda.grid(1)                 # blockIdx.x * blockDim.x + threadIdx.x
    if i < out.shape[0]:             # the last block overhangs: its extra threads do nothing
        out[i] = a[i] + b[i]


def vector_add(a: np.ndarray, b: np.ndarray, blocks: int, threads: int) -> np.ndarray:
    """Launch ``add_kernel[blocks, threads]`` on two float32 arrays of shape (n,); returns a + b (float32)."""
    d_a, d_b = cuda.to_device(a), cuda.to_device(b)           # host -> device
    d_out = cuda.device_array_like(a)                          # uninitialised output on the device
    add_kernel[blocks, threads](d_a, d_b, d_out)
    return d_out.copy_to_host()                                # device -> host


@cuda.jit
def scale_kernel(x, alpha, out):     # x, out: (n,) float32; a fixed grid of any size covers every element
    i = cuda.grid(1)
    stride = cuda.gridsize(1)        # gridDim.x * blockDim.x threads in the grid
    while i < x.shape[0]:
        out[i] = alpha * x[i]
        i += stride


def scale_grid_stride(x: np.ndarray, alpha: float, blocks: int, threads: int) -> np.ndarray:
    """``alpha * x`` with a grid-stride loop, correct whatever ``blocks * threads`` is; float32 (n,)."""
    d_x, d_out = cuda.to_device(x), cuda.device_array_like(x)
    scale_kernel[blocks, threads](d_x, np.float32(alpha), d_out)
    return d_out.copy_to_host()


@cuda.jit
def matrix_add_kernel(A, B, C):      # (rows, cols) float32 device arrays
    col, row = cuda.grid(2)          # x = threadIdx.x fastest = column: a warp reads along a row (coalesced)
    if row < C.shape[0] and col < C.shape[1]:   # edge blocks overhang in both directions
        C[row, col] = A[row, col] + B[row, col]


def matrix_add(A: np.ndarray, B: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """``A + B`` for float32 (rows, cols) matrices with blocks of ``block = (bx, by)`` threads (x: columns)."""
    rows, cols = A.shape
    bx, by = block
    grid = ((cols + bx - 1) // bx, (rows + by - 1) // by)      # blocks along x (columns), along y (rows)
    d_C = cuda.device_array_like(A)
    matrix_add_kernel[grid, block](cuda.to_device(A), cuda.to_device(B), d_C)
    return d_C.copy_to_host()


@cuda.jit
def block_sum_kernel(x, partial):    # x: (n,) float32; partial: (gridDim.x,) float32 block sums
    s = cuda.shared.array(MAX_BLOCK_SUM_THREADS, float32)    # one slot per thread, shared by the block
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    s[t] = x[i] if i < x.shape[0] else float32(0.0)          # threads past the end contribute 0
    cuda.syncthreads()                                       # all slots written before anyone reads
    stride = cuda.blockDim.x // 2
    while stride > 0:                                        # log2(blockDim) levels, sequential addressing
        if t < stride:
            s[t] += s[t + stride]
        cuda.syncthreads()                                   # level done before the next reads it
        stride //= 2
    if t == 0:
        partial[cuda.blockIdx.x] = s[0]


def block_sum(x: np.ndarray, threads: int) -> np.ndarray:
    """Per-block sums of float32 (n,) ``x`` with ``ceil(n / threads)`` blocks (``threads`` a power of two <= 1024)."""
    blocks = (x.shape[0] + threads - 1) // threads
    d_partial = cuda.device_array(blocks, dtype=np.float32)
    block_sum_kernel[blocks, threads](cuda.to_device(x), d_partial)
    return d_partial.copy_to_host()                          # (blocks,)
