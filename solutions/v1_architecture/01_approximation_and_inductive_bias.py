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
# # Volume 1, Chapter 1 exercises: Approximation and inductive bias (sections 1.1-1.4)
#
# Twelve exercises, from counting parameters to the ResNet and ConvNeXt blocks. Each states its inputs, outputs and
# what the check verifies; write the body where it says `# YOUR CODE HERE`, run the cell, then run the `check(...)`
# cell below it: it answers at once with a green "passed" or a red message that says what to fix. The checks draw
# fresh random cases each time, including edge cases (a batch of one, sizes that are not powers of two, huge values).
#
# The lecture is `chapters/v1_architecture/01_approximation_and_inductive_bias.ipynb`. Please write your own code
# rather than importing the course's reference implementations: the point is to build them yourself.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: a staircase of sigmoid bumps (1.1)
#
# `bump_approximation(f, a, b, n_bumps, k) -> f_hat`, where `f` maps a float64 tensor to a tensor of the same shape.
# Cut $[a, b]$ into $n$ cells of width $h = (b-a)/n$, with centres $c_i = a + (i - \tfrac12)h$ ($i = 1..n$) and inner
# edges $t_i = a + ih$ ($i = 1..n-1$), and return the function
#
# $$\hat f(x) = f(c_1) + \sum_{i=1}^{n-1}\big(f(c_{i+1}) - f(c_i)\big)\,\sigma\big(k(x - t_i)\big)$$
#
# ($\sigma$ the sigmoid), which takes a 1-D float64 tensor `x` and returns a tensor of the same shape. This is a sum
# of $n$ bumps $f(c_i)[\sigma(k(x - t_{i-1})) - \sigma(k(x - t_i))]$ whose two outer ones are open-ended.
#
# **Checked:** equal to the reference (1e-6) on a grid that extends a quarter of the interval beyond both ends, for
# $\sin$, $|x|$ on an asymmetric interval, a single bump, a steep step ($k = 10^4$) and soft sigmoids ($k = 5$); for
# $\sin$ on $[0, \pi]$ the sup error decreases with $n$ and stays below $L(b-a)/n + 0.05$.

# %%
def bump_approximation(f, a, b, n_bumps, k):
    ### BEGIN SOLUTION
    # Hint: compute the centres, the heights f(c_i) and the inner edges once, outside the returned function.
    # Hint: x[:, None] - edges has shape (N, n - 1); torch.sigmoid is safe for huge arguments.
    h = (b - a) / n_bumps
    centres = torch.tensor([a + (i + 0.5) * h for i in range(n_bumps)], dtype=torch.float64)
    edges = torch.tensor([a + i * h for i in range(1, n_bumps)], dtype=torch.float64)
    heights = f(centres)

    def f_hat(x):
        steps = torch.sigmoid(k * (x[:, None] - edges))                 # (N, n - 1)
        return heights[0] + (steps * (heights[1:] - heights[:-1])).sum(dim=1)

    return f_hat
    ### END SOLUTION


# %%
check("inductive_bias.bump_approximation", bump_approximation)

# %% [markdown]
# ## Exercise 2: the exact ReLU interpolant (1.1)
#
# `relu_interpolant(xs, ys) -> nn.Sequential`: `xs` and `ys` are 1-D float64 tensors of length $n \ge 2$, `xs`
# strictly increasing. Return `nn.Sequential(nn.Linear(1, n - 1), nn.ReLU(), nn.Linear(n - 1, 1))` (layers in
# float64: `dtype=torch.float64`) whose weights make it the broken line through the knots:
#
# $$\hat f(x) = y_0 + \sum_{i=0}^{n-2}(s_i - s_{i-1})\,\mathrm{ReLU}(x - x_i),\qquad s_i = \frac{y_{i+1} - y_i}{x_{i+1} - x_i},\ s_{-1} = 0 .$$
#
# The net takes an input of shape `(N, 1)` and returns `(N, 1)`.
#
# **Checked:** the structure (3 layers, $n - 1$ hidden units, float64); the value at every knot and at 997 points
# between the knots (straight-line interpolation, `numpy.interp`) within $10^{-6}(1 + \max|y|)$; two knots (one
# unit), a flat last piece, uneven spacing, 37 knots, knots far from 0 with values of order 1000.

