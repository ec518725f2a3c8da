"""Checks for chapter v6_systems/03_triton (Volume 6, section 6.5): Triton kernels written by the learner.

The kernel exercises run the learner's launcher under the Triton interpreter on a CPU. Every input is a view into a
larger buffer filled with NaN (guard regions before and after, and padding columns between rows), and the property
check passes an ``out=`` view surrounded the same way: a kernel that reads past a row without a mask pulls NaN into
its answer, and one that writes without a mask changes a guard region. Sizes are never multiples of the block.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.systems import triton_lessons as L

CHAPTER = "v6_systems/03_triton"
F32 = torch.float32
SENTINEL = -12345.0                  # what the guard regions of `out` hold
GUARD = 1 << 14                      # elements of NaN before and after every buffer: larger than any sane BLOCK overrun


def _t(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale, dtype=F32)


def _g(values: torch.Tensor, row_pad: int = 0) -> torch.Tensor:
    return L.guarded(values, GUARD, row_pad)[0]


# ---------------------------------------------------------------- pure exercises


def _np2_cases(rng):
    for n in (1, 2, 3, 5, 64, 65, 781, 1000, 4097):
        yield Case((n,), label=f"n = {n}")
    for n in rng.integers(6, 100_000, size=3):
        yield Case((int(n),), label=f"n = {n}")


def _judge_int(got, expected, case) -> str | None:
    if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
        return f"return a Python int, got {type(got).__name__} {got!r:.40}"
    if got != expected:
        return f"next_power_of_2({case.args[0]}) should be {expected}, got {got}"
    return None


def _online_cases(rng):
    m0, l0 = torch.full((3,), -math.inf), torch.zeros(3)
    yield Case((m0, l0, _t(rng, 3, 5)), label="first block (m = -inf, l = 0): no nan from -inf - (-inf)")
    m = torch.tensor([0.5, -1.0, 2.0]); l = torch.tensor([1.5, 2.0, 1.0])
    yield Case((m, l, _t(rng, 3, 4)), label="a later block, R = 3, B = 4")
    yield Case((m.clone(), l.clone(), _t(rng, 3, 7) + 5.0), label="the block raises the max: rescale l by e^{m - m'}")
    yield Case((torch.tensor([3.0]), torch.tensor([2.0]), _t(rng, 1, 1) - 10.0), label="one row, block of 1, below the max")
    yield Case((torch.tensor([80.0, 0.0]), torch.tensor([1.0, 1.0]), _t(rng, 2, 6) + 100.0),
               label="large logits (~100): subtract the new max before exp (e^100 overflows float32)")


def _order_cases(rng):
    for num_m, num_n, g in ((9, 9, 3), (4, 6, 2), (5, 3, 2), (7, 4, 3), (3, 5, 8), (6, 6, 1)):
        for pid in sorted({0, num_m * num_n - 1, *map(int, rng.integers(0, num_m * num_n, size=4))}):
            yield Case((pid, num_m, num_n, g), label=f"pid {pid} of a {num_m} x {num_n} tile grid, group_m = {g}"
                       + (" (last group shorter)" if num_m % g else ""))


def _judge_pair(got, expected, case) -> str | None:
    if not isinstance(got, tuple) or len(got) != 2 or not all(isinstance(v, (int, np.integer)) for v in got):
        return f"return a tuple (pid_m, pid_n) of two ints, got {got!r:.60}"
    if tuple(got) != expected:
        return f"expected (pid_m, pid_n) = {expected}, got {tuple(got)}"
    return None


def _covers_every_tile(fn) -> str | None:
    for num_m, num_n, g in ((5, 3, 2), (4, 7, 3)):
        tiles = {tuple(fn(pid, num_m, num_n, g)) for pid in range(num_m * num_n)}
        if len(tiles) != num_m * num_n:
            return f"on a {num_m} x {num_n} grid with group_m = {g} the programs compute only {len(tiles)} distinct tiles"
    return None


# ---------------------------------------------------------------- kernel exercises


def _judge_tensor(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"return the output tensor, got {type(got).__name__}"
    if torch.isnan(got).any() and not torch.isnan(expected).any():
        return ("the output contains NaN: the inputs are views into a buffer padded with NaN, so a kernel that loads "
                "past the end of a row (a missing or wrong mask, or a wrong row stride) pulls NaN in")
    return compare(got, expected, case.rtol or 1e-5, case.atol or 1e-6)


def _guarded_run(call, x_shape, expected, row_pad, label) -> str | None:
    """Call the learner's launcher with out= a NaN-filled view inside a NaN-guarded buffer; check what it wrote."""
    out, buf = L.guarded(torch.zeros(x_shape), GUARD, row_pad, fill=SENTINEL)   # the input's guards hold NaN, these
    out.fill_(math.nan)                                                           # a sentinel that NaN would change
    got = call(out)
    changed = L.outside_view_changed(out, buf, fill=SENTINEL)
    where = f"{label}, called with out= (a view with guard regions around it)"
    if changed:
        return (f"{where}: your kernel wrote {changed} elements outside `out`: mask the tl.store "
                "(mask = offsets < n) so that the last block stops at the end")
    if not (isinstance(got, torch.Tensor) and got.data_ptr() == out.data_ptr() and got.shape == out.shape):
        return f"{where}: write into `out` and return it (like torch's out= arguments)"
    if torch.isnan(out).any() and not torch.isnan(expected).any():
        return (f"{where}: the output contains NaN: the input is padded with NaN, so a load without a mask "
                "(or with a wrong row stride) pulls NaN in")
    problem = compare(out.clone(), expected, 1e-5, 1e-6)
    return f"{where}: {problem}" if problem else None


