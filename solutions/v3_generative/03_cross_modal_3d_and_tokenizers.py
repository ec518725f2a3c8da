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
# # Volume 3, Chapter 3 exercises: cross-modal bridges, 3-D generation and tokenizers (sections 3.7-3.9)
#
# Ten pieces: cross-attention with a padding mask and its per-token maps (3.7); transmittance, NeRF's volume
# rendering, a 2-D Gaussian-splatting renderer and the Score Distillation Sampling gradient (3.8); vector
# quantisation with a straight-through gradient, the VQ-VAE's two auxiliary losses, codebook perplexity and dead-code
# revival (3.9). Each exercise states its inputs, outputs and what the check verifies; write the body where it says
# `# YOUR CODE HERE`, run the cell, then the `check(...)` cell below it: it answers at once with a green "passed" or a
# red message that says what to fix. The checks draw fresh random cases each time, with edge cases (batch 1, a
# prompt of one real token, an opaque first sample, dead codes, float32).
#
# The lecture is `chapters/v3_generative/03_cross_modal_3d_and_tokenizers.ipynb`. Please write your own code rather
# than importing the course's reference implementations.
#
# Conventions: inputs are torch tensors; outputs keep the dtype of the inputs; **never modify an input in place**.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import torch
import torch.nn.functional as F

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: cross-attention with a prompt-padding mask
#
# `cross_attention(x_img, ctx, Wq, Wk, Wv, ctx_mask=None) -> (out, attn)`:
#
# $$\mathrm{attn} = \mathrm{softmax}\Big(\frac{(XW_Q)(CW_K)^\top}{\sqrt d}\Big),\qquad \mathrm{out} = \mathrm{attn}\,(CW_V),$$
#
# - `x_img` (B, N, d_x): the image features, N = H W positions; `ctx` (B, M, d_c): the prompt's M token embeddings;
#   `Wq` (d_x, d), `Wk` (d_c, d), `Wv` (d_c, d_v); $d$ = `Wq.shape[1]`;
# - `ctx_mask` (B, M) bool, True for a real token, False for padding (None: no padding). A padding token must get
#   weight exactly 0 and the real tokens of each row must still sum to 1: set the masked scores to $-\infty$ **before**
#   the softmax (softmax over the token axis, the last one);
# - return `out` (B, N, d_v) and `attn` (B, N, M).
#
# **Checked** against the reference on five cases (no mask, masks, batch 1 with a single real token, float32, and
# float32 scores in the hundreds, where a hand-written `exp` overflows), and that rows sum to 1 with zero weight on
# padding.

# %%
def cross_attention(x_img, ctx, Wq, Wk, Wv, ctx_mask=None):
    ### BEGIN SOLUTION
    # Hint: scores.masked_fill(~mask[:, None, :], float("-inf")), then torch.softmax(..., dim=-1).
    scores = (x_img @ Wq) @ (ctx @ Wk).transpose(-1, -2) / math.sqrt(Wq.shape[1])
    if ctx_mask is not None:
        scores = scores.masked_fill(~ctx_mask[:, None, :], float("-inf"))
    attn = torch.softmax(scores, dim=-1)
    return attn @ (ctx @ Wv), attn
    ### END SOLUTION


# %%
check("cross_modal.cross_attention", cross_attention)

# %% [markdown]
# ## Exercise 2: per-token attention maps
#
# `token_attention_maps(attn, H, W) -> maps`: `attn` (B, H W, M) holds, for each of the H W positions of a row-major
# feature grid (position $n = hW + w$), its weights over the M tokens. Return `maps` (B, M, H, W), where
# `maps[b, m]` is token m's weight at every position of the grid.
#
# **Checked** exactly against the reference, with H ≠ W (so that a transposed grid is caught).

# %%
def token_attention_maps(attn, H, W):
    ### BEGIN SOLUTION
    return attn.transpose(1, 2).reshape(attn.shape[0], attn.shape[2], H, W)
    ### END SOLUTION


# %%
check("cross_modal.token_attention_maps", token_attention_maps)

# %% [markdown]
# ## Exercise 3: transmittance
#
# `transmittance(sigmas, deltas) -> T`: along each ray (the last axis, S samples), the fraction of light that reaches
# sample $i$ without being absorbed before it,
#
# $$T_i = \exp\Big(-\sum_{j<i}\sigma_j\delta_j\Big),\qquad T_0 = 1 .$$
#
# `sigmas` $\ge 0$ and `deltas` $> 0$ have shape (..., S); `T` has the same shape. The current sample is **not** in the
# sum.
#
# **Checked** against the reference on one ray, a (4, 3) batch of rays, empty space and an opaque first sample
# (float32).

# %%
def transmittance(sigmas, deltas):
    ### BEGIN SOLUTION
    # Hint: an exclusive cumulative sum is the inclusive one shifted right by one, with a 0 in front.
    sd = sigmas * deltas
    excl = torch.cat([torch.zeros_like(sd[..., :1]), torch.cumsum(sd, dim=-1)[..., :-1]], dim=-1)
    return torch.exp(-excl)
    ### END SOLUTION