# %%
def relu_interpolant(xs, ys):
    ### BEGIN SOLUTION
    # Hint: inside torch.no_grad(), write the weights with .copy_() / .fill_(): first layer weight 1 and bias -x_i.
    n = len(xs)
    slopes = (ys[1:] - ys[:-1]) / (xs[1:] - xs[:-1])                     # (n - 1,)
    previous = torch.cat([torch.zeros(1, dtype=torch.float64), slopes[:-1]])
    net = nn.Sequential(nn.Linear(1, n - 1, dtype=torch.float64), nn.ReLU(), nn.Linear(n - 1, 1, dtype=torch.float64))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(-xs[:-1])
        net[2].weight.copy_((slopes - previous).reshape(1, n - 1))
        net[2].bias.fill_(ys[0].item())
    return net
    ### END SOLUTION


# %%
check("inductive_bias.relu_interpolant", relu_interpolant)

# %% [markdown]
# ## Exercise 3: counting the parameters of an MLP (1.1, warm-up)
#
# `mlp_param_count(sizes) -> int`: the number of weights and biases of
# `nn.Sequential(nn.Linear(sizes[0], sizes[1]), ..., nn.Linear(sizes[-2], sizes[-1]))` (activations have none),
# $\sum_l (d_l d_{l+1} + d_{l+1})$. A list with one size has no layer.
#
# **Checked:** exact Python `int`s for small nets, one size (0), random lists, and the lecture's $10^6 \to 1000$
# layer; equal to `sum(p.numel() for p in net.parameters())` of the real `nn.Sequential`.

# %%
def mlp_param_count(sizes):
    ### BEGIN SOLUTION
    # Hint: zip(sizes[:-1], sizes[1:]) gives the (in, out) pairs; each layer has in * out weights and out biases.
    total = 0
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        total += d_in * d_out + d_out
    return total
    ### END SOLUTION


# %%
check("inductive_bias.mlp_param_count", mlp_param_count)

# %% [markdown]
# ## Exercise 4: measuring equivariance (1.2)
#
# `equivariance_error(f, t_in, t_out, x) -> float`: the relative error
#
# $$e = \frac{\|f(t_{in}(x)) - t_{out}(f(x))\|_F}{\|t_{out}(f(x))\|_F}$$
#
# with Frobenius norms over all entries (`Tensor.norm()`), as a Python float. `f`, `t_in`, `t_out` are functions of
# tensors (`f` may be an `nn.Module`); invariance is the case `t_out = lambda y: y`. No gradients are needed.
#
# **Checked:** against the reference (relative tolerance $10^{-4}$; absolute $10^{-5}$ where the answer is rounding
# noise) on a circular convolution with a shift (about $10^{-7}$), pooled and unpooled convolution features under a
# shift with $t_{out}$ the identity, a random MLP (batch of one), a scaling by 3 (which changes norms), and attention
# with positions under a permutation of the tokens.

# %%
def equivariance_error(f, t_in, t_out, x):
    ### BEGIN SOLUTION
    # Hint: wrap the computation in torch.no_grad() and return float(...), not a tensor.
    with torch.no_grad():
        transformed_first = f(t_in(x))
        transformed_after = t_out(f(x))
        return float(torch.linalg.vector_norm(transformed_first - transformed_after) / torch.linalg.vector_norm(transformed_after))
    ### END SOLUTION


# %%
check("inductive_bias.equivariance_error", equivariance_error)

# %% [markdown]
# ## Exercise 5: self-attention, with and without positions (1.2)
#
# `self_attention(X, Wq, Wk, Wv, pe=None) -> Y`: `X` has shape `(..., T, D)` (any number of batch dimensions),
# `Wq` and `Wk` `(D, d_k)`, `Wv` `(D, d_v)`, `pe` `(T, D)` or `None`. If `pe` is given, add it to `X` first. Then
#
# $$Q = XW_q,\ K = XW_k,\ V = XW_v,\qquad Y = \mathrm{softmax}\Big(\frac{QK^\top}{\sqrt{d_k}}\Big)V ,$$
#
# with the softmax over the last axis (each query's weights over the keys sum to 1). `Y` has shape `(..., T, d_v)`
# and the dtype of `X`.
#
# **Checked:** against the reference on float64 (1e-9) and float32 (1e-5): $d_k \ne D$, a batch, a single token, with
# sinusoidal positions, and scores of order $10^4$ (an `exp` without the max-subtraction overflows; `torch.softmax` is
# safe); without positions the result is permutation-equivariant.

# %%
def self_attention(X, Wq, Wk, Wv, pe=None):
    ### BEGIN SOLUTION
    # Hint: K.transpose(-2, -1) works with or without batch dimensions; scale by sqrt(d_k) = sqrt(Wq.shape[-1]).
    if pe is not None:
        X = X + pe
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    weights = torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(Wk.shape[1]), dim=-1)    # (..., T, T)
    return weights @ V
    ### END SOLUTION


