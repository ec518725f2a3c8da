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
# # Volume 3, Chapter 3: Cross-modal bridges, 3-D generation and tokenizers (sections 3.7-3.9)
#
# A text-to-image model has to let words steer pixels; a text-to-3-D model has to get 3-D shapes out of a model that
# only ever saw 2-D images; and a latent generative model has to decide whether its latent is a continuous vector or a
# sequence of discrete tokens. This chapter builds the three bridges in miniature, each small enough to run on a CPU
# in seconds and exact enough to check.
#
# | section | question | what you will measure |
# |---|---|---|
# | 3.7 | how does a prompt steer an image model? | cross-attention on a 6 x 6 feature grid: per-token attention maps, the padding mask |
# | 3.8 | how do 2-D models make 3-D? | volume-rendering weights and transmittance; a "flatland NeRF" fitted from 1-D images; a digit drawn with 2-D Gaussian splats; Score Distillation Sampling with an exact frozen diffusion model (mode seeking, measured) |
# | 3.9 | continuous or discrete latents? | a VQ-VAE on the digits: straight-through gradients, codebook usage (perplexity, dead codes and their revival), reconstructions and interpolations against the course's KL-VAE; intrinsic dimension of the reconstructions |
#
# **Goals.** After this chapter you can
# - write cross-attention with a padding mask and read its per-token maps;
# - derive NeRF's quadrature (transmittance, weights), fit a 2-D radiance field from 1-D images, and render and fit
#   Gaussian splats, all differentiable in PyTorch;
# - say what the Score Distillation Sampling gradient is, why it ignores the model's Jacobian, and why it seeks modes;
# - train a VQ-VAE, explain the straight-through estimator and the two auxiliary losses, measure codebook usage, and
#   revive dead codes.
#
# **Prerequisites.** Attention (Volume 2, chapter 1); the forward diffusion $x_t = \sqrt{\bar\alpha_t}x_0 +
# \sqrt{1-\bar\alpha_t}\varepsilon$ and the noise predictor $\hat\varepsilon = -\sqrt{1-\bar\alpha_t}\nabla\log p_t$
# (Volume 3, chapter 1); the VAE and its ELBO (Volume 0, chapter 2).
#
# **Time.** About 2 hours of reading and running, plus 1.5 hours for the exercises. The notebook runs in about 30 s
# on a 2-core CPU (`SCALE = 1`; raise `SCALE` on a faster machine for longer training).
#
# **Symbols.** $X$ ($N\times d_x$) image features at $N = HW$ grid positions, $C$ ($M\times d_c$) the $M$ prompt-token
# embeddings, $W_Q, W_K, W_V$ projections, $d$ the query/key width; along a ray, $\sigma_i$ the density, $c_i$ the
# colour, $\delta_i$ the segment length, $\alpha_i$ the opacity, $T_i$ the transmittance and $w_i$ the weight of
# sample $i$; $\mu_g, \Sigma_g, o_g$ a splat's mean, covariance and opacity; $\theta$ the parameters of a
# renderer $x = g(\theta)$, $\bar\alpha_t$ the noise level, $\varepsilon$ Gaussian noise, $\hat\varepsilon$ the frozen
# model's noise prediction, $w(t)$ a weight; $z_e$ an encoder output, $e_k$ the $k$-th of $K$ codebook vectors,
# $z_q$ the quantised latent, sg the stop-gradient, $\beta$ the commitment weight.

# %%
from manifold_course import seed_everything
from manifold_course.seeding import torch_generator

rng = seed_everything(0)

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from manifold_course import data, plotting
from manifold_course.generative import cross_attention as xattn
from manifold_course.generative import mixtures, rendering, vq
from manifold_course.generative.vae import TrainConfig, VAEConfig, train_vae
from manifold_course.geometry.intrinsic_dimension import twonn_id

F64 = torch.float64
SCALE = 1            # multiplies training steps; 1 runs in ~30 s on a 2-core CPU, use 4-10 on a GPU machine

# %% [markdown]
# ## 3.7 Cross-modal bridges: CLIP and cross-attention
#
# Stable Diffusion does not learn language from scratch: it reuses the text encoder of CLIP (Radford et al.,
# "Learning Transferable Visual Models From Natural Language Supervision", 2021, arXiv:2103.00020), trained to put
# matching images and captions close together. In SD v1 a prompt becomes $M = 77$ token embeddings of 768 dimensions.
# Inside the denoising U-Net, **cross-attention** layers (Rombach et al., "High-Resolution Image Synthesis with Latent
# Diffusion Models", 2021, arXiv:2112.10752) let every spatial position of a feature map look up the words relevant
# to it:
#
# $$\mathrm{CrossAttn}(X, C) = \underbrace{\mathrm{softmax}\Big(\frac{(XW_Q)(CW_K)^\top}{\sqrt d}\Big)}_{A\ (N\times M)}(CW_V).$$
#
# Queries come from the image, keys and values from the text. Row $n$ of $A$ is a distribution over the $M$ tokens;
# column $m$, reshaped to $H\times W$, is where word $m$ acts: its **attention map**. This is why "blue eyes" colours the
# eyes: the token "blue" has large weight at the positions whose features match it.
#
# A toy: a $6\times6$ feature grid holding a red circle (top left) and a blue square (bottom right). Each concept
# ("red", "circle", "blue", "square") has an embedding (random orthonormal vectors, one per word); a cell's feature is
# the sum of the embeddings of what is there, plus noise. The prompt "a red circle and a blue square" uses the same embeddings (text and image share one space, as
# CLIP's training arranges) and is padded with two `<pad>` tokens to $M = 9$. We take $W_Q = W_K = \lambda I$ (a
# temperature) and $W_V = I$.

