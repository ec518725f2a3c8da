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
# # Volume 6, Chapter 3: Triton, block-level GPU kernels in Python (section 6.5)
#
# **Goals.** By the end you can read and write a Triton kernel: a *grid* of *programs*, each owning one *block* of
# the data; masks for the ragged last block; the fused, numerically stable softmax kernel; the blocked matmul and its
# grouped program order; and the FlashAttention forward pass as the online-softmax identity turned into a kernel.
#
# **Prerequisites.** The GPU memory hierarchy and the roofline (6.1-6.3), CUDA's threads and blocks (6.4), softmax
# and attention (Volume 2), RMSNorm (1.8).
#
# **Time.** About 90 minutes, plus the exercises.
#
# **On a CPU.** There is no GPU here, so `import manifold_course.kernels` sets `TRITON_INTERPRET=1` *before* `triton`
# is imported: the Triton interpreter then runs every program of a kernel, one after another, in numpy. The answers
# are exact (for fp32 and fp16; bf16 is wrong under the interpreter), the speed is not: interpreter cost grows with the
# number of programs and loop steps, so this notebook uses small, odd sizes and large blocks. Timings appear only on a
# GPU.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import manifold_course.kernels  # noqa: F401 - must come before `import triton`: chooses GPU or interpreter mode
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from manifold_course.kernels import MODE
from manifold_course.systems import triton_lessons as L

print(MODE.describe())

# %% [markdown]
# ## 1. Why Triton: programs and blocks
#
# In CUDA you write what **one thread** does, and you manage shared memory, synchronisation and bank conflicts
# yourself. In Triton (P. Tillet, H. T. Kung, D. Cox, MAPL 2019) you write what **one program** does to a **block**
# of data: `tl.arange(0, BLOCK)` is a vector of `BLOCK` indices, `tl.load` reads a whole block, arithmetic is on
# whole blocks, and the compiler splits the block over threads, coalesces the loads and uses shared memory.
#
# A launch `kernel[grid](...)` starts `grid` programs; `tl.program_id(0)` tells a program which one it is. Vector
# addition with `BLOCK = 1024` on $n$ elements needs $\lceil n / 1024 \rceil$ programs (`triton.cdiv`):
#
# ```python
# pid = tl.program_id(0)
# offsets = pid * BLOCK + tl.arange(0, BLOCK)     # this program's element indices
# mask = offsets < n                              # the last block runs past the end
# x = tl.load(x_ptr + offsets, mask=mask)
# tl.store(z_ptr + offsets, x + y, mask=mask)
# ```
#
# The course's kernel library has this kernel (`manifold_course.kernels.triton_vector_add`); on $n = 98\,317$ (not a
# multiple of any block) it matches `torch.add`:

# %%
from manifold_course.kernels.triton_vector_add import add

n = 98_317
x, y = torch.randn(n), torch.randn(n)
torch.testing.assert_close(add(x, y, alpha=0.5), torch.add(x, y, alpha=0.5))
programs_gpu = triton.cdiv(n, 1024)
print(f"n = {n}: {programs_gpu} programs of 1024 on a GPU; the last holds {n - (programs_gpu - 1) * 1024} real elements")
assert programs_gpu == 97 and n - 96 * 1024 == 13

# %% [markdown]
# ## 2. Masks: what happens without one
#
# The 97th program above owns offsets $98\,304 \dots 99\,327$, but only 13 of them exist. Without `mask=`, its load
# reads whatever memory follows the tensor and its store **writes** past the end: on a GPU, silent corruption of
# another tensor or an illegal-address crash. To *see* it safely we place the output inside a larger buffer whose
# guard regions hold a sentinel (`L.guarded`), and count the guard elements that changed.

# %%
@triton.jit
def scale_no_mask(x_ptr, y_ptr, n, alpha, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offsets, tl.load(x_ptr + offsets) * alpha)      # no mask: wrong on purpose


n, BLOCK = 1000, 256
x_view, _ = L.guarded(torch.randn(n))                               # NaN before and after the 1000 values
out, buf = L.guarded(torch.zeros(n), fill=-7.0)                     # the output's guards hold -7
scale_no_mask[(triton.cdiv(n, BLOCK),)](x_view, out, n, 2.0, BLOCK=BLOCK)
escaped = L.outside_view_changed(out, buf, fill=-7.0)
print(f"{triton.cdiv(n, BLOCK)} programs x {BLOCK} = {triton.cdiv(n, BLOCK) * BLOCK} stores for {n} elements: "
      f"{escaped} landed outside the output")
