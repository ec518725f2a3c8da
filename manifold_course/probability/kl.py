r"""Kullback-Leibler divergences: categorical, diagonal and full Gaussians, and Monte-Carlo estimates.

$$\mathrm{KL}(q\,\|\,p) = \mathbb E_{z\sim q}\big[\log q(z) - \log p(z)\big] = \int q(z)\log\frac{q(z)}{p(z)}\,dz \;\ge 0,$$

zero iff $q = p$, and not symmetric (Kullback & Leibler, "On Information and Sufficiency", Ann. Math. Stat. 1951).
In a VAE the encoder outputs a diagonal Gaussian $q(z|x) = \mathcal N(\mu, \mathrm{diag}\,e^{\log\sigma^2})$ and the
KL to the prior $\mathcal N(0, I)$ has a closed form (Kingma & Welling, "Auto-Encoding Variational Bayes", 2013,
arXiv:1312.6114, appendix B). Networks predict the log-variance so that $\sigma^2 = e^{\log\sigma^2} > 0$ always.

Shapes: ``B`` batch, ``k`` latent dimension, ``n`` Monte-Carlo samples.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy import optimize
from manifold_course.seeding import numpy_rng


def kl_categorical(p: np.ndarray, q: np.ndarray) -> float:
    r"""$\mathrm{KL}(p\|q) = \sum_i p_i \log(p_i/q_i)$ in nats, with $0\log 0 = 0$; $+\infty$ when some $q_i = 0 < p_i$."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    support = p > 0                              # terms with p_i = 0 contribute 0 (limit of t log t)
    if np.any(q[support] == 0):
        return float("inf")                      # p puts mass where q puts none
    return float(np.sum(p[support] * (np.log(p[support]) - np.log(q[support]))))