# %%
H = W = 6
d_emb = 32
g = torch_generator(1)
vocab = ["a", "red", "circle", "and", "blue", "square", "<pad>"]
# Random directions made exactly orthonormal (QR): random unit vectors in 32-D are only nearly orthogonal (cosines
# about +-0.18), and with them the contrast below swung from draw to draw (ratio 1.5 to 5; under 2 in 26 of 2000 draws).
emb = torch.linalg.qr(torch.randn(d_emb, len(vocab), generator=g, dtype=F64))[0].T       # (7, 32), orthonormal rows
E = dict(zip(vocab, emb))

yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
circle = ((yy - 1.5) ** 2 + (xx - 1.5) ** 2) <= 2.3              # a disc of cells, top left
square = (yy >= 3) & (yy <= 5) & (xx >= 3) & (xx <= 5)            # a 3 x 3 square, bottom right
layout = torch.stack([circle, circle, square, square], -1).to(F64)   # concepts red, circle, blue, square
concepts = torch.stack([E["red"], E["circle"], E["blue"], E["square"]])
x_img = xattn.concept_grid(layout, concepts, noise=0.1, generator=g)[None]          # (1, 36, 32)

prompt = ["a", "red", "circle", "and", "a", "blue", "square", "<pad>", "<pad>"]
ctx = torch.stack([E[w] for w in prompt])[None]                                     # (1, 9, 32)
mask = torch.tensor([[w != "<pad>" for w in prompt]])
lam = 4.0
Wq = Wk = lam * torch.eye(d_emb, dtype=F64)
Wv = torch.eye(d_emb, dtype=F64)

out, attn = xattn.cross_attention(x_img, ctx, Wq, Wk, Wv, ctx_mask=mask)
_, attn_nomask = xattn.cross_attention(x_img, ctx, Wq, Wk, Wv)
maps = xattn.token_attention_maps(attn, H, W)[0]                                    # (9, 6, 6)

row_sums = attn.sum(-1)
pad_mass_masked = float(attn[0, :, ~mask[0]].sum(-1).max())
pad_mass_unmasked = float(attn_nomask[0, :, ~mask[0]].sum(-1).mean())
print(f"rows sum to 1 (max deviation {float((row_sums - 1).abs().max()):.1e}); padding weight with the mask: "
      f"{pad_mass_masked}, without it: {pad_mass_unmasked:.3f} of every row on average")
assert torch.allclose(row_sums, torch.ones_like(row_sums)) and pad_mass_masked == 0.0 and pad_mass_unmasked > 0.05

regions = {"red": circle, "circle": circle, "blue": square, "square": square}
for word, region in regions.items():
    m = maps[prompt.index(word)]
    inside, outside = float(m[region].mean()), float(m[~region].mean())
    peak = divmod(int(m.argmax()), W)
    print(f"'{word:6s}': mean weight inside its object {inside:.2f}, outside {outside:.3f} "
          f"(ratio {inside / outside:.0f}); peak at cell {peak}")
    assert inside > 2 * outside and bool(region[peak])

# %% [markdown]
# Every concept word's map lights up its own object, and its peak lies inside it. Its mean weight inside the object
# is 2.4 to 5.5 times its weight elsewhere over 2000 draws (the ratios printed above; the cell asserts more than 2). Why not 100 times? A row of the softmax must sum to 1: a **background** cell, whose feature matches no word, spreads
# its weight almost evenly over all the tokens, the concept words included. (Trained models often park such weight on
# a token that means nothing, such as the start or end token.) The padding mask puts the score of `<pad>` at $-\infty$
# before the softmax, so its weight is exactly zero and the real tokens still share all of it; without the mask the two
# pads take a share of every row (printed above), mostly on the background cells.

