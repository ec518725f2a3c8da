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
# # Volume 1, Chapter 3 exercises: Normalisation, initialisation and loss landscapes (sections 1.8-1.10)
#
# Twelve functions: three normalisation layers (four functions, BatchNorm has two modes), two initialisers, a
# 50-layer signal profile, the Jacobian spectrum of a network, and the four tools of a loss-landscape study. Each
# exercise states its inputs, outputs and what the check verifies; write the body of the function where it says
# `# YOUR CODE HERE`, run the cell, then run the `check(...)` cell below it: it answers at once with a green "passed" or
# a red message that says what to fix. The checks draw fresh random cases each time, including edge cases (a batch of
# one row, one feature, tiny variances where $\epsilon$ matters, odd sizes, conv kernels, float64).
#
# The lecture is `chapters/v1_architecture/03_normalization_initialization_landscapes.ipynb`. Please write your own
# code rather than importing the course's reference implementations: the point is to build them yourself.
#
# Conventions: inputs are torch tensors; outputs keep the dtype of the inputs unless said otherwise; **never modify an
# input in place** (the checks notice).

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import numpy as np
import torch

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: RMSNorm (warm-up)
#
# `rms_norm(x, weight, eps) -> Tensor` with `x` of shape `(..., D)` and `weight` of shape `(D,)`:
#
# $$y = \frac{x}{\sqrt{\frac1D\sum_{j=1}^D x_j^2 + \epsilon}} \odot w ,$$
#
# over the **last** axis only (every row, or every token of a `(B, T, D)` batch, on its own).
#
# **Checked:** against `torch.nn.RMSNorm` to `rtol=1e-5` on `(5, 8)`, `(2, 3, 7)`, a batch of one row, `D = 1`, tiny
# inputs where $\epsilon$ dominates (so it must be *inside* the square root), large inputs, and float64 (`rtol=1e-10`).

# %%
def rms_norm(x, weight, eps=1e-6):
    ### BEGIN SOLUTION
    # Hint: x.pow(2).mean(dim=-1, keepdim=True) keeps a trailing axis of size 1 that broadcasts against x.
    mean_square = (x * x).mean(dim=-1, keepdim=True)                # (..., 1)
    return x / torch.sqrt(mean_square + eps) * weight
    ### END SOLUTION


# %%
check("normalization.rms_norm", rms_norm)

# %% [markdown]
# ## Exercise 2: LayerNorm
#
# `layer_norm(x, gamma, beta, eps) -> Tensor`, `x` of shape `(..., D)`, `gamma` and `beta` of shape `(D,)`:
#
# $$\mu = \frac1D\sum_j x_j,\qquad \sigma^2 = \frac1D\sum_j (x_j - \mu)^2,\qquad
# y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}\,\gamma + \beta ,$$
#
# per row over the last axis. Note the **biased** variance (divide by $D$), as `F.layer_norm` does.
#
# **Checked:** against `F.layer_norm` on several shapes, a batch of one row, `D = 3` (where the biased and unbiased
# variances differ by half), nearly constant rows (where $\epsilon$ matters) and float64.

# %%
def layer_norm(x, gamma, beta, eps=1e-5):
    ### BEGIN SOLUTION
    # Hint: torch.var divides by D - 1 unless you pass correction=0 (or unbiased=False).
    mu = x.mean(dim=-1, keepdim=True)
    centred = x - mu
    var = (centred * centred).mean(dim=-1, keepdim=True)            # biased variance
    return centred / torch.sqrt(var + eps) * gamma + beta
    ### END SOLUTION


# %%
check("normalization.layer_norm", layer_norm)