def kl_diag_gaussians(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    r"""KL between diagonal Gaussians, summed over the last axis: (..., k) -> (...).

    $\mathrm{KL}(\mathcal N(\mu_q,\sigma_q^2)\|\mathcal N(\mu_p,\sigma_p^2)) = \tfrac12\sum_j\Big[\log\frac{\sigma_{p,j}^2}{\sigma_{q,j}^2}
    + \frac{\sigma_{q,j}^2 + (\mu_{q,j}-\mu_{p,j})^2}{\sigma_{p,j}^2} - 1\Big]$
    """
    var_ratio = torch.exp(logvar_q - logvar_p)                  # sigma_q^2 / sigma_p^2
    mahalanobis = (mu_q - mu_p).pow(2) * torch.exp(-logvar_p)   # (mu_q - mu_p)^2 / sigma_p^2
    return 0.5 * (var_ratio + mahalanobis - 1.0 - (logvar_q - logvar_p)).sum(-1)


def kl_std_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""$\mathrm{KL}(\mathcal N(\mu, \sigma^2)\|\mathcal N(0, I)) = \tfrac12\sum_j(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)$: (B, k) -> (B,).

    Equals 0 at $(\mu, \log\sigma^2) = (0, 0)$ and 0.5 at $(1, 0)$ in one dimension.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def kl_full_gaussians(mu0: np.ndarray, S0: np.ndarray, mu1: np.ndarray, S1: np.ndarray) -> float:
    r"""$\mathrm{KL}(\mathcal N(\mu_0,\Sigma_0)\|\mathcal N(\mu_1,\Sigma_1))$ for full covariances (k,) and (k, k).

    $\tfrac12\big[\operatorname{tr}(\Sigma_1^{-1}\Sigma_0) + (\mu_1-\mu_0)^\top\Sigma_1^{-1}(\mu_1-\mu_0) - k
    + \ln\det\Sigma_1 - \ln\det\Sigma_0\big]$, computed with Cholesky factors (no explicit inverse).
    """
    mu0, mu1 = np.asarray(mu0, dtype=np.float64), np.asarray(mu1, dtype=np.float64)
    S0, S1 = np.asarray(S0, dtype=np.float64), np.asarray(S1, dtype=np.float64)
    k = mu0.shape[0]
    L0, L1 = np.linalg.cholesky(S0), np.linalg.cholesky(S1)        # S = L L^T
    A = np.linalg.solve(L1, L0)                                     # L1^{-1} L0: tr(S1^{-1} S0) = ||A||_F^2
    m = np.linalg.solve(L1, mu1 - mu0)                              # Mahalanobis term = ||L1^{-1}(mu1 - mu0)||^2
    logdet0 = 2.0 * np.sum(np.log(np.diag(L0)))
    logdet1 = 2.0 * np.sum(np.log(np.diag(L1)))
    return float(0.5 * (np.sum(A * A) + m @ m - k + logdet1 - logdet0))


def kl_monte_carlo(samples_q: np.ndarray, log_q: Callable[[np.ndarray], np.ndarray],
                   log_p: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
    r"""Unbiased estimate of $\mathrm{KL}(q\|p) \approx \frac1n\sum_i[\log q(z_i) - \log p(z_i)]$, $z_i\sim q$.

    Returns ``(estimate, standard_error)``; the standard error is the sample std of the terms over $\sqrt n$.
    """
    terms = log_q(samples_q) - log_p(samples_q)                    # (n,)
    return float(terms.mean()), float(terms.std(ddof=1) / np.sqrt(len(terms)))


def kl_mc_std_normal(mu: np.ndarray, logvar: np.ndarray, n: int, seed: int) -> tuple[float, float]:
    r"""Monte-Carlo $\mathrm{KL}(\mathcal N(\mu,\mathrm{diag}\,\sigma^2)\|\mathcal N(0,I))$ from $n$ samples of $q$: (estimate, s.e.)."""
    mu, logvar = np.asarray(mu, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    eps = numpy_rng(seed).standard_normal((n, mu.shape[0]))   # (n, k)
    z = mu + np.exp(0.5 * logvar) * eps
    # log q(z) - log p(z): the log(2 pi) constants cancel
    terms = (-0.5 * (logvar + eps**2)).sum(-1) - (-0.5 * z**2).sum(-1)     # (n,)
    return float(terms.mean()), float(terms.std(ddof=1) / np.sqrt(n))


def fit_gaussian_kl(logp_grid: np.ndarray, grid: np.ndarray, direction: str) -> tuple[float, float]:
    r"""Best single Gaussian $q = \mathcal N(\mu, \sigma^2)$ for a 1-D density given on a uniform grid.

    - ``direction="forward"``: $\min_q \mathrm{KL}(p\|q)$ is moment matching (mean and variance of $p$): mass covering.
    - ``direction="reverse"``: $\min_q \mathrm{KL}(q\|p) = -H(q) - \mathbb E_q[\log p]$, found numerically from several
      starts (the objective has one local minimum per mode): mode seeking.

    ``logp_grid`` need not be normalised; returns ``(mu, sigma)``.
    """
    dx = float(grid[1] - grid[0])
    logp = logp_grid - np.log(np.sum(np.exp(logp_grid - logp_grid.max())) * dx) - logp_grid.max()  # normalise on the grid
    p = np.exp(logp)
    if direction == "forward":
        mu = float(np.sum(p * grid) * dx)
        return mu, float(np.sqrt(np.sum(p * (grid - mu) ** 2) * dx))
    if direction != "reverse":
        raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}")

    def reverse_kl(theta: np.ndarray) -> float:
        mu, log_sigma = theta
        logq = -0.5 * ((grid - mu) / np.exp(log_sigma)) ** 2 - log_sigma - 0.5 * np.log(2 * np.pi)
        q = np.exp(logq)
        return float(np.sum(q * (logq - logp)) * dx)

    starts = np.linspace(grid.min(), grid.max(), 9)[1:-1]
    best = min((optimize.minimize(reverse_kl, np.array([s, 0.0]), method="Nelder-Mead",
                                  options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000}) for s in starts),
               key=lambda r: r.fun)
    return float(best.x[0]), float(np.exp(best.x[1]))
