# Plausible wrong answers to the exercises of chapter v6_systems/03_triton: each must be rejected by its check.
import math

from manifold_course.kernels import MODE  # noqa: F401 - interpreter mode on a CPU, before triton is imported

import torch
import triton
import triton.language as tl


def np2_shift_bit_length(n):
    return 1 << int(n).bit_length()          # doubles exact powers of two: 64 -> 128


def np2_float_log(n):
    return 2.0 ** math.ceil(math.log2(n))    # a float, not an int


def online_no_rescale(m, l, block):
    m_new = torch.maximum(m, block.max(-1).values)
    return m_new, l + torch.exp(block - m_new[:, None]).sum(-1)      # forgot l * e^{m - m'}


def online_unstable(m, l, block):
    m_new = torch.maximum(m, block.max(-1).values)
    return m_new, (l * torch.exp(m) + torch.exp(block).sum(-1)) * torch.exp(-m_new)   # e^100 overflows


def order_ignores_short_last_group(pid, num_pid_m, num_pid_n, group_m):
    group_id = pid // (group_m * num_pid_n)
    return group_id * group_m + pid % group_m, (pid % (group_m * num_pid_n)) // group_m


def order_row_major(pid, num_pid_m, num_pid_n, group_m):
    return pid // num_pid_n, pid % num_pid_n


@triton.jit
def _scale_nomask(t_x, t_y, n, alpha, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(t_y + offsets, tl.load(t_x + offsets) * alpha)             # no mask: the last block runs past the end


def scale_without_mask(x, alpha, out=None):
    y = torch.empty_like(x) if out is None else out
    _scale_nomask[(triton.cdiv(x.numel(), 256),)](x, y, x.numel(), float(alpha), BLOCK=256)
    return y


@triton.jit
def _scale_mask_load_only(t_x, t_y, n, alpha, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(t_y + offsets, tl.load(t_x + offsets, mask=offsets < n, other=0.0) * alpha)   # store not masked


def scale_store_unmasked(x, alpha, out=None):
    y = torch.empty_like(x) if out is None else out
    _scale_mask_load_only[(triton.cdiv(x.numel(), 512),)](x, y, x.numel(), float(alpha), BLOCK=512)
    return y


@triton.jit
def _softmax_variants(t_x, t_y, xs, ys, n_cols, BLOCK: tl.constexpr, MASK: tl.constexpr, SUB_MAX: tl.constexpr,
                      OTHER_ZERO: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    if MASK:
        if OTHER_ZERO:
            b_x = tl.load(t_x + row * xs + cols, mask=mask, other=0.0)
        else:
            b_x = tl.load(t_x + row * xs + cols, mask=mask, other=-float("inf"))
    else:
        b_x = tl.load(t_x + row * xs + cols)
    if SUB_MAX:
        b_x = b_x - tl.max(b_x, axis=0)
    b_e = tl.exp(b_x)
    tl.store(t_y + row * ys + cols, b_e / tl.sum(b_e, axis=0), mask=mask)


def _softmax_launcher(mask, sub_max, other_zero):
    def row_softmax(x, out=None):
        y = torch.empty_like(x) if out is None else out
        _softmax_variants[(x.shape[0],)](x, y, x.stride(0), y.stride(0), x.shape[1],
                                         BLOCK=triton.next_power_of_2(x.shape[1]), MASK=mask, SUB_MAX=sub_max,
                                         OTHER_ZERO=other_zero)
        return y
    return row_softmax


softmax_without_max = _softmax_launcher(True, False, False)
softmax_without_max.__name__ = "softmax_without_max"
softmax_without_mask = _softmax_launcher(False, True, False)
softmax_without_mask.__name__ = "softmax_without_mask"
softmax_pad_with_zero = _softmax_launcher(True, True, True)
softmax_pad_with_zero.__name__ = "softmax_pad_with_zero"


def softmax_assumes_contiguous(x, out=None):
    y = torch.empty_like(x) if out is None else out
    _softmax_variants[(x.shape[0],)](x, y, x.shape[1], x.shape[1], x.shape[1], BLOCK=triton.next_power_of_2(x.shape[1]),
                                     MASK=True, SUB_MAX=True, OTHER_ZERO=False)   # row stride = n_cols: wrong for views
    return y


@triton.jit
def _rms_mean_over_block(t_x, t_w, t_y, xs, ys, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    b_x = tl.load(t_x + row * xs + cols, mask=mask, other=0.0)
    b_w = tl.load(t_w + cols, mask=mask, other=0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(b_x * b_x, axis=0) / BLOCK + eps)       # divides by BLOCK, not n_cols
    tl.store(t_y + row * ys + cols, b_x * rstd * b_w, mask=mask)


def rms_mean_over_block(x, weight, eps=1e-6, out=None):
    y = torch.empty_like(x) if out is None else out
    _rms_mean_over_block[(x.shape[0],)](x, weight, y, x.stride(0), y.stride(0), x.shape[1], float(eps),
                                        BLOCK=triton.next_power_of_2(x.shape[1]))
    return y


@triton.jit
def _rms_nomask(t_x, t_w, t_y, xs, ys, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    b_x = tl.load(t_x + row * xs + cols)                                 # reads the NaN padding
    b_w = tl.load(t_w + cols)
    rstd = 1.0 / tl.sqrt(tl.sum(b_x * b_x, axis=0) / n_cols + eps)
    tl.store(t_y + row * ys + cols, b_x * rstd * b_w, mask=cols < n_cols)


def rms_without_mask(x, weight, eps=1e-6, out=None):
    y = torch.empty_like(x) if out is None else out
    _rms_nomask[(x.shape[0],)](x, weight, y, x.stride(0), y.stride(0), x.shape[1], float(eps),
                               BLOCK=triton.next_power_of_2(x.shape[1]))
    return y


def rms_eps_outside(x, weight, eps=1e-6, out=None):
    y = x / (torch.sqrt((x * x).mean(-1, keepdim=True)) + eps) * weight
    if out is not None:
        out.copy_(y)
        return out
    return y


WRONG = {
    "triton.next_power_of_2": [np2_shift_bit_length, np2_float_log],
    "triton.online_softmax_update": [online_no_rescale, online_unstable],
    "triton.grouped_program_order": [order_ignores_short_last_group, order_row_major],
    "triton.vector_scale": [scale_without_mask, scale_store_unmasked],
    "triton.row_softmax": [softmax_without_max, softmax_without_mask, softmax_pad_with_zero, softmax_assumes_contiguous],
    "triton.rms_norm": [rms_mean_over_block, rms_without_mask, rms_eps_outside],
}
