r"""How many numbers does it take to describe a data set? Intrinsic dimension, two ways.

TwoNN (E. Facco, M. d'Errico, A. Rodriguez, A. Laio, "Estimating the intrinsic dimension of datasets by a
minimal neighborhood information", Scientific Reports 7, 2017, arXiv:1803.06992). For each point let $r_1 < r_2$ be the
distances to its first and second nearest neighbours and $\mu = r_2 / r_1 \ge 1$. If the density is roughly constant
over the scale of the two neighbours and the data lie on a $k$-dimensional manifold, $\mu$ is Pareto distributed:

$$F(\mu) = 1 - \mu^{-k} \quad\Longleftrightarrow\quad -\log(1 - F(\mu)) = k \log \mu .$$

Sort the $\mu$'s, give the $i$-th smallest the empirical CDF value $F_i = i/N$ ($i = 1..N$), drop the largest
``discard_fraction`` of them (the tail is noisy, and $F_N = 1$ would give $\log 0$), and fit a line through the origin:
$\hat k = \sum_i x_i y_i / \sum_i x_i^2$ with $x_i = \log\mu_i$, $y_i = -\log(1 - F_i)$.

PCA. Centre the data, take the eigenvalues $\lambda_1 \ge \lambda_2 \ge \dots$ of the covariance (the squared singular
values of the centred data over $N-1$). ``pca_dim(X, frac)`` is the smallest $k$ whose top-$k$ eigenvalues explain a
share ``frac`` of the variance. PCA sees only *linear* dimension: a curved 2-D sheet in R^3 needs 3 components.

Participation ratio $PR = (\sum_i\lambda_i)^2 / \sum_i\lambda_i^2$ (between 1 and the rank) and effective rank
$\exp H(\lambda / \sum\lambda)$ (O. Roy, M. Vetterli, "The effective rank", EUSIPCO 2007) are soft PCA counts.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree


def _as_numpy(X) -> np.ndarray:
    """Points as a float64 numpy array (N, D); accepts numpy arrays and torch tensors (on any device)."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().double().numpy()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected points as a 2-D array (N, D), got shape {X.shape}")
    return X


def two_nearest_distances(X) -> tuple[np.ndarray, np.ndarray]:
    """Distances (r1, r2) of every point to its first and second nearest *other* point: two arrays (N,)."""
    X = _as_numpy(X)
    if X.shape[1] <= 16:
        dist, _ = cKDTree(X).query(X, k=3)                 # (N, 3): itself, 1st, 2nd neighbour
        return dist[:, 1], dist[:, 2]
    # A k-d tree is slow in high dimension; a dense distance matrix is fast for a few thousand points.
    Xt = torch.from_numpy(X)
    D = torch.cdist(Xt, Xt)                                # (N, N)
    D.fill_diagonal_(float("inf"))                         # a point is not its own neighbour
    two = torch.topk(D, 2, dim=1, largest=False).values    # (N, 2), ascending
    return two[:, 0].numpy(), two[:, 1].numpy()


def twonn_id(X, discard_fraction: float = 0.1) -> float:
    r"""TwoNN intrinsic dimension of the points X (N, D), numpy or torch (Facco et al. 2017, arXiv:1803.06992).

    Points with a duplicate ($r_1 = 0$) are dropped. Invariant to rotations, translations and global scaling.
    """
    r1, r2 = two_nearest_distances(X)
    keep = r1 > 0
    mu = np.sort(r2[keep] / r1[keep])                      # (N,), ascending, all >= 1
    n = len(mu)
    if n < 3:
        raise ValueError("TwoNN needs at least 3 distinct points")
    F = np.arange(1, n + 1) / n                            # empirical CDF at the sorted mu's
    m = int(np.floor(n * (1.0 - discard_fraction)))        # keep the smallest m ratios
    m = min(m, n - 1)                                      # never F = 1 (log 0)
    x = np.log(mu[:m])
    y = -np.log(1.0 - F[:m])
    return float((x @ y) / (x @ x))                        # least squares through the origin: y = k x


def pca_explained_variance(X) -> np.ndarray:
    """Explained-variance ratios of the principal components of X (N, D), largest first: (min(N, D),)."""
    X = _as_numpy(X)
    Xc = X - X.mean(axis=0, keepdims=True)                 # centre: PCA describes spread around the mean
    s = np.linalg.svd(Xc, compute_uv=False)                # singular values, descending
    var = s**2                                             # proportional to the covariance eigenvalues
    return var / var.sum()


def pca_dim(X, frac: float = 0.95) -> int:
    """Smallest number of principal components whose explained variance reaches ``frac`` (0 < frac < 1)."""
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac must lie in (0, 1), got {frac}")
    cum = np.cumsum(pca_explained_variance(X))
    return int(np.searchsorted(cum, frac) + 1)             # first k with cum[k-1] >= frac


def participation_ratio(X) -> float:
    r"""$(\sum\lambda_i)^2 / \sum\lambda_i^2$ over the covariance eigenvalues of X (N, D): 1 for a line, D for isotropic data."""
    return spectrum_participation_ratio(pca_explained_variance(X))


def spectrum_participation_ratio(lam) -> float:
    r"""The participation ratio from covariance eigenvalues (or explained-variance ratios) ``lam`` already computed."""
    lam = np.asarray(lam, dtype=np.float64)
    return float(lam.sum() ** 2 / (lam**2).sum())


def effective_rank(X) -> float:
    r"""$\exp(-\sum_i p_i \log p_i)$ with $p_i = \sigma_i / \sum_j\sigma_j$ the normalised singular values of the centred X."""
    Xc = _as_numpy(X)
    Xc = Xc - Xc.mean(axis=0, keepdims=True)
    return spectrum_effective_rank(np.linalg.svd(Xc, compute_uv=False))


def spectrum_effective_rank(s) -> float:
    r"""The effective rank from singular values ``s`` (any common scale) already computed."""
    s = np.asarray(s, dtype=np.float64)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))