# %%
fig, axes = plotting.figure(ncols=len(prompt), width=1.6, height=1.9)
for ax, word, m in zip(axes, prompt, maps):
    ax.imshow(m.numpy(), cmap="viridis", vmin=0, vmax=float(maps.max()))
    ax.set_title(f"'{word}'", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
axes[0].set_ylabel("grid row")
fig.suptitle(f"Per-token cross-attention maps on the 6 x 6 grid (colour: weight, 0 to {float(maps.max()):.2f}; pads "
             "masked)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# > **Careful.** SD v1 attends to all 77 positions: its prompts are padded with the end-of-text token, whose CLIP
# > embedding (CLIP's text encoder is causal) carries a summary of the prompt, and the U-Net was trained with these
# > pads visible. Masking is the right default for a model trained with masks (many text encoders with a pad token
# > are), but switching it on for a model trained without it changes the model. SD 2 uses OpenCLIP and SDXL two text
# > encoders; "77 x 768" is SD v1's shape, not a law.

# %% [markdown]
# ## 3.8 New paradigms for 3-D generation: NeRF, Gaussian splatting, SDS
#
# There is no LAION-sized collection of 3-D scenes, so 3-D generation borrows from 2-D: represent the scene with
# something that can be **rendered differentiably** into images, then fit it, either to photographs (NeRF, 3DGS) or to
# what a frozen 2-D diffusion model considers likely (SDS).
#
# ### Volume rendering
#
# NeRF (Mildenhall et al., "NeRF: Representing Scenes as Neural Radiance Fields for View Synthesis", 2020,
# arXiv:2003.08934) is a field $(\text{position}, \text{direction}) \mapsto (c, \sigma)$. A pixel's ray is cut into
# segments; segment $i$ absorbs with probability $\alpha_i = 1 - e^{-\sigma_i\delta_i}$, and the light reaches it with
# probability $T_i$:
#
# $$C(r) = \sum_i T_i\big(1 - e^{-\sigma_i\delta_i}\big)c_i,\qquad T_i = \exp\Big(-\sum_{j<i}\sigma_j\delta_j\Big).$$
#
# The weights $w_i = T_i\alpha_i$ are non-negative and telescope: $\sum_i w_i = 1 - T_S$, with $T_S =
# e^{-\sum_i\sigma_i\delta_i}$ the light that passes through (the background). One ray through a density with two bumps:

# %%
def ray_scene(t):
    """Density and colour along one ray at depths t: a faint red bump at t = 1, a dense blue bump at t = 2.5."""
    sigma = 1.5 * torch.exp(-((t - 1.0) / 0.3) ** 2) + 8.0 * torch.exp(-((t - 2.5) / 0.2) ** 2)
    red = torch.exp(-((t - 1.0) / 0.3) ** 2) / (torch.exp(-((t - 1.0) / 0.3) ** 2) + torch.exp(-((t - 2.5) / 0.2) ** 2) + 1e-12)
    return sigma, torch.stack([red, 0 * red, 1 - red], -1)


def render_ray(S):
    t = (torch.arange(S, dtype=F64) + 0.5) * 4.0 / S
    sigma, col = ray_scene(t)
    return rendering.volume_render(sigma, col, torch.full((S,), 4.0 / S, dtype=F64)), t, sigma


(rgb_ref, w_ref), t_ref, sig_ref = render_ray(8192)
T_ref = rendering.transmittance(sig_ref, torch.full_like(sig_ref, 4.0 / 8192))
T_end = float(T_ref[-1] * torch.exp(-sig_ref[-1] * 4.0 / 8192))
errors = {S: float((render_ray(S)[0][0] - rgb_ref).norm()) for S in (8, 16, 32, 64, 128)}
print(f"weights >= 0: {bool((w_ref >= 0).all())}; sum of weights {float(w_ref.sum()):.6f} = 1 - T_S = {1 - T_end:.6f}")
print("colour error against 8192 samples:", {S: f"{e:.1e}" for S, e in errors.items()})
assert (w_ref >= 0).all() and abs(float(w_ref.sum()) - (1 - T_end)) < 1e-12
assert errors[8] > 0.01 and max(errors[S] for S in (32, 64, 128)) < 1e-5

# an opaque first sample returns its colour and hides everything behind it
rgb_op, w_op = rendering.volume_render(torch.tensor([1e6, 3.0, 3.0], dtype=F64), torch.eye(3, dtype=F64),
                                       torch.full((3,), 0.1, dtype=F64))
assert torch.equal(w_op, torch.tensor([1.0, 0.0, 0.0], dtype=F64)) and torch.equal(rgb_op, torch.eye(3, dtype=F64)[0])

fig, ax = plotting.figure(width=6.5, height=3.0)
ax.plot(t_ref, sig_ref / sig_ref.max(), label="density sigma (scaled to max 1)")
ax.plot(t_ref, T_ref, label="transmittance T")
ax.plot(t_ref, w_ref / w_ref.max(), label="weight w = T alpha (scaled to max 1)")
plotting.label(ax, "One ray: the dense second bump is partly hidden by the first", "depth t along the ray (units)",
               "value")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The weights are non-negative and sum to $1 - T_S$ exactly (to rounding). The quadrature is exact for a density
# that is constant on each segment, and converges fast for a smooth one: 8 samples straddle the thin bumps and miss
# the colour by more than 0.01, from 32 samples on the error against 8192 samples is below $10^{-5}$. An opaque first
# sample returns its own colour. NeRF itself samples each ray in two passes (coarse, then fine where
# the coarse weights are large) and feeds positions through a Fourier-feature encoding, as below.
#
# ### A flatland NeRF
#
# One dimension down: a 2-D scene (two coloured discs in the square $[-1, 1]^2$), seen by 8 cameras around it, each
# looking along parallel rays and recording a **1-D image** (32 pixels). A small field $(x, y) \mapsto (\sigma, c)$
# (Fourier features, one hidden layer) is fitted to the images of 4 cameras by rendering them differentiably and
# minimising the squared error; the other 4 views are held out.

# %%
angles = torch.arange(8) * (2 * math.pi / 8)
pts, deltas = rendering.ray_samples(angles, n_rays=32, n_samples=32)
scene = dict(centers=[[-0.35, 0.1], [0.3, -0.2]], radii=[0.3, 0.25], densities=[30.0, 30.0],
             colors=[[1.0, 0.2, 0.1], [0.1, 0.3, 1.0]])
images = rendering.volume_render(*rendering.disc_scene(pts, **scene), deltas)[0]        # (8 views, 32 rays, RGB)

# occlusion: the camera opposite sees the same opacity along every ray, but the other disc's colour in front
opp = images[4].flip(0)                                                                 # view 180 degrees away
_, w0 = rendering.volume_render(*rendering.disc_scene(pts[0], **scene), deltas[0])
_, w4 = rendering.volume_render(*rendering.disc_scene(pts[4], **scene), deltas[4])
opacity_gap = float((w0.sum(-1) - w4.sum(-1).flip(0)).abs().max())
colour_gap = float((images[0] - opp).abs().max())
print(f"views 0 and 180 degrees: opacity per ray equal to {opacity_gap:.1e}, colours differ by up to {colour_gap:.2f}")
assert opacity_gap < 1e-4 and colour_gap > 0.3

train = torch.arange(8) % 2 == 0
field, losses = rendering.fit_flatland_nerf(images[train], pts[train], deltas[train], steps=300 * SCALE, seed=0,
                                            progress=True)
with torch.no_grad():
    pred = rendering.render_field(field, pts, deltas)
mse_train = float(((pred[train] - images[train]) ** 2).mean())
mse_test = float(((pred[~train] - images[~train]) ** 2).mean())
mse_flat = float(((images[~train] - images[train].mean((0, 1))) ** 2).mean())   # predict the mean colour everywhere
print(f"flatland NeRF: train MSE {mse_train:.4f}, held-out views MSE {mse_test:.4f} "
      f"(a constant mean colour: {mse_flat:.4f}; ratio {mse_test / mse_flat:.2f})")
assert mse_train < 0.01 and mse_test < 0.35 * mse_flat

fig, axes = plotting.figure(ncols=3, width=3.6, height=3.2)
grid_pts = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="xy"), -1)
with torch.no_grad():
    sig_hat, col_hat = field(grid_pts)
