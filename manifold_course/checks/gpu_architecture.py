"""Checks for chapter v6_systems/01_gpu_architecture (Volume 6, sections 6.1-6.3).

Cases are drawn at grading time from the seeded generator. Integer answers (slots, bytes, ids) must be exact; float
answers match the closed forms to 1e-9; the mixed-precision dot product must reproduce left-to-right accumulation in
the requested dtype to a couple of its ulps; the loss scaler is driven through a seeded sequence of clean and
overflowing steps, step by step against the reference state machine.
"""

from __future__ import annotations

import numpy as np
import torch

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import float_problem as _float_problem
from manifold_course.systems import precision, roofline, simt
from manifold_course.systems.simt import A100_SM, H100_SM, SMLimits

CHAPTER = "v6_systems/01_gpu_architecture"

# ---------------------------------------------------------------- 6.1 SIMT


def _warp_cases(rng):
    yield Case((np.ones(32, dtype=bool), 3, 5), label="one warp, every lane takes the if: 3 slots")
    yield Case((np.zeros(32, dtype=bool), 3, 5), label="one warp, no lane takes the if: 5 slots")
    m = np.zeros(32, dtype=bool)
    m[int(rng.integers(32))] = True
    yield Case((m, 3, 5), label="one warp, a single lane diverges: 3 + 5 slots")
    yield Case((np.arange(64) < 32, 7, 2), label="64 threads, warp 0 all if, warp 1 all else: no divergence")
    yield Case((np.arange(40) >= 32, 4, 6), label="40 threads: the last warp has 8 lanes, all taking the if")
    yield Case((rng.random(int(rng.integers(70, 200))) < 0.5, int(rng.integers(1, 10)), int(rng.integers(1, 10))),
               label="random mask, a partial last warp")
    yield Case((np.arange(100) % 2 == 0, 2, 3), kwargs={"warp": 16}, label="warp = 16 (e.g. half-warps)")
    yield Case((np.ones(1, dtype=bool), 4, 9), label="a single thread")


def _gid_cases(rng):
    yield Case((4, 32), label="1-D: 4 blocks of 32")
    yield Case((3, 100), label="1-D: 3 blocks of 100 (not a multiple of 32)")
    yield Case((1, 1), label="one block of one thread")
    yield Case(((3, 2), (5, 3)), label="2-D: grid (3, 2), block (5, 3): ids follow the row-major global array")
    yield Case(((1, 4), (8, 1)), label="2-D: grid (1, 4), block (8, 1)")
    gx, gy, bx, by = (int(v) for v in rng.integers(1, 6, size=4))
    yield Case(((gx, gy), (bx, by)), label=f"2-D: grid ({gx}, {gy}), block ({bx}, {by})")


def _gid_covers_once(fn) -> str | None:
    ids = np.asarray(fn((4, 3), (7, 2))).reshape(-1)
    if not np.array_equal(np.sort(ids), np.arange(4 * 3 * 7 * 2)):
        return "grid (4, 3), block (7, 2): the ids should cover 0 ... 167 exactly once"
    return None


def _occ_cases(rng):
    yield Case((256, 32, 0), label="256 threads, 32 registers, no shared memory: full occupancy")
    yield Case((256, 64, 0), label="64 registers per thread: the register file limits it to half")
    yield Case((256, 32, 48 * 1024), label="48 KB of shared memory per block: 3 blocks fit in 164 KB")
    yield Case((97, 40, 0), label="97 threads = 4 warps (a partial warp still holds 32 lanes of registers)")
    yield Case((32, 16, 0), label="tiny blocks of 32 threads: the limit of 32 blocks per SM binds")
    yield Case((1024, 65, 0), label="1024 threads x 65 registers > 65 536: no block fits, occupancy 0")
    yield Case((128, 72, 100 * 1024), kwargs={"limits": H100_SM}, label="H100 limits: 228 KB of shared memory per SM")
    t = int(rng.integers(33, 1024))
    r = int(rng.integers(16, 128))
    yield Case((t, r, int(rng.integers(0, 40_000))), kwargs={"limits": SMLimits("custom", 1536, 16, 65536, 100 * 1024)},
               label=f"custom SM (1536 threads, 16 blocks, 100 KB), {t} threads x {r} registers")


def _occ_reference(threads_per_block, regs_per_thread, smem_per_block, limits=A100_SM):
    return simt.occupancy(threads_per_block, regs_per_thread, smem_per_block, limits)


# ---------------------------------------------------------------- 6.2 roofline and traffic


