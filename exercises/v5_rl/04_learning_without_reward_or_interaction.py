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
# # Volume 5, Chapter 4 exercises: learning without reward or interaction (sections 5.10-5.14)
#
# Thirteen pieces: the CQL penalty and offline Q-iteration (5.10); returns-to-go, the Decision Transformer's token
# sequence and mask, and the return-to-go update (5.11); GAIL's reward conventions and behaviour cloning's
# compounding error (5.12); symlog, symexp, KL balancing with free bits and imagination rollouts (5.13); state
# coverage and running statistics (5.14). Each exercise states its inputs, outputs and what the check verifies. Write
# the body where it says `# YOUR CODE HERE`, run the cell, then the `check(...)` cell below it. It answers at once
# with a green "passed" or a red message that says what to fix. The checks draw fresh random cases each time, with
# edge cases (batch 1, one action, logits of +-60, terminal transitions, constant data).
#
# The lecture is `chapters/v5_rl/04_learning_without_reward_or_interaction.ipynb`. Please write your own code
# rather than importing the course's reference implementations.
#
# Two exercises of the syllabus are replaced by exactly gradable ones. `compounding_error(eps, T, n, seed)`, a
# Monte-Carlo estimate, becomes its expectation `expected_compounding_error(eps, T)`. `bc_fit` and the trained `RND`
# class depend on training noise; the lecture trains them, and here you write the pieces that can be checked
# exactly: `state_coverage` and the `RunningMeanStd` that normalises RND's reward.
#
# Conventions: **never modify an input in place**; torch in, torch out (NumPy in, NumPy out where stated).

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import numpy as np
import torch
import torch.nn.functional as F

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: the CQL penalty
#
# `cql_penalty(q, data_actions)`: `q` (N, A) the Q-values of N logged states, `data_actions` (N,) int64 the logged
# actions. Return the 0-dim tensor
#
# $$\frac1N\sum_{i=1}^N\Big[\log\sum_a e^{q_{i,a}} - q_{i,a_i}\Big]\ \ (\ge 0),$$
#
# differentiable in `q`: its gradient lowers every action in proportion to its softmax weight and raises the logged
# action.
#
# **Checked** against the reference, output and gradient, with one action (penalty 0), batch 1 and float32 values
# in the hundreds (a hand-written `exp` overflows).

# %%
def cql_penalty(q, data_actions):
    # YOUR CODE HERE
    # Hint: torch.logsumexp(q, dim=-1) and q.gather(-1, data_actions[:, None]).
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.cql_penalty", cql_penalty)

# %% [markdown]
# ## Exercise 2: offline Q-iteration, naive and conservative
#
# `offline_q_iteration(dataset, n_states, n_actions, gamma, alpha, n_iters=300, lr=0.5, q_init=1.0)`: `dataset` is
# a dict of NumPy arrays `s, a, r, s2, done` (N,) (`done` = 1 if the transition terminated the episode). Start from
# the table $Q \equiv$ `q_init` (float64, (S, A)) and repeat `n_iters` times:
#
# 1. targets from the current table: $y_i = r_i + \gamma(1-d_i)\max_{a'}Q(s'_i, a')$;
# 2. the gradient table $G$: for every transition $i$ add $Q(s_i,a_i) - y_i$ to $G[s_i, a_i]$, and, if
#    $\alpha > 0$, add $\alpha\,\mathrm{softmax}(Q(s_i,\cdot))$ to the row $G[s_i, :]$ and $-\alpha$ to $G[s_i, a_i]$;
# 3. $Q \leftarrow Q - \mathrm{lr}\,G / n_s$ row by row, with $n_s$ the number of transitions leaving state $s$
#    (rows of states without transitions stay as they are).
#
# Return the final table. With `alpha = 0` this is naive fitted Q-iteration.
#
# **Checked** against the reference (to 1e-9) on small random datasets: naive and conservative, a state without
# transitions, many terminal transitions, one transition. Also checked: with `alpha > 0`, Q of an action that no
# transition logged is never above the naive value.

# %%
def offline_q_iteration(dataset, n_states, n_actions, gamma, alpha, n_iters=300, lr=0.5, q_init=1.0):
    # YOUR CODE HERE
    # Hint: np.add.at(G, (s, a), values) adds with repeated indices; np.bincount(s, minlength=n_states) counts n_s.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.offline_q_iteration", offline_q_iteration)

