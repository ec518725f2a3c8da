r"""EM for a Gaussian mixture, read as coordinate ascent on the ELBO.

Mixture: $p(x) = \sum_{c=1}^K \pi_c\,\mathcal N(x; \mu_c, \Sigma_c)$ with a discrete latent $z\in\{1..K\}$. For any
"responsibilities" $r_{nc} = q_n(z = c)$ (rows summing to 1),

$$\mathcal L(r, \theta) = \sum_n\sum_c r_{nc}\big[\log\pi_c + \log\mathcal N(x_n;\mu_c,\Sigma_c) - \log r_{nc}\big]
 = \log p(X|\theta) - \sum_n \mathrm{KL}(q_n\,\|\,p(z|x_n,\theta)) \le \log p(X|\theta).$$

- **E-step** maximises $\mathcal L$ over $r$: $r_{nc} = p(z=c|x_n)$, which closes the gap ($\mathcal L = \log p(X)$).
- **M-step** maximises $\mathcal L$ over $\theta$: weighted means, covariances and mixing weights.

Each step can only raise $\mathcal L$, so the ELBO (and the log-likelihood) never decreases (Dempster, Laird & Rubin
1977, J. R. Stat. Soc. B; Neal & Hinton, "A view of the EM algorithm that justifies incremental, sparse, and other
variants", 1998). Shapes: ``N`` points, ``D`` dimension (1 or 2 in the chapter), ``K`` components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from manifold_course.seeding import numpy_rng


@dataclass(frozen=True)
class GMMParams:
    weights: np.ndarray  # (K,) mixing weights pi_c, summing to 1
    means: np.ndarray    # (K, D)
    covs: np.ndarray     # (K, D, D)


def component_log_densities(X: np.ndarray, params: GMMParams) -> np.ndarray:
    r"""$\log\pi_c + \log\mathcal N(x_n;\mu_c,\Sigma_c)$ for every point and component: (N, D) -> (N, K)."""
    N, D = X.shape
    out = np.empty((N, len(params.weights)))
    for c, (w, m, S) in enumerate(zip(params.weights, params.means, params.covs)):
        L = np.linalg.cholesky(S)
        r = np.linalg.solve(L, (X - m).T)                               # (D, N)
        logdet = 2.0 * np.sum(np.log(np.diag(L)))
        out[:, c] = np.log(w) - 0.5 * (D * np.log(2 * np.pi) + logdet + (r**2).sum(0))
    return out


def e_step(X: np.ndarray, params: GMMParams) -> tuple[np.ndarray, float]:
    r"""Responsibilities $r_{nc} = \pi_c\mathcal N(x_n|c) / \sum_{c'}\pi_{c'}\mathcal N(x_n|c')$ (N, K), and $\log p(X)$.

    Computed in log space with log-sum-exp so that far-away points do not underflow to 0/0.
    """
    logp = component_log_densities(X, params)                          # (N, K)
    log_norm = logsumexp(logp, axis=1, keepdims=True)                   # (N, 1) = log p(x_n)
    return np.exp(logp - log_norm), float(log_norm.sum())


def m_step(X: np.ndarray, resp: np.ndarray, reg: float = 0.0) -> GMMParams:
    r"""$N_c = \sum_n r_{nc}$, $\pi_c = N_c/N$, $\mu_c = \frac{1}{N_c}\sum_n r_{nc}x_n$,
    $\Sigma_c = \frac{1}{N_c}\sum_n r_{nc}(x_n-\mu_c)(x_n-\mu_c)^\top + \text{reg}\cdot I$.

    ``reg > 0`` guards against a component collapsing onto one point, at the price of the exact-maximiser
    guarantee (the ELBO could then dip by about ``reg``-sized amounts near convergence)."""
    N, D = X.shape
    Nc = resp.sum(0)                                                    # (K,)
    means = (resp.T @ X) / Nc[:, None]                                  # (K, D)
    covs = np.empty((len(Nc), D, D))
    for c in range(len(Nc)):
        d = X - means[c]
        covs[c] = (resp[:, c, None] * d).T @ d / Nc[c] + reg * np.eye(D)
    return GMMParams(Nc / N, means, covs)


def gmm_elbo(X: np.ndarray, resp: np.ndarray, params: GMMParams) -> float:
    r"""$\mathcal L(r,\theta) = \sum_{n,c} r_{nc}[\log\pi_c + \log\mathcal N(x_n|c) - \log r_{nc}]$ (with $0\log 0 = 0$)."""
    logp = component_log_densities(X, params)
    safe = np.where(resp > 0, resp, 1.0)                                # log 1 = 0 where r = 0
    return float(np.sum(resp * (logp - np.log(safe))))


def em_gmm(X: np.ndarray, K: int, iters: int = 50, seed: int = 0,
           init: GMMParams | None = None) -> tuple[GMMParams, list[float], list[float]]:
    r"""Run EM; returns ``(params, elbo_trace, loglik_trace)``.

    ``elbo_trace`` holds $\mathcal L$ after every half-step (E, M, E, M, ...), so its monotonicity is the claim that
    each coordinate-ascent step can only go up. ``loglik_trace`` is $\log p(X|\theta)$ after each M-step.
    Without ``init`` the means start at ``K`` random data points, covariances at the data covariance.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    N, D = X.shape
    if init is None:
        rng = numpy_rng(seed)
        cov = np.atleast_2d(np.cov(X.T)) + 1e-6 * np.eye(D)
        init = GMMParams(np.full(K, 1.0 / K), X[rng.choice(N, K, replace=False)].copy(), np.repeat(cov[None], K, 0))
    params = init
    elbo_trace: list[float] = []
    loglik_trace: list[float] = []
    for _ in range(iters):
        resp, _ = e_step(X, params)
        elbo_trace.append(gmm_elbo(X, resp, params))                   # after E: equals log p(X | theta)
        params = m_step(X, resp)
        elbo_trace.append(gmm_elbo(X, resp, params))                   # after M: theta improved, r fixed
        loglik_trace.append(e_step(X, params)[1])
    return params, elbo_trace, loglik_trace
