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
# # Volume 6, Chapter 4: Distributed training (sections 6.6-6.7)
#
# A 7-billion-parameter model trained with Adam needs about 112 GB for its weights, gradients and optimizer state
# alone: more than one GPU holds. This chapter takes apart the four ways of spreading training over $N$ devices, and
# runs each for real on **two CPU processes** talking through `torch.distributed` (the gloo backend, on 127.0.0.1).
#
# | section | question | what you will measure |
# |---|---|---|
# | 6.6 data parallel | what does DDP actually do? | a 5-line all-reduce of gradients equals `DistributedDataParallel` and a single-process run |
# | 6.6 ring all-reduce | how do $N$ ranks sum a tensor? | a send/recv ring equals `dist.all_reduce`; bytes sent per rank $= 2\frac{N-1}{N}S$ |
# | 6.6 tensor parallel | how does Megatron split a layer? | column- then row-parallel MLP equals the unsharded one with one all-reduce |
# | 6.6 pipeline parallel | what is the bubble? | the idle fraction of a GPipe timetable equals $(p-1)/(m+p-1)$ |
# | 6.7 ZeRO | where does the memory go? | the ZeRO table; optimizer-state bytes per rank of `ZeroRedundancyOptimizer` and FSDP2 |
#
# **Goals.** After this chapter you can
# - write data parallelism from scratch and say why it equals large-batch training;
# - build a ring all-reduce from point-to-point messages and count its traffic;
# - shard an MLP Megatron-style and count its communication;
# - draw a GPipe schedule and compute its bubble; compute ZeRO's memory per rank for any model.
#
# **Prerequisites.** Backpropagation and Adam (Volume 1); the GPU memory hierarchy (chapter 6.1).
#
# **Time.** About 1.5 hours of reading and running, plus 2 hours for the exercises. The notebook runs in about 15 s
# on a 2-core CPU (one launch of two processes costs about 7 s).
#
# **Symbols.** $N$ number of ranks (processes, one per device); $r$ a rank's index; $S$ the size of a tensor in
# bytes; $\Psi$ the number of parameters; $K$ bytes of optimizer state per parameter; $p$ pipeline stages; $m$
# micro-batches; $X$ activations, $A$, $B$ weight matrices.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from manifold_course.systems import distributed as dd

# %% [markdown]
# ## 1. Two real processes
#
# `dd.launch(fn, N)` starts $N$ Python processes with `multiprocessing`'s *spawn* method; each calls
# `torch.distributed.init_process_group("gloo", rank=r, world_size=N)` on a free port of 127.0.0.1, runs `fn(r, N)`,
# and sends its return value back. Spawned processes import `fn` by name, so workers live in
# `manifold_course/systems/distributed.py`, not in the notebook. A launch costs seconds, so **one** worker,
# `dd.demo_worker`, does every measurement of this chapter; we unpack its results section by section. If a rank
# fails, `launch` raises with that rank's traceback; if the ranks hang, it gives up after `timeout` seconds.

# %%
try:
    r0, r1 = dd.launch(dd.demo_worker, 2, timeout=120)
except RuntimeError as err:
    raise RuntimeError("the two-process launch failed (is 127.0.0.1 usable? see the message below)\n" + str(err))
sorted(r0)

# %% [markdown]
# ## 2. Data parallelism from scratch (6.6)
#
# Each rank holds the **whole model** and a different slice of the batch. With a mean loss over equal slices,
# $\nabla L_{\text{batch}} = \frac1N\sum_r \nabla L_r$, so after `backward` each rank sums the gradients of all
# ranks (`dist.all_reduce`), divides by $N$, and steps: every replica applies the same update and stays identical.
# That is all `DistributedDataParallel` does; it adds speed (gradients are grouped in buckets and all-reduced while
# backward is still running).
#
# The worker trained a 161-parameter MLP for 3 SGD steps on a batch of 16 three ways: from scratch on 2 ranks, with
# DDP on 2 ranks, and in one process on the full batch.