# %% [markdown]
# ## Exercise 3: BatchNorm in training mode
#
# `batch_norm_train(x, gamma, beta, running_mean, running_var, momentum, eps) -> (y, new_running_mean, new_running_var)`
# with `x` of shape `(B, D)`, `B >= 2`, and all other tensors of shape `(D,)`. Statistics are per feature, over the
# batch axis:
#
# $$\mu = \frac1B\sum_b x_b,\quad \sigma^2 = \frac1B\sum_b (x_b - \mu)^2,\quad y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}\,\gamma + \beta,$$
# $$\mu_{run}' = (1 - m)\,\mu_{run} + m\,\mu,\qquad \sigma^{2\,\prime}_{run} = (1 - m)\,\sigma^2_{run} + m\,\frac{B}{B - 1}\,\sigma^2 .$$
#
# The output uses the biased variance, the running variance the unbiased one: exactly what `nn.BatchNorm1d(D,
# momentum=m, eps=eps)` does in `train()` mode. Return **new** tensors; do not update `running_mean` / `running_var`
# in place (the module does, a pure function must not).
#
# **Checked:** against the reference on several `B, D` (including `B = 2`, where the $B/(B-1)$ factor doubles the
# variance, and `D = 1`), momenta 0.1, 0.3 and 1, float64, tiny features where $\epsilon$ matters; and against
# `torch.nn.BatchNorm1d` itself.

# %%
def batch_norm_train(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    ### BEGIN SOLUTION
    # Hint: dim=0 is the batch axis. For the running variance multiply the biased variance by B / (B - 1).
    B = x.shape[0]
    mu = x.mean(dim=0)                                              # (D,)
    var = ((x - mu) ** 2).mean(dim=0)                               # (D,), biased
    y = (x - mu) / torch.sqrt(var + eps) * gamma + beta
    new_mean = (1 - momentum) * running_mean + momentum * mu
    new_var = (1 - momentum) * running_var + momentum * var * (B / (B - 1))
    return y, new_mean, new_var
    ### END SOLUTION


# %%
check("normalization.batch_norm_train", batch_norm_train)

# %% [markdown]
# ## Exercise 4: BatchNorm in evaluation mode
#
# `batch_norm_eval(x, gamma, beta, running_mean, running_var, eps) -> Tensor (B, D)`:
#
# $$y = \frac{x - \mu_{run}}{\sqrt{\sigma^2_{run} + \epsilon}}\,\gamma + \beta .$$
#
# No batch statistics at all, so it works for any batch size, including 1.
#
# **Checked:** against the reference on `B = 6`, `B = 1`, `D = 1`, a running variance of `1e-6` (with `eps = 1e-5`:
# $\epsilon$ inside the square root) and float64.

# %%
def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps=1e-5):
    ### BEGIN SOLUTION
    # Hint: running_var is a variance: take the square root (of running_var + eps).
    return (x - running_mean) / torch.sqrt(running_var + eps) * gamma + beta
    ### END SOLUTION


# %%
check("normalization.batch_norm_eval", batch_norm_eval)

# %% [markdown]
# ## Exercise 5: Kaiming (He) normal initialisation
#
# `kaiming_normal(shape, seed) -> Tensor` of the given `shape` (a tuple, `(n_out, n_in)` for a Linear weight or
# `(C_out, C_in, k, ...)` for a conv kernel), dtype float32, with independent entries $\mathcal N(0, 2/n_{in})$.
# The fan-in is $n_{in} = $ `shape[1]` times the product of the kernel sizes `shape[2:]`. Draw with a
# `torch.Generator` seeded by `seed` so that the same seed gives the same tensor.
#
# **Checked** (by the law, not against one draw): shape and dtype; mean 0 and variance $2/n_{in}$ within a few
# standard errors (at most 5 % off on large shapes); Gaussian shape (excess kurtosis near 0); on `(512, 512)`,
# `(100, 700)`, `(700, 100)`, a conv kernel `(64, 3, 5, 5)` and `(257, 129)`; same seed, same tensor; new seed, new tensor.

