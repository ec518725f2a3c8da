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
        return f"return the output tensor, got {got if isinstance(got, str) else type(got).__name__}"
    if torch.isnan(got).any() and not torch.isnan(expected).any():
        return ("the output contains NaN: the inputs are views into a buffer padded with NaN, so a kernel that loads "
                "past the end of a row (a missing or wrong mask, or a wrong row stride) pulls NaN in")
    return compare(got, expected, case.rtol or 1e-5, case.atol or 1e-6)


def _kernel_observe(fn):
    """Adapter: call the learner's launcher as the case says and observe what it did, as plain data.

    A case without ``out_guard`` calls ``fn(*args)`` and observes the returned tensor. A case with
    ``out_guard=(shape, row_pad)`` passes ``out=`` a NaN-filled view inside a buffer whose guard regions (and
    padding between rows) hold a sentinel: it observes whether the launcher returned ``out`` itself, how many
    elements it wrote outside the view, and what it wrote into it.
    """

    def observed(*args, out_guard=None):
        if out_guard is None:
            got = fn(*args)
            return {"result": got if isinstance(got, torch.Tensor) else type(got).__name__}
        shape, row_pad = out_guard
        out, buf = L.guarded(torch.zeros(tuple(shape)), GUARD, row_pad, fill=SENTINEL)
        out.fill_(math.nan)                                       # the input's guards hold NaN, these a sentinel
        got = fn(*args, out=out)
        return {"returned_out": isinstance(got, torch.Tensor) and got.data_ptr() == out.data_ptr()
                and tuple(got.shape) == tuple(out.shape),
                "wrote_outside": L.outside_view_changed(out, buf, fill=SENTINEL), "out": out.clone()}

    observed.__name__ = getattr(fn, "__name__", "launcher")
    return observed


def _judge_kernel(got, expected, case) -> str | None:
    if not isinstance(got, dict) or set(got) != set(expected):
        return "the grader could not observe your launcher"
    if "result" in expected:
        return _judge_tensor(got["result"], expected["result"], case)
    where = f"{case.label}, called with out= (a view with guard regions around it)"
    if got["wrote_outside"]:
        return (f"{where}: your kernel wrote {got['wrote_outside']} elements outside `out`: mask the tl.store "
                "(mask = offsets < n) so that the last block stops at the end")
    if not got["returned_out"]:
        return f"{where}: write into `out` and return it (like torch's out= arguments)"
    if torch.isnan(got["out"]).any() and not torch.isnan(expected["out"]).any():
        return (f"{where}: the output contains NaN: the input is padded with NaN, so a load without a mask "
                "(or with a wrong row stride) pulls NaN in")
    problem = compare(got["out"], expected["out"], 1e-5, 1e-6)
    return f"{where}: {problem}" if problem else None


# The first cases call the launcher without out= on sizes that are multiples of any power-of-two BLOCK up to 2^14 (so
# even an unmasked kernel cannot write past the tensor it allocated); the others use odd sizes and a guarded out=.


def _scale_cases(rng):
    yield Case((_g(_t(rng, 1 << 14)), float(rng.uniform(0.5, 2.0))), label="n = 16384, x a view into a NaN-guarded buffer")
    yield Case((_g(_t(rng, 1 << 12)), -0.5), label="n = 4096, alpha = -0.5")
    for n, alpha in ((1000, 1.5), (1, -2.0), (4097, 0.25), (777, 3.0)):
        yield Case((_g(_t(rng, n)), alpha), {"out_guard": ((n,), 0)}, label=f"n = {n}")


def _softmax_cases(rng):
    yield Case((_g(_t(rng, 3, 64), 3),), label="(3, 64), row stride 67 (NaN padding between rows)")
    yield Case((_g(_t(rng, 2, 32, scale=1000.0), 1),), label="(2, 32), huge logits (std 1000): subtract the row max")
    for (R, C), scale, shift, pad, label in (((4, 10), 1.0, 0.0, 3, "x (4, 10) with row stride 13"),
                                             ((1, 1), 1.0, 0.0, 2, "one row, one column: softmax = 1"),
                                             ((3, 33), 1.0, 0.0, 5, "(3, 33): n_cols not a power of two"),
                                             ((3, 17), 1000.0, 0.0, 1, "(3, 17), huge logits: subtract the row max"),
                                             ((2, 100), 1.0, -1e4, 4, "(2, 100), logits near -1e4")):
        yield Case((_g(_t(rng, R, C, scale=scale) + shift, pad),), {"out_guard": ((R, C), pad + 2)}, label=label)


def _rms_cases(rng):
    yield Case((_g(_t(rng, 3, 64), 3), _t(rng, 64), 1e-6), label="(3, 64), row stride 67")
    yield Case((_g(_t(rng, 2, 16, scale=1e-3), 1), _t(rng, 16), 1e-5), label="tiny x: eps inside the square root")
    for (R, C), scale, eps, pad, label in (((4, 10), 1.0, 1e-6, 3, "x (4, 10) with row stride 13"),
                                           ((1, 1), 1.0, 1e-6, 2, "one row, one column"),
                                           ((3, 37), 1.0, 1e-6, 5, "(3, 37): the mean is over the 37 real columns"),
                                           ((2, 9), 1e-3, 1e-5, 1, "(2, 9), tiny x: eps inside the square root")):
        yield Case((_g(_t(rng, R, C, scale=scale), pad), _t(rng, C), eps), {"out_guard": ((R, C), pad + 3)}, label=label)


EXERCISES = [
    Exercise("triton.next_power_of_2", "BLOCK = the next power of two", cases=_np2_cases,
             reference=L.next_power_of_2, judge=_judge_int),
    Exercise("triton.online_softmax_update", "One step of the online softmax", cases=_online_cases,
             reference=L.online_softmax_update, rtol=1e-5, atol=1e-6),
    Exercise("triton.grouped_program_order", "Grouped program ordering of a blocked matmul", cases=_order_cases,
             reference=L.grouped_program_order, judge=_judge_pair, properties=[_covers_every_tile]),
    Exercise("triton.vector_scale", "A masked Triton kernel: y = alpha * x", cases=_scale_cases,
             reference=L.vector_scale, adapter=_kernel_observe, judge=_judge_kernel),
    Exercise("triton.row_softmax", "A row-softmax Triton kernel", cases=_softmax_cases,
             reference=L.row_softmax, adapter=_kernel_observe, judge=_judge_kernel),
    Exercise("triton.rms_norm", "An RMSNorm Triton kernel", cases=_rms_cases,
             reference=L.rms_norm, adapter=_kernel_observe, judge=_judge_kernel),
]
