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
# # Volume 2, Chapter 3 exercises: Alignment and inference (sections 2.8-2.10, KV cache, speculative decoding)
#
# Ten pieces of the fine-tuning and decoding stack: a LoRA layer, the NF4 code book of QLoRA and blockwise
# quantisation, the Bradley-Terry reward-model loss, the KL-regularised optimal policy, PPO's clipped objective, the DPO
# loss, nucleus (top-p) filtering, and the two halves of speculative sampling. Each exercise states its inputs, outputs
# and what the check verifies; write the body where it says `# YOUR CODE HERE`, run the cell, then the `check(...)` cell
# below it: it answers at once with a green "passed" or a red message that says what to fix. The checks draw fresh
# random cases each time, with edge cases (batch 1, sizes that are not powers of two, extreme values where a naive
# formula overflows).
#
# The lecture is `chapters/v2_llm/03_alignment_and_inference.ipynb`. Please write your own code rather than importing
# the course's reference implementations.
#
# Conventions: inputs are torch tensors; outputs keep the dtype of the inputs; **never modify an input in place**.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import torch
import torch.nn.functional as F
from scipy.stats import norm
from torch import nn

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: a LoRA layer
#
# `LoRALinear(base, r, alpha)` wraps a pre-trained `base = nn.Linear(d_in, d_out)`:
#
# $$h = W_0 x + b + \frac{\alpha}{r} B A x,\qquad A \in \mathbb R^{r\times d_{in}},\ B \in \mathbb R^{d_{out}\times r}.$$
#
# - keep `self.base = base` and **freeze** its parameters (`requires_grad_(False)`);
# - `self.lora_A = nn.Parameter(...)` of shape `(r, d_in)`, random (e.g. Gaussian with std $1/\sqrt{d_{in}}$);
#   `self.lora_B = nn.Parameter(...)` of shape `(d_out, r)`, **zero**;
# - `forward(x)` for `x` of shape `(..., d_in)`;
# - `merge()` adds $\frac{\alpha}{r}BA$ into `self.base.weight` (in place, under `torch.no_grad()`), after which
#   `forward` must not add the update a second time; `unmerge()` subtracts it again.
#
# **Checked** on four layers (odd sizes, no bias, $r = 1$, full rank): only `lora_A` and `lora_B` are trainable, with
# the right shapes; the output at initialisation equals `base(x)`; after loading the reference's state dict (with a
# non-zero $B$) your output equals the reference's (this catches a missing $\alpha/r$); gradients reach $A$ and $B$;
# `merge()` leaves the output unchanged and sets $W = W_0 + \frac{\alpha}{r}BA$; `unmerge()` gives $W_0$ back.

# %%
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        ### BEGIN SOLUTION
        # Hint: with B = 0 the gradient of A is zero at the first step, but the gradient of B is not.
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        d_out, d_in = base.weight.shape
        self.lora_A = nn.Parameter(torch.randn(r, d_in, dtype=base.weight.dtype) / math.sqrt(d_in))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, dtype=base.weight.dtype))
        self.scaling = alpha / r
        self.merged = False
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        out = self.base(x)
        if not self.merged:
            out = out + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T
        return out
        ### END SOLUTION

    def merge(self):
        ### BEGIN SOLUTION
        with torch.no_grad():
            if not self.merged:
                self.base.weight += self.scaling * self.lora_B @ self.lora_A
                self.merged = True
        ### END SOLUTION

    def unmerge(self):
        ### BEGIN SOLUTION
        with torch.no_grad():
            if self.merged:
                self.base.weight -= self.scaling * self.lora_B @ self.lora_A
                self.merged = False
        ### END SOLUTION


# %%
check("alignment.LoRALinear", LoRALinear)