# %%
dp = {k: r0[k] for k in ("dp_scratch", "dp_ddp", "dp_single")}
err_ddp = float((dp["dp_scratch"] - dp["dp_ddp"]).abs().max())
err_single = float((dp["dp_scratch"] - dp["dp_single"]).abs().max())
print(f"{dp['dp_scratch'].numel()} parameters; max |scratch - DDP| = {err_ddp:.1e}, max |scratch - single| = {err_single:.1e}")
assert dp["dp_scratch"].numel() == 161
assert err_ddp < 1e-6 and err_single < 1e-5
assert torch.equal(r0["dp_scratch"], r1["dp_scratch"])                # the replicas are bit-identical

# %% [markdown]
# ## 3. Ring all-reduce (6.6)
#
# How do $N$ ranks sum a tensor of $S$ bytes? Sending everything to rank 0 makes rank 0 receive $(N-1)S$. The
# **ring** splits the tensor into $N$ chunks and runs two phases of $N-1$ steps, each rank sending one chunk to its
# right neighbour per step:
#
# 1. *reduce-scatter*: at step $s$, rank $r$ sends chunk $(r-s-1) \bmod N$, the receiver adds it in; after $N-1$
#    steps rank $r$ owns the finished sum of chunk $r$;
# 2. *all-gather*: the finished chunks travel once more around the ring.
#
# Each rank sends $2(N-1)$ chunks of $S/N$: $\;2\frac{N-1}{N}S$, which tends to $2S$, independent of $N$.
# `dd.ring_allreduce` builds it from `dist.isend` / `dist.recv` (a blocking send in a ring would deadlock: everyone
# sends, nobody receives). The worker ran it on 1001 float32 numbers (uneven chunks) and compared with `dist.all_reduce`.

# %%
print(f"max |ring - dist.all_reduce| = {max(r0['ring_err'], r1['ring_err']):.1e}; "
      f"bytes sent by rank 0: {r0['ring_bytes_sent']} of S = {r0['ring_bytes']}")
assert max(r0["ring_err"], r1["ring_err"]) < 1e-6
assert r0["ring_bytes_sent"] == dd.allreduce_bytes(r0["ring_bytes"], 2) == 4004

# %% [markdown]
# The same algorithm in one process ("ranks" as a list of tensors) is exercise 7. With $N = 5$ and 23 elements
# (chunks of 5, 5, 5, 4, 4) every rank ends with the sum:

# %%
xs = [torch.randn(23, dtype=torch.float64) for _ in range(5)]
out = dd.ring_allreduce_sim(xs)
assert all(torch.allclose(o, sum(xs)) for o in out)
ns = np.arange(1, 65)
plt.figure(figsize=(5, 3))
plt.plot(ns, [dd.allreduce_bytes(1.0, int(n)) for n in ns], label="ring: $2(N-1)/N$")
plt.plot(ns, ns - 1, "--", label="all to rank 0: $N-1$ (received by rank 0)")
plt.ylim(0, 8); plt.xlabel("number of ranks N"); plt.ylabel("traffic per rank (units of S)")
plt.title("All-reduce traffic"); plt.legend(); plt.show()
assert abs(dd.allreduce_bytes(1.0, 64) - 1.96875) < 1e-12

# %% [markdown]
# ## 4. Tensor parallelism, Megatron style (6.6)
#
# When the model itself does not fit, split each weight matrix (Shoeybi et al. 2019, arXiv:1909.08053). For an MLP
# $Z = \mathrm{GELU}(XA)B$:
#
# - split $A$ by **columns**: $XA = X[A_1, A_2] = [XA_1, XA_2]$. Each rank computes its own slice, and since GELU
#   acts elementwise it applies GELU to its slice: no communication;
# - split $B$ by **rows**: $Z = [Y_1, Y_2]\begin{bmatrix}B_1\\ B_2\end{bmatrix} = Y_1B_1 + Y_2B_2$: each rank has a
#   partial sum, and **one all-reduce** finishes the layer.
#
# The worker did exactly this with $A$ of shape (12, 40) and $B$ of shape (40, 12) over 2 ranks:

