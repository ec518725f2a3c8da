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
# # Capstone, Chapter 1 exercises: grokking through the lens
#
# Six pieces of the capstone's instrument, each used in the lecture: the grokking detector, the key Fourier
# frequencies of an embedding (Nanda et al. 2023), a local Lipschitz estimate (Part 2 C1), Liu et al.'s
# parallelogram index, INT4 per-channel quantisation (Volume 6), and the `capstone_report` that puts them
# together. Write each body where it says `# YOUR CODE HERE`, run the cell, then the `check(...)` cell below it: it
# answers at once with a green "passed" or a red message that says what to fix. The checks draw fresh cases each time.
#
# The lecture is `chapters/v7_capstone/01_grokking_through_the_lens.ipynb`. Please write your own code rather than
# importing the course's reference implementations (`manifold_course.capstone.grokking`); the last exercise may use
# the course's GPT, `manifold_course.lens` and your own earlier answers.
#
# The issue asks for eight capstone exercises over both chapters; this chapter has six (the syllabus's
# `capstone_report` and five of its parts), chapter 2 the rest (the lens pieces).

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import numpy as np
import torch

from manifold_course import lens
from manifold_course.grading import check
from manifold_course.seeding import torch_generator

# %% [markdown]
# ## Exercise 1: the grokking detector
#
# `grokking_step(test_acc, steps, threshold=0.9) -> int | None`: `test_acc[i]` is the test accuracy measured at step
# `steps[i]` (increasing). Return the first step **from which** the accuracy is `>= threshold` at every later
# evaluation, to the end; `None` if the last evaluation is below the threshold. Return a value of `steps`, not an
# index.
#
# **Checked** exactly on a clean jump, a dip after the jump (the answer is the step after the dip), a crossing at the
# last evaluation only, never, always, equality with the threshold, and random curves.

# %%
def grokking_step(test_acc, steps, threshold=0.9):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("grokking.grokking_step", grokking_step)

# %% [markdown]
# ## Exercise 2: key Fourier frequencies
#
# `fourier_key_frequencies(E, k) -> list[int]`: E (p, D) holds the embeddings of the residues 0..p-1 (a numpy array
# or a tensor). Take the discrete Fourier transform **over the residue index** (axis 0; `np.fft.rfft` gives the
# frequencies 0..p//2), the power of frequency f is $P_f = \sum_j |\hat E_{fj}|^2$. Return the k frequencies in
# 1..p//2 (frequency 0, the mean row, excluded) with the most power, strongest first, as Python ints.
#
# **Checked** exactly on embeddings with planted circles $\cos(2\pi f a/p)u + \sin(2\pi f a / p)v$ at known
# frequencies and amplitudes plus noise and a large mean row, odd and even p (the Nyquist frequency p/2 counts), and a
# random embedding.

# %%
def fourier_key_frequencies(E, k):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("grokking.fourier_key_frequencies", fourier_key_frequencies)

# %% [markdown]
# ## Exercise 3: a local Lipschitz estimate
#
# `local_lipschitz(f, x, eps=1e-2, n_dirs=16, generator=None) -> torch.Tensor (N,)`: for each row $x_i$ of the batch x
# (N, ...), $\max_u \|f(x_i + \varepsilon u) - f(x_i)\| / \varepsilon$ over `n_dirs` random **unit** directions u
# (drawn with `torch.randn(..., generator=generator)` and normalised per row over all non-batch entries), norms over
# all non-batch entries of the output. Don't modify x. Return float64.
#
# **Checked** by properties, since the directions are random: for a linear map $f(x) = Ax$ every estimate is at most
# $\|A\|_2$ and, with 300-400 directions in 3-4 dimensions, at least $0.9\|A\|_2$; for $2.5\,Q$ with Q orthogonal it
# is exactly 2.5; for $\tanh(2x)$ it is 2 at x = 0 and about 0 where tanh is flat.

# %%
def local_lipschitz(f, x, eps=1e-2, n_dirs=16, generator=None):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("grokking.local_lipschitz", local_lipschitz)