# %% [markdown]
# ## Exercise 2: the 16 NF4 levels
#
# `nf4_levels() -> Tensor (16,)`, float32, sorted. QLoRA (Dettmers et al. 2023, arXiv:2305.14314) builds the 4-bit
# NormalFloat code book from quantiles $\Phi^{-1}$ of the standard normal, with $\delta = \tfrac12(\tfrac1{32} + \tfrac1{30})$:
#
# - 8 positive values: $\Phi^{-1}(p)$ at 9 evenly spaced probabilities from $1 - \delta$ down to $\tfrac12$, without the
#   last one ($\Phi^{-1}(\tfrac12) = 0$);
# - 7 negative values: $-\Phi^{-1}(p)$ at 8 evenly spaced probabilities from $1 - \delta$ to $\tfrac12$, without the last;
# - an exact 0; then divide all 16 by the largest absolute value, so that the ends are $-1$ and $+1$.
#
# **Checked:** shape, dtype, sorted, an exact zero, and the values to `rtol=1e-5` (they match the table printed in the
# paper's appendix to about $2\cdot10^{-7}$).

# %%
def nf4_levels():
    ### BEGIN SOLUTION
    # Hint: scipy.stats.norm.ppf is Phi^{-1}; work in float64 and convert at the end.
    delta = 0.5 * (1 / 32 + 1 / 30)
    pos = norm.ppf(torch.linspace(1 - delta, 0.5, 9, dtype=torch.float64).numpy()[:-1])
    neg = -norm.ppf(torch.linspace(1 - delta, 0.5, 8, dtype=torch.float64).numpy()[:-1])
    levels = torch.tensor(sorted(list(pos) + [0.0] + list(neg)), dtype=torch.float64)
    return (levels / levels.abs().max()).float()
    ### END SOLUTION


# %%
check("alignment.nf4_levels", nf4_levels)

# %% [markdown]
# ## Exercise 3: blockwise NF4 quantisation
#
# `nf4_quantize(w, levels, block) -> (codes, scales)`:
#
# 1. flatten `w` and pad it with zeros to a multiple of `block`; view it as `(n_blocks, block)`;
# 2. `scales` (n_blocks,) = the absolute maximum $s$ of each block (dtype of `w`);
# 3. `codes` (n_blocks, block), int64 = the index of the level nearest to $w / s$. An all-zero block has $s = 0$:
#    divide by 1 there instead (its codes are then the index of the level 0).
#
# **Checked:** against the reference: codes exactly, scales to `rtol=1e-6`, on a `(4, 64)` matrix, a `(3, 50)` matrix
# (padding), 100 values in blocks of 17, an all-zero block, a block with an outlier, and float64.

# %%
def nf4_quantize(w, levels, block=64):
    ### BEGIN SOLUTION
    # Hint: (x[..., None] - levels).abs().argmin(dim=-1) finds the nearest level of every entry at once.
    flat = w.reshape(-1)
    pad = (-flat.numel()) % block
    blocks = torch.cat([flat, torch.zeros(pad, dtype=w.dtype)]).reshape(-1, block)   # (n_blocks, block)
    scales = blocks.abs().amax(dim=1)                                                 # (n_blocks,)
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    x = blocks / safe[:, None]
    codes = (x[..., None] - levels.to(w.dtype)).abs().argmin(dim=-1)
    return codes, scales
    ### END SOLUTION


# %%
check("alignment.nf4_quantize", nf4_quantize)

# %% [markdown]
# ## Exercise 4: the Bradley-Terry loss (warm-up)
#
# `bradley_terry_loss(r_chosen, r_rejected) -> scalar Tensor`: the mean over the $N$ pairs of
# $-\log\sigma(r_w - r_l)$, where $r_w$ is the reward of the preferred response. Write it so that it stays finite for
# differences of hundreds (`F.softplus` or `F.logsigmoid`).
#
# **Checked:** against the reference (float32 and float64, one pair, differences of $\pm400$) and through its gradient,
# which must be $-\sigma(r_l - r_w)/N$ with respect to $r_w$.

