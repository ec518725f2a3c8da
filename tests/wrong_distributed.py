"""Plausible wrong answers for chapter v6_systems/04_distributed_training: each must be rejected by its check."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from manifold_course.systems import distributed as ref


def bytes_forgot_factor_two(size, n):
    return (n - 1) / n * size                                        # counts only the reduce-scatter


def bytes_naive(size, n):
    return 2.0 * size                                                # ignores the (n-1)/n


def bubble_approx(p, m):
    return (p - 1) / m                                               # the large-m approximation


def bubble_off_by_one(p, m):
    return (p - 1) / (m + p)


def zero_stage_shifted(n_params, n_ranks, stage, k=12.0):
    return ref.zero_memory_per_rank(n_params, n_ranks, min(stage + 1, 3), k)


def zero_grads_fp32(n_params, n_ranks, stage, k=12.0):
    psi = float(n_params)                                            # stage 2 forgets the fp16 weights stay replicated
    return {0: 16 * psi, 1: 4 * psi + 12 * psi / n_ranks, 2: 16 * psi / n_ranks, 3: 16 * psi / n_ranks}[stage]


def column_with_activation(x, a_shards):
    return [F.gelu(x @ a) for a in a_shards]                         # the activation belongs to the MLP, not the layer


def column_concatenated(x, a_shards):
    y = x @ torch.cat(list(a_shards), dim=1)
    return [y]                                                       # all-gathered: one tensor, not one per rank


def row_bias_per_shard(x_shards, b_shards, bias=None):
    z = 0
    for xi, bi in zip(x_shards, b_shards):
        z = z + xi @ bi + (bias if bias is not None else 0)          # bias added N times
    return z


def row_mean(x_shards, b_shards, bias=None):
    z = sum(xi @ bi for xi, bi in zip(x_shards, b_shards)) / len(x_shards)   # averaged, as in data parallelism
    return z if bias is None else z + bias


def reduce_scatter_wrong_owner(tensors):
    out = ref.reduce_scatter_sim(tensors)
    return out[1:] + out[:1]                                         # rank r holds chunk r + 1


def reduce_scatter_in_place(tensors):
    n = len(tensors)
    total = tensors[0]
    for t in tensors[1:]:
        total += t                                                   # mutates rank 0's buffer
    return [c.clone() for c in torch.tensor_split(total, n)]


def allreduce_mean(tensors):
    s = sum(t.clone() for t in tensors) / len(tensors)
    return [s.clone() for _ in tensors]


def allreduce_one_step_short(tensors):
    n = len(tensors)
    bufs = [[c.clone() for c in torch.tensor_split(t, n)] for t in tensors]
    for s in range(n - 2):                                           # N - 2 steps: a chunk misses a rank
        sent = [bufs[r][(r - s - 1) % n].clone() for r in range(n)]
        for r in range(n):
            src = (r - 1) % n
            bufs[r][(src - s - 1) % n] += sent[src]
    for s in range(n - 1):
        sent = [bufs[r][(r - s) % n].clone() for r in range(n)]
        for r in range(n):
            src = (r - 1) % n
            bufs[r][(src - s) % n] = sent[src]
    return [torch.cat(b) for b in bufs]


def allreduce_shared_buffer(tensors):
    s = sum(t.clone() for t in tensors)
    return [s for _ in tensors]                                      # every rank aliases one tensor


def schedule_torch(p, m):
    return torch.as_tensor(ref.gpipe_schedule(p, m))


def schedule_backward_too_early(p, m):
    t = np.zeros((p, 2 * (m + p - 1)), dtype=np.int64)
    for s in range(p):
        for j in range(m):
            t[s, s + j] = j + 1
            t[s, (m + p - 1) + j] = -(j + 1)                         # ignores the gradient's trip back up the pipe
    return t


def schedule_no_skew(p, m):
    t = np.zeros((p, 2 * (m + p - 1)), dtype=np.int64)
    for s in range(p):
        for j in range(m):
            t[s, j] = j + 1                                          # every stage starts at once
            t[s, m + p - 1 + j] = -(j + 1)
    return t


WRONG = {
    "distributed.allreduce_bytes": [bytes_forgot_factor_two, bytes_naive],
    "distributed.pipeline_bubble": [bubble_approx, bubble_off_by_one],
    "distributed.zero_memory_per_rank": [zero_stage_shifted, zero_grads_fp32],
    "distributed.column_parallel_forward": [column_concatenated, column_with_activation],
    "distributed.row_parallel_forward": [row_bias_per_shard, row_mean],
    "distributed.reduce_scatter_sim": [reduce_scatter_wrong_owner, reduce_scatter_in_place],
    "distributed.ring_allreduce_sim": [allreduce_mean, allreduce_one_step_short, allreduce_shared_buffer],
    "distributed.gpipe_schedule": [schedule_torch, schedule_backward_too_early, schedule_no_skew],
}
