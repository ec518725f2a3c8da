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
# # Volume 6, Chapter 2: Writing your first CUDA kernel (section 6.4)
#
# Chapter 1 explained how a GPU executes threads. This chapter writes the programs: *kernels*, functions that
# thousands of threads run at once, each on its own piece of the data. We write them in Python with Numba's
# `@cuda.jit` (Lam, Pitrou & Seibert, LLVM-HPC 2015), which compiles to the same PTX as CUDA C, and read the CUDA C
# versions and the PTX that `nvcc` generates. On a machine without a GPU the kernels run under Numba's **CUDA
# simulator**, which executes every thread as a Python thread: results are exact, timings are meaningless, and
# launches must stay at about a thousand threads.
#
# | part | question | what you will check |
# |---|---|---|
# | 1 | which element does a thread own? | global ids; the launch arithmetic $\lceil n/t\rceil$; grid-stride loops |
# | 2 | what happens past the end? | a launch with more threads than elements, with and without a bounds check |
# | 3 | 2-D launches | the matrix addition of the course outline |
# | 4 | how do threads cooperate? | shared memory, `cuda.syncthreads`, a block reduction; the tiled matmul and its global loads |
# | 5 | why does the access pattern matter? | memory transactions of a warp, stride 1 vs stride 32 |
# | 6 | what does the GPU actually run? | the CUDA C kernels and their PTX (`ld.global`, `st.global`, `bar.sync`) |
#
# **Goals.** After this chapter you can
# - compute a thread's global index in 1-D and 2-D launches and the number of blocks for $n$ elements;
# - write a Numba-CUDA kernel with a bounds check and a grid-stride loop, and launch it from the host;
# - use shared memory and `cuda.syncthreads()` for a block reduction and a tiled matmul, and count the global loads
#   tiling saves;
# - predict the memory transactions of a warp's access pattern (coalescing);
# - read the PTX of a CUDA C kernel.
#
# **Prerequisites.** Chapter 1 of this volume (SIMT, warps, the roofline); NumPy.
#
# **Time.** About 1 hour of reading and running, plus 2 hours for the exercises. The notebook runs in about 20 s
# on a 2-core CPU.
#
# **Symbols.** $n$ number of elements; $t$ threads per block (`blockDim`); $b$ block index (`blockIdx`); $M, N, K$
# matmul sizes, $A$ of shape $(M, K)$, $B$ of shape $(K, N)$; $T$ the tile side.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import manifold_course.kernels  # noqa: F401  (before numba.cuda: selects the CUDA simulator on a CPU)
import matplotlib.pyplot as plt
import numpy as np
import torch
from numba import cuda

from manifold_course.kernels import MODE
from manifold_course.systems import cuda_basics as cb
from manifold_course.systems import simt

print(MODE.describe())

# %% [markdown]
# ## 1. Threads, blocks, grids
#
# A launch `kernel[blocks, threads](...)` starts a **grid** of `blocks` **blocks** of `threads` **threads**. Inside
# the kernel, `cuda.threadIdx.x` is the thread's index in its block, `cuda.blockIdx.x` the block's index in the grid
# and `cuda.blockDim.x` the block size, so
#
# $$i = \text{blockIdx.x}\cdot\text{blockDim.x} + \text{threadIdx.x}\qquad(\texttt{cuda.grid(1)})$$
#
# numbers the threads $0 \dots$ `blocks * threads - 1`. To give one thread to each of $n$ elements with $t$ threads
# per block we need $\lceil n/t\rceil = (n + t - 1)//t$ blocks: the seed's $n = 100\,000$ with 256 threads per block
# takes 391 blocks, and the last one has $391\cdot256 - 100\,000 = 96$ threads with nothing to do.

# %%
blocks, threads = cb.launch_config(100_000, 256)
idle = blocks * threads - 100_000
ids = simt.global_ids(3, 8)                 # 3 blocks of 8 threads: row b = block b
print(f"n = 100 000, 256 threads/block: {blocks} blocks, {idle} idle threads in the last one")
print(ids)
assert (blocks, idle) == (391, 96)
assert np.array_equal(ids.ravel(), np.arange(24))