# %%
print(f"max |TP MLP - unsharded MLP| = {r0['tp_err']:.1e} with {r0['tp_allreduces']} all-reduce in the forward")
assert r0["tp_err"] < 1e-4 and r1["tp_err"] < 1e-4 and r0["tp_allreduces"] == 1

# %% [markdown]
# > **Careful.** It is sometimes said that tensor parallelism "all-gathers every layer". Megatron pairs a
# > column-parallel layer with a row-parallel one precisely to avoid that: the intermediate activation $Y_i$ never
# > leaves its rank, so each MLP block (and each attention block, split by heads) needs **one all-reduce in the
# > forward and one in the backward** (for the gradient with respect to $X$). The communication is still per block
# > and on the critical path, which is why tensor parallelism stays inside a node with fast links (NVLink).
#
# ## 5. Pipeline parallelism (6.6)
#
# Split the *layers* into $p$ stages on $p$ devices. One batch would keep only one stage busy at a time; GPipe
# (Huang et al. 2019, arXiv:1811.06965) cuts it into $m$ micro-batches that flow down the pipe, then flushes and
# runs the backwards up. With unit time per forward and per backward, each phase lasts $m + p - 1$ slots of which
# each stage is busy $m$: the idle **bubble fraction** is $(p-1)/(m+p-1)$. Below, the timetable of `dd.gpipe_schedule`
# (positive: forward of micro-batch $j$; negative: backward; white: idle) and its measured idle fraction.

# %%
p, m = 4, 6
table = dd.gpipe_schedule(p, m)
plt.figure(figsize=(8, 2.2))
plt.imshow(np.sign(table), cmap="bwr", aspect="auto", vmin=-1.5, vmax=1.5)
for (s, t), v in np.ndenumerate(table):
    if v:
        plt.text(t, s, f"{'F' if v > 0 else 'B'}{abs(v) - 1}", ha="center", va="center", fontsize=7)
plt.xlabel("time slot (one forward or backward of one micro-batch)"); plt.ylabel("stage")
plt.title(f"GPipe, p = {p} stages, m = {m} micro-batches"); plt.show()
print(f"measured idle fraction {dd.schedule_bubble(table):.4f}, formula (p-1)/(m+p-1) = {dd.pipeline_bubble(p, m):.4f}")
assert abs(dd.schedule_bubble(table) - 3 / 9) < 1e-12
for p_, m_ in [(2, 1), (3, 7), (8, 32), (5, 100)]:
    assert abs(dd.schedule_bubble(dd.gpipe_schedule(p_, m_)) - dd.pipeline_bubble(p_, m_)) < 1e-12

# %% [markdown]
# More micro-batches shrink the bubble ($m = 4p$ leaves under 20 % idle for $p = 8$) but GPipe stores the
# activations of all $m$ micro-batches until their backward; the 1F1B schedule (PipeDream, Narayanan et al. 2019)
# interleaves forwards and backwards to bound that memory by $p$ micro-batches with the same bubble.

# %%
assert dd.pipeline_bubble(8, 32) < 0.2

# %% [markdown]
# ## 6. ZeRO: stop replicating (6.7)
#
# Mixed-precision Adam (Rajbhandari et al. 2020, arXiv:1910.02054) keeps per parameter: 2 bytes of fp16 weights,
# 2 bytes of fp16 gradients, and $K = 12$ bytes of fp32 optimizer state (master weights, momentum, variance):
# **16 bytes**. Plain data parallelism replicates all 16 on every rank. ZeRO shards them over the $N$ ranks:
# stage 1 the optimizer state ($4\Psi + 12\Psi/N$), stage 2 also the gradients ($2\Psi + 14\Psi/N$), stage 3 also
# the weights ($16\Psi/N$), paying with an all-gather of each layer's weights just before it is used. The paper's
# example, $\Psi = 7.5$ B on $N = 64$ ranks:

