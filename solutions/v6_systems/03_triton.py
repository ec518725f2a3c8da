# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Volume 6, Chapter 3 exercises: Triton kernels (section 6.5)
#
# Six exercises: three pure warm-ups (the block width, one step of the online softmax, the grouped program order of
# a blocked matmul) and three **Triton kernels** that you write and the grader runs under the Triton interpreter
# (`TRITON_INTERPRET=1`, chosen automatically on a machine without a GPU).
#
# How the kernel checks catch a missing mask: every input is a view into a larger buffer filled with NaN (guard
# regions before and after, and padding columns between rows), and the check also calls your launcher with `out=` a
# view surrounded by guard regions. A load without a mask pulls NaN into your answer; a store without a mask changes a
# guard region. Sizes are not multiples of the block.
#
# The lecture is `chapters/v6_systems/03_triton.ipynb`. Write your own code rather than importing the course's
# reference implementations. Keep `import manifold_course.kernels` **before** `import triton`.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import manifold_course.kernels  # noqa: F401 - sets TRITON_INTERPRET=1 on a CPU, before triton is imported
import torch
import triton
import triton.language as tl

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: the block width (warm-up)
#
# `next_power_of_2(n) -> int`: the smallest power of two $\ge n$ (and 1 for $n = 1$). `tl.arange(0, BLOCK)` needs a
# power-of-two length, so a row of `n_cols` values is held in a block of `next_power_of_2(n_cols)` lanes, the extra
# lanes masked off. **Checked:** a Python `int`, equal to the reference for $n = 1, 2, 3, 5, 64, 65, 781, 4097$ and
# random $n$ (do not use `triton.next_power_of_2`).

# %%
def next_power_of_2(n):
    ### BEGIN SOLUTION
    # Hint: (n - 1).bit_length() is the number of bits of n - 1.
    p = 1
    while p < n:
        p *= 2
    return p
    ### END SOLUTION


# %%
check("triton.next_power_of_2", next_power_of_2)

# %% [markdown]
# ## Exercise 2: one step of the online softmax
#
# `online_softmax_update(m, l, block) -> (m_new, l_new)` with `m`, `l` of shape `(R,)` (the running maximum and the
# running sum $\ell = \sum_{\text{seen}} e^{x_j - m}$; they start at $-\infty$ and $0$) and `block` of shape `(R, B)`:
#
# $$m' = \max(m, \max_j b_j), \qquad \ell' = \ell\, e^{m - m'} + \sum_j e^{b_j - m'} .$$
#
# **Checked:** to `rtol=1e-5` on a first block ($m = -\infty$: no NaN), later blocks, a block that raises the max,
# and logits near 100 (never exponentiate a number above 0).

# %%
def online_softmax_update(m, l, block):
    ### BEGIN SOLUTION
    m_new = torch.maximum(m, block.max(dim=-1).values)
    alpha = torch.exp(m - m_new)                       # exp(-inf - finite) = 0: the first block is fine
    return m_new, l * alpha + torch.exp(block - m_new[:, None]).sum(dim=-1)
    ### END SOLUTION


# %%
check("triton.online_softmax_update", online_softmax_update)

# %% [markdown]
# ## Exercise 3: grouped program order
#
# `grouped_program_order(pid, num_pid_m, num_pid_n, group_m) -> (pid_m, pid_n)`: which output tile program `pid`
# computes when programs are laid out in groups of `group_m` tile rows, walking down the rows of a group before moving
# to the next column (the Triton matmul tutorial). The last group has only `num_pid_m - first_pid_m` rows when
# `group_m` does not divide `num_pid_m`. **Checked:** exact ints on grids 9x9, 4x6, 5x3, 7x4, 3x5, 6x6, and that
# every tile is computed exactly once.

