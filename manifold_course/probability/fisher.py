r"""Fisher information of a 1-D Gaussian: the metric of the statistical manifold.

$F(\theta) = \mathbb E_x[\nabla_\theta \log p_\theta(x)\, \nabla_\theta \log p_\theta(x)^\top]$, and
$\mathrm{KL}(p_\theta \| p_{\theta+\delta}) \approx \tfrac12 \delta^\top F(\theta) \delta$ for small $\delta$
(Amari, "Natural Gradient Works Efficiently in Learning", Neural Computation 1998).
"""

from __future__ import annotations

import math

import torch


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
    g = torch.Generator().manual_seed(seed)
    x = mu + sigma * torch.randn(n, generator=g, dtype=torch.float64)
    s = score_gaussian(x, mu, sigma, param)                            # (n, 2)
    return s.T @ s / n


def to_mu_sigma(theta: torch.Tensor, param: str) -> tuple[float, float]:
    """Coordinates (mu, sigma) or (mu, log sigma) -> (mu, sigma)."""
    mu, s = float(theta[0]), float(theta[1])
    return (mu, s) if param == "sigma" else (mu, math.exp(s))


def kl_quadratic_rel_error(mu: float, sigma: float, delta: torch.Tensor, param: str = "sigma") -> float:
    r"""Relative error of $\tfrac12\delta^\top F\delta$ as an approximation of $\mathrm{KL}(p_\theta\|p_{\theta+\delta})$.

    The error is third order in $\delta$ while the KL is second order, so the relative error shrinks like $\|\delta\|$.
    """
    theta = torch.tensor([mu, sigma if param == "sigma" else math.log(sigma)], dtype=torch.float64)
    mu1, sigma1 = to_mu_sigma(theta + delta.double(), param)
    kl = kl_gaussians_1d(mu, sigma, mu1, sigma1)
    quad = 0.5 * float(delta.double() @ fisher_gaussian(mu, sigma, param) @ delta.double())
    return abs(kl - quad) / kl


def natural_gradient_step(theta: torch.Tensor, grad: torch.Tensor, F: torch.Tensor, lr: float,
                          damping: float = 0.0) -> torch.Tensor:
    r"""$\theta \leftarrow \theta - \eta\,(F + \lambda I)^{-1}\nabla L$: steepest descent when step length is measured by KL.

    Among steps with $\tfrac12\delta^\top F\delta \le \epsilon$, $-F^{-1}\nabla L$ (scaled) decreases $L$ the most, and it
    transforms like a tangent vector, so to first order it is the same step in every parameterisation.
    """
    A = F + damping * torch.eye(F.shape[0], dtype=F.dtype)
    return theta - lr * torch.linalg.solve(A, grad)


def fit_gaussian_path(x: torch.Tensor, mu0: float, sigma0: float, param: str, lr: float, steps: int,
                      natural: bool) -> torch.Tensor:
    r"""Fit $\mathcal N(\mu,\sigma^2)$ to data ``x`` by (natural) gradient descent on the mean negative log-likelihood.

    Works in coordinates $(\mu,\sigma)$ or $(\mu,\log\sigma)$; returns the path in $(\mu, \sigma)$: (steps + 1, 2).
    """
    x = x.double()
    theta = torch.tensor([mu0, sigma0 if param == "sigma" else math.log(sigma0)], dtype=torch.float64)
    path = [to_mu_sigma(theta, param)]
    for _ in range(steps):
        mu, sigma = to_mu_sigma(theta, param)
        grad = -score_gaussian(x, mu, sigma, param).mean(0)            # gradient of the mean NLL
        if natural:
            theta = natural_gradient_step(theta, grad, fisher_gaussian(mu, sigma, param), lr)
        else:
            theta = theta - lr * grad
        if param == "sigma" and theta[1] <= 0:                          # plain GD can jump to sigma <= 0
            theta = torch.tensor([float(theta[0]), 1e-6], dtype=torch.float64)
        path.append(to_mu_sigma(theta, param))
    return torch.tensor(path, dtype=torch.float64)
