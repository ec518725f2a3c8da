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
# # Volume 6, Chapter 1: GPU hardware decoded (sections 6.1-6.3)
#
# A model is fast when its kernels keep the GPU's arithmetic units busy, and most of the time they cannot, because
# the numbers do not arrive from memory fast enough. This chapter builds the three mental models a kernel writer
# uses: how a GPU executes threads (SIMT, warps, divergence, occupancy), where data lives and how fast it moves (HBM
# vs on-chip SRAM, the roofline), and what Tensor Cores and mixed precision change. Everything runs on this CPU: a
# warp simulator, the Numba CUDA simulator, byte counts, real GPU datasheet numbers, and this machine's own roofline,
# measured.
#
# | section | question | what you will measure |
# |---|---|---|
# | 6.1 | how does a GPU run 10 000 threads? | global ids of a grid; instruction slots of uniform vs divergent warps; occupancy; latency hiding by a simulated scheduler |
# | 6.2 | why are most AI kernels memory-bound? | arithmetic intensity of real ops against H100/A100 ridge points; tiled-matmul traffic vs tile size; attention traffic, standard vs FlashAttention; this CPU's roofline |
# | 6.3 | what do Tensor Cores and fp16/bf16 buy? | fragment MMAs; fp16 vs bf16 ranges; dot products with fp16 vs fp32 accumulation; gradient underflow and loss scaling; `torch.autocast` in bf16 |
#
# **Goals.** After this chapter you can
# - compute the global index of any thread of a 1-D or 2-D launch and the cost of a divergent branch in a warp;
# - estimate an SM's occupancy from registers, shared memory and block size, and say why occupancy hides latency;
# - compute the arithmetic intensity of an op, place it on a GPU's roofline and say whether it is memory- or
#   compute-bound, before writing a line of CUDA;
# - count the memory traffic of a tiled matmul and of attention, and explain FlashAttention's gain with it;
# - explain fp16 vs bf16, why Tensor Cores accumulate in fp32, and what a dynamic loss scaler does.
#
# **Prerequisites.** Matrix multiplication and softmax; the attention of Volume 2 (chapter 1); a little NumPy and
# PyTorch. No GPU is needed.
#
# **Time.** About 1.5 hours of reading and running, plus 2 hours for the exercises. The notebook runs in about 20 s
# on a 2-core CPU.
#
# **Symbols.** $n$ number of elements; $b$ bytes per element (`dtype_bytes`: 4 for fp32, 2 for fp16/bf16); $I$
# arithmetic intensity in FLOP/byte; $P_{peak}$ peak FLOP/s; $BW$ memory bandwidth in bytes/s; $M, N, K$ matmul sizes
# ($(M,K)\times(K,N)$); $t$ tile size; $N$ also the sequence length and $d$ the head width of attention; $S$ the loss scale.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

import manifold_course.kernels  # noqa: F401  (chooses GPU or simulator mode before numba.cuda is imported)
from manifold_course import data, plotting
from manifold_course.systems import precision, simt
from manifold_course.systems import roofline as rl

GPUS = rl.GPUS
for g in GPUS.values():
    print(f"{g.name:14s} ({g.year}): HBM {g.hbm_bandwidth / 1e12:5.2f} TB/s | FP32 {g.fp32_flops / 1e12:5.1f} TFLOP/s | "
          f"FP16/BF16 tensor {g.tensor_fp16_flops / 1e12:6.1f} TFLOP/s | {g.n_sm} SMs, {g.fp32_lanes} FP32 lanes")

# %% [markdown]
# The table (`manifold_course/systems/roofline.py`, sources in its comments: NVIDIA's V100, A100, H100 and H200
# datasheets and architecture whitepapers) holds *dense* numbers: datasheets also print "with sparsity" figures,
# twice as large, that need 2:4 structured-sparse weights.
#
# ## 6.1 From CPU to GPU: the SIMT philosophy
#
# A CPU core spends its transistors on making *one* thread fast: large caches, branch prediction, out-of-order
# execution. A GPU spends them on *many* simple arithmetic lanes and a wide memory bus: it optimises throughput, and
# hides the latency of each thread behind the work of the others.
#
# The programming model: a kernel is launched on a **grid** of **blocks** of **threads**. Each block is scheduled onto
# one **streaming multiprocessor** (SM; an SM may hold several blocks), and the SM executes the block's threads in
# **warps** of 32 that issue one instruction at a time for all their lanes: *Single Instruction, Multiple Threads*. A
# thread finds its element from its coordinates: in 1-D, $i = \text{blockIdx}\cdot\text{blockDim} + \text{threadIdx}$,
# and the launch needs $\lceil n/t \rceil$ blocks of $t$ threads (the last one ragged, hence the `if (i < n)` in every
# kernel).
#
# > **Careful.** "A GPU has 10 000 cores." The marketing "CUDA cores" are the FP32 *lanes* of SIMD units, not
# > independent cores: 32 of them execute one warp instruction together. An A100 has 6 912 of them (108 SMs x 64), an
# > H100 SXM 16 896 (132 x 128). The independent units that fetch and schedule instructions are the SMs (108 and 132)
# > and their warp schedulers (4 per SM).

# %%
a100, h100 = GPUS["A100 80GB SXM"], GPUS["H100 SXM"]
print(f"A100: {a100.fp32_lanes} lanes = {a100.n_sm} SMs x {a100.fp32_lanes // a100.n_sm}; "
      f"H100: {h100.fp32_lanes} = {h100.n_sm} x {h100.fp32_lanes // h100.n_sm}")
assert a100.fp32_lanes == 6912 == 108 * 64 and h100.fp32_lanes == 16896 == 132 * 128