assert escaped == 4 * 256 - 1000 == 24

out2, buf2 = L.guarded(torch.zeros(n), fill=-7.0)
L.vector_scale(x_view, 2.0, out=out2, block=BLOCK)                  # the masked kernel
assert L.outside_view_changed(out2, buf2, fill=-7.0) == 0 and torch.equal(out2, 2.0 * x_view)

# %% [markdown]
# The masked kernel wrote nothing outside its output. This is exactly how the exercises grade your kernels: inputs
# are views into NaN-padded buffers (an unmasked *read* pulls NaN into a row reduction), outputs are surrounded by
# guards (an unmasked *write* changes one).
#
# > **Careful.** Under the interpreter programs run one after another, so a race between programs never shows, and
# > an out-of-bounds access past a small allocation can corrupt the Python process's memory instead of raising a clean
# > error. The guards above are large on purpose.

# %% [markdown]
# ## 3. The softmax kernel, step by step
#
# Stable softmax of a row $x \in \mathbb{R}^C$:
#
# $$\mathrm{softmax}(x)_i = \frac{e^{x_i - \max_j x_j}}{\sum_j e^{x_j - \max_j x_j}} .$$
#
# Subtracting the max cancels mathematically but keeps every exponent $\le 0$: in float32 $e^{x}$ overflows to
# $\infty$ for $x > 88.7$, and $\infty / \infty$ is NaN.

# %%
logits = torch.tensor([[100.0, 99.0, 0.0]])
naive = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
stable = L.row_softmax(logits)
print("naive:", naive, " stable:", stable)
assert torch.isnan(naive).any() and torch.isfinite(stable).all()
assert torch.isinf(torch.exp(torch.tensor(88.8))) and torch.isfinite(torch.exp(torch.tensor(88.7)))   # the fp32 limit

# %% [markdown]
# **The kernel** (one program per row; `BLOCK = next_power_of_2(n_cols)` because `tl.arange` needs a power of two):
#
# 1. `row = tl.program_id(0)`, `cols = tl.arange(0, BLOCK)`, `mask = cols < n_cols`;
# 2. `x = tl.load(x_ptr + row * stride + cols, mask=mask, other=-inf)`: padding lanes hold $-\infty$, never the max,
#    and $e^{-\infty} = 0$ adds nothing to the sum;
# 3. `e = tl.exp(x - tl.max(x, 0))`, `tl.store(y_ptr + ..., e / tl.sum(e, 0), mask=mask)`.
#
# **Why fuse.** As four PyTorch operations (max; subtract and exp; sum; divide) the matrix is read 4 times and written
# twice; the fused kernel reads it once and writes it once. Softmax does a few FLOPs per element, so it is
# memory-bound and the traffic ratio is the ideal speed-up:

# %%
traffic = L.softmax_traffic(4096, 8192)
ratio = traffic["unfused"] / traffic["fused"]
print(f"(4096, 8192): unfused {traffic['unfused'] / 1e6:.1f} M elements, fused {traffic['fused'] / 1e6:.1f} M, ratio {ratio:.4f}")
assert abs(ratio - 3.0) < 1e-3

from manifold_course.kernels.triton_softmax import softmax as lib_softmax

x = torch.randn(123, 781) * 4                                       # 781 columns: BLOCK = 1024
assert L.next_power_of_2(781) == triton.next_power_of_2(781) == 1024
torch.testing.assert_close(lib_softmax(x, -1), torch.softmax(x, -1))
torch.testing.assert_close(L.row_softmax(x), torch.softmax(x, -1))
big = torch.randn(5, 33) * 1000                                     # huge logits
torch.testing.assert_close(lib_softmax(big, -1), torch.softmax(big, -1))
print("library softmax and the one-program-per-row kernel match torch.softmax, huge logits included")

# %% [markdown]
# ## 4. The matmul kernel and the order of programs
#
# A blocked matmul $C = AB$ gives each program one `BLOCK_M x BLOCK_N` tile of $C$; it loops over $K$ in steps of
# `BLOCK_K`, loading a tile of $A$ and a tile of $B$ and accumulating `tl.dot` in fp32. Which tile program `pid`
# computes matters for the **L2 cache**: programs running at the same time that share a tile row of $A$ or a tile
# column of $B$ load it from DRAM once. Row-major order walks one tile row across all columns; **grouped** order walks
# `GROUP_M` tile rows column by column. On a 9 x 9 tile grid with $K$ split in 9 tiles, a wave of 9 programs loads:

