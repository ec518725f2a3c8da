r"""Volumes in high dimension: the ball inside the cube, and the thin outer shell.

The volume of the Euclidean ball of radius $r$ in $\mathbb R^d$ is

$$V_d(r) = \frac{\pi^{d/2}}{\Gamma(d/2 + 1)}\, r^d ,$$

so the share of the unit cube $[-\tfrac12, \tfrac12]^d$ taken by its inscribed ball (radius $\tfrac12$) is

$$\rho_d = \frac{\pi^{d/2}}{2^d\, \Gamma(d/2 + 1)} \longrightarrow 0 \qquad (d \to \infty).$$

$\Gamma(d/2+1)$ overflows a float near $d = 340$ and $\pi^{d/2}$ near $d = 1240$, so everything is computed in
logarithms with :func:`math.lgamma`. The fraction of a ball's volume within $\varepsilon$ of its surface is
$1 - (1 - \varepsilon)^d \to 1$: in high dimension almost all the volume sits in a thin outer shell.

Reference: R. Vershynin, *High-Dimensional Probability*, Cambridge University Press 2018, chapter 3;
A. Blum, J. Hopcroft, R. Kannan, *Foundations of Data Science*, Cambridge University Press 2020, chapter 2.
"""

from __future__ import annotations

import math

import torch
from manifold_course.seeding import torch_generator


def log_ball_volume(d: int, r: float = 1.0) -> float:
    r"""$\log V_d(r) = \tfrac d2 \log\pi - \log\Gamma(\tfrac d2 + 1) + d \log r$ (no overflow for any d)."""
    if d < 0:
        raise ValueError(f"dimension must be >= 0, got {d}")
    if r <= 0:
        raise ValueError(f"radius must be positive, got {r}")
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0) + d * math.log(r)


def ball_volume(d: int, r: float = 1.0) -> float:
    """Volume of the radius-``r`` ball in R^d (underflows gracefully to 0.0 for huge d)."""
    return math.exp(log_ball_volume(d, r))


def ball_cube_volume_ratio(d: int) -> float:
    r"""$\rho_d = V_d(\tfrac12) / 1^d = \pi^{d/2} / (2^d\,\Gamma(d/2+1))$: the inscribed ball's share of the unit cube.

    $\rho_1 = 1$, $\rho_2 = \pi/4$, $\rho_3 = \pi/6$, $\rho_{10} \approx 2.5\cdot10^{-3}$, $\rho_{30} \approx 2\cdot10^{-14}$.
    """
    if d < 1:
        raise ValueError(f"dimension must be >= 1, got {d}")
    # log rho_d = (d/2) log pi - d log 2 - log Gamma(d/2 + 1)
    return math.exp(0.5 * d * math.log(math.pi) - d * math.log(2.0) - math.lgamma(0.5 * d + 1.0))


def shell_fraction(d: int, eps: float) -> float:
    r"""Fraction of a ball's volume within relative distance $\varepsilon$ of its surface: $1 - (1-\varepsilon)^d$."""
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must lie in [0, 1], got {eps}")
    return 1.0 - (1.0 - eps) ** d


def sample_uniform_ball(n: int, d: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""``n`` points drawn uniformly from the unit ball of R^d: a (n, d) tensor.

    Direction: a standard Gaussian vector divided by its norm is uniform on the sphere (the Gaussian is
    rotation invariant). Radius: $P(\|x\| \le r) = r^d$ for a uniform point, so $r = U^{1/d}$ with
    $U \sim \mathcal U(0, 1)$ (inverse-CDF sampling). Rejection from the cube would need $1/\rho_d$ tries
    per point: about $10^{13}$ at $d = 30$.
    """
    gen = torch_generator(seed)
    g = torch.randn(n, d, generator=gen, dtype=torch.float64)        # (n, d)
    direction = g / g.norm(dim=1, keepdim=True)                        # (n, d), unit rows
    radius = torch.rand(n, 1, generator=gen, dtype=torch.float64) ** (1.0 / d)  # (n, 1), r = U^{1/d}
    return (direction * radius).to(dtype)


def shell_fraction_mc(X: torch.Tensor, eps: float) -> float:
    r"""Monte-Carlo shell fraction: the share of the rows of ``X`` (n, d) with $\|x\| > 1 - \varepsilon$."""
    return float((X.norm(dim=1) > 1.0 - eps).double().mean())