# %%
def kaiming_normal(shape, seed):
    ### BEGIN SOLUTION
    # Hint: math.prod(shape[2:]) is 1 for a Linear weight; fan_out would be shape[0] times the same product.
    gen = torch.Generator().manual_seed(seed)
    fan_in = shape[1] * math.prod(shape[2:])
    return torch.randn(tuple(shape), generator=gen) * math.sqrt(2.0 / fan_in)
    ### END SOLUTION


# %%
check("normalization.kaiming_normal", kaiming_normal)

# %% [markdown]
# ## Exercise 6: Xavier (Glorot) uniform initialisation
#
# `xavier_uniform(shape, seed) -> Tensor` (float32): entries uniform on $[-a, a]$ with
# $a = \sqrt{6/(n_{in} + n_{out})}$, which gives the variance $a^2/3 = 2/(n_{in} + n_{out})$. Fans as in exercise 5
# ($n_{out}$ = `shape[0]` times the kernel sizes).
#
# **Checked:** every $|w| \le a$; mean 0; variance $a^2/3$; uniform shape (Kolmogorov-Smirnov distance); the same
# shapes and seed rules as exercise 5.

# %%
def xavier_uniform(shape, seed):
    ### BEGIN SOLUTION
    # Hint: torch.rand is uniform on [0, 1); map it to [-a, a] with (2u - 1) * a.
    gen = torch.Generator().manual_seed(seed)
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return (2 * torch.rand(tuple(shape), generator=gen) - 1) * a
    ### END SOLUTION


# %%
check("normalization.xavier_uniform", xavier_uniform)

# %% [markdown]
# ## Exercise 7: the signal through 50 layers
#
# `activation_std_profile(depth, width, init, act, seed) -> list[float]` of length `depth`:
#
# 1. `gen = torch.Generator().manual_seed(seed)`; inputs $h_0$: a `(256, width)` standard Gaussian batch;
# 2. for $l = 1..$ `depth`: draw $W_l$ `(width, width)` according to `init`, set $h_l = \phi(h_{l-1} W_l^\top)$ (no bias),
#    and record the standard deviation of all entries of $h_l$ as a Python float.
#
# `init` is one of `"kaiming"` ($\mathcal N(0, 2/n)$), `"xavier"` ($\mathcal N(0, 2/(n + n)) = \mathcal N(0, 1/n)$),
# `"pytorch"` (PyTorch's `nn.Linear` default, $U(\pm 1/\sqrt n)$) and `"standard"` ($\mathcal N(0, 1)$), with $n$ = `width`;
# `act` is `"relu"`, `"tanh"` or `"linear"` (the identity).
#
# **Checked** against the reference's profile with tolerances wider than the random fluctuations of a finite network:
# the first layer's std within 10 %, and the average factor per layer within $e^{\pm0.05}$, for ReLU with each
# initialisation (Kaiming keeps the signal, Xavier halves the second moment, PyTorch's default divides it by 6,
# $\mathcal N(0, 1)$ explodes: inf or NaN are accepted there), tanh with Xavier and with $\mathcal N(0, 1)$, linear
# with Kaiming, and depth 1.

# %%
def activation_std_profile(depth, width, init, act, seed):
    ### BEGIN SOLUTION
    # Hint: write the four weight laws as one small dict of functions of (width, gen), and the three activations too.
    gen = torch.Generator().manual_seed(seed)
    draw = {
        "kaiming": lambda: torch.randn(width, width, generator=gen) * math.sqrt(2.0 / width),
        "xavier": lambda: torch.randn(width, width, generator=gen) * math.sqrt(1.0 / width),
        "pytorch": lambda: (2 * torch.rand(width, width, generator=gen) - 1) / math.sqrt(width),
        "standard": lambda: torch.randn(width, width, generator=gen),
    }[init]
    phi = {"relu": torch.relu, "tanh": torch.tanh, "linear": lambda z: z}[act]
    h = torch.randn(256, width, generator=gen)
    stds = []
    for _ in range(depth):
        h = phi(h @ draw().T)
        stds.append(h.std().item())
    return stds
    ### END SOLUTION


# %%
check("normalization.activation_std_profile", activation_std_profile)