# %% [markdown]
# ## Exercise 4: Liu et al.'s parallelogram index
#
# `parallelogram_score(E, delta=0.1) -> float`, p = len(E). Centre the rows ($E_a - \bar E$) and let s be the RMS
# norm of the centred rows, $s = \sqrt{\tfrac1p\sum_a \|E_a - \bar E\|^2}$. For every sum class c = 0..p-1 take the p
# ordered pairs $(a, (c - a) \bmod p)$ and their sums $S_a = E_a + E_{c-a}$ (centred rows); count the ordered couples
# of pairs $(a, a')$ that are **different as sets** ($a' \ne a$ and $a' \ne c - a$) and the ones among them with
# $\|S_a - S_{a'}\| \le \delta s$. Return hits / couples over all classes.
#
# **Checked** against the reference (relative error 1e-9) on a line, a constant embedding (score 1), circles
# with and without noise, random embeddings, odd and even p.

# %%
def parallelogram_score(E, delta=0.1):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("grokking.parallelogram_score", parallelogram_score)

# %% [markdown]
# ## Exercise 5: INT4 per output channel
#
# `quantize_int4_per_channel(w) -> torch.Tensor`: w (out, in). Symmetric 4-bit grid per row (output channel):
# $s_i = \max_j |w_{ij}| / 7$ (1 for an all-zero row), $q_{ij} = \mathrm{clamp}(\mathrm{round}(w_{ij}/s_i), -7, 7)$;
# return the dequantised $s_i q_{ij}$ with w's shape and dtype (Volume 6's `per_channel_quantize(w, bits=4)`).
#
# **Checked** exactly (up to an ulp at exact .5 ties) on random weights, a zero row, an outlier, one channel,
# float64, and values on the grid.

# %%
def quantize_int4_per_channel(w):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("grokking.quantize_int4_per_channel", quantize_int4_per_channel)

# %% [markdown]
# ## Exercise 6: the capstone report
#
# `capstone_report(model, data) -> dict` for a course GPT trained on `a b =` (vocabulary p + 1) and a split `data`
# with `data.p`, `data.x_train`, `data.y_train`, `data.x_test`, `data.y_test` and `data.all_pairs()` (all p^2 inputs
# and answers). The answer logits are `model(x)[:, -1, :p]`. Keys:
#
# - `acc`: test accuracy (argmax of the answer logits);
# - `id_per_layer`: for each block i, the TwoNN dimension (`lens.intrinsic_dimension(X)["twonn"]`) of the output of
#   `blocks.{i}.attn`, then of `blocks.{i}`, at the last position, over all p^2 inputs (`lens.capture` with a
#   `select` that keeps `t[:, -1, :]`): a list of 2 n_layers floats;
# - `h1_max_persistence`: `lens.loops(E)["h1_max"]` of the residue embeddings E = `model.tok_emb.weight[:p]`;
# - `lipschitz`: the median over the test inputs of your `local_lipschitz` (eps 1e-2, 8 directions) of
#   `emb -> model(None, inputs_embeds=emb)[:, -1, :p]` at `emb = model.tok_emb(data.x_test)`;
# - `acc_int4`: the test accuracy of a **copy** of the model with every 2-D weight replaced by your
#   `quantize_int4_per_channel` (norm weights kept); the model itself must not change.
#
# **Checked** against the reference's report on the same small GPT (p = 11, at initialisation and after 60 steps):
# `acc` exactly; each dimension within a factor 0.6-1.6 of the reference's, the H1 bar too, the Lipschitz estimate
# within 0.5-1.5, `acc_int4` within 0.1.

# %%
import copy


def capstone_report(model, data):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("grokking.capstone_report", capstone_report)

# %% [markdown]
# ## Where next
#
# Run your `capstone_report` on the lecture's grokked models (AdamW and Muon) and compare it with the one before the
# jump; chapter 2 points the same lens at one model from every volume.