# %%
check("cross_modal.transmittance", transmittance)

# %% [markdown]
# ## Exercise 4: volume rendering
#
# `volume_render(sigmas, colors, deltas) -> (rgb, weights)`, NeRF's quadrature:
#
# $$\alpha_i = 1 - e^{-\sigma_i\delta_i},\qquad w_i = T_i\,\alpha_i,\qquad \mathrm{rgb} = \sum_i w_i c_i ,$$
#
# with `sigmas` and `deltas` (..., S), `colors` (..., S, C); `rgb` (..., C), `weights` (..., S). The weights are
# $\ge 0$ and sum to at most 1 (the rest, $T_S$, is the light that passes through: the background).
#
# **Checked** against the reference: one ray, several rays with one channel, an opaque first sample (which must return
# its own colour), empty space (black), float32 with 33 samples.

# %%
def volume_render(sigmas, colors, deltas):
    ### BEGIN SOLUTION
    alpha = 1 - torch.exp(-sigmas * deltas)
    weights = transmittance(sigmas, deltas) * alpha
    return (weights[..., None] * colors).sum(-2), weights
    ### END SOLUTION


# %%
check("cross_modal.volume_render", volume_render)

# %% [markdown]
# ## Exercise 5: a 2-D Gaussian-splatting renderer
#
# `splat_2d(means, covs, colors, opacities, grid) -> image`: G Gaussians, listed **front to back**, each with a mean
# `means[g]` (2,), a covariance `covs[g]` (2, 2), a colour `colors[g]` (C,) and an opacity `opacities[g]` in [0, 1].
# At a point $p$ of `grid` (P, 2):
#
# $$\alpha_g(p) = o_g\exp\big(-\tfrac12(p-\mu_g)^\top\Sigma_g^{-1}(p-\mu_g)\big),\qquad
# C(p) = \sum_g c_g\,\alpha_g(p)\prod_{h<g}\big(1-\alpha_h(p)\big).$$
#
# Return (P, C). This is the volume-rendering sum again, with $\alpha_g$ in place of $1 - e^{-\sigma\delta}$.
#
# **Checked** against the reference: one isotropic Gaussian on a 7 x 9 grid, 3 anisotropic RGB Gaussians, two
# overlapping nearly opaque splats (order matters), 11 Gaussians with one channel.

# %%
def splat_2d(means, covs, colors, opacities, grid):
    ### BEGIN SOLUTION
    # Hint: d = grid[:, None, :] - means[None] has shape (P, G, 2); torch.linalg.inv(covs) is (G, 2, 2).
    d = grid[:, None, :] - means[None]
    maha = torch.einsum("pgi,gij,pgj->pg", d, torch.linalg.inv(covs), d)
    alpha = opacities * torch.exp(-0.5 * maha)
    T = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], dim=1), dim=1)
    return (T * alpha) @ colors
    ### END SOLUTION


# %%
check("cross_modal.splat_2d", splat_2d)

# %% [markdown]
# ## Exercise 6: the Score Distillation Sampling gradient
#
# `sds_grad(eps_fn, x, alpha_bar, eps, w) -> g`: `x` (N, D) is a rendering, `eps` (N, D) standard normal noise,
# `alpha_bar` the noise level $\bar\alpha_t$ (a float in (0, 1)), `w` the weight $w(t)$, and `eps_fn(x_t, alpha_bar)`
# a frozen diffusion model's noise prediction (N, D). Noise the rendering and return the SDS gradient with respect
# to it:
#
# $$x_t = \sqrt{\bar\alpha_t}\,x + \sqrt{1-\bar\alpha_t}\,\varepsilon,\qquad g = w\,\big(\hat\varepsilon(x_t, \bar\alpha_t) - \varepsilon\big).$$
#
# (A trainer then calls `x.backward(g)`: the model's Jacobian is never computed.)
#
# **Checked** against the reference with the exact noise predictors of three Gaussian mixtures (one Gaussian, eight
# Gaussians on a circle, two Gaussians in 3-D), several noise levels and weights.

# %%
def sds_grad(eps_fn, x, alpha_bar, eps, w):
    ### BEGIN SOLUTION
    x_t = math.sqrt(alpha_bar) * x + math.sqrt(1 - alpha_bar) * eps
    return w * (eps_fn(x_t, alpha_bar) - eps)
    ### END SOLUTION


# %%
check("cross_modal.sds_grad", sds_grad)

