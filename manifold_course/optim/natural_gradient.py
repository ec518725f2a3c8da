r"""The natural gradient: steepest descent measured in distributions, not in parameters.

A step $\delta$ in parameters changes the model's distribution by
$\mathrm{KL}(p_\theta \| p_{\theta+\delta}) \approx \tfrac12 \delta^\top F(\theta) \delta$, with $F$ the Fisher
information. The steepest descent direction under a KL budget is $-F^{-1}\nabla L$ (Amari, "Natural
Gradient Works Efficiently in Learning", Neural Computation 1998). Because $F$ transforms like a metric
($F' = J^\top F J$ under $\theta = \phi(\theta')$), the natural-gradient flow is the same curve in
distribution space whatever the parameterisation; plain gradient descent is not.

The demo fits $\mathcal N(\mu, \sigma^2)$ to data by minimising the mean negative log-likelihood, in two
coordinate systems: $(\mu, \sigma)$ and $(\mu, \log\sigma)$. Fisher matrices and the Gaussian KL come from
:mod:`manifold_course.probability.fisher`.
"""

from __future__ import annotations

import math

import torch

from manifold_course.probability.fisher import fisher_gaussian, kl_gaussians_1d


def natural_gradient_step(grad: torch.Tensor, F: torch.Tensor, lr: float, damping: float = 0.0) -> torch.Tensor:
    r"""Natural-gradient step $\Delta\theta = -\eta\,(F + \lambda I)^{-1} \nabla L$ (P,), by a linear solve.

    ``damping`` $\lambda$ keeps the solve stable when $F$ is nearly singular (Martens & Grosse, K-FAC, 2015,
    arXiv:1503.05671, use the same Tikhonov damping).
    """
    A = F + damping * torch.eye(F.shape[0], dtype=F.dtype)
    return -lr * torch.linalg.solve(A, grad.to(F.dtype))


def to_mu_sigma(theta: torch.Tensor, param: str) -> tuple[float, float]:
    """(mu, sigma) from coordinates ``theta`` = (mu, sigma) or (mu, log sigma)."""
    mu, s = float(theta[0]), float(theta[1])
    return (mu, s) if param == "sigma" else (mu, math.exp(s))


def gaussian_nll(theta: torch.Tensor, data: torch.Tensor, param: str = "sigma") -> torch.Tensor:
    r"""Mean negative log-likelihood $\frac1N\sum_n \big[\log\sigma + \frac{(x_n-\mu)^2}{2\sigma^2}\big] + \frac12\log 2\pi$.

    ``theta`` = $(\mu, \sigma)$ for ``param="sigma"`` or $(\mu, \log\sigma)$ for ``"logsigma"``.
    """
    mu = theta[0]
    sigma = theta[1] if param == "sigma" else theta[1].exp()
    return (torch.log(sigma) + (data - mu) ** 2 / (2 * sigma**2)).mean() + 0.5 * math.log(2 * math.pi)


def fit_gaussian(data: torch.Tensor, mu0: float, sigma0: float, param: str = "sigma", natural: bool = False,
                 lr: float = 0.1, steps: int = 200, damping: float = 0.0) -> dict:
    r"""Fit $\mathcal N(\mu, \sigma^2)$ to ``data`` (N,) by GD or natural GD in the chosen coordinates.

    Returns ``{"mu_sigma": (steps+1, 2) tensor of (mu, sigma) along the path, "kl": (steps+1,) tensor of
    KL(fitted MLE || current)}``. A step that would make sigma non-positive (possible in the sigma
    coordinates) stops the run; the rest of the path is NaN.
    """
    data = data.double()
    mle_mu, mle_sigma = float(data.mean()), float(data.std(unbiased=False))
    s0 = sigma0 if param == "sigma" else math.log(sigma0)
    theta = torch.tensor([mu0, s0], dtype=torch.float64)
    path = torch.full((steps + 1, 2), float("nan"), dtype=torch.float64)
    kl = torch.full((steps + 1,), float("nan"), dtype=torch.float64)
    for t in range(steps + 1):
        mu, sigma = to_mu_sigma(theta, param)
        if not (sigma > 0 and math.isfinite(sigma) and math.isfinite(mu)):
            break
        path[t] = torch.tensor([mu, sigma])
        kl[t] = kl_gaussians_1d(mle_mu, mle_sigma, mu, sigma)
        if t == steps:
            break
        th = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(gaussian_nll(th, data, param), th)     # (2,)
        if natural:
            step = natural_gradient_step(g, fisher_gaussian(mu, sigma, param), lr, damping)
        else:
            step = -lr * g
        theta = theta + step
    return {"mu_sigma": path, "kl": kl}


def steps_to_kl(kl: torch.Tensor, target: float) -> int | None:
    """First step at which the KL to the MLE falls below ``target`` (None if never)."""
    hit = (kl < target).nonzero()
    return int(hit[0]) if len(hit) else None


def kl_quadratic_rel_error(mu: float, sigma: float, delta: torch.Tensor, param: str = "sigma") -> float:
    r"""Relative error of $\tfrac12\delta^\top F\delta$ as an approximation of $\mathrm{KL}(p_\theta \| p_{\theta+\delta})$."""
    F = fisher_gaussian(mu, sigma, param)
    theta = torch.tensor([mu, sigma if param == "sigma" else math.log(sigma)], dtype=torch.float64)
    mu1, sigma1 = to_mu_sigma(theta + delta.double(), param)
    kl = kl_gaussians_1d(mu, sigma, mu1, sigma1)
    quad = 0.5 * float(delta.double() @ F @ delta.double())
    return abs(quad - kl) / kl
