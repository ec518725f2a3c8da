r"""Fused RMSNorm forward in Triton: one read of x, one write of y.

$y = x / \sqrt{\tfrac1D \sum_j x_j^2 + \epsilon} \odot w$ over the last axis (B. Zhang, R. Sennrich, "Root Mean
Square Layer Normalization", NeurIPS 2019, arXiv:1910.07467); the contract of
:func:`manifold_course.nn.norms.rms_norm` ``(x, weight, eps=1e-6)``, with the result in the promoted dtype of x and
w, as the reference returns it. The sum of squares is accumulated in fp32 whatever the input dtype: in fp16 a
sum of 8192 squares overflows (65504) as soon as the entries are of order 3.

**Memory traffic.** The reference ``x * rsqrt(x.pow(2).mean(-1) + eps) * w`` runs four kernels and moves about
    pow: read RD, write RD;  mean: read RD;  x * inv_rms: read RD, write RD;  * w: read RD, write RD
= 7 RD elements for an R x D input; this kernel holds each row in registers and moves 2 RD (+ D for w, which
stays in L2). Memory-bound, so fusion is the whole speed-up.

One program normalises ``BLOCK_R`` rows of ``BLOCK_D`` columns (D rounded up to a power of two).
"""

from __future__ import annotations

from manifold_course.kernels import MODE  # chooses GPU or interpreter mode before triton is imported

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from manifold_course.kernels._rows import row_block_config
from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator


@triton.jit
def rms_norm_kernel(
    t_x,                    # pointer to the input, (n_rows, D), last axis contiguous
    t_w,                    # pointer to the gain w, (D,), contiguous
    t_y,                    # pointer to the output, (n_rows, D), contiguous
    x_row_stride,           # elements between two rows of x
    y_row_stride,           # elements between two rows of y
    n_rows,                 # number of rows
    D,                      # row length (the normalised axis)
    eps,                    # added to the mean square before the square root
    BLOCK_R: tl.constexpr,  # rows per program
    BLOCK_D: tl.constexpr,  # columns per program: D rounded up to a power of two
):
    pid = tl.program_id(axis=0)                                  # one program per block of BLOCK_R rows
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)                 # (BLOCK_R,)
    cols = tl.arange(0, BLOCK_D)                                 # (BLOCK_D,)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < D)        # (BLOCK_R, BLOCK_D)
    p_x = t_x + rows[:, None] * x_row_stride + cols[None, :]
    b_x = tl.load(p_x, mask=mask, other=0.0).to(tl.float32)      # padding = 0 adds nothing to sum x^2
    b_w = tl.load(t_w + cols, mask=cols < D, other=0.0).to(tl.float32)   # (BLOCK_D,)
    b_ms = tl.sum(b_x * b_x, axis=1) / D                         # (BLOCK_R,) mean(x^2), in fp32
    b_inv_rms = 1.0 / tl.sqrt(b_ms + eps)                        # 1 / sqrt(mean(x^2) + eps)
    b_y = b_x * b_inv_rms[:, None] * b_w[None, :]                # y = x / rms * w
    p_y = t_y + rows[:, None] * y_row_stride + cols[None, :]
    tl.store(p_y, b_y.to(t_y.dtype.element_ty), mask=mask)


def _launch_config(n_rows: int, D: int) -> dict:
    block_r, block, num_warps = row_block_config(n_rows, D)
    return dict(BLOCK_R=block_r, BLOCK_D=block, num_warps=num_warps)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Same contract as :func:`manifold_course.nn.norms.rms_norm`: x (..., D), weight (D,) -> (..., D)."""
    D = x.shape[-1]
    out_dtype = torch.promote_types(x.dtype, weight.dtype)
    w = torch.broadcast_to(weight, (D,)).contiguous()            # (D,)
    x2 = x.reshape(-1, D)                                        # (rows, D): a view when it can be
    if x2.numel() and x2.stride(-1) != 1:
        x2 = x2.contiguous()
    y2 = torch.empty(x2.shape, dtype=out_dtype, device=x.device)
    if x2.numel():
        cfg = _launch_config(x2.shape[0], D)
        grid = (triton.cdiv(x2.shape[0], cfg["BLOCK_R"]),)
        rms_norm_kernel[grid](x2, w, y2, x2.stride(0), y2.stride(0), x2.shape[0], D, float(eps), **cfg)
    return y2.view(*x.shape[:-1], D)


def torch_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """PyTorch's own RMSNorm (``F.rms_norm``) with this signature: the baseline of the benchmark."""
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


def _make_inputs(size: tuple[int, int], dtype: torch.dtype, device: str) -> tuple:
    gen = torch_generator(0, device)
    x = torch.randn(size, dtype=dtype, device=device, generator=gen)
    w = 1 + 0.1 * torch.randn(size[-1], dtype=dtype, device=device, generator=gen)
    return (x, w, 1e-6)


BENCH = [
    BenchSpec(
        name="rms_norm",
        kernel=rms_norm,
        reference=torch_rms_norm,
        make_inputs=_make_inputs,
        sizes=[(4096, 8192)],
        dtypes=(torch.float16, torch.float32),
        bytes_moved=lambda size, dtype: (2 * size[0] * size[1] + size[1]) * dtype.itemsize,   # x, y once; w
        bound="memory",
    ),
]


if __name__ == "__main__":
    from manifold_course.nn.norms import rms_norm as reference

    device = "cuda" if MODE.gpu else "cpu"
    print(MODE.describe())
    for dtype in (torch.float32, torch.float16):
        x, w, eps = _make_inputs((257, 333), dtype, device)
        torch.testing.assert_close(rms_norm(x, w, eps), reference(x.float(), w.float(), eps).to(dtype))
        print(f"{dtype}: matches manifold_course.nn.norms.rms_norm")
    if MODE.gpu:
        from triton.testing import do_bench

        x, w, eps = _make_inputs((4096, 8192), torch.float16, device)
        for label, fn in (("triton", rms_norm), ("F.rms_norm", torch_rms_norm), ("reference", reference)):
            ms = do_bench(lambda: fn(x, w, eps))
            print(f"(4096, 8192) fp16 {label:>10}: {ms:7.3f} ms  {2 * 2 * x.numel() / ms * 1e-6:7.1f} GB/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures GB/s")
