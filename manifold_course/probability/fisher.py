r"""Fisher information of a 1-D Gaussian: the metric of the statistical manifold.

$F(\theta) = \mathbb E_x[\nabla_\theta \log p_\theta(x)\, \nabla_\theta \log p_\theta(x)^\top]$, and
$\mathrm{KL}(p_\theta \| p_{\theta+\delta}) \approx \tfrac12 \delta^\top F(\theta) \delta$ for small $\delta$
(Amari, "Natural Gradient Works Efficiently in Learning", Neural Computation 1998). The score
$\nabla_\theta\log p_\theta(x)$ has mean zero, so $F$ is its covariance; a Monte-Carlo average of score outer products
estimates it. The natural gradient built on this metric lives in :mod:`manifold_course.optim.natural_gradient`.
"""

from __future__ import annotations

import math

import torch
from manifold_course.seeding import torch_generator


def fisher_gaussian(mu: float, sigma: float, param: str = "sigma") -> torch.Tensor:
    r"""Exact 2x2 Fisher matrix of $\mathcal N(\mu, \sigma^2)$ in coordinates $(\mu, \sigma)$ or $(\mu, \log\sigma)$.

    - ``param="sigma"``:    $F = \mathrm{diag}(1/\sigma^2,\ 2/\sigma^2)$
    - ``param="logsigma"``: $F = \mathrm{diag}(1/\sigma^2,\ 2)$  (since $d\sigma = \sigma\, d\log\sigma$)
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    s2 = float(sigma) ** 2
    if param == "sigma":
        return torch.diag(torch.tensor([1.0 / s2, 2.0 / s2], dtype=torch.float64))
    if param == "logsigma":
        return torch.diag(torch.tensor([1.0 / s2, 2.0], dtype=torch.float64))
    raise ValueError(f"param must be 'sigma' or 'logsigma', got {param!r}")


def kl_gaussians_1d(mu0: float, sigma0: float, mu1: float, sigma1: float) -> float:
    r"""$\mathrm{KL}(\mathcal N(\mu_0,\sigma_0^2)\,\|\,\mathcal N(\mu_1,\sigma_1^2)) = \log\frac{\sigma_1}{\sigma_0} + \frac{\sigma_0^2 + (\mu_0-\mu_1)^2}{2\sigma_1^2} - \frac12$."""
    return math.log(sigma1 / sigma0) + (sigma0**2 + (mu0 - mu1) ** 2) / (2 * sigma1**2) - 0.5


def score_gaussian(x: torch.Tensor, mu: float, sigma: float, param: str = "sigma") -> torch.Tensor:
    r"""Per-sample score $\nabla_\theta\log\mathcal N(x;\mu,\sigma^2)$: x (n,) -> (n, 2).

    $\partial_\mu\log p = (x-\mu)/\sigma^2$; $\partial_\sigma\log p = ((x-\mu)^2 - \sigma^2)/\sigma^3$;
    $\partial_{\log\sigma}\log p = \sigma\,\partial_\sigma\log p = (x-\mu)^2/\sigma^2 - 1$.
    """
    r = x.double() - mu
    d_mu = r / sigma**2
    if param == "sigma":
        d_s = (r**2 - sigma**2) / sigma**3
    elif param == "logsigma":
        d_s = r**2 / sigma**2 - 1.0
    else:
        raise ValueError(f"param must be 'sigma' or 'logsigma', got {param!r}")
    return torch.stack([d_mu, d_s], dim=-1)


def fisher_gaussian_mc(mu: float, sigma: float, param: str = "sigma", n: int = 100_000, seed: int = 0) -> torch.Tensor:
    r"""Monte-Carlo Fisher $\frac1n\sum_i s_i s_i^\top$ from samples $x_i\sim\mathcal N(\mu,\sigma^2)$ (2x2, float64)."""
    g = torch_generator(seed)
    x = mu + sigma * torch.randn(n, generator=g, dtype=torch.float64)
    s = score_gaussian(x, mu, sigma, param)                            # (n, 2)
    return s.T @ s / n


def fisher_ellipse(mu: float, sigma: float, kl: float, n: int = 200) -> torch.Tensor:
    r"""Points $	heta+\delta$ in the $(\mu, \sigma)$ plane with $	frac12\delta^	op F(	heta)\delta = \mathrm{kl}$: (n, 2).

    The Fisher ellipse is the small "KL ball" around $\mathcal N(\mu,\sigma^2)$: semi-axes $\sigma\sqrt{2\,\mathrm{kl}}$ along
    $\mu$ and $\sigma\sqrt{\mathrm{kl}}$ along $\sigma$. Its size is proportional to $\sigma$: with the metric
    $ds^2 = (d\mu^2 + 2\,d\sigma^2)/\sigma^2$ the Gaussian family is a (scaled) hyperbolic half-plane.
    """
    t = torch.linspace(0, 2 * math.pi, n, dtype=torch.float64)
    d_mu = sigma * math.sqrt(2 * kl) * torch.cos(t)                     # (1/sigma^2) d_mu^2 / 2 = kl on this axis
    d_sigma = sigma * math.sqrt(kl) * torch.sin(t)                      # (2/sigma^2) d_sigma^2 / 2 = kl on this axis
    return torch.stack([mu + d_mu, sigma + d_sigma], dim=-1)
