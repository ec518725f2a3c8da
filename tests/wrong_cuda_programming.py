import math

import manifold_course.kernels  # noqa: F401  (simulator mode before numba.cuda)

import numpy as np
from numba import cuda, float32


def launch_floor(n, threads_per_block):
    return n // threads_per_block, threads_per_block


def launch_always_one_more(n, threads_per_block):
    return n // threads_per_block + 1, threads_per_block


def launch_float(n, threads_per_block):
    return math.ceil(n / threads_per_block) * 1.0, threads_per_block


@cuda.jit
def _add_no_bounds(a, b, out):
    i = cuda.grid(1)
    out[i] = a[i] + b[i]


def vector_add_no_bounds_check(a, b, blocks, threads):
    d_out = cuda.device_array_like(a)
    _add_no_bounds[blocks, threads](cuda.to_device(a), cuda.to_device(b), d_out)
    return d_out.copy_to_host()


@cuda.jit
def _add_thread_idx_only(a, b, out):
    i = cuda.threadIdx.x
    if i < out.shape[0]:
        out[i] = a[i] + b[i]


def vector_add_forgets_block_offset(a, b, blocks, threads):
    d_out = cuda.to_device(np.zeros_like(a))
    _add_thread_idx_only[blocks, threads](cuda.to_device(a), cuda.to_device(b), d_out)
    return d_out.copy_to_host()


@cuda.jit
def _scale_no_loop(x, alpha, out):
    i = cuda.grid(1)
    if i < x.shape[0]:
        out[i] = alpha * x[i]


def scale_without_loop(x, alpha, blocks, threads):
    d_out = cuda.to_device(np.zeros_like(x))
    _scale_no_loop[blocks, threads](cuda.to_device(x), np.float32(alpha), d_out)
    return d_out.copy_to_host()


@cuda.jit
def _madd_swapped(A, B, C):
    row, col = cuda.grid(2)           # x taken as the row: wrong on non-square matrices
    if row < C.shape[0] and col < C.shape[1]:
        C[row, col] = A[row, col] + B[row, col]


def matrix_add_swapped_axes(A, B, block):
    rows, cols = A.shape
    bx, by = block
    grid = ((cols + bx - 1) // bx, (rows + by - 1) // by)
    d_C = cuda.to_device(np.zeros_like(A))
    _madd_swapped[grid, block](cuda.to_device(A), cuda.to_device(B), d_C)
    return d_C.copy_to_host()


@cuda.jit
def _madd_one_bound(A, B, C):
    col, row = cuda.grid(2)
    if row < C.shape[0]:              # forgot the column bound
        C[row, col] = A[row, col] + B[row, col]


def matrix_add_checks_rows_only(A, B, block):
    rows, cols = A.shape
    bx, by = block
    grid = ((cols + bx - 1) // bx, (rows + by - 1) // by)
    d_C = cuda.device_array_like(A)
    _madd_one_bound[grid, block](cuda.to_device(A), cuda.to_device(B), d_C)
    return d_C.copy_to_host()


@cuda.jit
def _bsum_stops_early(x, partial):
    s = cuda.shared.array(1024, float32)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    s[t] = x[i] if i < x.shape[0] else float32(0.0)
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 1:                 # off by one: the last level (stride 1) never runs
        if t < stride:
            s[t] += s[t + stride]
        cuda.syncthreads()
        stride //= 2
    if t == 0:
        partial[cuda.blockIdx.x] = s[0]


@cuda.jit
def _bsum_quarter_start(x, partial):
    s = cuda.shared.array(1024, float32)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    s[t] = x[i] if i < x.shape[0] else float32(0.0)
    cuda.syncthreads()
    stride = cuda.blockDim.x // 4     # wrong tree step: the upper half of the block is never added
    while stride > 0:
        if t < stride:
            s[t] += s[t + stride]
        cuda.syncthreads()
        stride //= 2
    if t == 0:
        partial[cuda.blockIdx.x] = s[0]


@cuda.jit
def _bsum_global_index_in_shared(x, partial):
    s = cuda.shared.array(1024, float32)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    s[t] = x[t] if t < x.shape[0] else float32(0.0)   # every block sums the first block's elements
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if t < stride:
            s[t] += s[t + stride]
        cuda.syncthreads()
        stride //= 2
    if t == 0 and i >= 0:
        partial[cuda.blockIdx.x] = s[0]


def _bsum_launcher(kernel):
    def block_sum(x, threads):
        blocks = (x.shape[0] + threads - 1) // threads
        d_partial = cuda.device_array(blocks, dtype=np.float32)
        kernel[blocks, threads](cuda.to_device(x), d_partial)
        return d_partial.copy_to_host()
    block_sum.__name__ = f"block_sum_{kernel.__name__ if hasattr(kernel, '__name__') else 'wrong'}"
    return block_sum


def warp_transactions_counts_lanes(addresses, sector_bytes=32):
    return len(addresses)


def warp_transactions_bytes_over_sector(addresses, sector_bytes=32):
    a = np.asarray(addresses)
    return int(math.ceil((a.max() - a.min() + 4) / sector_bytes))   # assumes a contiguous range


def warp_transactions_128_lines(addresses, sector_bytes=32):
    return int(np.unique(np.asarray(addresses) // 128).size)


def tiled_reads_plain_division(M, N, K, tile):
    return int(2 * M * N * K / tile)


def tiled_reads_only_a(M, N, K, tile):
    return M * K * math.ceil(N / tile)


def tiled_reads_float(M, N, K, tile):
    return M * K * math.ceil(N / tile) + K * N * math.ceil(M / tile) + 0.0


WRONG = {
    "cuda_programming.launch_config": [launch_floor, launch_always_one_more, launch_float],
    "cuda_programming.vector_add": [vector_add_no_bounds_check, vector_add_forgets_block_offset],
    "cuda_programming.scale_grid_stride": [scale_without_loop],
    "cuda_programming.matrix_add": [matrix_add_swapped_axes, matrix_add_checks_rows_only],
    "cuda_programming.block_sum": [_bsum_launcher(_bsum_stops_early), _bsum_launcher(_bsum_quarter_start),
                                   _bsum_launcher(_bsum_global_index_in_shared)],
    "cuda_programming.warp_transactions": [warp_transactions_counts_lanes, warp_transactions_bytes_over_sector,
                                           warp_transactions_128_lines],
    "cuda_programming.tiled_matmul_global_reads": [tiled_reads_plain_division, tiled_reads_only_a, tiled_reads_float],
}
