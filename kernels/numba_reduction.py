r"""Sum reduction in Numba-CUDA: a shared-memory tree inside each block, then a second pass over block results.

$s = \sum_i x_i$, the contract of ``torch.sum(input)`` (all elements, result of input's dtype, accumulated in
fp32). Threads cannot add into one number without racing, so the sum is built as a tree:

1. **Grid-stride accumulation.** Thread ``i`` of a grid of ``G`` threads adds ``x[i], x[i+G], x[i+2G], ...``
   into a private fp32 register. The grid is capped at ``MAX_BLOCKS`` blocks, so one pass reads the whole input
   however long it is, and reads stay coalesced (neighbouring threads, neighbouring addresses).
2. **Tree in shared memory.** Each thread writes its partial sum to ``s_buf[threadIdx.x]``; then for
   ``stride = THREADS/2, THREADS/4, ..., 1`` the first ``stride`` threads add ``s_buf[t + stride]`` into
   ``s_buf[t]``. ``cuda.syncthreads()`` between levels is essential: a thread must not read a slot before
   another thread has finished writing it. ``log2(THREADS)`` levels later ``s_buf[0]`` holds the block's sum,
   and thread 0 writes it to ``partial[blockIdx.x]``.
3. **Second pass.** The same kernel with a single block reduces the ``<= MAX_BLOCKS`` partial sums to one.

The input length need not be a multiple of anything: threads past the end add nothing (step 1's loop
condition), and sequential addressing (``t + stride``, not ``2 t``) keeps the active threads contiguous, so
whole warps retire together instead of diverging.

**Memory traffic.** $n$ elements read once, ``MAX_BLOCKS`` partials written and read once: memory-bound, the
target is the device's bandwidth. The summation order differs from PyTorch's, so fp32 results agree to
rounding, not bit for bit.

Reference: M. Harris, "Optimizing Parallel Reduction in CUDA", NVIDIA, 2007 (kernels 3-4: sequential addressing,
add during load). Launchers take and return torch tensors (see ``numba_vector_add``).
"""

from __future__ import annotations

from manifold_course.kernels import MODE  # chooses GPU or simulator mode before numba.cuda is imported

import torch
from numba import cuda, float32

from manifold_course.kernels.numba_vector_add import (
    NUMBA_DTYPES, check_numba_dtype, numba_to_tensor, tensor_to_numba, torch_stream)
from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator

THREADS = 256        # threads per block; a power of two, because the tree halves it at each level
MAX_BLOCKS = 1024    # blocks in the first pass: about 8 per SM of an H100 (132 SMs), enough to hide latency


@cuda.jit
def block_sum_kernel(
    x,         # input, (n,) device array, float16 or float32 (or the fp32 partials of a first pass)
    partial,   # output, (gridDim.x,) fp32 device array: partial[b] = sum of the elements block b visited
):
    s_buf = cuda.shared.array(THREADS, float32)              # one fp32 slot per thread, shared by the block
    t = cuda.threadIdx.x
    # 1. grid-stride loop: thread i adds x[i], x[i + G], x[i + 2G], ... (G = threads in the grid)
    acc = float32(0.0)
    i = cuda.grid(1)
    grid_threads = cuda.gridsize(1)
    while i < x.shape[0]:                                    # threads past the end add nothing
        acc += float32(x[i])                                 # read each element exactly once
        i += grid_threads
    s_buf[t] = acc
    cuda.syncthreads()                                       # every slot written before anyone reads one
    # 2. tree: s_buf[t] += s_buf[t + stride], halving stride; log2(THREADS) levels
    stride = THREADS // 2
    while stride > 0:
        if t < stride:
            s_buf[t] += s_buf[t + stride]
        cuda.syncthreads()                                   # this level done before the next one reads it
        stride //= 2
    if t == 0:
        partial[cuda.blockIdx.x] = s_buf[0]                  # write 1 fp32 per block


def reduce_sum(input: torch.Tensor) -> torch.Tensor:
    """``torch.sum(input)`` for a float16/float32 tensor: a 0-d tensor of input's dtype (fp32 accumulation)."""
    check_numba_dtype(input)
    x = input.contiguous().view(-1)                          # (n,)
    n = x.numel()
    if n == 0:
        return torch.zeros((), dtype=input.dtype, device=input.device)
    blocks = min(MAX_BLOCKS, (n + THREADS - 1) // THREADS)
    partial = torch.empty(blocks, dtype=torch.float32, device=x.device)   # (blocks,) block sums
    total = torch.empty(1, dtype=torch.float32, device=x.device)          # (1,) the sum
    stream = torch_stream(x)
    d_partial = tensor_to_numba(partial, copy=False)
    d_total = tensor_to_numba(total, copy=False)
    block_sum_kernel[blocks, THREADS, stream](tensor_to_numba(x), d_partial)   # pass 1: n -> blocks
    block_sum_kernel[1, THREADS, stream](d_partial, d_total)                   # pass 2: blocks -> 1, on device
    return numba_to_tensor(d_total, total).view(()).to(input.dtype)


def _make_inputs(size: int, dtype: torch.dtype, device: str) -> tuple:
    gen = torch_generator(0, device)
    return (torch.randn(size, dtype=dtype, device=device, generator=gen),)


BENCH = [
    BenchSpec(
        name="numba_sum",
        kernel=reduce_sum,
        reference=torch.sum,
        make_inputs=_make_inputs,
        sizes=[2**20, 2**24, 2**26],
        dtypes=NUMBA_DTYPES,
        bytes_moved=lambda n, dtype: n * dtype.itemsize,     # read x once (the partials are negligible)
        bound="memory",
    ),
]


if __name__ == "__main__":
    print(MODE.describe())
    device = "cuda" if MODE.gpu else "cpu"
    for dtype in NUMBA_DTYPES:
        (x,) = _make_inputs(1001, dtype, device)               # not a multiple of THREADS
        torch.testing.assert_close(reduce_sum(x), torch.sum(x), rtol=1e-3, atol=1e-3)
        print(f"{dtype}: matches torch.sum")
    if MODE.gpu:
        from manifold_course.systems.bench import default_timer

        timer = default_timer()
        for n in BENCH[0].sizes:
            (x,) = _make_inputs(n, torch.float32, device)
            for label, fn in (("numba", reduce_sum), ("torch", torch.sum)):
                ms = timer(lambda: fn(x))
                print(f"n={n:>9} {label:>6}: {ms:8.3f} ms  {4 * n / ms * 1e-6:7.1f} GB/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures GB/s")