# %% [markdown]
# ## Exercise 3: returns-to-go
#
# `returns_to_go(rewards)`: $\hat R_t = \sum_{t'\ge t} r_{t'}$ (undiscounted; the current reward included) along the
# last axis of `rewards` (a list or a NumPy array, one episode (T,) or a batch (B, T)). Return a float64 NumPy array
# of the same shape.
#
# **Checked** against the reference: one episode, one step, a batch, a sparse final reward, a list of ints.

# %%
def returns_to_go(rewards):
    # YOUR CODE HERE
    # Hint: a reversed cumulative sum: np.flip(np.cumsum(np.flip(r, -1), -1), -1).
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.returns_to_go", returns_to_go)

# %% [markdown]
# ## Exercise 4: the Decision Transformer's tokens and mask
#
# `interleave_dt(rtg, states, actions) -> (tokens, timesteps, mask)`: `rtg` (B, T), `states` (B, T, d_s), `actions`
# (B, T, d_a) (one-hot), all float. The sequence is $(\hat R_0, s_0, a_0, \hat R_1, s_1, a_1, \dots)$:
#
# - `tokens` (B, 3T, 4 + d_s + d_a), dtype of `states`: token $3t$ is $[1, 0, 0, \hat R_t, 0\dots, 0\dots]$, token
#   $3t+1$ is $[0, 1, 0, 0, s_t, 0\dots]$, token $3t+2$ is $[0, 0, 1, 0, 0\dots, a_t]$ (a type one-hot, then the
#   slots of rtg, state and action, zeros in the slots of the other types);
# - `timesteps` (B, 3T) int64: $t$ for the three tokens of step $t$;
# - `mask` (3T, 3T) bool, True where token $i$ may attend to token $j$: $j \le i$. The action $a_t$ is predicted
#   at the token $s_t$, which then sees $\hat R_{\le t}, s_{\le t}, a_{<t}$ only.
#
# **Checked** exactly against the reference, for several shapes, one step included.

# %%
def interleave_dt(rtg, states, actions):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.interleave_dt", interleave_dt)

# %% [markdown]
# ## Exercise 5: updating the return-to-go
#
# `update_rtg(rtg, r)`: at test time, after the environment paid reward `r`, the return still to collect is
# $\hat R_{t+1} = \hat R_t - r_t$. Works for floats, NumPy arrays and tensors.
#
# **Checked** against the reference.

# %%
def update_rtg(rtg, r):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.update_rtg", update_rtg)

# %% [markdown]
# ## Exercise 6: GAIL's reward conventions
#
# `gail_reward(d_logits, convention)`: the discriminator outputs logits $\ell$, with $D = \sigma(\ell)$ the
# probability that a pair is the expert's. Return the learner's reward:
#
# - `"log_d"`: $\log D = -\mathrm{softplus}(-\ell)$ (always negative);
# - `"neg_log_one_minus_d"`: $-\log(1-D) = \mathrm{softplus}(\ell)$ (always positive);
# - `"logit"`: $\ell = \log D - \log(1-D)$.
#
# Tensor in, tensor out; NumPy in, NumPy out. Use `softplus`, not `log(sigmoid(...))`: at $\ell = \pm60$ in float32
# the sigmoid rounds to 0 or 1 and the log gives $\mp\infty$.
#
# **Checked** against the reference for the three conventions, with extreme logits and NumPy input, and that the
# signs and the identity logit = log_d + neg_log_one_minus_d hold.

# %%
def gail_reward(d_logits, convention="logit"):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.gail_reward", gail_reward)

# %% [markdown]
# ## Exercise 7: behaviour cloning's compounding error
#
# `expected_compounding_error(eps, T)`: a cloned policy leaves the expert's path with probability `eps` at each
# step it is still on it, and never comes back. Every step at or after the one where it leaves costs 1. Return the
# expected total cost over steps $t = 1..T$ as a float: $\sum_{t=1}^T\big(1-(1-\varepsilon)^t\big)$.
#
# **Checked** against the reference, with `eps = 0`, `eps = 1` and `T = 1`.

# %%
def expected_compounding_error(eps, T):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.expected_compounding_error", expected_compounding_error)

