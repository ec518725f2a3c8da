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
# # Volume 0, Chapter 1 exercises: High-dimensional geometry and the manifold hypothesis (sections 0.1-0.4)
#
# Ten functions, from a one-line formula to a small algorithm. Each exercise states its inputs, outputs and what the
# check verifies; write the body of the function where it says `# YOUR CODE HERE`, run the cell, then run the
# `check(...)` cell below it: it answers at once with a green "passed" or a red message that says what to fix.
# The checks draw fresh random cases each time, including edge cases (a single point, odd sizes, huge dimensions).
#
# The lecture is `chapters/v0_roots/01_high_dimensional_geometry.ipynb`. Please write your own code rather than
# importing the course's reference implementations: the point is to build them yourself.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math

import numpy as np
import torch

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: the ball in the cube (warm-up)
#
# `ball_cube_volume_ratio(d: int) -> float` returns the share of the unit cube $[-\tfrac12, \tfrac12]^d$ filled by
# its inscribed ball of radius $\tfrac12$:
#
# $$\rho_d = \frac{\pi^{d/2}}{2^d\,\Gamma(d/2 + 1)} .$$
#
# **Checked:** $\rho_1 = 1$, $\rho_2 = \pi/4$, $\rho_3 = \pi/6$, random $d$ up to 60, $\rho_{30} \approx 2\cdot10^{-14}$,
# $d = 300$ (about $3\cdot10^{-279}$: tiny but not zero) and $d = 1000$, to a relative tolerance of $10^{-9}$; the
# value must decrease strictly with $d$. Return a Python float.

# %%
def ball_cube_volume_ratio(d):
    # YOUR CODE HERE
    # Hint: 2**d * math.gamma(d/2 + 1) overflows long before d = 1000; compute log(rho_d) with math.lgamma, then exp.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.ball_cube_volume_ratio", ball_cube_volume_ratio)

# %% [markdown]
# ## Exercise 2: Gaussian norms concentrate
#
# `gaussian_norm_stats(n: int, d: int, seed: int) -> (float, float)` draws `n` vectors $x \sim \mathcal N(0, I_d)$
# with a generator seeded by `seed`, and returns the sample mean and the sample standard deviation of their
# Euclidean norms $\|x\|$.
#
# **Checked:** two Python floats; the mean within 5 standard errors of the exact $\mathbb E\|x\| \approx \sqrt{d - 1/2}$,
# the standard deviation within 6 standard errors of the exact value ($\to 1/\sqrt2$), for $d = 1, 2, 20, \dots, 200$
# and $n$ up to 20 000; the same seed gives the same answer, different seeds different answers.

# %%
def gaussian_norm_stats(n, d, seed):
    # YOUR CODE HERE
    # Hint: torch.Generator().manual_seed(seed) (or np.random.default_rng(seed)); the norm of each row is x.norm(dim=1).
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.gaussian_norm_stats", gaussian_norm_stats)

# %% [markdown]
# ## Exercise 3: uniform points in a ball
#
# `sample_uniform_ball(n: int, d: int, seed: int) -> torch.Tensor` of shape `(n, d)` (floating point): `n` points
# drawn uniformly from the unit ball $\{x : \|x\| \le 1\}$ of $\mathbb R^d$. Rejection from the cube is hopeless in
# high dimension (exercise 1 says how hopeless). Instead combine a uniform *direction* with a *radius* of the right law.
#
# **Checked:** type and shape; every norm $\le 1$; for $n = 4000$, $\|x\|^d$ is uniform on $[0, 1]$ (Kolmogorov-Smirnov
# distance below $2/\sqrt n$) and the mean point is 0 (directions not biased); $d = 1, 2$, up to 60, and $n = 1$;
# the same seed gives the same points.

# %%
def sample_uniform_ball(n, d, seed):
    # YOUR CODE HERE
    # Hint: a standard Gaussian vector divided by its norm is uniform on the sphere (rotation invariance).
    # Hint: for a uniform point P(||x|| <= r) = r**d, so the radius is U ** (1/d) with U uniform on [0, 1].
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.sample_uniform_ball", sample_uniform_ball)

# %% [markdown]
# ## Exercise 4: row-wise cosine similarity
#
# `rowwise_cosine(A: Tensor (n, d), B: Tensor (n, d)) -> Tensor (n,)` with entry $i$ equal to
# $\cos\theta_i = a_i^\top b_i / (\|a_i\|\,\|b_i\|)$, for matching rows (not all pairs). The output keeps the input
# dtype; rows are non-zero.
#
# **Checked:** against the reference to `rtol=1e-5`, on float32 and float64, $n = 1$, $d = 1$, rows of very different
# sizes, $B = -2.5A$ (all cosines $-1$); invariance to positive rescaling of rows; values in $[-1, 1]$; inputs
# unchanged.

# %%
def rowwise_cosine(A, B):
    # YOUR CODE HERE
    # Hint: (A * B).sum(dim=-1) gives the n dot products; divide by the product of the two row norms.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.rowwise_cosine", rowwise_cosine)

# %% [markdown]
# ## Exercise 5: how often are random vectors nearly orthogonal?
#
# `frac_near_orthogonal(d: int, n_pairs: int, tol: float, seed: int) -> float`: draw `n_pairs` independent pairs
# $(x, y)$ of standard Gaussian vectors in $\mathbb R^d$ (seeded by `seed`) and return the fraction of pairs with
# $|\cos\theta| < \mathrm{tol}$.
#
# **Checked:** a Python float within 5 standard errors of the exact probability from the Beta law
# $(\cos\theta + 1)/2 \sim \mathrm{Beta}(\frac{d-1}2, \frac{d-1}2)$; cases $d = 3$ (exactly 0.1 for tol = 0.1),
# $d = 2$, moderate $d$ and $d = 500$.

