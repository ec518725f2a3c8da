r"""The linear-Gaussian latent-variable model, where the evidence and the posterior are exact.

$$z \sim \mathcal N(0, I_k), \qquad x \mid z \sim \mathcal N(Wz + b,\ \sigma^2 I_D),$$

with $W \in \mathbb R^{D\times k}$ (the "decoder"), $b \in \mathbb R^D$, noise scale $\sigma > 0$. This is probabilistic
PCA (Tipping & Bishop, "Probabilistic Principal Component Analysis", J. R. Stat. Soc. B 1999). Everything is Gaussian,
so the evidence integral $p(x) = \int p(x|z)p(z)\,dz$ has a closed form,

$$p(x) = \mathcal N\big(x;\ b,\ WW^\top + \sigma^2 I_D\big),$$

and so does the posterior $p(z|x) = \mathcal N(m, \Sigma)$ with
$\Sigma = (I_k + W^\top W/\sigma^2)^{-1}$ and $m = \Sigma W^\top (x-b)/\sigma^2$. The chapter uses it as the ground
truth against which Monte-Carlo evidence estimates and ELBOs are measured.

Shapes: ``D`` data dimension, ``k`` latent dimension, ``n`` samples. All arrays are float64 numpy.
"""

from __future__ import annotations

import numpy as np

LOG_2PI = float(np.log(2 * np.pi))


def log_evidence_linear_gaussian(x: np.ndarray, W: np.ndarray, b: np.ndarray, sigma: float) -> float:
    r"""$\log p(x) = \log\mathcal N(x; b, C)$ with $C = WW^\top + \sigma^2 I$: x (D,), W (D, k), b (D,) -> float.

    $\log\mathcal N(x; b, C) = -\tfrac12\big[D\log 2\pi + \log\det C + (x-b)^\top C^{-1}(x-b)\big]$, via $C = LL^\top$.
    """
    x, W, b = (np.asarray(a, dtype=np.float64) for a in (x, W, b))
    D = x.shape[0]
    C = W @ W.T + sigma**2 * np.eye(D)                   # (D, D) marginal covariance of x
    L = np.linalg.cholesky(C)
    r = np.linalg.solve(L, x - b)                         # L^{-1}(x - b): its squared norm is the Mahalanobis term
    logdet = 2.0 * np.sum(np.log(np.diag(L)))
    return float(-0.5 * (D * LOG_2PI + logdet + r @ r))


def posterior_linear_gaussian(x: np.ndarray, W: np.ndarray, b: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact posterior $p(z|x) = \mathcal N(m, \Sigma)$: returns ``(m (k,), Sigma (k, k))``.

    Precision $\Lambda = \Sigma^{-1} = I + W^\top W/\sigma^2$ (prior precision plus the likelihood's);
    $m = \Sigma W^\top(x - b)/\sigma^2$.
    """
    x, W, b = (np.asarray(a, dtype=np.float64) for a in (x, W, b))
    k = W.shape[1]
    precision = np.eye(k) + W.T @ W / sigma**2            # (k, k)
    cov = np.linalg.inv(precision)
    cov = 0.5 * (cov + cov.T)                             # symmetric to the last bit
    mean = cov @ (W.T @ (x - b)) / sigma**2               # (k,)
    return mean, cov


def log_likelihood_linear_gaussian(x: np.ndarray, z: np.ndarray, W: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    r"""$\log p(x|z_i) = \log\mathcal N(x; Wz_i + b, \sigma^2 I)$ for a batch of latents: z (n, k) -> (n,)."""
    D = x.shape[0]
    resid = x[None, :] - (z @ W.T + b[None, :])           # (n, D)
    return -0.5 * (D * (LOG_2PI + 2 * np.log(sigma)) + (resid**2).sum(-1) / sigma**2)


def sample_linear_gaussian(W: np.ndarray, b: np.ndarray, sigma: float, n: int,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` pairs from the model: returns ``(x (n, D), z (n, k))``."""
    z = rng.standard_normal((n, W.shape[1]))
    x = z @ W.T + b + sigma * rng.standard_normal((n, W.shape[0]))
    return x, z


def expected_log_likelihood_linear_gaussian(x: np.ndarray, mu: np.ndarray, logvar: np.ndarray,
                                            W: np.ndarray, b: np.ndarray, sigma: float) -> float:
    r"""$\mathbb E_{q}[\log p(x|z)]$ in closed form for $q = \mathcal N(\mu, \mathrm{diag}\, e^{\log\sigma_q^2})$.

    With $z = \mu + \delta$, $\mathbb E\|x - Wz - b\|^2 = \|x - W\mu - b\|^2 + \operatorname{tr}(W^\top W\,\mathrm{diag}\,\sigma_q^2)$, so
    $\mathbb E_q[\log p(x|z)] = \log\mathcal N(x; W\mu + b, \sigma^2 I) - \frac{1}{2\sigma^2}\sum_j \|W_{:,j}\|^2\sigma_{q,j}^2$.
    """
    mu, logvar = np.asarray(mu, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    at_mean = log_likelihood_linear_gaussian(np.asarray(x, dtype=np.float64), mu[None, :], W, b, sigma)[0]
    spread = np.sum((W**2).sum(0) * np.exp(logvar)) / (2 * sigma**2)   # the price of q's width
    return float(at_mean - spread)