# %%
def grouped_program_order(pid, num_pid_m, num_pid_n, group_m):
    ### BEGIN SOLUTION
    per_group = group_m * num_pid_n
    first = (pid // per_group) * group_m
    size = min(num_pid_m - first, group_m)
    local = pid % per_group
    return first + local % size, local // size
    ### END SOLUTION


# %%
check("triton.grouped_program_order", grouped_program_order)

# %% [markdown]
# ## Exercise 4: a masked kernel, y = alpha x
#
# Write a Triton kernel and its launcher `vector_scale(x, alpha, out=None) -> Tensor` for a 1-D float32 `x`: one
# program per block of `BLOCK` elements, offsets `pid * BLOCK + tl.arange(0, BLOCK)`, a mask `offsets < n` on the load
# **and** the store. Write into `out` when given (and return it), otherwise into a new `torch.empty_like(x)`.
# **Checked:** values for $n = 16384, 4096$ without `out`, then $n = 1000, 1, 4097, 777$ with a guarded `out`: a
# store without a mask is caught.

# %%
@triton.jit
def scale_kernel(x_ptr, y_ptr, n, alpha, BLOCK: tl.constexpr):
    ### BEGIN SOLUTION
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(y_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) * alpha, mask=mask)
    ### END SOLUTION


def vector_scale(x, alpha, out=None):
    ### BEGIN SOLUTION
    # Hint: grid = (triton.cdiv(n, BLOCK),); a large BLOCK (1024 or more) keeps the interpreter fast.
    y = torch.empty_like(x) if out is None else out
    BLOCK = 1024
    scale_kernel[(triton.cdiv(x.numel(), BLOCK),)](x, y, x.numel(), alpha, BLOCK=BLOCK)
    return y
    ### END SOLUTION


# %%
check("triton.vector_scale", vector_scale)

# %% [markdown]
# ## Exercise 5: row softmax
#
# `row_softmax(x, out=None) -> Tensor` for a 2-D float32 `x` whose rows are contiguous but may be **padded** (row
# stride `x.stride(0)` larger than the number of columns): one program per row, `BLOCK = next_power_of_2(n_cols)`,
# a masked load with `other=-float("inf")`, subtract the row max, exponentiate, divide by the sum, masked store at
# `out.stride(0)`. **Checked:** against `torch.softmax(x, -1)` to `rtol=1e-5` on padded inputs, one column, 33 and 100
# columns, huge logits (std 1000) and logits near $-10^4$.

# %%
@triton.jit
def softmax_kernel(x_ptr, y_ptr, x_row_stride, y_row_stride, n_cols, BLOCK: tl.constexpr):
    ### BEGIN SOLUTION
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    z = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=-float("inf"))
    e = tl.exp(z - tl.max(z, axis=0))
    tl.store(y_ptr + row * y_row_stride + cols, e / tl.sum(e, axis=0), mask=mask)
    ### END SOLUTION


def row_softmax(x, out=None):
    ### BEGIN SOLUTION
    y = torch.empty_like(x) if out is None else out
    n_rows, n_cols = x.shape
    softmax_kernel[(n_rows,)](x, y, x.stride(0), y.stride(0), n_cols, BLOCK=triton.next_power_of_2(n_cols))
    return y
    ### END SOLUTION


# %%
check("triton.row_softmax", row_softmax)

# %% [markdown]
# ## Exercise 6: RMSNorm
#
# `rms_norm(x, weight, eps=1e-6, out=None) -> Tensor` for a 2-D float32 `x` (rows possibly padded) and `weight` of
# shape `(n_cols,)`: $y = x / \sqrt{\frac{1}{C}\sum_j x_j^2 + \epsilon} \odot w$, one program per row. Padding lanes
# must add 0 to the sum of squares, and the mean divides by `n_cols`, not `BLOCK`. **Checked:** against the formula to
# `rtol=1e-5` on padded inputs, one column, 37 columns, and tiny inputs where $\epsilon$ matters.

# %%
@triton.jit
def rms_kernel(x_ptr, w_ptr, y_ptr, x_row_stride, y_row_stride, n_cols, eps, BLOCK: tl.constexpr):
    ### BEGIN SOLUTION
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    z = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=0.0)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    inv = 1.0 / tl.sqrt(tl.sum(z * z, axis=0) / n_cols + eps)
    tl.store(y_ptr + row * y_row_stride + cols, z * inv * w, mask=mask)
    ### END SOLUTION


def rms_norm(x, weight, eps=1e-6, out=None):
    ### BEGIN SOLUTION
    y = torch.empty_like(x) if out is None else out
    n_rows, n_cols = x.shape
    rms_kernel[(n_rows,)](x, weight, y, x.stride(0), y.stride(0), n_cols, eps, BLOCK=triton.next_power_of_2(n_cols))
    return y
    ### END SOLUTION


# %%
check("triton.rms_norm", rms_norm)
