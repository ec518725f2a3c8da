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
# # Volume 6, Chapter 4 exercises: Distributed training (sections 6.6-6.7)
#
# Eight pieces of distributed training, simulated in one process: "ranks" are Python lists of tensors, and a message
# from rank $r$ to rank $r+1$ is reading one list entry into another. Write the body where it says `# YOUR CODE HERE`,
# run the cell, then run the `check(...)` cell below it: it answers at once with a green "passed" or a red message that
# says what to fix. The checks draw fresh random cases each time (world sizes 2 to 5, lengths that do not divide by
# the world size, batch 1, float64).
#
# The lecture is `chapters/v6_systems/04_distributed_training.ipynb`. Please write your own code rather than importing
# the course's reference implementations (`manifold_course/systems/distributed.py`).
#
# Conventions: **never modify an input in place** (a rank's buffer belongs to that rank); `torch.tensor_split(x, N)`
# defines the $N$ chunks of a vector (sizes differ by at most one; the first chunks are the longer ones).

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import numpy as np
import torch

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: bytes of a ring all-reduce (warm-up)
#
# `allreduce_bytes(size, n) -> float`: the amount each of $n$ ranks sends in a ring all-reduce of a tensor of `size`
# bytes: $2\frac{n-1}{n}S$ (reduce-scatter, then all-gather, each $n-1$ steps of one chunk of $S/n$).
#
# **Checked:** $n = 1$ (nothing to send), $n = 2$, random $n$, and 14 GB over 1024 ranks.

# %%
def allreduce_bytes(size, n):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("distributed.allreduce_bytes", allreduce_bytes)

# %% [markdown]
# ## Exercise 2: the GPipe bubble
#
# `pipeline_bubble(p, m) -> float`: the fraction of stage-time slots left idle when $p$ pipeline stages process $m$
# micro-batches with GPipe: $(p-1)/(m+p-1)$.
#
# **Checked:** $p = 1$, $m = 1$, random $(p, m)$, and $m = 1000$ (exactly, not the approximation $(p-1)/m$).

# %%
def pipeline_bubble(p, m):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("distributed.pipeline_bubble", pipeline_bubble)

# %% [markdown]
# ## Exercise 3: ZeRO memory per rank
#
# `zero_memory_per_rank(n_params, n_ranks, stage, k=12.0) -> float` bytes per rank for mixed-precision Adam
# ($\Psi$ parameters, $N$ ranks, $K = 12$ bytes of fp32 optimizer state per parameter):
#
# | stage | sharded | bytes per rank |
# |---|---|---|
# | 0 (plain data parallel) | nothing | $(2 + 2 + K)\Psi$ |
# | 1 | optimizer state | $4\Psi + K\Psi/N$ |
# | 2 | + gradients | $2\Psi + (2 + K)\Psi/N$ |
# | 3 | + parameters | $(2 + 2 + K)\Psi/N$ |
#
# **Checked:** the paper's table (7.5 B parameters, 64 ranks: 120 / 31.4 / 16.6 / 1.9 GB), $N = 1$, random cases.

# %%
def zero_memory_per_rank(n_params, n_ranks, stage, k=12.0):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("distributed.zero_memory_per_rank", zero_memory_per_rank)

# %% [markdown]
# ## Exercise 4: column-parallel linear layer
#
# `column_parallel_forward(x, a_shards) -> list of tensors`: $x$ is `(B, d_in)`, `a_shards[i]` is the block $A_i$ of
# shape `(d_in, h_i)` of a weight $A = [A_1, \dots, A_N]$ split by columns. Rank $i$ computes $Y_i = x A_i$ of shape
# `(B, h_i)` with no communication; return the list $[Y_1, \dots, Y_N]$ (do not concatenate: that would be an
# all-gather).
#
# **Checked:** 1 to 4 shards of unequal widths, batch 1, float64.

# %%
def column_parallel_forward(x, a_shards):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("distributed.column_parallel_forward", column_parallel_forward)

# %% [markdown]
# ## Exercise 5: row-parallel linear layer
#
# `row_parallel_forward(x_shards, b_shards, bias=None) -> tensor`: rank $i$ holds the slice $X_i$ `(B, h_i)` of the
# input and the rows $B_i$ `(h_i, d_out)` of the weight; the output is $Z = \sum_i X_i B_i$ (the all-reduce) plus
# `bias` `(d_out,)` if given, **added once**, after the sum.
#
# **Checked:** 1 to 4 shards, with and without bias, batch 1, float64.

# %%
def row_parallel_forward(x_shards, b_shards, bias=None):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("distributed.row_parallel_forward", row_parallel_forward)

# %% [markdown]
# ## Exercise 6: ring reduce-scatter
#
# `reduce_scatter_sim(tensors) -> list`: `tensors[r]` is rank $r$'s 1-D vector (all the same length). Split each into
# $N$ chunks with `torch.tensor_split(x, N)`. In $N-1$ synchronous steps, at step $s = 0, \dots, N-2$ every rank $r$
# sends its current chunk $(r - s - 1) \bmod N$ to rank $r+1$, which adds it to its own copy of that chunk. Return a
# list whose entry $r$ is chunk $r$ of the elementwise sum over ranks. Compute all the sends of a step before applying
# any of them (the ranks work in parallel).
#
# **Checked:** $N = 2$ to $5$, lengths not divisible by $N$, one element per chunk, float64; inputs unchanged.

# %%
def reduce_scatter_sim(tensors):
    # YOUR CODE HERE
    # Hint: bufs[r][c] is rank r's copy of chunk c; clone the chunks so that no input is modified.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("distributed.reduce_scatter_sim", reduce_scatter_sim)

# %% [markdown]
# ## Exercise 7: ring all-reduce
#
# `ring_allreduce_sim(tensors) -> list`: every rank ends with the full elementwise sum, as its own tensor. Do the
# reduce-scatter of exercise 6 (rank $r$ then owns the finished chunk $r$), then an all-gather: at step
# $s = 0, \dots, N-2$ every rank $r$ sends chunk $(r - s) \bmod N$ to rank $r + 1$, which overwrites its copy.
#
# **Checked:** as exercise 6; the ranks' outputs must be distinct tensors.

# %%
def ring_allreduce_sim(tensors):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("distributed.ring_allreduce_sim", ring_allreduce_sim)

# %% [markdown]
# ## Exercise 8: a GPipe timetable
#
# `gpipe_schedule(p, m) -> np.ndarray` of integers, shape `(p, 2 (m + p - 1))`: row $s$ is pipeline stage $s$, column
# $t$ a time slot (every forward and every backward takes one slot). Entry $+(j+1)$ means "forward of micro-batch
# $j$", $-(j+1)$ "backward of micro-batch $j$", $0$ idle. Forwards flow down the stages (stage $s$ needs stage
# $s-1$'s output from an earlier slot), then, after every forward has left the last stage (GPipe's flush), backwards
# flow up (stage $s$ needs stage $s+1$'s gradient from an earlier slot).
#
# **Checked:** by its properties: shape, every task exactly once, the dependencies, the flush. Its idle fraction then
# equals $(p-1)/(m+p-1)$.

# %%
def gpipe_schedule(p, m):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("distributed.gpipe_schedule", gpipe_schedule)

# %% [markdown]
# Done. Going further: `chapters/v6_systems/04_distributed_training.ipynb` runs the real thing on two gloo processes.