# %% [markdown]
# **Grid-stride loops.** A grid need not match $n$. With $G$ = `cuda.gridsize(1)` threads in the grid, thread $i$
# handles elements $i, i+G, i+2G, \dots$ below $n$: a fixed grid (say a few blocks per SM) covers any size, and
# neighbouring threads still touch neighbouring addresses at every step. Below, 2 blocks of 32 threads scale 200
# elements: each thread handles 3 or 4 of them.

# %%
x = rng.standard_normal(200).astype(np.float32)
y = cb.scale_grid_stride(x, 2.5, blocks=2, threads=32)
owner = cb.grid_stride_owner(200, 2, 32)
per_thread = np.bincount(owner)
print(f"elements per thread: min {per_thread.min()}, max {per_thread.max()}")
assert np.allclose(y, 2.5 * x) and (per_thread.min(), per_thread.max()) == (3, 4)

# %% [markdown]
# ## 2. The vector-add kernel and its bounds check
#
# The seed kernel, in Numba (`manifold_course.systems.cuda_basics.add_kernel`):
#
# ```python
# @cuda.jit
# def add_kernel(a, b, out):
#     i = cuda.grid(1)            # blockIdx.x * blockDim.x + threadIdx.x
#     if i < out.shape[0]:        # the last block overhangs the array
#         out[i] = a[i] + b[i]
# ```
#
# The host side copies the inputs to the device (`cuda.to_device`), allocates the output
# (`cuda.device_array_like`), launches, and copies back (`copy_to_host`). Those two PCIe transfers cost far more than
# the addition itself on a real GPU: keep data on the device between kernels. We launch on $n = 1000$ with 256
# threads per block: 4 blocks, 1024 threads, 24 past the end. Then the same kernel *without* the `if`: under the
# simulator the extra threads raise `IndexError`; on a GPU they would write into whatever memory follows the
# array, silently or with an "illegal memory access" much later.

# %%
a, b = (rng.standard_normal(1000).astype(np.float32) for _ in range(2))
blocks, threads = cb.launch_config(1000, 256)
out = cb.vector_add(a, b, blocks, threads)
assert np.array_equal(out, a + b) and blocks * threads - 1000 == 24


@cuda.jit
def add_no_bounds(a, b, out):
    i = cuda.grid(1)
    out[i] = a[i] + b[i]                    # no `if i < n`


a_small, b_small = a[:40], b[:40]
try:
    d_out = cuda.device_array_like(a_small)
    add_no_bounds[2, 32](cuda.to_device(a_small), cuda.to_device(b_small), d_out)   # 64 threads, 40 elements
    caught = None
except IndexError as e:
    caught = e
print("without the bounds check:", type(caught).__name__ if caught else "no error")
if MODE.gpu:
    print("(on a GPU there is no IndexError: the out-of-bounds threads silently touch other memory)")
else:
    assert isinstance(caught, IndexError)

# %% [markdown]
# The library version, `manifold_course.kernels.numba_vector_add.vector_add`, takes torch tensors (copying CPU
# tensors to the device, or wrapping CUDA tensors without a copy) and matches `torch.add`:

# %%
from manifold_course.kernels.numba_vector_add import vector_add as numba_vector_add

xt, yt = torch.randn(777), torch.randn(777)      # 777: not a multiple of 256
torch.testing.assert_close(numba_vector_add(xt, yt, alpha=0.5), torch.add(xt, yt, alpha=0.5))

# %% [markdown]
# > **Careful.** A block is not "a GPU core" and a thread is not "a CUDA core". The hardware schedules **blocks onto
# > SMs** (streaming multiprocessors), several blocks per SM at once when registers and shared memory allow, and
# > runs the **threads of a block in warps of 32** on the SM's SIMD lanes, one instruction for the whole warp
# > (chapter 1). A block never migrates between SMs and blocks cannot synchronise with each other inside a kernel.
# > Also: the source outline of this course promised a **matrix addition** kernel; its text showed a vector addition.
# > The next section adds the matrix addition.

