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
# # Volume 3, Chapter 2 exercises: Control and transformers (sections 3.5-3.6)
#
# Ten pieces of controllable and transformer-based generation: ControlNet's zero convolution and its trainable copy
# beside a locked model, IP-Adapter's decoupled cross-attention, DiT's patches, spacetime patches of video and their
# token count, an adaLN-Zero block, the sinusoidal time embedding and a temporal-consistency metric. Write the body
# of each function where it says `# YOUR CODE HERE`, run the cell, then run the `check(...)` cell below it: it answers
# at once with a green "passed" or a red message that says what to fix. The checks draw fresh random cases each time,
# including edge cases (batch 1, one pixel, sizes that are not powers of two, float64).
#
# The lecture is `chapters/v3_generative/02_control_and_transformers.ipynb`. Please write your own code rather than
# importing the course's reference implementations (`manifold_course.generative.control`, `.dit`, `.video`,
# `.denoiser.timestep_embedding`): the point is to build them yourself. The given parts (a `ZeroLinear` layer, the
# `__init__` of the DiT block) are there so that the checks can load the reference's weights into your modules.
#
# Conventions: inputs are torch tensors; shapes use `B` batch, `C` channels, `H, W` height and width, `T` frames,
# `N` tokens, `D` model width, `d` head width; outputs keep the dtype of the inputs; never modify an input in place.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import copy
import math

import torch
from torch import nn

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: ControlNet's zero convolution
#
# `ZeroConv1x1(c_in, c_out)`: a 1x1 `nn.Conv2d` from `c_in` to `c_out` channels (input `(B, c_in, H, W)`) whose weight
# **and** bias start at zero, and stay trainable parameters. At initialisation it outputs 0, yet one backward pass
# gives its weight the non-zero gradient $\partial L/\partial W = \sum_{b,h,w} (\partial L/\partial y)\,x^\top$.
#
# **Checked:** the parameters (a 1x1 kernel), the output at initialisation (exactly 0), the weight and bias gradients
# of $L = \sum y \odot g$ after one backward pass, and the output once non-zero weights are loaded; on 4x6 maps,
# a single pixel with batch 1, and 8 -> 3 channels.

# %%
class ZeroConv1x1(nn.Conv2d):
    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out, kernel_size=1)
        ### BEGIN SOLUTION
        # Hint: nn.init.zeros_ changes the values in place and keeps the parameter trainable.
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)
        ### END SOLUTION


# %%
check("control_dit.ZeroConv1x1", ZeroConv1x1)

# %% [markdown]
# ## Exercise 2: a trainable copy beside a locked model
#
# The locked model is the course's `TimeMLP` denoiser: `base.inp` (a linear layer of the input), `base.temb` (an MLP of
# the time embedding), `base.body` (the trunk, hidden -> output), and `base.features(x, t)` gives its first hidden layer
# $h = \mathrm{inp}(x) + \mathrm{temb}(\mathrm{emb}(t))$, so that `base(x, t) == base.body(base.features(x, t))`.
# `ControlledModel(base, c_dim)` implements ControlNet on the trunk $F$ = `base.body`:
#
# $$y_c = F(h) + \mathcal Z_{out}\big(F_{copy}(h + \mathcal Z_{in}(c))\big).$$
#
# In `__init__`: keep `self.base = base` and **lock** every parameter of it (`requires_grad_(False)`); `self.copy` is a
# `copy.deepcopy(base.body)` whose parameters are trainable; `self.zero_in = ZeroLinear(c_dim, hidden)` with
# `hidden = base.inp.out_features`, and `self.zero_out = ZeroLinear(base.dim, base.dim)`. In `forward(x, t, c)` compute
# $h$ with `self.base.features(x, t)`, then the formula.
#
# **Checked:** which parameters are trainable (copy, zero_in, zero_out) and frozen (base); the output at
# initialisation equals `base(x, t)` exactly; the gradient reaching `zero_out.weight` on the first backward pass; the
# output and the gradient of `zero_in.weight` once the joins are non-zero; the base never gets a gradient.

