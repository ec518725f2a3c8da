r"""Cover's theorem: in more dimensions, more labelings are linearly separable.

Function counting (T. M. Cover, "Geometrical and statistical properties of systems of linear inequalities with
applications in pattern recognition", IEEE Trans. Electronic Computers 1965). For $N$ points in general position in
$\mathbb R^d$, the number of the $2^N$ labelings that a hyperplane through the origin separates is

$$C(N, d) = 2 \sum_{k=0}^{d-1} \binom{N-1}{k}, \qquad P_{\mathrm{sep}}(N, d) = C(N, d) / 2^N .$$

$P_{\mathrm{sep}} = 1$ for $N \le d$, exactly $\tfrac12$ at $N = 2d$, and it falls to 0 beyond: the capacity of a
linear classifier in $\mathbb R^d$ is about $2d$ random points. (For affine hyperplanes use $d + 1$.)

Hence "dimension raising": a map into more dimensions makes more labelings separable. The paraboloid lift
$\varphi(x) = (x, \|x\|^2)$ turns concentric circles into two stacked rings that a horizontal plane separates;
random ReLU features $\mathrm{ReLU}(xW + b)$ (A. Rahimi, B. Recht, "Random features for large-scale kernel machines",
NeurIPS 2007) do the same without knowing the geometry.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import linprog
from manifold_course.seeding import numpy_rng, torch_generator


def cover_count(N: int, d: int) -> int:
    r"""$C(N, d) = 2\sum_{k=0}^{d-1}\binom{N-1}{k}$, as an exact Python integer."""
    if N < 1 or d < 1:
        raise ValueError(f"need N >= 1 and d >= 1, got N={N}, d={d}")
    return 2 * sum(math.comb(N - 1, k) for k in range(d))     # comb(n, k) = 0 for k > n


def cover_separable_probability(N: int, d: int) -> float:
    """Share of the 2^N labelings of N points in general position in R^d separable through the origin.

    Exact integers, then one division: no overflow at N = 2000 (2.0**N overflows a float above N = 1023).
    """
    return cover_count(N, d) / 2**N                           # int / int is correctly rounded in Python


def lift_paraboloid(X: torch.Tensor) -> torch.Tensor:
    r"""$\varphi(x) = (x, \|x\|^2)$: (n, D) -> (n, D + 1). Circles centred at 0 land at heights $r^2$."""
    return torch.cat([X, (X * X).sum(dim=1, keepdim=True)], dim=1)   # (n, D + 1)


def random_relu_features(X: torch.Tensor, width: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    r"""$\mathrm{ReLU}(XW + b)$ with fixed random $W \sim \mathcal N(0, \mathrm{scale}^2/D)$, $b \sim \mathcal N(0, \mathrm{scale}^2)$: (n, D) -> (n, width)."""
    gen = torch_generator(seed)
    D = X.shape[1]
    W = torch.randn(D, width, generator=gen, dtype=X.dtype) * (scale / math.sqrt(D))   # (D, width)
    b = torch.randn(width, generator=gen, dtype=X.dtype) * scale                        # (width,)
    return torch.relu(X @ W + b)                                                         # (n, width)


def logistic_accuracy(X, y, C: float = 1e4) -> float:
    """Training accuracy of an (almost unregularised) logistic regression: 1.0 means linearly separated (or nearly)."""
    from sklearn.linear_model import LogisticRegression

    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    clf = LogisticRegression(C=C, max_iter=5000).fit(X, y)
    return float(clf.score(X, y))


def is_linearly_separable(X: np.ndarray, y: np.ndarray, through_origin: bool = True) -> bool:
    r"""Exact test by linear programming: is there $w$ (and $b$ unless ``through_origin``) with $y_i (w^\top x_i + b) \ge 1$?

    Labels ``y`` in {-1, +1} (or {0, 1}, mapped to -1, +1). Feasibility of the LP is separability (scale $w$ up).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.where(np.asarray(y) > 0, 1.0, -1.0)
    if not through_origin:
        X = np.hstack([X, np.ones((len(X), 1))])               # the bias as an extra coordinate
    # constraints -y_i x_i^T w <= -1; objective 0 (pure feasibility); w free
    res = linprog(np.zeros(X.shape[1]), A_ub=-y[:, None] * X, b_ub=-np.ones(len(X)),
                  bounds=[(None, None)] * X.shape[1], method="highs")
    return res.status == 0


def separable_fraction_mc(N: int, d: int, trials: int, seed: int = 0) -> float:
    """Monte-Carlo P_sep: share of ``trials`` random labelings of N Gaussian points in R^d that a hyperplane through 0 separates."""
    rng = numpy_rng(seed)
    hits = 0
    for _ in range(trials):
        X = rng.standard_normal((N, d))
        y = rng.choice([-1.0, 1.0], size=N)
        hits += is_linearly_separable(X, y)
    return hits / trials