sig_true, col_true = rendering.disc_scene(grid_pts, **scene)
axes[0].imshow((col_true * (1 - torch.exp(-0.1 * sig_true))[..., None]).numpy(), origin="lower", extent=(-1, 1, -1, 1))
plotting.label(axes[0], "true scene (colour x opacity)", "x", "y")
axes[1].imshow((col_hat * (1 - torch.exp(-0.1 * sig_hat))[..., None]).numpy(), origin="lower", extent=(-1, 1, -1, 1))
plotting.label(axes[1], "fitted field (4 training views)", "x", "y")
axes[2].imshow(torch.cat([images[~train], pred[~train]], 1).clamp(0, 1).numpy(), aspect="auto")
plotting.label(axes[2], "held-out 1-D views: true | fitted", "ray (true, then fitted)", "view")
fig.tight_layout()
plt.show()

# %% [markdown]
# Volume rendering is not a projection: from opposite sides every ray has the same opacity (the same densities, summed
# in the other order) but the camera sees whichever disc is in front. The field fitted to four views renders the four
# held-out views with an error about a fifth of a constant guess (the ratio printed above: 0.14 to 0.22 over the
# draws we ran; the cell asserts below 0.35): it has learned a scene, not four pictures. With 4 views it cannot pin the discs down exactly; real NeRFs use
# tens to hundreds of photographs.
#
# ### Gaussian splatting
#
# 3-D Gaussian Splatting (Kerbl et al., "3D Gaussian Splatting for Real-Time Radiance Field Rendering", 2023,
# arXiv:2308.04079) drops the network: the scene *is* a set of Gaussians with means, covariances
# $\Sigma = R S S^\top R^\top$ (rotation $R$, scales $S$), colours and opacities, projected to the screen and
# alpha-composited front to back, $C(p) = \sum_g c_g\alpha_g(p)\prod_{h<g}(1-\alpha_h(p))$ with
# $\alpha_g(p) = o_g e^{-\frac12(p-\mu_g)^\top\Sigma_g^{-1}(p-\mu_g)}$: the volume-rendering sum with one term per
# Gaussian. Rasterising explicit Gaussians is fast, and everything is differentiable. In 2-D: fit 16 Gaussians to a
# digit (upsampled to 24 x 24 pixels) by gradient descent.

# %%
X_dig, y_dig = data.digits()
digit = F.interpolate(X_dig[int(rng.integers(len(X_dig)))].reshape(1, 1, 8, 8), size=(24, 24), mode="bilinear",
                      align_corners=False)[0, 0].to(F64)
splats, splat_losses = rendering.fit_splats(digit, n=16, steps=300 * SCALE, seed=0, progress=True)
r2 = 1 - splat_losses[-1] / float(digit.var(unbiased=False))
n_numbers = sum(p.numel() for p in splats.parameters())
print(f"16 splats ({n_numbers} numbers) for {digit.numel()} pixels: R^2 = {r2:.3f}")
assert r2 > 0.9 and n_numbers == 112

blob = rendering.splat_2d(torch.tensor([[0.5, 0.5]], dtype=F64), 0.02 * torch.eye(2, dtype=F64)[None],
                          torch.ones(1, 1, dtype=F64), torch.ones(1, dtype=F64), rendering.pixel_grid(15, 15)).reshape(15, 15)
assert torch.allclose(blob, blob.T) and torch.allclose(blob, blob.flip(0)) and torch.allclose(blob, blob.flip(1))

with torch.no_grad():
    hires = splats(rendering.pixel_grid(96, 96)).reshape(96, 96)
fig, axes = plotting.figure(ncols=3, width=3.0, height=3.0)
for ax, img, title in zip(axes, (digit, splats(rendering.pixel_grid(24, 24)).detach().reshape(24, 24), hires),
                          ("target (24 x 24)", "16 splats at 24 x 24", "the same splats at 96 x 96")):
    ax.imshow(img.numpy(), cmap="gray_r", vmin=0, vmax=1)
    plotting.label(ax, title, "x (pixels)", "y (pixels)")
fig.tight_layout()
plt.show()

# %% [markdown]
# 112 numbers (7 per splat) reproduce 576 pixels with $R^2 > 0.9$ (printed above), and, being continuous, render at any resolution.
# An isotropic Gaussian renders a radially symmetric blob (checked: the image equals its transpose and its flips).
#
# > **Careful.** 3DGS's speed ("100+ FPS") depends on the scene and the GPU; the paper claims real-time rendering
# > (at least 30 FPS) at 1080p. It also sorts splats by depth per screen tile, projects 3-D covariances to 2-D (EWA
# > splatting), and colours each Gaussian with spherical harmonics of the view direction; our 2-D splats keep only the
# > compositing.
#
# ### Score Distillation Sampling
#
# DreamFusion (Poole et al., "DreamFusion: Text-to-3D using 2D Diffusion", 2022, arXiv:2209.14988) fits a NeRF with no
# 3-D data at all. Render a random view $x = g(\theta)$, noise it, ask a frozen text-to-image diffusion model which noise
# it sees, and push the parameters along the difference:
#
# $$\nabla_\theta\mathcal L_{SDS} = \mathbb E_{t,\varepsilon}\Big[w(t)\big(\hat\varepsilon_\phi(x_t; y, t) - \varepsilon\big)
# \frac{\partial x}{\partial\theta}\Big],\qquad x_t = \sqrt{\bar\alpha_t}\,x + \sqrt{1-\bar\alpha_t}\,\varepsilon .$$
#
# The U-Net's Jacobian $\partial\hat\varepsilon/\partial x_t$ is dropped: only a forward pass of the frozen model is
# needed. What does this gradient do? With an *exact* model of data $p$, $\hat\varepsilon(x_t) = -\sqrt{1-\bar\alpha_t}\,
# \nabla\log p_t(x_t)$, so the SDS step climbs the log-density of the noised data: it is an optimiser, not a sampler.
# Our frozen "diffusion model" is exactly that: the `eps_oracle` of a Gaussian mixture (Volume 3, chapter 1), and the
# "renderer" is the identity, $x = \theta$, for a cloud of 2-D points.
#
# First the syllabus' check: at the mode $\mu$ of Gaussian data $\mathcal N(\mu, s^2 I)$,
# $\hat\varepsilon - \varepsilon = -\frac{\bar\alpha s^2}{\bar\alpha s^2 + 1 - \bar\alpha}\varepsilon$, whose average over
# $\varepsilon$ is zero; away from the mode the average points away from $\mu$, so a descent step moves toward it.

