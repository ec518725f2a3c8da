"""Checks for chapter v6_systems/02_cuda_programming (Volume 6, section 6.4).

Cases are drawn at grading time from the seeded generator. The kernel exercises are *launchers* the learner writes
around a ``@cuda.jit`` kernel; the grader picks the launch configuration, always with sizes that are not multiples
of the block, so the last block overhangs the data (more threads than elements) and a kernel without a bounds check
reads past the end: the CUDA simulator raises ``IndexError`` (a real GPU would silently corrupt memory). Launches
stay at a few hundred threads because the simulator runs each thread as a Python thread.

What the simulator cannot reveal: a *missing* ``cuda.syncthreads()`` is a race whose outcome depends on thread
scheduling, so it may pass here and fail on a GPU (the wrong answers of the tests use reliably wrong trees instead);
uncoalesced access, bank conflicts and warp divergence change speed, not results, and are invisible to it.
"""

from __future__ import annotations

import numpy as np

from manifold_course.grading import Case, Exercise
from manifold_course.systems import cuda_basics as cb

CHAPTER = "v6_systems/02_cuda_programming"

_OVERHANG = ("; an IndexError means a thread read or wrote past the end of an array: the grid has more threads "
             "than elements, add `if i < n`")


def _f32(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- launch arithmetic


def _launch_cases(rng):
    yield Case((1000, 256), label="n = 1000, 256 threads: 4 blocks (24 idle threads)")
    yield Case((1024, 256), label="n = 1024 exactly 4 blocks: no extra block")
    yield Case((1, 128), label="n = 1: one block")
    yield Case((100_000, 256), label="the seed's n = 100 000")
    yield Case((257, 32), label="one element past a multiple: one more block")
    for _ in range(3):
        yield Case((int(rng.integers(1, 10**7)), int(rng.choice([32, 64, 96, 128, 256, 1024]))), label="random n")


def _launch_covers(fn) -> str | None:
    for n in (1, 31, 32, 33, 999, 4096):
        blocks, threads = fn(n, 64)
        if not isinstance(blocks, (int, np.integer)):
            return f"blocks should be an int, got {type(blocks).__name__} (use //, not /)"
        if blocks * threads < n or blocks * threads - n >= threads:
            return f"n={n}, 64 threads: {blocks} blocks leave {n - blocks * threads} elements uncovered or a whole idle block"
    return None


# ---------------------------------------------------------------- kernels


def _vadd_cases(rng):
    yield Case((_f32(rng, 100), _f32(rng, 100), 4, 32), label=f"n = 100, 4 blocks x 32 threads (28 threads past the end){_OVERHANG}")
    yield Case((_f32(rng, 1), _f32(rng, 1), 1, 64), label=f"n = 1, one block of 64{_OVERHANG}")
    n = int(rng.integers(130, 300))
    t = int(rng.choice([32, 64]))
    blocks = (n + t - 1) // t
    if blocks * t == n:
        n -= 1
    yield Case((_f32(rng, n), _f32(rng, n), blocks, t), label=f"n = {n}, {blocks} blocks x {t}{_OVERHANG}")
    yield Case((np.full(50, 1e30, np.float32), np.full(50, -1e30, np.float32), 2, 32),
               label=f"large values cancel: 0{_OVERHANG}")


def _scale_cases(rng):
    yield Case((_f32(rng, 200), 2.5, 2, 32), label="n = 200 with only 64 threads: each thread loops over 3-4 elements")
    yield Case((_f32(rng, 37), -1.0, 1, 32), label="n = 37, one block of 32: 5 elements need a second pass")
    yield Case((_f32(rng, 10), 3.0, 2, 32), label="n = 10, 64 threads: more threads than elements (bounds)")
    n = int(rng.integers(150, 400))
    yield Case((_f32(rng, n), float(rng.standard_normal()), int(rng.integers(1, 4)), 32), label=f"n = {n}, random grid")


def _madd_cases(rng):
    yield Case((_f32(rng, 13, 21), _f32(rng, 13, 21), (8, 4)), label=f"13 x 21 with 8 x 4 blocks: edge blocks overhang{_OVERHANG}")
    yield Case((_f32(rng, 5, 40), _f32(rng, 5, 40), (16, 2)), label=f"5 x 40, wide: rows and columns must not be swapped{_OVERHANG}")
    yield Case((_f32(rng, 1, 1), _f32(rng, 1, 1), (4, 4)), label=f"1 x 1 matrix{_OVERHANG}")
    r, c = (int(v) for v in rng.integers(3, 20, size=2))
    yield Case((_f32(rng, r, c), _f32(rng, r, c), (4, 8)), label=f"{r} x {c}, blocks 4 x 8{_OVERHANG}")


def _bsum_cases(rng):
    yield Case((_f32(rng, 70), 32), label="n = 70, blocks of 32: 3 blocks, the last holds 6 elements",
               rtol=1e-5, atol=1e-5)
    yield Case((_f32(rng, 16), 16), label="n = 16, one full block of 16", rtol=1e-5, atol=1e-5)
    yield Case((np.ones(5, np.float32), 8), label="five ones in a block of 8: 5", rtol=0, atol=0)
    n = int(rng.integers(17, 31))
    yield Case((_f32(rng, n), 16), label=f"n = {n}, blocks of 16", rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- performance models


def _warp_cases(rng):
    yield Case((cb.warp_addresses(1),), label="32 consecutive fp32 (stride 1): 128 bytes = 4 sectors")
    yield Case((cb.warp_addresses(32),), label="stride 32 fp32: every lane in its own sector, 32")
    yield Case((cb.warp_addresses(2),), label="stride 2 fp32: 8 sectors")
    yield Case((cb.warp_addresses(1, base=4),), label="stride 1, misaligned by 4 elements (16 bytes): 5 sectors")
    yield Case((np.zeros(32, dtype=np.int64),), label="all lanes read the same address (a broadcast): 1")
    yield Case((cb.warp_addresses(1, elem_bytes=8),), label="fp64, stride 1: 256 bytes = 8 sectors")
    yield Case((cb.warp_addresses(1), 128), label="sector_bytes = 128 (count 128-byte lines): 1")
    yield Case((np.sort(rng.integers(0, 4096, size=32)),), label="32 random addresses in 4 KiB")


def _tiled_cases(rng):
    yield Case((64, 64, 64, 1), label="tile 1 = naive: 2MNK")
    yield Case((64, 64, 64, 16), label="tile 16: 16 times fewer than naive")
    yield Case((19, 21, 23, 16), label="19 x 21 x 23, tile 16: ragged tiles (ceil, not division)")
    yield Case((1, 4096, 4096, 32), label="M = 1 (matrix-vector)")
    yield Case((128, 64, 32, 8), label="rectangular: A is loaded ceil(N/t) times, B ceil(M/t) times")
    m, n, k = (int(v) for v in rng.integers(1, 300, size=3))
    yield Case((m, n, k, int(rng.choice([4, 8, 16, 32]))), label=f"random {m} x {n} x {k}")


def _tiled_int(got, expected, case) -> str | None:
    if not isinstance(got, (int, np.integer)):
        return f"return an int (a count of loads), got {type(got).__name__}"
    if got != expected:
        return f"{case.label}: expected {expected} loads, got {got}"
    return None


EXERCISES = [
    Exercise("cuda_programming.launch_config", "Blocks to cover n elements",
             cases=_launch_cases, reference=cb.launch_config, properties=[_launch_covers]),
    Exercise("cuda_programming.vector_add", "Vector-add kernel with a bounds check",
             cases=_vadd_cases, reference=cb.vector_add, rtol=0.0, atol=0.0),
    Exercise("cuda_programming.scale_grid_stride", "Grid-stride loop",
             cases=_scale_cases, reference=cb.scale_grid_stride, rtol=1e-6, atol=1e-6),
    Exercise("cuda_programming.matrix_add", "2-D matrix-add kernel",
             cases=_madd_cases, reference=cb.matrix_add, rtol=0.0, atol=0.0),
    Exercise("cuda_programming.block_sum", "Shared-memory block reduction",
             cases=_bsum_cases, reference=cb.block_sum, timeout=20.0),
    Exercise("cuda_programming.warp_transactions", "Coalescing: transactions per warp",
             cases=_warp_cases, reference=cb.warp_transactions),
    Exercise("cuda_programming.tiled_matmul_global_reads", "Global loads of a tiled matmul",
             cases=_tiled_cases, reference=cb.tiled_matmul_global_reads, judge=_tiled_int),
]