# %% [markdown]
# ## Exercise 8: singular values of the input-output Jacobian
#
# `jacobian_singular_values(model, x) -> Tensor` of shape `(min(d_out, d_in),)`, sorted from largest to smallest, with
# `model` an `nn.Module` mapping a batch `(B, d_in)` to `(B, d_out)` and `x` one input of shape `(d_in,)`. The Jacobian
# is $J_{ij} = \partial f_i(x)/\partial x_j$, a `(d_out, d_in)` matrix; call the model on a batch of one row (`x[None]`)
# so that models with LayerNorm or BatchNorm (in eval mode) work too.
#
# **Checked:** against the reference (float64 models, `rtol=1e-7`) on a deep tanh net, a `7 -> 12 -> 4` net (a
# non-square Jacobian), a deep linear net with orthogonal weights (all singular values 1), a residual `DeepMLP` with
# LayerNorm, and a ReLU net.

# %%
def jacobian_singular_values(model, x):
    ### BEGIN SOLUTION
    # Hint: torch.autograd.functional.jacobian(f, x) builds J row by row with backward passes;
    # Hint: torch.linalg.svdvals returns the singular values already sorted in decreasing order.
    def f(v):
        return model(v[None])[0]

    J = torch.autograd.functional.jacobian(f, x)                   # (d_out, d_in)
    return torch.linalg.svdvals(J)
    ### END SOLUTION


# %%
check("normalization.jacobian_singular_values", jacobian_singular_values)

# %% [markdown]
# ## Exercise 9: filter-normalised directions (Li et al. 2018)
#
# `filter_normalize(direction, params) -> list[Tensor]`: `direction` and `params` are lists of tensors with matching
# shapes (one per parameter of a model). Return a **new** list:
#
# - for a tensor with one dimension (a bias, a norm gain or shift): zeros;
# - otherwise every *filter* (every slice along dim 0: a row of a Linear weight, an output channel of a conv kernel)
#   is rescaled to the norm of the same filter of the parameters:
#   $d_j \leftarrow d_j\,\|\theta_j\| / (\|d_j\| + 10^{-10})$ (the $10^{-10}$ keeps a zero filter at zero).
#
# **Checked:** against the reference on the parameters of an MLP, with BatchNorm parameters, conv kernels
# `(C_out, C_in, k, k)`, a zero filter, and float64; the input lists must be left unchanged.

# %%
def filter_normalize(direction, params):
    ### BEGIN SOLUTION
    # Hint: d.reshape(d.shape[0], -1) turns any weight into (filters, rest); take norms over dim=1 with keepdim=True.
    out = []
    for d, p in zip(direction, params):
        if p.dim() == 1:
            out.append(torch.zeros_like(d))
            continue
        d2, p2 = d.reshape(d.shape[0], -1), p.reshape(p.shape[0], -1)
        ratio = p2.norm(dim=1, keepdim=True) / (d2.norm(dim=1, keepdim=True) + 1e-10)
        out.append((d2 * ratio).reshape(d.shape))
    return out
    ### END SOLUTION


# %%
check("normalization.filter_normalize", filter_normalize)

# %% [markdown]
# ## Exercise 10: a 2-D slice of the loss surface
#
# `loss_surface_2d(model, loss_fn, X, y, d1, d2, alphas, betas) -> Tensor` of shape `(len(alphas), len(betas))` and
# dtype **float64**, whose entry `[i, j]` is `loss_fn(model(X), y)` evaluated at the parameters
# $\theta^* + \alpha_i\,d_1 + \beta_j\,d_2$ (`d1`, `d2`: lists of tensors in the order of `model.parameters()`;
# `alphas`, `betas`: lists or numpy arrays of floats).
#
# Afterwards the model must hold **exactly** its original parameters, bit for bit: save copies first and copy them
# back at the end. (Adding the step and subtracting it again leaves round-off errors, and the check compares exactly.)
#
# **Checked:** against the reference to `rtol=1e-9` (float64 models) on a 5 x 5 grid whose centre is $L(\theta^*)$, a
# 3 x 4 grid (rows follow `alphas`), a 1 x 1 grid, and numpy grids with another loss and a LayerNorm model; the model's
# state must be unchanged.