# %%
gauss = mixtures.GaussianMixture.isotropic(torch.ones(1, dtype=F64), torch.tensor([[1.0, -2.0]], dtype=F64), 0.5)
n_eps = 20000
eps = torch.randn(n_eps, 2, generator=torch_generator(2), dtype=F64)
for where, x in (("at the mode", gauss.means), ("0.5 off the mode", gauss.means + torch.tensor([[0.5, 0.0]], dtype=F64))):
    gr = rendering.sds_grad(gauss.eps_oracle, x.expand(n_eps, 2), 0.5, eps, 1.0)
    mean, se = gr.mean(0), gr.std(0) / math.sqrt(n_eps)
    z = (mean / se).abs()
    print(f"{where}: mean SDS gradient {mean.numpy().round(4)} (standard error {se.numpy().round(4)}; |mean| / se = "
          f"{z.numpy().round(1)})")
    if where == "at the mode":
        assert (z < 5).all()                    # zero in expectation: a 5-standard-error band
    else:
        assert z[0] > 100 and mean[0] > 0       # pointing away from the mode: descent moves x toward it

# %% [markdown]
# At the mode the Monte-Carlo mean is within 5 standard errors of zero (it is exactly zero in expectation); one
# standard deviation (0.5) away it is hundreds of standard errors from zero and points away from the mode.
#
# Now SDS on 512 points started uniformly in $[-3, 3]^2$, with the frozen model of the eight-Gaussians toy (modes on a
# circle of radius 2, standard deviation 0.15), $w = 1$, 400 steps of gradient descent, noise levels annealed from
# $\bar\alpha = 0.3$ (blurry) to $0.99$ (sharp). We compare with 512 true samples of the same law: do the points end
# up *distributed like the data*, or on the *modes*?

# %%
gm8 = mixtures.eight_gaussians()


def near_mode(x):
    return torch.cdist(x, gm8.means).min(1).values


rows = []
for s in range(3):
    g = torch_generator(10 + s)
    x0 = 6 * torch.rand(512, 2, generator=g, dtype=F64) - 3
    xf, snaps = rendering.sds_points(gm8.eps_oracle, x0, steps=400, lr=0.05, seed=s, record_every=100)
    real = gm8.sample(512, g)
    rows.append(dict(frac0=float((near_mode(x0) < 0.3).double().mean()), frac=float((near_mode(xf) < 0.3).double().mean()),
                     frac_real=float((near_mode(real) < 0.3).double().mean()), med=float(near_mode(xf).median()),
                     med_real=float(near_mode(real).median()), lp0=float(gm8.log_prob(x0).mean()),
                     lp=float(gm8.log_prob(xf).mean()), lp_real=float(gm8.log_prob(real).mean())))
    r = rows[-1]
    print(f"run {s}: within 0.3 of a mode {r['frac0']:.2f} -> {r['frac']:.2f} (true samples {r['frac_real']:.2f}); "
          f"median distance to a mode {r['med']:.3f} (true samples {r['med_real']:.3f}); mean log p "
          f"{r['lp0']:.1f} -> {r['lp']:.2f} (true samples {r['lp_real']:.2f})")
assert all(0.75 < r["frac_real"] < 0.95 for r in rows)      # "about 85 %" of true samples lie within 0.3
mode_seeking = sum(r["frac"] > max(0.95, r["frac_real"]) and r["med"] < 0.6 * r["med_real"] and r["lp"] > r["lp_real"]
                   for r in rows)
print(f"mode seeking (more concentrated than the data, on all three measures) in {mode_seeking} of 3 runs")
assert mode_seeking == 3

fig, axes = plotting.figure(ncols=3, width=3.2, height=3.2)
for ax, pts_, title in zip(axes, (snaps[0], xf, real), ("SDS start", "SDS after 400 steps", "true samples")):
    ax.scatter(pts_[:, 0], pts_[:, 1], s=3)
    ax.set_xlim(-3.2, 3.2), ax.set_ylim(-3.2, 3.2), ax.set_aspect("equal")
    plotting.label(ax, title, "x1", "x2")
fig.tight_layout()
plt.show()

# %% [markdown]
# In every run, SDS gathers more than 95 % of the points within 0.3 of a mode (true samples: about 85 %), their median
# distance to the nearest mode is less than 0.6 times the data's own (printed above), and their mean log-density is
# higher than that of real samples: SDS **seeks modes**. That is what one wants for a single 3-D object that should
# look like "a corgi" from every side, and it is also the source of SDS's known artefacts.
#
# > **Careful.** DreamFusion used Google's Imagen as its frozen prior, not Stable Diffusion (open re-implementations
# > such as threestudio use SD). It needed a very large classifier-free guidance weight (100), which with mode seeking
# > gives over-saturated, over-smoothed, low-diversity results; a constant prompt seen from every side also produces
# > the multi-face "Janus" problem. Variational Score Distillation (Wang et al., "ProlificDreamer", 2023,
# > arXiv:2305.16213) treats the 3-D scene as a distribution to reduce these effects. Our exact 2-D prior isolates the
# > mode seeking; it says nothing about guidance or views.