# %%
def bradley_terry_loss(r_chosen, r_rejected):
    ### BEGIN SOLUTION
    # Hint: -log(sigmoid(z)) = softplus(-z).
    return -F.logsigmoid(r_chosen - r_rejected).mean()
    ### END SOLUTION


# %%
check("alignment.bradley_terry_loss", bradley_terry_loss)

# %% [markdown]
# ## Exercise 5: the KL-regularised optimal policy
#
# `optimal_kl_policy(pi_ref, r, beta) -> Tensor (..., K)`: the maximiser of
# $\mathbb E_{y\sim\pi}[r(y)] - \beta\,\mathrm{KL}(\pi\|\pi_{ref})$,
#
# $$\pi^*(y) = \frac{\pi_{ref}(y)\,e^{r(y)/\beta}}{\sum_{y'}\pi_{ref}(y')\,e^{r(y')/\beta}}$$
#
# over the last axis (leading axes are independent prompts).
#
# **Checked:** against the reference to `rtol=1e-9`; a batch of prompts; $\beta = 10^{-3}$ (where $e^{r/\beta}$
# overflows: work in logs), $\beta = 10^4$; a response with $\pi_{ref}(y) = 0$; $K = 1$; float32.

# %%
def optimal_kl_policy(pi_ref, r, beta):
    ### BEGIN SOLUTION
    # Hint: pi_ref * exp(r / beta) = exp(log pi_ref + r / beta); torch.softmax subtracts the max for you.
    return torch.softmax(torch.log(pi_ref) + r / beta, dim=-1)
    ### END SOLUTION


# %%
check("alignment.optimal_kl_policy", optimal_kl_policy)

# %% [markdown]
# ## Exercise 6: PPO's clipped surrogate
#
# `ppo_clip_objective(logp_new, logp_old, advantages, clip_eps) -> scalar Tensor` (to be maximised), with
# $\rho = \pi_{new}(y)/\pi_{old}(y) = e^{\log\pi_{new} - \log\pi_{old}}$:
#
# $$\frac1N\sum_n \min\big(\rho_n A_n,\ \mathrm{clip}(\rho_n, 1 - \epsilon, 1 + \epsilon)\,A_n\big).$$
#
# **Checked:** against the reference on ratios inside and outside the clip range, advantages of both signs, one sample,
# $\rho = 1$ (the objective is then the mean advantage) and float32.

# %%
def ppo_clip_objective(logp_new, logp_old, advantages, clip_eps=0.2):
    ### BEGIN SOLUTION
    # Hint: torch.clamp(ratio, 1 - eps, 1 + eps); the minimum is taken per sample, before the mean.
    ratio = torch.exp(logp_new - logp_old)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    return torch.minimum(unclipped, clipped).mean()
    ### END SOLUTION


# %%
check("alignment.ppo_clip_objective", ppo_clip_objective)

# %% [markdown]
# ## Exercise 7: the DPO loss
#
# `dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta) -> scalar`:
# with the log-probabilities of whole responses (shape `(N,)`) under the trained policy and the frozen reference,
#
# $$\mathcal L = -\frac1N\sum_n\log\sigma\Big(\beta\big[(\log\pi_\theta(y_w) - \log\pi_{ref}(y_w)) -
# (\log\pi_\theta(y_l) - \log\pi_{ref}(y_l))\big]\Big).$$
#
# **Checked:** against the reference to `rtol=1e-9`: policy = reference (the loss is $\log 2$), one pair, margins of
# hundreds of nats (use `F.logsigmoid` or `F.softplus`), float32; and the gradients with respect to the policy
# log-probs equal the reference's.

