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
# # Capstone, Chapter 2 exercises: every model through the lens
#
# Six pieces of the manifold lens: the coverage and isotropy columns (Part 2 C2 and seed 002's Gram-matrix view), the
# Bhattacharyya distance and intensive PCA of prediction-space trajectories (T1), the hunchback test of an
# intrinsic-dimension profile (D1), and the forward-hook capture that everything else is built on. Write each body
# where it says `# YOUR CODE HERE`, run the cell, then the `check(...)` cell below it: it answers at once with a green
# "passed" or a red message that says what to fix. The checks draw fresh cases each time.
#
# The lecture is `chapters/v7_capstone/02_every_model_through_the_lens.ipynb`. Please write your own code rather than
# importing the course's reference implementations (`manifold_course.lens`, `manifold_course.capstone.zoo`).
#
# The capstone's issue asks for eight exercises over the two chapters; chapter 1 of the capstone holds the Lipschitz estimator, the
# grokking detector, the Fourier key frequencies and `capstone_report`, this one the lens's own pieces.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import numpy as np
import torch

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: coverage
#
# `coverage(A, threshold=0.0) -> dict` for activations `A`, a torch tensor `(N, D)` (N inputs, D units), returns
# three Python floats:
#
# - `"dead_fraction"`: the share of units whose activation is `> threshold` on **no** input (a unit that is always
#   negative is dead too);
# - `"coverage"`: `1 - dead_fraction`;
# - `"entropy"`: with $\bar a_j$ = the mean over inputs of $|a_{nj}|$ and $p_j = \bar a_j / \sum_k \bar a_k$, the
#   normalised entropy $-\sum_j p_j \log p_j / \log D$ (terms with $p_j = 0$ contribute 0). It is 1 when every unit
#   carries the same mean activity; define it as 0 when $D = 1$ or when every activation is 0.
#
# Compute in float64. **Checked** exactly (to 1e-9) on ReLU and signed activations, a threshold, all-equal units, a
# single active unit, an all-zero layer, a batch of one and a single unit.

# %%
def coverage(A, threshold=0.0):
    ### BEGIN SOLUTION
    A = torch.as_tensor(A).double()
    D = A.shape[1]
    dead = 1.0 - float((A > threshold).any(dim=0).double().mean())
    m = A.abs().mean(dim=0)
    total = float(m.sum())
    if D < 2 or total <= 0:
        ent = 0.0
    else:
        p = m / total
        p = p[p > 0]
        ent = float(-(p * p.log()).sum() / math.log(D))
    return {"dead_fraction": dead, "coverage": 1.0 - dead, "entropy": ent}
    ### END SOLUTION


# %%
check("lens.coverage", coverage)

# %% [markdown]
# ## Exercise 2: isotropy
#
# `isotropy(X) -> dict` for a point cloud `X` `(N, D)` (torch), returns two Python floats:
#
# - `"mean_abs_cos"`: centre the rows ($x_n - \bar x$), leave out rows whose centred norm is 0, and average $|\cos|$
#   over all ordered pairs of *different* remaining rows (0 for mutually orthogonal rows, 1 when all lie on one line);
# - `"top_pc_fraction"`: the largest eigenvalue of the covariance of the centred rows divided by its trace (the first
#   principal component's share of the variance; $1/D$ for an isotropic cloud).
#
# **Checked** to 1e-8 on Gaussian clouds (isotropic, shifted far from the origin, anisotropic), points near one line,
# a set whose mean is one of its rows, two rows, and fewer rows than columns. The classic mistake, forgetting to
# centre, is caught by the shifted cloud.

# %%
def isotropy(X):
    ### BEGIN SOLUTION
    X = torch.as_tensor(X).double()
    Xc = X - X.mean(dim=0, keepdim=True)
    norms = Xc.norm(dim=1)
    keep = norms > 1e-12 * float(norms.max())
    U = Xc[keep] / norms[keep, None]
    C = (U @ U.T).abs()
    n = len(U)
    mean_abs_cos = float((C.sum() - C.trace()) / (n * (n - 1)))
    s = torch.linalg.svdvals(Xc)
    return {"mean_abs_cos": mean_abs_cos, "top_pc_fraction": float(s[0] ** 2 / (s**2).sum())}
    ### END SOLUTION


# %%
check("lens.isotropy", isotropy)

# %% [markdown]
# ## Exercise 3: the Bhattacharyya distance between two sets of predictions
#
# `bhattacharyya(P, Q) -> float` for probabilities `P`, `Q` of shape `(N, C)` (rows sum to 1):
# $d_B = \frac1N\sum_n -\log \max\big(\sum_c\sqrt{p_{nc}q_{nc}},\ 10^{-12}\big)$. The floor keeps disjoint predictions
# finite. **Checked** to 1e-9 on equal, random, peaked, disjoint one-hot and single-sample predictions.