# %% [markdown]
# ## 3.9 VAE secrets: KL-VAE vs VQ-VAE
#
# Latent diffusion compresses images with an auto-encoder before diffusing. Two kinds of latent:
#
# - **KL-VAE** (Stable Diffusion's): a continuous latent with a Gaussian posterior, pulled toward $\mathcal N(0, I)$ by a
#   KL term (Volume 0's VAE, `manifold_course.generative.vae`);
# - **VQ-VAE** (van den Oord et al., "Neural Discrete Representation Learning", 2017, arXiv:1711.00937; VQGAN, Esser
#   et al., "Taming Transformers for High-Resolution Image Synthesis", 2020, arXiv:2012.09841): every encoder output
#   snaps to the nearest of $K$ codebook vectors, $z_q = e_k$, $k = \arg\min_j\|z_e - e_j\|$, so an image becomes a
#   sequence of integers that a Transformer can model like text.
#
# The argmin has no useful derivative. The **straight-through estimator** $z_q \leftarrow z_e + \mathrm{sg}(e_k - z_e)$
# is $e_k$ in the forward pass and the identity in the backward pass; the codebook, which then gets no gradient, is
# trained by its own loss, and the encoder is kept close to its codes by a commitment loss:
#
# $$\mathcal L = \|x - \mathcal D(z_q)\|^2 + \|\mathrm{sg}[z_e] - e_k\|^2 + \beta\,\|z_e - \mathrm{sg}[e_k]\|^2 .$$

# %%
z_e = torch.randn(5, 4, generator=torch_generator(3), dtype=F64, requires_grad=True)
codebook = torch.randn(8, 4, generator=torch_generator(4), dtype=F64, requires_grad=True)
z_q, idx = vq.vector_quantize(z_e, codebook)
upstream = torch.randn(5, 4, generator=torch_generator(5), dtype=F64)
g_z, g_cb = torch.autograd.grad((z_q * upstream).sum(), [z_e, codebook], allow_unused=True)
cb_loss, commit = vq.vq_losses(z_e, codebook[idx], 0.25)
cb_grads = torch.autograd.grad(cb_loss, [z_e, codebook], allow_unused=True)
print(f"z_q equals the nearest codes: {torch.allclose(z_q, codebook[idx])}; d z_q / d z_e passes the upstream gradient "
      f"unchanged: {torch.equal(g_z, upstream)}; the codebook gets no gradient through z_q: {g_cb is None}")
print(f"the codebook loss moves the codebook only: gradient to z_e {cb_grads[0]}, to the codebook "
      f"{'non-zero' if cb_grads[1].abs().sum() > 0 else 'zero'}")
assert torch.allclose(z_q, codebook[idx]) and torch.equal(g_z, upstream) and g_cb is None
assert cb_grads[0] is None and cb_grads[1].abs().sum() > 0

# %% [markdown]
# ### Codebook usage: the manifold-coverage lens
#
# A codebook is a set of points the encoder's outputs must *cover* (SYLLABUS Part 2, C2: a representation should use
# its capacity evenly). With $p_k$ the fraction of latent tokens assigned to code $k$, usage is summarised by the
# **perplexity** $\exp(-\sum_k p_k\ln p_k) \in [1, K]$, the effective number of codes, and the number of **dead**
# codes, which no token selects. A dead code receives no gradient from any loss and stays dead.
#
# Our VQ-VAE encodes an 8 x 8 digit into 4 tokens of dimension 4, with $K = 32$ codes (so at most $32^4 \approx 10^6$
# different images, 20 bits). We start the codebook at $\mathcal N(0, 1)$, far wider than the fresh encoder's
# outputs, the classic way to lose codes, and train twice from the same initialisation: as is, and with dead codes
# **revived** every 50 steps (moved onto the encoder outputs worst served by their current codes).

# %%
X = X_dig
K = 32
cfg = vq.VQConfig(hidden=64, n_tokens=4, code_dim=4, n_codes=K, init_scale=1.0)
vq_steps = 600 * SCALE
vq_plain, hist_plain = vq.train_vqvae(X, cfg, steps=vq_steps, seed=0, progress=True)
vq_rev, hist_rev = vq.train_vqvae(X, cfg, steps=vq_steps, revive_every=50, seed=0, progress=True)

usage = {}
for name, model in (("plain", vq_plain), ("revived", vq_rev)):
    ids = model.indices(X)
    usage[name] = dict(idx=ids, perp=vq.codebook_perplexity(ids, K), dead=int(vq.dead_codes(ids, K).sum()),
                       mse=float(F.mse_loss(model.reconstruct(X), X)))
    print(f"{name:8s}: perplexity {usage[name]['perp']:.1f} of {K}, dead codes {usage[name]['dead']}, "
          f"reconstruction MSE {usage[name]['mse']:.4f}")
print(f"codes revived at the first revivals: {hist_rev['revived'][:4]}")
assert K ** cfg.n_tokens == 2**20                         # 32^4 code tuples: 20 bits per digit
assert usage["plain"]["dead"] >= K // 2 and usage["revived"]["dead"] < usage["plain"]["dead"]
assert usage["revived"]["perp"] > 1.5 * usage["plain"]["perp"]
assert hist_rev["revived"][0] >= K // 2

fig, axes = plotting.figure(ncols=2, width=4.6, height=2.8)
for ax, name in zip(axes, ("plain", "revived")):
    counts = torch.bincount(usage[name]["idx"].reshape(-1), minlength=K)
    ax.bar(range(K), counts.numpy())
    plotting.label(ax, f"{name}: perplexity {usage[name]['perp']:.1f}, {usage[name]['dead']} dead", "code index k",
                   "tokens assigned (count)")