n, t = 100_000, 256
ids = simt.global_ids(simt.blocks_for(n, t), t)                       # (blocks, threads)
print(f"n = {n}: {simt.blocks_for(n, t)} blocks of {t} threads = {ids.size} threads, {ids.size - n} idle in the last block")
assert simt.blocks_for(n, t) == 391 and ids.size - n == 96
assert np.array_equal(ids.ravel(), np.arange(ids.size))              # 1-D: every id once, in order
print("2-D launch, grid (2, 2) of blocks (3, 2): rows = blocks, columns = threads\n", simt.global_ids((2, 2), (3, 2)))

# %% [markdown]
# ### Warps and divergence
#
# All lanes of a warp share one instruction stream. When a branch splits a warp, the hardware runs *both* paths one
# after the other, each with an **active mask** that switches off the lanes that did not take it. A divergent warp
# pays $c_{if} + c_{else}$ instruction slots; a uniform one pays only its own path.
#
# `simt.simt_branch` executes such a kernel warp by warp, with masks, and counts the slots. The kernel: `if x > 0:
# y = 2x + 1` (two instructions) `else: y = -x` (one). On random data nearly every warp diverges; on the same numbers
# sorted, only the warp that straddles 0 does.

# %%
x = rng.standard_normal(4096)
then_ops, else_ops = [lambda v: 2 * v, lambda v: v + 1], [lambda v: -v]
y_rand, tr_rand = simt.simt_branch(x, lambda v: v > 0, then_ops, else_ops)
y_sort, tr_sort = simt.simt_branch(np.sort(x), lambda v: v > 0, then_ops, else_ops)
n_warps = 4096 // 32
for name, tr in (("random order", tr_rand), ("sorted", tr_sort)):
    print(f"{name:12s}: {tr.slots} slots for {n_warps} warps, lane utilisation {tr.utilisation:.2f}")
assert np.allclose(y_rand, np.where(x > 0, 2 * x + 1, -x))
assert tr_rand.slots == simt.warp_cost(x > 0, 2, 1) + n_warps == 4 * n_warps   # every random warp diverges
n_pos = int((x > 0).sum())
n_then, n_mixed = n_pos // 32, int(n_pos % 32 != 0)        # sorted: uniform warps taking the if; 1 straddling 0 (or none)
print(f"sorted: {n_then} uniform warps take the if, {n_warps - n_then - n_mixed} the else, {n_mixed} straddles 0")
assert tr_sort.slots == 3 * n_then + 2 * (n_warps - n_then - n_mixed) + 4 * n_mixed   # a straddling warp pays 1 + 2 + 1
assert tr_sort.slots == 2 * n_warps + n_then + 2 * n_mixed                      # about 2.5 W, as n_then is about W / 2
assert abs(tr_rand.utilisation - 0.625) < 0.01 and tr_sort.utilisation > 0.99  # (32 + 2 * 16 + 16) / (4 * 32)

# %% [markdown]
# With random signs each warp issues the condition, both instructions of the *if* and the one of the *else*: 4 slots,
# each path with about half of its lanes masked off, so a lane does useful work $(32 + 2\cdot16 + 16)/(4\cdot32)
# \approx 62\,\%$ of the time. Sorting the data (in real kernels: grouping work by branch) removes the divergence.
#
# The same kernel in Numba's CUDA dialect, run by the **Numba CUDA simulator** (`NUMBA_ENABLE_CUDASIM=1`, which
# `manifold_course.kernels` sets on a machine without a GPU; on a GPU it runs natively). The simulator runs each thread
# as a Python thread, so it is slow and only checks correctness: it does not model warps, but the program is the one
# the GPU would execute. Section 6.4 writes such kernels.

# %%
from numba import cuda  # noqa: E402


@cuda.jit
def branch_kernel(t_x, t_y):
    i = cuda.grid(1)                    # blockIdx.x * blockDim.x + threadIdx.x
    if i < t_x.size:                    # the ragged last block
        if t_x[i] > 0:
            t_y[i] = 2 * t_x[i] + 1
        else:
            t_y[i] = -t_x[i]


x_small = x[:200].astype(np.float32)
y_numba = np.zeros_like(x_small)
branch_kernel[simt.blocks_for(x_small.size, 64), 64](x_small, y_numba)
print(f"Numba CUDA ({'simulator' if manifold_course.kernels.MODE.numba_cudasim else 'GPU'}): max |diff| vs the warp "
      f"simulator = {np.abs(y_numba - y_rand[:200]).max():.1e}")
assert np.allclose(y_numba, y_rand[:200], atol=1e-5)

# %% [markdown]
# ### Occupancy and latency hiding
#
# A load from HBM takes hundreds of cycles. An SM does not wait: each cycle, each of its schedulers issues an
# instruction from *any* resident warp that is ready. With enough warps resident, some warp always has work, and the
# memory latency is hidden. If each warp computes for $c$ cycles and then waits $L$ cycles for a load, one issue port
# stays busy a fraction
#
# $$u(n) = \min\Big(1,\ \frac{n\,c}{c + L}\Big)$$
#
# of the time with $n$ warps (Little's law: $1 + L/c$ warps must be in flight). `simt.simulate_scheduler` checks the
# formula cycle by cycle.

# %%
c, L = 20, 400
warps = np.arange(1, 33)
simulated = np.array([simt.simulate_scheduler(int(w), c, L, n_cycles=3000) for w in warps])
formula = np.array([simt.latency_hiding_utilisation(int(w), c, L) for w in warps])
needed = math.ceil((c + L) / c)
print(f"compute {c} cycles, latency {L}: {needed} warps saturate the port; max |simulation - formula| = "
      f"{np.abs(simulated - formula).max():.3f}")