# %%
class ZeroLinear(nn.Linear):
    def __init__(self, d_in, d_out):
        super().__init__(d_in, d_out)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


class ControlledModel(nn.Module):
    def __init__(self, base, c_dim):
        super().__init__()
        ### BEGIN SOLUTION
        # Hint: deep-copy the trunk, then freeze the base (freezing first would copy frozen parameters).
        self.base = base
        self.copy = copy.deepcopy(base.body)
        self.base.requires_grad_(False)
        self.zero_in = ZeroLinear(c_dim, base.inp.out_features)
        self.zero_out = ZeroLinear(base.dim, base.dim)
        ### END SOLUTION

    def forward(self, x, t, c):
        ### BEGIN SOLUTION
        h = self.base.features(x, t)                                            # (B, hidden)
        return self.base.body(h) + self.zero_out(self.copy(h + self.zero_in(c)))
        ### END SOLUTION


# %%
check("control_dit.ControlledModel", ControlledModel)

# %% [markdown]
# ## Exercise 3: IP-Adapter's decoupled cross-attention
#
# `decoupled_cross_attention(q, k_t, v_t, k_i, v_i, lam) -> Tensor`: `q` of shape `(..., Tq, d)`, text keys and values
# `(..., Tt, d)`, image-prompt keys and values `(..., Ti, d)`, a float `lam`:
#
# $$\mathrm{Attn}(Q, K_t, V_t) + \lambda\,\mathrm{Attn}(Q, K_i, V_i),\qquad \mathrm{Attn}(Q,K,V) =
# \mathrm{softmax}\big(QK^\top/\sqrt d\big)V,$$
#
# two separate softmaxes over the keys (no mask).
#
# **Checked:** against the reference on 4-D inputs, $\lambda = 0$ (text-only), one token each, 77 text tokens with
# $\lambda = 2.5$, float64, and large scores.

# %%
def decoupled_cross_attention(q, k_t, v_t, k_i, v_i, lam):
    ### BEGIN SOLUTION
    d = q.shape[-1]
    text = torch.softmax(q @ k_t.transpose(-2, -1) / math.sqrt(d), dim=-1) @ v_t      # (..., Tq, d)
    image = torch.softmax(q @ k_i.transpose(-2, -1) / math.sqrt(d), dim=-1) @ v_i     # (..., Tq, d)
    return text + lam * image
    ### END SOLUTION


# %%
check("control_dit.decoupled_cross_attention", decoupled_cross_attention)

# %% [markdown]
# ## Exercise 4: images into patch tokens
#
# `patchify(x, p) -> Tensor`: images `(B, C, H, W)` ($p$ divides $H$ and $W$) into tokens `(B, N, p*p*C)` with
# $N = (H/p)(W/p)$. Token $n$ is the patch at grid row $n \,/\!/\, (W/p)$ and grid column $n \bmod (W/p)$ (row by row);
# inside a token the numbers are ordered by (row within the patch, column within the patch, channel), channel fastest
# (DiT's order; Volume 1's `patchify` exercise used `F.unfold`'s channel-first order).
#
# **Checked:** exactly on `(2, 3, 8, 8)` with $p = 2$, digits with $p = 4$, $H \ne W$ with $p = 3$, one token, and $p = 1$.