# %%
check("inductive_bias.self_attention", self_attention)

# %% [markdown]
# ## Exercise 6: convolution vs dense, parameter counts (1.2)
#
# `conv_vs_dense_params(H, W, C_in, C_out, k) -> (conv, dense)`, two Python ints, biases included:
# - `conv`: an `nn.Conv2d(C_in, C_out, k)`, i.e. $C_{out}(C_{in}k^2 + 1)$;
# - `dense`: an `nn.Linear` that maps the flattened $H\times W\times C_{in}$ input to a flattened
#   $H\times W\times C_{out}$ output (the same output a 'same'-padded convolution produces).
#
# **Checked:** exact values for a 32x32 RGB image, $H \ne W$, $k = 1$, a 1000x1000 image ($10^{12}$ weights: exact
# integers) and random sizes.

# %%
def conv_vs_dense_params(H, W, C_in, C_out, k):
    ### BEGIN SOLUTION
    # Hint: the convolution does not depend on H and W at all: that is weight sharing.
    n_in, n_out = H * W * C_in, H * W * C_out
    return C_out * C_in * k * k + C_out, n_in * n_out + n_out
    ### END SOLUTION


# %%
check("inductive_bias.conv_vs_dense_params", conv_vs_dense_params)

# %% [markdown]
# ## Exercise 7: gradient norm per layer (1.3)
#
# `grad_norms_per_layer(model, x, y) -> list[float]`: with $L$ the mean cross-entropy of `model(x)` (logits
# `(B, classes)`) against the integer labels `y`, return $\|\partial L/\partial W\|_F$ for the weight `W` of every
# `nn.Linear` in the order `model.modules()` visits them (biases left out), as Python floats.
#
# **Checked:** against the reference (relative $10^{-4}$) on plain and residual `DeepMLP`s, a batch of one, an
# `nn.Sequential`, and a model whose `.grad` fields still hold gradients from an earlier backward pass (zero them,
# or use `torch.autograd.grad`, which does not touch them); on the digits, a 32-block plain tanh net has a
# first/last block ratio below 0.1 and its residual twin a ratio in [0.3, 3].

# %%
def grad_norms_per_layer(model, x, y):
    ### BEGIN SOLUTION
    # Hint: model.zero_grad() before loss.backward(), or torch.autograd.grad(loss, weights).
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    norms = [m.weight.grad.norm().item() for m in linears]
    model.zero_grad()
    return norms
    ### END SOLUTION


# %%
check("inductive_bias.grad_norms_per_layer", grad_norms_per_layer)

# %% [markdown]
# ## Exercise 8: the ResNet basic block (1.3)
#
# `ResBlock(channels)`, an `nn.Module` mapping `(B, C, H, W)` to the same shape:
#
# $$y = \mathrm{ReLU}\big(\mathrm{BN}_2(\mathrm{conv}_2(\mathrm{ReLU}(\mathrm{BN}_1(\mathrm{conv}_1(x))))) + x\big)$$
#
# with `self.conv1`, `self.conv2` = `nn.Conv2d(C, C, 3, padding=1, bias=False)` and `self.bn1`, `self.bn2` =
# `nn.BatchNorm2d(C)` (use exactly these attribute names: the check copies the reference's weights into yours).
#
# **Checked:** $18C^2 + 4C$ parameters; after loading the reference's randomised `state_dict`, the same output as the
# reference in training and evaluation mode on a `(4, C, 5, 7)` input with negative entries, for $C = 3, 1, 8, 5$;
# the input is not modified in place.

# %%
class ResBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        ### BEGIN SOLUTION
        # Hint: BatchNorm's learned shift makes a convolution bias redundant: bias=False.
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        # Hint: add the identity *before* the last ReLU.
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return torch.relu(h + x)
        ### END SOLUTION


# %%
check("inductive_bias.ResBlock", ResBlock)

# %% [markdown]
# ## Exercise 9: the ConvNeXt block (1.4)
#
# `ConvNeXtBlock(dim)`, mapping `(B, C, H, W)` to the same shape with $C$ = `dim`:
# 1. `self.dwconv = nn.Conv2d(C, C, kernel_size=7, padding=3, groups=C)` (depthwise, with bias);
# 2. move channels last, `(B, H, W, C)`, and apply `self.norm = nn.LayerNorm(C, eps=1e-6)`;
# 3. `self.pwconv1 = nn.Linear(C, 4 * C)`, `self.act = nn.GELU()`, `self.pwconv2 = nn.Linear(4 * C, C)`;
# 4. move channels back and add the block's input.
#
# **Checked:** $8C^2 + 57C$ parameters; after loading the reference's randomised `state_dict`, the same output as the
# reference (1e-4) on a `(4, C, 5, 7)` input ($H \ne W$, so a wrong permutation shows) for $C = 3, 1, 8, 5$.