assert needed == 21 and np.abs(simulated - formula).max() < 0.02 and simulated[needed - 1] > 0.98

fig, ax = plotting.figure()
ax.plot(warps, simulated, "o", ms=3, label="cycle-by-cycle simulation")
ax.plot(warps, formula, "-", label="min(1, n c / (c + L))")
plotting.label(ax, f"Latency hiding (c = {c}, L = {L} cycles)", "resident warps per scheduler", "busy fraction")
ax.legend()
plt.show()

# %% [markdown]
# How many warps can be resident? Each SM has a fixed budget (A100: 2 048 threads = 64 warps, 32 blocks, 65 536
# registers, up to 164 KB of shared memory). The **occupancy** is the fraction of the 64 warp slots that resident blocks
# fill; whichever resource runs out first limits it. `simt.occupancy` uses a simplified model (no allocation
# granularity; the docstring says what the CUDA occupancy calculator adds).

# %%
configs = {"256 threads, 32 regs": (256, 32, 0), "256 threads, 64 regs": (256, 64, 0),
           "256 threads, 128 regs": (256, 128, 0), "256 threads, 48 KB smem": (256, 32, 48 * 1024),
           "64 threads, 32 regs": (64, 32, 0), "1024 threads, 64 regs": (1024, 64, 0)}
occ = {k: simt.occupancy(*v) for k, v in configs.items()}
for k, v in occ.items():
    print(f"{k:26s} occupancy {v:.3f} on an A100 SM")
L_a100 = simt.A100_SM
assert (L_a100.max_threads, L_a100.max_blocks, L_a100.registers, L_a100.shared_bytes) == (2048, 32, 65536, 164 * 1024)
assert occ["256 threads, 32 regs"] == 1.0 and occ["256 threads, 64 regs"] == 0.5
assert occ["256 threads, 128 regs"] == 0.25 and occ["256 threads, 48 KB smem"] == 0.375
assert occ["64 threads, 32 regs"] == 1.0 and occ["1024 threads, 64 regs"] == 0.5

# %% [markdown]
# Doubling the registers per thread halves the resident warps; 48 KB of shared memory per block leaves room for only 3
# blocks. High occupancy is a means, not a goal: a kernel that keeps its data in registers and shared memory (as
# FlashAttention does) can be fast at 25 % occupancy, because it issues fewer loads to hide.
#
# ## 6.2 The memory hierarchy: HBM vs SRAM
#
# The FlashAttention paper (Dao et al. 2022, arXiv:2205.14135, section 2.1) describes the A100 so: "40-80GB of HBM
# with bandwidth 1.5-2.0TB/s and 192KB of on-chip SRAM per each of 108 streaming multiprocessors with bandwidth
# estimated around 19TB/s". The SRAM is thousands of times smaller than HBM and about ten times faster.

# %%
sram_total = rl.A100_SRAM_PER_SM_FA_PAPER * 108
print(f"A100 on-chip SRAM: 108 x 192 KB = {sram_total / 2**20:.2f} MB vs 40-80 GB of HBM "
      f"(~{40e9 / sram_total:.0f}x smaller); SRAM / HBM bandwidth = 19 / 1.555 = "
      f"{rl.A100_SRAM_BANDWIDTH_FA_PAPER / GPUS['A100 40GB'].hbm_bandwidth:.1f}x")
assert abs(sram_total / 2**20 - 20.25) < 1e-9 and 40e9 / sram_total > 1000 and 10 < rl.A100_SRAM_BANDWIDTH_FA_PAPER / GPUS["A100 40GB"].hbm_bandwidth < 13

# %% [markdown]
# > **Careful.** Two claims that travel with this section:
# > - "L1/L2 run at 19 TB/s." The 19 TB/s is the FlashAttention paper's *estimate* for the on-chip shared memory
# >   (SRAM) of all SMs together; the L2 cache is shared by the whole chip and slower.
# > - "FlashAttention is 10x faster." FlashAttention-1 reports end-to-end *training* speed-ups of about 1.15x
# >   (BERT-large vs the MLPerf record) to 3x (GPT-2), and up to about 7.6x on the attention computation alone. Below we
# >   count its HBM traffic: fewer bytes moved, the same $O(N^2 d)$ FLOPs (it is exact attention, not a linear one).
#
# ### Arithmetic intensity and the roofline
#
# An op that performs $F$ FLOPs while moving $Q$ bytes between HBM and the chip has **arithmetic intensity**
# $I = F/Q$. Its speed is capped both by the arithmetic units and by the bandwidth, so the attainable throughput is
# the **roofline** (Williams, Waterman & Patterson, CACM 2009):
#
# $$P(I) = \min\big(P_{peak},\ I\cdot BW\big),\qquad \text{ridge point } I^* = P_{peak}/BW .$$
#
# Left of the ridge an op is **memory-bound** (faster memory would help, more FLOP/s would not). With the counting
# conventions of `rl.op_flops_bytes`: an fp32 vector add does 1 FLOP per 12 bytes, $I = 1/12$; softmax
# $5/(2b)$; an $n\times n$ matmul $2n^3/(3n^2 b) = 2n/(3b)$, growing with $n$.

# %%
ops = {"vector add (fp32, 2^24)": ("vector_add", (1 << 24,), 4), "softmax (bf16, 4096 x 4096)": ("softmax", (4096, 4096), 2),
       "LayerNorm (bf16, 4096 x 4096)": ("layer_norm", (4096, 4096), 2),
       "mat-vec (bf16, 1 x 4096 x 4096)": ("matmul", (1, 4096, 4096), 2),
       "matmul (bf16, 256^3)": ("matmul", (256, 256, 256), 2), "matmul (bf16, 4096^3)": ("matmul", (4096, 4096, 4096), 2)}