fig.tight_layout()
plt.show()

# %% [markdown]
# Without revival at least half of the 32 codes are dead at the end of training (23 to 27 in the draws we ran; the
# count is printed above); the first revival finds at least half dead as well (29 or 30), moves them onto the data,
# and from then on the codebook is used far more evenly: the perplexity is more than 1.5 times higher (2.5 to 8 times
# in our draws). A dead code is capacity paid for and never used. The reconstruction error (printed) is usually lower
# with revival too, but by a margin that varies from run to run, so we do not assert it: the decoder partly
# compensates for a small effective codebook.
#
# ### Reconstructions and interpolation against the KL-VAE
#
# The KL-VAE of Volume 0 with a 4-dimensional continuous latent (Bernoulli decoder, $\beta = 1$), trained briefly on the
# same digits. Then both models interpolate between two digits: the KL-VAE along a straight line between the two
# posterior means, the VQ-VAE along a straight line between the two encoder outputs $z_e$, quantised at every step.

# %%
kl_vae, _ = train_vae(X, VAEConfig(latent=4), TrainConfig(epochs=20 * SCALE, seed=0), progress=True)
rec_kl, rec_vq = kl_vae.reconstruct(X), vq_rev.reconstruct(X)
mse_kl, mse_vq = float(F.mse_loss(rec_kl, X)), usage["revived"]["mse"]
mse_mean = float(F.mse_loss(X.mean(0).expand_as(X), X))
print(f"reconstruction MSE per pixel: KL-VAE (4 continuous numbers) {mse_kl:.4f}, VQ-VAE (4 tokens of 5 bits) "
      f"{mse_vq:.4f}; the mean digit {mse_mean:.4f}")
assert mse_kl < 0.75 * mse_mean and mse_vq < 0.75 * mse_mean

pick = torch.as_tensor(rng.choice(len(X), 2, replace=False))
a, b = X[pick[0]:pick[0] + 1], X[pick[1]:pick[1] + 1]
ts = torch.linspace(0, 1, 129)[:, None]                     # 128 small steps from a to b
with torch.no_grad():
    mu_a, mu_b = kl_vae.encoder(a)[0], kl_vae.encoder(b)[0]
    path_kl = kl_vae.decode_mean((1 - ts) * mu_a + ts * mu_b)
    za, zb = vq_rev.encode(a), vq_rev.encode(b)
    _, ids_path = vq.vector_quantize((1 - ts[:, :, None]) * za + ts[:, :, None] * zb, vq_rev.codebook)
    path_vq = vq_rev.decode_indices(ids_path)


def step_profile(path):
    steps = (path[1:] - path[:-1]).norm(dim=1)
    return steps, float(steps.max() / steps.sum().clamp_min(1e-12))


steps_kl, share_kl = step_profile(path_kl)
steps_vq, share_vq = step_profile(path_vq)
n_tuples = len(torch.unique(ids_path, dim=0))
n_images = len(torch.unique(path_vq, dim=0))
n_steps = len(ts) - 1
print(f"KL-VAE path: all {int((steps_kl > 0).sum())} of {n_steps} steps move, the largest is {share_kl:.2f} of the "
      "total")
print(f"VQ-VAE path: {int((steps_vq > 0).sum())} of {n_steps} steps move, {n_images} distinct images = {n_tuples} "
      f"distinct code tuples; the largest step is {share_vq:.2f} of the total")
assert (steps_kl > 0).all() and share_kl < 0.25
assert n_images == n_tuples and int((steps_vq > 0).sum()) == n_tuples - 1        # it moves only where a code switches
assert n_tuples - 1 < n_steps / 2                                               # ... and stands still most of the way

fig, axes = plotting.figure(nrows=4, width=11, height=1.0)
for ax, imgs, title in zip(axes, (X, rec_vq, rec_kl), ("data", "VQ-VAE reconstructions", "KL-VAE reconstructions")):
    plotting.image_grid(imgs[:16].numpy(), nrow=16, title=title, ax=ax)
plotting.image_grid(torch.cat([path_kl[::16], path_vq[::16]]).numpy(), nrow=9,
                    title="interpolation, 9 of 129 points: KL-VAE (top), VQ-VAE (bottom)", ax=axes[3])
fig.tight_layout()
plt.show()

# %% [markdown]
# Along the KL-VAE's path every step changes the image a little (no step carries more than a quarter of the total
# change): the decoder is a continuous map of a continuous latent. Along the VQ-VAE's path the image is **piecewise
# constant**: it changes only when a token switches code, so there are exactly as many distinct images as distinct
# code tuples, and it stands still on most of the 128 small steps: over 42 draws (seed offsets 0, 9604 and
# 9700-9739) 1 to 31 of them moved, typically about 10 (the cell asserts fewer than 64). With 16 steps, as this cell
# first had, all 16 moved at offset 9604, where the codes switch 31 times along the way. A VQ latent is not meant to be
# interpolated; it is meant to be *modelled* token by token (an autoregressive Transformer in VQGAN, Parti or MaskGIT).
#
# ### The manifold lens: intrinsic dimension of the reconstructions
#
# TwoNN (Volume 0) estimates the dimension of a point cloud from the ratio of each point's two nearest-neighbour
# distances. The digits themselves measure about 9. A decoder from a 4-dimensional latent can only produce a
# (at most) 4-dimensional manifold; the VQ-VAE's reconstructions are a **finite set** of points, one per distinct code
# tuple used: dimension zero, with its coverage measured by the codebook statistics above instead.

# %%
id_data, id_kl = twonn_id(X.numpy()), twonn_id(rec_kl.numpy())
n_vq_points = len(torch.unique(rec_vq, dim=0))
n_vq_tuples = len(torch.unique(usage["revived"]["idx"], dim=0))
print(f"TwoNN: digits {id_data:.1f}, KL-VAE reconstructions {id_kl:.1f} (latent dimension 4); VQ-VAE: {n_vq_points} "
      f"distinct reconstructions of {len(X)} digits = {n_vq_tuples} distinct code tuples")