# %%
loads_row = L.wave_tile_loads(L.row_major_program_order, 9, 9, 3, wave=9, k_tiles=9)
loads_grp = L.wave_tile_loads(L.grouped_program_order, 9, 9, 3, wave=9, k_tiles=9)
print(f"row-major: {loads_row} tiles, grouped (GROUP_M = 3): {loads_grp} tiles")
assert (loads_row, loads_grp) == (90, 54)

fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
for ax, order, name in ((axes[0], L.row_major_program_order, "row-major"), (axes[1], L.grouped_program_order, "grouped, GROUP_M = 3")):
    grid = torch.zeros(9, 9)
    for pid in range(81):
        grid[order(pid, 9, 9, 3)] = pid
    ax.imshow(grid, cmap="viridis")
    for pid in range(9):
        i, j = order(pid, 9, 9, 3)
        ax.text(j, i, str(pid), ha="center", va="center", color="w", fontsize=8)
    ax.set(title=f"{name}: program id per tile", xlabel="tile column pid_n", ylabel="tile row pid_m")
plt.tight_layout()
plt.show()

# %% [markdown]
# The library kernel `manifold_course.kernels.triton_matmul.matmul` uses the grouped order; under the interpreter it
# matches `torch.matmul` on odd sizes (with 64 x 64 tiles, a (130, 70) x (70, 90) product is 3 x 2 programs of 2 $K$
# steps each).

# %%
from manifold_course.kernels.triton_matmul import matmul

A, B = torch.randn(130, 70), torch.randn(70, 90)
torch.testing.assert_close(matmul(A, B), A @ B, rtol=1e-4, atol=1e-4)
print("triton matmul == torch.matmul on (130, 70) x (70, 90)")


# %% [markdown]
# A slider: how many tiles does the first wave of programs load as `GROUP_M` grows (9 x 9 grid, wave of 9)?

# %%
def show_group(group_m: int = 3) -> None:
    print(f"GROUP_M = {group_m}: {L.wave_tile_loads(L.grouped_program_order, 9, 9, group_m, 9, 9)} tiles "
          f"(row-major: {loads_row})")


try:
    from ipywidgets import interact
    interact(show_group, group_m=(1, 9))
except ImportError:
    show_group()

# %% [markdown]
# ## 5. FlashAttention: the online softmax made into a kernel
#
# Attention needs a softmax over a row of $T$ scores, but a program cannot hold a row of length $T = 32\,768$ in
# registers. The **online softmax** (M. Milakov, N. Gimelshein, 2018, arXiv:1805.02867) visits the row block by block
# with a running max $m$ and running sum $\ell$:
#
# $$m' = \max(m, \max_j b_j), \qquad \ell' = \ell\, e^{m - m'} + \sum_j e^{b_j - m'},$$
#
# and at the end $\mathrm{softmax}(x)_i = e^{x_i - m} / \ell$. We check the identity numerically (float64, blocks of
# 7 over 100 columns):

# %%
x = torch.randn(6, 100, dtype=torch.float64) * 20
err = (L.online_softmax(x, block=7) - torch.softmax(x, -1)).abs().max().item()
print(f"online softmax vs softmax: max error {err:.1e}")
assert err < 1e-12

# %% [markdown]
# FlashAttention (T. Dao, D. Y. Fu, S. Ermon, A. Rudra, C. Ré, 2022, arXiv:2205.14135) carries an output accumulator
# along: when $m$ rises to $m'$ the accumulated $\sum_j e^{s_j - m} v_j$ is rescaled by $e^{m - m'}$, exactly like
# $\ell$. The $T \times T$ score matrix is never written to memory. The library kernel vs
# `F.scaled_dot_product_attention`, with and without the causal mask, on odd sizes:

# %%
from manifold_course.kernels.triton_flash_attention import scaled_dot_product_attention as flash

q, k, v = (torch.randn(1, 2, 37, 16) for _ in range(3))
for causal in (False, True):
    torch.testing.assert_close(flash(q, k, v, is_causal=causal), F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                               rtol=1e-4, atol=1e-5)