# %%
def patchify(x, p):
    ### BEGIN SOLUTION
    # Hint: reshape to (B, C, H/p, p, W/p, p), then permute the axes into (B, H/p, W/p, p, p, C).
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)              # (B, h, w, p, p, C)
    return x.reshape(B, (H // p) * (W // p), p * p * C)
    ### END SOLUTION


# %%
check("control_dit.patchify", patchify)

# %% [markdown]
# ## Exercise 5: how many spacetime tokens
#
# `spacetime_token_count(T, H, W, pt, ph, pw) -> int`: the number of non-overlapping spacetime patches of
# $p_t$ frames $\times\, p_h \times p_w$ pixels in a video of $T$ frames of $H \times W$ (the patch divides the video):
# $N = \frac{T}{p_t}\cdot\frac{H}{p_h}\cdot\frac{W}{p_w}$, as a Python `int`.
#
# **Checked:** exactly on five videos (one an image, one a 5 s clip at 24 fps) and a random divisible size.

# %%
def spacetime_token_count(T, H, W, pt, ph, pw):
    ### BEGIN SOLUTION
    return (T // pt) * (H // ph) * (W // pw)
    ### END SOLUTION


# %%
check("control_dit.spacetime_token_count", spacetime_token_count)

# %% [markdown]
# ## Exercise 6: spacetime patches
#
# `spacetime_patchify(video, pt, ph, pw) -> Tensor`: videos `(B, T, C, H, W)` into tokens `(B, N, pt*ph*pw*C)`.
# Tokens are ordered by (time block, row block, column block), column block fastest; inside a token the numbers are
# ordered by (frame within the patch, row, column, channel), channel fastest: exactly `patchify` with a time axis in
# front.
#
# **Checked:** exactly on 8-frame 16x16 clips with patch (2, 4, 4), 3 channels with patch (2, 3, 3), patch (3, 2, 1),
# and $p_t = 1$ with one patch per frame.

# %%
def spacetime_patchify(video, pt, ph, pw):
    ### BEGIN SOLUTION
    B, T, C, H, W = video.shape
    x = video.reshape(B, T // pt, pt, C, H // ph, ph, W // pw, pw)                     # (B, t, pt, C, h, ph, w, pw)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)                                              # (B, t, h, w, pt, ph, pw, C)
    return x.reshape(B, (T // pt) * (H // ph) * (W // pw), pt * ph * pw * C)
    ### END SOLUTION


# %%
check("control_dit.spacetime_patchify", spacetime_patchify)

# %% [markdown]
# ## Exercise 7: videos back from spacetime patches
#
# `spacetime_unpatchify(tokens, video_shape, pt, ph, pw) -> Tensor`: the inverse of exercise 6, tokens
# `(B, N, pt*ph*pw*C)` and `video_shape = (T, C, H, W)` into videos `(B, T, C, H, W)`.
#
# **Checked:** exactly on the four shapes of exercise 6, then the round trip `unpatchify(patchify(video)) == video`.

# %%
def spacetime_unpatchify(tokens, video_shape, pt, ph, pw):
    ### BEGIN SOLUTION
    # Hint: undo the reshape, apply the inverse permutation, then reshape to (B, T, C, H, W).
    T, C, H, W = video_shape
    B = tokens.shape[0]
    x = tokens.reshape(B, T // pt, H // ph, W // pw, pt, ph, pw, C)                    # (B, t, h, w, pt, ph, pw, C)
    x = x.permute(0, 1, 4, 7, 2, 5, 3, 6)                                              # (B, t, pt, C, h, ph, w, pw)
    return x.reshape(B, T, C, H, W)
    ### END SOLUTION


# %%
check("control_dit.spacetime_unpatchify", spacetime_unpatchify)

# %% [markdown]
# ## Exercise 8: an adaLN-Zero block
#
# Complete the DiT block (keep the given layers: the check loads the reference's weights by these names). Zero the
# last layer of `adaLN_modulation` (weight and bias) in `__init__`. In `forward(x, c)`, `x` of shape `(B, N, D)`,
# `c` of shape `(B, D)`: split `adaLN_modulation(c)` into six `(B, D)` chunks in the order
# $(\beta_1, \gamma_1, \alpha_1, \beta_2, \gamma_2, \alpha_2)$ (shift, scale, gate of the attention, then of the MLP) and
#
# $$x \leftarrow x + \alpha_1 \odot \mathrm{attn}\big(\mathrm{LN}_1(x)\odot(1+\gamma_1) + \beta_1\big),\qquad
# x \leftarrow x + \alpha_2 \odot \mathrm{mlp}\big(\mathrm{LN}_2(x)\odot(1+\gamma_2) + \beta_2\big),$$
#
# with each chunk broadcast over the $N$ tokens.
#
# **Checked:** the output at initialisation equals `x` (identity) for conditionings of size 0.1, 1 and 10; then, with
# the reference's random weights loaded, the outputs on inputs `(2, 5, D)`, `(1, 1, D)`, `(3, 7, D)` for
# `(D, heads)` = `(16, 4)`, `(24, 3)`, `(8, 1)`.

# %%
from manifold_course.generative.dit import SelfAttention


class AdaLNZeroBlock(nn.Module):
    def __init__(self, d, n_heads=4, mlp_ratio=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(d, n_heads)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * d, d))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        ### BEGIN SOLUTION
        nn.init.zeros_(self.adaLN_modulation[1].weight)
        nn.init.zeros_(self.adaLN_modulation[1].bias)
        ### END SOLUTION

    def forward(self, x, c):
        ### BEGIN SOLUTION
        # Hint: .chunk(6, dim=-1); a (B, D) chunk broadcasts over tokens as chunk[:, None, :].
        b1, g1, a1, b2, g2, a2 = (m[:, None, :] for m in self.adaLN_modulation(c).chunk(6, dim=-1))
        x = x + a1 * self.attn(self.norm1(x) * (1 + g1) + b1)
        return x + a2 * self.mlp(self.norm2(x) * (1 + g2) + b2)
        ### END SOLUTION


# %%
check("control_dit.AdaLNZeroBlock", AdaLNZeroBlock)

# %% [markdown]
# ## Exercise 9: the sinusoidal time embedding
#
# `timestep_embedding(t, dim, max_period=10000) -> Tensor`: times `t` of shape `(n,)` (integer steps or fractions) into
# `(n, dim)`. With $h = \lfloor \mathrm{dim}/2 \rfloor$ frequencies $\omega_i = P^{-i/h}$, $i = 0, \dots, h-1$ ($P$ =
# `max_period`): the first $h$ columns are $\cos(t\,\omega_i)$, the next $h$ are $\sin(t\,\omega_i)$, and an odd `dim`
# gets one column of zeros at the end. The output is float32 for integer `t`, else the dtype of `t`.
#
# **Checked:** against the reference (tolerance $2\cdot10^{-4}$: float32 arguments up to 1000) on integer steps,
# fractional times, odd `dim`, `dim = 2`, `max_period = 100` and float64 times (to $10^{-10}$).

# %%
def timestep_embedding(t, dim, max_period=10000):
    ### BEGIN SOLUTION
    t = torch.as_tensor(t)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)   # (h,)
    args = t.reshape(-1, 1).to(torch.float64) * freqs                                           # (n, h)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb.to(t.dtype if t.is_floating_point() else torch.float32)
    ### END SOLUTION


# %%
check("control_dit.timestep_embedding", timestep_embedding)

# %% [markdown]
# ## Exercise 10: frame-to-frame difference
#
# `frame_difference(video) -> Tensor`: clips `(B, T, C, H, W)` into `(B,)`, the mean absolute change between
# consecutive frames $\frac{1}{T-1}\sum_{t=1}^{T-1} \mathrm{mean}_{c,h,w}|x_{t+1} - x_t|$ (no wrap-around from the
# last frame to the first).
#
# **Checked:** against the reference on moving-square clips, random 3-channel clips, two frames, a static clip and
# float64.

# %%
def frame_difference(video):
    ### BEGIN SOLUTION
    return (video[:, 1:] - video[:, :-1]).abs().flatten(2).mean(-1).mean(-1)
    ### END SOLUTION


# %%
check("control_dit.frame_difference", frame_difference)

# %% [markdown]
# ## Done
#
# Run `manifold-course progress` to see your results. Next: chapter 3.7-3.9 (cross-modal bridges, 3-D generation,
# VAE variants) uses cross-attention the way IP-Adapter did here.