intensity = {k: rl.arithmetic_intensity(*v) for k, v in ops.items()}
ridge = {g.name: rl.ridge_point(g.tensor_fp16_flops, g.hbm_bandwidth) for g in GPUS.values()}
print("ridge points (tensor FLOP/s / HBM B/s):", {k: round(v) for k, v in ridge.items()})
for k, I in intensity.items():
    P = rl.roofline(I, h100.tensor_fp16_flops, h100.hbm_bandwidth)
    print(f"{k:32s} I = {I:8.3f} FLOP/B -> on an H100 at most {P / 1e12:7.1f} TFLOP/s "
          f"({'memory' if I < ridge['H100 SXM'] else 'compute'}-bound)")
assert abs(intensity["vector add (fp32, 2^24)"] - 1 / 12) < 1e-12 and abs(intensity["softmax (bf16, 4096 x 4096)"] - 1.25) < 1e-12
assert abs(ridge["H100 SXM"] - 295.2) < 0.1 and abs(ridge["A100 80GB SXM"] - 153.0) < 0.1 and abs(ridge["V100 SXM2"] - 138.9) < 0.1
assert all(intensity[k] < ridge["V100 SXM2"] for k in list(ops)[:4])        # memory-bound on every GPU of the table
assert intensity["matmul (bf16, 256^3)"] < ridge["H100 SXM"] < intensity["matmul (bf16, 4096^3)"]
vadd_share = rl.roofline(1 / 12, h100.tensor_fp16_flops, h100.hbm_bandwidth) / h100.tensor_fp16_flops
assert 0.0002 < vadd_share < 0.0003                                         # a vector add: under 0.03 % of the peak

# %% [markdown]
# Elementwise ops, softmax, LayerNorm and the matrix-vector products of token-by-token decoding sit far left of every
# ridge: on an H100 a vector add can use at most 0.03 % of the tensor peak. Only large matmuls are compute-bound, and the
# ridge moves right with every generation (V100 139, A100 153, H100 295 FLOP/byte): FLOP/s grow faster than bandwidth.
# Hence *fusion* (one kernel for several elementwise ops, so the tensor crosses HBM once) and FlashAttention.

# %%
I_grid = np.logspace(-2, 4, 300)
fig, ax = plotting.figure(width=6.0, height=3.8)
for name in ("V100 SXM2", "A100 80GB SXM", "H100 SXM"):
    g = GPUS[name]
    ax.loglog(I_grid, rl.roofline(I_grid, g.tensor_fp16_flops, g.hbm_bandwidth) / 1e12, label=name)
for k, I in intensity.items():
    ax.plot(I, rl.roofline(I, h100.tensor_fp16_flops, h100.hbm_bandwidth) / 1e12, "ko", ms=4)
    ax.annotate(k.split(" (")[0], (I, rl.roofline(I, h100.tensor_fp16_flops, h100.hbm_bandwidth) / 1e12),
                fontsize=7, xytext=(3, -9), textcoords="offset points")
plotting.label(ax, "Roofline, FP16/BF16 tensor peak vs HBM (dots: on H100)", "arithmetic intensity (FLOP/byte)",
               "attainable TFLOP/s")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# **Try it.** Where does a square bf16 matmul of size $n$ land? $I = n/3$; it becomes compute-bound on an H100 from
# $n \approx 886$. (The static default shows $n = 512$.)

# %%
def matmul_on_roofline(n=512, gpu="H100 SXM"):
    g = GPUS[gpu]
    I = rl.arithmetic_intensity("matmul", (n, n, n), 2)
    P = rl.roofline(I, g.tensor_fp16_flops, g.hbm_bandwidth)
    bound = "memory" if I < rl.ridge_point(g.tensor_fp16_flops, g.hbm_bandwidth) else "compute"
    print(f"n = {n}: I = {I:.0f} FLOP/B, at most {P / 1e12:.0f} TFLOP/s on {gpu} ({bound}-bound, "
          f"{100 * P / g.tensor_fp16_flops:.0f} % of peak)")
    return I, P


I512, P512 = matmul_on_roofline()
assert abs(I512 - 512 / 3) < 1e-9 and P512 < h100.tensor_fp16_flops
assert math.ceil(3 * ridge["H100 SXM"]) == 886


def show_roofline(n=512, gpu="H100 SXM"):
    matmul_on_roofline(n, gpu)  # returns nothing: interact would print a returned (I, P) under the line


widgets.interact(show_roofline, n=widgets.IntSlider(value=512, min=16, max=8192, step=16), gpu=list(GPUS));

# %% [markdown]
# ### Tiling: the trick behind every fast matmul
#
# A naive matmul loads two operands from HBM for every multiply-add: $2MNK$ loads. A tiled kernel keeps a
# $t\times t$ tile of $C$ in fast memory (registers and shared memory) while it streams the $t$ rows of $A$ and $t$
# columns of $B$ it needs; each element of $A$ is then loaded once per *tile column* instead of once per column:
#
# $$Q(t) = b\,\big(MK\lceil N/t\rceil + KN\lceil M/t\rceil + MN\big) \approx \frac{2MNK\,b}{t}.$$
#
# `rl.tiled_matmul_numpy` runs the tiled algorithm in NumPy with explicit block copies and counts every byte; it agrees
# with the formula and with `A @ B`.

