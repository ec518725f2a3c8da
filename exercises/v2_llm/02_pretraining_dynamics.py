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
# # Volume 2, Chapter 2 exercises: Pre-training dynamics (sections 2.5-2.7)
#
# Nine functions: the compute of a training run, a power-law fit and the Chinchilla optimum (scaling laws, 2.5); top-k
# gating and the load-balancing loss of a mixture of experts (2.6); NTK-aware RoPE scaling and a sliding-window mask
# (long context, 2.7); and two shape statistics of residual-stream paths (the manifold lens). Each exercise states
# its inputs, outputs and what the check verifies; write the body of the function where it says `# YOUR CODE HERE`,
# run the cell, then run the `check(...)` cell below it: it answers at once with a green "passed" or a red message
# that says what to fix. The checks draw fresh random cases each time, with edge cases.
#
# The lecture is `chapters/v2_llm/02_pretraining_dynamics.ipynb`. Please write your own code rather than importing
# the course's reference implementations (`manifold_course.optim.scaling`, `nn.moe`, `nn.long_context`,
# `geometry.trajectories`): the point is to build them yourself. Never modify an input in place.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import numpy as np
import torch

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: training compute (warm-up)
#
# `training_flops(N, D) -> float`: the approximate number of floating-point operations to train a model of `N`
# parameters on `D` tokens, $C \approx 6ND$ (2 per parameter and token for the forward multiply-adds, 4 for the
# backward pass).
#
# **Checked:** against $6ND$ to `rtol=1e-12` for 7 B parameters on 140 B tokens, Chinchilla (70 B, 1.4 T), a
# LLaMA-3-8B-like run (8 B, 15 T), integer inputs and N = D = 1.

# %%
def training_flops(N, D):
    # YOUR CODE HERE
    # Hint: convert to float so that huge integer products stay numbers of the same type.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("pretraining.training_flops", training_flops)

# %% [markdown]
# ## Exercise 2: fit a power law
#
# `fit_power_law(N, L) -> (a, alpha)`, two Python floats, for losses $L_i$ measured at sizes $N_i$ (numpy arrays or
# lists of equal length $\ge 2$). Fit $L = a\,N^{-\alpha}$ by **ordinary least squares in log-log space**:
# $\log L_i \approx \log a - \alpha\log N_i$. The slope is $-\alpha$ (so $\alpha > 0$ when the loss falls) and the
# intercept is $\log a$.
#
# **Checked:** noiseless synthetic laws are recovered to `rtol=1e-6` (6 sizes; sizes up to $10^{12}$; two points); on
# noisy data and on Python lists the answer must equal the least-squares fit of $\log L$ on $\log N$.

# %%
def fit_power_law(N, L):
    # YOUR CODE HERE
    # Hint: np.polyfit(x, y, 1) returns (slope, intercept) of the least-squares line.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("pretraining.fit_power_law", fit_power_law)

# %% [markdown]
# ## Exercise 3: the compute-optimal model of the Chinchilla fit
#
# `chinchilla_optimal(C, A, B, E, alpha, beta) -> (N_opt, D_opt)`, two floats: the minimiser of
# $L(N, D) = E + A N^{-\alpha} + B D^{-\beta}$ on the budget line $6ND = C$. Substitute $D = C/(6N)$, set the
# derivative in $N$ to zero, and you get
# $$N^* = G\left(\frac C6\right)^{\frac{\beta}{\alpha+\beta}},\qquad D^* = \frac1G\left(\frac C6\right)^{\frac{\alpha}{\alpha+\beta}},
# \qquad G = \left(\frac{\alpha A}{\beta B}\right)^{\frac{1}{\alpha+\beta}} .$$
# ($E$ does not move the optimum.)
#
# **Checked:** against the formula to `rtol=1e-6` for Hoffmann et al.'s fit at three budgets, Besiroglu et al.'s
# refit, $\alpha = \beta$, and a random fit; then that $6N^*D^* = C$ and that the loss on the budget line is higher
# at $1.01N^*$ and at $N^*/1.01$.

# %%
def chinchilla_optimal(C, A, B, E, alpha, beta):
    # YOUR CODE HERE
    # Hint: check your answer: 6 * N_opt * D_opt should give C back.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("pretraining.chinchilla_optimal", chinchilla_optimal)

# %% [markdown]
# ## Exercise 4: top-k gating
#
# `top_k_gating(logits, k) -> (weights, indices)` for router logits `(T, E)` (T tokens, E experts): `indices`
# `(T, k)` int64 are the k experts with the largest logits, **largest first** (as `torch.topk` orders them);
# `weights` `(T, k)`, same dtype as `logits`, are the softmax of the k kept logits, i.e. the router's probabilities
# renormalised over the chosen experts: non-negative, summing to 1 per token.
#
# **Checked:** against the reference on 8 experts top-2, top-1 (every weight 1), k = E, one token, logits of size
# 1000 (a naive `exp` overflows: subtract the row maximum, or use `torch.softmax`), float64 with 16 experts.