# %%
def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    ### BEGIN SOLUTION
    # Hint: the implicit reward of a response is beta * (log pi_theta - log pi_ref).
    chosen = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected = beta * (policy_rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(chosen - rejected).mean()
    ### END SOLUTION


# %%
check("alignment.dpo_loss", dpo_loss)

# %% [markdown]
# ## Exercise 8: top-p (nucleus) filtering
#
# `top_p_filter(logits, p) -> Tensor` of the shape of `logits` `(..., V)`: keep the **smallest** set of most probable
# tokens whose probabilities add up to at least `p` (the token that crosses `p` is kept; so is the most probable token,
# whatever `p`), and set every other logit to `-inf`. Kept logits are returned unchanged. Equivalently: sorted by
# decreasing probability, a token is kept when the mass of the tokens *before* it is `< p`.
#
# **Checked:** against the reference on one row and a batch of rows, `p = 1e-6` (one token), the worked example
# probabilities (0.5, 0.3, 0.15, 0.05) with `p = 0.6` (keep two), float64, and `V = 1`.

# %%
def top_p_filter(logits, p):
    ### BEGIN SOLUTION
    # Hint: torch.sort(..., descending=True) returns the order; scatter the "keep" mask back with it.
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    keep_sorted = before < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return torch.where(keep, logits, torch.full_like(logits, float("-inf")))
    ### END SOLUTION


# %%
check("alignment.top_p_filter", top_p_filter)

# %% [markdown]
# ## Exercise 9: the residual distribution of speculative sampling
#
# `residual_distribution(p, q) -> Tensor (..., V)`: $\max(0, p - q)$ normalised to sum to 1 over the last axis. When
# $p = q$ (a row where the draft is never rejected) the residual is undefined (0/0): return $p$ for that row.
#
# **Checked:** against the reference on one row, a batch, a draft with $q(x) = 0$ where $p(x) > 0$, $p = q$, float32.

# %%
def residual_distribution(p, q):
    ### BEGIN SOLUTION
    # Hint: torch.where(total > 0, r / total, p), with total = r.sum(-1, keepdim=True); avoid dividing by 0 itself.
    r = torch.clamp(p - q, min=0)
    total = r.sum(dim=-1, keepdim=True)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, r / safe, p)
    ### END SOLUTION


# %%
check("alignment.residual_distribution", residual_distribution)

# %% [markdown]
# ## Exercise 10: one accept / reject step of speculative sampling
#
# `speculative_sample(p, q, draft_token, u, u_residual) -> int`. The target's distribution is `p` (V,), the draft's
# `q` (V,), and `draft_token` $x$ was drawn from `q`. With the two uniform numbers `u`, `u_residual` in [0, 1):
#
# - if $u < p(x)/q(x)$, accept: return $x$;
# - otherwise return the inverse-CDF sample of the residual $p_{res} = \mathrm{norm}(\max(0, p - q))$ at $u_{res}$:
#   the smallest index $i$ with $\sum_{j\le i}p_{res}(j) > u_{res}$.
#
# Leviathan et al. (2023, arXiv:2211.17192) prove that the returned token is distributed exactly as `p`; the lecture
# checks it. **Checked:** accepted and rejected drafts on random distributions, a draft with $p(x) > q(x)$ (always
# accepted), and two hand-computed rejections.

# %%
def speculative_sample(p, q, draft_token, u, u_residual):
    ### BEGIN SOLUTION
    # Hint: (cdf <= u_residual).sum() counts the indices whose CDF has not yet passed u_residual.
    if u < (p[draft_token] / q[draft_token]).item():
        return int(draft_token)
    r = torch.clamp(p - q, min=0)
    cdf = torch.cumsum(r / r.sum(), dim=0)
    return min(int((cdf <= u_residual).sum()), p.shape[0] - 1)
    ### END SOLUTION


# %%
check("alignment.speculative_sample", speculative_sample)

# %% [markdown]
# ## What next
#
# The lecture uses these pieces on a real model: LoRA on the course's GPT (pre-trained on standard-library code,
# adapted to docstring prose), NF4 against INT4 on Gaussian weights, a reward model fitted to synthetic preferences,
# PPO and DPO reaching the same $\pi^*$, and speculative decoding with a small draft GPT.
