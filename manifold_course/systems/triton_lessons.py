r"""Small lessons of the Triton chapter (Volume 6, section 6.5): the identities behind the kernels, and reference kernels.

Pure helpers (plain Python / torch):

- :func:`next_power_of_2`: the block width of a row kernel, $\mathrm{BLOCK} = 2^{\lceil \log_2 n \rceil}$.
- :func:`online_softmax_update`: one step of the online softmax (M. Milakov, N. Gimelshein, "Online normalizer
  calculation for softmax", 2018, arXiv:1805.02867). With a running maximum $m$ and a running sum
  $\ell = \sum_{j\ \text{seen}} e^{x_j - m}$, a new block $b$ updates them as
  $$m' = \max(m, \max_j b_j), \qquad \ell' = \ell\, e^{m - m'} + \sum_j e^{b_j - m'} .$$
  After the last block, $\mathrm{softmax}(x)_i = e^{x_i - m}/\ell$: FlashAttention's forward pass (T. Dao et al.,
  2022, arXiv:2205.14135) is this recurrence with the value rows carried along.
- :func:`row_major_program_order`, :func:`grouped_program_order`, :func:`wave_tile_loads`: which output tile of a
  blocked matmul each program computes, and how many input tiles a wave of concurrent programs loads (the
  "grouped ordering" of the Triton matmul tutorial, which improves L2 reuse).
- :func:`softmax_traffic`: elements moved by an unfused softmax (four PyTorch operations) and by the fused kernel.

Reference kernels (Triton; under ``TRITON_INTERPRET=1`` on a CPU), each with a launcher that writes into ``out``
when given one (``torch``'s ``out=`` convention), so that a grader can surround ``out`` with guard regions:
:func:`vector_scale`, :func:`row_softmax`, :func:`rms_norm`.

Reference: P. Tillet, H. T. Kung, D. Cox, "Triton: an intermediate language and compiler for tiled neural network
computations", MAPL 2019 (doi:10.1145/3315508.3329973).
"""

from __future__ import annotations

import math
from typing import Callable

from manifold_course.kernels import MODE  # noqa: F401 - chooses GPU or interpreter mode before triton is imported

import torch
import triton
import triton.language as tl

# ---------------------------------------------------------------- pure lessons


def next_power_of_2(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1): ``tl.arange`` needs a power-of-two length."""
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def online_softmax_update(m: torch.Tensor, l: torch.Tensor, block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One online-softmax step. m, l: (R,) running max and sum (start at -inf and 0); block: (R, B) -> (m', l')."""
    m_new = torch.maximum(m, block.max(dim=-1).values)                      # (R,)
    scale = torch.where(torch.isinf(m) & (m < 0), torch.zeros_like(m), torch.exp(m - m_new))   # e^{-inf} = 0, no nan
    l_new = l * scale + torch.exp(block - m_new[:, None]).sum(dim=-1)       # (R,)
    return m_new, l_new


def online_softmax(x: torch.Tensor, block: int) -> torch.Tensor:
    """Row softmax of x (R, C) computed by visiting the columns in blocks of ``block`` (one pass for m and l)."""
    m = torch.full(x.shape[:1], -math.inf, dtype=x.dtype)
    l = torch.zeros(x.shape[:1], dtype=x.dtype)
    for start in range(0, x.shape[1], block):
        m, l = online_softmax_update(m, l, x[:, start:start + block])
    return torch.exp(x - m[:, None]) / l[:, None]


def row_major_program_order(pid: int, num_pid_m: int, num_pid_n: int, group_m: int = 1) -> tuple[int, int]:
    """Program ``pid`` -> output tile (pid_m, pid_n), row by row (``group_m`` is ignored)."""
    return pid // num_pid_n, pid % num_pid_n


def grouped_program_order(pid: int, num_pid_m: int, num_pid_n: int, group_m: int) -> tuple[int, int]:
    """Program ``pid`` -> (pid_m, pid_n) in groups of ``group_m`` tile rows, column by column inside a group
    (the Triton matmul tutorial); the last group is shorter when group_m does not divide num_pid_m."""
    num_pid_in_group = group_m * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * group_m
    group_size_m = min(num_pid_m - first_pid_m, group_m)
    pid_m = first_pid_m + (pid % num_pid_in_group) % group_size_m
    pid_n = (pid % num_pid_in_group) // group_size_m
    return pid_m, pid_n


def wave_tile_loads(order: Callable[..., tuple[int, int]], num_pid_m: int, num_pid_n: int, group_m: int,
                    wave: int, k_tiles: int) -> int:
    """Input tiles a wave of the first ``wave`` programs loads, when every tile row of A and tile column of B they
    need is loaded once (an ideal L2): (distinct A tile rows + distinct B tile columns) * k_tiles."""
    tiles = [order(pid, num_pid_m, num_pid_n, group_m) for pid in range(wave)]
    return (len({t[0] for t in tiles}) + len({t[1] for t in tiles})) * k_tiles