# The cases call the launcher without out= on sizes that are multiples of any power-of-two BLOCK up to 2^14 (so even
# an unmasked kernel cannot write past the tensor it allocated); the properties below use odd sizes and guarded out=.


def _scale_cases(rng):
    yield Case((_g(_t(rng, 1 << 14)), float(rng.uniform(0.5, 2.0))), label="n = 16384, x a view into a NaN-guarded buffer")
    yield Case((_g(_t(rng, 1 << 12)), -0.5), label="n = 4096, alpha = -0.5")


def _scale_property(fn) -> str | None:
    gen = torch.Generator().manual_seed(1)
    for n, alpha in ((1000, 1.5), (1, -2.0), (4097, 0.25), (777, 3.0)):
        x = _g(torch.randn(n, generator=gen))
        problem = _guarded_run(lambda out: fn(x, alpha, out=out), (n,), alpha * x, 0, f"n = {n}")
        if problem:
            return problem
    return None


def _softmax_cases(rng):
    yield Case((_g(_t(rng, 3, 64), 3),), label="(3, 64), row stride 67 (NaN padding between rows)")
    yield Case((_g(_t(rng, 2, 32, scale=1000.0), 1),), label="(2, 32), huge logits (std 1000): subtract the row max")


def _softmax_property(fn) -> str | None:
    gen = torch.Generator().manual_seed(2)
    for (R, C), scale, shift, pad, label in (((4, 10), 1.0, 0.0, 3, "x (4, 10) with row stride 13"),
                                             ((1, 1), 1.0, 0.0, 2, "one row, one column: softmax = 1"),
                                             ((3, 33), 1.0, 0.0, 5, "(3, 33): n_cols not a power of two"),
                                             ((3, 17), 1000.0, 0.0, 1, "(3, 17), huge logits: subtract the row max"),
                                             ((2, 100), 1.0, -1e4, 4, "(2, 100), logits near -1e4")):
        x = _g(torch.randn(R, C, generator=gen) * scale + shift, pad)
        problem = _guarded_run(lambda out: fn(x, out=out), (R, C), torch.softmax(x, -1), pad + 2, label)
        if problem:
            return problem
    return None


def _rms_cases(rng):
    yield Case((_g(_t(rng, 3, 64), 3), _t(rng, 64), 1e-6), label="(3, 64), row stride 67")
    yield Case((_g(_t(rng, 2, 16, scale=1e-3), 1), _t(rng, 16), 1e-5), label="tiny x: eps inside the square root")


def _rms_property(fn) -> str | None:
    gen = torch.Generator().manual_seed(3)
    for (R, C), scale, eps, pad, label in (((4, 10), 1.0, 1e-6, 3, "x (4, 10) with row stride 13"),
                                           ((1, 1), 1.0, 1e-6, 2, "one row, one column"),
                                           ((3, 37), 1.0, 1e-6, 5, "(3, 37): the mean is over the 37 real columns"),
                                           ((2, 9), 1e-3, 1e-5, 1, "(2, 9), tiny x: eps inside the square root")):
        x, w = _g(torch.randn(R, C, generator=gen) * scale, pad), torch.randn(C, generator=gen)
        expected = x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w
        problem = _guarded_run(lambda out: fn(x, w, eps, out=out), (R, C), expected, pad + 3, label)
        if problem:
            return problem
    return None


EXERCISES = [
    Exercise("triton.next_power_of_2", "BLOCK = the next power of two", cases=_np2_cases,
             reference=L.next_power_of_2, judge=_judge_int),
    Exercise("triton.online_softmax_update", "One step of the online softmax", cases=_online_cases,
             reference=L.online_softmax_update, rtol=1e-5, atol=1e-6),
    Exercise("triton.grouped_program_order", "Grouped program ordering of a blocked matmul", cases=_order_cases,
             reference=L.grouped_program_order, judge=_judge_pair, properties=[_covers_every_tile]),
    Exercise("triton.vector_scale", "A masked Triton kernel: y = alpha * x", cases=_scale_cases,
             reference=L.vector_scale, judge=_judge_tensor, properties=[_scale_property], judged_in_child=True),
    Exercise("triton.row_softmax", "A row-softmax Triton kernel", cases=_softmax_cases,
             reference=L.row_softmax, judge=_judge_tensor, properties=[_softmax_property], judged_in_child=True),
    Exercise("triton.rms_norm", "An RMSNorm Triton kernel", cases=_rms_cases,
             reference=L.rms_norm, judge=_judge_tensor, properties=[_rms_property], judged_in_child=True),
]