assert 8 < id_data < 10 and id_kl < 4.5 < id_data and n_vq_points == n_vq_tuples < len(X)

# %% [markdown]
# The KL-VAE squeezes the digits (TwoNN about 9) onto a manifold of dimension at most its latent's, 4 (the printed
# estimate: 2.9 to 3.8 over the draws we ran; the cell asserts below 4.5, the bound plus the estimator's slack); the VQ-VAE maps them onto fewer points than there are digits, exactly one per code tuple in use.
#
# > **Careful.** VQ tokenizers are often said to be "used by DALL-E 1 and Party". DALL-E 1 used a *discrete VAE*
# > trained with a Gumbel-softmax relaxation, not a VQ-VAE with a straight-through estimator; "Party" is Parti, which
# > used a ViT-VQGAN tokenizer. On the KL side, Stable Diffusion's VAE uses a tiny KL weight (about $10^{-6}$), so its
# > latents are far from $\mathcal N(0, I)$; that is why SD multiplies them by 0.18215 before diffusing (chapter 1,
# > `latent_scale_factor`). Which latent gives "crisper" images depends mostly on the adversarial and perceptual losses
# > both VQGAN and SD's autoencoder add, not on discreteness alone.

# %% [markdown]
# ## Summary
#
# - **Cross-attention** lets image positions (queries) read prompt tokens (keys, values); each row of the attention
#   matrix is a distribution over tokens, each column reshaped to the grid is a word's attention map. On a toy grid,
#   every concept word's map was more than 2 times heavier inside its object than outside and peaked inside it; a padding mask applied
#   before the softmax gives pads exactly zero weight.
# - **Volume rendering**: $w_i = T_i(1 - e^{-\sigma_i\delta_i})$, $T_i = e^{-\sum_{j<i}\sigma_j\delta_j}$, weights summing
#   to $1 - T_S$; the quadrature converges as samples densify. A flatland NeRF fitted to 4 one-dimensional views renders
#   4 unseen views with about a fifth of the error of a constant guess; occlusion makes opposite views differ in colour
#   but not in opacity.
# - **Gaussian splats**: the same compositing with explicit Gaussians; 16 splats (112 numbers) fit a 576-pixel digit
#   with $R^2 > 0.9$ and render at any resolution.
# - **SDS** with an exact frozen model: its mean is zero at a mode, and optimising points with it drives them onto the
#   modes, more concentrated than the data themselves (3 of 3 runs): an optimiser, not a sampler.
# - **VQ-VAE vs KL-VAE**: the straight-through estimator passes the decoder's gradient to the encoder unchanged, the
#   codebook and commitment losses move only the codes and only the encoder. A badly initialised codebook loses most of
#   its codes; reviving them raised the perplexity more than 1.5-fold. KL-VAE
#   interpolations are smooth; VQ-VAE interpolations are piecewise constant. TwoNN: digits about 9, KL-VAE
#   reconstructions below its latent dimension 4, VQ reconstructions a finite set, one point per code tuple.
#
# **Exercises.** Open `exercises/v3_generative/03_cross_modal_3d_and_tokenizers.ipynb` (the command
# `manifold-course lab` copies it to your `my_work/` folder). Ten pieces: `cross_attention`, `token_attention_maps`,
# `transmittance`, `volume_render`, `splat_2d`, `sds_grad`, `vector_quantize`, `vq_losses`, `codebook_perplexity` and
# `revive_dead_codes`; each cell tells you at once whether you are right.
#
# **Further reading.**
# - A. Radford et al., "Learning Transferable Visual Models From Natural Language Supervision" (CLIP), 2021,
#   arXiv:2103.00020; R. Rombach, A. Blattmann, D. Lorenz, P. Esser, B. Ommer, "High-Resolution Image Synthesis with
#   Latent Diffusion Models", 2021, arXiv:2112.10752; A. Hertz et al., "Prompt-to-Prompt Image Editing with Cross
#   Attention Control", 2022, arXiv:2208.01626.
# - B. Mildenhall et al., "NeRF: Representing Scenes as Neural Radiance Fields for View Synthesis", 2020,
#   arXiv:2003.08934; M. Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in Low
#   Dimensional Domains", 2020, arXiv:2006.10739.
# - B. Kerbl, G. Kopanas, T. Leimkühler, G. Drettakis, "3D Gaussian Splatting for Real-Time Radiance Field Rendering",
#   2023, arXiv:2308.04079.
# - B. Poole, A. Jain, J. T. Barron, B. Mildenhall, "DreamFusion: Text-to-3D using 2D Diffusion", 2022,
#   arXiv:2209.14988; Z. Wang et al., "ProlificDreamer: High-Fidelity and Diverse Text-to-3D Generation with
#   Variational Score Distillation", 2023, arXiv:2305.16213.
# - A. van den Oord, O. Vinyals, K. Kavukcuoglu, "Neural Discrete Representation Learning", 2017, arXiv:1711.00937;
#   P. Esser, R. Rombach, B. Ommer, "Taming Transformers for High-Resolution Image Synthesis", 2020, arXiv:2012.09841;
#   A. Ramesh et al., "Zero-Shot Text-to-Image Generation" (DALL-E, dVAE), 2021, arXiv:2102.12092; J. Yu et al.,
#   "Scaling Autoregressive Models for Content-Rich Text-to-Image Generation" (Parti), 2022, arXiv:2206.10789.
# - E. Facco, M. d'Errico, A. Rodriguez, A. Laio, "Estimating the intrinsic dimension of datasets by a minimal
#   neighborhood information" (TwoNN), 2017, arXiv:1803.06992.