def _ai_cases(rng):
    yield Case(("vector_add", (1_000_000,), 4), label="fp32 vector add: 1/12 FLOP per byte")
    yield Case(("vector_add", (int(rng.integers(1, 10_000)),), 2), label="fp16 vector add")
    yield Case(("matmul", (1024, 1024, 1024), 2), label="square fp16 matmul n = 1024: 2n/(3b)")
    yield Case(("matmul", (1, 4096, 4096), 2), label="a matrix-vector product (M = 1): memory-bound")
    M, N, K = (int(v) for v in rng.integers(1, 500, size=3))
    yield Case(("matmul", (M, N, K), 4), label=f"matmul ({M}, {K}) x ({K}, {N}) in fp32")
    yield Case(("softmax", (int(rng.integers(1, 300)), 1000), 4), label="row softmax, fp32: 5 FLOPs, 2 elements")
    yield Case(("layer_norm", (1, 768), 2), label="LayerNorm of one row: the gain and bias reads matter")
    yield Case(("layer_norm", (4096, 1024), 4), label="LayerNorm (4096, 1024), fp32")


def _roof_cases(rng):
    h = roofline.GPUS["H100 SXM"]
    a = roofline.GPUS["A100 80GB SXM"]
    yield Case((1 / 12, h.tensor_fp16_flops, h.hbm_bandwidth), label="vector add on an H100: memory-bound")
    yield Case((1e4, h.tensor_fp16_flops, h.hbm_bandwidth), label="I = 1e4: compute-bound, the peak")
    yield Case((a.tensor_fp16_flops / a.hbm_bandwidth, a.tensor_fp16_flops, a.hbm_bandwidth),
               label="exactly at the A100's ridge point")
    yield Case((0.0, 1e12, 1e11), label="I = 0")
    yield Case((float(rng.uniform(0.1, 100)), float(rng.uniform(1e11, 1e12)), float(rng.uniform(1e10, 1e11))),
               label="random CPU-like numbers")


def _tile_cases(rng):
    yield Case((64, 64, 64, 1, 4), label="tile 1 = the naive traffic 2MNK + MN")
    yield Case((64, 64, 64, 16, 4), label="64^3, tile 16")
    yield Case((100, 70, 33, 16, 2), label="sizes not multiples of the tile: ragged edge tiles")
    yield Case((8, 8, 8, 32, 4), label="tile larger than the matrix: each operand is read once")
    M, N, K = (int(v) for v in rng.integers(1, 300, size=3))
    t = int(rng.integers(2, 64))
    yield Case((M, N, K, t, 2), label=f"M {M}, N {N}, K {K}, tile {t}")
    yield Case((1, 5000, 3, 7, 8), label="M = 1, float64")


# ---------------------------------------------------------------- 6.3 mixed precision

F16, BF16, F32, F64 = torch.float16, torch.bfloat16, torch.float32, torch.float64
_EPS = {F16: 2.0**-10, F32: 2.0**-23, F64: 2.0**-52}


def _dot_cases(rng):
    def u(n):
        return torch.as_tensor(rng.random(n), dtype=F64)

    def g(n, shift=0.5):
        return torch.as_tensor(rng.standard_normal(n) + shift, dtype=F64)

    def case(a, b, i, acc, label, rtol):
        return Case((a, b, i, acc), label=label, rtol=rtol, atol=0.0)

    yield case(u(4096), u(4096), F16, F16, "n 4096 in [0, 1), fp16 accumulation: the sum swamps the products", 2e-3)
    yield case(u(4096), u(4096), F16, F32, "n 4096, fp16 inputs, fp32 accumulation", 1e-5)
    yield case(u(4096), u(4096), BF16, F32, "n 4096, bf16 inputs, fp32 accumulation", 1e-5)
    yield case(g(1000), g(1000), F16, F16, "n 1000 Gaussian + 0.5, fp16 accumulation", 2e-3)
    yield case(g(777), g(777), F32, F32, "n 777, fp32 in and out", 1e-5)
    yield case(g(513), g(513), F64, F64, "n 513, float64", 1e-12)
    yield case(u(1) + 0.25, u(1) + 0.25, F16, F32, "n 1: one product of fp16-rounded inputs", 1e-7)
    yield case(u(300) * 200, u(300), BF16, F64, "bf16 inputs, float64 accumulation", 1e-12)


def _judge_dot(got, expected, case) -> str | None:
    problem = _float_problem(got)
    if problem:
        return problem
    in_dtype, acc = case.args[2], case.args[3]
    err = abs(float(got) - expected)
    if err > case.rtol * abs(expected):
        hint = ("round a and b to in_dtype first, then accumulate the products one by one, left to right, rounding "
                "the running sum to acc_dtype after every addition")
        if acc == F16:
            hint += " (torch's .sum() and dot on CPU accumulate half precision in fp32 internally: write the loop)"
        return f"expected {expected:.7g}, got {float(got):.7g} ({in_dtype} inputs, {acc} accumulation): {hint}"
    return None