# %%
M_, N_, K_ = 300, 200, 250
A_, B_ = rng.standard_normal((M_, K_)), rng.standard_normal((K_, N_))
tiles = [1, 2, 4, 8, 16, 32, 64, 128, 256]
counted = {}
for t in tiles[2:]:
    C_, counted[t] = rl.tiled_matmul_numpy(A_, B_, t)
    assert np.allclose(C_, A_ @ B_) and counted[t] == rl.tiled_matmul_traffic(M_, N_, K_, t, 8)
traffic = np.array([rl.tiled_matmul_traffic(M_, N_, K_, t, 8) for t in tiles])
print({t: f"{q / 1e6:.1f} MB" for t, q in zip(tiles, traffic)})
assert traffic[0] == 8 * (2 * M_ * N_ * K_ + M_ * N_)                      # tile 1 = naive
assert 1.9 < traffic[3] / traffic[4] < 2.0                                  # halves when the tile doubles

fig, ax = plotting.figure()
ax.loglog(tiles, traffic / 1e6, "o-", label="counted = formula")
ax.loglog(tiles, 2 * M_ * N_ * K_ * 8 / np.array(tiles) / 1e6, "k--", label="2MNKb / t")
plotting.label(ax, f"HBM traffic of a tiled matmul ({M_}x{K_} @ {K_}x{N_}, fp64)", "tile size t", "MB moved")
ax.legend()
plt.show()

# %% [markdown]
# ### Attention: standard vs FlashAttention traffic
#
# Standard attention (FlashAttention's Algorithm 0) writes the $N\times N$ score matrix $S = QK^\top$ to HBM, reads it
# back for the softmax, writes $P$, and reads it again for $PV$: $4Nd + 4N^2$ elements, $\Theta(Nd + N^2)$.
# FlashAttention (Algorithm 1) never materialises $S$: it loads blocks of $K, V$ into SRAM of $M$ elements and, with an
# online softmax, updates the output block by block, for $\Theta(N^2d^2/M)$ bytes (the paper's Theorem 2). Both do the
# same $4N^2d$ FLOPs. We count with $d = 64$, bf16 and $M$ = 100 KB of SRAM per block.

# %%
d_head, sram = 64, 100 * 1024
Ns = np.array([256, 512, 1024, 2048, 4096, 8192, 16384])
std_bytes = np.array([rl.standard_attention_hbm_bytes(int(N), d_head) for N in Ns])
fa_bytes = np.array([rl.flash_attention_hbm_bytes(int(N), d_head, sram) for N in Ns])
flops = np.array([rl.attention_flops(int(N), d_head) for N in Ns])
i4k = int(np.where(Ns == 4096)[0][0])
print(f"N = 4096: standard {std_bytes[i4k] / 1e6:.0f} MB (I = {flops[i4k] / std_bytes[i4k]:.0f} FLOP/B), "
      f"FlashAttention {fa_bytes[i4k] / 1e6:.0f} MB (I = {flops[i4k] / fa_bytes[i4k]:.0f} FLOP/B): "
      f"{std_bytes[i4k] / fa_bytes[i4k]:.1f}x fewer bytes")
assert np.all(fa_bytes < std_bytes) and 3.5 < std_bytes[i4k] / fa_bytes[i4k] < 4.5
assert np.all(flops / std_bytes < 32) and 0.1 < 32 / ridge["H100 SXM"] < 0.11  # standard attention: memory-bound
M_elems = sram // 2
assert abs((std_bytes[-1] / fa_bytes[-1]) / (M_elems / (3 * d_head**2)) - 1) < 0.1  # ratio -> M / (3 d^2) ~ 4.2

fig, ax = plotting.figure()
ax.loglog(Ns, std_bytes / 1e6, "o-", label="standard (writes S and P)")
ax.loglog(Ns, fa_bytes / 1e6, "s-", label="FlashAttention, M = 100 KB")
plotting.label(ax, "HBM traffic of one attention head (d = 64, bf16)", "sequence length N", "MB moved")
ax.legend()
plt.show()

# %% [markdown]
# Standard attention stays below $I = 32$ FLOP/byte whatever $N$ ($4N^2d$ FLOPs over about $4N^2$ elements of 2 bytes:
# $I \to d/2$), so on an H100 it runs at most at about a tenth of the tensor peak. FlashAttention's traffic also grows
# like $N^2$, but with a constant smaller by a factor $\approx M/(3d^2)$; in the paper the fewer HBM accesses give the
# speed-ups of the Careful box above, not the traffic ratio itself.
#
# ### This CPU's own roofline, measured
#
# The same model fits any machine. We measure this CPU (one thread, the course default): its **memory bandwidth**
# from a fp32 vector add on 32 MB arrays (far larger than the caches; `rl.measure_vector_add`, a STREAM-like "add")
# and its **FLOP/s** from a 768 x 768 fp32 matmul (`rl.measure_matmul`), both as `timeit` medians. Only robust facts
# are asserted: timings vary from machine to machine and with other work on the CPU.

# %%
vadd = rl.measure_vector_add()
mm = rl.measure_matmul()
cpu_ridge = mm.flops_per_s / vadd.bytes_per_s
print(f"vector add: {vadd.bytes_per_s / 1e9:.1f} GB/s, {vadd.flops_per_s / 1e9:.2f} GFLOP/s (I = {vadd.intensity:.3f})")
print(f"matmul 768: {mm.flops_per_s / 1e9:.1f} GFLOP/s (I = {mm.intensity:.0f}); ridge point of this CPU ~ {cpu_ridge:.1f} FLOP/B")
assert vadd.bytes_per_s > 0 and mm.flops_per_s > 0
assert vadd.flops_per_s < mm.flops_per_s / 5                                 # the vector add is memory-bound here too
assert vadd.intensity < cpu_ridge < mm.intensity