# %% [markdown]
# ## Exercises 8 and 9: symlog and symexp
#
# `symlog(x)` $= \mathrm{sign}(x)\ln(1+|x|)$ and `symexp(y)` $= \mathrm{sign}(y)(e^{|y|}-1)$, elementwise on
# tensors. Use `torch.log1p` and `torch.expm1`: near 0, $\ln(1 + 10^{-7})$ computed as `log(1 + x)` loses digits.
#
# **Checked** against the reference with both signs, 0, tiny and huge values and float32; symlog also for oddness.

# %%
def symlog(x):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


def symexp(y):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.symlog", symlog)

# %%
check("beyond_reward.symexp", symexp)

# %% [markdown]
# ## Exercise 10: KL balancing with free bits
#
# `kl_balance(post_logits, prior_logits, beta_dyn, beta_rep, free_bits)`: logits (B, L, K) of L categorical latents
# with K classes, for the posterior $q$ and the prior $p$. With $\mathrm{KL}[q\|p]$ summed over latents and classes
# (one number per sample),
#
# $$\mathcal L = \operatorname{mean}_B\Big[\beta_{dyn}\max\big(b, \mathrm{KL}[\mathrm{sg}(q)\|p]\big) +
#   \beta_{rep}\max\big(b, \mathrm{KL}[q\|\mathrm{sg}(p)]\big)\Big],$$
#
# with sg = `.detach()`. Return a 0-dim tensor. The two terms have the same value, but the first must send gradient
# only to the prior and the second only to the posterior. The free bits clip each KL per sample, before the betas.
#
# **Checked** against the reference, value and the gradients with respect to both logits: DreamerV3's settings,
# KLs under the free bits (zero gradient), a mixed batch, `free_bits = 0`, float32.

# %%
def kl_balance(post_logits, prior_logits, beta_dyn=0.5, beta_rep=0.1, free_bits=1.0):
    # YOUR CODE HERE
    # Hint: KL[p || q] = sum p (log p - log q) with log p = F.log_softmax(logits, -1); sum over dims (-2, -1).
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.kl_balance", kl_balance)

# %% [markdown]
# ## Exercise 11: imagination rollouts
#
# `imagine(dynamics, policy, z0, H)`: roll a learned model forward without the environment. From `z0` (B, d_z), for
# $t = 0..H-1$: $a_t$ = `policy(z_t)`, $z_{t+1}$ = `dynamics(z_t, a_t)`. Return `(states, actions)` with `states`
# (B, H+1, d_z) (`states[:, 0]` is `z0`) and `actions` (B, H, d_a).
#
# **Checked** against the reference with nonlinear dynamics and policies built from random matrices, H = 1, and
# identity dynamics with a zero policy (the state must stay `z0`).

# %%
def imagine(dynamics, policy, z0, H):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.imagine", imagine)

# %% [markdown]
# ## Exercise 12: state coverage
#
# `state_coverage(visits)`: `visits` holds a visit count per state (any shape, list or array). Return, as a float,
# the fraction of states visited at least once, the course's C2 coverage metric.
#
# **Checked** against the reference, with all-zero and all-visited counts and a list.

# %%
def state_coverage(visits):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.state_coverage", state_coverage)

# %% [markdown]
# ## Exercise 13: running mean and variance
#
# `RunningMeanStd(shape)` keeps `mean` and `var` (NumPy float arrays of `shape`, starting at 0 and 1) and `count`
# (an int, starting at 0). `update(x)` merges a batch `x` (n, *shape) so that, after any sequence of batches,
# `mean` and `var` are exactly the mean and the **population** variance (ddof = 0) of all values seen:
#
# $$\delta = \mu_b - \mu,\quad n' = n + n_b,\quad \mu' = \mu + \delta\frac{n_b}{n'},\quad
#   \sigma'^2 = \frac{n\sigma^2 + n_b\sigma_b^2 + \delta^2 n n_b/n'}{n'} .$$
#
# **Checked** by a script of batches of different sizes (one of a single value), after each of which `mean`, `var`
# and `count` are compared with the reference's, including constant data and means that shift between batches.

# %%
class RunningMeanStd:
    def __init__(self, shape=()):
        # YOUR CODE HERE
        raise NotImplementedError("Exercise: replace this line with your code")

    def update(self, x):
        # YOUR CODE HERE
        raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("beyond_reward.RunningMeanStd", RunningMeanStd)
