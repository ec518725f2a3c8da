r"""The evidence lower bound (ELBO), its Monte-Carlo estimate, and two ways to differentiate it.

For a latent-variable model $p(x, z) = p(x|z)\,p(z)$ and any density $q(z)$ (the "variational posterior"),

$$\log p(x) = \underbrace{\mathbb E_q[\log p(x|z)] - \mathrm{KL}(q\,\|\,p(z))}_{\mathrm{ELBO}(q)}
             + \underbrace{\mathrm{KL}(q\,\|\,p(z|x))}_{\text{gap}\ \ge\ 0}.$$

Jensen's inequality gives the same bound: $\log p(x) = \log\mathbb E_q[p(x,z)/q(z)] \ge \mathbb E_q[\log p(x,z) - \log q(z)]$.
The reparameterization $z = \mu + \sigma\odot\epsilon$, $\epsilon\sim\mathcal N(0, I)$, moves the randomness out of the
parameters so gradients flow through samples (Kingma & Welling, "Auto-Encoding Variational Bayes", 2013,
arXiv:1312.6114; Rezende, Mohamed & Wierstra, "Stochastic Backpropagation and Approximate Inference in Deep Generative
Models", 2014, arXiv:1401.4082). The score-function estimator (Williams, "Simple statistical gradient-following
algorithms", Machine Learning 1992: REINFORCE) needs only values of $f$ and usually has a much larger variance.

$q$ is a diagonal Gaussian $\mathcal N(\mu, \mathrm{diag}\,e^{\log\sigma^2})$ throughout. Shapes: ``k`` latent dim, ``n`` samples.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from manifold_course.probability.linear_gaussian import (
    expected_log_likelihood_linear_gaussian,
    log_evidence_linear_gaussian,
)
from manifold_course.seeding import numpy_rng

LOG_2PI = float(np.log(2 * np.pi))


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    r"""$z = \mu + e^{\frac12\log\sigma^2}\odot\epsilon$: deterministic given ``eps``; differentiable in ``mu`` and ``logvar``.

    $\partial z/\partial\mu = 1$, $\partial z/\partial\log\sigma^2 = \tfrac12\sigma\epsilon$. Shapes broadcast: (..., k).
    """
    return mu + torch.exp(0.5 * logvar) * eps


def log_mean_exp(a: np.ndarray) -> float:
    r"""$\log\frac1n\sum_i e^{a_i}$ without overflow: subtract the maximum first."""
    a = np.asarray(a, dtype=np.float64)
    m = a.max()
    return float(m + np.log(np.mean(np.exp(a - m))))


def mc_log_evidence(x: np.ndarray, log_lik_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    prior_sampler: Callable[[int, np.random.Generator], np.ndarray], n: int, seed: int) -> float:
    r"""Naive Monte-Carlo $\log p(x) \approx \log\frac1n\sum_i p(x|z_i)$, $z_i \sim p(z)$.

    Unbiased for $p(x)$ (not for its log); the variance explodes when the likelihood is concentrated on a region of
    small prior mass (many latent dimensions, little noise).
    """
    z = prior_sampler(n, numpy_rng(seed))                 # (n, k)
    return log_mean_exp(log_lik_fn(x, z))


def importance_log_evidence(x: np.ndarray, log_lik_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                            q_mean: np.ndarray, q_cov: np.ndarray, n: int, seed: int) -> float:
    r"""Importance sampling with a Gaussian proposal $q = \mathcal N(m, S)$ and prior $\mathcal N(0, I)$:

    $\log p(x) \approx \log\frac1n\sum_i \frac{p(x|z_i)p(z_i)}{q(z_i)}$, $z_i\sim q$. With $q$ the exact posterior every
    weight equals $p(x)$: zero variance.
    """
    rng = numpy_rng(seed)
    k = q_mean.shape[0]
    L = np.linalg.cholesky(q_cov)
    eps = rng.standard_normal((n, k))
    z = q_mean + eps @ L.T                                              # (n, k) ~ q
    log_q = -0.5 * (k * LOG_2PI + (eps**2).sum(-1)) - np.sum(np.log(np.diag(L)))
    log_prior = -0.5 * (k * LOG_2PI + (z**2).sum(-1))
    return log_mean_exp(log_lik_fn(x, z) + log_prior - log_q)


def elbo_mc(x: np.ndarray, mu: np.ndarray, logvar: np.ndarray,
            log_lik_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], eps: np.ndarray) -> float:
    r"""Monte-Carlo ELBO with the closed-form KL to $\mathcal N(0, I)$, from given noise ``eps`` (n, k):

    $\widehat{\mathrm{ELBO}} = \frac1n\sum_i \log p(x|z_i) - \mathrm{KL}(q\|\mathcal N(0,I))$, $z_i = \mu + \sigma\odot\epsilon_i$.
    """
    mu, logvar = np.asarray(mu, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    z = mu + np.exp(0.5 * logvar) * eps                                 # (n, k)
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar)
    return float(np.mean(log_lik_fn(x, z)) - kl)


def elbo_linear_gaussian(x: np.ndarray, mu: np.ndarray, logvar: np.ndarray,
                         W: np.ndarray, b: np.ndarray, sigma: float) -> float:
    r"""Exact ELBO of a diagonal $q$ in the linear-Gaussian model: $\mathbb E_q[\log p(x|z)] - \mathrm{KL}(q\|\mathcal N(0,I))$."""
    mu, logvar = np.asarray(mu, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar)
    return expected_log_likelihood_linear_gaussian(x, mu, logvar, W, b, sigma) - float(kl)


def elbo_gap(x: np.ndarray, mu: np.ndarray, logvar: np.ndarray, W: np.ndarray, b: np.ndarray, sigma: float) -> float:
    r"""$\log p(x) - \mathrm{ELBO}(q)$ in closed form; by the identity above it equals $\mathrm{KL}(q\|p(z|x)) \ge 0$."""
    return log_evidence_linear_gaussian(x, W, b, sigma) - elbo_linear_gaussian(x, mu, logvar, W, b, sigma)


def best_diagonal_gap(posterior_cov: np.ndarray) -> float:
    r"""Smallest $\mathrm{KL}(q\|\mathcal N(m,\Sigma))$ over diagonal Gaussians $q$ (mean-field):

    the optimum has mean $m$ and variances $1/\Lambda_{jj}$ with $\Lambda = \Sigma^{-1}$, and the KL left over is
    $\tfrac12\big[\sum_j\log\Lambda_{jj} - \log\det\Lambda\big] \ge 0$ (Hadamard's inequality), zero iff $\Sigma$ is diagonal.
    """
    precision = np.linalg.inv(posterior_cov)
    return float(0.5 * (np.sum(np.log(np.diag(precision))) - np.linalg.slogdet(precision)[1]))


def reparam_grad_samples(f: Callable[[torch.Tensor], torch.Tensor], mu: torch.Tensor, logvar: torch.Tensor,
                         eps: torch.Tensor) -> torch.Tensor:
    r"""Per-sample pathwise gradients of $\mathbb E_q[f(z)]$ w.r.t. $(\mu, \log\sigma^2)$: eps (n, k) -> (n, 2k).

    $g_i = \big(\nabla f(z_i),\ \nabla f(z_i)\odot\tfrac12\sigma\epsilon_i\big)$, $z_i = \mu + \sigma\epsilon_i$. ``f`` maps (n, k) -> (n,).
    """
    sigma = torch.exp(0.5 * logvar).detach()
    z = (mu.detach() + sigma * eps).requires_grad_(True)                # (n, k)
    (grad_z,) = torch.autograd.grad(f(z).sum(), z)                      # row i = grad f(z_i): the samples are independent
    return torch.cat([grad_z, grad_z * 0.5 * sigma * eps], dim=-1)


def score_function_grad_samples(f: Callable[[torch.Tensor], torch.Tensor], mu: torch.Tensor, logvar: torch.Tensor,
                                eps: torch.Tensor, baseline: bool = False) -> torch.Tensor:
    r"""Per-sample score-function (REINFORCE) gradients: $g_i = (f(z_i) - c)\,\nabla_\theta\log q(z_i)$: (n, 2k).

    $\nabla_\mu\log q = \epsilon/\sigma$ and $\nabla_{\log\sigma^2}\log q = \tfrac12(\epsilon^2 - 1)$. With ``baseline`` the
    constant $c$ is the leave-one-out mean of the other samples' $f$ (keeps the estimator unbiased); else $c = 0$.
    """
    with torch.no_grad():
        sigma = torch.exp(0.5 * logvar)
        fz = f(mu + sigma * eps)                                        # (n,)
        n = fz.shape[0]
        c = (fz.sum() - fz) / (n - 1) if baseline else torch.zeros_like(fz)
        score = torch.cat([eps / sigma, 0.5 * (eps**2 - 1.0)], dim=-1)  # (n, 2k) = grad_theta log q(z_i)
        return (fz - c)[:, None] * score