print("triton FlashAttention == F.scaled_dot_product_attention (causal and not), T = 37, d = 16")

# %% [markdown]
# ## 6. Manifold lens: the Newton-Schulz msign as a chain of Triton matmuls
#
# Muon's update (Part 2, experiment I4) needs $\mathrm{msign}(M) = UV^\top$, computed by five quintic Newton-Schulz
# steps $X \leftarrow aX + b(XX^\top)X + c(XX^\top)^2X$: nothing but matmuls, so a GPU runs it as a chain of matmul
# kernels. With the Triton matmul in place of `@` (under the interpreter) the result equals the PyTorch one:

# %%
from manifold_course.optim.msign import QUINTIC, msign_newton_schulz

M = torch.randn(24, 40)
a, b, c = QUINTIC
X = M / M.norm()
for _ in range(5):
    Agram = matmul(X, X.T.contiguous())
    X = a * X + matmul(b * Agram + c * matmul(Agram, Agram), X)
ref = msign_newton_schulz(M, steps=5)
sv = torch.linalg.svdvals(X)
print(f"max |triton - torch| = {(X - ref).abs().max():.1e}; singular values in [{sv.min():.2f}, {sv.max():.2f}]")
assert (X - ref).abs().max() < 1e-4 and 0.6 < sv.min() and sv.max() < 1.25

# %% [markdown]
# ## 7. Performance: measured only on a GPU
#
# `manifold-course bench` (`manifold_course.systems.bench`) times every library kernel against PyTorch on the same
# GPU and reports GB/s (memory-bound kernels) or TFLOP/s (matmul, attention) and the ratio to PyTorch.

# %%
if torch.cuda.is_available():
    from manifold_course.systems import bench

    specs, _ = bench.discover_specs()
    specs = [s for s in specs if s.name in ("vector_add", "softmax")]
    rows = bench.run_benchmarks(specs, bench.default_timer(), peak=bench.peak_for(torch.cuda.get_device_name(0)))
    print(bench.format_table(rows, torch.cuda.get_device_name(0)))
else:
    print("No GPU on this machine: the Triton kernels ran under the interpreter, which says nothing about speed. "
          "The performance targets (GB/s, TFLOP/s, ratio to PyTorch) are unmeasured here; run `manifold-course bench` "
          "on a GPU to measure them.")

# %% [markdown]
# > **Careful.** "Triton rivals hand-written CUDA." For common kernels (elementwise, softmax, layer norms, matmul,
# > attention) Triton often comes close to vendor libraries, but it is not guaranteed: cuBLAS, FlashAttention-3 and
# > hand-tuned CUDA use hardware features (warp specialisation, TMA pipelines, special layouts) that a given Triton
# > version may not reach, and results differ per GPU, dtype and shape. Measure on your device.

# %% [markdown]
# ## Summary
#
# - A Triton kernel is a **program** per block; `tl.program_id` picks the block, `tl.arange` makes the offsets.
# - **Masks** stop the last block at the end: without them a kernel writes past its output (24 stray stores above).
# - **Fused softmax**: one read, one write (3x less traffic than four PyTorch ops), stable by subtracting the max.
# - **Matmul**: grouped program order cuts a wave's tile loads from 90 to 54 on a 9 x 9 grid.
# - **FlashAttention** = the online-softmax recurrence (checked to $10^{-12}$) plus a rescaled value accumulator.
#
# **Exercises:** `exercises/v6_systems/03_triton.ipynb` (copied to your `my_work/` by `manifold-course lab`): the block
# width, the online-softmax step, grouped program order, and three Triton kernels of your own (scale, row softmax,
# RMSNorm) graded under the interpreter with NaN guard regions.
#
# **Further reading.**
# - P. Tillet, H. T. Kung, D. Cox, "Triton: an intermediate language and compiler for tiled neural network
#   computations", MAPL 2019 (doi:10.1145/3315508.3329973); the Triton tutorials 01-03 and 06.
# - M. Milakov, N. Gimelshein, "Online normalizer calculation for softmax", 2018, arXiv:1805.02867.
# - T. Dao et al., "FlashAttention: fast and memory-efficient exact attention with IO-awareness", 2022,
#   arXiv:2205.14135; T. Dao, "FlashAttention-2", 2023, arXiv:2307.08691.