# %%
gb = [dd.zero_memory_per_rank(7.5e9, 64, s) / 1e9 for s in range(4)]
print("GB per rank, stages 0-3:", [round(g, 1) for g in gb])
assert np.allclose(gb, [120.0, 31.4, 16.6, 1.9], atol=0.06)
assert abs(dd.zero_memory_per_rank(7e9, 1, 0) / 1e9 - 112.0) < 1e-9          # the 7 B example of the introduction

# %%
def zero_plot(n_params_billion=7.5, n_ranks=64):
    vals = [dd.zero_memory_per_rank(n_params_billion * 1e9, n_ranks, s) / 1e9 for s in range(4)]
    plt.figure(figsize=(5, 3))
    plt.bar(["DP", "ZeRO-1", "ZeRO-2", "ZeRO-3"], vals)
    plt.axhline(80, color="k", ls="--", label="one 80 GB GPU")
    plt.ylabel("memory per rank (GB)"); plt.yscale("log")
    plt.title(f"{n_params_billion:g} B parameters, {n_ranks} ranks"); plt.legend(); plt.show()


zero_plot()
widgets.interact(zero_plot, n_params_billion=(1.0, 200.0, 1.0), n_ranks=widgets.IntSlider(64, 1, 1024));

# %% [markdown]
# ### Measured on two processes
#
# The worker trained a 4-layer MLP (16 640 parameters, fp32 here) for one Adam step three ways and counted the bytes
# of optimizer state each rank holds. `torch.distributed.optim.ZeroRedundancyOptimizer` is ZeRO-1: each rank keeps
# Adam's state for its share of the parameter tensors. FSDP2's `fully_shard` is ZeRO-3: each parameter is a `DTensor`
# sharded along its first dimension, so its weights, gradients and optimizer state are all split.

# %%
for r, res in enumerate((r0, r1)):
    print(f"rank {r}: Adam {res['state_bytes_adam']} B, ZeRO-1 {res['state_bytes_zero1']} B, "
          f"FSDP2 {res['state_bytes_fsdp2']} B (weights {res['param_bytes_fsdp2']} B of {4 * res['n_params']})")
    assert res["n_params"] == 16640
    assert 0.45 < res["state_bytes_zero1"] / res["state_bytes_adam"] < 0.55
    assert 0.45 < res["state_bytes_fsdp2"] / res["state_bytes_adam"] < 0.55
    assert res["param_bytes_fsdp2"] == 2 * res["n_params"]                  # half of the fp32 weights per rank

# %% [markdown]
# Adam's state is $2 \times 4 = 8$ bytes per fp32 parameter plus a step counter per tensor; each sharded rank holds
# about half of it, as the formula $K\Psi/N$ says for $N = 2$.
#
# ## Summary
#
# - Data parallelism = all-reduce of the gradients divided by $N$; it equals the full-batch step (asserted against
#   DDP and one process), but replicates the model.
# - A ring all-reduce sends $2\frac{N-1}{N}S$ bytes per rank, nearly independent of $N$.
# - Megatron tensor parallelism: column then row split, one all-reduce per block forward (and one backward).
# - GPipe's bubble is $(p-1)/(m+p-1)$; more micro-batches shrink it.
# - ZeRO shards the 16 bytes per parameter: 120 GB becomes 31.4 / 16.6 / 1.9 GB per rank for 7.5 B on 64 ranks.
#
# **Exercises:** `exercises/v6_systems/04_distributed_training.ipynb` (copied to your `my_work/` by
# `manifold-course lab`): byte counts, the bubble, ZeRO memory, column and row parallel layers, a simulated ring
# reduce-scatter and all-reduce, and a GPipe timetable.
#
# **Further reading.** Shoeybi et al. 2019, *Megatron-LM*, arXiv:1909.08053; Huang et al. 2019, *GPipe*,
# arXiv:1811.06965; Narayanan et al. 2019, *PipeDream*, SOSP (and 2021, arXiv:2104.04473 for 3-D parallelism);
# Rajbhandari et al. 2020, *ZeRO*, arXiv:1910.02054; Li et al. 2020, *PyTorch Distributed: data parallel*,
# arXiv:2006.15704; Zhao et al. 2023, *PyTorch FSDP*, arXiv:2304.11277.