fig, ax = plotting.figure()
ax.loglog(I_grid, rl.roofline(I_grid, mm.flops_per_s, vadd.bytes_per_s) / 1e9, label="measured roofline")
ax.plot(vadd.intensity, vadd.flops_per_s / 1e9, "o", label="vector add (measured)")
ax.plot(mm.intensity, mm.flops_per_s / 1e9, "s", label="matmul 768 (measured)")
plotting.label(ax, "This CPU's roofline (one thread)", "arithmetic intensity (FLOP/byte)", "GFLOP/s")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## 6.3 Tensor Cores: matrix-multiply accelerators
#
# From Volta (V100, 2017) on, each SM has **Tensor Cores**: units that compute a whole small matrix
# multiply-accumulate $D = A\times B + C$ per instruction, with $A, B$ in fp16 (bf16, tf32, fp8 and int8 in later
# generations) and $C, D$ in fp32. Volta's unit works on $4\times4\times4$ fragments, 64 fused multiply-adds per clock,
# where a CUDA core does one; a warp issues larger tiles (`mma.sync` shapes such as $16\times8\times16$ on Ampere). That is
# why the tensor column of the table is 8-16 times the fp32 column.
#
# `precision.tensor_core_matmul` assembles a matmul from fragment MMAs, as a warp does: the result is an fp32 matmul
# of the fp16-*rounded* inputs. Not bit for bit: the fragments add the same products in another order, and fp32 sums
# of $K$ terms in two orders can differ by up to $K\epsilon_{32}\sum_k|a_k b_k|$ ($\epsilon_{32} = 2^{-23}$; the
# products of fp16 numbers are exact in fp32). Over 3000 random draws of this cell the difference was
# $5.7\cdot10^{-6}$ in the median and reached $1.1\cdot10^{-5}$, past the fixed $10^{-5}$ this cell once asserted (it
# failed at seed offset 179); the bound is about $3\cdot10^{-4}$ here. The error against float64 is at least 600 times
# larger (3000 draws): it comes from rounding the inputs, not from the sums.

# %%
A32, B32 = torch.randn(70, 50), torch.randn(50, 40)
D, n_mma = precision.tensor_core_matmul(A32, B32, frag=(16, 8, 16))
err_vs_rounded = float((D - A32.half().float() @ B32.half().float()).abs().max())
err_vs_fp64 = float((D.double() - A32.double() @ B32.double()).abs().max())
# Two fp32 sums of the same K = 50 exact products, added in different orders, differ by at most K eps_32 sum|a b|
abs_products = A32.half().float().abs() @ B32.half().float().abs()          # sum_k |a_ik b_kj|
sum_order_bound = A32.shape[1] * torch.finfo(torch.float32).eps * float(abs_products.max())   # K = 50
print(f"{n_mma} MMAs of 16x8x16; max error vs fp32 matmul of fp16 inputs {err_vs_rounded:.1e} (summation-order bound "
      f"{sum_order_bound:.1e}), vs float64 {err_vs_fp64:.1e}")
assert n_mma == 5 * 5 * 4 and err_vs_rounded < sum_order_bound and err_vs_fp64 > 100 * err_vs_rounded
v100 = GPUS["V100 SXM2"]
print(f"V100 ({v100.year}): tensor {v100.tensor_fp16_flops / v100.fp32_flops:.1f}x fp32; "
      f"H100: tensor {h100.tensor_fp16_flops / h100.fp32_flops:.1f}x fp32, FP8 {h100.tensor_fp8_flops / 1e12:.0f} TFLOP/s")
assert v100.year == 2017 and min(g.year for g in GPUS.values()) == 2017
assert all(7.9 < g.tensor_fp16_flops / g.fp32_flops < 16.1 for g in GPUS.values()) and abs(h100.tensor_fp8_flops / h100.tensor_fp16_flops - 2) < 0.01

# %% [markdown]
# > **Careful.** "Tensor Cores appeared after Volta" and "they are fastest in FP16". They were *introduced* with
# > Volta (the V100 of 2017, the oldest GPU of our table). Newer generations are faster still in lower precisions:
# > an H100 does 1 979 dense FP8 TFLOP/s, twice its 989 FP16/BF16 TFLOP/s.
#
# ### fp16 vs bf16
#
# Both formats have 16 bits. fp16 (IEEE half) spends 5 on the exponent and 10 on the mantissa: fine steps
# ($\epsilon = 2^{-10}$) but a small range (max 65 504, smallest normal $2^{-14}$, subnormals down to $2^{-24}$).
# bf16 keeps fp32's 8 exponent bits and only 7 mantissa bits: fp32's range with coarse steps ($\epsilon = 2^{-7}$).
# Read from `torch.finfo`:

# %%
fmt = precision.format_table()
for k, v in fmt.items():
    print(f"{k}: max {v['max']:.4g}, eps {v['eps']:.3g} = 2^-{v['mantissa_bits']}, smallest normal {v['smallest_normal']:.3g}")
assert fmt["fp16"]["max"] == 65504 and fmt["fp16"]["eps"] == 2.0**-10 and fmt["fp16"]["smallest_normal"] == 2.0**-14
assert fmt["bf16"]["eps"] == 2.0**-7 and fmt["bf16"]["smallest_normal"] == fmt["fp32"]["smallest_normal"]
assert abs(fmt["bf16"]["max"] / fmt["fp32"]["max"] - 1) < 0.01
assert torch.tensor(70000.0).half().isinf() and not torch.tensor(70000.0).bfloat16().isinf()

