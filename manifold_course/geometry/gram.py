r"""How far is a batch of random vectors from orthonormal? $\|XX^\top - I\|_{\mathrm{op}}$ and the Marchenko-Pastur edge.

Stack $b$ vectors of $\mathbb R^d$ as the rows of $X$ (b, d), entries i.i.d. $\mathcal N(0, 1/d)$ so that each row has norm
$\approx 1$. Then $XX^\top$ (b, b) has unit diagonal up to $O(1/\sqrt d)$ and off-diagonal cosines of size $1/\sqrt d$,
but the errors add up: its eigenvalues fill the Marchenko-Pastur support $[(1-\sqrt\gamma)^2, (1+\sqrt\gamma)^2]$
with $\gamma = b/d$ (plus $b - d$ zeros when $b > d$), so

$$\|XX^\top - I\|_{\mathrm{op}} \approx (1 + \sqrt{b/d})^2 - 1 .$$

Exact orthonormality ($XX^\top = I$) needs $b \le d$. When $b > d$, $XX^\top$ has rank at most $d$, so at least one
eigenvalue is 0 and $\|XX^\top - I\|_{\mathrm{op}} \ge 1$; the best possible value, 1, is reached when $XX^\top$ is a
rank-$d$ orthogonal projection, e.g. $X = U$ with orthonormal columns (the polar factor of $X$).

References: V. A. Marchenko, L. A. Pastur, "Distribution of eigenvalues for some sets of random matrices",
Math. USSR-Sbornik 1967; R. Vershynin, *High-Dimensional Probability*, 2018, theorem 4.6.1.
"""

from __future__ import annotations

import math

import torch
from manifold_course.seeding import torch_generator


def gram_deviation(X: torch.Tensor) -> float:
    r"""$\|XX^\top - I_b\|_{\mathrm{op}}$ for X (b, d): the largest $|\lambda - 1|$ over the eigenvalues of $XX^\top$."""
    G = X @ X.T                                                # (b, b), symmetric PSD
    eig = torch.linalg.eigvalsh(G - torch.eye(G.shape[0], dtype=G.dtype))
    return float(eig.abs().max())


def marchenko_pastur_edge(b: int, d: int) -> float:
    r"""Predicted $\|XX^\top - I\|_{\mathrm{op}}$ for Gaussian X (b, d) with variance 1/d: $(1 + \sqrt{b/d})^2 - 1$."""
    return (1.0 + math.sqrt(b / d)) ** 2 - 1.0


def gaussian_batch(b: int, d: int, seed: int = 0) -> torch.Tensor:
    """b rows of R^d with i.i.d. N(0, 1/d) entries (so each row has norm close to 1): float64 (b, d)."""
    gen = torch_generator(seed)
    return torch.randn(b, d, generator=gen, dtype=torch.float64) / math.sqrt(d)


def closest_orthonormal(X: torch.Tensor) -> torch.Tensor:
    r"""The polar factor $UV^\top$ of $X = U\Sigma V^\top$ (b, d): orthonormal rows if $b \le d$, columns if $b > d$.

    For $b > d$, $(UV^\top)(UV^\top)^\top = UU^\top$ is a rank-$d$ projection and $\|UU^\top - I\|_{\mathrm{op}} = 1$,
    the smallest value any (b, d) matrix can reach.
    """
    U, _, Vh = torch.linalg.svd(X, full_matrices=False)        # U (b, k), Vh (k, d), k = min(b, d)
    return U @ Vh
