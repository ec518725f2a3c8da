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
# # Volume 5, Chapter 2 exercises: policy gradients, actor-critic and PPO (sections 5.5-5.7)
#
# Ten pieces: the REINFORCE surrogate loss with a baseline and a Gaussian policy's log-density (5.5); rewards-to-go,
# TD errors and GAE with episode boundaries (5.6); PPO's clipped loss, the approximate KL estimators $k_1$ and $k_3$,
# the clip fraction, a categorical policy's entropy and advantage normalisation (5.7). Together they are every line of
# a PPO update that is not plumbing. Each exercise states its inputs, outputs and what the check verifies; write the
# body where it says `# YOUR CODE HERE`, run the cell, then the `check(...)` cell below it: it answers at once with a
# green "passed" or a red message that says what to fix. The checks draw fresh random cases each time, with edge cases
# (episode boundaries, batch 1, samples exactly on the clipped side, masked actions, float32).
#
# The syllabus's exercise list for 5.5-5.7 is covered in full (`reinforce_loss`, `gaussian_logprob`, `gae`,
# `td_errors`, `ppo_clip_loss`, `approx_kl`, `clip_fraction`); `rewards_to_go`, `entropy` and
# `normalize_advantages` are added because a PPO implementation needs them and their mistakes are common.
#
# The lecture is `chapters/v5_rl/02_policy_gradients.ipynb`. Please write your own code rather than importing the
# course's reference implementations.
#
# Conventions: the losses take and return torch tensors (a 0-dim tensor for a mean) and must stay differentiable;
# the returns and advantages take and return NumPy float64 arrays, with time on axis 0: shape (T,) for one
# environment or (T, N) for N parallel ones. `dones[t] = 1` means the episode ended at step t (terminated or
# truncated): nothing after step t belongs to it. **Never modify an input in place.**

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import numpy as np
import torch

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: the REINFORCE loss
#
# `reinforce_loss(logp, returns, baseline=None) -> 0-dim tensor`: the surrogate whose gradient is REINFORCE's
# estimator,
#
# $$\mathcal L = -\frac1n\sum_i\log\pi(a_i|s_i)\,(G_i - b_i),$$
#
# the mean over every entry of `logp` (any shape: (n,) or (T, N)). `returns` and `baseline` (None, or a tensor of the
# same shape) are weights: **no gradient may flow into the baseline** (in an actor-critic the baseline is the critic's
# output, which has its own loss).
#
# **Checked** by value and by the gradients with respect to `logp` ($-(G - b)/n$) and `baseline` (zero).

# %%
def reinforce_loss(logp, returns, baseline=None):
    # YOUR CODE HERE
    # Hint: .detach() the weights.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.reinforce_loss", reinforce_loss)

# %% [markdown]
# ## Exercise 2: a Gaussian policy's log-density
#
# `gaussian_logprob(a, mu, log_std) -> tensor (...,)`: for a diagonal Gaussian policy,
#
# $$\log\pi(a) = \sum_{i}\Big[-\frac12\Big(\frac{a_i-\mu_i}{\sigma_i}\Big)^2 - \log\sigma_i - \frac12\log 2\pi\Big],\qquad \sigma_i = e^{\text{log\_std}_i},$$
#
# summed over the last (action) axis. `a` and `mu` have shape (..., d); `log_std` has shape (..., d) or (d,)
# (broadcast). It must match `torch.distributions.Normal(mu, log_std.exp()).log_prob(a).sum(-1)`.
#
# **Checked** by value and by the gradients with respect to `mu` and `log_std`.

# %%
def gaussian_logprob(a, mu, log_std):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.gaussian_logprob", gaussian_logprob)

# %% [markdown]
# ## Exercise 3: rewards-to-go
#
# `rewards_to_go(rewards, dones, gamma, last_value=0.0) -> array` (chapter 1's `discounted_returns`, extended with the two
# things a policy-gradient rollout needs: a bootstrapped tail and several environments at once): for every step,
#
# $$G_t = r_t + \gamma(1 - d_t)\,G_{t+1},\qquad G_T = \text{last\_value},$$
#
# computed backwards. `last_value` is $V(s_T)$, the value of the state after the last step (a float, or an array of
# shape (N,) for (T, N) inputs): a rollout that stops mid-episode is bootstrapped with it. $G_t$ includes $r_t$.
#
# **Checked** against the reference: an episode ending mid-rollout, no ending (bootstrapped tail), an ending at the
# last step, T = 1, and a (T, N) rollout.

# %%
def rewards_to_go(rewards, dones, gamma, last_value=0.0):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.rewards_to_go", rewards_to_go)

# %% [markdown]
# ## Exercise 4: TD errors
#
# `td_errors(rewards, values, dones, gamma, last_value=0.0) -> array`:
#
# $$\delta_t = r_t + \gamma(1 - d_t)\,V(s_{t+1}) - V(s_t),$$
#
# where `values[t]` $= V(s_t)$ and $V(s_T)$ = `last_value`. No bootstrapping across the end of an episode.
#
# **Checked** against the reference: an episode boundary, no boundary (the last step uses `last_value`), T = 1, and
# a (T, N) rollout.

