r"""Concentration of measure: Gaussian norms sit on a thin shell, random directions are nearly orthogonal.

Norms. For $x \sim \mathcal N(0, I_d)$, $\|x\|$ follows the chi distribution with $d$ degrees of freedom:

$$\mathbb E\|x\|^2 = d,\qquad \mathbb E\|x\| = \sqrt2\,\frac{\Gamma(\frac{d+1}2)}{\Gamma(\frac d2)} \approx \sqrt{d - \tfrac12},
\qquad \mathrm{Var}\|x\| = d - (\mathbb E\|x\|)^2 \to \tfrac12 ,$$

and $P(|\,\|x\| - \sqrt d\,| > t) \le 2 e^{-c t^2}$ with $c$ independent of $d$: the shell has radius $\sqrt d$ and a
width that does not grow with $d$.

Angles. For independent $x, y \sim \mathcal N(0, I_d)$ the cosine $t = x^\top y / (\|x\|\|y\|)$ has density
$\propto (1 - t^2)^{(d-3)/2}$ on $[-1, 1]$, i.e. $(t+1)/2 \sim \mathrm{Beta}(\frac{d-1}2, \frac{d-1}2)$, with mean 0 and
variance exactly $1/d$. At $d = 3$ the cosine is uniform (Archimedes' hat-box theorem).

Reference: R. Vershynin, *High-Dimensional Probability*, Cambridge University Press 2018, sections 3.1 and 3.3.
"""

from __future__ import annotations

import math

import torch
from scipy import stats
from manifold_course.seeding import torch_generator


def expected_gaussian_norm(d: int) -> float:
    r"""$\mathbb E\|x\| = \sqrt2\,\Gamma(\frac{d+1}2) / \Gamma(\frac d2)$ for $x \sim \mathcal N(0, I_d)$ (in logs: no overflow)."""
    return math.sqrt(2.0) * math.exp(math.lgamma(0.5 * (d + 1)) - math.lgamma(0.5 * d))


def gaussian_norm_std(d: int) -> float:
    r"""Standard deviation of $\|x\|$: $\sqrt{d - (\mathbb E\|x\|)^2}$, which tends to $1/\sqrt2$."""
    return math.sqrt(max(d - expected_gaussian_norm(d) ** 2, 0.0))


def gaussian_norms(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """Euclidean norms of ``n`` standard Gaussian vectors of R^d: a float64 tensor (n,)."""
    gen = torch_generator(seed)
    return torch.randn(n, d, generator=gen, dtype=torch.float64).norm(dim=1)


def gaussian_norm_stats(n: int, d: int, seed: int = 0) -> tuple[float, float]:
    """(sample mean, sample standard deviation) of the norms of ``n`` standard Gaussian vectors of R^d."""
    r = gaussian_norms(n, d, seed)
    return float(r.mean()), float(r.std())


def rowwise_cosine(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    r"""$\cos\theta_i = a_i^\top b_i / (\|a_i\|\,\|b_i\|)$ for each row: (n, d), (n, d) -> (n,). Rows must be non-zero."""
    dots = (A * B).sum(dim=-1)                           # (n,)
    return dots / (A.norm(dim=-1) * B.norm(dim=-1))      # (n,)


def random_cosines(n_pairs: int, d: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Cosines of ``n_pairs`` independent pairs of standard Gaussian vectors of R^d: a tensor (n_pairs,)."""
    gen = torch_generator(seed)
    X = torch.randn(n_pairs, d, generator=gen, dtype=dtype)
    Y = torch.randn(n_pairs, d, generator=gen, dtype=dtype)
    return rowwise_cosine(X, Y)


def cosine_density(t, d: int):
    r"""Density of the cosine of two random directions in R^d (d >= 2): $\tfrac12\,\mathrm{Beta}_{a,a}\big(\tfrac{t+1}2\big)$, $a = \frac{d-1}2$."""
    a = 0.5 * (d - 1)
    return 0.5 * stats.beta(a, a).pdf((1.0 + t) / 2.0)


def prob_cosine_exceeds(d: int, tol: float) -> float:
    r"""Exact $P(|\cos\theta| \ge \mathrm{tol})$ for two random directions in R^d (d >= 2): $2\,P(u \le \frac{1-\mathrm{tol}}2)$, $u \sim \mathrm{Beta}(a, a)$.

    Computed directly (not as 1 - P(|cos| < tol)) so that tiny tails such as $10^{-23}$ at d = 10 000 survive.
    """
    if d < 2:
        raise ValueError("in d = 1 the cosine is always +-1; use d >= 2")
    a = 0.5 * (d - 1)
    return float(2.0 * stats.beta(a, a).cdf((1.0 - tol) / 2.0))   # the law of (t + 1)/2 is symmetric about 1/2


def prob_near_orthogonal(d: int, tol: float) -> float:
    r"""Exact $P(|\cos\theta| < \mathrm{tol})$ for two random directions in R^d (d >= 2), from the Beta law."""
    return 1.0 - prob_cosine_exceeds(d, tol)


def frac_near_orthogonal(d: int, n_pairs: int, tol: float, seed: int = 0) -> float:
    """Monte-Carlo share of ``n_pairs`` random pairs in R^d whose |cosine| is below ``tol``."""
    return float((random_cosines(n_pairs, d, seed).abs() < tol).double().mean())


def max_coherence(n: int, d: int, seed: int = 0) -> float:
    r"""$\max_{i \ne j} |\cos(x_i, x_j)|$ over ``n`` random Gaussian directions in R^d (the mutual coherence)."""
    gen = torch_generator(seed)
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    U = X / X.norm(dim=1, keepdim=True)                  # (n, d) unit rows
    C = (U @ U.T).abs()                                  # (n, n) |cosines|
    C.fill_diagonal_(0.0)
    return float(C.max())


def coherence_scale(n: int, d: int) -> float:
    r"""$\sqrt{4 \ln n / d}$: the size of the largest of $\approx n^2/2$ cosines with spread $1/\sqrt d$ (union bound)."""
    return math.sqrt(4.0 * math.log(n) / d)
