r"""SIMT on a CPU: thread indices of a grid, a warp executing with active masks, occupancy and latency hiding.

A GPU runs a *kernel* as a grid of thread blocks; the hardware executes the threads of a block in *warps* of 32 that
issue one instruction at a time for all their lanes (Single Instruction, Multiple Threads). Three formulas of this
module:

- global index of a thread (1-D): $i = \text{blockIdx}\cdot\text{blockDim} + \text{threadIdx}$; warps per block
  $\lceil \text{threads}/32 \rceil$;
- cost of a branch in one warp: $c_{if}$ if every active lane takes it, $c_{else}$ if none does, $c_{if}+c_{else}$ if the
  warp *diverges* (both paths are issued one after the other, each with part of the lanes masked off);
- occupancy: resident warps per SM / the SM's maximum, limited by threads, registers and shared memory.

Sources: NVIDIA, *CUDA C++ Programming Guide*, sections "SIMT Architecture" and "Compute Capabilities" (table of
per-SM limits); Lindholm et al., "NVIDIA Tesla: A Unified Graphics and Computing Architecture", IEEE Micro 2008.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

WARP_SIZE = 32


def _xy(v: int | Sequence[int]) -> tuple[int, int]:
    """A CUDA ``dim3`` reduced to (x, y): an int n means (n, 1)."""
    if isinstance(v, (int, np.integer)):
        return int(v), 1
    x, y = (tuple(int(a) for a in v) + (1,))[:2]
    return x, y


def global_ids(grid: int | Sequence[int], block: int | Sequence[int]) -> np.ndarray:
    r"""Global linear index of every thread of a 1-D or 2-D launch ``kernel[grid, block]``.

    Returns an int64 array of shape ``(n_blocks, threads_per_block)``: row ``b`` is block ``b`` in CUDA's linear order
    (``b = blockIdx.y * gridDim.x + blockIdx.x``), column ``t`` its thread ``t = threadIdx.y * blockDim.x + threadIdx.x``.
    The entry is the thread's position in the row-major global array of width ``gridDim.x * blockDim.x``:

    $$\text{col} = \text{blockIdx.x}\,\text{blockDim.x} + \text{threadIdx.x},\quad
      \text{row} = \text{blockIdx.y}\,\text{blockDim.y} + \text{threadIdx.y},\quad
      \text{id} = \text{row}\cdot(\text{gridDim.x}\,\text{blockDim.x}) + \text{col}.$$

    For a 1-D launch this is $\text{blockIdx}\cdot\text{blockDim} + \text{threadIdx}$ (what ``cuda.grid(1)`` returns).
    """
    gx, gy = _xy(grid)
    bx, by = _xy(block)
    width = gx * bx
    by_, bx_ = np.divmod(np.arange(gx * gy), gx)                   # block coordinates, (n_blocks,)
    ty, tx = np.divmod(np.arange(bx * by), bx)                     # thread coordinates, (threads,)
    col = bx_[:, None] * bx + tx[None, :]                          # (n_blocks, threads)
    row = by_[:, None] * by + ty[None, :]
    return (row * width + col).astype(np.int64)


def warps_per_block(threads_per_block: int, warp: int = WARP_SIZE) -> int:
    r"""$\lceil \text{threads}/\text{warp} \rceil$: a block of 100 threads occupies 4 warps, the last one 4/32 full."""
    return -(-int(threads_per_block) // warp)


def warp_cost(branch_mask: np.ndarray, cost_if: int, cost_else: int, warp: int = WARP_SIZE) -> int:
    """Instruction slots to run ``if cond: <cost_if slots> else: <cost_else slots>`` over ``len(branch_mask)`` threads.

    Threads are cut into warps of ``warp`` consecutive lanes (the last warp may be partial). A warp whose lanes all take
    the same side pays that side only; a divergent warp pays $c_{if} + c_{else}$.
    """
    m = np.asarray(branch_mask, dtype=bool).reshape(-1)
    total = 0
    for start in range(0, m.size, warp):
        lanes = m[start:start + warp]
        total += cost_if * bool(lanes.any()) + cost_else * bool((~lanes).any())
    return int(total)


@dataclass
class WarpTrace:
    """What a SIMT execution cost: ``slots`` warp-instructions issued, ``lane_slots`` useful lane-instructions."""

    slots: int = 0
    lane_slots: int = 0
    lanes: int = WARP_SIZE

    @property
    def utilisation(self) -> float:
        """Fraction of the issued lanes that did useful work (1 without divergence and full warps)."""
        return self.lane_slots / max(1, self.slots * self.lanes)


Op = Callable[[np.ndarray], np.ndarray]


def simt_branch(x: np.ndarray, cond: Callable[[np.ndarray], np.ndarray], then_ops: Sequence[Op], else_ops: Sequence[Op],
                warp: int = WARP_SIZE) -> tuple[np.ndarray, WarpTrace]:
    """Run ``y = x; if cond(x): y = then_ops(y) else: y = else_ops(y)`` the SIMT way, warp by warp.

    Each warp evaluates ``cond`` (1 slot), then issues every op of the *then* path with the active mask
    ``cond`` and every op of the *else* path with ``~cond``; a path whose mask is empty in this warp is skipped (the
    branch is uniform). A masked lane computes nothing and keeps its value. Returns ``(y, trace)``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = x.copy()
    trace = WarpTrace(lanes=warp)
    for start in range(0, x.size, warp):
        sl = slice(start, min(start + warp, x.size))
        lanes = sl.stop - sl.start
        mask = np.asarray(cond(x[sl]), dtype=bool)                 # the active mask of the *then* path, (lanes,)
        trace.slots += 1                                           # evaluate the condition
        trace.lane_slots += lanes
        for path_mask, ops in ((mask, then_ops), (~mask, else_ops)):
            if not path_mask.any():
                continue                                           # uniform warp: this path is not issued at all
            for op in ops:
                seg = y[sl]
                seg[path_mask] = op(seg[path_mask])                # only active lanes write
                trace.slots += 1
                trace.lane_slots += int(path_mask.sum())
    return y, trace