# %%
def frac_near_orthogonal(d, n_pairs, tol, seed):
    # YOUR CODE HERE
    # Hint: reuse your rowwise_cosine idea on two (n_pairs, d) Gaussian matrices; count |cos| < tol, divide by n_pairs.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.frac_near_orthogonal", frac_near_orthogonal)

# %% [markdown]
# ## Exercise 6: TwoNN intrinsic dimension
#
# `twonn_id(X, discard_fraction=0.1) -> float`, with `X` an `(N, D)` numpy array or torch tensor (Facco et al. 2017,
# arXiv:1803.06992):
#
# 1. for each point, $r_1$ and $r_2$ are the distances to its first and second nearest **other** points;
#    $\mu = r_2 / r_1$;
# 2. sort the $\mu$'s; the $i$-th smallest ($i = 1, \dots, N$) gets $F_i = i/N$;
# 3. keep the $m = \lfloor N(1 - \text{discard\_fraction})\rfloor$ smallest;
# 4. with $x_i = \log\mu_i$ and $y_i = -\log(1 - F_i)$, return the slope of the least-squares line through the
#    origin, $\sum_i x_i y_i / \sum_i x_i^2$.
#
# **Checked:** a Python float within 6 % of the reference on 700 points of 2- and 5-dimensional subspaces of
# $\mathbb R^{50}$, a swiss roll, a float32 torch tensor, and `discard_fraction=0.2`; unchanged (to 1e-6) when the data
# are rotated, scaled and shifted.

# %%
def twonn_id(X, discard_fraction=0.1):
    # YOUR CODE HERE
    # Hint: torch.cdist(X, X) gives all distances; put inf on the diagonal so a point is not its own neighbour,
    # Hint: then torch.topk(D, 2, largest=False) gives r1 and r2 for every point.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.twonn_id", twonn_id)

# %% [markdown]
# ## Exercise 7: PCA dimension
#
# `pca_dim(X, frac) -> int`, with `X` an `(N, D)` numpy array or torch tensor and `0 < frac < 1`: the smallest $k$
# such that the top $k$ principal components explain at least a share `frac` of the variance. Centre the data
# first; the variances along the principal axes are the squared singular values of the centred data (up to a
# common factor).
#
# **Checked:** exact equality with the reference on anisotropic Gaussians with a large offset, a swiss roll (3
# components for 95 %), a torch tensor, and a single feature. Return a Python `int`.

# %%
def pca_dim(X, frac):
    # YOUR CODE HERE
    # Hint: np.linalg.svd(Xc, compute_uv=False) gives the singular values; np.cumsum of their normalised squares.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.pca_dim", pca_dim)

# %% [markdown]
# ## Exercise 8: Cover's function counting
#
# `cover_separable_probability(N: int, d: int) -> float`: the share of the $2^N$ labelings of $N$ points in general
# position in $\mathbb R^d$ that a hyperplane through the origin separates,
#
# $$P_{\mathrm{sep}}(N, d) = \frac{2\sum_{k=0}^{d-1}\binom{N-1}{k}}{2^N} .$$
#
# **Checked:** relative tolerance $10^{-9}$; $N = 1$; $N \le d$ (1.0); $N = 2d$ (exactly 0.5); random cases; and
# $N = 1500$ (no overflow); non-increasing in $N$.

# %%
def cover_separable_probability(N, d):
    # YOUR CODE HERE
    # Hint: math.comb gives exact integers; Python divides two huge ints correctly, but 2.0 ** 1500 overflows.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.cover_separable_probability", cover_separable_probability)

# %% [markdown]
# ## Exercise 9: the paraboloid lift
#
# `lift_paraboloid(X: Tensor (n, D)) -> Tensor (n, D + 1)`: append the squared norm of each row,
# $\varphi(x) = (x, \|x\|^2)$. Keep the dtype; do not modify `X`.
#
# **Checked:** against the reference on `make_circles`, float64, a single point and $D = 5$; after your lift, a
# logistic regression separates `make_circles(noise=0.05)` with accuracy $\ge 0.99$.

# %%
def lift_paraboloid(X):
    # YOUR CODE HERE
    # Hint: torch.cat([X, ...], dim=1) with a column of shape (n, 1): keepdim=True.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.lift_paraboloid", lift_paraboloid)

# %% [markdown]
# ## Exercise 10: $H_0$ persistence by minimum spanning tree
#
# `h0_persistence(X: ndarray (N, D)) -> ndarray (N - 1,)`, float64: the finite death times of the $H_0$ bars of the
# Vietoris-Rips filtration, sorted increasingly. They are the lengths of the $N - 1$ edges of the Euclidean minimum
# spanning tree (Kruskal: scan the edges by increasing length, keep an edge when it joins two different components;
# a union-find structure tracks the components). Leave out the bar that never dies. One point gives an empty array.
#
# **Checked:** equality with the reference to `rtol=1e-9` (the lecture compares the same numbers with `ripser`) on
# 37 points in the plane, 2 points, 1 point, two far-apart clusters, and 90 points in $\mathbb R^5$.

# %%
def h0_persistence(X):
    # YOUR CODE HERE
    # Hint: the distance to each point's nearest neighbour is NOT enough: the tree also needs the edges between clusters.
    # Hint: Prim's algorithm works too: grow one tree, always adding the closest outside point.
    raise NotImplementedError("Exercise: replace this line with your code")


# %%
check("high_dim_geometry.h0_persistence", h0_persistence)

# %% [markdown]
# ## Done?
#
# Run `manifold-course progress` to see your score. The reference implementations, to compare with once you
# pass, are in `manifold_course/geometry/` (`volumes.py`, `concentration.py`, `intrinsic_dimension.py`,
# `separability.py`, `topology.py`).
