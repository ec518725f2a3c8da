r"""A 2-D elementwise map in Numba-CUDA: GELU over a matrix with a 2-D grid of 2-D blocks.

$y = \mathrm{GELU}(x) = x\,\Phi(x) = \tfrac12 x\,(1 + \mathrm{erf}(x/\sqrt2))$, or with ``approximate="tanh"``
$\tfrac12 x\,(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715\,x^3)))$: the contract of
``torch.nn.functional.gelu(input, approximate=...)`` (Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)",
2016, arXiv:1606.08415). The input is viewed as a matrix (rows, cols) with cols = the last dimension.

Each block is ``BLOCK_ROWS x BLOCK_COLS`` threads and owns one tile of the matrix; the grid has
``ceil(cols / BLOCK_COLS) x ceil(rows / BLOCK_ROWS)`` blocks:

    (col, row) = cuda.grid(2) -> if row < rows and col < cols -> y[row, col] = gelu(x[row, col])

Two things to notice:

- **Which index is x.** ``cuda.grid(2)`` returns the (x, y) thread coordinates, and threadIdx.x is the one that
  varies fastest inside a warp. Mapping it to the *column* makes the 32 threads of a warp read 32 neighbouring
  addresses of a row-major matrix (one coalesced transaction); mapping it to the row would make them stride by a
  whole row (32 transactions).
- **Two bounds checks.** Edge tiles hang over the matrix in both directions when rows or cols is not a multiple
  of the block's sides; both coordinates are checked.

**Memory traffic.** Read and write every element once ($2 \cdot$ rows $\cdot$ cols elements); erf/tanh cost a
few dozen FLOPs per element, still far below the machine balance, so the kernel is memory-bound. Launchers take
and return torch tensors (see ``numba_vector_add``); math is in fp32.
"""

from __future__ import annotations

import math

from manifold_course.kernels import MODE  # chooses GPU or simulator mode before numba.cuda is imported

import torch
import torch.nn.functional as F
from numba import cuda, float32

from manifold_course.kernels.numba_vector_add import (
    NUMBA_DTYPES, check_numba_dtype, numba_to_tensor, tensor_to_numba, torch_stream)
from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator

BLOCK_ROWS, BLOCK_COLS = 8, 32     # 256 threads per block; a warp spans 32 columns of one row


@cuda.jit
def gelu_kernel(
    x,          # input, (rows, cols) device array, row-major, float16 or float32
    y,          # output, (rows, cols) device array, same dtype: y = gelu(x)
    use_tanh,   # True: the tanh approximation; False: the exact erf form
):
    col, row = cuda.grid(2)                                  # threadIdx.x (fastest) walks the columns: coalesced
    if row < x.shape[0] and col < x.shape[1]:                # edge tiles overhang in both directions
        v = float32(x[row, col])                             # read 1 element, compute in fp32
        if use_tanh:
            # 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3)))
            inner = float32(0.7978845608028654) * (v + float32(0.044715) * v * v * v)
            g = float32(0.5) * v * (float32(1.0) + math.tanh(inner))
        else:
            # 0.5 v (1 + erf(v / sqrt(2)))
            g = float32(0.5) * v * (float32(1.0) + math.erf(v * float32(0.7071067811865476)))
        y[row, col] = g                                      # write 1 element (rounded to y's dtype)


def gelu(input: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """``torch.nn.functional.gelu(input, approximate=approximate)`` for a float16/float32 tensor."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    check_numba_dtype(input)
    cols = input.shape[-1] if input.dim() > 0 else 1
    x = input.contiguous().view(-1, cols)                    # (rows, cols)
    y = torch.empty_like(x)
    rows = x.shape[0]
    if x.numel() == 0:
        return y.view(input.shape)
    d_x, d_y = tensor_to_numba(x), tensor_to_numba(y, copy=False)
    grid = ((cols + BLOCK_COLS - 1) // BLOCK_COLS,           # blocks along x: columns
            (rows + BLOCK_ROWS - 1) // BLOCK_ROWS)           # blocks along y: rows
    gelu_kernel[grid, (BLOCK_COLS, BLOCK_ROWS), torch_stream(x)](d_x, d_y, approximate == "tanh")
    return numba_to_tensor(d_y, y).view(input.shape)


def _make_inputs(size: tuple[int, int], dtype: torch.dtype, device: str) -> tuple:
    gen = torch_generator(0, device)
    return (torch.randn(size, dtype=dtype, device=device, generator=gen),)


BENCH = [
    BenchSpec(
        name="numba_gelu_2d",
        kernel=gelu,
        reference=F.gelu,
        make_inputs=_make_inputs,
        sizes=[(1024, 1024), (4096, 4096), (8192, 8192)],
        dtypes=NUMBA_DTYPES,
        bytes_moved=lambda size, dtype: 2 * size[0] * size[1] * dtype.itemsize,   # read x, write y
        bound="memory",
    ),
]


if __name__ == "__main__":
    print(MODE.describe())
    device = "cuda" if MODE.gpu else "cpu"
    for dtype in NUMBA_DTYPES:
        (x,) = _make_inputs((13, 37), dtype, device)          # neither side a multiple of the block
        for approximate in ("none", "tanh"):
            torch.testing.assert_close(gelu(x, approximate), F.gelu(x, approximate=approximate))
        print(f"{dtype}: matches F.gelu (erf and tanh forms)")
    if MODE.gpu:
        from manifold_course.systems.bench import default_timer

        timer = default_timer()
        for rows, cols in BENCH[0].sizes:
            (x,) = _make_inputs((rows, cols), torch.float32, device)
            for label, fn in (("numba", gelu), ("torch", F.gelu)):
                ms = timer(lambda: fn(x))
                print(f"{rows}x{cols} {label:>6}: {ms:8.3f} ms  {2 * 4 * rows * cols / ms * 1e-6:7.1f} GB/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures GB/s")