# %%
class ConvNeXtBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        ### BEGIN SOLUTION
        # Hint: groups=dim makes the convolution depthwise: 49 weights + 1 bias per channel.
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        # Hint: x.permute(0, 2, 3, 1) puts channels last; permute(0, 3, 1, 2) is its inverse.
        h = self.dwconv(x).permute(0, 2, 3, 1)                          # (B, H, W, C)
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        return x + h.permute(0, 3, 1, 2)
        ### END SOLUTION


# %%
check("inductive_bias.ConvNeXtBlock", ConvNeXtBlock)

# %% [markdown]
# ## Exercise 10: receptive field of a convolution stack (1.4)
#
# `receptive_field(layers) -> int`: `layers` is a list of `(kernel, stride)` pairs, applied in order. Return the
# number of input pixels (along one axis) that one output unit sees:
# $r_0 = 1$, $r_l = r_{l-1} + (k_l - 1)\prod_{i<l}s_i$.
#
# **Checked:** exact ints for no layer (1), three 3x3 convs (7), the ResNet stem (11), ConvNeXt's stem and one block,
# a VGG-like stack, and a random stack.

# %%
def receptive_field(layers):
    ### BEGIN SOLUTION
    # Hint: keep the product of the strides seen *so far*; update it after using it.
    r, stride_product = 1, 1
    for k, s in layers:
        r = r + (k - 1) * stride_product
        stride_product = stride_product * s
    return r
    ### END SOLUTION


# %%
check("inductive_bias.receptive_field", receptive_field)

# %% [markdown]
# ## Exercise 11: cutting an image into patch tokens (1.4)
#
# `patchify(x, p) -> tokens`: `x` is `(B, C, H, W)` with $H$ and $W$ multiples of $p$. Return `(B, N, C p^2)` with
# $N = (H/p)(W/p)$ tokens ordered row by row over the grid of patches (token $n = i\,(W/p) + j$ is the patch in grid
# row $i$, column $j$), each token the patch `x[b, :, i*p:(i+1)*p, j*p:(j+1)*p]` flattened in (C, p, p) order.
# This is the order of `F.unfold(x, p, stride=p).transpose(1, 2)`; write it with `reshape` and `permute`.
#
# **Checked:** exact equality with the reference for $C > 1$, $H \ne W$, one token per image ($p = H$), and $p = 1$;
# equality with `F.unfold`.

# %%
def patchify(x, p):
    ### BEGIN SOLUTION
    # Hint: reshape to (B, C, H/p, p, W/p, p), then permute the two grid axes to the front of the patch axes.
    B, C, H, W = x.shape
    grid = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)   # (B, H/p, W/p, C, p, p)
    return grid.reshape(B, (H // p) * (W // p), C * p * p)
    ### END SOLUTION


# %%
check("inductive_bias.patchify", patchify)

# %% [markdown]
# ## Exercise 12: putting patch tokens back together (1.4)
#
# `unpatchify(tokens, p, H, W) -> x`: the inverse of `patchify`, from `(B, N, C p^2)` back to `(B, C, H, W)`.
#
# **Checked:** exact equality with the reference on tokens of four image shapes; `unpatchify(patchify(x, p), p, H, W)`
# gives back `x` exactly.

# %%
def unpatchify(tokens, p, H, W):
    ### BEGIN SOLUTION
    # Hint: undo the steps of patchify in reverse order; the inverse of permute(0, 2, 4, 1, 3, 5) is permute(0, 3, 1, 4, 2, 5).
    B, N, D = tokens.shape
    C = D // (p * p)
    grid = tokens.reshape(B, H // p, W // p, C, p, p).permute(0, 3, 1, 4, 2, 5)   # (B, C, H/p, p, W/p, p)
    return grid.reshape(B, C, H, W)
    ### END SOLUTION


# %%
check("inductive_bias.unpatchify", unpatchify)

# %% [markdown]
# ## Done?
#
# Run `manifold-course progress` to see your score. The reference implementations, to compare with once you pass,
# are in `manifold_course/nn/` (`approximation.py`, `equivariance.py`, `residual.py`, `convnext.py`).