def _flags(rng, interval: int) -> list[bool]:
    """A step sequence: runs of clean steps longer and shorter than the interval, overflow bursts."""
    n = min(3 * interval + 40, 6500)
    p = min(0.25, 0.8 / interval) if interval > 1 else 0.3
    flags = [bool(f) for f in rng.random(n) < p]
    flags[:2] = [True, True]                                       # two overflows in a row first
    return flags


def _scaler_cases(rng):
    for init, interval, label in ((2.0**16, 3, "init 2^16, growth interval 3"),
                                  (1024.0, 1, "growth interval 1: doubles after every clean step"),
                                  (float(2 ** int(rng.integers(4, 20))), int(rng.integers(2, 9)), "random init and interval"),
                                  (65536.0, 2000, "torch's defaults (2^16, 2000)")):
        yield Case((init, interval, _flags(rng, interval)), label=label)


def _number(x):
    """A learner's number as plain data: a float, or the name of what it is instead."""
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_)):
        return float(x)
    return type(x).__name__


def _scaler_observe(cls):
    """Adapter: construct the scaler, then record what update(found_inf) returns and the scale after each step."""

    def observed(init_scale, interval, flags):
        s = cls(init_scale, interval)
        if not hasattr(s, "scale") or not callable(getattr(s, "update", None)):
            return {"api": False}
        steps = []
        scale0 = _number(s.scale)
        for inf in flags:
            apply = s.update(inf)
            steps.append([bool(apply) if isinstance(apply, (bool, np.bool_)) else type(apply).__name__, _number(s.scale)])
        return {"api": True, "scale0": scale0, "steps": steps}

    observed.__name__ = getattr(cls, "__name__", "DynamicLossScaler")
    return observed


def _judge_scaler(got, expected, case) -> str | None:
    init_scale, interval, flags = case.args
    if not isinstance(got, dict) or not got.get("api"):
        return "DynamicLossScaler(init_scale, growth_interval) should have an attribute `scale` and a method `update`"
    if isinstance(got.get("scale0"), str):
        return f"scale should be a float, got {got['scale0']}"
    if got["scale0"] != init_scale:
        return f"right after construction, scale should be init_scale = {init_scale:g}, got {got['scale0']:g}"
    steps = got.get("steps")
    if not isinstance(steps, list) or len(steps) != len(flags):
        return "the grader could not observe your scaler's steps"
    for step, (inf, (apply, scale), (want_apply, want_scale)) in enumerate(zip(flags, steps, expected["steps"])):
        if isinstance(apply, str):
            return f"update(found_inf) should return a bool (apply the step or not), got {apply}"
        if apply != want_apply:
            return (f"step {step} (found_inf={inf}): update returned {apply}, expected {want_apply}: "
                    "skip the optimiser step exactly when a gradient is inf/NaN")
        if isinstance(scale, str):
            return f"step {step}: scale should be a float, got {scale}"
        if scale != want_scale:
            return (f"step {step} (found_inf={inf}): scale is {scale:g}, expected {want_scale:g}. "
                    f"On inf: halve the scale and reset the count of clean steps; otherwise count the step and double "
                    f"the scale when the count reaches growth_interval = {interval} (then reset it)")
    return None


EXERCISES = [
    Exercise("gpu_architecture.warp_cost", "Instruction slots of a branch in SIMT warps",
             cases=_warp_cases, reference=simt.warp_cost),
    Exercise("gpu_architecture.global_ids", "Global thread ids of a 1-D or 2-D grid",
             cases=_gid_cases, reference=simt.global_ids, properties=[_gid_covers_once]),
    Exercise("gpu_architecture.occupancy", "Occupancy from threads, registers and shared memory",
             cases=_occ_cases, reference=_occ_reference, rtol=1e-12, atol=1e-12),
    Exercise("gpu_architecture.arithmetic_intensity", "Arithmetic intensity of real operations",
             cases=_ai_cases, reference=roofline.arithmetic_intensity, rtol=1e-9, atol=1e-12),
    Exercise("gpu_architecture.roofline", "The roofline: attainable FLOP/s",
             cases=_roof_cases, reference=roofline.roofline, rtol=1e-9, atol=1e-6),
    Exercise("gpu_architecture.tiled_matmul_traffic", "Memory traffic of a tiled matmul",
             cases=_tile_cases, reference=roofline.tiled_matmul_traffic),
    Exercise("gpu_architecture.mixed_precision_dot", "A dot product with fp16 or fp32 accumulation",
             cases=_dot_cases, reference=precision.mixed_precision_dot, judge=_judge_dot),
    Exercise("gpu_architecture.DynamicLossScaler", "Dynamic loss scaling as a state machine",
             cases=_scaler_cases, reference=precision.DynamicLossScaler, adapter=_scaler_observe, judge=_judge_scaler),
]
