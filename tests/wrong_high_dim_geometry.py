"""Plausible wrong answers to the exercises of v0_roots/01_high_dimensional_geometry; each check must reject them."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial.distance import pdist, squareform

# ---------------------------------------------------------------- ball_cube_volume_ratio


def ratio_direct_formula(d):
    # overflows: math.gamma(151) * 2**300 is inf (and math.gamma raises beyond d = 340)
    return math.pi ** (d / 2) / (2**d * math.gamma(d / 2 + 1))


def ratio_unit_radius(d):
    # the unit ball, not the inscribed ball of radius 1/2
    return math.exp(0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1))


def ratio_gamma_off_by_one(d):
    # Gamma(d/2) instead of Gamma(d/2 + 1)
    return math.exp(0.5 * d * math.log(math.pi) - d * math.log(2) - math.lgamma(0.5 * d))


# ---------------------------------------------------------------- gaussian_norm_stats


def norm_stats_squared(n, d, seed):
    # forgot the square root: statistics of ||x||^2
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    r2 = (x * x).sum(dim=1)
    return float(r2.mean()), float(r2.std())


def norm_stats_uniform(n, d, seed):
    # torch.rand (uniform on [0, 1]) instead of torch.randn
    x = torch.rand(n, d, generator=torch.Generator().manual_seed(seed))
    r = x.norm(dim=1)
    return float(r.mean()), float(r.std())


def norm_stats_coordinate_std(n, d, seed):
    # the std of all coordinates (about 1) instead of the std of the norms (about 1/sqrt 2)
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return float(x.norm(dim=1).mean()), float(x.std())


def norm_stats_tensor(n, d, seed):
    # returns tensors instead of Python floats
    r = torch.randn(n, d, generator=torch.Generator().manual_seed(seed)).norm(dim=1)
    return r.mean(), r.std()


def norm_stats_unseeded(n, d, seed):
    # ignores the seed
    r = torch.randn(n, d).norm(dim=1)
    return float(r.mean()), float(r.std())


# ---------------------------------------------------------------- sample_uniform_ball


def ball_on_sphere(n, d, seed):
    # all points on the surface: forgot the radius
    g = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return g / g.norm(dim=1, keepdim=True)


def ball_linear_radius(n, d, seed):
    # radius U instead of U**(1/d): too many points near the centre
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n, d, generator=gen)
    return g / g.norm(dim=1, keepdim=True) * torch.rand(n, 1, generator=gen)


def ball_scaled_gaussian(n, d, seed):
    # Gaussian scaled by 1/sqrt(d): norms near 1 but some points outside the ball
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) / math.sqrt(d)


def ball_positive_orthant(n, d, seed):
    # |Gaussian| directions: only the positive orthant
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n, d, generator=gen).abs()
    return g / g.norm(dim=1, keepdim=True) * torch.rand(n, 1, generator=gen) ** (1.0 / d)


def ball_numpy(n, d, seed):
    # numpy instead of torch
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True) * rng.uniform(size=(n, 1)) ** (1.0 / d)


# ---------------------------------------------------------------- rowwise_cosine


def cosine_one_norm(A, B):
    # divides by the norm of A only
    return (A * B).sum(dim=-1) / A.norm(dim=-1)


def cosine_matrix(A, B):
    # all pairs (n, n) instead of matching rows (n,)
    return (A / A.norm(dim=1, keepdim=True)) @ (B / B.norm(dim=1, keepdim=True)).T


def cosine_columns(A, B):
    # normalises along the wrong axis
    return ((A / A.norm(dim=0, keepdim=True)) * (B / B.norm(dim=0, keepdim=True))).sum(dim=-1)


def cosine_numpy(A, B):
    # returns a numpy array
    a, b = A.numpy(), B.numpy()
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def cosine_float64(A, B):
    # silently upcasts float32 inputs
    A, B = A.double(), B.double()
    return (A * B).sum(dim=-1) / (A.norm(dim=-1) * B.norm(dim=-1))


# ---------------------------------------------------------------- frac_near_orthogonal


def _cosines(d, n_pairs, seed):
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n_pairs, d, generator=gen), torch.randn(n_pairs, d, generator=gen)
    return (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1))


def near_orth_no_abs(d, n_pairs, tol, seed):
    # cos < tol instead of |cos| < tol
    return float((_cosines(d, n_pairs, seed) < tol).double().mean())


def near_orth_dot(d, n_pairs, tol, seed):
    # raw dot products, not cosines
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n_pairs, d, generator=gen), torch.randn(n_pairs, d, generator=gen)
    return float(((x * y).sum(1).abs() < tol).double().mean())


def near_orth_count(d, n_pairs, tol, seed):
    # a count, not a fraction
    return float((_cosines(d, n_pairs, seed).abs() < tol).sum())


# ---------------------------------------------------------------- twonn_id


def _two_nn(X):
    X = torch.as_tensor(np.asarray(X, dtype=np.float64)) if not isinstance(X, torch.Tensor) else X.double()
    D = torch.cdist(X, X)
    return D


def _fit(mu, discard_fraction):
    mu = np.sort(mu)
    n = len(mu)
    F = np.arange(1, n + 1) / n
    m = min(int(n * (1 - discard_fraction)), n - 1)
    x, y = np.log(mu[:m]), -np.log(1 - F[:m])
    return float(x @ y / (x @ x))


def twonn_squared_distances(X, discard_fraction=0.1):
    # ratio of squared distances: the estimate is halved
    D = _two_nn(X)
    D.fill_diagonal_(float("inf"))
    two = torch.topk(D, 2, largest=False).values.numpy()
    return _fit((two[:, 1] / two[:, 0]) ** 2, discard_fraction)


def twonn_includes_self(X, discard_fraction=0.1):
    # forgot that each point is its own nearest neighbour: r1 = 0
    D = _two_nn(X)
    two = torch.topk(D, 2, largest=False).values.numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return _fit(two[:, 1] / two[:, 0], discard_fraction)


def twonn_inverted_ratio(X, discard_fraction=0.1):
    # mu = r1 / r2 (< 1): a negative dimension
    D = _two_nn(X)
    D.fill_diagonal_(float("inf"))
    two = torch.topk(D, 2, largest=False).values.numpy()
    return _fit(two[:, 0] / two[:, 1], discard_fraction)


def twonn_second_and_third(X, discard_fraction=0.1):
    # off by one: uses the 2nd and 3rd nearest neighbours
    D = _two_nn(X)
    D.fill_diagonal_(float("inf"))
    three = torch.topk(D, 3, largest=False).values.numpy()
    return _fit(three[:, 2] / three[:, 1], discard_fraction)


# ---------------------------------------------------------------- pca_dim


def _as_np(X):
    return X.numpy() if isinstance(X, torch.Tensor) else np.asarray(X)


def pca_not_centred(X, frac):
    # forgot to subtract the mean: the offset looks like a huge first component
    s = np.linalg.svd(_as_np(X), compute_uv=False) ** 2
    return int(np.searchsorted(np.cumsum(s / s.sum()), frac) + 1)


def pca_off_by_one(X, frac):
    # returns the index of the component, not the count
    Xc = _as_np(X) - _as_np(X).mean(0)
    s = np.linalg.svd(Xc, compute_uv=False) ** 2
    return int(np.searchsorted(np.cumsum(s / s.sum()), frac))


def pca_singular_values(X, frac):
    # uses singular values instead of their squares (variances)
    Xc = _as_np(X) - _as_np(X).mean(0)
    s = np.linalg.svd(Xc, compute_uv=False)
    return int(np.searchsorted(np.cumsum(s / s.sum()), frac) + 1)


# ---------------------------------------------------------------- cover_separable_probability


def cover_float_power(N, d):
    # 2.0 ** N overflows for N > 1023
    return 2 * sum(math.comb(N - 1, k) for k in range(d)) / 2.0**N


def cover_sum_to_d(N, d):
    # off by one in the sum: k = 0..d
    return min(1.0, 2 * sum(math.comb(N - 1, k) for k in range(d + 1)) / 2**N)


def cover_comb_N(N, d):
    # binom(N, k) instead of binom(N - 1, k)
    return min(1.0, 2 * sum(math.comb(N, k) for k in range(d)) / 2**N)


# ---------------------------------------------------------------- lift_paraboloid


def lift_norm_not_squared(X):
    # the norm, not the squared norm
    return torch.cat([X, X.norm(dim=1, keepdim=True)], dim=1)


def lift_only_height(X):
    # drops the original coordinates
    return (X * X).sum(dim=1, keepdim=True)


def lift_in_place(X):
    # overwrites the input
    X[:, 0] = X[:, 0]
    X.mul_(1.0)
    X[0, 0] += 1e-3
    return torch.cat([X, (X * X).sum(dim=1, keepdim=True)], dim=1)


def lift_numpy(X):
    # numpy instead of torch
    x = X.numpy()
    return np.hstack([x, (x**2).sum(1, keepdims=True)])


# ---------------------------------------------------------------- h0_persistence


def h0_nearest_neighbour(X):
    # nearest-neighbour distances are not the MST edges
    D = squareform(pdist(np.asarray(X, dtype=np.float64)))
    np.fill_diagonal(D, np.inf)
    return np.sort(D.min(axis=1))[: len(X) - 1] if len(X) > 1 else np.zeros(0)


def h0_with_infinite_bar(X):
    # keeps the component that never dies
    from scipy.sparse.csgraph import minimum_spanning_tree

    D = squareform(pdist(np.asarray(X, dtype=np.float64)))
    edges = np.sort(minimum_spanning_tree(D).data)
    return np.append(edges, np.inf)


def h0_unsorted(X):
    # MST edges in the order Prim's algorithm finds them
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n < 2:
        return np.zeros(0)
    D = squareform(pdist(X))
    in_tree = np.zeros(n, bool)
    in_tree[0] = True
    best = D[0].copy()
    out = []
    for _ in range(n - 1):
        best[in_tree] = np.inf
        j = int(np.argmin(best))
        out.append(best[j])
        in_tree[j] = True
        best = np.minimum(best, D[j])
    return np.array(out)


def h0_squared(X):
    # squared edge lengths
    from scipy.sparse.csgraph import minimum_spanning_tree

    X = np.asarray(X, dtype=np.float64)
    if len(X) < 2:
        return np.zeros(0)
    D2 = squareform(pdist(X, "sqeuclidean"))
    return np.sort(minimum_spanning_tree(D2).data)


WRONG = {
    "high_dim_geometry.ball_cube_volume_ratio": [ratio_direct_formula, ratio_unit_radius, ratio_gamma_off_by_one],
    "high_dim_geometry.gaussian_norm_stats": [norm_stats_squared, norm_stats_uniform, norm_stats_coordinate_std,
                                              norm_stats_tensor, norm_stats_unseeded],
    "high_dim_geometry.sample_uniform_ball": [ball_on_sphere, ball_linear_radius, ball_scaled_gaussian,
                                              ball_positive_orthant, ball_numpy],
    "high_dim_geometry.rowwise_cosine": [cosine_one_norm, cosine_matrix, cosine_columns, cosine_numpy, cosine_float64],
    "high_dim_geometry.frac_near_orthogonal": [near_orth_no_abs, near_orth_dot, near_orth_count],
    "high_dim_geometry.twonn_id": [twonn_squared_distances, twonn_includes_self, twonn_inverted_ratio,
                                   twonn_second_and_third],
    "high_dim_geometry.pca_dim": [pca_not_centred, pca_off_by_one, pca_singular_values],
    "high_dim_geometry.cover_separable_probability": [cover_float_power, cover_sum_to_d, cover_comb_N],
    "high_dim_geometry.lift_paraboloid": [lift_norm_not_squared, lift_only_height, lift_in_place, lift_numpy],
    "high_dim_geometry.h0_persistence": [h0_nearest_neighbour, h0_with_infinite_bar, h0_unsorted, h0_squared],
}