# %%
def top_k_gating(logits, k):
    # YOUR CODE HERE
    # Hint: torch.topk(logits, k, dim=-1) gives values and indices, sorted largest first.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("pretraining.top_k_gating", top_k_gating)

# %% [markdown]
# ## Exercise 5: the load-balancing loss
#
# `load_balancing_loss(router_probs, expert_index, n_experts) -> 0-dim tensor`: the Switch Transformer auxiliary loss
# (Fedus et al. 2021, arXiv:2101.03961)
# $$\mathcal L_{aux} = E\sum_{i=1}^{E} f_i\,P_i ,$$
# with `router_probs` `(T, E)` the full softmax of the router, `expert_index` the chosen experts, `(T,)` for top-1
# or `(T, k)` for top-k, $f_i$ = (number of assignments to expert $i$) / $(Tk)$ and $P_i$ the mean of column $i$ of
# `router_probs`. It equals 1 under perfectly even routing. The result must stay connected to `router_probs` for
# autograd (no `.item()`, no numpy): the router learns through $P$.
#
# **Checked:** against the reference (perfect balance with top-1 and top-2 indices gives 1; top-1 and skewed top-2
# routing; one token; float64), and that the result carries a gradient.

# %%
def load_balancing_loss(router_probs, expert_index, n_experts):
    # YOUR CODE HERE
    # Hint: torch.bincount(expert_index.reshape(-1), minlength=n_experts) counts the assignments.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("pretraining.load_balancing_loss", load_balancing_loss)

# %% [markdown]
# ## Exercise 6: NTK-aware RoPE base
#
# `ntk_rope_base(base, scale, head_dim) -> float`: the new RoPE base $b' = b\,s^{d/(d-2)}$ that stretches the context
# by a factor $s$ while keeping the fastest frequency $\theta_0 = 1$ and dividing the slowest,
# $\theta_{d/2-1} = b^{-(d-2)/d}$, by exactly $s$.
#
# **Checked:** to `rtol=1e-10` for base $10^4$ with scale 8 and head width 128, head widths 16 and 4, scale 1, and
# base $5\cdot10^5$ with a random scale.

# %%
def ntk_rope_base(base, scale, head_dim):
    # YOUR CODE HERE
    # Hint: solve (b')^(-(d-2)/d) = b^(-(d-2)/d) / s for b'.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("pretraining.ntk_rope_base", ntk_rope_base)

# %% [markdown]
# ## Exercise 7: a sliding-window mask
#
# `sliding_window_mask(T, w) -> (T, T) bool tensor`, True where query $i$ may attend to key $j$: causal and within
# the window, $0 \le i - j < w$ (the token itself and the $w - 1$ before it).
#
# **Checked:** exact equality for T = 6, w = 3; w = 1 (the diagonal); w > T (the plain causal mask); T = 1; a random
# size. The dtype must be `torch.bool`.

# %%
def sliding_window_mask(T, w):
    # YOUR CODE HERE
    # Hint: torch.arange(T)[:, None] - torch.arange(T)[None, :] is the matrix of offsets i - j.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("pretraining.sliding_window_mask", sliding_window_mask)

# %% [markdown]
# ## Exercise 8: turning angles of a path
#
# `turning_angles(traj) -> tensor` for paths `traj` of shape `(..., L+1, D)` (the states $h_0..h_L$ of each token):
# with updates $\Delta_l = h_{l+1} - h_l$, return the angles in radians
# $$\phi_l = \arccos\frac{\langle\Delta_l, \Delta_{l+1}\rangle}{\|\Delta_l\|\,\|\Delta_{l+1}\|},\quad l = 0..L-2,$$
# shape `(..., L-1)`, dtype of `traj`. Clamp the cosine to $[-1, 1]$ before `arccos`: rounding can push it just
# outside and give NaN.
#
# **Checked:** one path, a batch of paths, extra batch dimensions in float64, a straight path (angles 0) and a 2-D
# staircase (angles $\pi/2$).

# %%
def turning_angles(traj):
    # YOUR CODE HERE
    # Hint: steps = traj[..., 1:, :] - traj[..., :-1, :] has shape (..., L, D).
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("pretraining.turning_angles", turning_angles)

# %% [markdown]
# ## Exercise 9: length-to-chord ratio
#
# `length_to_chord(traj) -> tensor` of shape `(...)` for paths `(..., L+1, D)`: the length of the polygon divided by
# the straight distance between its ends, $\sum_l\|h_{l+1} - h_l\| / \|h_L - h_0\|$ (1 for a straight path).
#
# **Checked:** the same paths as exercise 8 (the staircase gives $4/\sqrt 8 = \sqrt 2$).

# %%
def length_to_chord(traj):
    # YOUR CODE HERE
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("pretraining.length_to_chord", length_to_chord)

# %% [markdown]
# ## Where next
#
# The lecture uses these same quantities on models trained in the notebook: `fit_power_law` on a sweep of five GPT
# sizes, `chinchilla_optimal` with the published and the replicated fits, the balancing loss inside a mixture of
# experts, NTK-aware scaling on a GPT evaluated past its training length, and turning angles of its residual stream.