# ---------------------------------------------------------------- occupancy and latency hiding


@dataclass(frozen=True)
class SMLimits:
    """Per-SM resources (CUDA C++ Programming Guide, "Compute Capabilities", table 'Technical Specifications')."""

    name: str
    max_threads: int            # resident threads per SM
    max_blocks: int             # resident blocks per SM
    registers: int              # 32-bit registers per SM
    shared_bytes: int           # shared memory per SM usable by blocks
    max_threads_per_block: int = 1024
    warp: int = WARP_SIZE


# compute capability 8.0 (A100): 2048 threads, 32 blocks, 64 K registers, up to 164 KB shared memory per SM
A100_SM = SMLimits("A100 (sm_80)", max_threads=2048, max_blocks=32, registers=65536, shared_bytes=164 * 1024)
# compute capability 9.0 (H100): 2048 threads, 32 blocks, 64 K registers, up to 228 KB shared memory per SM
H100_SM = SMLimits("H100 (sm_90)", max_threads=2048, max_blocks=32, registers=65536, shared_bytes=228 * 1024)


def occupancy(threads_per_block: int, regs_per_thread: int, smem_per_block: int, limits: SMLimits = A100_SM) -> float:
    r"""Fraction of the SM's warp slots that resident blocks fill, in a simplified model.

    blocks per SM $= \min\big(B_{max},\ \lfloor T_{max}/(32 w)\rfloor,\ \lfloor R/(32 w\,r)\rfloor,\
    \lfloor S/s\rfloor\big)$ with $w$ warps per block, $r$ registers per thread, $s$ shared bytes per block
    (the shared-memory term only when $s > 0$); occupancy $=$ blocks $\cdot w / (T_{max}/32)$.

    Simplified: registers and shared memory are counted exactly, without the hardware's allocation granularity
    (registers per warp in units of 256, shared memory in units of 128 B, 1 KB reserved per block), which the CUDA
    occupancy calculator includes. A block that cannot fit at all gives 0.0.
    """
    if threads_per_block < 1 or threads_per_block > limits.max_threads_per_block:
        return 0.0
    w = warps_per_block(threads_per_block, limits.warp)
    lanes = w * limits.warp                                        # a partial warp still holds 32 lanes of registers
    candidates = [limits.max_blocks, limits.max_threads // lanes]
    if regs_per_thread > 0:
        candidates.append(limits.registers // (lanes * regs_per_thread))
    if smem_per_block > 0:
        candidates.append(limits.shared_bytes // smem_per_block)
    blocks = max(0, min(candidates))
    return blocks * w / (limits.max_threads // limits.warp)


def latency_hiding_utilisation(n_warps: int, compute_cycles: float, latency_cycles: float) -> float:
    r"""Fraction of cycles an SM scheduler issues work when every warp alternates ``compute`` cycles of arithmetic with
    one memory load that takes ``latency`` cycles: $\min\big(1,\ n\,c/(c + L)\big)$ (Little's law: to keep the unit
    busy, $L/c + 1$ warps must be in flight)."""
    return min(1.0, n_warps * compute_cycles / (compute_cycles + latency_cycles))


def simulate_scheduler(n_warps: int, compute_cycles: int, latency_cycles: int, n_cycles: int = 4000) -> float:
    """Cycle-by-cycle check of :func:`latency_hiding_utilisation`: one issue port; each cycle it runs one cycle of
    arithmetic of a ready warp (round robin); a warp that finishes its ``compute`` cycles waits ``latency`` cycles for
    its load. Returns the fraction of busy cycles."""
    ready_at = np.zeros(n_warps, dtype=np.int64)                   # cycle at which each warp's load returns
    left = np.full(n_warps, compute_cycles)                        # arithmetic cycles left before the next load
    busy, cur = 0, 0
    for t in range(n_cycles):
        for k in range(n_warps):                                   # round robin from the last warp served
            w = (cur + k) % n_warps
            if ready_at[w] <= t:
                busy += 1
                left[w] -= 1
                if left[w] == 0:                                   # issue the load; wait for it
                    ready_at[w] = t + 1 + latency_cycles
                    left[w] = compute_cycles
                    cur = (w + 1) % n_warps
                else:
                    cur = w
                break
    return busy / n_cycles


def blocks_for(n: int, threads_per_block: int) -> int:
    r"""$\lceil n / t \rceil = (n + t - 1) // t$ blocks cover ``n`` elements."""
    return math.ceil(n / threads_per_block)
