r"""Fused, numerically stable row softmax in Triton: one read and one write of the matrix.

$\mathrm{softmax}(x)_j = e^{x_j - m} / \sum_k e^{x_k - m}$ with $m = \max_k x_k$, over the last axis; the contract of
``torch.softmax(input, dim)``. Subtracting the row maximum changes nothing mathematically (it cancels) but keeps
every exponent $\le 0$, so $e^{x}$ cannot overflow (fp16 overflows at $e^{11.1}$, fp32 at $e^{88.7}$).

**Why fuse.** Written as separate PyTorch operations, ``m = x.max(-1); e = (x - m).exp(); s = e.sum(-1); y = e / s``
moves, for an R x C matrix, about
    max: read RC          (write R)
    sub+exp: read RC + R, write RC
    sum: read RC          (write R)
    div: read RC + R, write RC
= 4 RC reads + 2 RC writes = 6 RC elements, against the 2 RC (read x once, write y once) of this kernel: each
program loads whole rows into registers, reduces them there, and writes the result once. Softmax does a few
FLOPs per element, so it is memory-bound and the 3x less traffic is (ideally) a 3x speed-up.

**Blocks.** A program owns ``BLOCK_R`` rows x ``BLOCK_C`` columns, ``BLOCK_C`` the row length rounded up to a power
of two, so a whole row lives in registers (``BLOCK_R = 1`` for wide rows, more rows per program for narrow
ones). A 32768-wide fp32 row at 16 warps takes ~120 registers per thread and no spills (ptxas -v, sm_90); much
wider rows would spill, and need the online formulation (a running max and sum rescaled as each chunk arrives:
M. Milakov, N. Gimelshein, "Online normalizer calculation for softmax", 2018, arXiv:1805.02867), which reads
the row twice; ``triton_flash_attention`` uses exactly that recurrence.

Reference: the Triton tutorial ``02-fused-softmax.py``.
"""

from __future__ import annotations

from manifold_course.kernels import MODE  # chooses GPU or interpreter mode before triton is imported

import torch
import triton
import triton.language as tl

from manifold_course.kernels._rows import row_block_config
from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator


@triton.jit
def softmax_kernel(
    t_x,                    # pointer to the input, (n_rows, n_cols), last axis contiguous
    t_y,                    # pointer to the output, (n_rows, n_cols), contiguous
    x_row_stride,           # elements between two rows of x
    y_row_stride,           # elements between two rows of y
    n_rows,                 # number of rows
    n_cols,                 # row length (the softmax axis)
    BLOCK_R: tl.constexpr,  # rows per program
    BLOCK_C: tl.constexpr,  # columns per program: n_cols rounded up to a power of two
):
    pid = tl.program_id(axis=0)                                  # one program per block of BLOCK_R rows
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)                 # (BLOCK_R,)
    cols = tl.arange(0, BLOCK_C)                                 # (BLOCK_C,)
    col_mask = cols[None, :] < n_cols                            # (1, BLOCK_C)
    # rows past the end re-read the last row (no -inf - -inf = nan there); their results are never stored
    rows_in = tl.minimum(rows, n_rows - 1)
    p_x = t_x + rows_in[:, None] * x_row_stride + cols[None, :]  # (BLOCK_R, BLOCK_C) pointers
    # padding columns load -inf: never the max, and e^-inf = 0 adds nothing to the sum
    b_x = tl.load(p_x, mask=col_mask, other=-float("inf")).to(tl.float32)   # the only read of x
    b_m = tl.max(b_x, axis=1)                                    # (BLOCK_R,) m = max_j x_j
    b_e = tl.exp(b_x - b_m[:, None])                             # e_j = exp(x_j - m) <= 1: cannot overflow
    b_s = tl.sum(b_e, axis=1)                                    # (BLOCK_R,) s = sum_j e_j >= 1 (the max term is 1)
    b_y = b_e / b_s[:, None]                                     # y_j = e_j / s
    p_y = t_y + rows[:, None] * y_row_stride + cols[None, :]
    mask = (rows[:, None] < n_rows) & col_mask                   # (BLOCK_R, BLOCK_C)
    tl.store(p_y, b_y.to(t_y.dtype.element_ty), mask=mask)      # the only write of y


def _launch_config(n_rows: int, n_cols: int) -> dict:
    block_r, block, num_warps = row_block_config(n_rows, n_cols)
    return dict(BLOCK_R=block_r, BLOCK_C=block, num_warps=num_warps)


def softmax(input: torch.Tensor, dim: int) -> torch.Tensor:
    """``torch.softmax(input, dim)`` for a floating tensor: computed in fp32, returned in ``input.dtype``."""
    if not input.is_floating_point():
        raise TypeError("softmax needs a floating-point tensor")
    if input.dim() == 0:
        return torch.ones_like(input)
    x = input.movedim(dim, -1)                                   # the softmax axis last
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])                                # (rows, C): a view when it can be
    if x2.numel() and x2.stride(-1) != 1:
        x2 = x2.contiguous()
    y2 = torch.empty(x2.shape, dtype=input.dtype, device=input.device)
    n_rows, n_cols = x2.shape
    if x2.numel():
        cfg = _launch_config(n_rows, n_cols)
        grid = (triton.cdiv(n_rows, cfg["BLOCK_R"]),)
        softmax_kernel[grid](x2, y2, x2.stride(0), y2.stride(0), n_rows, n_cols, **cfg)
    return y2.view(shape).movedim(-1, dim)


def _make_inputs(size: tuple[int, int], dtype: torch.dtype, device: str) -> tuple:
    gen = torch_generator(0, device)
    return (torch.randn(size, dtype=dtype, device=device, generator=gen) * 4, -1)


BENCH = [
    BenchSpec(
        name="softmax",
        kernel=softmax,
        reference=torch.softmax,
        make_inputs=_make_inputs,
        sizes=[(4096, 8192), (4096, 32768)],                     # wide rows: one row per program
        dtypes=(torch.float16, torch.float32),
        bytes_moved=lambda size, dtype: 2 * size[0] * size[1] * dtype.itemsize,   # read x once, write y once
        bound="memory",
    ),
]


if __name__ == "__main__":
    device = "cuda" if MODE.gpu else "cpu"
    print(MODE.describe())
    for dtype in (torch.float32, torch.float16):
        x, dim = _make_inputs((123, 781), dtype, device)
        expected = torch.softmax(x.float(), dim).to(dtype)
        torch.testing.assert_close(softmax(x, dim), expected)
        print(f"{dtype}: matches torch.softmax")
    if MODE.gpu:
        from triton.testing import do_bench

        for size in BENCH[0].sizes:
            x, dim = _make_inputs(size, torch.float16, device)
            for label, fn in (("triton", softmax), ("torch", torch.softmax)):
                ms = do_bench(lambda: fn(x, dim))
                print(f"{size} fp16 {label:>6}: {ms:7.3f} ms  {2 * 2 * x.numel() / ms * 1e-6:7.1f} GB/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures GB/s")
