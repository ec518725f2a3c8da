r"""Tiled matrix multiplication in Numba-CUDA: shared-memory tiles and ``cuda.syncthreads``.

$C = A B$ with $A \in \mathbb{R}^{M \times K}$, $B \in \mathbb{R}^{K \times N}$: the contract of
``torch.matmul(input, other)`` for two 2-D float16/float32 matrices (fp32 accumulation, result of input's dtype).

**Naive version.** One thread per output $C_{ij} = \sum_k A_{ik} B_{kj}$ reads a row of A and a column of B from
global memory: $2K$ loads for $2K$ FLOPs, and $2MNK$ loads in all, each element of A and B fetched $N$ resp.
$M$ times. Arithmetic intensity about 1/4 FLOP per byte (fp32): hopelessly memory-bound.

**Tiled version (this kernel).** A block of ``TILE x TILE`` threads owns a ``TILE x TILE`` tile of C. It walks
along K in steps of ``TILE``; at each step

1. every thread loads one element of the A tile and one of the B tile into shared memory
   (``s_a[ty, tx] = A[row, k0 + tx]``, ``s_b[ty, tx] = B[k0 + ty, col]``), zero where the tile hangs over the
   matrix, so M, N and K need not be multiples of ``TILE``;
2. ``cuda.syncthreads()``: the tiles are complete before anyone reads them;
3. every thread does ``TILE`` multiply-adds out of shared memory: ``acc += s_a[ty, k] * s_b[k, tx]``;
4. ``cuda.syncthreads()`` again: nobody overwrites a tile another thread is still reading.

Each element of A and B is now fetched from global memory $N/\mathrm{TILE}$ resp. $M/\mathrm{TILE}$ times:
traffic drops by a factor ``TILE`` and intensity rises to about ``TILE/4`` FLOP per byte (fp32). Real GEMMs
(cuBLAS, CUTLASS, Triton's ``tl.dot``) go further: register tiles per thread, tensor cores, asynchronous copies;
PyTorch's ``torch.matmul`` calls them, so expect this kernel at a small fraction of it, above all in fp16 where
the tensor cores do the work.

Reference: D. B. Kirk, W. W. Hwu, *Programming Massively Parallel Processors*, ch. "Memory architecture and data
locality" (tiled matrix multiplication); V. Volkov, J. W. Demmel, "Benchmarking GPUs to tune dense linear
algebra", SC 2008. Launchers take and return torch tensors (see ``numba_vector_add``).
"""

from __future__ import annotations

from manifold_course.kernels import MODE  # chooses GPU or simulator mode before numba.cuda is imported

import torch
from numba import cuda, float32

from manifold_course.kernels.numba_vector_add import (
    NUMBA_DTYPES, check_numba_dtype, numba_to_tensor, tensor_to_numba, torch_stream)
from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator

TILE = 16   # the block is TILE x TILE threads (256) and owns a TILE x TILE tile of C; 2 fp32 tiles = 2 KiB shared


@cuda.jit
def matmul_kernel(
    a,   # input A, (M, K) device array, row-major, float16 or float32
    b,   # input B, (K, N) device array, row-major, same dtype
    c,   # output C = A B, (M, N) device array, same dtype
):
    s_a = cuda.shared.array((TILE, TILE), float32)           # the current tile of A, shared by the block
    s_b = cuda.shared.array((TILE, TILE), float32)           # the current tile of B
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty                        # this thread's C[row, col]
    col = cuda.blockIdx.x * TILE + tx                        # tx fastest: a warp reads along a row (coalesced)
    m, k_total = a.shape
    n = b.shape[1]
    acc = float32(0.0)
    for k0 in range(0, k_total, TILE):                       # ceil(K / TILE) steps along K
        # 1. load one element of each tile (zero outside the matrices: edge tiles overhang)
        if row < m and k0 + tx < k_total:
            s_a[ty, tx] = a[row, k0 + tx]
        else:
            s_a[ty, tx] = float32(0.0)
        if k0 + ty < k_total and col < n:
            s_b[ty, tx] = b[k0 + ty, col]
        else:
            s_b[ty, tx] = float32(0.0)
        cuda.syncthreads()                                   # 2. tiles complete before anyone reads them
        for k in range(TILE):                                # 3. TILE multiply-adds from shared memory
            acc += s_a[ty, k] * s_b[k, tx]                   # C[row, col] += A[row, k0+k] B[k0+k, col]
        cuda.syncthreads()                                   # 4. all reads done before the next load
    if row < m and col < n:                                  # threads of edge tiles outside C write nothing
        c[row, col] = acc


def matmul(input: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``torch.matmul(input, other)`` for 2-D float16/float32 matrices of the same dtype: (M, K) @ (K, N)."""
    if input.dim() != 2 or other.dim() != 2 or input.shape[1] != other.shape[0]:
        raise ValueError(f"matmul takes (M, K) and (K, N) matrices, got {tuple(input.shape)} and {tuple(other.shape)}")
    if input.dtype != other.dtype:
        raise TypeError(f"matmul needs one dtype, got {input.dtype} and {other.dtype}")
    check_numba_dtype(input)
    a, b = input.contiguous(), other.contiguous()            # (M, K), (K, N)
    m, n = a.shape[0], b.shape[1]
    c = torch.empty((m, n), dtype=a.dtype, device=a.device)  # (M, N)
    if c.numel() == 0:
        return c
    if a.shape[1] == 0:
        return c.zero_()
    d_a, d_b, d_c = tensor_to_numba(a), tensor_to_numba(b), tensor_to_numba(c, copy=False)
    grid = ((n + TILE - 1) // TILE, (m + TILE - 1) // TILE)   # x: tiles along N (columns), y: along M (rows)
    matmul_kernel[grid, (TILE, TILE), torch_stream(a)](d_a, d_b, d_c)
    return numba_to_tensor(d_c, c)


def _make_inputs(size: tuple[int, int, int], dtype: torch.dtype, device: str) -> tuple:
    m, n, k = size
    gen = torch_generator(0, device)
    return (torch.randn((m, k), dtype=dtype, device=device, generator=gen),
            torch.randn((k, n), dtype=dtype, device=device, generator=gen))


BENCH = [
    BenchSpec(
        name="numba_matmul",
        kernel=matmul,
        reference=torch.matmul,
        make_inputs=_make_inputs,
        sizes=[(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096)],   # (M, N, K)
        dtypes=NUMBA_DTYPES,
        flops=lambda size: 2 * size[0] * size[1] * size[2],                    # one multiply-add = 2 FLOPs
        bound="compute",
    ),
]


if __name__ == "__main__":
    print(MODE.describe())
    device = "cuda" if MODE.gpu else "cpu"
    for dtype in NUMBA_DTYPES:
        a, b = _make_inputs((19, 21, 23), dtype, device)        # no side a multiple of TILE
        tol = dict(rtol=1e-2, atol=1e-2) if dtype == torch.float16 else dict(rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(matmul(a, b), torch.matmul(a, b), **tol)
        print(f"{dtype}: matches torch.matmul")
    if MODE.gpu:
        from manifold_course.systems.bench import default_timer

        timer = default_timer()
        for m, n, k in BENCH[0].sizes:
            a, b = _make_inputs((m, n, k), torch.float32, device)
            for label, fn in (("numba", matmul), ("torch", torch.matmul)):
                ms = timer(lambda: fn(a, b))
                print(f"{m}x{n}x{k} {label:>6}: {ms:8.3f} ms  {2 * m * n * k / ms * 1e-9:7.2f} TFLOP/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures TFLOP/s")
