r"""Fused LayerNorm forward in Triton: one read of x, one write of y.

$y = (x - \mu)/\sqrt{\sigma^2 + \epsilon}\,\gamma + \beta$ with the per-row mean $\mu$ and *biased* variance
$\sigma^2 = \tfrac1D\sum_j (x_j - \mu)^2$ over the last axis (J. L. Ba, J. R. Kiros, G. E. Hinton, "Layer
Normalization", 2016, arXiv:1607.06450); the contract of :func:`manifold_course.nn.norms.layer_norm`
``(x, gamma, beta, eps=1e-5)``, with the result in the promoted dtype of x, gamma and beta.

**Two-pass variance in registers.** The row is already in registers, so the kernel computes $\mu$ first and then
$\frac1D\sum (x-\mu)^2$: no extra memory traffic, and none of the cancellation of the one-pass
$E[x^2] - E[x]^2$, which loses every digit when $|\mu| \gg \sigma$ (try a row of 1000 + noise in fp32).

**Memory traffic.** For an R x D input the reference runs six kernels and moves about
    mean: read RD;  var: read RD;  x - mu: read RD, write RD;  / std: read RD, write RD;
    * gamma: read RD, write RD;  + beta: read RD, write RD
= 10 RD elements; this kernel moves 2 RD (+ 2D for gamma and beta, which stay in L2). Memory-bound, so fusion
is the whole speed-up.

One program normalises ``BLOCK_R`` rows of ``BLOCK_D`` columns (D rounded up to a power of two); the Triton
tutorial ``05-layer-norm.py`` also shows the backward pass.
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
def layer_norm_kernel(
    t_x,                    # pointer to the input, (n_rows, D), last axis contiguous
    t_gamma,                # pointer to the gain gamma, (D,), contiguous
    t_beta,                 # pointer to the shift beta, (D,), contiguous
    t_y,                    # pointer to the output, (n_rows, D), contiguous
    x_row_stride,           # elements between two rows of x
    y_row_stride,           # elements between two rows of y
    n_rows,                 # number of rows
    D,                      # row length (the normalised axis)
    eps,                    # added to the variance before the square root
    BLOCK_R: tl.constexpr,  # rows per program
    BLOCK_D: tl.constexpr,  # columns per program: D rounded up to a power of two
):
    pid = tl.program_id(axis=0)                                  # one program per block of BLOCK_R rows
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)                 # (BLOCK_R,)
    cols = tl.arange(0, BLOCK_D)                                 # (BLOCK_D,)
    col_mask = cols[None, :] < D                                 # (1, BLOCK_D)
    mask = (rows[:, None] < n_rows) & col_mask                   # (BLOCK_R, BLOCK_D)
    p_x = t_x + rows[:, None] * x_row_stride + cols[None, :]
    b_x = tl.load(p_x, mask=mask, other=0.0).to(tl.float32)      # the only read of x
    b_mu = tl.sum(b_x, axis=1) / D                               # (BLOCK_R,) mu = mean_j x_j
    b_xc = tl.where(col_mask, b_x - b_mu[:, None], 0.0)          # x - mu; padding stays 0
    b_var = tl.sum(b_xc * b_xc, axis=1) / D                      # biased variance: divide by D, not D - 1
    b_rstd = 1.0 / tl.sqrt(b_var + eps)                          # 1 / sqrt(var + eps)
    b_gamma = tl.load(t_gamma + cols, mask=cols < D, other=0.0).to(tl.float32)   # (BLOCK_D,)
    b_beta = tl.load(t_beta + cols, mask=cols < D, other=0.0).to(tl.float32)
    b_y = b_xc * b_rstd[:, None] * b_gamma[None, :] + b_beta[None, :]   # y = (x - mu) / std * gamma + beta
    p_y = t_y + rows[:, None] * y_row_stride + cols[None, :]
    tl.store(p_y, b_y.to(t_y.dtype.element_ty), mask=mask)      # the only write of y


def _launch_config(n_rows: int, D: int) -> dict:
    block_r, block, num_warps = row_block_config(n_rows, D)
    return dict(BLOCK_R=block_r, BLOCK_D=block, num_warps=num_warps)


def layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Same contract as :func:`manifold_course.nn.norms.layer_norm`: x (..., D), gamma and beta (D,) -> (..., D)."""
    D = x.shape[-1]
    out_dtype = torch.promote_types(torch.promote_types(x.dtype, gamma.dtype), beta.dtype)
    g = torch.broadcast_to(gamma, (D,)).contiguous()             # (D,)
    b = torch.broadcast_to(beta, (D,)).contiguous()              # (D,)
    x2 = x.reshape(-1, D)                                        # (rows, D): a view when it can be
    if x2.numel() and x2.stride(-1) != 1:
        x2 = x2.contiguous()
    y2 = torch.empty(x2.shape, dtype=out_dtype, device=x.device)
    if x2.numel():
        cfg = _launch_config(x2.shape[0], D)
        grid = (triton.cdiv(x2.shape[0], cfg["BLOCK_R"]),)
        layer_norm_kernel[grid](x2, g, b, y2, x2.stride(0), y2.stride(0), x2.shape[0], D, float(eps), **cfg)
    return y2.view(*x.shape[:-1], D)


def torch_layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """PyTorch's own LayerNorm (``F.layer_norm``) with this signature: the baseline of the benchmark."""
    return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)


def _make_inputs(size: tuple[int, int], dtype: torch.dtype, device: str) -> tuple:
    gen = torch_generator(0, device)
    x = torch.randn(size, dtype=dtype, device=device, generator=gen) * 2 + 1
    gamma = 1 + 0.1 * torch.randn(size[-1], dtype=dtype, device=device, generator=gen)
    beta = 0.1 * torch.randn(size[-1], dtype=dtype, device=device, generator=gen)
    return (x, gamma, beta, 1e-5)


BENCH = [
    BenchSpec(
        name="layer_norm",
        kernel=layer_norm,
        reference=torch_layer_norm,
        make_inputs=_make_inputs,
        sizes=[(4096, 8192)],
        dtypes=(torch.float16, torch.float32),
        bytes_moved=lambda size, dtype: (2 * size[0] * size[1] + 2 * size[1]) * dtype.itemsize,  # x, y; gamma, beta
        bound="memory",
    ),
]


if __name__ == "__main__":
    from manifold_course.nn.norms import layer_norm as reference

    device = "cuda" if MODE.gpu else "cpu"
    print(MODE.describe())
    for dtype in (torch.float32, torch.float16):
        x, g, b, eps = _make_inputs((257, 333), dtype, device)
        torch.testing.assert_close(layer_norm(x, g, b, eps), reference(x.float(), g.float(), b.float(), eps).to(dtype))
        print(f"{dtype}: matches manifold_course.nn.norms.layer_norm")
    if MODE.gpu:
        from triton.testing import do_bench

        x, g, b, eps = _make_inputs((4096, 8192), torch.float16, device)
        for label, fn in (("triton", layer_norm), ("F.layer_norm", torch_layer_norm), ("reference", reference)):
            ms = do_bench(lambda: fn(x, g, b, eps))
            print(f"(4096, 8192) fp16 {label:>12}: {ms:7.3f} ms  {2 * 2 * x.numel() / ms * 1e-6:7.1f} GB/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures GB/s")