# %% [markdown]
# ## Exercise 7: vector quantisation with a straight-through gradient
#
# `vector_quantize(z_e, codebook) -> (z_q, idx)`: `z_e` (..., D) encoder outputs, `codebook` (K, D).
#
# - `idx` (...), int64: the index of the nearest code in squared Euclidean distance, $k = \arg\min_j\|z_e - e_j\|^2$;
# - `z_q` (..., D): equal in value to `codebook[idx]`, with the **straight-through** gradient: the gradient arriving
#   at `z_q` passes unchanged to `z_e`, and none goes to the codebook: $z_q = z_e + \mathrm{sg}(e_k - z_e)$.
#
# **Checked** against the reference on four cases (a grid of vectors, one code, float32), including the gradients of
# $\sum z_q \odot u$ for a random upstream gradient $u$: $u$ with respect to `z_e`, zero with respect to the codebook.

# %%
def vector_quantize(z_e, codebook):
    ### BEGIN SOLUTION
    # Hint: ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2 for all pairs at once; or torch.cdist.
    flat = z_e.reshape(-1, z_e.shape[-1])
    d2 = (flat**2).sum(-1, keepdim=True) - 2 * flat @ codebook.T + (codebook**2).sum(-1)
    idx = d2.argmin(-1).reshape(z_e.shape[:-1])
    return z_e + (codebook[idx] - z_e).detach(), idx
    ### END SOLUTION


# %%
check("cross_modal.vector_quantize", vector_quantize)

# %% [markdown]
# ## Exercise 8: the codebook and commitment losses
#
# `vq_losses(z_e, e, beta) -> (codebook_loss, commitment_loss)`: `z_e` and `e = codebook[idx]` (the selected codes
# themselves, not the straight-through output) have the same shape (..., D); both losses are 0-dim tensors, means
# over all entries:
#
# $$\mathcal L_{codebook} = \mathrm{mean}\big(\mathrm{sg}[z_e] - e\big)^2,\qquad
# \mathcal L_{commit} = \beta\,\mathrm{mean}\big(z_e - \mathrm{sg}[e]\big)^2 .$$
#
# The first must move only the codes, the second only the encoder.
#
# **Checked** against the reference, values and all four gradients (each loss with respect to `z_e` and to `e`).

# %%
def vq_losses(z_e, e, beta):
    ### BEGIN SOLUTION
    return F.mse_loss(e, z_e.detach()), beta * F.mse_loss(z_e, e.detach())
    ### END SOLUTION


# %%
check("cross_modal.vq_losses", vq_losses)

# %% [markdown]
# ## Exercise 9: codebook perplexity
#
# `codebook_perplexity(idx, K) -> float`: with $p_k$ the fraction of the entries of `idx` (any shape, int64) equal
# to $k$, return $\exp\big(-\sum_k p_k\ln p_k\big)$ as a Python float, with $0\ln 0 = 0$ (unused codes contribute
# nothing). It lies in $[1, K]$: $K$ for uniform use of all codes, 1 when one code takes everything.
#
# **Checked** to `rtol=1e-9`: uniform use, one code, 27 dead codes of 32, a (6, 4) batch of token indices, and two
# entries.

# %%
def codebook_perplexity(idx, K):
    ### BEGIN SOLUTION
    p = torch.bincount(idx.reshape(-1), minlength=K).double() / idx.numel()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))
    ### END SOLUTION


# %%
check("cross_modal.codebook_perplexity", codebook_perplexity)

# %% [markdown]
# ## Exercise 10: reviving dead codes
#
# `revive_dead_codes(codebook, z_e, idx) -> new_codebook`: `codebook` (K, D), `z_e` (N, D) encoder outputs and `idx`
# (N,) their assigned codes. A code is dead when no entry of `idx` uses it. Return a **new** codebook (leave the
# inputs untouched) in which
#
# - live codes are unchanged;
# - the dead codes, taken in increasing index order, are replaced by the rows of `z_e` that are worst served by
#   their current codes: the largest $\|z_e - \text{codebook}[\text{idx}]\|^2$ first (ties: the lower row first).
#
# You may assume N ≥ the number of dead codes.
#
# **Checked** exactly against the reference (two dead codes, none, float32 with 5 of 8 dead, 3 dead with only 4
# vectors), and that no input was modified.

# %%
def revive_dead_codes(codebook, z_e, idx):
    ### BEGIN SOLUTION
    # Hint: torch.bincount(idx, minlength=K) == 0 marks the dead codes; torch.sort(err, descending=True, stable=True).
    dead = torch.nonzero(torch.bincount(idx, minlength=codebook.shape[0]) == 0).reshape(-1)
    err = ((z_e - codebook[idx]) ** 2).sum(-1)
    order = torch.sort(err, descending=True, stable=True).indices[: len(dead)]
    new = codebook.clone()
    new[dead] = z_e[order]
    return new
    ### END SOLUTION


# %%
check("cross_modal.revive_dead_codes", revive_dead_codes)

# %% [markdown]
# ## What next
#
# Back to the lecture (`chapters/v3_generative/03_cross_modal_3d_and_tokenizers.ipynb`) for what these pieces do
# together: a prompt's words lighting up their regions of a feature grid, a flatland NeRF fitted from 1-D images, a
# digit drawn with Gaussian splats, SDS pulling points onto the modes of a frozen model, and a VQ-VAE whose dead codes
# come back to life.