# %%
def loss_surface_2d(model, loss_fn, X, y, d1, d2, alphas, betas):
    ### BEGIN SOLUTION
    # Hint: inside torch.no_grad(), p.copy_(theta + a * u + b * v) sets a parameter without tracking gradients.
    params = list(model.parameters())
    saved = [p.detach().clone() for p in params]
    grid = torch.zeros(len(alphas), len(betas), dtype=torch.float64)
    with torch.no_grad():
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                for p, t, u, v in zip(params, saved, d1, d2):
                    p.copy_(t + float(a) * u + float(b) * v)
                grid[i, j] = loss_fn(model(X), y).item()
        for p, t in zip(params, saved):
            p.copy_(t)
    return grid
    ### END SOLUTION


# %%
check("normalization.loss_surface_2d", loss_surface_2d)

# %% [markdown]
# ## Exercise 11: lesion study
#
# `lesion_accuracy(model, block_idx, X, y) -> float`: `model` is a `manifold_course.nn.mlp.DeepMLP`, which computes
# `h = model.stem(X)`, then `h = block(h)` for each `block` in `model.blocks`, then `logits = model.head(h)`. Return the
# accuracy (a Python float in $[0, 1]$: the share of rows whose arg-max logit equals `y`) of the network with block
# number `block_idx` (counting from 0) **deleted**: its input passes on unchanged to the next block. Do not modify the
# model.
#
# **Checked:** exact equality with the reference, on plain and residual tanh nets with and without BatchNorm, deleting
# the first, a middle and the last block; the labels are the intact model's own answers, so the intact accuracy is 1.

# %%
def lesion_accuracy(model, block_idx, X, y):
    ### BEGIN SOLUTION
    # Hint: deleting a block is simply not calling it; "zeroing its weights" is a different (and for plain nets, wrong) lesion.
    with torch.no_grad():
        h = model.stem(X)
        for i, block in enumerate(model.blocks):
            if i == block_idx:
                continue
            h = block(h)
        predictions = model.head(h).argmax(dim=1)
    return (predictions == y).float().mean().item()
    ### END SOLUTION


# %%
check("normalization.lesion_accuracy", lesion_accuracy)

# %% [markdown]
# ## Exercise 12: path lengths of an unrolled residual network
#
# `path_length_distribution(n) -> numpy.ndarray` of shape `(n + 1,)` and dtype float64: entry $k$ is the share of the
# $2^n$ paths of an unrolled $n$-block residual network that pass through exactly $k$ blocks,
#
# $$p_k = \binom nk\Big/2^n .$$
#
# **Checked:** relative tolerance $10^{-9}$ for $n = 0, 1, 3, 54$, a random $n$ and $n = 1100$: there `2.0 ** n` and
# `float(math.comb(n, k))` overflow (the largest float64 is about $1.8\cdot10^{308}$). Python divides two exact integers
# correctly even when they are huge; tail entries below the smallest float64 come out as 0. The probabilities must sum
# to 1.

# %%
def path_length_distribution(n):
    ### BEGIN SOLUTION
    # Hint: math.comb(n, k) / 2**n divides two Python ints (exact), unlike math.comb(n, k) / 2.0**n.
    total = 2**n
    return np.array([math.comb(n, k) / total for k in range(n + 1)], dtype=np.float64)
    ### END SOLUTION


# %%
check("normalization.path_length_distribution", path_length_distribution)

# %% [markdown]
# ## Done?
#
# Run `manifold-course progress` to see your score. The reference implementations, to compare with once you pass, are
# in `manifold_course/nn/norms.py`, `manifold_course/nn/init.py` and `manifold_course/optim/landscape.py`.