def softmax_traffic(n_rows: int, n_cols: int) -> dict[str, int]:
    """Elements read + written by softmax on an (R, C) matrix: 'unfused' (max; sub+exp; sum; divide as four
    PyTorch kernels) and 'fused' (one read of x, one write of y)."""
    R, C = n_rows, n_cols
    reads = C * R + (C * R + R) + C * R + (C * R + R)        # max, sub+exp, sum, divide
    writes = R + C * R + R + C * R
    return {"unfused": reads + writes, "fused": 2 * R * C}


# ---------------------------------------------------------------- reference kernels of the exercises


@triton.jit
def _scale_kernel(t_x, t_y, n, alpha, BLOCK: tl.constexpr):
    pid = tl.program_id(axis=0)                           # which block this program owns
    offsets = pid * BLOCK + tl.arange(0, BLOCK)           # (BLOCK,)
    mask = offsets < n                                    # the last block runs past the end
    b_x = tl.load(t_x + offsets, mask=mask, other=0.0)
    tl.store(t_y + offsets, b_x * alpha, mask=mask)


def vector_scale(x: torch.Tensor, alpha: float, out: torch.Tensor | None = None, block: int = 1024) -> torch.Tensor:
    """y = alpha * x for a 1-D contiguous float32 tensor, written into ``out`` (allocated when None)."""
    y = torch.empty_like(x) if out is None else out
    n = x.numel()
    if n:
        _scale_kernel[(triton.cdiv(n, block),)](x, y, n, float(alpha), BLOCK=block)
    return y


@triton.jit
def _row_softmax_kernel(t_x, t_y, x_row_stride, y_row_stride, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(axis=0)                           # one program per row
    cols = tl.arange(0, BLOCK)                            # (BLOCK,)
    mask = cols < n_cols
    b_x = tl.load(t_x + row * x_row_stride + cols, mask=mask, other=-float("inf"))
    b_e = tl.exp(b_x - tl.max(b_x, axis=0))               # padding: e^{-inf} = 0
    tl.store(t_y + row * y_row_stride + cols, b_e / tl.sum(b_e, axis=0), mask=mask)


def row_softmax(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """torch.softmax(x, -1) for a 2-D float32 x whose rows are contiguous (any row stride)."""
    y = torch.empty_like(x) if out is None else out
    n_rows, n_cols = x.shape
    if x.numel():
        _row_softmax_kernel[(n_rows,)](x, y, x.stride(0), y.stride(0), n_cols, BLOCK=next_power_of_2(n_cols))
    return y


@triton.jit
def _rms_norm_kernel(t_x, t_w, t_y, x_row_stride, y_row_stride, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(axis=0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    b_x = tl.load(t_x + row * x_row_stride + cols, mask=mask, other=0.0)   # padding adds 0 to the sum of squares
    b_w = tl.load(t_w + cols, mask=mask, other=0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(b_x * b_x, axis=0) / n_cols + eps)
    tl.store(t_y + row * y_row_stride + cols, b_x * rstd * b_w, mask=mask)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, out: torch.Tensor | None = None) -> torch.Tensor:
    """y = x / sqrt(mean(x^2) + eps) * weight over the last axis of a 2-D float32 x (rows contiguous)."""
    y = torch.empty_like(x) if out is None else out
    n_rows, n_cols = x.shape
    if x.numel():
        _rms_norm_kernel[(n_rows,)](x, weight, y, x.stride(0), y.stride(0), n_cols, float(eps),
                                    BLOCK=next_power_of_2(n_cols))
    return y


# ---------------------------------------------------------------- guarded buffers (how the checks catch a missing mask)


def guarded(values: torch.Tensor, guard: int = 4096, row_pad: int = 0, fill: float = math.nan
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``values`` (1-D, or 2-D with ``row_pad`` extra columns per row) living inside a larger buffer filled
    with ``fill`` (NaN): ``guard`` elements before and after. Returns (view, buffer). An unmasked read past the end of
    a row pulls NaN in; an unmasked write past the end changes the guard."""
    if values.dim() == 1:
        n = values.numel()
        buf = torch.full((guard + n + guard,), fill, dtype=values.dtype)
        view = buf[guard:guard + n]
    else:
        R, C = values.shape
        S = C + row_pad                                        # row stride
        buf = torch.full((guard + R * S + guard,), fill, dtype=values.dtype)
        view = buf[guard:guard + R * S].view(R, S)[:, :C]
    view.copy_(values)
    return view, buf


def outside_view_changed(view: torch.Tensor, buf: torch.Tensor, fill: float = math.nan) -> int:
    """How many elements of ``buf`` outside ``view`` no longer hold ``fill`` (0 when no write escaped the view)."""
    inside = torch.zeros(buf.shape, dtype=torch.bool)
    base = view.storage_offset() - buf.storage_offset()
    R, C = (1, view.numel()) if view.dim() == 1 else view.shape
    S = view.numel() if view.dim() == 1 else view.stride(0)
    idx = base + (torch.arange(R)[:, None] * S + torch.arange(C)[None, :]).reshape(-1)
    inside[idx] = True
    rest = buf[~inside]
    ok = torch.isnan(rest) if math.isnan(fill) else rest == fill
    return int((~ok).sum())
