"""Checks for chapter v6_systems/04_distributed_training (Volume 6, sections 6.6-6.7).

"Ranks" are Python lists of tensors, so every check runs in one process. Cases are drawn at grading time: world sizes
2..5, lengths that do not divide by the world size, batch 1, float64. Inputs must never be modified in place (a rank's
buffer is its own). The GPipe timetable is judged by its properties (dependencies, length, idle fraction).
"""

from __future__ import annotations

import numpy as np
import torch

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import float_problem as _float_problem
from manifold_course.systems import distributed as ref

CHAPTER = "v6_systems/04_distributed_training"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F32, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale, dtype=dtype)


def _ranks_cases(rng):
    for n, size, label in ((2, 8, "N = 2, 8 elements"), (3, 10, "N = 3, 10 elements: chunks of 4, 3, 3"),
                           (4, 7, "N = 4, 7 elements: uneven chunks"), (5, 23, "N = 5, 23 elements"),
                           (5, 5, "N = 5, 5 elements: one element per chunk"), (3, 1000, "N = 3, 1000 elements")):
        yield Case(([_t(rng, size) for _ in range(n)],), label=label)
    yield Case(([_t(rng, 13, dtype=F64, scale=1e3) for _ in range(4)],), label="float64, values ~1e3",
               rtol=1e-10, atol=1e-9)


def _no_mutation(fn) -> str | None:
    xs = [torch.arange(7, dtype=F32) + 10 * r for r in range(3)]
    before = [x.clone() for x in xs]
    fn(xs)
    if any(not torch.equal(a, b) for a, b in zip(xs, before)):
        return "your function modified an input tensor in place: copy each rank's buffer first (.clone())"
    return None


def _distinct_outputs(fn) -> str | None:
    outs = fn([torch.ones(6), torch.ones(6), torch.ones(6)])
    if len({id(o) for o in outs}) < len(outs) or any(o.data_ptr() == p.data_ptr() for o in outs for p in outs
                                                    if o is not p and o.numel()):
        return "two ranks share one output tensor: each rank must hold its own buffer"
    return None


def _bytes_cases(rng):
    yield Case((1000.0, 2), label="N = 2: each rank sends S")
    yield Case((4096.0, 1), label="N = 1: nothing to send")
    for n in rng.integers(3, 9, size=3):
        yield Case((float(rng.integers(1, 10**6)), int(n)), label=f"N = {int(n)}")
    yield Case((14e9, 1024), label="S = 14 GB (7B fp16 gradients), N = 1024: close to 2 S", rtol=1e-9)


def _tp_cases(rng):
    for B, d, hs in ((4, 6, (3, 5)), (1, 5, (2, 2, 2)), (3, 7, (4, 1, 3, 2)), (2, 9, (11,))):
        label = f"batch {B}, d_in {d}, shard widths {hs}" + (": batch of one" if B == 1 else "")
        yield Case((_t(rng, B, d), [_t(rng, d, h) for h in hs]), label=label)
    yield Case((_t(rng, 3, 4, dtype=F64), [_t(rng, 4, 3, dtype=F64), _t(rng, 4, 5, dtype=F64)]), label="float64",
               rtol=1e-10, atol=1e-12)


def _row_cases(rng):
    for B, hs, d, bias, label in ((4, (3, 5), 6, False, "two shards, no bias"),
                                  (1, (2, 2, 2), 5, True, "batch of one, three shards, bias: add it once"),
                                  (3, (4, 1, 3, 2), 7, True, "four uneven shards, bias"),
                                  (2, (9,), 3, True, "one shard")):
        yield Case(([_t(rng, B, h) for h in hs], [_t(rng, h, d) for h in hs], _t(rng, d) if bias else None),
                   label=label)
    yield Case(([_t(rng, 2, 3, dtype=F64), _t(rng, 2, 4, dtype=F64)], [_t(rng, 3, 5, dtype=F64), _t(rng, 4, 5, dtype=F64)],
                _t(rng, 5, dtype=F64)), label="float64", rtol=1e-10, atol=1e-12)


def _bubble_cases(rng):
    yield Case((1, 8), label="p = 1: no pipeline, no bubble")
    yield Case((4, 1), label="m = 1: (p-1)/p idle")
    yield Case((4, 4), label="p = 4, m = 4")
    for p, m in zip(rng.integers(2, 9, size=3), rng.integers(2, 40, size=3)):
        yield Case((int(p), int(m)), label=f"p = {int(p)}, m = {int(m)}")
    yield Case((8, 1000), label="m >> p: bubble -> 0 (not (p-1)/m exactly)", rtol=1e-9)