# %% [markdown]
# ## 3. 2-D launches: the matrix addition
#
# For a matrix the grid and blocks are 2-D: `kernel[(gx, gy), (bx, by)]`, and `col, row = cuda.grid(2)`. Which
# coordinate is x matters: `threadIdx.x` varies fastest inside a warp, so mapping it to the **column** of a
# row-major matrix makes a warp read 32 neighbouring addresses (section 5). Both bounds are checked because edge
# blocks overhang in both directions: a $13\times21$ matrix with $8\times4$ blocks (x = 8 columns, y = 4 rows) has a
# $3\times4$ grid of 384 threads for 273 elements.

# %%
A, B = (rng.standard_normal((13, 21)).astype(np.float32) for _ in range(2))
C = cb.matrix_add(A, B, block=(8, 4))
grid = (-(-21 // 8), -(-13 // 4))
print(f"grid {grid}, {grid[0] * grid[1] * 32} threads for {A.size} elements")
assert np.array_equal(C, A + B) and grid == (3, 4) and grid[0] * grid[1] * 32 == 384

# %% [markdown]
# The library's 2-D map (`numba_map2d.gelu`, a GELU over a matrix with $8\times32$ blocks) is built the same way:

# %%
from manifold_course.kernels.numba_map2d import gelu as numba_gelu

xm = torch.randn(13, 37)
torch.testing.assert_close(numba_gelu(xm), torch.nn.functional.gelu(xm))

# %% [markdown]
# ## 4. Shared memory and `cuda.syncthreads()`
#
# Threads of one block share a small, fast on-chip memory, `cuda.shared.array(size, dtype)`, and can wait for each
# other at a barrier, `cuda.syncthreads()`. The classic use is a **block reduction** (Harris, "Optimizing Parallel
# Reduction in CUDA", NVIDIA 2007): each thread stores its element in `s[t]`; then for stride $t/2, t/4, \dots, 1$
# the first `stride` threads add `s[t + stride]` into `s[t]`, with a barrier after each level; after $\log_2 t$
# levels `s[0]` is the block's sum. Without the barrier a thread may read a slot before its neighbour has written
# it: a **race**.
#
# > **Careful.** The simulator runs a block's threads as Python threads and implements the barrier, but a *missing*
# > barrier may still give the right answer there (the threads happen to run in order). Races, like bank conflicts
# > and uncoalesced access, are invisible to the simulator: it checks indexing and arithmetic, not timing.

# %%
xr = rng.standard_normal(70).astype(np.float32)
partial = cb.block_sum(xr, threads=32)      # 3 blocks, the last holds 6 elements
expected = np.array([xr[i:i + 32].sum() for i in range(0, 70, 32)], dtype=np.float32)
levels = int(np.log2(32))
print("block sums:", partial, f"({levels} tree levels)")
assert partial.shape == (3,) and np.allclose(partial, expected, atol=1e-5) and levels == 5

# %% [markdown]
# The library's `numba_reduction.reduce_sum` adds a grid-stride accumulation and a second pass over the block sums.
# The **tiled matmul** (`numba_matmul.matmul`) uses shared memory to cut global traffic: a block of $T\times T$
# threads owns a $T\times T$ tile of $C$, and at each step along $K$ every thread loads *one* element of $A$ and one
# of $B$ into shared tiles, `syncthreads`, then does $T$ multiply-adds from shared memory, `syncthreads` again.
#
# Counting global loads: the naive kernel loads $2K$ elements per output, $2MNK$ in all; with tiles each element of
# $A$ is loaded once per block column and each of $B$ once per block row, $MK\lceil N/T\rceil + KN\lceil M/T\rceil$.
# Per interior thread that is $2\lceil K/T\rceil$ instead of $2K$: for $M=N=K=1024$, $T=16$, 128 loads instead of
# 2048, 16 times fewer. (Chapter 1's `roofline.tiled_matmul_traffic` adds the $MN$ writes and multiplies by bytes.)

# %%
from manifold_course.kernels.numba_matmul import matmul as numba_matmul
from manifold_course.systems import roofline

naive = cb.tiled_matmul_global_reads(1024, 1024, 1024, 1)
tiled = cb.tiled_matmul_global_reads(1024, 1024, 1024, 16)
per_naive, per_tiled = cb.global_reads_per_thread(1024, 1), cb.global_reads_per_thread(1024, 16)
print(f"global loads: naive {naive:.3e}, tiled {tiled:.3e}, ratio {naive / tiled:.0f}; per thread {per_naive} vs {per_tiled}")
assert naive == 2 * 1024**3 and naive // tiled == 16 and (per_naive, per_tiled) == (2048, 128)
assert 4 * (tiled + 1024 * 1024) == roofline.tiled_matmul_traffic(1024, 1024, 1024, 16, 4)

am, bm = torch.randn(16, 20), torch.randn(20, 16)   # one 16 x 16 block, K = 20 is not a multiple of 16
torch.testing.assert_close(numba_matmul(am, bm), am @ bm, rtol=1e-5, atol=1e-5)

# %%
tiles = [1, 2, 4, 8, 16, 32, 64]
reads = [cb.tiled_matmul_global_reads(1024, 1024, 1024, t) for t in tiles]
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.loglog(tiles, reads, "o-", base=2, label="tiled kernel")
ax.loglog(tiles, [2 * 1024**3 / t for t in tiles], "k--", base=2, label=r"$2MNK/T$")
ax.set(title="Global loads of a 1024³ matmul vs tile side", xlabel="tile side T (threads)",
       ylabel="global loads (elements)")
ax.legend()
plt.show()

# %% [markdown]
# ## 5. Coalescing: transactions per warp
#
# A warp issues one load for its 32 lanes; the memory system serves it in 32-byte **sectors**, one transaction per
# distinct sector touched (a simplified model: NVIDIA, *CUDA C++ Best Practices Guide*, "Coalesced Access to Global
# Memory"; caches and 128-byte lines ignored). When lane $\ell$ reads fp32 element $\ell\cdot s$:
#
# - stride $s = 1$: 128 contiguous bytes, **4** transactions, every byte fetched is used;
# - stride $s = 32$ (e.g. reading down a column of a 32-wide row-major matrix): each lane in its own sector, **32**
#   transactions, 8 times the traffic for the same useful data.

# %%
strides = [1, 2, 4, 8, 16, 32, 64]
trans = [cb.warp_transactions(cb.warp_addresses(s)) for s in strides]
print(dict(zip(strides, trans)))
assert trans[0] == 4 and trans[strides.index(32)] == 32 and trans[strides.index(32)] // trans[0] == 8
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogx(strides, trans, "o-", base=2)
ax.set(title="32-byte transactions of one warp-wide fp32 load", xlabel="stride between lanes (elements)",
       ylabel="transactions per warp")
plt.show()

# %% [markdown]
# ## 6. The same kernels in CUDA C, and the PTX `nvcc` makes of them
#
# `kernels/cuda/vector_add.cu` is the seed's CUDA C kernel:
#
# ```cuda
# extern "C" __global__ void vector_add_kernel(const float* x, const float* y, float* z, float alpha, int n) {
#     int i = blockIdx.x * blockDim.x + threadIdx.x;
#     if (i < n) z[i] = x[i] + alpha * y[i];
# }
# ```
#
# launched as `vector_add_kernel<<<(n + 255) / 256, 256>>>(...)`. `nvcc --ptx` compiles it to **PTX**, NVIDIA's
# virtual instruction set, without needing a GPU. In it, look for `ld.global` (loads from global memory),
# `st.global` (stores), and, in the tiled `matmul.cu`, `ld.shared` and `bar.sync` (the barrier `__syncthreads()`
# becomes).

# %%
from manifold_course.kernels import cuda_c

try:
    nvcc = cuda_c.find_nvcc()
except Exception as e:                      # nvcc is not installed
    nvcc = None
    print(f"nvcc not found ({e}): the PTX cells are skipped; install the CUDA toolkit to see them")
if nvcc is not None:
    ptx_add, ptx_mm = cuda_c.compile_ptx("vector_add"), cuda_c.compile_ptx("matmul")
    assert cuda_c.ptx_entries(ptx_add) == ["vector_add_kernel"] and cuda_c.ptx_entries(ptx_mm) == ["matmul_kernel"]
    for name, ptx, keys in (("vector_add", ptx_add, ("ld.global", "st.global")),
                            ("matmul", ptx_mm, ("ld.global", "ld.shared", "bar.sync", "st.global"))):
        shown = {k: next(line.strip() for line in ptx.splitlines() if k in line) for k in keys}
        print(f"--- {name}.ptx")
        print("\n".join(shown.values()))
    assert "bar.sync" in ptx_mm and "bar.sync" not in ptx_add

# %% [markdown]
# ## 7. Timings (GPU only)
#
# Under the simulator a kernel launch takes milliseconds per *thread*, so timing it measures Python, not a GPU.
# With a GPU the next cell times the Numba vector add against `torch.add` on $n = 2^{24}$.

# %%
if torch.cuda.is_available():
    from manifold_course.systems.bench import default_timer

    timer = default_timer()
    xg, yg = torch.randn(2**24, device="cuda"), torch.randn(2**24, device="cuda")
    for label, fn in (("numba", numba_vector_add), ("torch", torch.add)):
        ms = timer(lambda: fn(xg, yg))
        print(f"{label:>6}: {ms:.3f} ms, {3 * 4 * 2**24 / ms * 1e-6:.0f} GB/s")
else:
    print("No GPU here: the kernels ran under the CUDA simulator, whose timings say nothing about a GPU. "
          "`manifold-course bench` on a GPU machine measures them.")

# %% [markdown]
# ## Summary
#
# - A launch is a grid of blocks of threads; thread $i = b\cdot t + \text{threadIdx}$ owns element $i$; $n$ elements
#   need $\lceil n/t\rceil$ blocks, and the last block's extra threads must be stopped by `if i < n`.
# - Grid-stride loops let a fixed grid cover any $n$; 2-D launches map x to columns for coalesced access.
# - Shared memory plus `cuda.syncthreads()` lets a block cooperate: tree reductions, and tiled matmuls that cut
#   global loads by the tile side $T$.
# - A warp's load costs one transaction per 32-byte sector: stride 1 is 4 transactions, stride 32 is 32.
# - The same kernel in CUDA C compiles to PTX with `ld.global` / `st.global`, and `bar.sync` for barriers.
#
# **Exercises:** `exercises/v6_systems/02_cuda_programming.ipynb` (copied to your `my_work/` by
# `manifold-course lab`): launch arithmetic, vector add with a bounds check, a grid-stride loop, the 2-D matrix add,
# a shared-memory block reduction, transactions per warp, and the global loads of a tiled matmul.
#
# **Further reading.** NVIDIA, *CUDA C++ Programming Guide* ("Programming Model", "Memory Hierarchy") and *CUDA C++
# Best Practices Guide* ("Coalesced Access to Global Memory"); M. Harris, "Optimizing Parallel Reduction in CUDA"
# (NVIDIA, 2007); D. B. Kirk & W. W. Hwu, *Programming Massively Parallel Processors* (4th ed., 2022), chapters on
# tiling and memory coalescing; S. K. Lam, A. Pitrou, S. Seibert, "Numba: a LLVM-based Python JIT compiler"
# (LLVM-HPC 2015); the Numba documentation, "CUDA simulator".