# %% [markdown]
# ### Why accumulate in fp32
#
# A dot product of length 4096 with inputs in $[0, 1)$: the sum reaches about 1000, where fp16's spacing is 0.5 to
# 1, so adding a product of about 0.25 rounds it away or doubles it ("swamping"). Tensor Cores therefore take fp16/bf16
# *inputs* but accumulate in fp32. `precision.mixed_precision_dot` reproduces both (inputs rounded to `in_dtype`,
# left-to-right sums in `acc_dtype`); we measure the error against the float64 dot of the same rounded inputs, so only
# the accumulation is judged.

# %%
lengths = [16, 64, 256, 1024, 4096, 16384]
rel_err = {"fp16 acc": [], "fp32 acc": []}
for n_dot in lengths:
    a_t, b_t = torch.rand(n_dot, dtype=torch.float64), torch.rand(n_dot, dtype=torch.float64)
    exact = float(a_t.half().double() @ b_t.half().double())
    for name, acc in (("fp16 acc", torch.float16), ("fp32 acc", torch.float32)):
        rel_err[name].append(abs(precision.mixed_precision_dot(a_t, b_t, torch.float16, acc) - exact) / exact)
i4096 = lengths.index(4096)
print({k: f"{v[i4096]:.1e}" for k, v in rel_err.items()}, "relative error at n = 4096")
assert float(np.spacing(np.float16(1000))) == 0.5
assert rel_err["fp16 acc"][i4096] > 0.01 and rel_err["fp32 acc"][i4096] < 1e-5
assert rel_err["fp16 acc"][i4096] > 1000 * rel_err["fp32 acc"][i4096]

fig, ax = plotting.figure()
for name, errs in rel_err.items():
    ax.loglog(lengths, np.maximum(errs, 1e-12), "o-", label=name)
plotting.label(ax, "Dot products of fp16 inputs in [0, 1)", "length n", "relative error vs float64")
ax.legend()
plt.show()

# %% [markdown]
# ### Gradient underflow and loss scaling
#
# Mixed-precision training (Micikevicius et al. 2018, arXiv:1710.03740) keeps fp32 master weights and runs the
# forward and backward passes in fp16. Small gradients then fall below fp16's range: under $2^{-24}\approx 6\cdot10^{-8}$
# they become 0, under $2^{-14}$ they lose mantissa bits. The fix: multiply the loss by $S$ before backward (every
# gradient is multiplied by $S$ by linearity), then divide the fp32 gradients by $S$:
# $g = \tfrac1S\nabla(S\cdot L)$. Below, the gradients of an MLP trained on the digits (64-128-10, 300 Adam steps), cast
# to fp16 with and without scaling.

# %%
X_dig, y_dig = data.digits()                                               # (1797, 64), labels 0..9
mlp32, losses32 = precision.train_mlp(X_dig, y_dig, steps=300)
mlp32.zero_grad()
torch.nn.functional.cross_entropy(mlp32(X_dig), y_dig).backward()
grads = torch.cat([p.grad.reshape(-1) for p in mlp32.parameters()])
g_top = float(grads.abs().max())
S_over = 2.0 ** math.ceil(math.log2(65520 / g_top))          # the first power of 2 that sends max |g| past fp16's max
flush = {S: precision.fp16_flush_fraction(grads, S) for S in (1.0, 2.0**12, S_over)}
for S, f in flush.items():
    print(f"S = 2^{int(math.log2(S)):2d}: zero {f['zero']:.2%}, subnormal {f['subnormal']:.2%}, inf {f['inf']:.2%}")
print(f"largest |g| = {g_top:.3g}: a scale of 65 504 / {g_top:.3g} = 2^{math.log2(65504 / g_top):.1f} is the most fp16 holds")
assert flush[1.0]["zero"] > 0 and flush[1.0]["subnormal"] > 0.1
assert flush[2.0**12]["subnormal"] < 0.02 and flush[2.0**12]["inf"] == 0
assert flush[2.0**12]["zero"] < 1e-3 and flush[2.0**12]["zero"] < flush[1.0]["zero"]   # a handful at most
g_nz = grads[grads != 0]
lost = (g_nz * 2.0**12).half() == 0                  # which gradients still vanish at S = 2^12: exactly |g| <= 2^-37
assert torch.equal(lost, g_nz.abs() <= 2.0**-25 / 2.0**12)   # fp16 rounds |x| <= 2^-25 (half of 2^-24) to 0
assert flush[S_over]["inf"] > 0                                               # too large a scale overflows
assert precision.fp16_flush_fraction(grads, S_over / 2)["inf"] == 0     # one halving below it, nothing overflows

fig, ax = plotting.figure()
ax.hist(np.log2(grads.abs()[grads != 0].numpy()), bins=60)
for v, lab in ((-24, "2^-24: fp16 zero"), (-14, "2^-14: subnormal")):
    ax.axvline(v, color="k", ls="--")
    ax.annotate(lab, (v, 0), xytext=(2, 20), textcoords="offset points", fontsize=7, rotation=90)
plotting.label(ax, "Gradient magnitudes of a digits MLP", "log2 |g|", "count")
plt.show()