# %%
def bhattacharyya(P, Q):
    ### BEGIN SOLUTION
    P = np.asarray(P, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    bc = np.sqrt(P * Q).sum(axis=1)
    return float(np.mean(-np.log(np.maximum(bc, 1e-12))))
    ### END SOLUTION


# %%
check("lens.bhattacharyya", bhattacharyya)

# %% [markdown]
# ## Exercise 4: intensive PCA
#
# `inpca(D) -> (eigenvalues, coords)` for a symmetric `(K, K)` numpy distance matrix `D` (e.g. pairwise Bhattacharyya
# distances of K checkpoints): double-centre $W = -\frac12 JDJ$ with $J = I - \frac1K\mathbf 1\mathbf 1^\top$,
# eigen-decompose the symmetric $W$, and sort the eigenvalues by **decreasing absolute value**, keeping their signs
# (InPCA's space is Minkowski-like: some are negative). Return the sorted eigenvalues `(K,)` and the coordinates
# `(K, K)`: column i is eigenvector i times $\sqrt{|\lambda_i|}$. **Checked**: eigenvalues to 1e-7; coordinates
# column by column, up to each column's sign (an eigenvector's sign is arbitrary), on Bhattacharyya matrices, squared
# Euclidean distances (classical MDS), a random dissimilarity and two points.

# %%
def inpca(D):
    ### BEGIN SOLUTION
    D = np.asarray(D, dtype=np.float64)
    K = len(D)
    J = np.eye(K) - np.full((K, K), 1.0 / K)
    W = -0.5 * J @ D @ J
    lam, V = np.linalg.eigh((W + W.T) / 2)
    order = np.argsort(-np.abs(lam), kind="stable")
    lam, V = lam[order], V[:, order]
    return lam, V * np.sqrt(np.abs(lam))[None, :]
    ### END SOLUTION


# %%
check("lens.inpca", inpca)

# %% [markdown]
# ## Exercise 5: is an intrinsic-dimension profile a hunchback?
#
# `hunchback(ids, rel=0.1) -> bool` for a profile (a list or array, one dimension per layer, input first): `True`
# exactly when the profile has at least 3 values, all finite, and its peak beats **both** ends by the factor
# $1 + \mathrm{rel}$: $\max_\ell d_\ell \ge (1 + \mathrm{rel})\max(d_0, d_{L-1})$. The peak is then at an interior
# layer: the profile first rises, then falls (Ansuini et al. 2019). **Checked** on rising, falling and humped profiles,
# a bump of exactly 10 % (`>=` counts), a NaN, two layers, and random profiles with rel in {0, 0.1, 0.3}.

# %%
def hunchback(ids, rel=0.1):
    ### BEGIN SOLUTION
    d = np.asarray(ids, dtype=np.float64).ravel()
    if d.size < 3 or not np.isfinite(d).all():
        return False
    return bool(d.max() >= (1.0 + rel) * max(d[0], d[-1]))
    ### END SOLUTION


# %%
check("lens.hunchback", hunchback)

# %% [markdown]
# ## Exercise 6: capture layer outputs, and leave the model as you found it
#
# `capture(model, inputs, layers) -> dict` runs `model(inputs)` once and returns `{name: (N, D) float32 tensor}` for
# each name in `layers`, in that order. A name is one of `model.named_modules()`'s, or `"input"` for the inputs
# themselves. Record each module's output with `module.register_forward_hook`; a module that returns a tuple (as the
# course's GPT blocks do) contributes its first element. Reshape: `(B, D)` stays, `(B, T, D)` becomes `(B*T, D)`,
# `(B, C, H, W)` becomes `(B, C*H*W)`.
#
# And the model must come out unchanged: run it in **eval mode** under `torch.no_grad()` (dropout off, BatchNorm's
# running statistics not updated), then restore its training flag and **remove every hook** (keep the handles;
# `handle.remove()` in a `finally:` block). **Checked** through the model: an MLP with BatchNorm and Dropout in
# training and in eval mode, a CNN, a sequence model whose blocks return tuples; the judge compares the clouds and
# inspects the model afterwards (hooks left, training flag, parameters and buffers).

# %%
def capture(model, inputs, layers):
    ### BEGIN SOLUTION
    modules = dict(model.named_modules())
    seen, handles = {}, []

    def recorder(name):
        def hook(_module, _args, out):
            while isinstance(out, (tuple, list)):
                out = out[0]
            seen[name] = out.detach()
        return hook

    was_training = model.training
    try:
        for name in layers:
            if name != "input":
                handles.append(modules[name].register_forward_hook(recorder(name)))
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    seen["input"] = inputs
    out = {}
    for name in layers:
        t = seen[name].detach().float()
        out[name] = t.reshape(-1, t.shape[-1]) if t.ndim == 3 else t.reshape(t.shape[0], -1)
    return out
    ### END SOLUTION


# %%
check("lens.capture", capture)