def _judge_bubble(got, expected, case) -> str | None:
    problem = _float_problem(got)
    if problem:
        return problem
    if abs(float(got) - expected) > 1e-9 * max(1.0, abs(expected)):
        p, m = case.args
        return f"for p = {p}, m = {m} expected (p-1)/(m+p-1) = {expected:.6g}, got {float(got):.6g}"
    return None


def _sched_cases(rng):
    for p, m in ((1, 3), (2, 1), (3, 4), (4, 8), (5, 2)):
        yield Case((p, m), label=f"p = {p}, m = {m}")
    p, m = int(rng.integers(2, 7)), int(rng.integers(1, 12))
    yield Case((p, m), label=f"p = {p}, m = {m}")


def _judge_schedule(got, expected, case) -> str | None:
    p, m = case.args
    T = 2 * (m + p - 1)
    if isinstance(got, torch.Tensor):
        return "return a numpy array (np.zeros((p, T), dtype=np.int64)), not a torch.Tensor"
    if not isinstance(got, np.ndarray) or got.dtype.kind not in "iu":
        return "return an integer numpy array of shape (p, 2 (m + p - 1))"
    if got.shape != (p, T):
        return f"the timetable has shape {got.shape}, expected (p, 2 (m + p - 1)) = {(p, T)}: GPipe's makespan"
    f_time, b_time = {}, {}
    for s in range(p):
        for t in range(T):
            v = int(got[s, t])
            if v == 0:
                continue
            j = abs(v) - 1
            if not 0 <= j < m:
                return f"stage {s}, time {t}: entry {v} is not a micro-batch of 1..{m} (or its negative)"
            table = f_time if v > 0 else b_time
            if (s, j) in table:
                return f"stage {s} runs the {'forward' if v > 0 else 'backward'} of micro-batch {j} twice"
            table[(s, j)] = t
    for s in range(p):
        for j in range(m):
            if (s, j) not in f_time or (s, j) not in b_time:
                return f"stage {s} never runs the forward and backward of micro-batch {j}"
            if s > 0 and f_time[(s, j)] <= f_time[(s - 1, j)]:
                return f"forward of micro-batch {j} on stage {s} runs before stage {s - 1} produced its input"
            if s < p - 1 and b_time[(s, j)] <= b_time[(s + 1, j)]:
                return f"backward of micro-batch {j} on stage {s} runs before stage {s + 1} sent its gradient"
            if b_time[(s, j)] <= f_time[(s, j)]:
                return f"backward of micro-batch {j} on stage {s} runs before its forward"
            if b_time[(s, j)] < m + p - 1:
                return "GPipe runs every backward after the last forward has left the pipe (a flush), not 1F1B"
    return None


def _zero_cases(rng):
    for stage, gb in ((0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)):
        yield Case((7.5e9, 64, stage), label=f"the paper's table: 7.5B params, 64 ranks, stage {stage}: ~{gb} GB")
    yield Case((1e6, 1, 3), label="N = 1: every stage costs 16 bytes per parameter")
    for _ in range(3):
        yield Case((float(rng.integers(10**5, 10**10)), int(rng.integers(2, 1025)), int(rng.integers(0, 4))),
                   label="random size, ranks and stage")


def _judge_float(got, expected, case) -> str | None:
    problem = _float_problem(got)
    if problem:
        return problem
    if abs(float(got) - expected) > 1e-9 * abs(expected) + 1e-9:
        return f"{case.label}: expected {expected:.6g}, got {float(got):.6g}"
    return None


EXERCISES = [
    Exercise("distributed.allreduce_bytes", "Bytes per rank of a ring all-reduce",
             cases=_bytes_cases, reference=ref.allreduce_bytes, judge=_judge_float),
    Exercise("distributed.pipeline_bubble", "GPipe bubble fraction",
             cases=_bubble_cases, reference=ref.pipeline_bubble, judge=_judge_bubble),
    Exercise("distributed.zero_memory_per_rank", "ZeRO memory per rank",
             cases=_zero_cases, reference=ref.zero_memory_per_rank, judge=_judge_float),
    Exercise("distributed.column_parallel_forward", "Column-parallel linear layer",
             cases=_tp_cases, reference=ref.column_parallel_forward),
    Exercise("distributed.row_parallel_forward", "Row-parallel linear layer",
             cases=_row_cases, reference=ref.row_parallel_forward),
    Exercise("distributed.reduce_scatter_sim", "Ring reduce-scatter",
             cases=_ranks_cases, reference=ref.reduce_scatter_sim, properties=[_no_mutation]),
    Exercise("distributed.ring_allreduce_sim", "Ring all-reduce",
             cases=_ranks_cases, reference=ref.ring_allreduce_sim, properties=[_no_mutation, _distinct_outputs]),
    Exercise("distributed.gpipe_schedule", "GPipe timetable",
             cases=_sched_cases, judge=_judge_schedule, known_good=ref.gpipe_schedule),
]