# %% [markdown]
# Without scaling, over a tenth of the gradients (about a quarter: printed above) are subnormal in fp16, and some flush
# to zero; $S = 2^{12}$ lifts all but under 2 % out of the subnormal range, and flushes far fewer to zero. Which ones
# still vanish is exact: fp16 rounds anything up to half its smallest subnormal, $2^{-25}$, to 0, so at scale $S$ the
# gradients with $|g| \le 2^{-25}/S = 2^{-37}$ (asserted entry by entry). How many there are is a property of the draw:
# none in 51 of 61 seed offsets (10701, 20500-20559), 1 to 5 of about 8 000 nonzero gradients in the others, against 29
# to 103 without scaling (so 13 times fewer or better, not a fixed factor: an earlier "twenty times" failed at offset
# 10701, 5 against 64). Too large a scale overflows: the largest gradient here is about $10^{-2}$, so any $S$ above
# $65\,504/\max|g|$ (about $2^{22}$ or $2^{23}$, depending on the draw) turns it into inf. Which power of 2 overflows is
# a property of the gradients, so the cell computes it from their maximum rather than naming one.
#
# The right scale is unknown and changes during training, so `torch.amp.GradScaler` adapts it: start large ($2^{16}$);
# when a gradient overflows (inf/NaN), skip the step and halve $S$; after `growth_interval` clean steps in a row,
# double it. `precision.DynamicLossScaler` is this state machine (and Exercise 8). Driven by synthetic gradients whose
# largest magnitude drifts around $10^{-1}$, the scale settles in a saw-tooth just under $65\,504 / \max|g|$:

# %%
scaler = precision.DynamicLossScaler(init_scale=2.0**16, growth_interval=20)
g_max = 0.1 * np.exp(0.3 * rng.standard_normal(400))                      # largest |gradient| per step
scales, skipped = [], 0
for gm in g_max:
    skipped += not scaler.update(found_inf=bool(gm * scaler.scale > 65504))
    scales.append(scaler.scale)
late = np.array(scales[100:])
print(f"skipped {skipped} of 400 steps; scale after step 100 in [2^{np.log2(late.min()):.0f}, 2^{np.log2(late.max()):.0f}]")
assert skipped < 40 and late.max() <= 2**20 and late.min() >= 2**15

fig, ax = plotting.figure()
ax.semilogy(scales, label="loss scale S")
ax.semilogy(65504 / g_max, lw=0.5, alpha=0.6, label="65504 / max|g|: overflow above")
plotting.label(ax, "Dynamic loss scaling (growth interval 20)", "step", "scale")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ### `torch.autocast` in bf16
#
# bf16 has fp32's range, so it needs no loss scaling; that is why it became the default of large-model training on
# A100 and H100. `torch.autocast("cpu", dtype=torch.bfloat16)` runs the matmuls of the forward pass in bf16 while the
# weights and the optimiser stay in fp32. The same digits MLP, trained with and without it:

# %%
train_idx, test_idx = data.train_test_split_indices(len(X_dig), test_fraction=0.3, seed=0)
acc = {}
for name, dt in (("fp32", None), ("bf16 autocast", torch.bfloat16)):
    model, _ = precision.train_mlp(X_dig[train_idx], y_dig[train_idx], steps=300, autocast_dtype=dt)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dt is not None):
        logits = model(X_dig[test_idx])
    acc[name] = float((logits.argmax(1) == y_dig[test_idx]).float().mean())
    print(f"{name:14s}: logits dtype {logits.dtype}, test accuracy {acc[name]:.3f}")
assert logits.dtype == torch.bfloat16 and next(model.parameters()).dtype == torch.float32
assert min(acc.values()) > 0.9 and abs(acc["fp32"] - acc["bf16 autocast"]) < 0.03

# %% [markdown]
# ## Summary
#
# - A GPU runs a grid of blocks; each block lives on one SM and runs as warps of 32 lanes sharing one instruction
#   stream. A branch that splits a warp costs both paths (here $4W = 512$ instruction slots for $W = 128$ warps of
#   random signs, against $2W + n_{then} + 2 \approx 2.5W$ with $n_{then}$ the warps of positives,, about 320, once sorted).
#   The "CUDA cores" are SIMD lanes: 6 912 on an A100.
# - Resident warps hide memory latency; registers, shared memory and block size limit how many fit (occupancy).
# - The roofline $\min(P_{peak}, I\cdot BW)$ decides before any code is written: elementwise ops, softmax, LayerNorm and
#   matrix-vector products are memory-bound on every GPU (ridge points 139-295 FLOP/byte); large matmuls are not.
#   The same holds on this CPU, measured.
# - Tiling divides a matmul's traffic by the tile size; FlashAttention applies the idea to attention and never writes
#   the $N\times N$ matrix to HBM.
# - Tensor Cores (since Volta) multiply fp16/bf16 fragments and accumulate in fp32, because fp16 accumulation swamps;
#   fp16 training needs loss scaling, bf16 has fp32's range and does not.
#
# **Exercises.** `exercises/v6_systems/01_gpu_architecture.ipynb` (opened from `my_work/` by `manifold-course lab`):
# warp cost, global ids, occupancy, arithmetic intensity, the roofline, tiled-matmul traffic, a mixed-precision dot
# product and the dynamic loss scaler.
#
# **Further reading.**
# - NVIDIA, *CUDA C++ Programming Guide* (SIMT architecture; compute capabilities); the Volta (2017), Ampere A100 (2020)
#   and Hopper H100 (2022) architecture whitepapers.
# - S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model for multicore
#   architectures", Communications of the ACM, 2009.
# - T. Dao, D. Fu, S. Ermon, A. Rudra, C. Ré, "FlashAttention: Fast and Memory-Efficient Exact Attention with
#   IO-Awareness", 2022, arXiv:2205.14135; T. Dao, "FlashAttention-2", 2023, arXiv:2307.08691.
# - P. Micikevicius et al., "Mixed Precision Training", 2017, arXiv:1710.03740.
# - D. Kalamkar et al., "A Study of BFLOAT16 for Deep Learning Training", 2019, arXiv:1905.12322.
# - V. Volkov, "Understanding Latency Hiding on GPUs", PhD thesis, UC Berkeley, 2016.