# %%
def td_errors(rewards, values, dones, gamma, last_value=0.0):
    # YOUR CODE HERE
    # Hint: the next values are values[1:] followed by last_value.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.td_errors", td_errors)

# %% [markdown]
# ## Exercise 5: generalized advantage estimation
#
# `gae(rewards, values, dones, gamma, lam, last_value=0.0) -> (adv, returns)`:
#
# $$\hat A_t = \delta_t + \gamma\lambda(1 - d_t)\,\hat A_{t+1},\qquad \hat A_T = 0,\qquad \text{returns}_t = \hat A_t + V(s_t),$$
#
# with $\delta_t$ the TD errors of Exercise 4. `returns` are the critic's regression targets. $\lambda = 0$ gives the TD
# errors; $\lambda = 1$ gives $G_t - V(s_t)$.
#
# **Checked** against the reference for $\lambda$ = 0, 1 and in between, with episode boundaries and (T, N) rollouts.

# %%
def gae(rewards, values, dones, gamma, lam, last_value=0.0):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.gae", gae)

# %% [markdown]
# ## Exercise 6: PPO's clipped loss
#
# `ppo_clip_loss(logp_new, logp_old, adv, eps) -> 0-dim tensor`, the loss to **minimise**:
#
# $$\mathcal L = -\mathrm{mean}\big[\min\big(\rho\,A,\ \mathrm{clip}(\rho, 1-\epsilon, 1+\epsilon)\,A\big)\big],\qquad \rho = e^{\text{logp\_new} - \text{logp\_old}}.$$
#
# Clip the **ratio**, not the advantage, and take the min (the pessimistic bound). A sample whose ratio is past
# $1+\epsilon$ with $A > 0$, or below $1-\epsilon$ with $A < 0$, must have zero gradient.
#
# **Checked** by value and by the gradient with respect to `logp_new`, including samples exactly on each side of the
# clip.

# %%
def ppo_clip_loss(logp_new, logp_old, adv, eps=0.2):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.ppo_clip_loss", ppo_clip_loss)

# %% [markdown]
# ## Exercise 7: approximate KL
#
# `approx_kl(logp_old, logp_new, kind) -> 0-dim tensor`: Monte-Carlo estimates of $\mathrm{KL}(\pi_{old}\|\pi_{new})$ from
# actions sampled by $\pi_{old}$ (Schulman, "Approximating KL Divergence", 2020). With $\log\rho$ = `logp_new - logp_old`:
#
# - `kind="k1"`: the mean of $-\log\rho$;
# - `kind="k3"`: the mean of $(\rho - 1) - \log\rho$ (never negative; `torch.expm1` is accurate for small $\log\rho$).
#
# **Checked** against the reference, and for unbiasedness: averaged over 200 000 actions drawn from $\pi_{old}$, both
# must match the exact KL.

# %%
def approx_kl(logp_old, logp_new, kind="k3"):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.approx_kl", approx_kl)

# %% [markdown]
# ## Exercise 8: the clip fraction
#
# `clip_fraction(ratio, eps) -> float`: the share of entries with $|\rho - 1| > \epsilon$ (clipped on either side), as
# a Python float.

# %%
def clip_fraction(ratio, eps):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.clip_fraction", clip_fraction)

# %% [markdown]
# ## Exercise 9: the entropy of a categorical policy
#
# `entropy(logits) -> tensor (...,)`: $H = -\sum_a\pi(a)\log\pi(a)$ in nats over the last axis, $\pi$ =
# softmax(logits). Logits may be $-\infty$ (a masked action: $0\log 0 = 0$) or large (use `torch.log_softmax`, not
# the log of a softmax).
#
# **Checked** against the reference: random logits, uniform ($\log K$), masked and one-hot rows, logits of magnitude
# 100, float32.

# %%
def entropy(logits):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.entropy", entropy)

# %% [markdown]
# ## Exercise 10: advantage normalisation
#
# `normalize_advantages(adv) -> tensor`: $(\hat A - \mathrm{mean}) / (\mathrm{std} + 10^{-8})$, one mean and one
# standard deviation over every entry, with torch's default standard deviation (`adv.std()`, divisor $n - 1$). PPO
# applies it per minibatch: it makes the step size independent of the reward scale.
#
# **Checked** against the reference: large mean and scale, a minibatch of 3 (where $n$ vs $n - 1$ matters), constant
# advantages (all zero, no NaN), a (T, N) batch, float32.

# %%
def normalize_advantages(adv):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("policy_gradients.normalize_advantages", normalize_advantages)

# %% [markdown]
# ## What next
#
# Back to the lecture (`chapters/v5_rl/02_policy_gradients.ipynb`) for what these pieces do together: a baseline
# dividing a bandit's gradient variance by more than 50, GAE's bias and variance measured against exact values on
# FrozenLake, PPO solving CartPole-v1 well within its step budget on every seed, the unclipped policy gradient collapsing at
# a step size PPO survives, and a toy sequence model taken through pre-training, SFT and RL.
